//! Which prices valuation used, by a counter instead of clocks: `eod_runs.price_revision`
//! counts the price uploads that touched the date while it was running, and
//! `eod_runs.valued_revision` is the count the valuation step read before reading the prices
//! (`ledger/wraps/src/eod/valuation.rs`). End of day's finishing transaction redoes valuation
//! when the two differ. Before, it compared an upload's wall-clock time, taken before the
//! upload's transaction started, with valuation's start time: an upload that waited for a
//! lock, or committed after valuation read the prices, was missed and the date finished on
//! the old price.

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "ALTER TABLE eod_runs ADD COLUMN price_revision BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE eod_runs ADD COLUMN valued_revision BIGINT NOT NULL DEFAULT 0",
];

const DOWN: &[&str] = &[
    "ALTER TABLE eod_runs DROP COLUMN valued_revision",
    "ALTER TABLE eod_runs DROP COLUMN price_revision",
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
