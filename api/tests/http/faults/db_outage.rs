//! The database going away under a running `wrapd serve`: the test runs a PostgreSQL cluster
//! of its own (initdb into a scratch directory, pg_ctl on a free port; as the `postgres` user
//! when the test runs as root, which PostgreSQL refuses), points `wrapd serve` at it, and stops
//! and restarts the cluster while clients move money. While it is down every request is
//! answered 503 problem+json with `Retry-After` (never 500), readiness (`/readyz`) goes 503;
//! when it is back the same process recovers on its own (readiness 200 again, no restart),
//! every request retried with its key is acknowledged, and the books hold with every
//! acknowledged movement exactly once ([`super::check_books`]).
//!
//! Sizes: `FAULT_OUTAGES` (default 2; stops alternate `fast`, which ends every session, and
//! `immediate`, a crash with recovery at the next start), `FAULT_OUTAGE_SECONDS` (3: how long
//! each lasts), `FAULT_CUSTOMERS` (24), `FAULT_WORKERS` (8). Skipped, saying so, when
//! PostgreSQL 15's `initdb` is not installed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Rng, Seen, Served, book, check_books, env_usize, free_port, move_money};
use crate::common::TestServer;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL cluster in a scratch directory, on its own port; removed when dropped.
#[derive(Debug)]
struct Cluster {
    dir: PathBuf,
    port: u16,
    /// `runuser -u postgres --` when running as root.
    as_postgres: bool,
}

impl Cluster {
    fn command(&self, program: &str) -> Command {
        let program = Path::new(PG_BIN).join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn init() -> Self {
        let dir = std::env::temp_dir().join(format!("wrap_fault_pg_{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if as_postgres {
            let out = Command::new("chown")
                .args(["postgres:postgres", dir.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
        let cluster = Self {
            dir,
            port: free_port(),
            as_postgres,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync"],
        );
        cluster.start();
        cluster
    }

    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    fn stop(&self, mode: &str) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", mode, "-w", "stop"]);
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a fault run: FAULT_OUTAGES=N cargo test -p api --test http faults:: -- --ignored"]
async fn postgres_going_away_answers_503_and_recovers() {
    if !Path::new(PG_BIN).join("initdb").exists() {
        eprintln!("{PG_BIN}/initdb not installed: the database outage run is skipped");
        return;
    }
    let outages = env_usize("FAULT_OUTAGES", 2);
    let down_for =
        Duration::from_secs(u64::try_from(env_usize("FAULT_OUTAGE_SECONDS", 3)).unwrap());
    let mut rng = Rng::from_env("db_outage");
    let cluster = Cluster::init();
    let database = testing::fresh_postgres_at(&cluster.admin_url(), api::db::connect).await;
    let server = TestServer::start_in(database, &crate::common::simulated_start(), |_| {}).await;
    let book = book(&server, env_usize("FAULT_CUSTOMERS", 24)).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut served = Served::start(&server.url, &server.key_pem);
    served.wait_ready(&http).await;

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let movers = {
        let (base, stop, seen, book) = (
            served.base.clone(),
            Arc::clone(&stop),
            Arc::clone(&seen),
            book.clone(),
        );
        let mut rng = Rng::new(rng.next());
        let workers = env_usize("FAULT_WORKERS", 8);
        tokio::spawn(async move { move_money(&book, base, workers, &mut rng, stop, seen).await })
    };
    let (mut not_ready_after, mut ready_again_after) = (Vec::new(), Vec::new());
    for n in 0..outages {
        tokio::time::sleep(Duration::from_millis(rng.range(500, 1500))).await;
        let before = seen.acknowledged.load(Ordering::Relaxed);
        let at = Instant::now();
        cluster.stop(if n % 2 == 0 { "fast" } else { "immediate" });
        // Readiness turns false (503) while the database is away.
        not_ready_after.push(
            served
                .wait_for(&http, "/readyz", 503, Duration::from_secs(30))
                .await
                .as_millis(),
        );
        let r = http
            .get(format!("{}/readyz", served.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        tokio::time::sleep(down_for.saturating_sub(at.elapsed())).await;
        cluster.start();
        // The same process finds the database again: ready, with no restart.
        let back = Instant::now();
        served
            .wait_for(&http, "/readyz", 200, Duration::from_secs(60))
            .await;
        ready_again_after.push(back.elapsed().as_millis());
        // Money moves again.
        let moving = Instant::now();
        while seen.acknowledged.load(Ordering::Relaxed) <= before {
            assert!(
                moving.elapsed() < Duration::from_secs(60),
                "no movement acknowledged after the database came back"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let totals = movers.await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(served.starts, 1, "the server was restarted");
    check_books(&server, &book, &totals).await;
    eprintln!(
        "db_outage: {}",
        serde_json::json!({
            "outages": outages,
            "seconds_down_each": down_for.as_secs(),
            "seconds": elapsed.as_secs_f64(),
            "readyz_503_after_stop_ms": not_ready_after,
            "readyz_200_after_start_ms": ready_again_after,
            "customers": book.customers.len(),
            "clients": seen.summary(),
        })
    );
    assert!(
        seen.unavailable.load(Ordering::Relaxed) > 0,
        "no request was answered 503 while the database was down"
    );
    drop(served);
    server.stop().await;
    drop(cluster);
}
