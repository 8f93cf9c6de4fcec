//! Faults (issue 23, item 3): the real `wrapd` binary killed with SIGKILL while it moves money
//! (`serve_kill`) or runs end of day (`eod_kill`), and the database going away under a running
//! server (`db_outage`). Each test checks what a bank would: every acknowledged write is in
//! the books exactly once, no entry is partial, the trial balance and the reconciliation hold
//! (through the API's own endpoints and `wrapd verify --json`), and end of day resumed after
//! any number of kills leaves the same books as a run that was never interrupted.
//!
//! They are `#[ignore]`d: they start, kill and restart processes for a minute or more, and
//! their timing must not be squeezed by the rest of the suite running beside them. Run them
//! one command each (sizes from the environment; `.ci/run` runs the short versions, the long
//! ones and their last results are in docs/OPERATIONS.md, "Faults"):
//!
//! ```sh
//! FAULT_KILLS=50 cargo test -p api --test http faults::serve_kill -- --ignored --nocapture
//! FAULT_KILLS=50 cargo test -p api --test http faults::eod_kill -- --ignored --nocapture
//! FAULT_OUTAGES=5 cargo test -p api --test http faults::db_outage -- --ignored --nocapture
//! ```
//!
//! `FAULT_SEED` fixes the random kill moments and amounts (each test prints the seed it used).

mod db_outage;
mod eod_kill;
mod serve_kill;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestServer;
use crate::customers::make_customer;
use crate::eod::wrapd;
use crate::wraps::{Market, market, open_wrap};

/// A size from the environment (`name`), else `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small seeded generator (xorshift64*): the kill moments and amounts of a run can be
/// replayed with `FAULT_SEED`, and the suite needs no random-number crate.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from `FAULT_SEED`, else the clock; the seed is printed so a failure can be rerun.
    pub fn from_env(what: &str) -> Self {
        let seed = std::env::var("FAULT_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                u64::try_from(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_nanos()
                        % u128::from(u64::MAX),
                )
                .unwrap()
            });
        eprintln!("{what}: FAULT_SEED={seed}");
        Self::new(seed)
    }

    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// A port nobody listens on now (the kernel's pick, released at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `wrapd serve` as a child process on a fixed port over `url`, signing with `key_pem` (the
/// in-process test server's key, so its tokens stay valid across restarts).
#[derive(Debug)]
pub struct Served {
    child: Option<Child>,
    url: String,
    key_pem: String,
    port: u16,
    pub base: String,
    log: PathBuf,
    /// How many times it was started.
    pub starts: usize,
    /// Settings of the test's own (`WRAP__…` variables), set on every start.
    env: Vec<(String, String)>,
}

impl Served {
    pub fn start(url: &str, key_pem: &str) -> Self {
        Self::start_with(url, key_pem, &[])
    }

