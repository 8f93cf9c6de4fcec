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
//! | [`health`] | `/healthz`, `/readyz` |
//! | [`migrate`] | `wrapd migrate up|down|status` |
//! | [`bench`] | `wrapd bench ledger` |

// Money is exact (rust_decimal, integer minor units); floats appear only in benchmark
// statistics, where each use is allowed explicitly.
#![deny(clippy::float_arithmetic)]

pub mod bench;
pub mod cli;
pub mod db;
pub mod error;
pub mod health;
pub mod logging;
pub mod migrate;
pub mod problem;
pub mod server;
pub mod settings;

pub use error::Error;
pub use server::{AppState, build_server};
pub use settings::Settings;

use cli::{BenchTarget, Cli, Command};

/// Runs a parsed command line with loaded settings (`--database-url` already applied to
/// `settings`, logging already set up).
pub async fn run(cli: Cli, mut settings: Settings) -> Result<(), Error> {
    match cli.command {
        Command::Serve(args) => {
            if let Some(bind) = args.bind {
                settings.server.bind = bind;
            }
            server::serve(&settings).await
        }
        Command::Migrate { action } => migrate::run(&settings.database, action).await,
        // The benchmark never touches the configured database: only an explicit
        // --database-url, else a scratch database (see `bench`).
        Command::Bench {
            target: BenchTarget::Ledger(args),
        } => bench::run_ledger(&args, cli.database_url.as_deref()).await,
    }
}
