//! `wrapd`: parse the command line, load the configuration, run.

use std::process::ExitCode;

use api::cli::Cli;
use api::settings::Settings;
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = async {
        let settings = Settings::load(cli.database_url.as_deref())?;
        api::logging::init(&settings.log)?;
        api::run(cli, settings).await
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
