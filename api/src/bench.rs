//! `wrapd bench ledger`: posting throughput on SQLite or PostgreSQL.
//!
//! Setup (not measured): a fresh tenant, the JPY currency, [`ACCOUNTS`] accounts and a `fees`
//! account. Then each scenario posts its entries and prints one JSON line on stdout:
//! `{"scenario","backend","entries","seconds","entries_per_s","peak_rss_mib"}`. Only the
//! posting phase is timed. `peak_rss_mib` is the process's high-water mark so far (VmHWM), so
//! with `--scenario all` it covers every scenario run before it too.
//!
//! | scenario | workload |
//! |---|---|
//! | `single` | [`WRITERS`] concurrent tasks, each posting one entry at a time (debit a random account, credit another, 1..=1000 JPY) |
//! | `batch` | sequential `post_batch` calls of [`BATCH_SIZE`] such entries |
//! | `hot` | like `single`, but each entry is a transfer plus a 1 JPY fee: debit a (x + 1), credit b (x), credit `fees` (1), so every entry touches the one `fees` account |
//!
//! Amounts are exact [`Decimal`]s; floats appear only in the printed statistics.
//!
//! `wrapd bench fixture` ([`run_fixture`]) measures nothing itself: it seeds a database with a
//! tenant, a client and a small set of books for an HTTP load test (`deploy/bench/http.sh`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use ledger::{Asset, Ledger, NewAccount, NewEntry, NewPosting, Side};
use migrations::{Migrator, MigratorTrait};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::cli::{Backend, FixtureArgs, LedgerBenchArgs, Scenario};
use crate::error::Error;
use crate::logging::redact_url;

/// Accounts the entries are spread over.
pub const ACCOUNTS: u64 = 10_000;
/// Concurrent writer tasks in `single` and `hot`.
pub const WRITERS: u64 = 8;
/// Entries per `post_batch` call in `batch`.
pub const BATCH_SIZE: u64 = 1_000;
/// Accounts created at once during setup.
const SETUP_CONCURRENCY: usize = 16;
/// The asset posted.
const ASSET: &str = "JPY";
/// PostgreSQL database used when no URL is given.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// One printed result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    /// `single`, `batch` or `hot`.
    pub scenario: &'static str,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Entries posted.
    pub entries: u64,
    /// Wall time of the posting phase.
    pub seconds: f64,
    /// `entries / seconds`.
    pub entries_per_s: f64,
    /// Peak resident set size of the process so far, MiB (`None` off Linux).
    pub peak_rss_mib: Option<f64>,
}

/// `wrapd bench ledger`: the posting scenarios, on `database_url` or a scratch database.
/// `database_url` is the explicit `--database-url` only: the configured database is never
/// used, so a benchmark cannot write into real books.
pub async fn run_ledger(args: &LedgerBenchArgs, database_url: Option<&str>) -> Result<(), Error> {
    let target = Target::resolve(args.backend, database_url).await?;
    let url = target.url.clone();
    target.run(run_on(args, &url)).await
}

// ---------------------------------------------------------------------------------------
// `wrapd bench fixture`

/// Entries the fixture posts between its two accounts.
pub const FIXTURE_ENTRIES: u64 = 100;

/// What `wrapd bench fixture` made, printed as one JSON line (the secret only here).
#[derive(Debug, serde::Serialize)]
pub struct Fixture {
    pub tenant_id: Uuid,
    pub client_id: String,
    pub client_secret: String,
    /// The cash account (debit-normal), the one to read.
    pub account_id: Uuid,
}

