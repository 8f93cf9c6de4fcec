//! `wrapd eod` over a range of dates killed with SIGKILL at random moments, restarted each time
//! on the same range (a finished date is left alone, a date in progress resumes from its first
//! step not done), then run to completion: the books must be identical to those of one
//! uninterrupted run of the same range on a copy of the same start (`wrapd backup --to` on
//! SQLite, `pg_dump` into a fresh database on PostgreSQL).
//!
//! "Identical books" here: every table of the database, every row, every column, compared as
//! SQL literals, except what differs between any two runs by design (see [`skipped`]): row ids
//! and entry hashes generated at run time (UUID v7, and the hash chain covers them), wall-clock
//! times, the audit log (a resumed run records each start) and the claim's fencing token (it
//! counts claims). Postings are also compared by account code, entry sequence and index, so an
//! entry whose id differs is still compared line by line; both databases' hash chains verify.
//!
//! The start: `book_with_plans` (plans, a goal, a withdrawal plan, a price) and a second
//! distributor's `FAULT_EOD_WRAPS` (default 20) funded wraps.
//!
//! Sizes: `FAULT_KILLS` (default 6: kills that landed on a running process), `FAULT_EOD_DAYS`
//! (4: the range grows by as much whenever a run finishes before its kill), the kill moment
//! drawn uniformly in 0..=`FAULT_EOD_KILL_MAX_MS` (1000) after the start.

use std::collections::{BTreeMap, HashSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use super::{Rng, dump_tables, env_usize, table_names};
use crate::common::TestServer;
use crate::eod::{book_with_plans, first_business_day, plus, wrapd};

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a fault run: FAULT_KILLS=N cargo test -p api --test http faults:: -- --ignored"]
    async fn killed_eod_resumes_to_the_same_books() {
        super::killed_eod_resumes_to_the_same_books("sqlite").await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a fault run: FAULT_KILLS=N cargo test -p api --test http faults:: -- --ignored"]
    async fn killed_eod_resumes_to_the_same_books() {
        if !::testing::has_postgres() {
            eprintln!("WRAP_TEST_POSTGRES_URL not set: PostgreSQL run skipped");
            return;
        }
        super::killed_eod_resumes_to_the_same_books("postgres").await;
    }
}

/// Tables left out of the comparison, and why.
const SKIPPED_TABLES: &[&str] = &[
    // A resumed run records its start each time it is started.
    "audit_log",
    // The fencing token counts claims: one per start.
    "eod_lease",
    // When each migration was applied (before the copy; the same names on both).
    "seaql_migrations",
];

/// Columns left out of the comparison (besides the masking of ids made by the run,
/// [`mask_new_ids`], and the step details' timings, [`without_timings`]): digests and hashes
/// over generated ids and times (an entry's `request_hash` covers its postings' account ids,
/// its `hash` its id and time; postings are compared by account code instead,
/// [`POSTINGS_BY_CODE`]) and wall-clock times.
fn skipped(table: &str, column: &str) -> bool {
    matches!(
        column,
        "created_at"
            | "updated_at"
            | "booked_at"
            | "started_at"
            | "finished_at"
            | "computed_at"
            | "requested_at"
            | "resolved_at"
            | "occurred_at"
            | "at"
    ) || matches!(
        (table, column),
        ("ledger_entries", "hash" | "prev_hash" | "request_hash") | ("ledger_books", "hash")
    )
}

/// Every UUID in `row`, as (start, end, lowercase hyphenated text): hyphenated text, and
/// SQLite's BLOB literals `X'…32 hex digits…'`.
fn uuids_in(row: &str) -> Vec<(usize, usize, String)> {
    let b = row.as_bytes();
    let hex = |c: u8| c.is_ascii_hexdigit();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'X'
            && i + 35 <= b.len()
            && b[i + 1] == b'\''
            && b[i + 34] == b'\''
            && b[i + 2..i + 34].iter().all(|&c| hex(c))
        {
            let h = row[i + 2..i + 34].to_ascii_lowercase();
            let text = format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            );
            found.push((i, i + 35, text));
            i += 35;
            continue;
        }
        if i + 36 <= b.len()
            && (0..36).all(|k| match k {
                8 | 13 | 18 | 23 => b[i + k] == b'-',
                _ => hex(b[i + k]),
            })
            && (i == 0 || !hex(b[i - 1]))
        {
            found.push((i, i + 36, row[i..i + 36].to_ascii_lowercase()));
            i += 36;
            continue;
        }
        i += 1;
    }
    found
}

