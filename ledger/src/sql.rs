//! The SQL dialect every crate uses for raw statements on both backends: placeholders
//! ([`Params`]), statements, row decoding, timestamps as microseconds. Amounts are BIGINT
//! minor units; no `Decimal` is ever bound (sea-orm binds it as a float on SQLite).
//! The ledger's own store wraps these with its typed errors (`store::sql`).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Statement, Value};

/// Most rows per multi-row INSERT (rows × columns stays far below both backends' limits).
pub const INSERT_ROWS: usize = 1_000;

/// Most codes per IN list.
pub const IN_CHUNK: usize = 500;

pub use crate::store::{Params, for_update, param};

pub async fn query<C: ConnectionTrait>(
    db: &C,
    sql: String,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, DbErr> {
    let backend = db.get_database_backend();
    db.query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
}

pub async fn exec<C: ConnectionTrait>(
    db: &C,
    sql: String,
    values: Vec<Value>,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    Ok(db
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
        .rows_affected())
}

pub fn get<T: sea_orm::TryGetable>(row: &QueryResult, idx: usize) -> Result<T, DbErr> {
    row.try_get_by_index::<T>(idx)
}

pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(us: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
}

/// The same statements and decoders with the ledger's typed errors ([`crate::LedgerError`]), for
/// stores outside this crate that answer in it (the wrap business's customers and wraps):
/// `from_micros` refuses a time out of range instead of answering `None`, and `value_rows`
/// builds a multi-row `VALUES` list for either backend.
pub mod typed {
    pub use crate::store::sql::{exec, from_micros, get, micros, query, value_rows};
}
