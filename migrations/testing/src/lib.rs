//! Test databases: each test gets a database of its own, created here and removed when its
//! guard is dropped, so no test shares state with another and none needs to run alone. Each
//! is a copy of one migrated per test process ([`fresh`]).
//!
//! It exists so that the ledger's, the tenants' and the API's tests make and remove their
//! databases one way: an SQLite file in a scratch directory of its own (the directory goes
//! with its `-wal`, `-shm` and end-of-day lock files), and, when `WRAP_TEST_POSTGRES_URL`
//! names a PostgreSQL server where the user may create databases, a `wrap_test_…` database
//! on it, dropped `WITH (FORCE)` afterwards.
//!
//! A dev-dependency only, and it must never depend on a domain crate: `ledger`'s own tests
//! use it, and a `testing → ledger` edge would link a second copy of `ledger` into them.
//! So the caller passes its connect function (`ledger::connect`, `api::db::connect`), and
//! every test keeps the connection settings (SQLite pragmas, pool sizes) the platform uses.

use std::fmt::Debug;
use std::path::PathBuf;
use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use uuid::Uuid;

/// The environment variable naming the PostgreSQL server (an admin URL) tests may use.
pub const POSTGRES_URL_VAR: &str = "WRAP_TEST_POSTGRES_URL";

/// Whether PostgreSQL tests run: `WRAP_TEST_POSTGRES_URL` is set and not empty.
pub fn has_postgres() -> bool {
    postgres_admin_url().is_some()
}

/// The backends to run on: `sqlite` always, `postgres` when [`has_postgres`].
pub fn backends() -> Vec<&'static str> {
    let mut backends = vec!["sqlite"];
    if has_postgres() {
        backends.push("postgres");
    }
    backends
}

fn postgres_admin_url() -> Option<String> {
    std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|url| !url.is_empty())
}

/// A fresh database, migrated with [`Migrator`], and a pool on it opened by the caller's
/// `connect`. Removed when dropped.
#[derive(Debug)]
pub struct TestDb {
    /// Declared first: the pool is dropped before the database is removed.
    pub db: DatabaseConnection,
    /// `sqlite` or `postgres`.
    pub name: &'static str,
    pub url: String,
    /// Held for its `Drop`, which removes the database.
    _place: Place,
}

/// A fresh database on `backend` (`sqlite` or `postgres`), connected with `connect` and
/// migrated. Panics when it cannot be made: the test cannot run without it.
///
/// It is a copy of a template this process migrated once (an SQLite file copied; on
/// PostgreSQL `CREATE DATABASE … TEMPLATE`), then checked with [`Migrator::up`], which finds
/// nothing pending. Migrating each test's database from nothing took about a second on
/// PostgreSQL, a large part of the suites' time; a copy takes a tenth of that.
pub async fn fresh<E: Debug>(
    backend: &'static str,
    connect: impl AsyncFn(&str) -> Result<DatabaseConnection, E>,
) -> TestDb {
    let empty = match backend {
        "sqlite" => {
            let template = SQLITE_TEMPLATE
                .get_or_init(|| sqlite_template(&connect))
                .await;
            let empty = EmptyDb::create("sqlite").await;
            copy_sqlite(template, &empty.url);
            empty
        }
        "postgres" => {
            let admin_url =
                postgres_admin_url().unwrap_or_else(|| panic!("{POSTGRES_URL_VAR} is not set"));
            let template = POSTGRES_TEMPLATE
                .get_or_init(|| postgres_template(&admin_url, &connect))
                .await;
            EmptyDb::create_postgres_from(admin_url, template).await
        }
        other => panic!("unknown test backend {other:?} (sqlite or postgres)"),
    };
    migrated(empty, connect).await
}

/// This process's migrated SQLite file, copied by [`fresh`].
static SQLITE_TEMPLATE: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
/// This process's migrated PostgreSQL database, the template of [`fresh`]'s.
static POSTGRES_TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

/// The prefix of template names: `wrap_tmpl_<host>_<pid>_<random>`. A template outlives its
/// process (statics are not dropped), so each process removes those of this host whose
/// process has ended before it makes its own.
const TEMPLATE_PREFIX: &str = "wrap_tmpl_";

/// This host's name as a template name holds it: letters and digits, at most 12.
fn host_tag() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect::<String>()
        .to_ascii_lowercase()
}

fn template_name() -> String {
    let random = Uuid::now_v7().simple().to_string();
    format!(
        "{TEMPLATE_PREFIX}{}_{}_{}",
        host_tag(),
        std::process::id(),
        &random[random.len() - 8..]
    )
}