/// The ids in `books`: what existed before end of day ran.
fn ids_of(books: &BTreeMap<String, Vec<String>>) -> HashSet<String> {
    books
        .values()
        .flatten()
        .flat_map(|row| uuids_in(row).into_iter().map(|(_, _, id)| id))
        .collect()
}

/// `row` with every id not in `known` (one the run generated: a UUID v7 of the moment, so
/// never the same in two runs) replaced by `<new>`. Every id that existed at the start (tenants,
/// customers, wraps, plans, accounts, instruments) must still match.
fn mask_new_ids(row: &str, known: &HashSet<String>) -> String {
    let mut out = String::with_capacity(row.len());
    let mut from = 0;
    for (start, end, id) in uuids_in(row) {
        if !known.contains(&id) {
            out.push_str(&row[from..start]);
            out.push_str("<new>");
            from = end;
        }
    }
    out.push_str(&row[from..]);
    out
}

/// `row` with the digits after every `_ms":` replaced by `_`: the JSON details of end-of-day
/// steps record how long parts took (`"simulation_ms":43`), which no two runs share.
fn without_timings(row: &str) -> String {
    let mut out = String::with_capacity(row.len());
    let mut rest = row;
    while let Some(at) = rest.find("_ms\":") {
        let (head, tail) = rest.split_at(at + 5);
        out.push_str(head);
        let digits = tail.len() - tail.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            out.push('_');
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// Postings by what they mean: the tenant, the entry's sequence number, the line, the account's
/// code, side and amount.
const POSTINGS_BY_CODE: &str = "SELECT p.tenant_id, p.seq, p.idx, a.code, p.side, p.amount \
     FROM ledger_postings p JOIN ledger_accounts a \
     ON a.tenant_id = p.tenant_id AND a.id = p.account_id";

/// The books of `db`, every id not in `known` masked (`None`: as they are).
async fn books_of(
    db: &DatabaseConnection,
    known: Option<&HashSet<String>>,
) -> BTreeMap<String, Vec<String>> {
    let tables: Vec<String> = table_names(db)
        .await
        .into_iter()
        .filter(|t| !SKIPPED_TABLES.contains(&t.as_str()))
        .collect();
    let mut books = dump_tables(db, &tables, skipped).await;
    let mut postings: Vec<String> = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            POSTINGS_BY_CODE,
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {} {}",
                r.try_get_by_index::<uuid::Uuid>(0).unwrap(),
                r.try_get_by_index::<i64>(1).unwrap(),
                r.try_get_by_index::<i32>(2).unwrap(),
                r.try_get_by_index::<String>(3).unwrap(),
                r.try_get_by_index::<String>(4).unwrap(),
                r.try_get_by_index::<i64>(5).unwrap(),
            )
        })
        .collect();
    postings.sort();
    books.insert("ledger_postings by account code".to_owned(), postings);
    for rows in books.values_mut() {
        for row in rows.iter_mut() {
            *row = without_timings(row);
            if let Some(known) = known {
                *row = mask_new_ids(row, known);
            }
        }
        rows.sort();
    }
    books
}

