//! Persistence of market data: instruments and prices. Platform-wide reference data: no
//! tenant owns an instrument or a price, so these queries take no tenant id.
//!
//! Prices are BIGINT counts of `10^-price_scale` of the currency, minimum orders BIGINT minor
//! units of the currency: exact on both backends, never bound as a `Decimal` (sea-orm would
//! bind it as a float on SQLite).
//!
//! When a date's prices may still be replaced is end of day's rule, not the books': an upload
//! goes through `wraps::eod::prices::upload`, which checks it and then calls
//! [`store_prices`]. Tried by `api/tests/http/instruments.rs::prices_replace_until_end_of_day`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult, SqlErr, Value};
use serde::Serialize;

use super::sql::{self, Params, get};
use crate::asset::{Asset, AssetKind};
use crate::error::LedgerError;
use crate::market::{
    FieldError, Instrument, InstrumentKind, InstrumentPatch, InstrumentStatus, MarketError,
    NewInstrument, PriceQuote, money_minor,
};

/// Most codes in one `IN` list (well below both backends' parameter limits).
const CHUNK: usize = 1_000;

const INSTRUMENT_COLS: &str = "i.code, i.name, i.kind, i.currency, i.unit_scale, i.quote_unit, i.price_scale, \
     i.min_order_amount, i.settlement_days, i.status, i.created_at, i.updated_at, c.scale";
const INSTRUMENT_FROM: &str = "instruments i JOIN ledger_assets c ON c.code = i.currency";

fn scale_of(v: i32, what: &str) -> Result<u32, LedgerError> {
    u32::try_from(v).map_err(|_| LedgerError::Corrupt(format!("{what} {v}")))
}

fn instrument_from_row(row: &QueryResult) -> Result<Instrument, LedgerError> {
    let kind: String = get(row, 2)?;
    let status: String = get(row, 9)?;
    let currency_scale = scale_of(get(row, 12)?, "currency scale")?;
    Ok(Instrument {
        code: get(row, 0)?,
        name: get(row, 1)?,
        kind: InstrumentKind::parse(&kind)
            .ok_or_else(|| LedgerError::Corrupt(format!("instrument kind {kind:?}")))?,
        currency: get(row, 3)?,
        unit_scale: scale_of(get(row, 4)?, "unit scale")?,
        quote_unit: get(row, 5)?,
        price_scale: scale_of(get(row, 6)?, "price scale")?,
        min_order_amount: Decimal::from_i128_with_scale(
            i128::from(get::<i64>(row, 7)?),
            currency_scale,
        ),
        settlement_days: scale_of(get(row, 8)?, "settlement days")?,
        status: InstrumentStatus::parse(&status)
            .ok_or_else(|| LedgerError::Corrupt(format!("instrument status {status:?}")))?,
        created_at: sql::from_micros(get(row, 10)?)?,
        updated_at: sql::from_micros(get(row, 11)?)?,
    })
}

/// The instrument with this code; `UnknownAsset(code)` if there is none.
pub async fn instrument<C: ConnectionTrait>(db: &C, code: &str) -> Result<Instrument, LedgerError> {
    instruments_by_code(db, &[code.to_owned()])
        .await?
        .remove(code)
        .ok_or_else(|| LedgerError::UnknownAsset(code.to_owned()))
}

/// The instruments among `codes` that exist, by code (unknown codes are simply absent).
pub async fn instruments_by_code<C: ConnectionTrait>(
    db: &C,
    codes: &[String],
) -> Result<HashMap<String, Instrument>, LedgerError> {
    let mut out = HashMap::new();
    for chunk in codes.chunks(CHUNK) {
        let mut p = Params::new(db.get_database_backend());
        let q = format!(
            "SELECT {INSTRUMENT_COLS} FROM {INSTRUMENT_FROM} WHERE i.code IN {}",
            p.list(chunk)
        );
        for row in sql::query(db, q, p.values).await? {
            let i = instrument_from_row(&row)?;
            out.insert(i.code.clone(), i);
        }
    }
    Ok(out)
}

