//! `wrapd serve` killed with SIGKILL at random moments while clients move money through it
//! (deposits, contributions, cash withdrawals; concurrent, each with its `Idempotency-Key`),
//! restarted each time; every request that got no answer is retried with its key until it is
//! acknowledged. Afterwards every acknowledged movement is in the books exactly once and the
//! books hold ([`super::check_books`]).
//!
//! Sizes: `FAULT_KILLS` (default 6), `FAULT_CUSTOMERS` (24), `FAULT_WORKERS` (8), and the
//! kill moment, drawn uniformly between `FAULT_KILL_MIN_MS` (50) and `FAULT_KILL_MAX_MS` (800)
//! after the restarted server is ready.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Rng, Seen, Served, book, check_books, env_usize, move_money};
use crate::common::TestServer;

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "a fault run: FAULT_KILLS=N cargo test -p api --test http faults:: -- --ignored"]
    async fn killed_serve_loses_and_doubles_nothing() {
        super::killed_serve_loses_and_doubles_nothing("sqlite").await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "a fault run: FAULT_KILLS=N cargo test -p api --test http faults:: -- --ignored"]
    async fn killed_serve_loses_and_doubles_nothing() {
        if !::testing::has_postgres() {
            eprintln!("WRAP_TEST_POSTGRES_URL not set: PostgreSQL run skipped");
            return;
        }
        super::killed_serve_loses_and_doubles_nothing("postgres").await;
    }
}

async fn killed_serve_loses_and_doubles_nothing(backend: &'static str) {
    let kills = env_usize("FAULT_KILLS", 6);
    let (min_ms, max_ms) = (
        env_usize("FAULT_KILL_MIN_MS", 50) as u64,
        env_usize("FAULT_KILL_MAX_MS", 800) as u64,
    );
    let mut rng = Rng::from_env(&format!("serve_kill {backend}"));
    // The in-process server sets the book up and answers the checks; the child process is
    // the one killed.
    let server = TestServer::start(backend).await;
    let book = book(&server, env_usize("FAULT_CUSTOMERS", 24)).await;
    let http = reqwest::Client::new();
    let mut served = Served::start(&server.url, &server.key_pem);
    served.wait_ready(&http).await;

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let movers = {
        let (base, stop, seen) = (served.base.clone(), Arc::clone(&stop), Arc::clone(&seen));
        let mut rng = Rng::new(rng.next());
        let workers = env_usize("FAULT_WORKERS", 8);
        let book = book.clone();
        tokio::spawn(async move { move_money(&book, base, workers, &mut rng, stop, seen).await })
    };
    let mut restarts = Duration::ZERO;
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(rng.range(min_ms, max_ms))).await;
        served.kill();
        let at = Instant::now();
        served.spawn();
        served.wait_ready(&http).await;
        restarts += at.elapsed();
    }
    // The last server stays up: every movement in flight gets its answer.
    stop.store(true, Ordering::Relaxed);
    let totals = movers.await.unwrap();
    let elapsed = started.elapsed();
    check_books(&server, &book, &totals).await;
    eprintln!(
        "serve_kill {backend}: {}",
        serde_json::json!({
            "kills": kills,
            "seconds": elapsed.as_secs_f64(),
            "mean_restart_to_ready_ms": restarts.as_millis() / u128::try_from(kills.max(1)).unwrap(),
            "customers": book.customers.len(),
            "clients": seen.summary(),
        })
    );
    assert!(
        seen.unanswered.load(Ordering::Relaxed) > 0 || kills == 0,
        "no request was cut off by a kill"
    );
    drop(served);
    server.stop().await;
}
