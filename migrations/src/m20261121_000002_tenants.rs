//! Tenants and their API clients.
//!
//! Rules written into the schema (the `tenants` crate checks them first):
//! * there is at most one platform tenant (a partial unique index on `kind`);
//! * a tenant name is unique; kinds, statuses and roles are closed sets;
//! * a client belongs to exactly one tenant, and `(tenant_id, id)` is its key; `client_id` is
//!   unique platform-wide because the token endpoint looks it up before it knows the tenant;
//! * only argon2id hashes are stored, never a secret; a previous secret hash always comes with
//!   the deadline after which it stops working.

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE tenants (
        id {uuid} NOT NULL PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('platform', 'distributor', 'manager')),
        name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        status TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
        display_name TEXT NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
        contact_email TEXT NOT NULL CHECK (length(contact_email) BETWEEN 3 AND 254),
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        UNIQUE (name)
    )",
    // Exactly one platform: a second insert of kind 'platform' violates this index.
    "CREATE UNIQUE INDEX tenants_one_platform ON tenants (kind) WHERE kind = 'platform'",
    "CREATE TABLE tenant_api_clients (
        tenant_id {uuid} NOT NULL REFERENCES tenants (id),
        id {uuid} NOT NULL,
        client_id TEXT NOT NULL CHECK (length(client_id) BETWEEN 8 AND 64),
        name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
        secret_hash TEXT NOT NULL CHECK (secret_hash LIKE '$argon2id$%'),
        previous_secret_hash TEXT NULL
            CHECK (previous_secret_hash IS NULL OR previous_secret_hash LIKE '$argon2id$%'),
        previous_valid_until BIGINT NULL,
        revoked_at BIGINT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (client_id),
        CHECK ((previous_secret_hash IS NULL) = (previous_valid_until IS NULL))
    )",
];

const DOWN: &[&str] = &[
    "DROP TABLE tenant_api_clients",
    "DROP INDEX tenants_one_platform",
    "DROP TABLE tenants",
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
