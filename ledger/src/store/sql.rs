//! Small SQL helpers shared by the store: placeholders per backend, chunked IN lists, row
//! decoding. Every amount column is a BIGINT of minor units, every time a BIGINT of
//! microseconds since the Unix epoch: exact and ordered the same on SQLite and PostgreSQL.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};
use uuid::Uuid;

use crate::account::Side;
use crate::chain::{EntryRecord, PostingRecord};
use crate::entry::EntryStatus;
use crate::error::LedgerError;

/// Most bound values per statement: below SQLite's 32,766 and PostgreSQL's 65,535.
pub(crate) const MAX_PARAMS: usize = 30_000;

/// Builds `(?, ?), (?, ?)` (SQLite) or `($1, $2), ($3, $4)` (PostgreSQL), numbering from `first`.
pub fn value_rows(backend: DbBackend, rows: usize, cols: usize, first: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    let mut n = first;
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            match backend {
                DbBackend::Postgres => {
                    s.push('$');
                    s.push_str(&n.to_string());
                }
                _ => s.push('?'),
            }
            n += 1;
        }
        s.push(')');
    }
    s
}

/// `?` or `$n`.
pub fn param(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    }
}

/// Numbered placeholders in the order values are pushed (`?` on SQLite binds in text order,
/// so a statement must be written in the order its values are pushed).
#[derive(Debug)]
pub struct Params {
    backend: DbBackend,
    pub values: Vec<Value>,
}

impl Params {
    pub fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            values: Vec::new(),
        }
    }

    /// The placeholder for `v`.
    pub fn push(&mut self, v: impl Into<Value>) -> String {
        self.values.push(v.into());
        param(self.backend, self.values.len())
    }

    /// `(?, ?, …)` for every item.
    pub fn list<T: Clone + Into<Value>>(&mut self, items: &[T]) -> String {
        let parts: Vec<String> = items.iter().map(|i| self.push(i.clone())).collect();
        format!("({})", parts.join(", "))
    }

    /// One row `(?, ?, …)` of a multi-row VALUES.
    pub fn row(&mut self, values: Vec<Value>) -> String {
        let parts: Vec<String> = values.into_iter().map(|v| self.push(v)).collect();
        format!("({})", parts.join(", "))
    }
}

/// `(?, ?, ?)` for an IN list of `count` values starting at parameter `first`.
pub(crate) fn in_list(backend: DbBackend, count: usize, first: usize) -> String {
    value_rows(backend, 1, count, first)
}

/// `IN (?, ?, …)` on SQLite; `= ANY($n)` on PostgreSQL, one array parameter, so the statement
/// text is the same whatever the count and PostgreSQL plans it once. Returns the condition and
/// its values.
pub(crate) fn member_of<T>(backend: DbBackend, items: &[T], first: usize) -> (String, Vec<Value>)
where
    T: Clone + Into<Value>,
    Vec<T>: Into<Value>,
{
    match backend {
        DbBackend::Postgres => (
            format!("= ANY({})", param(backend, first)),
            vec![items.to_vec().into()],
        ),
        _ => (
            format!("IN {}", in_list(backend, items.len(), first)),
            items.iter().cloned().map(Into::into).collect(),
        ),
    }
}

/// ` FOR UPDATE` on PostgreSQL; nothing on SQLite, whose write transactions are
/// `BEGIN IMMEDIATE` and so already exclusive.
pub fn for_update(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => " FOR UPDATE",
        _ => "",
    }
}

