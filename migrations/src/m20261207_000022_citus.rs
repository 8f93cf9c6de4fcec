//! On a Citus database (the `citus` extension installed in it), every table is distributed by
//! `tenant_id` or made a reference table, as `crate::citus` and `migrations/citus/tables.txt`
//! say; elsewhere (SQLite, plain PostgreSQL) this migration does nothing.
//!
//! It comes last so that it sees the whole schema: tables created by later migrations must
//! place themselves (call `crate::citus::distribute` at their end, which only touches tables
//! that are not Citus tables yet).

use sea_orm_migration::prelude::*;

use crate::citus;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// One transaction: the schema is distributed whole or not at all.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if citus::is_citus(db).await? {
            citus::distribute(db).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if citus::is_citus(db).await? {
            citus::undistribute(db).await?;
        }
        Ok(())
    }
}
