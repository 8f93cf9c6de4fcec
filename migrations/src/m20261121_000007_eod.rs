//! End of day: the checkpoint of each step of each date, what each plan did on each date,
//! and the daily snapshot of every wrap.
//!
//! Rules written into the schema:
//! * a step of a date has one checkpoint row (`PRIMARY KEY (business_date, step)`), written
//!   in the same transaction as the step's effects, so a step is either done with its
//!   effects or not done at all;
//! * a plan runs at most once per date (`UNIQUE (plan_id, run_date)`), and a skipped run
//!   says why (`reason`), an executed contribution names its ledger entry and an executed
//!   withdrawal its pending movement;
//! * snapshots are BIGINT minor units of the wrap's currency, one per wrap and date, and
//!   point at their wrap through the composite key `(tenant_id, wrap_id)`.

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    // Platform-wide, like eod_runs: a date's end of day covers every tenant.
    "CREATE TABLE eod_steps (
        business_date DATE NOT NULL,
        step TEXT NOT NULL CHECK (length(step) BETWEEN 1 AND 64),
        status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
        started_at BIGINT NOT NULL,
        finished_at BIGINT NOT NULL CHECK (finished_at >= started_at),
        detail TEXT NOT NULL,
        PRIMARY KEY (business_date, step)
    )",
    "CREATE TABLE plan_runs (
        tenant_id {uuid} NOT NULL,
        plan_id {uuid} NOT NULL,
        run_date DATE NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('executed', 'skipped')),
        reason TEXT NULL CHECK (length(reason) BETWEEN 1 AND 500),
        amount BIGINT NULL CHECK (amount > 0),
        entry_id {uuid} NULL,
        movement_id {uuid} NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, plan_id, run_date),
        UNIQUE (plan_id, run_date),
        FOREIGN KEY (tenant_id, plan_id) REFERENCES wrap_plans (tenant_id, id),
        FOREIGN KEY (tenant_id, entry_id) REFERENCES ledger_entries (tenant_id, id),
        FOREIGN KEY (tenant_id, movement_id) REFERENCES wrap_movements (tenant_id, id),
        CHECK ((status = 'skipped') = (reason IS NOT NULL)),
        CHECK (status = 'skipped' OR amount IS NOT NULL),
        CHECK (entry_id IS NULL OR movement_id IS NULL)
    )",
    "CREATE INDEX plan_runs_by_date ON plan_runs (run_date, tenant_id)",
    "CREATE TABLE wrap_snapshots (
        tenant_id {uuid} NOT NULL,
        wrap_id {uuid} NOT NULL,
        business_date DATE NOT NULL,
        currency TEXT NOT NULL REFERENCES ledger_assets (code),
        cash BIGINT NOT NULL,
        units_value BIGINT NOT NULL CHECK (units_value >= 0),
        nav BIGINT NOT NULL,
        contributions BIGINT NOT NULL CHECK (contributions >= 0),
        withdrawals BIGINT NOT NULL CHECK (withdrawals >= 0),
        stale_prices BOOLEAN NOT NULL,
        PRIMARY KEY (tenant_id, wrap_id, business_date),
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id),
        CHECK (nav = cash + units_value)
    )",
];

const DOWN: &[&str] = &[
    "DROP TABLE wrap_snapshots",
    "DROP TABLE plan_runs",
    "DROP TABLE eod_steps",
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
