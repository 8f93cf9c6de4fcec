//! `wrapd bench eod` kept from rotting: the binary builds a small book (200 wraps) on each
//! database and runs end of day over it; every day must finish (its checks included: the
//! opening book reconciles) and print its JSON line, and the books it leaves must be sound.

use std::process::Command;

use sea_orm::{ConnectionTrait, Statement};
use uuid::Uuid;

use crate::on_each_backend;

on_each_backend!(
    bench_eod_runs_on_a_small_book,
    bench_eod_runs_on_a_small_book
);

async fn bench_eod_runs_on_a_small_book(backend: &'static str) {
    let (url, dir) = match backend {
        "sqlite" => {
            let dir = std::env::temp_dir().join(format!("wrapd-bench-{}", Uuid::now_v7()));
            std::fs::create_dir_all(&dir).unwrap();
            (
                format!("sqlite://{}/wrap.db?mode=rwc", dir.display()),
                Some(dir),
            )
        }
        _ => {
            let base = std::env::var("WRAP_TEST_POSTGRES_URL").unwrap();
            let name = format!("wrap_test_{}", Uuid::now_v7().simple());
            (api::db::with_database(&base, &name).unwrap(), None)
        }
    };
    let out = Command::new(env!("CARGO_BIN_EXE_wrapd"))
        .args(["bench", "eod", "--wraps", "200", "--backend", backend])
        .args(["--database-url", &url])
        .env("WRAP__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| l["day_kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ordinary", "ordinary", "month_end"]);
    for l in &lines {
        assert_eq!(l["wraps"], 200, "{l}");
        assert_eq!(l["backend"], backend, "{l}");
        assert!(l["seconds"].as_f64().unwrap() > 0.0, "{l}");
        // Every step of the run was timed, the checks included.
        let steps = l["steps_ms"].as_object().unwrap();
        for step in api::eod::STEPS {
            assert!(steps.contains_key(step), "{step} missing in {l}");
        }
    }

    // The book it left: 200 wraps valued every day, and sound books.
    let db = api::db::connect(&url).await.unwrap();
    let b = db.get_database_backend();
    let one = |sql: &str| {
        let db = db.clone();
        let sql = sql.to_owned();
        async move {
            db.query_one_raw(Statement::from_string(b, sql))
                .await
                .unwrap()
                .unwrap()
                .try_get_by_index::<i64>(0)
                .unwrap()
        }
    };
    assert_eq!(one("SELECT COUNT(*) FROM wraps").await, 200);
    assert_eq!(one("SELECT COUNT(*) FROM wrap_snapshots").await, 600);
    assert_eq!(one("SELECT COUNT(*) FROM wrap_returns").await, 600);
    assert_eq!(
        one("SELECT COUNT(*) FROM eod_runs WHERE status = 'finished'").await,
        3
    );
    // Every wrap holds cash and units.
    assert_eq!(
        one("SELECT COUNT(*) FROM wrap_snapshots WHERE cash > 0 AND units_value > 0").await,
        600
    );
    let books = ledger::Ledger::new(db.clone());
    let rec = ledger::store::reconciliation::reconcile(&db, None, None)
        .await
        .unwrap();
    assert!(rec.reconciled);
    for t in rec.distributors.iter().flatten() {
        let chain = books.verify_chain(t.tenant_id).await.unwrap();
        assert!(chain.first_break.is_none(), "{chain:?}");
        assert!(chain.entries_checked > 0);
    }
    drop(books);
    db.close().await.unwrap();
    match dir {
        Some(dir) => std::fs::remove_dir_all(dir).unwrap(),
        None => api::db::drop_postgres_database(&url).await.unwrap(),
    }
}
