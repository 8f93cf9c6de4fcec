//! `plan_runs` loses `UNIQUE (plan_id, run_date)`: a unique key without `tenant_id` cannot be
//! enforced once the table is sharded by tenant on Citus (each shard checks only its own rows;
//! .ci/citus-rules.sh, deploy/SCALING.md). Nothing is lost: the primary key
//! `(tenant_id, plan_id, run_date)` already makes a plan's run per date unique, since a plan
//! belongs to one tenant (`wrap_plans (tenant_id, id)`), and no statement names the old key.
//!
//! PostgreSQL drops the constraint in place; SQLite drops no constraint in place, so the table
//! is rebuilt (create, copy, drop, rename, then its by-date index again), as in migration
//! 000020. `down` puts the key back.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn statements(backend: DbBackend, with_old_key: bool) -> Vec<String> {
    match backend {
        DbBackend::Postgres if with_old_key => vec![
            "ALTER TABLE plan_runs ADD CONSTRAINT plan_runs_plan_id_run_date_key \
             UNIQUE (plan_id, run_date)"
                .to_owned(),
        ],
        DbBackend::Postgres => {
            vec!["ALTER TABLE plan_runs DROP CONSTRAINT plan_runs_plan_id_run_date_key".to_owned()]
        }
        _ => {
            let old_key = if with_old_key {
                "\n        UNIQUE (plan_id, run_date),"
            } else {
                ""
            };
            // As created by migration 000007, but for the key.
            vec![
                format!(
                    "CREATE TABLE plan_runs_new (
        tenant_id {{uuid}} NOT NULL,
        plan_id {{uuid}} NOT NULL,
        run_date DATE NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('executed', 'skipped')),
        reason TEXT NULL CHECK (length(reason) BETWEEN 1 AND 500),
        amount BIGINT NULL CHECK (amount > 0),
        entry_id {{uuid}} NULL,
        movement_id {{uuid}} NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, plan_id, run_date),{old_key}
        FOREIGN KEY (tenant_id, plan_id) REFERENCES wrap_plans (tenant_id, id),
        FOREIGN KEY (tenant_id, entry_id) REFERENCES ledger_entries (tenant_id, id),
        FOREIGN KEY (tenant_id, movement_id) REFERENCES wrap_movements (tenant_id, id),
        CHECK ((status = 'skipped') = (reason IS NOT NULL)),
        CHECK (status = 'skipped' OR amount IS NOT NULL),
        CHECK (entry_id IS NULL OR movement_id IS NULL)
    )"
                ),
                "INSERT INTO plan_runs_new SELECT * FROM plan_runs".to_owned(),
                "DROP TABLE plan_runs".to_owned(),
                "ALTER TABLE plan_runs_new RENAME TO plan_runs".to_owned(),
                "CREATE INDEX plan_runs_by_date ON plan_runs (run_date, tenant_id)".to_owned(),
            ]
        }
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on SQLite too: the rebuild must be seen whole or not at all.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        sql::run(db, &statements(db.get_database_backend(), false)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        sql::run(db, &statements(db.get_database_backend(), true)).await
    }
}