/// `wrapd bench fixture`: migrates `database_url` (required) and seeds it for an HTTP load
/// test of `GET /v1/ledger/accounts/{id}`: a distributor tenant `bench-<uuid v7>`, a viewer
/// client, the JPY asset, a cash account (debit-normal) and a wrap account (credit-normal),
/// and [`FIXTURE_ENTRIES`] balanced entries between them. Prints a [`Fixture`] on stdout.
pub async fn run_fixture(args: &FixtureArgs, database_url: Option<&str>) -> Result<(), Error> {
    let url = database_url.ok_or_else(|| {
        Error::Usage(
            "wrapd bench fixture writes test data, so it needs an explicit --database-url \
             (it never uses the configured database)"
                .to_owned(),
        )
    })?;
    let db = crate::db::connect(url).await?;
    let settings = crate::settings::DatabaseSettings {
        url: url.to_owned(),
        auto_migrate: true,
        statement_timeout_seconds: 0,
    };
    let made = async {
        crate::db::prepare(&db, &settings).await?;
        match args.customers {
            None => serde_json::to_value(seed_fixture(&db).await?),
            Some(customers) => {
                serde_json::to_value(seed_customers(&db, args.distributors, customers).await?)
            }
        }
        .map_err(|e| Error::Other(e.to_string()))
    }
    .await;
    let _ = db.close().await;
    let line = serde_json::to_string(&made?).map_err(|e| Error::Other(e.to_string()))?;
    println!("{line}");
    Ok(())
}

async fn seed_fixture(db: &sea_orm::DatabaseConnection) -> Result<Fixture, Error> {
    use tenants::{DisplaySettings, NewClient, NewTenant, Role, TenantKind, store};
    let tenants_error = |e: tenants::TenantsError| Error::Other(format!("tenants: {e}"));
    let now = Utc::now();
    let tenant = store::create_tenant(
        db,
        &NewTenant {
            kind: TenantKind::Distributor,
            name: format!("bench-{}", Uuid::now_v7()),
            display: DisplaySettings {
                display_name: "Benchmark distributor".to_owned(),
                contact_email: "bench@wrap.example".to_owned(),
            },
        },
        now,
    )
    .await
    .map_err(tenants_error)?;
    let new_client = NewClient {
        name: "bench viewer".to_owned(),
        role: Role::Viewer,
    };
    let (client, secret) = store::create_client(db, tenant.id, &new_client, now)
        .await
        .map_err(tenants_error)?;

    let books = Ledger::new(db.clone());
    books.create_asset(&Asset::currency(ASSET, 0)).await?;
    let account = |code: &str, normal_side| NewAccount {
        tenant_id: tenant.id,
        code: code.to_owned(),
        asset: ASSET.to_owned(),
        normal_side,
        no_negative: false,
        metadata: serde_json::json!({}),
    };
    let cash = books
        .create_account(&account("bench:cash", Side::Debit))
        .await?;
    let wraps = books
        .create_account(&account("bench:wraps", Side::Credit))
        .await?;
    let date = now.date_naive();
    let entries = (1..=FIXTURE_ENTRIES)
        .map(|n| {
            let amount = Decimal::from(n * 1_000);
            NewEntry {
                tenant_id: tenant.id,
                idempotency_key: format!("bench-fixture:{}:{n}", tenant.id),
                kind: "deposit".to_owned(),
                effective_date: date,
                description: String::new(),
                metadata: serde_json::json!({}),
                postings: vec![
                    NewPosting::debit(cash.id, ASSET, amount),
                    NewPosting::credit(wraps.id, ASSET, amount),
                ],
                hold: None,
            }
        })
        .collect();
    books.post_batch(entries).await?;
    tracing::info!(tenant_id = %tenant.id, account_id = %cash.id, entries = FIXTURE_ENTRIES, "bench: fixture ready");
    Ok(Fixture {
        tenant_id: tenant.id,
        client_id: client.client_id,
        client_secret: secret.expose().to_owned(),
        account_id: cash.id,
    })
}

/// The cash each customer of the mixed fixture starts with (yen): enough that the load
/// test's small withdrawals are never refused for want of cash.
pub const FIXTURE_OPENING_CASH: i64 = 10_000_000;

/// What `wrapd bench fixture --customers N` made (the secrets only here).
#[derive(Debug, serde::Serialize)]
pub struct MixedFixture {
    pub distributors: Vec<FixtureDistributor>,
}

/// One distributor of [`MixedFixture`]: an operator client and its customers.
#[derive(Debug, serde::Serialize)]
pub struct FixtureDistributor {
    pub tenant_id: Uuid,
    pub client_id: String,
    pub client_secret: String,
    pub customers: Vec<FixtureCustomer>,
}

