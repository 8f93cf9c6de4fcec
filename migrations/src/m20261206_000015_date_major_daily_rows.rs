//! The three tables end of day fills with one row per wrap and date (`wrap_snapshots`,
//! `fee_accruals`, `wrap_returns`) are keyed date first: `PRIMARY KEY (tenant_id,
//! business_date, wrap_id)`, as `rebalance_decisions` already is.
//!
//! Why: keyed `(tenant_id, wrap_id, business_date)`, each date's rows went into every wrap's
//! own stretch of the key, so a date's run rewrote one index page per wrap in each table, and
//! SQLite writes each rewritten page to its write-ahead log whole at every commit. A year of
//! the demo's 400 wraps wrote 3.8 GB of log for a 134 MB database. Keyed date first, a date's
//! rows are appended together at the end of the key, a few pages for all the wraps: the
//! demo's year at 1,000 wraps went from 78.7 s to 55.3 s (docs/BENCHMARKS.md, "Daily rows
//! keyed date first").
//!
//! The primary key still makes a row per wrap and date unique. Reads of one wrap over a range
//! of dates go through the dates that end of day ran (`eod_runs`) and look each row up by its
//! whole key, instead of scanning every wrap's rows of the range.
//!
//! On SQLite the tables are rebuilt `WITHOUT ROWID` (the key is the table: one b-tree per
//! table besides its by-date index, not two); on PostgreSQL the primary key is replaced in
//! place. The columns, checks and foreign keys are unchanged. `fee_accruals_by_date` goes: no
//! query reads fee accruals by date alone, and those by tenant and date now use the key.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The key before (`down`) and after (`up`).
fn key(date_first: bool) -> &'static str {
    if date_first {
        "tenant_id, business_date, wrap_id"
    } else {
        "tenant_id, wrap_id, business_date"
    }
}

/// Each table, whether it keeps its by-date index `(business_date, tenant_id)` under the date
/// first key, and its columns and constraints other than its primary key, as they stand after
/// migrations 000009 (snapshots deduct the fees unpaid) and 000010.
const TABLES: [(&str, bool, &str); 3] = [
    (
        "wrap_snapshots",
        true,
        "tenant_id {uuid} NOT NULL,
        wrap_id {uuid} NOT NULL,
        business_date DATE NOT NULL,
        currency TEXT NOT NULL REFERENCES ledger_assets (code),
        cash BIGINT NOT NULL,
        units_value BIGINT NOT NULL CHECK (units_value >= 0),
        nav BIGINT NOT NULL,
        contributions BIGINT NOT NULL CHECK (contributions >= 0),
        withdrawals BIGINT NOT NULL CHECK (withdrawals >= 0),
        stale_prices BOOLEAN NOT NULL,
        fees_unpaid BIGINT NOT NULL DEFAULT 0 CHECK (fees_unpaid >= 0),
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id),
        CHECK (nav = cash + units_value - fees_unpaid)",
    ),
    (
        "fee_accruals",
        false,
        "tenant_id {uuid} NOT NULL,
        wrap_id {uuid} NOT NULL,
        business_date DATE NOT NULL,
        nav BIGINT NOT NULL,
        annual_fee TEXT NOT NULL,
        tax_x365 TEXT NOT NULL,
        fee_posted BIGINT NOT NULL CHECK (fee_posted >= 0),
        tax_posted BIGINT NOT NULL CHECK (tax_posted >= 0),
        fee_carry_x365 TEXT NOT NULL,
        tax_carry_x365 TEXT NOT NULL,
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id)",
    ),
    (
        "wrap_returns",
        true,
        "tenant_id {uuid} NOT NULL,
        wrap_id {uuid} NOT NULL,
        business_date DATE NOT NULL,
        daily TEXT NOT NULL CHECK (length(daily) BETWEEN 1 AND 64),
        cumulative_index TEXT NOT NULL CHECK (length(cumulative_index) BETWEEN 1 AND 64),
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id)",
    ),
];

/// The statements that give every table the date-first key (or back the wrap-first one) on
/// `backend`.
fn rekey(backend: DbBackend, date_first: bool) -> Vec<String> {
    let key = key(date_first);
    let mut out = Vec::new();
    for (table, keeps_by_date, body) in TABLES {
        let by_date = format!("CREATE INDEX {table}_by_date ON {table} (business_date, tenant_id)");
        match backend {
            DbBackend::Postgres => {
                out.push(format!(
                    "ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, ADD PRIMARY KEY ({key})"
                ));
                if !keeps_by_date {
                    out.push(if date_first {
                        format!("DROP INDEX {table}_by_date")
                    } else {
                        by_date
                    });
                }
            }
            _ => {
                // SQLite changes no key in place: create, copy (the column order is the
                // same), drop with its indexes, rename, and the by-date index again.
                let rowid = if date_first { " WITHOUT ROWID" } else { "" };
                out.push(format!(
                    "CREATE TABLE {table}_rekeyed ({body},\n        PRIMARY KEY ({key})){rowid}"
                ));
                out.push(format!("INSERT INTO {table}_rekeyed SELECT * FROM {table}"));
                out.push(format!("DROP TABLE {table}"));
                out.push(format!("ALTER TABLE {table}_rekeyed RENAME TO {table}"));
                if keeps_by_date || !date_first {
                    out.push(by_date);
                }
            }
        }
    }
    out
}

async fn run(manager: &SchemaManager<'_>, date_first: bool) -> Result<(), DbErr> {
    let db = manager.get_connection();
    sql::run(db, &rekey(db.get_database_backend(), date_first)).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on SQLite too: each rebuild (create, copy, drop, rename) must be
    /// seen whole, on one connection, or not at all (as in migration 000009).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, false).await
    }
}
