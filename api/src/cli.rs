//! The `wrapd` command line.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// wrapd: the fund-wrap platform service.
#[derive(Debug, Parser)]
#[command(name = "wrapd", version, about, propagate_version = true)]
pub struct Cli {
    /// Database URL for this command, over config and WRAP__DATABASE__URL
    /// (sqlite://PATH?mode=rwc or postgres://USER:PASSWORD@HOST:PORT/DB).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// Run on a simulated business clock starting at DATE (YYYY-MM-DD), over config
    /// `clock.simulated_start`: for demos, benchmarks and tests; refused in production.
    #[arg(long, global = true, value_name = "DATE")]
    pub simulated_start: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (migrates an embedded SQLite database on start).
    Serve(ServeArgs),
    /// Apply, roll back or list schema migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Create the platform tenant and its first admin client; prints the secret once.
    /// Refuses when a platform tenant exists already.
    Bootstrap(BootstrapArgs),
    /// Run end of day for a date, or every date from --date to --to, in order. Dates run
    /// strictly in order with no gaps; a finished date is left alone (and says so). Exits 0
    /// when the dates finished, 3 when a date waits for the fills of external instructions
    /// (run it again once they are in), 1 when a date is refused or its checks fail.
    Eod(EodArgs),
    /// Seed a platform with two distributors, two managers, five strategies and thousands of
    /// customers on the configured (empty) database, run a year of end of day, and print AUM,
    /// the fee split, a customer's statement and goals; `wrapd serve` then serves it all.
    Demo(DemoArgs),
    /// Check the books of every tenant: the hash chain of its journal, its trial balance, and
    /// (for a distributor) the virtual layer against the omnibus. Prints one line per tenant
    /// (or one JSON object with --json); exits 0 when every book holds, 1 on any break or
    /// when the check could not run. Reads only.
    Verify(VerifyArgs),
    /// Copy the embedded SQLite database, online and consistent, to a new file (SQLite's
    /// `VACUUM INTO`); refuses an existing file. PostgreSQL is backed up with its own tools
    /// (pg_dump, or base backups with WAL archiving): docs/OPERATIONS.md.
    Backup(BackupArgs),
    /// Print the OpenAPI 3.1 document (the one served at /v1/openapi.json) to standard output,
    /// for validators and client generators.
    Openapi,
    /// Measure throughput.
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
}

/// `wrapd serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, over config `server.bind` (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
}

/// `wrapd bootstrap`.
#[derive(Debug, Clone, Args)]
pub struct BootstrapArgs {
    /// Print one JSON object (`tenant_id`, `client_id`, `client_secret`) instead of text.
    #[arg(long)]
    pub json: bool,
    /// The platform tenant's name.
    #[arg(long, default_value = "platform")]
    pub name: String,
    /// The name shown to users (white label).
    #[arg(long, default_value = "Wrap Platform")]
    pub display_name: String,
    /// Where the platform's operations team is reached.
    #[arg(long, default_value = "operations@wrap.example")]
    pub contact_email: String,
}

/// `wrapd eod`.
#[derive(Debug, Clone, Args)]
pub struct EodArgs {
    /// The (first) business date to run, YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub date: chrono::NaiveDate,
    /// The last date to run (inclusive); every calendar day in between is run.
    #[arg(long, value_name = "DATE")]
    pub to: Option<chrono::NaiveDate>,
    /// When another process runs end of day, wait up to this many seconds for it to finish
    /// (then dates it finished are reported as already finished) instead of exiting with
    /// status 4 at once.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub wait: u64,
}

/// `wrapd verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Print one JSON object (`ok`, and per tenant what was checked and what broke) instead
    /// of text.
    #[arg(long)]
    pub json: bool,
}

/// `wrapd backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// The file to write; it must not exist yet (a backup never overwrites).
    #[arg(long, value_name = "FILE")]
    pub to: std::path::PathBuf,
}

/// `wrapd demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Wraps to create (customers hold one to four each, 1.55 on average). The default, about
    /// 2,000 customers, took 1 min 43 s on two cores (2026-12-06; the same machine has been up
    /// to 2.4 times slower); end of day costs about 0.09 ms per wrap and day on SQLite at 3,100
    /// wraps (docs/BENCHMARKS.md, "The demo").
    #[arg(long, default_value_t = 3100)]
    pub wraps: u64,
    /// Seed of the synthetic book and prices (the same seed, the same book).
    #[arg(long, default_value_t = 2025)]
    pub seed: u64,
}

/// `wrapd migrate ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the last applied migration.
    Down,
    /// List every migration as applied or pending.
    Status,
}

