//! Market data (owned by the ledger crate's `market` module): instruments, their daily prices,
//! the end-of-day runs that freeze a date's prices, and custodian statements for the break
//! report. Platform-wide reference data, so no tenant_id: every tenant reads the same
//! instruments and prices.
//!
//! Amounts are exact BIGINT integers: a price at the instrument's `price_scale`, a minimum
//! order in minor units of its currency, a custodian quantity in minor units of its asset.

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &[
    // An instrument is also a ledger asset of kind instrument (same code), so holdings of it
    // can be posted; the asset's scale, quote unit and currency are copied here for reads and
    // never change.
    "CREATE TABLE instruments (
        code TEXT NOT NULL PRIMARY KEY REFERENCES ledger_assets (code),
        name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        kind TEXT NOT NULL CHECK (kind IN ('investment_trust', 'etf', 'stock')),
        currency TEXT NOT NULL REFERENCES ledger_assets (code),
        unit_scale INTEGER NOT NULL CHECK (unit_scale BETWEEN 0 AND 10),
        quote_unit BIGINT NOT NULL CHECK (quote_unit > 0),
        price_scale INTEGER NOT NULL CHECK (price_scale BETWEEN 0 AND 10),
        min_order_amount BIGINT NOT NULL CHECK (min_order_amount >= 0),
        settlement_days INTEGER NOT NULL CHECK (settlement_days BETWEEN 0 AND 10),
        status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'delisted')),
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )",
    "CREATE TABLE instrument_prices (
        instrument_code TEXT NOT NULL REFERENCES instruments (code),
        price_date DATE NOT NULL,
        price BIGINT NOT NULL CHECK (price > 0),
        uploaded_at BIGINT NOT NULL,
        uploaded_by TEXT NOT NULL,
        PRIMARY KEY (instrument_code, price_date)
    )",
    // Written by end of day; a finished date's prices can no longer be replaced.
    "CREATE TABLE eod_runs (
        business_date DATE NOT NULL PRIMARY KEY,
        status TEXT NOT NULL CHECK (status IN ('running', 'finished')),
        started_at BIGINT NOT NULL,
        finished_at BIGINT NULL,
        CHECK ((status = 'finished') = (finished_at IS NOT NULL))
    )",
    "CREATE TABLE custodian_statements (
        id {uuid} NOT NULL PRIMARY KEY,
        as_of DATE NOT NULL,
        source TEXT NOT NULL CHECK (length(source) BETWEEN 1 AND 200),
        uploaded_at BIGINT NOT NULL,
        uploaded_by TEXT NOT NULL
    )",
    "CREATE INDEX custodian_statements_by_date ON custodian_statements (as_of)",
    "CREATE TABLE custodian_positions (
        statement_id {uuid} NOT NULL REFERENCES custodian_statements (id),
        asset_code TEXT NOT NULL REFERENCES ledger_assets (code),
        quantity BIGINT NOT NULL CHECK (quantity >= 0),
        PRIMARY KEY (statement_id, asset_code)
    )",
];

const DOWN: &[&str] = &[
    "DROP TABLE custodian_positions",
    "DROP TABLE custodian_statements",
    "DROP TABLE eod_runs",
    "DROP TABLE instrument_prices",
    "DROP TABLE instruments",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), TABLES).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), DOWN).await
    }
}
