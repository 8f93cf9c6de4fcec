//! End of day across processes: the run is claimed in the database, so any number of
//! `wrapd serve` replicas and `wrapd eod` processes can be started at once and exactly one of
//! them does the work; the others are refused ([`EodError::InProgress`]: the API answers 409,
//! `wrapd eod --wait N` waits up to N seconds and then finds the dates finished).
//!
//! A claim has two parts:
//! * **a lock that the holder's death releases at once**, so a crashed runner never blocks the
//!   next one: on PostgreSQL a transaction-level advisory lock (`pg_try_advisory_xact_lock`)
//!   taken in a transaction that the claim keeps open for the whole run (its connection
//!   closing, for whatever reason, ends it); on SQLite, whose database is one file on one
//!   machine, an exclusive lock on the file `<database>.eod-lock` beside it, which the
//!   operating system releases with the process. An in-memory SQLite database is one process's
//!   own, and the in-process [`super::RunLock`] is all it needs.
//! * **a fencing token**: claiming increments `eod_lease.token`, and every write transaction
//!   of the run starts with [`Claim::fence`], an `UPDATE eod_lease … WHERE token = <ours>`
//!   that must find the row. If the lock is lost while the runner still runs (its connection
//!   dropped), a new claimer bumps the token and the old runner's next transaction fails
//!   before it writes anything ([`EodError::ClaimLost`]). On PostgreSQL the row lock that the
//!   fence takes also makes a new claim wait until the step in flight ends, so every step
//!   (its work picked up, done and checkpointed in one transaction) is wholly one runner's.
//!
//! Tried by `api/tests/http/eod_claim.rs` (two `wrapd eod` processes on the same dates: each
//! trade booked once; a second claim refused while the first is held; a fence after a
//! takeover fails) on both databases.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use chrono::Utc;
use ledger::sql::{Params, exec, get, micros, query};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, TransactionTrait,
};

use super::EodError;

/// The advisory lock key of end of day on PostgreSQL (the bytes of "wrap eod").
const ADVISORY_KEY: i64 = 0x7772_6170_2065_6f64;

/// A held claim on end of day. Dropping it releases the lock (the PostgreSQL transaction rolls
/// back, the SQLite lock file is closed); the token stays, so a stale holder stays fenced out.
#[derive(Debug)]
pub struct Claim {
    token: i64,
    /// Keeps the advisory lock (PostgreSQL).
    _session: Option<DatabaseTransaction>,
    /// Keeps the file lock (SQLite on a file).
    _file: Option<File>,
}

/// The lock file of a SQLite database URL (`sqlite://path?mode=rwc` → `path.eod-lock`); none
/// for another backend or an in-memory database.
pub fn sqlite_lock_file(url: &str) -> Option<PathBuf> {
    let mut path = ledger::store::sqlite_path(url)?.into_os_string();
    path.push(".eod-lock");
    Some(PathBuf::from(path))
}

impl Claim {
    /// Claims end of day for `holder` (who, for the lease row), or [`EodError::InProgress`]
    /// when another live runner holds it.
    pub async fn acquire(
        db: &DatabaseConnection,
        lock_file: Option<&Path>,
        holder: &str,
    ) -> Result<Self, EodError> {
        let backend = db.get_database_backend();
        let (session, file) = match backend {
            DbBackend::Postgres => {
                let txn = db.begin().await?;
                let rows = query(
                    &txn,
                    format!("SELECT pg_try_advisory_xact_lock({ADVISORY_KEY})"),
                    vec![],
                )
                .await?;
                let held = rows.first().map(|r| get::<bool>(r, 0)).transpose()?;
                if held != Some(true) {
                    return Err(EodError::InProgress);
                }
                (Some(txn), None)
            }
            _ => match lock_file {
                Some(path) => (None, Some(lock(path)?)),
                None => (None, None),
            },
        };
        let txn = ledger::begin_write(db).await?;
        let mut pa = Params::new(backend);
        let q = format!(
            "UPDATE eod_lease SET token = token + 1, holder = {}, claimed_at = {} WHERE name = 'eod'",
            pa.push(holder.to_owned()),
            pa.push(micros(Utc::now()))
        );
        exec(&txn, q, pa.values).await?;
        let rows = query(
            &txn,
            "SELECT token FROM eod_lease WHERE name = 'eod'".to_owned(),
            vec![],
        )
        .await?;
        let token = rows
            .first()
            .map(|r| get::<i64>(r, 0))
            .transpose()?
            .ok_or_else(|| EodError::Db(sea_orm::DbErr::Custom("eod_lease has no row".into())))?;
        txn.commit().await?;
        Ok(Self {
            token,
            _session: session,
            _file: file,
        })
    }

    /// Checks, inside `txn` and before it writes, that this claim is still the latest one
    /// (and, on PostgreSQL, holds the lease row until `txn` ends).
    pub async fn fence(&self, txn: &DatabaseTransaction) -> Result<(), EodError> {
        let mut pa = Params::new(txn.get_database_backend());
        let q = format!(
            "UPDATE eod_lease SET fenced_at = {} WHERE name = 'eod' AND token = {}",
            pa.push(micros(Utc::now())),
            pa.push(self.token)
        );
        if exec(txn, q, pa.values).await? == 1 {
            Ok(())
        } else {
            Err(EodError::ClaimLost)
        }
    }

    /// Releases the lock now: rolls back the transaction that holds the advisory lock
    /// (PostgreSQL), closes the lock file (SQLite).
    pub async fn release(self) {
        if let Some(session) = self._session
            && let Err(e) = session.rollback().await
        {
            // The connection is gone, and the lock with it.
            tracing::warn!(error = %e, "eod.claim_release");
        }
    }

    /// The fencing token of this claim.
    pub fn token(&self) -> i64 {
        self.token
    }
}

/// An exclusive lock on `path` (created if missing), or [`EodError::InProgress`].
fn lock(path: &Path) -> Result<File, EodError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| EodError::LockFile(format!("{}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(EodError::InProgress),
        Err(TryLockError::Error(e)) => Err(EodError::LockFile(format!("{}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_sits_beside_a_sqlite_file() {
        assert_eq!(
            sqlite_lock_file("sqlite://data/wrap.db?mode=rwc"),
            Some(PathBuf::from("data/wrap.db.eod-lock"))
        );
        assert_eq!(
            sqlite_lock_file("sqlite:/tmp/x.db"),
            Some(PathBuf::from("/tmp/x.db.eod-lock"))
        );
        assert_eq!(sqlite_lock_file("sqlite::memory:"), None);
        assert_eq!(sqlite_lock_file("postgres://u@h/db"), None);
    }

    #[test]
    fn a_second_file_lock_is_refused_until_the_first_is_closed() {
        let path = std::env::temp_dir().join(format!("eod-claim-{}.lock", uuid::Uuid::now_v7()));
        let first = lock(&path).unwrap();
        assert!(matches!(lock(&path), Err(EodError::InProgress)));
        drop(first);
        assert!(lock(&path).is_ok());
        let _ = std::fs::remove_file(&path);
    }
}
