//! External execution: which venue each distributor's block orders go to, the instructions
//! an external venue (the distributor's own account system) works from, the fills it
//! reports against them, and the `awaiting_fills` state of the execution step.
//!
//! Rules written into the schema:
//! * a distributor has at most one venue setting (`PRIMARY KEY (tenant_id)`); no row means
//!   `simulated`;
//! * an instruction is a block order sent out (`PRIMARY KEY (tenant_id, id)` and a composite
//!   foreign key to `block_orders`, so it cannot point at another tenant's block); it is open
//!   (`awaiting_fills`) exactly while it has no `completed_at`;
//! * a reported fill is keyed by the distributor's own fill id per instruction, so the same
//!   fill reported twice is found, not counted twice; its units and amount are BIGINT minor
//!   units, both zero only on the closing report (`final`), and a fill with units names the
//!   `trade_fills` row that allocation reads (composite key, same tenant);
//! * an execution step may be `awaiting_fills` besides `done` and `failed`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE execution_venues (
        tenant_id {uuid} NOT NULL PRIMARY KEY REFERENCES tenants (id),
        venue TEXT NOT NULL CHECK (venue IN ('simulated', 'external')),
        set_at BIGINT NOT NULL,
        set_by TEXT NOT NULL CHECK (length(set_by) BETWEEN 1 AND 200)
    )",
    "CREATE TABLE instructions (
        tenant_id {uuid} NOT NULL,
        id {uuid} NOT NULL,
        business_date DATE NOT NULL,
        status TEXT NOT NULL
            CHECK (status IN ('awaiting_fills', 'filled', 'partially_filled', 'unfilled')),
        created_at BIGINT NOT NULL,
        completed_at BIGINT NULL,
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, id) REFERENCES block_orders (tenant_id, id),
        CHECK ((status = 'awaiting_fills') = (completed_at IS NULL))
    )",
    "CREATE INDEX instructions_by_date ON instructions (business_date, status)",
    "CREATE TABLE instruction_fills (
        tenant_id {uuid} NOT NULL,
        instruction_id {uuid} NOT NULL,
        fill_id TEXT NOT NULL CHECK (length(fill_id) BETWEEN 1 AND 100),
        units BIGINT NOT NULL CHECK (units >= 0),
        amount BIGINT NOT NULL CHECK (amount >= 0),
        final BOOLEAN NOT NULL,
        trade_fill_id {uuid} NULL,
        response TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, instruction_id, fill_id),
        FOREIGN KEY (tenant_id, instruction_id) REFERENCES instructions (tenant_id, id),
        FOREIGN KEY (tenant_id, trade_fill_id) REFERENCES trade_fills (tenant_id, id),
        CHECK ((units = 0) = (amount = 0)),
        CHECK (units > 0 OR final),
        CHECK ((trade_fill_id IS NULL) = (units = 0))
    )",
];

/// Going down: a date waiting for fills goes back to a plain pending execution step, its
/// open external blocks lose what was reported (the old code fills them at the simulated
/// venue when the date is run again).
const DOWN: &[&str] = &[
    "DELETE FROM eod_steps WHERE status = 'awaiting_fills'",
    "DROP TABLE instruction_fills",
    "DELETE FROM trade_fills WHERE EXISTS (SELECT 1 FROM block_orders b \
        WHERE b.tenant_id = trade_fills.tenant_id AND b.id = trade_fills.block_order_id \
        AND b.status = 'open' AND b.venue = 'external')",
    "UPDATE block_orders SET venue = NULL WHERE status = 'open' AND venue = 'external'",
    "DROP INDEX instructions_by_date",
    "DROP TABLE instructions",
    "DROP TABLE execution_venues",
];

fn steps_check(awaiting: bool) -> &'static str {
    if awaiting {
        "CHECK (status IN ('done', 'failed', 'awaiting_fills'))"
    } else {
        "CHECK (status IN ('done', 'failed'))"
    }
}

/// The step status CHECK, on PostgreSQL changed in place (the column constraint's default
/// name), on SQLite by rebuilding the small table.
fn steps(backend: DbBackend, awaiting: bool) -> Vec<String> {
    let check = steps_check(awaiting);
    match backend {
        DbBackend::Postgres => vec![
            "ALTER TABLE eod_steps DROP CONSTRAINT eod_steps_status_check".to_owned(),
            format!("ALTER TABLE eod_steps ADD CONSTRAINT eod_steps_status_check {check}"),
        ],
        _ => vec![
            format!(
                "CREATE TABLE eod_steps_new (
                    business_date DATE NOT NULL,
                    step TEXT NOT NULL CHECK (length(step) BETWEEN 1 AND 64),
                    status TEXT NOT NULL {check},
                    started_at BIGINT NOT NULL,
                    finished_at BIGINT NOT NULL CHECK (finished_at >= started_at),
                    detail TEXT NOT NULL,
                    PRIMARY KEY (business_date, step)
                )"
            ),
            "INSERT INTO eod_steps_new (business_date, step, status, started_at, finished_at, \
             detail) SELECT business_date, step, status, started_at, finished_at, detail \
             FROM eod_steps"
                .to_owned(),
            "DROP TABLE eod_steps".to_owned(),
            "ALTER TABLE eod_steps_new RENAME TO eod_steps".to_owned(),
        ],
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on SQLite too: the step table's rebuild (create, copy, drop,
    /// rename) must be seen whole or not at all.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        sql::run(db, UP).await?;
        let s = steps(db.get_database_backend(), true);
        sql::run(db, &s).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        sql::run(db, DOWN).await?;
        let s = steps(db.get_database_backend(), false);
        sql::run(db, &s).await
    }
}