/// Runs `sql` built for `values`.
pub async fn query<C: ConnectionTrait>(
    db: &C,
    sql: String,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, LedgerError> {
    let backend = db.get_database_backend();
    let started = std::time::Instant::now();
    // Only build the trace's statement prefix when someone is listening: this is the hot path.
    let head: Option<String> =
        tracing::enabled!(tracing::Level::TRACE).then(|| sql.chars().take(60).collect());
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    if let Some(head) = head {
        tracing::trace!(us = started.elapsed().as_micros() as u64, rows = rows.len(), sql = %head, "ledger.query");
    }
    Ok(rows)
}

/// Executes `sql` built for `values`.
pub async fn exec<C: ConnectionTrait>(
    db: &C,
    sql: String,
    values: Vec<Value>,
) -> Result<u64, LedgerError> {
    let backend = db.get_database_backend();
    Ok(db
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
        .rows_affected())
}

pub fn get<T: sea_orm::TryGetable>(row: &QueryResult, idx: usize) -> Result<T, LedgerError> {
    Ok(row.try_get_by_index::<T>(idx)?)
}

/// Two columns whose values add up to `SUM(expr)` exactly, without overflow on any backend:
/// the sums of the high and the low 32 bits of each `expr` (an `i64`). SQLite's SUM of
/// integers fails with "integer overflow" past `i64` (PostgreSQL widens to numeric), and the
/// platform-wide sums (the trial balance, reconciliation) add every account's counters:
/// each half-sum stays within `i64` for up to 2^31 rows. Read with [`split_sum_value`].
/// `/` and `%` truncate toward zero on both backends, so `x = (x / 2^32) * 2^32 + x % 2^32`
/// holds for negative values too.
pub(crate) fn split_sum(expr: &str) -> String {
    format!("CAST(SUM(({expr}) / 4294967296) AS TEXT), CAST(SUM(({expr}) % 4294967296) AS TEXT)")
}

/// The exact sum from the two columns [`split_sum`] wrote at `idx` and `idx + 1` (NULL, no
/// rows, is 0).
pub(crate) fn split_sum_value(row: &QueryResult, idx: usize) -> Result<i128, LedgerError> {
    let part = |i: usize| -> Result<i128, LedgerError> {
        let s: Option<String> = get(row, i)?;
        let s = s.unwrap_or_else(|| "0".to_owned());
        s.parse::<i128>()
            .map_err(|_| LedgerError::Corrupt(format!("sum {s}")))
    };
    let high = part(idx)?;
    let low = part(idx + 1)?;
    // Each part is at most 2^31 rows of 2^32, so the combination fits i128 many times over.
    Ok(high * (1_i128 << 32) + low)
}

pub(crate) fn side(s: &str) -> Result<Side, LedgerError> {
    Side::parse(s).ok_or_else(|| LedgerError::Corrupt(format!("unknown side {s:?}")))
}

pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(us: i64) -> Result<DateTime<Utc>, LedgerError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| LedgerError::Corrupt(format!("time {us} out of range")))
}

/// Columns of `ledger_entries` in the order [`entry_values`] and [`entry_from_row`] use.
pub(crate) const ENTRY_COLS: &str = "tenant_id, id, seq, idempotency_key, request_hash, kind, status, \
     effective_date, booked_at, description, metadata, reverses_entry_id, hold_entry_id, expires_at, \
     prev_hash, hash";
pub(crate) const ENTRY_NCOLS: usize = 16;

pub(crate) fn entry_values(r: &EntryRecord, out: &mut Vec<Value>) {
    out.push(r.tenant_id.into());
    out.push(r.id.into());
    out.push(r.seq.into());
    out.push(r.idempotency_key.clone().into());
    out.push(r.request_hash.clone().into());
    out.push(r.kind.clone().into());
    out.push(r.status.as_str().into());
    out.push(r.effective_date.into());
    out.push(r.booked_at_us.into());
    out.push(r.description.clone().into());
    out.push(r.metadata.clone().into());
    out.push(r.reverses_entry_id.into());
    out.push(r.hold_entry_id.into());
    out.push(r.expires_at_us.into());
    out.push(r.prev_hash.clone().into());
    out.push(r.hash.clone().into());
}