/// A customer and its JPY cash account.
#[derive(Debug, serde::Serialize)]
pub struct FixtureCustomer {
    pub customer_id: Uuid,
    pub account_id: Uuid,
}

/// The mixed load test's book, made through the same functions the API calls
/// (`onboarding::open_tenant`, `customers::store::insert_customer`, `movements::move_cash`),
/// one transaction per customer.
async fn seed_customers(
    db: &sea_orm::DatabaseConnection,
    distributors: u32,
    customers: u32,
) -> Result<MixedFixture, Error> {
    use tenants::{DisplaySettings, NewClient, NewTenant, Role, TenantKind, store};
    use wraps::customers::NewCustomer;
    use wraps::movements::{CashMove, Direction, Who};
    let tenants_error = |e: tenants::TenantsError| Error::Other(format!("tenants: {e}"));
    let books = Ledger::new(db.clone());
    crate::onboarding::ensure_base_currency(&books)
        .await
        .map_err(|p| Error::Other(format!("base currency: {p:?}")))?;
    let asset = Asset::currency(ASSET, 0);
    let mut made = Vec::new();
    for d in 0..distributors {
        let now = Utc::now();
        let txn = ledger::begin_write(db).await?;
        let tenant = crate::onboarding::open_tenant(
            &txn,
            &books,
            &NewTenant {
                kind: TenantKind::Distributor,
                name: format!("bench-{d}-{}", Uuid::now_v7()),
                display: DisplaySettings {
                    display_name: format!("Benchmark distributor {d}"),
                    contact_email: "bench@wrap.example".to_owned(),
                },
            },
            now,
        )
        .await
        .map_err(|p| Error::Other(format!("open tenant: {p:?}")))?;
        let new_client = NewClient {
            name: "bench operator".to_owned(),
            role: Role::Operator,
        };
        let (client, secret) = store::create_client(&txn, tenant.id, &new_client, now)
            .await
            .map_err(tenants_error)?;
        txn.commit().await?;
        let today = crate::money::today(now);
        let mut list = Vec::new();
        for n in 0..customers {
            let txn = ledger::begin_write(db).await?;
            let customer = wraps::customers::store::insert_customer(
                &txn,
                tenant.id,
                &NewCustomer {
                    external_ref: format!("BENCH-{n:06}"),
                    name: format!("Bench customer {n}"),
                    date_of_birth: None,
                    risk_tolerance: 3,
                },
                now,
            )
            .await?
            .ok_or_else(|| Error::Other("a fixture customer's external_ref is taken".into()))?;
            let moved = wraps::movements::move_cash(
                &txn,
                &books,
                Who {
                    request_id: "bench-fixture",
                    client_id: &client.client_id,
                },
                &CashMove {
                    customer: &customer,
                    asset: &asset,
                    amount: Decimal::from(FIXTURE_OPENING_CASH),
                    direction: Direction::In,
                    reference: Some("bench opening cash"),
                    date: today,
                },
            )
            .await
            .map_err(|e| Error::Other(format!("opening deposit: {e}")))?;
            txn.commit().await?;
            list.push(FixtureCustomer {
                customer_id: customer.id,
                account_id: moved.cash.id,
            });
        }
        tracing::info!(tenant_id = %tenant.id, customers, "bench: mixed fixture distributor ready");
        made.push(FixtureDistributor {
            tenant_id: tenant.id,
            client_id: client.client_id,
            client_secret: secret.expose().to_owned(),
            customers: list,
        });
    }
    Ok(MixedFixture { distributors: made })
}

// ---------------------------------------------------------------------------------------
// `wrapd bench ledger`

/// Resolves with the signal's name on the first SIGINT or SIGTERM. The handlers are
/// registered when this is called.
#[cfg(unix)]
fn stop_signal() -> Result<impl std::future::Future<Output = &'static str>, Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let handler = |kind| signal(kind).map_err(|e| Error::Other(format!("signal handler: {e}")));
    let mut int = handler(SignalKind::interrupt())?;
    let mut term = handler(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    })
}

/// Resolves on the first Ctrl-C (its handler is registered when first polled).
#[cfg(not(unix))]
fn stop_signal() -> Result<impl std::future::Future<Output = &'static str>, Error> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    })
}

