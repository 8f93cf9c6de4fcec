//! `wrapd bench eod` kept from rotting: the binary builds a small book (200 wraps) on each
//! database and runs end of day over it; every day must finish (its checks included: the
//! opening book reconciles) and print its JSON line, and the books it leaves must be sound.
//! Stopped midway, it removes its scratch database.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement};
use uuid::Uuid;

use crate::on_each_backend;

on_each_backend!(
    bench_eod_runs_on_a_small_book,
    bench_eod_runs_on_a_small_book
);

async fn bench_eod_runs_on_a_small_book(backend: &'static str) {
    let database = testing::EmptyDb::create(backend).await;
    let url = database.url.clone();
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
        for step in wraps::eod::STEPS {
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
}

on_each_backend!(
    an_interrupted_bench_leaves_nothing,
    an_interrupted_bench_leaves_nothing
);

/// The scratch databases `wrapd bench` makes on the test server (`wrap_bench_…`).
async fn scratch_databases() -> Vec<String> {
    let base = std::env::var("WRAP_TEST_POSTGRES_URL").unwrap();
    let db = api::db::connect(&base).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT datname FROM pg_database WHERE datname LIKE 'wrap_bench_%'",
        ))
        .await
        .unwrap();
    db.close().await.unwrap();
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}

/// Without --database-url the benchmark writes a scratch database (a file in the temp
/// directory, or a database of its own on PostgreSQL). Stopped by SIGTERM while it builds its
/// book, it exits non-zero saying so and leaves no scratch database behind.
async fn an_interrupted_bench_leaves_nothing(backend: &'static str) {
    let tmp = std::env::temp_dir().join(format!("wrapd-interrupted-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&tmp).unwrap();
    let before = if backend == "postgres" {
        scratch_databases().await
    } else {
        Vec::new()
    };
    let child = Command::new(env!("CARGO_BIN_EXE_wrapd"))
        .args(["bench", "eod", "--wraps", "50000", "--backend", backend])
        .env("TMPDIR", &tmp)
        .env("WRAP__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the scratch database: the book is being built.
    let started = Instant::now();
    let made: Vec<String> = loop {
        let made: Vec<String> = if backend == "postgres" {
            scratch_databases()
                .await
                .into_iter()
                .filter(|n| !before.contains(n))
                .collect()
        } else {
            std::fs::read_dir(&tmp)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        if !made.is_empty() {
            break made;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no scratch database appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Past the moment it is made (its handlers are in place before the work starts).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    if backend == "postgres" {
        let left = scratch_databases().await;
        for name in &made {
            assert!(!left.contains(name), "{name} was left behind");
        }
    } else {
        let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
        assert!(left.is_empty(), "{made:?} made, {left:?} left behind");
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}
