//! # wrapd
//!
//! The HTTP service and command line of the wrap platform. Handlers are thin: parse,
//! authorise, call the domain crates (`ledger`, `tenants`), map errors. Workflows that span
//! crates live next to, not inside, the handlers.
//!
//! | module | what |
//! |---|---|
//! | [`cli`] | the `wrapd` command line (clap) |
//! | [`settings`] | layered configuration: `deploy/config/default.toml`, `{WRAP_ENV}.toml`, `WRAP__SECTION__KEY` |
//! | [`logging`] | tracing setup, and [`logging::redact_url`] so no password reaches a log |
//! | [`db`] | connecting, migrating at start-up, creating and dropping PostgreSQL databases |
//! | [`server`] | the actix-web service: [`server::build_server`] and the route table |
//! | [`problem`] | RFC 9457 `application/problem+json` errors |
//! | [`middleware`] | request id, tracing span, metrics, and the 5xx body rule, for every request |
//! | [`extract`] | reading bodies, queries and paths, each failure a problem naming the field |
//! | [`auth`] | `POST /oauth/token`, `/.well-known/jwks.json`, signing keys, the bearer-token [`auth::Caller`] |
//! | [`auth_cache`] | verified tokens and client standings remembered per process, forgotten on a suspension or revocation |
//! | [`routes`] | the `/v1` resources: [`routes::tenants`] (tenants and clients), [`routes::ledger`] (reads), [`routes::users`] (console users) |
//! | [`onboarding`] | opening a tenant with its standard ledger accounts (spans `tenants` and `ledger`) |
//! | [`audit`] | the append-only audit log and `/v1/audit` |
//! | [`console`] | the people's screens under `/console`: sign-in, sessions, CSRF, server-rendered pages |
//! | [`metrics`] | `/metrics` (Prometheus) |
//! | [`openapi`] | `/v1/openapi.json` and `/docs` |
//! | [`bootstrap`] | `wrapd bootstrap`: the platform tenant and its first admin client |
//! | [`health`] | `/healthz`, `/readyz` |
//! | [`idempotency`] | `Idempotency-Key`: the first answer to a money-moving POST, replayed for retries |
//! | [`migrate`] | `wrapd migrate up|down|status` |
//! | [`money`] | moving customers' money: deposits, withdrawals, contributions, as balanced entries in the request's transaction |
//! | [`eod`] | end of day: `wrapd eod`, the steps (plans, valuation, checks), checkpoints and date rules |
//! | [`verify`] | `wrapd verify`: every tenant's hash chain, trial balance and reconciliation |
//! | [`backup`] | `wrapd backup --to FILE`: an online copy of an SQLite database |
//! | [`bench`] | `wrapd bench ledger` (posting throughput), `wrapd bench fixture` (data for the HTTP load test) |
//! | [`bench_eod`] | `wrapd bench eod` (end of day over a synthetic book of N wraps) |
//! | [`webhooks`] | the webhook delivery worker: claims due deliveries, signs (Standard Webhooks), records each attempt |
//! | [`relay`] | the optional relay of the events outbox to NATS JetStream (`[nats]`) |
//! | [`background`] | the loops `wrapd serve` starts (webhook worker, relay), stopped with the server |

// Money is exact (rust_decimal, integer minor units); floats appear only in benchmark
// statistics, where each use is allowed explicitly.
#![deny(clippy::float_arithmetic)]
// `Problem` (about 170 bytes) is the error of every handler and extractor. Errors are the
// rare path and are turned into a response at once; boxing them would buy nothing.
#![allow(clippy::result_large_err)]

pub mod audit;
pub mod auth;
pub mod auth_cache;
pub mod background;
pub mod backup;
pub mod bench;
pub mod bench_eod;
pub mod bench_goals;
pub mod book;
pub mod bootstrap;
pub mod cli;
pub mod console;
pub mod db;
pub mod demo;
pub mod eod_cli;
pub mod error;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod logging;
pub mod metrics;
pub mod middleware;
pub mod migrate;
pub mod money;
pub mod onboarding;
pub mod openapi;
pub mod problem;
pub mod rate_limit;
pub mod relay;
pub mod routes;
pub mod server;
pub mod settings;
pub mod verify;
pub mod webhooks;

pub use error::Error;
pub use server::{AppState, build_server};
pub use settings::Settings;

use cli::{BenchTarget, Cli, Command};

/// Runs a parsed command line with loaded settings (`--database-url` already applied to
/// `settings`, logging already set up).
pub async fn run(cli: Cli, mut settings: Settings) -> Result<(), Error> {
    if let Some(start) = &cli.simulated_start {
        settings.clock.simulated_start = start.clone();
    }
    if let wraps::clock::Clock::Simulated { start } = settings.clock()? {
        tracing::warn!(
            %start,
            "SIMULATED CLOCK: business dates start at {start} and follow end of day, not the \
             calendar; never use it with real money"
        );
    }
    match cli.command {
        Command::Serve(args) => {
            if let Some(bind) = args.bind {
                settings.server.bind = bind;
            }
            server::serve(&settings).await
        }
        Command::Migrate { action } => migrate::run(&settings.database, action).await,
        Command::Bootstrap(args) => bootstrap::run(&settings, &args).await,
        Command::Eod(args) => eod_cli::run(&settings, &args).await,
        Command::Demo(args) => demo::run(&settings, &args).await,
        Command::Verify(args) => verify::run(&settings.database, &args).await,
        Command::Backup(args) => backup::run(&settings.database, &args).await,
        Command::Openapi => {
            let doc = serde_json::to_string_pretty(&openapi::document())
                .map_err(|e| Error::Other(format!("the OpenAPI document: {e}")))?;
            println!("{doc}");
            Ok(())
        }
        // The benchmark never touches the configured database: only an explicit
        // --database-url, else a scratch database (see `bench`).
        Command::Bench { target } => match target {
            BenchTarget::Ledger(args) => {
                bench::run_ledger(&args, cli.database_url.as_deref()).await
            }
            BenchTarget::Fixture(args) => {
                bench::run_fixture(&args, cli.database_url.as_deref()).await
            }
            BenchTarget::Eod(args) => bench_eod::run(&args, cli.database_url.as_deref()).await,
            BenchTarget::Goals(args) => bench_goals::run(&args),
        },
    }
}
