//! End of day, step `goals`: each wrap's goal probability as end of day computed it
//! (ledger/wraps/src/eod/goals.rs owns the simulation's inputs and the seed rule).
//!
//! Rules written into the schema:
//! * one row per wrap and date (`PRIMARY KEY (tenant_id, wrap_id, business_date)`), pointing
//!   at its wrap through the composite key `(tenant_id, wrap_id)`;
//! * `probability` and `standard_error` are exact decimal TEXT fractions in [0, 1] with four
//!   places (never a float column: sea-orm binds a Decimal as a float on SQLite);
//!   `median_value` and `nav` are BIGINT minor units of the wrap's currency;
//!   `fee_rate_annual` is decimal TEXT; `seed` is the generator's u64 seed as decimal TEXT
//!   (a BIGINT holds only half of its range).

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE wrap_goal_results (
        tenant_id {uuid} NOT NULL,
        wrap_id {uuid} NOT NULL,
        business_date DATE NOT NULL,
        probability TEXT NOT NULL CHECK (length(probability) BETWEEN 1 AND 16),
        standard_error TEXT NOT NULL CHECK (length(standard_error) BETWEEN 1 AND 16),
        median_value BIGINT NOT NULL CHECK (median_value >= 0),
        nav BIGINT NOT NULL,
        target_amount BIGINT NOT NULL CHECK (target_amount > 0),
        target_date DATE NOT NULL,
        fee_rate_annual TEXT NOT NULL CHECK (length(fee_rate_annual) BETWEEN 1 AND 40),
        plans_counted INTEGER NOT NULL CHECK (plans_counted >= 0),
        months INTEGER NOT NULL CHECK (months >= 1),
        paths INTEGER NOT NULL CHECK (paths >= 1),
        seed TEXT NOT NULL CHECK (length(seed) BETWEEN 1 AND 20),
        PRIMARY KEY (tenant_id, wrap_id, business_date),
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id)
    )",
    // The step replaces one date's rows (a redo after a late price): without it the DELETE
    // would scan every date's rows, a cost that grows with history.
    "CREATE INDEX wrap_goal_results_by_date ON wrap_goal_results (business_date, tenant_id)",
];

const DOWN: &[&str] = &[
    "DROP INDEX wrap_goal_results_by_date",
    "DROP TABLE wrap_goal_results",
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
