//! The end-of-day claim across processes: one row, `eod_lease`, whose `token` a runner
//! increments when it claims the run and checks first in every write transaction of the run
//! (the fencing token of `ledger/wraps/src/eod/claim.rs`). The lock that keeps two live runners
//! apart is not a row (a PostgreSQL advisory lock, or a lock file beside a SQLite database):
//! it must vanish with a crashed holder. The row only makes a runner that lost that lock stop
//! before it writes. A platform-wide row: on Citus a reference table.

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE eod_lease (
        name TEXT NOT NULL PRIMARY KEY CHECK (name = 'eod'),
        token BIGINT NOT NULL CHECK (token >= 0),
        holder TEXT,
        claimed_at BIGINT,
        fenced_at BIGINT
    )",
    "INSERT INTO eod_lease (name, token) VALUES ('eod', 0)",
];

const DOWN: &[&str] = &["DROP TABLE eod_lease"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), DOWN).await
    }
}
