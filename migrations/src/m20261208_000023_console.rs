//! The console's people: `console_users` (a tenant's human users) and `console_sessions`
//! (their signed-in browsers). Written only by `tenants::users` and `tenants::sessions`.
//!
//! Rules written into the schema (the `tenants` crate checks them first):
//! * a user belongs to one tenant; `(tenant_id, id)` is its key and an email is unique per
//!   tenant `(tenant_id, email)`, so both keys carry `tenant_id` and the tables distribute by
//!   tenant on Citus (deploy/SCALING.md);
//! * roles, access levels and statuses are closed sets; only argon2id hashes are stored;
//! * a session points at a user of its own tenant (composite foreign key) and stores only the
//!   SHA-256 of its token; its absolute expiry is after its creation.
//!
//! Tables created after the Citus migration place themselves (`crate::citus::distribute`).

use sea_orm_migration::prelude::*;

use crate::{citus, sql};

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE console_users (
        tenant_id {uuid} NOT NULL REFERENCES tenants (id),
        id {uuid} NOT NULL,
        name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        email TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
        role TEXT NOT NULL CHECK (role IN ('operator', 'head_office', 'adviser', 'manager')),
        access TEXT NOT NULL CHECK (access IN ('read', 'write')),
        status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'locked')),
        password_hash TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
        failed_sign_ins BIGINT NOT NULL DEFAULT 0 CHECK (failed_sign_ins >= 0),
        last_sign_in_at BIGINT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, email)
    )",
    "CREATE TABLE console_sessions (
        tenant_id {uuid} NOT NULL,
        token_hash TEXT NOT NULL CHECK (length(token_hash) = 64),
        user_id {uuid} NOT NULL,
        created_at BIGINT NOT NULL,
        last_seen_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, token_hash),
        FOREIGN KEY (tenant_id, user_id) REFERENCES console_users (tenant_id, id),
        CHECK (expires_at > created_at)
    )",
    "CREATE INDEX console_sessions_by_user ON console_sessions (tenant_id, user_id)",
];

const DOWN: &[&str] = &[
    "DROP INDEX console_sessions_by_user",
    "DROP TABLE console_sessions",
    "DROP TABLE console_users",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        sql::run(db, UP).await?;
        if citus::is_citus(db).await? {
            citus::distribute(db).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), DOWN).await
    }
}