/// A page of instruments in code order, after `after`, optionally filtered; and the cursor
/// of the next page.
pub async fn list_instruments<C: ConnectionTrait>(
    db: &C,
    status: Option<InstrumentStatus>,
    kind: Option<InstrumentKind>,
    after: Option<&str>,
    limit: u64,
) -> Result<(Vec<Instrument>, Option<String>), LedgerError> {
    let mut p = Params::new(db.get_database_backend());
    let mut conditions = vec!["1 = 1".to_owned()];
    if let Some(s) = status {
        conditions.push(format!("i.status = {}", p.push(s.as_str())));
    }
    if let Some(k) = kind {
        conditions.push(format!("i.kind = {}", p.push(k.as_str())));
    }
    if let Some(a) = after {
        conditions.push(format!("i.code > {}", p.push(a.to_owned())));
    }
    let take = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
    let q = format!(
        "SELECT {INSTRUMENT_COLS} FROM {INSTRUMENT_FROM} WHERE {} ORDER BY i.code LIMIT {}",
        conditions.join(" AND "),
        p.push(take)
    );
    let mut items = sql::query(db, q, p.values)
        .await?
        .iter()
        .map(instrument_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let next = page_cursor(&mut items, limit, |i| i.code.clone());
    Ok((items, next))
}

/// Cuts a page fetched with one extra row back to `limit`, returning the next cursor.
pub(crate) fn page_cursor<T>(
    items: &mut Vec<T>,
    limit: u64,
    key: impl Fn(&T) -> String,
) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if items.len() > limit {
        items.truncate(limit);
        items.last().map(key)
    } else {
        None
    }
}

/// Registers an instrument and its ledger asset inside `txn`. Refuses bad fields (every one
/// named), an unknown currency, a minimum order not exact to the currency, and a code taken by
/// any asset (409).
pub async fn create_instrument(
    txn: &DatabaseTransaction,
    new: &NewInstrument,
    now: DateTime<Utc>,
) -> Result<Instrument, MarketError> {
    new.validate()?;
    let currency = super::read::load_assets(txn, std::slice::from_ref(&new.currency))
        .await?
        .pop()
        .filter(|a| a.kind == AssetKind::Currency)
        .ok_or_else(|| {
            MarketError::field(
                "currency",
                format!("{} is not a registered currency", new.currency),
            )
        })?;
    let min_order = money_minor(new.min_order_amount, currency.scale)
        .map_err(|m| MarketError::field("min_order_amount", m))?;
    if !super::read::load_assets(txn, std::slice::from_ref(&new.code))
        .await?
        .is_empty()
    {
        return Err(taken(&new.code));
    }
    let asset = Asset::instrument(&new.code, new.unit_scale, &new.currency, new.quote_unit);
    if let Err(e) = super::create_asset_in(txn, &asset).await {
        return Err(match e {
            LedgerError::AssetConflict(_) => taken(&new.code),
            other => other.into(),
        });
    }
    let price_scale = new.price_scale.unwrap_or(currency.scale);
    let settlement_days = new.settlement_days.unwrap_or(1);
    let backend = txn.get_database_backend();
    let mut p = Params::new(backend);
    let values = [
        p.push(new.code.clone()),
        p.push(new.name.clone()),
        p.push(new.kind.as_str()),
        p.push(new.currency.clone()),
        p.push(new.unit_scale as i32),
        p.push(new.quote_unit),
        p.push(price_scale as i32),
        p.push(min_order),
        p.push(settlement_days as i32),
        p.push(new.status.as_str()),
        p.push(sql::micros(now)),
        p.push(sql::micros(now)),
    ];
    let q = format!(
        "INSERT INTO instruments (code, name, kind, currency, unit_scale, quote_unit, price_scale, \
         min_order_amount, settlement_days, status, created_at, updated_at) VALUES ({})",
        values.join(", ")
    );
    match sql::exec(txn, q, p.values).await {
        Err(LedgerError::Storage(e))
            if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
        {
            return Err(taken(&new.code));
        }
        other => other?,
    };
    Ok(instrument(txn, &new.code).await?)
}

fn taken(code: &str) -> MarketError {
    MarketError::Conflict {
        detail: format!("the code {code} is already taken by an asset"),
        errors: vec![FieldError::new("code", "already taken")],
    }
}