/// Where a benchmark writes (`bench ledger`, `bench eod`).
pub(crate) struct Target {
    pub(crate) url: String,
    /// A temporary SQLite file to delete afterwards.
    scratch_file: Option<PathBuf>,
    /// A temporary PostgreSQL database to drop afterwards.
    scratch_database: bool,
}

impl Target {
    /// Runs `work`, then removes the scratch database, also when the process is asked to
    /// stop (SIGINT, as Ctrl-C sends, or SIGTERM, as `kill` does): an interrupted benchmark
    /// used to leave its file, gigabytes at a million wraps, in the temp directory. The work
    /// is dropped where it stands (its open transaction rolls back). SIGKILL cannot be
    /// caught: the file then stays. Tried by `api/tests/http/bench_eod.rs::an_interrupted_bench_leaves_nothing`.
    pub(crate) async fn run<F>(self, work: F) -> Result<(), Error>
    where
        F: std::future::Future<Output = Result<(), Error>>,
    {
        let result = {
            let stop = stop_signal()?;
            tokio::select! {
                // Biased, stop first: its handlers are in place before the work begins.
                biased;
                signal = stop => Err(Error::Other(format!(
                    "interrupted by {signal}: the scratch database is removed"
                ))),
                r = work => r,
            }
        };
        self.clean_up().await;
        result
    }

    /// Removes the scratch file or drops the scratch database, if the benchmark made one.
    pub(crate) async fn clean_up(&self) {
        if let Some(path) = &self.scratch_file {
            crate::db::remove_sqlite_files(path);
        }
        if self.scratch_database
            && let Err(e) = crate::db::drop_postgres_database(&self.url).await
        {
            tracing::warn!(error = %e, "bench: could not drop its scratch database");
        }
    }

    /// An explicit URL of the backend's kind, else a scratch database of that kind.
    pub(crate) async fn resolve(backend: Backend, explicit: Option<&str>) -> Result<Self, Error> {
        match (backend, explicit) {
            (Backend::Sqlite, Some(url)) if crate::db::is_sqlite(url) => Ok(Self {
                url: url.to_owned(),
                scratch_file: None,
                scratch_database: false,
            }),
            (Backend::Postgres, Some(url)) if crate::db::is_postgres(url) => {
                crate::db::create_postgres_database_if_missing(url).await?;
                Ok(Self {
                    url: url.to_owned(),
                    scratch_file: None,
                    scratch_database: false,
                })
            }
            (_, Some(url)) => Err(Error::Usage(format!(
                "--backend {} does not match --database-url {}",
                backend.as_str(),
                redact_url(url)
            ))),
            (Backend::Sqlite, None) => {
                let path = std::env::temp_dir().join(format!("wrap-bench-{}.db", Uuid::now_v7()));
                Ok(Self {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    scratch_file: Some(path),
                    scratch_database: false,
                })
            }
            (Backend::Postgres, None) => {
                // The server of WRAP_TEST_POSTGRES_URL, but a fresh database of our own on it,
                // dropped afterwards: every run starts from the same empty state.
                let name = format!("wrap_bench_{}", Uuid::now_v7().simple());
                let base = std::env::var("WRAP_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
                let url = crate::db::with_database(&base, &name).ok_or_else(|| {
                    Error::Usage(format!(
                        "cannot read a database name in {}",
                        redact_url(&base)
                    ))
                })?;
                crate::db::create_postgres_database_if_missing(&url).await?;
                Ok(Self {
                    url,
                    scratch_file: None,
                    scratch_database: true,
                })
            }
        }
    }
}

async fn run_on(args: &LedgerBenchArgs, url: &str) -> Result<(), Error> {
    tracing::info!(database = %redact_url(url), "bench: preparing");
    let db = crate::db::connect(url).await?;
    Migrator::up(&db, None).await?;
    let ledger = Ledger::new(db.clone());
    let book = Book::create(&ledger).await?;
    warm_up(&ledger, &book, &db).await?;
    let scenarios = match args.scenario {
        Scenario::All => vec![Scenario::Single, Scenario::Batch, Scenario::Hot],
        one => vec![one],
    };
    for scenario in scenarios {
        let entries = args.entries.unwrap_or(match scenario {
            Scenario::Batch => 200_000,
            _ => 40_000,
        });
        tracing::info!(scenario = scenario.as_str(), entries, "bench: posting");
        let elapsed = match scenario {
            Scenario::Batch => post_batches(&ledger, &book, 0, entries).await?,
            _ => post_concurrently(&ledger, &book, scenario, entries).await?,
        };
        let result = BenchResult::new(scenario, args.backend, entries, elapsed);
        println!(
            "{}",
            serde_json::to_string(&result).map_err(|e| Error::Other(e.to_string()))?
        );
    }
    drop(ledger);
    let _ = db.close().await;
    Ok(())
}

/// Entries posted before measuring, so the books are not empty.
const WARM_UP_ENTRIES: u64 = 20_000;

/// Brings the books to a steady state before anything is measured: some entries already in,
/// and (on PostgreSQL) planner statistics that know it, as autovacuum keeps them on a production
/// server. Without this, a server with autovacuum off (as on the CI machine) plans lookups
/// against tables it believes empty and caches those plans, and posting slows down as the
/// tables grow (see docs/BENCHMARKS.md).
async fn warm_up(
    ledger: &Ledger,
    book: &Book,
    db: &sea_orm::DatabaseConnection,
) -> Result<(), Error> {
    use sea_orm::ConnectionTrait as _;
    let started = Instant::now();
    // Numbered far above any scenario's entries, so their idempotency keys never meet.
    post_batches(ledger, book, 1 << 40, WARM_UP_ENTRIES).await?;
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.execute_unprepared("ANALYZE").await?;
    }
    tracing::info!(
        entries = WARM_UP_ENTRIES,
        ms = started.elapsed().as_millis(),
        "bench: warmed up"
    );
    Ok(())
}