/// Whether `name` is a template of this host whose process has ended.
fn stale_template(name: &str) -> bool {
    let mut parts = name
        .strip_prefix(TEMPLATE_PREFIX)
        .unwrap_or_default()
        .split('_');
    let (host, pid) = (
        parts.next(),
        parts.next().and_then(|p| p.parse::<u32>().ok()),
    );
    match pid {
        Some(pid) if host == Some(host_tag().as_str()) => {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => false,
    }
}

async fn sqlite_template<E: Debug>(
    connect: &impl AsyncFn(&str) -> Result<DatabaseConnection, E>,
) -> PathBuf {
    let temp = std::env::temp_dir();
    if let Ok(dirs) = std::fs::read_dir(&temp) {
        for dir in dirs.flatten() {
            if stale_template(&dir.file_name().to_string_lossy()) {
                let _ = std::fs::remove_dir_all(dir.path());
            }
        }
    }
    let dir = temp.join(template_name());
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let file = dir.join("wrap.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let db = migrate_template(&url, connect).await;
    // Everything into the main file, so copying it alone copies the whole database.
    let _ = db
        .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
        .await;
    let _ = db.close().await;
    file
}

/// Copies the template file (and what is left of its journal) as the file of `url`.
fn copy_sqlite(template: &std::path::Path, url: &str) {
    let target = url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    for suffix in ["", "-wal"] {
        let from = PathBuf::from(format!("{}{suffix}", template.display()));
        if from.exists() {
            std::fs::copy(&from, format!("{target}{suffix}"))
                .unwrap_or_else(|e| panic!("cannot copy {}: {e}", from.display()));
        }
    }
}

async fn postgres_template<E: Debug>(
    admin_url: &str,
    connect: &impl AsyncFn(&str) -> Result<DatabaseConnection, E>,
) -> String {
    let admin = admin(admin_url).await;
    let names = admin
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("SELECT datname FROM pg_database WHERE datname LIKE '{TEMPLATE_PREFIX}%'"),
        ))
        .await
        .unwrap_or_default();
    for row in names {
        if let Ok(name) = row.try_get_by_index::<String>(0)
            && stale_template(&name)
        {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
    let _ = admin.close().await;
    let name = template_name();
    let empty =
        EmptyDb::create_postgres_named(admin_url.to_owned(), name.clone(), None, true).await;
    let db = migrate_template(&empty.url, connect).await;
    // No session may stay on a template while it is copied.
    let _ = db.close().await;
    // The template outlives this value: forget it rather than drop it.
    std::mem::forget(empty);
    name
}

async fn migrate_template<E: Debug>(
    url: &str,
    connect: &impl AsyncFn(&str) -> Result<DatabaseConnection, E>,
) -> DatabaseConnection {
    let db = connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the template database {url}: {e:?}"));
    Migrator::up(&db, None)
        .await
        .unwrap_or_else(|e| panic!("cannot migrate the template database {url}: {e}"));
    db
}

/// A fresh database, as [`fresh`], on the PostgreSQL server of `admin_url` rather than
/// `WRAP_TEST_POSTGRES_URL`'s: for a test that runs (and stops) a server of its own.
pub async fn fresh_postgres_at<E: Debug>(
    admin_url: &str,
    connect: impl AsyncFn(&str) -> Result<DatabaseConnection, E>,
) -> TestDb {
    migrated(
        EmptyDb::create_postgres(admin_url.to_owned()).await,
        connect,
    )
    .await
}

async fn migrated<E: Debug>(
    empty: EmptyDb,
    connect: impl AsyncFn(&str) -> Result<DatabaseConnection, E>,
) -> TestDb {
    let EmptyDb { name, url, place } = empty;
    let db = connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test database {url}: {e:?}"));
    Migrator::up(&db, None)
        .await
        .unwrap_or_else(|e| panic!("cannot migrate the test database {url}: {e}"));
    TestDb {
        db,
        name,
        url,
        _place: place,
    }
}

/// A fresh database with no tables yet, for tests of migrating and of the command line.
/// Removed when dropped (close any pool on it first: on PostgreSQL it is disconnected).
#[derive(Debug)]
pub struct EmptyDb {
    /// `sqlite` or `postgres`.
    pub name: &'static str,
    pub url: String,
    place: Place,
}

impl EmptyDb {
    /// Creates the SQLite scratch directory (the file itself is made on first connection)
    /// or the PostgreSQL database.
    pub async fn create(backend: &'static str) -> Self {
        let id = Uuid::now_v7().simple();
        match backend {
            "sqlite" => {
                let dir = std::env::temp_dir().join(format!("wrap_test_{id}"));
                std::fs::create_dir_all(&dir)
                    .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
                Self {
                    name: "sqlite",
                    url: format!("sqlite://{}/wrap.db?mode=rwc", dir.display()),
                    place: Place::SqliteDir(dir),
                }
            }
            "postgres" => {
                Self::create_postgres(
                    postgres_admin_url().unwrap_or_else(|| panic!("{POSTGRES_URL_VAR} is not set")),
                )
                .await
            }
            other => panic!("unknown test backend {other:?} (sqlite or postgres)"),
        }
    }

    /// A fresh PostgreSQL database on the server of `admin_url`, committing durably (a test
    /// that crashes its server relies on that).
    pub async fn create_postgres(admin_url: String) -> Self {
        let database = format!("wrap_test_{}", Uuid::now_v7().simple());
        Self::create_postgres_named(admin_url, database, None, true).await
    }

    /// A fresh PostgreSQL database, a copy of `template`, committing without waiting for the
    /// disk: the server is never crashed under it, and what commits and what other sessions
    /// see is unchanged; only the wait for each commit's WAL flush goes.
    async fn create_postgres_from(admin_url: String, template: &str) -> Self {
        let database = format!("wrap_test_{}", Uuid::now_v7().simple());
        Self::create_postgres_named(admin_url, database, Some(template), false).await
    }

    async fn create_postgres_named(
        admin_url: String,
        database: String,
        template: Option<&str>,
        durable: bool,
    ) -> Self {
        let admin = admin(&admin_url).await;
        let from = template.map_or(String::new(), |t| format!(" TEMPLATE \"{t}\""));
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{database}\"{from}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create the database {database}: {e}"));
        if !durable {
            admin
                .execute_unprepared(&format!(
                    "ALTER DATABASE \"{database}\" SET synchronous_commit = off"
                ))
                .await
                .unwrap_or_else(|e| panic!("cannot configure the database {database}: {e}"));
        }
        let _ = admin.close().await;
        Self {
            name: "postgres",
            url: with_database(&admin_url, &database),
            place: Place::Postgres {
                admin_url,
                database,
            },
        }
    }
}

