//! An index end of day and the reports read by date: `ledger_postings (tenant_id,
//! effective_date)`. Valuation reads each book's flows of one day, the reconciliation as of a
//! date and the fee-split report's ledger check sum postings up to or between dates; without
//! it each scans a book's whole history, which grows by every day's trades and fees. (The
//! snapshots' date index comes with `m20261121_000010_returns`.)

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] =
    &["CREATE INDEX ledger_postings_by_date ON ledger_postings (tenant_id, effective_date)"];

const DOWN: &[&str] = &["DROP INDEX ledger_postings_by_date"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), DOWN).await
    }
}
