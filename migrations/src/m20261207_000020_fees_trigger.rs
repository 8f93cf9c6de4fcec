//! `rebalance_decisions.trigger` may be `fees`: the rebalance step sells units for fees due
//! that the wrap's cash cannot pay, whether or not anything else triggers a rebalance
//! (`ledger/wraps/src/eod/rebalance.rs`). Before, a wrap fully invested whose drift stayed
//! inside its band and whose strategy had no calendar rebalance never sold, and its fees
//! stayed owed for ever.
//!
//! PostgreSQL replaces the column's CHECK in place; SQLite changes no CHECK in place, so the
//! table is rebuilt (create, copy, drop, rename: columns, key and foreign key unchanged; it
//! has no other index). `down` refuses (the copy fails its CHECK) while a `fees` decision
//! exists.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The triggers allowed before (`down`) and after (`up`).
fn triggers(with_fees: bool) -> &'static str {
    if with_fees {
        "'cash', 'withdrawal', 'switch', 'close', 'liquidation', 'model_change', 'calendar', \
         'drift', 'fees', 'none'"
    } else {
        "'cash', 'withdrawal', 'switch', 'close', 'liquidation', 'model_change', 'calendar', \
         'drift', 'none'"
    }
}

fn statements(backend: DbBackend, with_fees: bool) -> Vec<String> {
    let allowed = triggers(with_fees);
    match backend {
        DbBackend::Postgres => vec![format!(
            "ALTER TABLE rebalance_decisions DROP CONSTRAINT rebalance_decisions_trigger_check, \
             ADD CONSTRAINT rebalance_decisions_trigger_check CHECK (trigger IN ({allowed}))"
        )],
        _ => vec![
            // As created by migration 000008, but for the trigger's CHECK.
            format!(
                "CREATE TABLE rebalance_decisions_new (
        tenant_id {{uuid}} NOT NULL,
        business_date DATE NOT NULL,
        wrap_id {{uuid}} NOT NULL,
        trigger TEXT NOT NULL CHECK (trigger IN ({allowed})),
        model_version INTEGER NULL,
        nav BIGINT NOT NULL,
        cash BIGINT NOT NULL,
        cash_reserve BIGINT NOT NULL CHECK (cash_reserve >= 0),
        orders INTEGER NOT NULL CHECK (orders >= 0),
        skipped INTEGER NOT NULL CHECK (skipped >= 0),
        movement_ids TEXT NOT NULL,
        note TEXT NULL CHECK (length(note) BETWEEN 1 AND 500),
        PRIMARY KEY (tenant_id, business_date, wrap_id),
        FOREIGN KEY (tenant_id, wrap_id) REFERENCES wraps (tenant_id, id)
    )"
            ),
            "INSERT INTO rebalance_decisions_new SELECT * FROM rebalance_decisions".to_owned(),
            "DROP TABLE rebalance_decisions".to_owned(),
            "ALTER TABLE rebalance_decisions_new RENAME TO rebalance_decisions".to_owned(),
        ],
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on SQLite too: the rebuild must be seen whole or not at all (as in
    /// migration 000015).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        sql::run(db, &statements(db.get_database_backend(), true)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        sql::run(db, &statements(db.get_database_backend(), false)).await
    }
}