/// An entry row without its postings (filled in by the caller).
pub(crate) fn entry_from_row(row: &QueryResult) -> Result<EntryRecord, LedgerError> {
    let status: String = get(row, 6)?;
    Ok(EntryRecord {
        tenant_id: get(row, 0)?,
        id: get(row, 1)?,
        seq: get(row, 2)?,
        idempotency_key: get(row, 3)?,
        request_hash: get(row, 4)?,
        kind: get(row, 5)?,
        status: match status.as_str() {
            "posted" => EntryStatus::Posted,
            "pending" => EntryStatus::Pending,
            other => {
                return Err(LedgerError::Corrupt(format!(
                    "unknown entry status {other:?}"
                )));
            }
        },
        effective_date: get::<NaiveDate>(row, 7)?,
        booked_at_us: get(row, 8)?,
        description: get(row, 9)?,
        metadata: get(row, 10)?,
        reverses_entry_id: get::<Option<Uuid>>(row, 11)?,
        hold_entry_id: get::<Option<Uuid>>(row, 12)?,
        expires_at_us: get::<Option<i64>>(row, 13)?,
        prev_hash: get(row, 14)?,
        hash: get(row, 15)?,
        postings: Vec::new(),
    })
}

/// Columns of `ledger_postings` as written.
pub(crate) const POSTING_COLS: &str = "tenant_id, entry_id, idx, account_id, seq, asset_code, side, amount, \
     pending, effective_date, booked_at";
pub(crate) const POSTING_NCOLS: usize = 11;

pub(crate) fn posting_values(r: &EntryRecord, idx: usize, p: &PostingRecord, out: &mut Vec<Value>) {
    out.push(r.tenant_id.into());
    out.push(r.id.into());
    out.push((idx as i32).into());
    out.push(p.account_id.into());
    out.push(r.seq.into());
    out.push(p.asset.clone().into());
    out.push(p.side.as_str().into());
    out.push(p.amount.into());
    out.push((r.status == EntryStatus::Pending).into());
    out.push(r.effective_date.into());
    out.push(r.booked_at_us.into());
}

/// Loads entries (with postings) of one tenant by id.
pub(crate) async fn load_entries<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<EntryRecord>, LedgerError> {
    let backend = db.get_database_backend();
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_PARAMS / 2) {
        let (member, ids_values) = member_of(backend, chunk, 2);
        let mut values: Vec<Value> = vec![tenant_id.into()];
        values.extend(ids_values);
        let sql = format!(
            "SELECT {ENTRY_COLS} FROM ledger_entries WHERE tenant_id = {} AND id {member}",
            param(backend, 1)
        );
        let rows = query(db, sql, values.clone()).await?;
        let mut records: Vec<EntryRecord> =
            rows.iter().map(entry_from_row).collect::<Result<_, _>>()?;
        let sql = format!(
            "SELECT entry_id, account_id, asset_code, side, amount FROM ledger_postings \
             WHERE tenant_id = {} AND entry_id {member} ORDER BY entry_id, idx",
            param(backend, 1)
        );
        attach_postings(&mut records, &query(db, sql, values).await?)?;
        out.extend(records);
    }
    Ok(out)
}

/// Attaches posting rows `(entry_id, account_id, asset_code, side, amount)` to their entries.
pub(crate) fn attach_postings(
    records: &mut [EntryRecord],
    rows: &[QueryResult],
) -> Result<(), LedgerError> {
    let index: std::collections::HashMap<Uuid, usize> =
        records.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    for row in rows {
        let entry_id: Uuid = get(row, 0)?;
        let side_name: String = get(row, 3)?;
        let posting = PostingRecord {
            account_id: get(row, 1)?,
            asset: get(row, 2)?,
            side: side(&side_name)?,
            amount: get(row, 4)?,
        };
        if let Some(i) = index.get(&entry_id) {
            records[*i].postings.push(posting);
        }
    }
    Ok(())
}

/// Canonical JSON text: object keys sorted at every depth, no whitespace. Stored as text and
/// hashed, so the chain does not depend on how a database normalises JSON.
pub(crate) fn canonical_json(v: &serde_json::Value) -> String {
    fn write(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String((*k).clone()).to_string());
                    out.push(':');
                    if let Some(inner) = map.get(*k) {
                        write(inner, out);
                    }
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}
