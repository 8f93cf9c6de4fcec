//! What end of day paid for each withdrawal, switch or close (`wrap_movements`), so a
//! customer who asked for an amount can see what reached them and when
//! (`GET /v1/wraps/{id}/movements`; ledger/wraps/src/eod/trading.rs writes them).
//!
//! Rules written into the schema:
//! * `paid` is BIGINT minor units of the wrap's currency, never negative, set with
//!   `paid_date` (the business date) when the movement is fulfilled, and only then;
//! * rows from before this migration keep both NULL (what they paid is in the ledger's
//!   `movement:{id}` entry).

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "ALTER TABLE wrap_movements ADD COLUMN paid BIGINT NULL CHECK (paid >= 0)",
    "ALTER TABLE wrap_movements ADD COLUMN paid_date DATE NULL",
];

const DOWN: &[&str] = &[
    "ALTER TABLE wrap_movements DROP COLUMN paid_date",
    "ALTER TABLE wrap_movements DROP COLUMN paid",
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
