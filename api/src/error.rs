//! Errors of the command line and start-up (HTTP errors are [`crate::problem::Problem`]).

use sea_orm::DbErr;

/// Why a command failed. Messages are written for the operator; none contains a password.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration could not be read or is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// Logging could not be set up.
    #[error("logging: {0}")]
    Logging(String),
    /// The database could not be reached (`url` is redacted).
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The database URL, password removed.
        url: String,
        /// The driver's error.
        source: DbErr,
    },
    /// The schema is behind the code.
    #[error(
        "{count} migration(s) pending on {url} ({names}); run `wrapd migrate up` first, \
         or set database.auto_migrate = true (WRAP__DATABASE__AUTO_MIGRATE=true)"
    )]
    PendingMigrations {
        /// How many.
        count: usize,
        /// Their names.
        names: String,
        /// The database URL, password removed.
        url: String,
    },
    /// The HTTP listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why not.
        source: std::io::Error,
    },
    /// A database statement failed.
    #[error("database: {0}")]
    Db(#[from] DbErr),
    /// The ledger refused or failed.
    #[error("ledger: {0}")]
    Ledger(#[from] ledger::LedgerError),
    /// A file or socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A command was used wrongly.
    #[error("{0}")]
    Usage(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
    /// End of day stopped to wait for fills of external instructions: not a failure, the
    /// date goes on when it is run again after the fills are in.
    #[error("{0}")]
    AwaitingFills(String),
    /// End of day is being run by another process (`wrapd eod` without `--wait`, or waited
    /// too long).
    #[error("{0}")]
    EodBusy(String),
}

impl Error {
    /// The process exit status for this error: [`crate::eod_cli::EXIT_AWAITING_FILLS`] when
    /// end of day waits for fills, [`crate::eod_cli::EXIT_BUSY`] when another process runs
    /// it, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::AwaitingFills(_) => crate::eod_cli::EXIT_AWAITING_FILLS,
            Self::EodBusy(_) => crate::eod_cli::EXIT_BUSY,
            _ => 1,
        }
    }
}