/// `wrapd bench ...`.
#[derive(Debug, Subcommand)]
pub enum BenchTarget {
    /// Posting throughput of the ledger; prints one JSON line per scenario.
    Ledger(LedgerBenchArgs),
    /// End of day over a synthetic book of N wraps; prints one JSON line per day run
    /// (`wraps`, `backend`, `day_kind`, `date`, `seconds`, `peak_rss_mib`, `steps_ms`).
    ///
    /// Builds the book first (not timed): 5 distributors, 4 managers, 20 strategies of 4-8
    /// instruments, customers with 1-4 wraps holding cash and units, monthly contribution
    /// plans, daily price moves. Then runs end of day (every step `wrapd eod` runs) on an
    /// ordinary day (2027-09-28, 2027-09-29) and a month-end day (2027-09-30).
    Eod(EodBenchArgs),
    /// The goal simulation alone (no database): drawing a strategy's matrix of growth factors
    /// and simulating wraps over it, on one thread and on several; prints one JSON line.
    Goals(GoalsBenchArgs),
    /// Test data for an HTTP load test of `GET /v1/ledger/accounts/{id}` (deploy/bench/http.sh).
    ///
    /// Needs --database-url (never the configured database). Migrates it, then creates a
    /// distributor tenant `bench-<id>`, a viewer API client of it, the JPY asset, a cash
    /// account (debit-normal) and a credit-normal account, and 100 balanced entries between
    /// them. Prints one JSON line: `{"tenant_id","client_id","client_secret","account_id"}`
    /// (`account_id` is the cash account; the secret is shown only here).
    ///
    /// With --customers N (deploy/bench/mixed.sh): instead, D distributors
    /// (--distributors), each with an operator client and N customers whose cash accounts
    /// hold ¥10,000,000 from one deposit each. Prints one JSON line:
    /// `{"distributors":[{"tenant_id","client_id","client_secret","customers":[{"customer_id","account_id"}]}]}`.
    Fixture(FixtureArgs),
}

/// `wrapd bench fixture`.
#[derive(Debug, Clone, Args)]
pub struct FixtureArgs {
    /// Customers per distributor for the mixed load test (1 to 100,000); without it, the
    /// read-only fixture of deploy/bench/http.sh.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub customers: Option<u32>,
    /// Distributors the customers belong to (1 to 100; with --customers).
    #[arg(long, value_name = "D", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub distributors: u32,
}

/// `wrapd bench ledger`.
#[derive(Debug, Clone, Args)]
pub struct LedgerBenchArgs {
    /// Database kind. Without --database-url: sqlite uses a fresh file in the temp directory
    /// (removed afterwards); postgres creates a fresh database `wrap_bench_<id>` on the server of
    /// WRAP_TEST_POSTGRES_URL (else postgres://postgres@127.0.0.1:5432) and drops it afterwards,
    /// also when stopped by Ctrl-C or SIGTERM.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    pub backend: Backend,
    /// Which workload to run.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    pub scenario: Scenario,
    /// Entries per scenario (default 40000 for single and hot, 200000 for batch).
    #[arg(long, value_name = "N")]
    pub entries: Option<u64>,
}

/// `wrapd bench eod`.
#[derive(Debug, Clone, Args)]
pub struct EodBenchArgs {
    /// Wraps in the synthetic book (1 to 10,000,000).
    #[arg(long, value_name = "N")]
    pub wraps: u64,
    /// Database kind; without --database-url a scratch database, as for `bench ledger`.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    pub backend: Backend,
    /// Which days to time, comma-separated. The days between the first and the last are
    /// run too (end of day runs dates with no gaps).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [DayKind::Ordinary, DayKind::MonthEnd])]
    pub days: Vec<DayKind>,
    /// Seed of the book's random amounts, prices and plans (same seed, same book).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `wrapd bench goals`.
#[derive(Debug, Clone, Args)]
pub struct GoalsBenchArgs {
    /// Wraps to simulate (1 to 1,000,000), every one with 10,000 paths.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub wraps: u64,
    /// Months to each wrap's target date (1 to 720).
    #[arg(long, value_name = "M", default_value_t = 120)]
    pub months: u32,
    /// Threads for the shared run (default: the machine's cores).
    #[arg(long, value_name = "T")]
    pub threads: Option<usize>,
}

/// A kind of day for `wrapd bench eod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DayKind {
    /// Trades, valuation, accrual, returns (2027-09-28 and 2027-09-29).
    Ordinary,
    /// An ordinary day plus billing (2027-09-30, a month and quarter end).
    MonthEnd,
}

/// Database kind for the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// SQLite (embedded).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// The name printed in results.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// Benchmark workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// 8 concurrent writers, one two-posting entry per call.
    Single,
    /// Sequential batches of 1,000 entries.
    Batch,
    /// Like single, but every entry also credits one shared fees account.
    Hot,
    /// single, batch and hot in turn.
    All,
}

impl Scenario {
    /// The name printed in results.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Batch => "batch",
            Self::Hot => "hot",
            Self::All => "all",
        }
    }
}