/// `wrapd eod --date from --to to --wait 120` on `url`, started.
fn spawn_eod(url: &str, from: NaiveDate, to: NaiveDate) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_wrapd"))
        .args(["eod", "--date", &from.to_string(), "--to", &to.to_string()])
        .args(["--wait", "120", "--database-url", url])
        .env("WRAP__DATABASE__AUTO_MIGRATE", "true")
        .env(
            "WRAP__CLOCK__SIMULATED_START",
            crate::common::simulated_start(),
        )
        .env("WRAP__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A copy of the database of `server` as it is now, and what removes it.
async fn copy_of(server: &TestServer, backend: &str) -> (String, Box<dyn std::any::Any>) {
    if backend == "sqlite" {
        let dir = std::env::temp_dir().join(format!("wrap_fault_copy_{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("copy.db");
        let out = wrapd(&server.url, &["backup", "--to", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        struct Dir(std::path::PathBuf);
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        (
            format!("sqlite://{}?mode=rwc", file.display()),
            Box::new(Dir(dir)),
        )
    } else {
        let copy = testing::EmptyDb::create("postgres").await;
        // pg_dump takes one consistent snapshot online; psql replays it into the empty database.
        let mut dump = Command::new("pg_dump")
            .args(["--no-owner", "--no-privileges", "--dbname", &server.url])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let restore = Command::new("psql")
            .args(["-q", "-v", "ON_ERROR_STOP=1", "--dbname", &copy.url])
            .stdin(dump.stdout.take().unwrap())
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            restore.status.success(),
            "{}",
            String::from_utf8_lossy(&restore.stderr)
        );
        assert!(dump.wait().unwrap().success(), "pg_dump failed");
        (copy.url.clone(), Box::new(copy))
    }
}

async fn killed_eod_resumes_to_the_same_books(backend: &'static str) {
    let kills = env_usize("FAULT_KILLS", 6);
    let days = u64::try_from(env_usize("FAULT_EOD_DAYS", 4)).unwrap();
    let max_ms = u64::try_from(env_usize("FAULT_EOD_KILL_MAX_MS", 1000)).unwrap();
    let mut rng = Rng::from_env(&format!("eod_kill {backend}"));
    let d1 = first_business_day();
    let server = TestServer::start(backend).await;
    book_with_plans(&server, d1).await;
    // More wraps with money, at a second distributor, so each date has work to be killed in.
    let more = super::book(&server, env_usize("FAULT_EOD_WRAPS", 20)).await;
    for (n, (customer, wrap)) in more.customers.iter().enumerate() {
        for (path, amount) in [
            (format!("/v1/customers/{customer}/deposits"), 1_000_000),
            (
                format!("/v1/wraps/{wrap}/contributions"),
                100_000 + 10_000 * n,
            ),
        ] {
            server
                .post_idem(
                    &more.bank,
                    &path,
                    &uuid::Uuid::now_v7().to_string(),
                    serde_json::json!({ "amount": amount.to_string() }),
                )
                .await
                .ok(201);
        }
    }
    let (copy_url, copy_guard) = copy_of(&server, backend).await;
    let calm_db = api::db::connect(&copy_url).await.unwrap();
    let known = ids_of(&books_of(&calm_db, None).await);

    let started = Instant::now();
    let mut to = plus(d1, days - 1);
    let (mut landed, mut finished_first) = (0, 0);
    // Steps done when each kill landed: the kills fall all over the run.
    let mut steps_at_kill = Vec::new();
    while landed < kills {
        let mut child = spawn_eod(&server.url, d1, to);
        tokio::time::sleep(Duration::from_millis(rng.range(0, max_ms))).await;
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            // Finished before its kill: more dates, so the next kills have work to land on.
            finished_first += 1;
            to = plus(to, days);
            continue;
        }
        child.kill().unwrap();
        let _ = child.wait();
        landed += 1;
        steps_at_kill.push(server.count_rows("eod_steps WHERE status = 'done'").await);
    }
    let killed_for = started.elapsed();
    let out = wrapd(
        &server.url,
        &[
            "eod",
            "--date",
            &d1.to_string(),
            "--to",
            &to.to_string(),
            "--wait",
            "120",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The same range, once, uninterrupted, on the copy of the start.
    let calm_started = Instant::now();
    let out = wrapd(
        &copy_url,
        &["eod", "--date", &d1.to_string(), "--to", &to.to_string()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calm_for = calm_started.elapsed();

    let killed = books_of(&server.db, Some(&known)).await;
    let calm = books_of(&calm_db, Some(&known)).await;
    let mut differences = Vec::new();
    for (table, rows) in &calm {
        let other = &killed[table];
        if rows != other {
            // Both dumps on disk, for `diff`.
            let at = std::env::temp_dir().join(format!("wrap_fault_eod_{}", uuid::Uuid::now_v7()));
            std::fs::create_dir_all(&at).unwrap();
            std::fs::write(at.join("uninterrupted.txt"), rows.join("\n")).unwrap();
            std::fs::write(at.join("killed.txt"), other.join("\n")).unwrap();
            let first = rows
                .iter()
                .zip(other.iter())
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("uninterrupted: {a}\nafter the kills: {b}"));
            differences.push(format!(
                "{table} differs ({} rows uninterrupted, {} after the kills), first difference:\n\
                 {}\n(both in {})",
                rows.len(),
                other.len(),
                first.unwrap_or_default(),
                at.display()
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n\n"));
    assert_eq!(
        calm.keys().collect::<Vec<_>>(),
        killed.keys().collect::<Vec<_>>()
    );
    for url in [&server.url, &copy_url] {
        let out = wrapd(url, &["verify", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let rows: usize = calm.values().map(Vec::len).sum();
    eprintln!(
        "eod_kill {backend}: {}",
        serde_json::json!({
            "kills": landed,
            "runs_finished_before_their_kill": finished_first,
            "dates": (to - d1).num_days() + 1,
            "from": d1, "to": to,
            "seconds_killing": killed_for.as_secs_f64(),
            "seconds_uninterrupted_run": calm_for.as_secs_f64(),
            "steps_done_at_each_kill": steps_at_kill,
            "tables_compared": calm.len(),
            "rows_compared": rows,
            "entries": calm["ledger_entries"].len(),
        })
    );
    let _ = calm_db.close().await;
    drop(copy_guard);
    server.stop().await;
}
