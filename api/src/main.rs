//! `wrapd`: parse the command line, load the configuration, run.

use std::process::ExitCode;

use api::cli::Cli;
use api::settings::Settings;
use clap::Parser;

/// mimalloc rather than the system allocator: end of day allocates and frees millions of
/// small rows a step, and glibc's malloc spent a growing share of a day consolidating its
/// free lists as the book grew (docs/BENCHMARKS.md,
/// "Before: goals in batches, …, mimalloc").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = async {
        let settings = Settings::load(cli.database_url.as_deref())?;
        let telemetry = api::logging::init(&settings.log)?;
        let result = api::run(cli, settings).await;
        telemetry.shutdown().await;
        result
    };
    match result.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ api::error::Error::AwaitingFills(_)) => {
            eprintln!("wrapd: {e}");
            ExitCode::from(e.exit_code())
        }
        Err(e) => {
            eprintln!("wrapd: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
