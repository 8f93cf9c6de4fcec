//! The end-of-day rules of a price upload (the prices themselves are the books' market data,
//! stored by [`ledger::store::market::store_prices`]):
//! * a date whose end of day has **finished** keeps its prices: an upload naming it is
//!   refused whole (409 naming the dates);
//! * a date whose end of day has **traded** an instrument (netted and sent to market) keeps the
//!   price the trades used: another price for it is refused, the same price accepted;
//! * a date whose end of day is **running** accepts the upload and counts it
//!   (`eod_runs.price_revision`), so the finishing transaction sees that valuation may have
//!   read older prices and revalues (see [`super`], "a price is never stored unused").
//!
//! `eod_runs` and `trade_netting` are end of day's tables: this module is the only writer of
//! a price upload's side of them, and the API's `POST /v1/prices` and the synthetic book call
//! [`upload`]. Tried by `api/tests/http/instruments.rs::prices_replace_until_end_of_day`,
//! `eod.rs` (a price racing valuation) and `eod_trading.rs` (a price after trading).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use ledger::LedgerError;
use ledger::market::{FieldError, MarketError};
use ledger::sql::typed::{exec, get, query};
use ledger::sql::{IN_CHUNK, Params};
use ledger::store::market::{PriceRow, UploadCounts, store_prices};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseTransaction};

/// Stores checked prices inside `txn`, all or nothing: refused whole (409 naming the dates)
/// if any date's end of day has finished or has traded at another price; otherwise counted in
/// the running dates' revisions and stored ([`ledger::store::market::store_prices`], which
/// inserts or replaces earlier prices of the same (instrument, date)). Rows must be distinct
/// by (instrument, date) and name existing instruments (the caller checks both, to name each
/// bad row).
pub async fn upload(
    txn: &DatabaseTransaction,
    rows: &[PriceRow],
    uploaded_by: &str,
    now: DateTime<Utc>,
) -> Result<UploadCounts, MarketError> {
    let dates: Vec<NaiveDate> = {
        let set: HashSet<NaiveDate> = rows.iter().map(|r| r.date).collect();
        let mut v: Vec<NaiveDate> = set.into_iter().collect();
        v.sort();
        v
    };
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        // Take the table's write lock before reading the dates' status, in the same order as
        // end of day's finishing transaction (`LOCK … IN SHARE MODE`, then its check and the
        // `finished` update): either this upload goes first and end of day, waiting for it,
        // sees its prices and revalues, or end of day goes first and this upload, waiting,
        // then reads `finished` and is refused. Reading the status first would let an upload
        // that read `running` insert after the date finished. (SQLite runs one writer at a
        // time, so the status it reads holds until it commits.)
        txn.execute_unprepared("LOCK TABLE instrument_prices IN ROW EXCLUSIVE MODE")
            .await?;
    }
    let frozen = finished_dates(txn, &dates).await?;
    if !frozen.is_empty() {
        let names: Vec<String> = frozen.iter().map(NaiveDate::to_string).collect();
        return Err(MarketError::Conflict {
            detail: format!(
                "end of day has finished for {}: its prices can no longer be replaced",
                names.join(", ")
            ),
            errors: names
                .iter()
                .map(|d| FieldError::new("date", format!("end of day for {d} has finished")))
                .collect(),
        });
    }
    let traded = traded_at_other_prices(txn, rows).await?;
    if !traded.is_empty() {
        return Err(MarketError::Conflict {
            detail: format!(
                "end of day has already traded at another price: {}; a price that trades did \
                 not use cannot be stored for their date",
                traded.join("; ")
            ),
            errors: traded
                .iter()
                .map(|t| FieldError::new("price", t.clone()))
                .collect(),
        });
    }
    let backend = txn.get_database_backend();
    // A date whose end of day is running counts this upload, so that its finishing
    // transaction sees that valuation may have read older prices (migration
    // `m20261207_000019_price_revisions`). On PostgreSQL the row lock this takes orders the
    // upload with valuation's read of the counter: whichever commits first, the other sees it.
    if !dates.is_empty() {
        let mut p = Params::new(backend);
        let list = p.list(&dates);
        let q = format!(
            "UPDATE eod_runs SET price_revision = price_revision + 1 \
             WHERE business_date IN {list} AND status = 'running'"
        );
        exec(txn, q, p.values).await?;
    }
    store_prices(txn, rows, uploaded_by, now).await
}

/// Whether end of day for `date` has finished (its prices are then frozen).
pub async fn eod_finished<C: ConnectionTrait>(
    db: &C,
    date: NaiveDate,
) -> Result<bool, LedgerError> {
    Ok(!finished_dates(db, &[date]).await?.is_empty())
}

/// Those of `dates` whose end of day has finished, in date order.
pub async fn finished_dates<C: ConnectionTrait>(
    db: &C,
    dates: &[NaiveDate],
) -> Result<Vec<NaiveDate>, LedgerError> {
    let mut out = Vec::new();
    for chunk in dates.chunks(IN_CHUNK) {
        let mut p = Params::new(db.get_database_backend());
        let q = format!(
            "SELECT business_date FROM eod_runs WHERE status = 'finished' AND business_date IN {}",
            p.list(chunk)
        );
        for row in query(db, q, p.values).await? {
            out.push(get::<NaiveDate>(&row, 0)?);
        }
    }
    out.sort();
    Ok(out)
}

/// The rows of an upload whose instrument end of day has already netted and sent to market on
/// their date at another price (or at an earlier date's price): storing them would leave the
/// day's trades at a price that is no longer the day's, unflagged. A row equal to the price
/// the trades used is accepted (a re-upload). On PostgreSQL the netting step holds
/// `instrument_prices` in SHARE mode and this upload holds it in ROW EXCLUSIVE mode, so either
/// the upload lands before netting reads prices or it sees netting's rows here.
async fn traded_at_other_prices(
    txn: &DatabaseTransaction,
    rows: &[PriceRow],
) -> Result<Vec<String>, MarketError> {
    let mut out = Vec::new();
    for chunk in rows.chunks(IN_CHUNK) {
        let mut p = Params::new(txn.get_database_backend());
        let dates: Vec<NaiveDate> = chunk.iter().map(|r| r.date).collect();
        let codes: Vec<String> = chunk.iter().map(|r| r.instrument.clone()).collect();
        let q = format!(
            "SELECT DISTINCT n.instrument, n.business_date, n.price, n.price_date, i.price_scale \
             FROM trade_netting n JOIN instruments i ON i.code = n.instrument \
             WHERE n.business_date IN {} AND n.instrument IN {}",
            p.list(&dates),
            p.list(&codes)
        );
        let mut used: HashMap<(String, NaiveDate), (String, NaiveDate, i32)> = HashMap::new();
        for r in query(txn, q, p.values).await? {
            used.insert(
                (get::<String>(&r, 0)?, get::<NaiveDate>(&r, 1)?),
                (
                    get::<String>(&r, 2)?,
                    get::<NaiveDate>(&r, 3)?,
                    get::<i32>(&r, 4)?,
                ),
            );
        }
        for row in chunk {
            let Some((price, price_date, scale)) = used.get(&(row.instrument.clone(), row.date))
            else {
                continue;
            };
            let new = Decimal::from_i128_with_scale(
                i128::from(row.price),
                u32::try_from(*scale).unwrap_or(0),
            );
            let same = *price_date == row.date
                && ledger::amount::parse_decimal(price).is_ok_and(|p| p == new);
            if !same {
                out.push(format!(
                    "{} on {} was traded at {price} (the price of {price_date})",
                    row.instrument, row.date
                ));
            }
        }
    }
    Ok(out)
}