/// Applies `patch` to the instrument `code` inside `txn`; returns it before and after.
pub async fn update_instrument(
    txn: &DatabaseTransaction,
    code: &str,
    patch: &InstrumentPatch,
    now: DateTime<Utc>,
) -> Result<(Instrument, Instrument), MarketError> {
    let before = instrument(txn, code).await.map_err(|e| match e {
        LedgerError::UnknownAsset(c) => MarketError::NotFound(format!("instrument {c}")),
        other => MarketError::Ledger(other),
    })?;
    let mut errors = Vec::new();
    if let Some(Err(m)) = patch.name.as_deref().map(crate::market::check_name) {
        errors.push(FieldError::new("name", m));
    }
    if let Some(Err(m)) = patch
        .settlement_days
        .map(crate::market::check_settlement_days)
    {
        errors.push(FieldError::new("settlement_days", m));
    }
    let currency_scale = before.min_order_amount.scale();
    let min_order = match patch.min_order_amount {
        Some(v) => match money_minor(v, currency_scale) {
            Ok(m) => Some(m),
            Err(m) => {
                errors.push(FieldError::new("min_order_amount", m));
                None
            }
        },
        None => None,
    };
    if !errors.is_empty() {
        return Err(MarketError::Invalid(errors));
    }
    let mut p = Params::new(txn.get_database_backend());
    let mut sets = Vec::new();
    if let Some(name) = &patch.name {
        sets.push(format!("name = {}", p.push(name.clone())));
    }
    if let Some(s) = patch.status {
        sets.push(format!("status = {}", p.push(s.as_str())));
    }
    if let Some(m) = min_order {
        sets.push(format!("min_order_amount = {}", p.push(m)));
    }
    if let Some(d) = patch.settlement_days {
        sets.push(format!("settlement_days = {}", p.push(d as i32)));
    }
    sets.push(format!("updated_at = {}", p.push(sql::micros(now))));
    let q = format!(
        "UPDATE instruments SET {} WHERE code = {}",
        sets.join(", "),
        p.push(code.to_owned())
    );
    sql::exec(txn, q, p.values).await?;
    let after = instrument(txn, code).await?;
    Ok((before, after))
}

/// The last price on or before `as_of` of each of `codes` that has one (one query per 1,000
/// codes: end of day values every holding with it). The latest date is looked up once per
/// instrument (the subquery is correlated to `instruments`, a seek on the price key), then
/// the price row by its key: correlated to the price rows instead, it ran once per stored
/// price, a cost that grew with every day of history (7-10 ms a call after a year of twelve
/// funds, against 0.2 ms; docs/BENCHMARKS.md, "2026-12-01: a slower machine, …").
pub async fn latest_prices<C: ConnectionTrait>(
    db: &C,
    codes: &[String],
    as_of: NaiveDate,
) -> Result<HashMap<String, PriceQuote>, LedgerError> {
    let mut out = HashMap::new();
    for chunk in codes.chunks(CHUNK) {
        let mut p = Params::new(db.get_database_backend());
        // Pushed in the order they appear in the text (`?` binds in text order on SQLite).
        let date = p.push(as_of);
        let list = p.list(chunk);
        let q = format!(
            "SELECT p.instrument_code, p.price_date, p.price, i.price_scale \
             FROM instruments i JOIN instrument_prices p ON p.instrument_code = i.code \
             AND p.price_date = ( \
                 SELECT MAX(q.price_date) FROM instrument_prices q \
                 WHERE q.instrument_code = i.code AND q.price_date <= {date}) \
             WHERE i.code IN {list}"
        );
        for row in sql::query(db, q, p.values).await? {
            let scale = scale_of(get(&row, 3)?, "price scale")?;
            out.insert(
                get::<String>(&row, 0)?,
                PriceQuote {
                    date: get(&row, 1)?,
                    price: Decimal::from_i128_with_scale(i128::from(get::<i64>(&row, 2)?), scale),
                },
            );
        }
    }
    Ok(out)
}

/// One checked price to store: `price` in `10^-price_scale` of the instrument's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceRow {
    pub instrument: String,
    pub date: NaiveDate,
    pub price: i64,
}

/// What an upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UploadCounts {
    /// Prices for an (instrument, date) that had none.
    pub inserted: u64,
    /// Prices that replaced an earlier upload's.
    pub replaced: u64,
}

