//! Test databases: a fresh SQLite file per test, and a fresh PostgreSQL database per test
//! when `WRAP_TEST_POSTGRES_URL` is set (created here, dropped when the guard goes away).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;

use chrono::NaiveDate;
use ledger::{Asset, Ledger, NewAccount, NewEntry, NewPosting, Side};
use migrations::{Migrator, MigratorTrait};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

/// Where a test database lives and how to get rid of it.
pub struct TestDb {
    pub name: &'static str,
    pub db: DatabaseConnection,
    pub url: String,
    cleanup: Cleanup,
}

/// A second, independent connection pool to the same test database.
pub async fn reconnect(tdb: &TestDb) -> DatabaseConnection {
    ledger::connect(&tdb.url).await.unwrap()
}

enum Cleanup {
    File(std::path::PathBuf),
    Postgres { admin_url: String, database: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Postgres {
                admin_url,
                database,
            } => {
                let (admin_url, database) = (admin_url.clone(), database.clone());
                // Drop runs outside any runtime guarantee: use a thread with its own runtime.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        if let Ok(admin) = ledger::connect(&admin_url).await {
                            let _ = admin
                                .execute_unprepared(&format!(
                                    "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
                                ))
                                .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// The backends to run on: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<&'static str> {
    let mut b = vec!["sqlite"];
    if std::env::var("WRAP_TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty()) {
        b.push("postgres");
    }
    b
}

/// A fresh, migrated database on `backend`.
pub async fn fresh(backend: &'static str) -> TestDb {
    match backend {
        "sqlite" => {
            let path = std::env::temp_dir().join(format!("wrap-test-{}.db", Uuid::now_v7()));
            let url = format!("sqlite://{}?mode=rwc", path.display());
            let db = ledger::connect(&url).await.unwrap();
            Migrator::up(&db, None).await.unwrap();
            TestDb {
                name: "sqlite",
                db,
                url,
                cleanup: Cleanup::File(path),
            }
        }
        _ => {
            let admin_url = std::env::var("WRAP_TEST_POSTGRES_URL").unwrap();
            let database = format!("wrap_test_{}", Uuid::now_v7().simple());
            let admin = ledger::connect(&admin_url).await.unwrap();
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{database}\""))
                .await
                .unwrap();
            admin.close().await.ok();
            let url = with_database(&admin_url, &database);
            let db = ledger::connect(&url).await.unwrap();
            Migrator::up(&db, None).await.unwrap();
            TestDb {
                name: "postgres",
                db,
                url,
                cleanup: Cleanup::Postgres {
                    admin_url,
                    database,
                },
            }
        }
    }
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..].find('/').map(|i| i + scheme_end);
    let host = match path_start {
        Some(i) => &base[..i],
        None => base,
    };
    match query {
        Some(q) => format!("{host}/{database}?{q}"),
        None => format!("{host}/{database}"),
    }
}

pub fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

/// A tenant with JPY and USD accounts ready.
pub struct Book {
    pub tenant: Uuid,
    pub ledger: Ledger,
}

impl Book {
    pub async fn new(ledger: &Ledger) -> Self {
        ledger
            .create_asset(&Asset::currency("JPY", 0))
            .await
            .unwrap();
        ledger
            .create_asset(&Asset::currency("USD", 2))
            .await
            .unwrap();
        Self {
            tenant: Uuid::now_v7(),
            ledger: ledger.clone(),
        }
    }

    pub async fn account(&self, code: &str, asset: &str, normal: Side, no_negative: bool) -> Uuid {
        self.ledger
            .create_account(&NewAccount {
                tenant_id: self.tenant,
                code: code.into(),
                asset: asset.into(),
                normal_side: normal,
                no_negative,
                metadata: serde_json::json!({}),
            })
            .await
            .unwrap()
            .id
    }

    pub fn entry(&self, key: &str, postings: Vec<NewPosting>) -> NewEntry {
        NewEntry {
            tenant_id: self.tenant,
            idempotency_key: key.into(),
            kind: "transfer".into(),
            effective_date: day(2),
            description: format!("test {key}"),
            metadata: serde_json::json!({"k": key}),
            postings,
            hold: None,
        }
    }

    /// Moves `amount` of `asset` from `from` to `to` (credit `from`, debit `to`).
    pub fn transfer(&self, key: &str, from: Uuid, to: Uuid, asset: &str, amount: &str) -> NewEntry {
        self.entry(
            key,
            vec![
                NewPosting::credit(from, asset, dec(amount)),
                NewPosting::debit(to, asset, dec(amount)),
            ],
        )
    }

    pub async fn posted(&self, account: Uuid) -> Decimal {
        self.ledger
            .balance(self.tenant, account, ledger::AsOf::Now)
            .await
            .unwrap()
            .posted
    }

    pub async fn available(&self, account: Uuid) -> Decimal {
        self.ledger
            .balance(self.tenant, account, ledger::AsOf::Now)
            .await
            .unwrap()
            .available
    }
}

/// Runs `body` once per backend, each on its own fresh database.
#[macro_export]
macro_rules! on_each_backend {
    (|$ledger:ident, $tdb:ident| $body:block) => {{
        for backend in common::backends() {
            let $tdb = common::fresh(backend).await;
            let $ledger = ledger::Ledger::new($tdb.db.clone());
            eprintln!("-- on {}", $tdb.name);
            $body
        }
    }};
}
