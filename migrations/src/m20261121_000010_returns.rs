//! End of day, step `returns`: the daily time-weighted return of every wrap and its
//! chain-linked index (ledger/wraps/src/eod/returns.rs owns the arithmetic and the convention).
//!
//! Rules written into the schema:
//! * one row per wrap and date (`PRIMARY KEY (tenant_id, wrap_id, business_date)`), pointing
//!   at its wrap through the composite key `(tenant_id, wrap_id)`;
//! * returns are exact decimal TEXT (parsed into `rust_decimal::Decimal`, never a float:
//!   sea-orm binds a Decimal as a float on SQLite); `daily` is a fraction (`0.05` = +5 %),
//!   `cumulative_index` the product of (1 + daily) since the wrap's first snapshot, which
//!   starts at 1.

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE wrap_returns (
        tenant_id {uuid} NOT NULL,
        wrap_id {uuid} NOT NULL,
        business_date DATE NOT NULL,
        daily TEXT NOT NULL CHECK (length(daily) BETWEEN 1 AND 64),
        cumulative_index TEXT NOT NULL CHECK (length(cumulative_index) BETWEEN 1 AND 64),
        PRIMARY KEY (tenant_id, wrap_id, business_date),
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id)
    )",
    // The step reads one date's snapshots (and replaces one date's returns): without these,
    // each read would scan every date's rows, a cost that grows with history.
    "CREATE INDEX wrap_returns_by_date ON wrap_returns (business_date, tenant_id)",
    "CREATE INDEX wrap_snapshots_by_date ON wrap_snapshots (business_date, tenant_id)",
];

const DOWN: &[&str] = &[
    "DROP INDEX wrap_snapshots_by_date",
    "DROP INDEX wrap_returns_by_date",
    "DROP TABLE wrap_returns",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), DOWN).await
    }
}
