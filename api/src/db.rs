//! Connecting, migrating at start-up, and PostgreSQL database housekeeping.

use std::path::{Path, PathBuf};
use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
};

use crate::error::Error;
use crate::logging::redact_url;
use crate::settings::DatabaseSettings;

/// Whether `url` names an SQLite database.
pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

pub use ledger::store::sqlite_path;

/// Opens a pool on `url` ([`ledger::connect`]: WAL and a busy timeout on SQLite), first
/// creating the directory of an SQLite file.
pub async fn connect(url: &str) -> Result<DatabaseConnection, Error> {
    connect_with(url, None).await
}

/// [`connect`] with a PostgreSQL statement timeout on every connection
/// ([`ledger::connect_with`]; `[database] statement_timeout_seconds`).
pub async fn connect_with(
    url: &str,
    statement_timeout: Option<std::time::Duration>,
) -> Result<DatabaseConnection, Error> {
    if let Some(path) = sqlite_path(url)
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Other(format!(
                "cannot create the directory {} for {}: {e}",
                dir.display(),
                redact_url(url)
            ))
        })?;
    }
    ledger::connect_with(url, statement_timeout)
        .await
        .map_err(|source| Error::Connect {
            url: redact_url(url),
            source,
        })
}

/// The start-up rule of `wrapd serve`: SQLite (embedded) is always migrated; PostgreSQL only
/// with `database.auto_migrate`, and otherwise must have no pending migration.
pub async fn prepare(db: &DatabaseConnection, settings: &DatabaseSettings) -> Result<(), Error> {
    if is_sqlite(&settings.url) || settings.auto_migrate {
        let pending = pending_names(db).await?;
        if !pending.is_empty() {
            tracing::info!(migrations = %pending.join(","), "applying pending migrations");
        }
        Migrator::up(db, None).await?;
        return Ok(());
    }
    let pending = pending_names(db).await?;
    if pending.is_empty() {
        Ok(())
    } else {
        Err(Error::PendingMigrations {
            count: pending.len(),
            names: pending.join(", "),
            url: redact_url(&settings.url),
        })
    }
}

/// Names of the migrations not yet applied (reads only: creates no table).
pub async fn pending_names(db: &DatabaseConnection) -> Result<Vec<String>, Error> {
    Ok(Migrator::get_pending_migrations_read_only(db)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect())
}

/// `SELECT 1`: is the database answering?
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// The database name in a PostgreSQL URL.
pub fn postgres_database(url: &str) -> Option<String> {
    let (_, path, _) = split_postgres(url)?;
    Some(path.to_owned()).filter(|p| !p.is_empty())
}

/// The same PostgreSQL URL naming database `name` instead.
pub fn with_database(url: &str, name: &str) -> Option<String> {
    let (base, _, query) = split_postgres(url)?;
    Some(format!("{base}/{name}{query}"))
}

/// `(scheme://userinfo@host:port, database, ?query)`.
fn split_postgres(url: &str) -> Option<(&str, &str, &str)> {
    if !is_postgres(url) {
        return None;
    }
    let query_at = url.find('?').unwrap_or(url.len());
    let (before_query, query) = url.split_at(query_at);
    let scheme_end = before_query.find("://")? + 3;
    // The host starts after the last '@' (a password may hold '/'); the path after the host.
    let host_start = before_query[scheme_end..]
        .rfind('@')
        .map_or(scheme_end, |at| scheme_end + at + 1);
    match before_query[host_start..].find('/') {
        Some(slash) => {
            let slash = host_start + slash;
            Some((&before_query[..slash], &before_query[slash + 1..], query))
        }
        None => Some((before_query, "", query)),
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Runs `f` on a connection to the `postgres` maintenance database of `url`'s server.
async fn with_maintenance<T>(
    url: &str,
    f: impl AsyncFnOnce(&DatabaseConnection) -> Result<T, DbErr>,
) -> Result<T, Error> {
    let admin_url = with_database(url, "postgres")
        .ok_or_else(|| Error::Usage(format!("{} is not a PostgreSQL URL", redact_url(url))))?;
    let mut options = ConnectOptions::new(admin_url.as_str());
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    let admin = Database::connect(options)
        .await
        .map_err(|source| Error::Connect {
            url: redact_url(&admin_url),
            source,
        })?;
    let result = f(&admin).await;
    let _ = admin.close().await;
    Ok(result?)
}

/// Creates the database `url` names unless it exists; true when it was created.
pub async fn create_postgres_database_if_missing(url: &str) -> Result<bool, Error> {
    let name = postgres_database(url)
        .ok_or_else(|| Error::Usage(format!("{} names no database", redact_url(url))))?;
    with_maintenance(url, async |admin| {
        let exists = admin
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 FROM pg_database WHERE datname = $1",
                [name.clone().into()],
            ))
            .await?
            .is_some();
        if exists {
            return Ok(false);
        }
        match admin
            .execute_unprepared(&format!("CREATE DATABASE {}", quote_ident(&name)))
            .await
        {
            Ok(_) => Ok(true),
            // Created meanwhile by someone else (42P04 duplicate_database): fine.
            Err(e) if e.to_string().contains("already exists") => Ok(false),
            Err(e) => Err(e),
        }
    })
    .await
}

/// Drops the database `url` names, disconnecting its sessions (PostgreSQL 13+).
pub async fn drop_postgres_database(url: &str) -> Result<(), Error> {
    let name = postgres_database(url)
        .ok_or_else(|| Error::Usage(format!("{} names no database", redact_url(url))))?;
    with_maintenance(url, async |admin| {
        admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&name)
            ))
            .await
            .map(|_| ())
    })
    .await
}

/// Removes an SQLite file and its WAL and shared-memory companions, ignoring missing ones.
pub fn remove_sqlite_files(path: &Path) {
    for suffix in ["", "-wal", "-shm", ".eod-lock"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://data/wrap.db?mode=rwc"),
            Some(PathBuf::from("data/wrap.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(sqlite_path("sqlite:x.db"), Some(PathBuf::from("x.db")));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }

    #[test]
    fn postgres_database_names() {
        let url = "postgres://u:p/w@h:5432/wrap?sslmode=disable";
        assert_eq!(postgres_database(url).as_deref(), Some("wrap"));
        assert_eq!(
            with_database(url, "other").as_deref(),
            Some("postgres://u:p/w@h:5432/other?sslmode=disable")
        );
        assert_eq!(
            with_database("postgres://h", "x").as_deref(),
            Some("postgres://h/x")
        );
        assert_eq!(postgres_database("postgres://h"), None);
        assert_eq!(with_database("sqlite://x.db", "x"), None);
    }
}