/// Where a test database lives; removing it is its `Drop`.
#[derive(Debug)]
enum Place {
    SqliteDir(PathBuf),
    Postgres { admin_url: String, database: String },
}

impl Drop for Place {
    fn drop(&mut self) {
        match self {
            Place::SqliteDir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Place::Postgres {
                admin_url,
                database,
            } => {
                let (admin_url, database) = (admin_url.clone(), database.clone());
                // Drop may run inside or outside a runtime, and must not return before the
                // database is gone: a thread of its own with its own runtime, joined.
                let _ = std::thread::spawn(move || {
                    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        eprintln!("test database {database} left behind: no runtime to drop it");
                        return;
                    };
                    runtime.block_on(drop_database(&admin_url, &database));
                })
                .join();
            }
        }
    }
}

async fn drop_database(admin_url: &str, database: &str) {
    let admin = admin(admin_url).await;
    if let Err(e) = admin
        .execute_unprepared(&format!(
            "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
        ))
        .await
    {
        eprintln!("test database {database} left behind: {e}");
    }
    let _ = admin.close().await;
}

/// One connection to the server's admin URL, for CREATE and DROP DATABASE.
async fn admin(admin_url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(admin_url);
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL_VAR}: {e}"))
}

/// `url` naming `database` instead of its own (the query string kept).
fn with_database(url: &str, database: &str) -> String {
    let (before_query, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let scheme_end = before_query.find("://").map_or(0, |i| i + 3);
    // The host starts after the last '@' (a password may hold '/'); the path after the host.
    let host_start = before_query[scheme_end..]
        .rfind('@')
        .map_or(scheme_end, |at| scheme_end + at + 1);
    let host_end = before_query[host_start..]
        .find('/')
        .map_or(before_query.len(), |slash| host_start + slash);
    format!("{}/{database}{query}", &before_query[..host_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_test_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "wrap_test_1"),
            "postgres://postgres@127.0.0.1:5432/wrap_test_1"
        );
        assert_eq!(
            with_database("postgres://u:p/w@h:5432/db?sslmode=disable", "x"),
            "postgres://u:p/w@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(with_database("postgres://h?a=b", "x"), "postgres://h/x?a=b");
    }

    #[tokio::test]
    async fn each_database_is_fresh_and_removed_when_dropped() {
        let connect = async |url: &str| Database::connect(url).await;
        for backend in backends() {
            let first = fresh(backend, connect).await;
            let second = fresh(backend, connect).await;
            assert_ne!(first.url, second.url);
            assert_eq!(first.name, backend);
            assert!(first.url.contains("wrap_test_"), "{}", first.url);
            assert!(
                Migrator::get_pending_migrations(&first.db)
                    .await
                    .unwrap()
                    .is_empty()
            );
            let url = first.url.clone();
            drop(first);
            match backend {
                "sqlite" => {
                    let dir = url
                        .trim_start_matches("sqlite://")
                        .trim_end_matches("/wrap.db?mode=rwc");
                    assert!(!std::path::Path::new(dir).exists(), "{dir} left behind");
                }
                _ => {
                    let name = url.rsplit('/').next().unwrap();
                    let found = second
                        .db
                        .query_one_raw(sea_orm::Statement::from_string(
                            sea_orm::DbBackend::Postgres,
                            format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
                        ))
                        .await
                        .unwrap();
                    assert!(found.is_none(), "{name} left behind");
                }
            }
        }
    }
}