/// Stores checked prices inside `txn`, inserting or replacing earlier prices of the same
/// (instrument, date). Storage only: whether a date's prices may still change is end of
/// day's rule, checked first by `wraps::eod::prices::upload`, the one caller. Rows must be
/// distinct by (instrument, date) and name existing instruments (the API checks both, to name
/// each bad row).
pub async fn store_prices(
    txn: &DatabaseTransaction,
    rows: &[PriceRow],
    uploaded_by: &str,
    now: DateTime<Utc>,
) -> Result<UploadCounts, MarketError> {
    let backend = txn.get_database_backend();
    let dates: Vec<NaiveDate> = {
        let set: HashSet<NaiveDate> = rows.iter().map(|r| r.date).collect();
        let mut v: Vec<NaiveDate> = set.into_iter().collect();
        v.sort();
        v
    };
    // Which keys exist already: the codes' prices within the upload's date range, matched here.
    let codes: Vec<String> = {
        let set: HashSet<&str> = rows.iter().map(|r| r.instrument.as_str()).collect();
        set.into_iter().map(str::to_owned).collect()
    };
    let keys: HashSet<(&str, NaiveDate)> = rows
        .iter()
        .map(|r| (r.instrument.as_str(), r.date))
        .collect();
    let mut replaced = 0_u64;
    if let (Some(first), Some(last)) = (dates.first(), dates.last()) {
        for chunk in codes.chunks(CHUNK) {
            let mut p = Params::new(backend);
            let list = p.list(chunk);
            let q = format!(
                "SELECT instrument_code, price_date FROM instrument_prices \
                 WHERE instrument_code IN {list} AND price_date >= {} AND price_date <= {}",
                p.push(*first),
                p.push(*last)
            );
            for row in sql::query(txn, q, p.values).await? {
                let code: String = get(&row, 0)?;
                let date: NaiveDate = get(&row, 1)?;
                if keys.contains(&(code.as_str(), date)) {
                    replaced += 1;
                }
            }
        }
    }
    // The same upsert spelling works on SQLite (3.24+) and PostgreSQL.
    let upsert = "ON CONFLICT (instrument_code, price_date) DO UPDATE SET price = excluded.price, \
                  uploaded_at = excluded.uploaded_at, uploaded_by = excluded.uploaded_by";
    let at = sql::micros(now);
    for chunk in rows.chunks(sql::MAX_PARAMS / 5) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 5);
        for r in chunk {
            values.push(r.instrument.clone().into());
            values.push(r.date.into());
            values.push(r.price.into());
            values.push(at.into());
            values.push(uploaded_by.to_owned().into());
        }
        let q = format!(
            "INSERT INTO instrument_prices (instrument_code, price_date, price, uploaded_at, uploaded_by) \
             VALUES {} {upsert}",
            sql::value_rows(backend, chunk.len(), 5, 1)
        );
        sql::exec(txn, q, values).await?;
    }
    let total = rows.len() as u64;
    Ok(UploadCounts {
        inserted: total - replaced,
        replaced,
    })
}

/// A stored price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StoredPrice {
    pub instrument: String,
    pub date: NaiveDate,
    /// Per quote unit, in the instrument's currency.
    #[schema(value_type = String, example = "10234")]
    pub price: Decimal,
    pub uploaded_at: DateTime<Utc>,
    /// The API client that uploaded it.
    pub uploaded_by: String,
}

/// A page of prices in (instrument, date) order after `after`, filtered; and the next cursor
/// (`{instrument}/{date}` of the last item).
pub async fn list_prices<C: ConnectionTrait>(
    db: &C,
    instrument: Option<&str>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    after: Option<(String, NaiveDate)>,
    limit: u64,
) -> Result<(Vec<StoredPrice>, Option<String>), LedgerError> {
    let mut p = Params::new(db.get_database_backend());
    let mut conditions = vec!["1 = 1".to_owned()];
    if let Some(i) = instrument {
        conditions.push(format!("p.instrument_code = {}", p.push(i.to_owned())));
    }
    if let Some(f) = from {
        conditions.push(format!("p.price_date >= {}", p.push(f)));
    }
    if let Some(t) = to {
        conditions.push(format!("p.price_date <= {}", p.push(t)));
    }
    if let Some((code, date)) = after {
        let c1 = p.push(code.clone());
        let c2 = p.push(code);
        let d = p.push(date);
        conditions.push(format!(
            "(p.instrument_code > {c1} OR (p.instrument_code = {c2} AND p.price_date > {d}))"
        ));
    }
    let take = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
    let q = format!(
        "SELECT p.instrument_code, p.price_date, p.price, i.price_scale, p.uploaded_at, p.uploaded_by \
         FROM instrument_prices p JOIN instruments i ON i.code = p.instrument_code \
         WHERE {} ORDER BY p.instrument_code, p.price_date LIMIT {}",
        conditions.join(" AND "),
        p.push(take)
    );
    let mut items = Vec::new();
    for row in sql::query(db, q, p.values).await? {
        let scale = scale_of(get(&row, 3)?, "price scale")?;
        items.push(StoredPrice {
            instrument: get(&row, 0)?,
            date: get(&row, 1)?,
            price: Decimal::from_i128_with_scale(i128::from(get::<i64>(&row, 2)?), scale),
            uploaded_at: sql::from_micros(get(&row, 4)?)?,
            uploaded_by: get(&row, 5)?,
        });
    }
    let next = page_cursor(&mut items, limit, |p| {
        format!("{}/{}", p.instrument, p.date)
    });
    Ok((items, next))
}