    /// [`Served::start`] with settings of the test's own (`WRAP__…` variables).
    pub fn start_with(url: &str, key_pem: &str, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut served = Self {
            child: None,
            url: url.to_owned(),
            key_pem: key_pem.to_owned(),
            port,
            base: format!("http://127.0.0.1:{port}"),
            log: std::env::temp_dir().join(format!("wrapd-fault-{}.log", Uuid::now_v7())),
            starts: 0,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        served.spawn();
        served
    }

    /// Starts the process (the previous one must be dead).
    pub fn spawn(&mut self) {
        let log = std::fs::File::create(&self.log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_wrapd"))
            .arg("serve")
            .env("WRAP__DATABASE__URL", &self.url)
            .env("WRAP__DATABASE__AUTO_MIGRATE", "true")
            .env("WRAP__SERVER__BIND", format!("127.0.0.1:{}", self.port))
            .env("WRAP__AUTH__KEY_PEM", &self.key_pem)
            .env(
                "WRAP__CLOCK__SIMULATED_START",
                crate::common::simulated_start(),
            )
            .env("WRAP__LOG__LEVEL", "warn")
            .env("WRAP__RATE_LIMITS__TOKEN_PER_MINUTE_PER_ADDRESS", "0")
            .env("WRAP__RATE_LIMITS__TOKEN_PER_MINUTE_PER_CLIENT", "0")
            .env("WRAP__RATE_LIMITS__API_PER_SECOND_PER_CLIENT", "0")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.starts += 1;
    }

    /// SIGKILL (what `Child::kill` sends on Unix) and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until `GET path` answers `status` (at most `limit`); the time it took.
    pub async fn wait_for(
        &mut self,
        http: &reqwest::Client,
        path: &str,
        status: u16,
        limit: Duration,
    ) -> Duration {
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{}{path}", self.base)).send().await
                && r.status().as_u16() == status
            {
                return started.elapsed();
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(exit)) = child.try_wait()
            {
                panic!(
                    "wrapd serve exited ({exit}): {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < limit,
                "{path} did not answer {status} within {limit:?}: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the server is ready (its database answers).
    pub async fn wait_ready(&mut self, http: &reqwest::Client) -> Duration {
        self.wait_for(http, "/readyz", 200, Duration::from_secs(120))
            .await
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("wrapd serve's log kept: {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// A distributor with `customers` customers, each with one open wrap: the book the money
/// movements run over.
#[derive(Debug, Clone)]
pub struct Book {
    pub bank_id: Uuid,
    pub bank: String,
    pub customers: Vec<(Uuid, Uuid)>,
    /// The bank's entries before the movements (none, today).
    pub entries_before: i64,
}

pub async fn book(server: &TestServer, customers: usize) -> Book {
    let m: Market = market(server, "Fault Bank", 3).await;
    let mut made = Vec::new();
    for i in 0..customers {
        let c = make_customer(server, &m.bank, &format!("F-{i}"), 3).await;
        made.push((c, open_wrap(server, &m, c).await));
    }
    let entries_before = count_of(
        &server.db,
        "SELECT COUNT(*) FROM ledger_entries WHERE tenant_id = ?",
        m.bank_id,
    )
    .await;
    Book {
        bank_id: m.bank_id,
        bank: m.bank,
        customers: made,
        entries_before,
    }
}

/// What the clients saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Requests acknowledged (201).
    pub acknowledged: AtomicU64,
    /// Attempts that got no answer (connection refused or cut: the server was dead).
    pub unanswered: AtomicU64,
    /// 503 answers (problem+json with Retry-After, checked).
    pub unavailable: AtomicU64,
    /// 409 "is being processed" (a concurrent first attempt of the same key).
    pub in_progress: AtomicU64,
    /// Answers replayed from the idempotency store (`idempotent-replayed: true`).
    pub replayed: AtomicU64,
}

impl Seen {
    pub fn summary(&self) -> Value {
        json!({
            "acknowledged": self.acknowledged.load(Ordering::Relaxed),
            "unanswered_attempts": self.unanswered.load(Ordering::Relaxed),
            "answers_503": self.unavailable.load(Ordering::Relaxed),
            "answers_409_in_progress": self.in_progress.load(Ordering::Relaxed),
            "replayed": self.replayed.load(Ordering::Relaxed),
        })
    }
}

/// POSTs `body` to `path` with `key` until it is answered 201, as a careful client does: the
/// same key on every attempt, whatever happened to the previous one. A 503 must be
/// problem+json with `Retry-After`; a 500 or any other refusal fails the test.
pub async fn post_until_acknowledged(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    key: &str,
    body: &Value,
    seen: &Seen,
) -> Value {
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{path} ({key}) not acknowledged after 300 s"
        );
        let sent = http
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await;
        let r = match sent {
            Ok(r) => r,
            Err(_) => {
                seen.unanswered.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(25)).await;
                continue;
            }
        };
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let Ok(text) = r.text().await else {
            // The answer was cut off (the process died while sending it).
            seen.unanswered.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        match status {
            201 => {
                seen.acknowledged.fetch_add(1, Ordering::Relaxed);
                if headers.contains_key("idempotent-replayed") {
                    seen.replayed.fetch_add(1, Ordering::Relaxed);
                }
                return serde_json::from_str(&text).unwrap();
            }
            503 => {
                assert_eq!(
                    headers["content-type"], "application/problem+json",
                    "{text}"
                );
                let wait: u64 = headers
                    .get("retry-after")
                    .unwrap_or_else(|| panic!("503 without Retry-After: {text}"))
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                seen.unavailable.fetch_add(1, Ordering::Relaxed);
                // Retry-After is whole seconds; a test waits a fraction of it.
                tokio::time::sleep(Duration::from_millis(100 * wait.max(1))).await;
            }
            409 if text.contains("is being processed") => {
                seen.in_progress.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            _ => panic!("{path} ({key}): {status} {text}"),
        }
    }
}

/// One customer's movements as the clients saw them acknowledged.
#[derive(Debug, Default, Clone)]
pub struct Ledgered {
    pub cash: i64,
    pub wrap_cash: i64,
    pub entries: Vec<Uuid>,
    pub keys: usize,
}

/// `workers` clients moving money over `book`'s customers (each customer's movements one after
/// the other, the customers at once) until `stop` is set: a deposit of ¥1,000,000 and a
/// contribution of ¥300,000 first, then deposits, contributions and cash withdrawals of random
/// amounts, never more than the customer's cash. Returns each customer's totals.
pub async fn move_money(
    book: &Book,
    base: String,
    workers: usize,
    rng: &mut Rng,
    stop: Arc<AtomicBool>,
    seen: Arc<Seen>,
) -> Vec<Ledgered> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let run = Uuid::now_v7().simple().to_string();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let mine: Vec<(usize, Uuid, Uuid)> = book
            .customers
            .iter()
            .enumerate()
            .filter(|(i, _)| i % workers == w)
            .map(|(i, (c, wrap))| (i, *c, *wrap))
            .collect();
        let (http, base, token, stop, seen, run) = (
            http.clone(),
            base.clone(),
            book.bank.clone(),
            Arc::clone(&stop),
            Arc::clone(&seen),
            run.clone(),
        );
        let mut rng = Rng::new(rng.next());
        tasks.push(tokio::spawn(async move {
            let mut totals: Vec<Ledgered> = vec![Ledgered::default(); mine.len()];
            let mut op = 0usize;
            // Every customer gets its first two movements, then on until told to stop.
            while op < 2 || !stop.load(Ordering::Relaxed) {
                for (n, (i, customer, wrap)) in mine.iter().enumerate() {
                    let t = &mut totals[n];
                    let (path, amount, kind) = match (op, rng.range(0, 9)) {
                        (0, _) => (format!("/v1/customers/{customer}/deposits"), 1_000_000, 0),
                        (1, _) => (format!("/v1/wraps/{wrap}/contributions"), 300_000, 1),
                        (_, r) => {
                            let amount = i64::try_from(rng.range(1_000, 20_000)).unwrap();
                            if r >= 5 && t.cash >= amount {
                                if r >= 8 {
                                    (format!("/v1/customers/{customer}/withdrawals"), amount, 2)
                                } else {
                                    (format!("/v1/wraps/{wrap}/contributions"), amount, 1)
                                }
                            } else {
                                (format!("/v1/customers/{customer}/deposits"), amount, 0)
                            }
                        }
                    };
                    let key = format!("fault-{run}-{i}-{op}");
                    let body = json!({ "amount": amount.to_string() });
                    let answer =
                        post_until_acknowledged(&http, &base, &token, &path, &key, &body, &seen)
                            .await;
                    t.entries
                        .push(answer["entry_id"].as_str().unwrap().parse().unwrap());
                    t.keys += 1;
                    match kind {
                        0 => t.cash += amount,
                        1 => {
                            t.cash -= amount;
                            t.wrap_cash += amount;
                        }
                        _ => t.cash -= amount,
                    }
                }
                op += 1;
            }
            mine.into_iter()
                .map(|(i, ..)| i)
                .zip(totals)
                .collect::<Vec<_>>()
        }));
    }
    let mut all: BTreeMap<usize, Ledgered> = BTreeMap::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.into_values().collect()
}

/// `sql` with its one `?` bound to `tenant` (`$1` on PostgreSQL): ids are BLOBs on SQLite,
/// so they are bound, never spliced in as text.
fn with_tenant(db: &DatabaseConnection, sql: &str, tenant: Uuid) -> Statement {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => sql.replace('?', "$1"),
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, [tenant.into()])
}

/// `SELECT COUNT(*) …` with one `?` naming `tenant`.
pub async fn count_of(db: &DatabaseConnection, sql: &str, tenant: Uuid) -> i64 {
    db.query_one_raw(with_tenant(db, sql, tenant))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
}

pub async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
}

/// The books after the faults, against what the clients were told: every acknowledged entry
/// present exactly once and nothing else written, every customer's and wrap's cash what the
/// acknowledged movements make it, no entry without postings or unbalanced, and the trial
/// balance, the reconciliation (the API's endpoints) and `wrapd verify --json` exact.
pub async fn check_books(server: &TestServer, book: &Book, totals: &[Ledgered]) {
    let db = &server.db;
    let bank = book.bank_id;
    let acknowledged: usize = totals.iter().map(|t| t.entries.len()).sum();
    let ids: HashSet<Uuid> = totals
        .iter()
        .flat_map(|t| t.entries.iter().copied())
        .collect();
    assert_eq!(ids.len(), acknowledged, "an entry id acknowledged twice");
    let rows = db
        .query_all_raw(with_tenant(
            db,
            "SELECT id FROM ledger_entries WHERE tenant_id = ?",
            bank,
        ))
        .await
        .unwrap();
    let stored: HashSet<Uuid> = rows
        .iter()
        .map(|r| r.try_get_by_index::<Uuid>(0).unwrap())
        .collect();
    let missing: Vec<_> = ids.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged entries missing, say {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(
        i64::try_from(stored.len()).unwrap(),
        book.entries_before + i64::try_from(acknowledged).unwrap(),
        "entries other than the acknowledged ones were written (a doubled movement)"
    );
    let keys = count_of(
        db,
        "SELECT COUNT(*) FROM idempotency_keys WHERE tenant_id = ? AND key LIKE 'fault-%'",
        bank,
    )
    .await;
    assert_eq!(
        keys,
        i64::try_from(acknowledged).unwrap(),
        "idempotency keys"
    );
    let bare = count(
        db,
        "SELECT COUNT(*) FROM ledger_entries e WHERE NOT EXISTS (SELECT 1 FROM ledger_postings p \
         WHERE p.tenant_id = e.tenant_id AND p.entry_id = e.id)",
    )
    .await;
    assert_eq!(bare, 0, "entries without postings");
    let unbalanced = count(
        db,
        "SELECT COUNT(*) FROM (SELECT entry_id FROM ledger_postings \
         GROUP BY tenant_id, entry_id, asset_code \
         HAVING SUM(CASE WHEN side = 'debit' THEN amount ELSE -amount END) <> 0) unbalanced",
    )
    .await;
    assert_eq!(unbalanced, 0, "entries whose postings do not balance");

    for ((customer, wrap), t) in book.customers.iter().zip(totals) {
        let r = server
            .get(&book.bank, &format!("/v1/customers/{customer}"))
            .await;
        let b = r.ok(200);
        assert_eq!(
            b["cash"][0]["balance"],
            t.cash.to_string(),
            "{customer}: {b}"
        );
        let w = b["wraps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == wrap.to_string())
            .unwrap();
        assert_eq!(w["value"], t.wrap_cash.to_string(), "{wrap}: {b}");
    }

    let platform = server.token(&server.platform).await;
    let tb = server.get(&platform, "/v1/ledger/trial-balance").await;
    assert_eq!(tb.ok(200)["balanced"], true, "{}", tb.text);
    let rec = server.get(&platform, "/v1/ledger/reconciliation").await;
    assert_eq!(rec.ok(200)["reconciled"], true, "{}", rec.text);
    let out = wrapd(&server.url, &["verify", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        out.status.success() && report["ok"] == true,
        "{report} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every table's rows as sorted text lines, for comparing two databases' books: each row's
/// columns as SQL literals (`quote` on SQLite, `quote_nullable` on PostgreSQL), minus the
/// columns `skip(table)` names.
pub async fn dump_tables(
    db: &DatabaseConnection,
    tables: &[String],
    skip: impl Fn(&str, &str) -> bool,
) -> BTreeMap<String, Vec<String>> {
    let backend = db.get_database_backend();
    let mut out = BTreeMap::new();
    for table in tables {
        let columns: Vec<String> = db
            .query_all_raw(Statement::from_string(
                backend,
                match backend {
                    DbBackend::Postgres => format!(
                        "SELECT column_name::text FROM information_schema.columns \
                         WHERE table_schema = 'public' AND table_name = '{table}' \
                         ORDER BY ordinal_position"
                    ),
                    _ => format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
                },
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).unwrap())
            .filter(|c| !skip(table, c))
            .collect();
        let line = columns
            .iter()
            .map(|c| match backend {
                DbBackend::Postgres => format!("'{c}=' || quote_nullable(\"{c}\"::text)"),
                _ => format!("'{c}=' || quote(\"{c}\")"),
            })
            .collect::<Vec<_>>()
            .join(" || ' ' || ");
        let mut rows: Vec<String> = db
            .query_all_raw(Statement::from_string(
                backend,
                format!("SELECT {line} FROM {table}"),
            ))
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"))
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).unwrap())
            .collect();
        rows.sort();
        out.insert(table.clone(), rows);
    }
    out
}

/// The names of the database's tables.
pub async fn table_names(db: &DatabaseConnection) -> Vec<String> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
        }
        _ => {
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' ORDER BY 1"
        }
    };
    db.query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}