/// The tenant and accounts the scenarios post to.
#[derive(Debug)]
struct Book {
    tenant_id: Uuid,
    run_id: Uuid,
    accounts: Vec<Uuid>,
    fees: Uuid,
    date: NaiveDate,
}

impl Book {
    async fn create(ledger: &Ledger) -> Result<Arc<Self>, Error> {
        let tenant_id = Uuid::now_v7();
        ledger.create_asset(&Asset::currency(ASSET, 0)).await?;
        let started = Instant::now();
        let new_account = |code: String| NewAccount {
            tenant_id,
            code,
            asset: ASSET.to_owned(),
            normal_side: Side::Debit,
            no_negative: false,
            metadata: serde_json::json!({}),
        };
        let accounts: Vec<Uuid> = futures::stream::iter(0..ACCOUNTS)
            .map(|n| {
                let account = new_account(format!("bench:{n}"));
                async move { ledger.create_account(&account).await.map(|a| a.id) }
            })
            .buffer_unordered(SETUP_CONCURRENCY)
            .try_collect()
            .await?;
        let fees = ledger
            .create_account(&new_account("fees".to_owned()))
            .await?
            .id;
        tracing::info!(accounts = accounts.len() + 1, ms = started.elapsed().as_millis(), %tenant_id, "bench: accounts created");
        Ok(Arc::new(Self {
            tenant_id,
            run_id: Uuid::now_v7(),
            accounts,
            fees,
            date: Utc::now().date_naive(),
        }))
    }

    /// Entry number `n` of `scenario`, with accounts and amount drawn from `rng`.
    fn entry(&self, scenario: Scenario, n: u64, rng: &mut XorShift) -> NewEntry {
        let count = self.accounts.len() as u64;
        let a = rng.below(count);
        let mut b = rng.below(count - 1);
        if b >= a {
            b += 1;
        }
        let (from, to) = (self.account(a), self.account(b));
        let amount = Decimal::from(1 + rng.below(1_000));
        let postings = match scenario {
            Scenario::Hot => vec![
                NewPosting::debit(from, ASSET, amount + Decimal::ONE),
                NewPosting::credit(to, ASSET, amount),
                NewPosting::credit(self.fees, ASSET, Decimal::ONE),
            ],
            _ => vec![
                NewPosting::debit(from, ASSET, amount),
                NewPosting::credit(to, ASSET, amount),
            ],
        };
        NewEntry {
            tenant_id: self.tenant_id,
            idempotency_key: format!("bench:{}:{}:{n}", scenario.as_str(), self.run_id),
            kind: "transfer".to_owned(),
            effective_date: self.date,
            description: String::new(),
            metadata: serde_json::json!({}),
            postings,
            hold: None,
        }
    }

