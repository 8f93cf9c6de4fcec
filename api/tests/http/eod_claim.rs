//! End of day claimed in the database (`ledger/wraps/src/eod/claim.rs`): several runners
//! started at once do each date's work once, a runner that lost its claim writes nothing.

use std::process::{Command, Stdio};
use std::sync::Arc;

use sea_orm::ConnectionTrait;

use crate::common::TestServer;
use crate::eod::{book_with_plans, first_business_day, plus, state_of, uninterrupted, wrapd};
use crate::on_each_backend;

/// `wrapd eod --date from --to to --wait 600` on `url`, started (not waited for).
fn spawn_eod(url: &str, from: &str, to: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_wrapd"))
        .args(["eod", "--date", from, "--to", to, "--wait", "600"])
        .args(["--database-url", url])
        .env("WRAP__DATABASE__AUTO_MIGRATE", "true")
        .env(
            "WRAP__CLOCK__SIMULATED_START",
            crate::common::simulated_start(),
        )
        .env("WRAP__LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

on_each_backend!(
    two_processes_at_once_book_each_trade_once,
    two_processes_at_once_book_each_trade_once
);
async fn two_processes_at_once_book_each_trade_once(backend: &'static str) {
    let d1 = first_business_day();
    let (s1, s3) = (d1.to_string(), plus(d1, 2).to_string());
    // One runner alone: what the three dates must leave behind.
    let (expected, fills) = uninterrupted(backend, d1).await;

    // Three processes started at the same moment on the same dates: one does the work,
    // the others wait for it and then find every date finished.
    let server = TestServer::start(backend).await;
    book_with_plans(&server, d1).await;
    let children: Vec<_> = (0..3).map(|_| spawn_eod(&server.url, &s1, &s3)).collect();
    let mut outputs = Vec::new();
    for child in children {
        outputs.push(child.wait_with_output().unwrap());
    }
    for out in &outputs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let already = outputs
        .iter()
        .filter(|o| {
            let text = String::from_utf8_lossy(&o.stdout);
            text.lines().count() == 3 && text.lines().all(|l| l.contains("already finished"))
        })
        .count();
    assert_eq!(already, 2, "two runners found the dates done: {outputs:?}");
    assert_eq!(server.count_rows("trade_fills").await, fills);
    assert_eq!(state_of(&server).await, expected);
    server.stop().await;
}

on_each_backend!(a_held_claim_refuses_others, a_held_claim_refuses_others);
async fn a_held_claim_refuses_others(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let d1 = first_business_day();
    book_with_plans(&server, d1).await;
    let s1 = d1.to_string();

    // Another process's view: its own RunLock on the same database.
    let first = wraps::eod::RunLock::new();
    first.set_database_url(&server.url);
    let held = wraps::eod::RunGuard::acquire(&first, &server.db)
        .await
        .unwrap();
    let second = wraps::eod::RunLock::new();
    second.set_database_url(&server.url);
    assert!(matches!(
        wraps::eod::RunGuard::acquire(&second, &server.db).await,
        Err(wraps::eod::EodError::InProgress)
    ));
    // The command line says so and exits 4, having written nothing.
    let out = wrapd(&server.url, &["eod", "--date", &s1]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another process is running end of day"),
        "{out:?}"
    );
    // So does the API.
    let platform = server.token(&server.platform).await;
    let r = server
        .post(
            &platform,
            "/v1/operations/eod",
            Some(serde_json::json!({ "date": d1 })),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(server.count_rows("eod_runs").await, 0);

    // Released: the next claim succeeds and runs the date.
    held.release().await;
    let out = wrapd(&server.url, &["eod", "--date", &s1]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.count_rows("eod_runs").await, 1);
    server.stop().await;
}

on_each_backend!(
    a_runner_that_lost_its_claim_writes_nothing,
    a_runner_that_lost_its_claim_writes_nothing
);
async fn a_runner_that_lost_its_claim_writes_nothing(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let d1 = first_business_day();
    book_with_plans(&server, d1).await;
    let lock = wraps::eod::RunLock::with(
        ledger::calendar::Calendar::japan(),
        Arc::new(wraps::eod::trading::SimulatedVenue),
    );
    lock.set_clock(wraps::clock::Clock::Simulated { start: d1 });
    let guard = wraps::eod::RunGuard::acquire(&lock, &server.db)
        .await
        .unwrap();
    // Another runner claimed after this one (its lock lost, say a dropped connection).
    server
        .db
        .execute_unprepared("UPDATE eod_lease SET token = token + 1")
        .await
        .unwrap();
    let books = ledger::Ledger::new(server.db.clone());
    let actor = wraps::eod::Actor {
        tenant_id: server.platform.tenant_id,
        client_id: "test".into(),
        request_id: "test".into(),
    };
    let result = wraps::eod::run(
        &server.db,
        &books,
        d1,
        d1,
        &actor,
        &guard,
        &wraps::eod::Quiet,
    )
    .await;
    guard.release().await;
    assert!(
        matches!(result, Err(wraps::eod::EodError::ClaimLost)),
        "{result:?}"
    );
    for table in ["eod_runs", "eod_steps", "trade_fills", "wrap_snapshots"] {
        assert_eq!(server.count_rows(table).await, 0, "{table}");
    }
    server.stop().await;
}
