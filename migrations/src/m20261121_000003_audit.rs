//! The audit log: one row per change made through the API.
//!
//! Rules written into the schema:
//! * rows are append-only: UPDATE and DELETE are refused by triggers, so the log cannot be
//!   rewritten through the application's connection;
//! * `seq` orders the log (and is the paging cursor); `id` is a UUID v7 for references;
//! * every row names who acted (tenant and client), under which request, what they did and
//!   to what.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE_SQLITE: &str = "CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id BLOB NOT NULL UNIQUE,
        actor_tenant_id BLOB NOT NULL,
        actor_client_id TEXT NOT NULL,
        request_id TEXT NOT NULL,
        action TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
        target_tenant_id BLOB NULL,
        target_type TEXT NOT NULL,
        target_id TEXT NOT NULL,
        detail TEXT NOT NULL,
        at BIGINT NOT NULL
    )";

const TABLE_POSTGRES: &str = "CREATE TABLE audit_log (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id UUID NOT NULL UNIQUE,
        actor_tenant_id UUID NOT NULL,
        actor_client_id TEXT NOT NULL,
        request_id TEXT NOT NULL,
        action TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
        target_tenant_id UUID NULL,
        target_type TEXT NOT NULL,
        target_id TEXT NOT NULL,
        detail TEXT NOT NULL,
        at BIGINT NOT NULL
    )";

const INDEXES: &[&str] = &[
    "CREATE INDEX audit_log_actor ON audit_log (actor_tenant_id, seq)",
    "CREATE INDEX audit_log_target ON audit_log (target_tenant_id, seq)",
];

const IMMUTABLE_SQLITE: &[&str] = &[
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
];

const IMMUTABLE_POSTGRES: &[&str] = &[
    "CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match db.get_database_backend() {
            DbBackend::Postgres => {
                sql::run(db, &[TABLE_POSTGRES]).await?;
                sql::run(db, INDEXES).await?;
                sql::run(db, IMMUTABLE_POSTGRES).await
            }
            _ => {
                sql::run(db, &[TABLE_SQLITE]).await?;
                sql::run(db, INDEXES).await?;
                sql::run(db, IMMUTABLE_SQLITE).await
            }
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        sql::run(db, &["DROP TABLE audit_log"]).await?;
        if db.get_database_backend() == DbBackend::Postgres {
            sql::run(db, &["DROP FUNCTION audit_log_refuse_change()"]).await?;
        }
        Ok(())
    }
}