    fn account(&self, index: u64) -> Uuid {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.accounts.get(i))
            .copied()
            .unwrap_or(self.fees)
    }
}

/// `single` and `hot`: [`WRITERS`] tasks, entry `n` going to task `n % WRITERS`.
async fn post_concurrently(
    ledger: &Ledger,
    book: &Arc<Book>,
    scenario: Scenario,
    entries: u64,
) -> Result<Duration, Error> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (ledger, book) = (ledger.clone(), Arc::clone(book));
        let mut rng = XorShift::seeded(&book.run_id, scenario, writer);
        tasks.push(tokio::spawn(async move {
            let mut n = writer;
            while n < entries {
                ledger.post_entry(book.entry(scenario, n, &mut rng)).await?;
                n += WRITERS;
            }
            Ok::<(), ledger::LedgerError>(())
        }));
    }
    for task in tasks {
        task.await
            .map_err(|e| Error::Other(format!("writer task failed: {e}")))??;
    }
    Ok(started.elapsed())
}

/// `batch`: sequential batches of [`BATCH_SIZE`].
/// Posts entries numbered `first..first + entries` in batches of [`BATCH_SIZE`].
async fn post_batches(
    ledger: &Ledger,
    book: &Book,
    first: u64,
    entries: u64,
) -> Result<Duration, Error> {
    let mut rng = XorShift::seeded(&book.run_id, Scenario::Batch, first);
    let started = Instant::now();
    let mut n = first;
    let last = first + entries;
    while n < last {
        let end = last.min(n + BATCH_SIZE);
        let batch: Vec<NewEntry> = (n..end)
            .map(|i| book.entry(Scenario::Batch, i, &mut rng))
            .collect();
        ledger.post_batch(batch).await?;
        n = end;
    }
    Ok(started.elapsed())
}

impl BenchResult {
    /// Statistics, not money: floats are fine here.
    #[allow(clippy::float_arithmetic)]
    fn new(scenario: Scenario, backend: Backend, entries: u64, elapsed: Duration) -> Self {
        let seconds = elapsed.as_secs_f64();
        let rate = if seconds > 0.0 {
            entries as f64 / seconds
        } else {
            0.0
        };
        Self {
            scenario: scenario.as_str(),
            backend: backend.as_str(),
            entries,
            seconds: (seconds * 1_000.0).round() / 1_000.0,
            entries_per_s: rate.round(),
            peak_rss_mib: peak_rss_kib().map(|kib| (kib as f64 / 1_024.0 * 10.0).round() / 10.0),
        }
    }
}

/// `VmHWM` of this process, KiB (Linux only).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// xorshift64: fast, reproducible, and plenty for spreading load (not for anything secret).
#[derive(Debug, Clone)]
pub(crate) struct XorShift(u64);

impl XorShift {
    /// A generator that depends on `seed` only (reproducible runs).
    pub(crate) fn from_seed(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn seeded(run_id: &Uuid, scenario: Scenario, stream: u64) -> Self {
        let (hi, lo) = run_id.as_u64_pair();
        let salt: u64 = match scenario {
            Scenario::Single => 1,
            Scenario::Batch => 2,
            Scenario::Hot => 3,
            Scenario::All => 4,
        };
        let seed = (hi
            ^ lo.rotate_left(17)
            ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
            | 1;
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform enough in `0..n` (n > 0) for load spreading.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_stays_in_range_and_varies() {
        let mut rng = XorShift::seeded(&Uuid::now_v7(), Scenario::Single, 3);
        let draws: Vec<u64> = (0..1_000).map(|_| rng.below(10)).collect();
        assert!(draws.iter().all(|&d| d < 10));
        assert!((0..10).all(|v| draws.contains(&v)));
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_kib().unwrap() > 0);
        }
    }
}
