//! Branches and advisers (issue 24): a distributor's customers belong to a branch and have an
//! adviser, and an adviser sees their branch's customers only.
//!
//! * `branches`: per distributor, a code unique in the tenant and a name. Written by
//!   `tenants::branches`.
//! * `console_users.branch_id`: the branch of an adviser (and of no other role).
//! * `customers.branch_id`, `customers.adviser_id`: where a customer belongs and who looks
//!   after them; both empty until assigned (`PUT /v1/customers/{id}/assignment`).
//!
//! The new columns carry no foreign key: SQLite cannot add a composite one to an existing
//! table, and a key on `id` alone would not name the tenant (deploy/SCALING.md). Their owners
//! check them in the writing transaction instead (`tenants::users`, `wraps::customers`).
//! `branches` is distributed by tenant on Citus like every tenant table.

use sea_orm_migration::prelude::*;

use crate::{citus, sql};

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE branches (
        tenant_id {uuid} NOT NULL REFERENCES tenants (id),
        id {uuid} NOT NULL,
        code TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 20),
        name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        created_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, code)
    )",
    "ALTER TABLE console_users ADD COLUMN branch_id {uuid} NULL",
    "ALTER TABLE customers ADD COLUMN branch_id {uuid} NULL",
    "ALTER TABLE customers ADD COLUMN adviser_id {uuid} NULL",
    "CREATE INDEX customers_by_branch ON customers (tenant_id, branch_id, id)",
];

const DOWN: &[&str] = &[
    "DROP INDEX customers_by_branch",
    "ALTER TABLE customers DROP COLUMN adviser_id",
    "ALTER TABLE customers DROP COLUMN branch_id",
    "ALTER TABLE console_users DROP COLUMN branch_id",
    "DROP TABLE branches",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        sql::run(db, UP).await?;
        // Tables created after the Citus migration place themselves (migration 000022).
        if citus::is_citus(db).await? {
            citus::distribute(db).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), DOWN).await
    }
}
