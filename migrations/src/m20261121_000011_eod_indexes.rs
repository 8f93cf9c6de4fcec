//! Indexes end of day and the reports read by date.
//!
//! * `ledger_postings (tenant_id, effective_date)`: valuation reads each book's flows of one
//!   day, and the reconciliation as of a date sums postings up to it; without it both scan a
//!   book's whole history, which grows by every day's trades and fees.
//! * `wrap_snapshots (business_date, tenant_id)`: AUM and its history read every snapshot of
//!   a date across books (the primary key leads with the tenant and the wrap).

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE INDEX ledger_postings_by_date ON ledger_postings (tenant_id, effective_date)",
    "CREATE INDEX wrap_snapshots_by_date ON wrap_snapshots (business_date, tenant_id)",
];

const DOWN: &[&str] = &[
    "DROP INDEX wrap_snapshots_by_date",
    "DROP INDEX ledger_postings_by_date",
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
