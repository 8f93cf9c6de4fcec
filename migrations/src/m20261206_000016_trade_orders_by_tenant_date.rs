//! An index for end of day's reads of one book's orders by date: `trade_orders (tenant_id,
//! business_date)`. Execution reads a book's planned orders of the date, allocation its
//! filled orders of the last few dates (the settlement window). The primary key
//! `(tenant_id, id)` and `trade_orders_by_date (business_date, tenant_id, instrument)` both
//! match those filters, and SQLite without statistics chose the primary key, so each read
//! scanned the book's every order ever placed: the two reads took 3.8 s of a 51 s demo
//! year at 1,000 wraps and grew with every day of history (docs/BENCHMARKS.md, "The demo").
//! With this index both search by book and date.

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] =
    &["CREATE INDEX trade_orders_by_tenant_date ON trade_orders (tenant_id, business_date)"];

const DOWN: &[&str] = &["DROP INDEX trade_orders_by_tenant_date"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager.get_connection(), DOWN).await
    }
}
