//! Shared test helpers: a fresh database per test (the workspace's `testing` crate, connected
//! with `ledger::connect` as the platform connects), amounts, dates and a ready book.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;

use chrono::NaiveDate;
use ledger::{Asset, Ledger, NewAccount, NewEntry, NewPosting, Side};
use rust_decimal::Decimal;
use sea_orm::DatabaseConnection;
pub use testing::{TestDb, backends};
use uuid::Uuid;

/// A fresh, migrated database on `backend`, removed when the guard is dropped.
pub async fn fresh(backend: &'static str) -> TestDb {
    testing::fresh(backend, ledger::connect).await
}

/// A second, independent connection pool to the same test database.
pub async fn reconnect(tdb: &TestDb) -> DatabaseConnection {
    ledger::connect(&tdb.url).await.unwrap()
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
