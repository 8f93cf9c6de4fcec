//! End of day as an engine, without HTTP: the demo's synthetic book (`api::book`, the one
//! builder `wrapd demo` and `wrapd bench eod` use) seeded straight into a fresh database, then
//! `wraps::eod::run` over its first business days, on each database. Fast (no server, no
//! tokens), so it runs beside the HTTP suite and tries the whole chain of steps at once:
//! every date finishes with every step, every wrap is valued every day, the books balance and
//! the virtual layer reconciles to the omnibus, a finished range run again changes nothing,
//! and the same seed gives the same books (the demo's figures are reproducible).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use ledger::Ledger;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use uuid::Uuid;
use wraps::eod::{Actor, Quiet, RunGuard, RunLock};

const WRAPS: u64 = 40;
const SEED: u64 = 7;

/// What a run left, to compare two runs: (dates finished, snapshots, Σ NAV, entries).
async fn figures(db: &DatabaseConnection) -> (i64, i64, i64, i64) {
    let b = db.get_database_backend();
    let one = |sql: &'static str| async move {
        let row = db
            .query_one_raw(Statement::from_string(b, sql))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    };
    (
        one("SELECT COUNT(*) FROM eod_runs WHERE status = 'finished'").await,
        one("SELECT COUNT(*) FROM wrap_snapshots").await,
        // PostgreSQL sums BIGINTs as NUMERIC.
        one("SELECT CAST(COALESCE(SUM(nav), 0) AS BIGINT) FROM wrap_snapshots").await,
        one("SELECT COUNT(*) FROM ledger_entries").await,
    )
}

/// Seeds the demo's book of `WRAPS` wraps on a fresh `backend` database and runs end of day
/// from the demo's first date to `to`.
async fn seeded_run(backend: &'static str, to: NaiveDate) -> (testing::TestDb, Vec<NaiveDate>) {
    let t = testing::fresh(backend, api::db::connect).await;
    let ledger = Ledger::new(t.db.clone());
    let shape = api::demo::shape();
    let book = api::book::build(&t.db, &ledger, &shape, WRAPS, SEED, |_| {})
        .await
        .unwrap();
    assert_eq!(book.wraps, WRAPS);
    let lock = RunLock::new();
    lock.set_database_url(&t.url);
    let guard = RunGuard::acquire(&lock, &t.db).await.unwrap();
    let actor = Actor {
        tenant_id: book.platform,
        client_id: "engine-test".to_owned(),
        request_id: format!("engine:{}", Uuid::now_v7()),
    };
    let days = wraps::eod::run(&t.db, &ledger, api::demo::FIRST, to, &actor, &guard, &Quiet)
        .await
        .unwrap();
    for day in &days {
        assert!(!day.already_finished, "{} ran before", day.date);
        assert_eq!(day.awaiting_fills, None, "{} waits for fills", day.date);
        let steps: Vec<&str> = day.steps.iter().map(|s| s.step.as_str()).collect();
        assert_eq!(steps, wraps::eod::STEPS, "{}", day.date);
    }
    // Run again: every date is reported finished and nothing changes.
    let before = figures(&t.db).await;
    let again = wraps::eod::run(&t.db, &ledger, api::demo::FIRST, to, &actor, &guard, &Quiet)
        .await
        .unwrap();
    assert!(again.iter().all(|d| d.already_finished));
    assert_eq!(figures(&t.db).await, before);
    guard.release().await;

    // Sound books: every asset balances, and the virtual layer reconciles to the omnibus.
    for line in ledger.trial_balance(None).await.unwrap() {
        assert!(line.difference.is_zero(), "{line:?}");
    }
    let rec = ledger::store::reconciliation::reconcile(&t.db, None, None)
        .await
        .unwrap();
    assert!(rec.reconciled, "{rec:?}");
    (t, days.iter().map(|d| d.date).collect())
}

async fn end_of_day_runs_as_an_engine(backend: &'static str) {
    let to = api::demo::FIRST + chrono::Days::new(9);
    let (first, dates) = seeded_run(backend, to).await;
    assert_eq!(
        dates.len(),
        10,
        "every calendar day from the first: {dates:?}"
    );
    let (finished, snapshots, nav, entries) = figures(&first.db).await;
    assert_eq!(finished, 10);
    assert_eq!(snapshots, 10 * WRAPS as i64, "each wrap valued each day");
    assert!(nav > 0 && entries > 0);
    // The first business day invested the cash: units were bought.
    let b = first.db.get_database_backend();
    let units = first
        .db
        .query_one_raw(Statement::from_string(
            b,
            "SELECT COUNT(*) FROM ledger_accounts WHERE code LIKE 'wrap:%:units:%' \
             AND credits_posted > debits_posted",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert!(units >= WRAPS as i64, "{units} holdings for {WRAPS} wraps");
    // The same seed on a second database: the same books.
    let (second, _) = seeded_run(backend, to).await;
    assert_eq!(figures(&second.db).await, figures(&first.db).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    end_of_day_runs_as_an_engine("sqlite").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    if !testing::has_postgres() {
        eprintln!("WRAP_TEST_POSTGRES_URL not set: PostgreSQL run skipped");
        return;
    }
    end_of_day_runs_as_an_engine("postgres").await
}
