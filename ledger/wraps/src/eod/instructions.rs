//! External execution: a distributor whose venue is `external` (set by the platform at
//! `/v1/tenants/{id}/execution-venue`) has its block orders executed by its own account
//! system instead of the simulated venue. The execution step turns each of its block orders
//! into an **instruction** (same id as the block, `awaiting_fills`); the account system reads
//! them at `/v1/instructions` and reports what it executed at `/v1/instructions/{id}/fills`;
//! the day waits in `awaiting_fills` until every instruction of the date is complete, and a
//! re-run of the date then goes on with allocation, which reads the reported fills from
//! `trade_fills` like any venue's.
//!
//! This module owns the venue setting, the instructions and the fills reported against them.
//! It never posts to the ledger: what a fill means for the wraps is allocation's business
//! ([`super::trading`]).
//!
//! Invariants, and the tests (`api/tests/http/eod_instructions.rs`) that try them:
//! * **a fill is counted once**: a report is keyed by (instruction, `fill_id`); the same
//!   report again returns the first answer and writes nothing, the same id with other figures
//!   answers 409. Tried by `an_external_distributor_waits_for_its_fills`;
//! * **never more than asked**: the fills of a buy never pay more than its amount, those of a
//!   sell never sell more than its units; a report beyond that is refused whole (422) — under
//!   concurrency too, as reports of one instruction are serialised on its row (`FOR UPDATE` on
//!   PostgreSQL, the write lock on SQLite). Tried by the same test;
//! * **a complete instruction is closed**: once complete (its last report said `final`, it
//!   was filled up to what it asked, or the platform closed it because its account system
//!   never would: [`close`]) a new fill answers 409, so the figures allocation
//!   reads cannot move under it. An instruction's status and its block order's status change
//!   together, in the transaction of the report that completes it;
//! * **the day waits for every instruction of the date**: see [`super`] (the execution step
//!   is `awaiting_fills` until [`open_count`] is zero).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use ledger::asset::decimal_of;
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseTransaction, Value};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::trading::{Pricing, TradeSide};
use super::{EodError, corrupt};
use crate::events::{NewEvent, types};
use ledger::sql::{IN_CHUNK, Params, exec, from_micros, get, micros, query};

// ---------------------------------------------------------------------------------------
// The venue setting

/// Where a distributor's block orders are executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VenueKind {
    /// Filled in full at the day's price during end of day (the default).
    Simulated,
    /// Sent as instructions to the distributor's account system, which reports the fills.
    External,
}

impl VenueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Simulated => "simulated",
            Self::External => "external",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "simulated" => Some(Self::Simulated),
            "external" => Some(Self::External),
            _ => None,
        }
    }
}

/// A distributor's execution venue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VenueSetting {
    pub tenant_id: Uuid,
    pub venue: VenueKind,
    /// When it was last set (absent: never set, the default applies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_at: Option<DateTime<Utc>>,
    /// The client that set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_by: Option<String>,
}

/// The venue of `tenant_id` (`simulated` when never set).
pub async fn venue_of<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
) -> Result<VenueSetting, EodError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT venue, set_at, set_by FROM execution_venues WHERE tenant_id = {}",
        pa.push(tenant_id)
    );
    let rows = query(db, q, pa.values).await?;
    let Some(r) = rows.first() else {
        return Ok(VenueSetting {
            tenant_id,
            venue: VenueKind::Simulated,
            set_at: None,
            set_by: None,
        });
    };
    let venue: String = get(r, 0)?;
    Ok(VenueSetting {
        tenant_id,
        venue: VenueKind::parse(&venue).ok_or_else(|| corrupt(format!("venue {venue:?}")))?,
        set_at: from_micros(get(r, 1)?),
        set_by: Some(get(r, 2)?),
    })
}

/// Sets the venue of `tenant_id` (the caller checked it is a distributor). Takes effect at
/// the next execution step; instructions already sent stay open until complete.
pub async fn set_venue(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    venue: VenueKind,
    by: &str,
    now: DateTime<Utc>,
) -> Result<VenueSetting, EodError> {
    let b = txn.get_database_backend();
    let mut pa = Params::new(b);
    let q = format!(
        "DELETE FROM execution_venues WHERE tenant_id = {}",
        pa.push(tenant_id)
    );
    exec(txn, q, pa.values).await?;
    let mut pa = Params::new(b);
    let row = pa.row(vec![
        tenant_id.into(),
        venue.as_str().into(),
        micros(now).into(),
        by.to_owned().into(),
    ]);
    let q = format!("INSERT INTO execution_venues (tenant_id, venue, set_at, set_by) VALUES {row}");
    exec(txn, q, pa.values).await?;
    venue_of(txn, tenant_id).await
}

/// The distributors whose venue is `external`.
pub async fn external_tenants<C: ConnectionTrait>(db: &C) -> Result<HashSet<Uuid>, EodError> {
    query(
        db,
        "SELECT tenant_id FROM execution_venues WHERE venue = 'external'".to_owned(),
        vec![],
    )
    .await?
    .iter()
    .map(|r| get::<Uuid>(r, 0).map_err(EodError::from))
    .collect()
}

// ---------------------------------------------------------------------------------------
// Sending and counting (the execution step)

/// Sends the block orders `blocks` (tenant, id) of `date` out as instructions: one
/// `awaiting_fills` row each, and the block marked as at the external venue (its status
/// stays `open` until the instruction completes).
pub async fn send(
    txn: &DatabaseTransaction,
    date: NaiveDate,
    blocks: &[(Uuid, Uuid)],
    now: DateTime<Utc>,
) -> Result<(), EodError> {
    let b = txn.get_database_backend();
    let rows: Vec<Vec<Value>> = blocks
        .iter()
        .map(|(t, id)| {
            vec![
                (*t).into(),
                (*id).into(),
                date.into(),
                "awaiting_fills".into(),
                micros(now).into(),
            ]
        })
        .collect();
    super::trading::insert_rows(
        txn,
        "instructions (tenant_id, id, business_date, status, created_at)",
        rows,
    )
    .await?;
    let ids: Vec<Uuid> = blocks.iter().map(|(_, id)| *id).collect();
    for chunk in ids.chunks(IN_CHUNK) {
        let mut pa = Params::new(b);
        let list = pa.list(chunk);
        let q = format!(
            "UPDATE block_orders SET venue = 'external' WHERE id IN {list} AND status = 'open'"
        );
        exec(txn, q, pa.values).await?;
    }
    // Told to each distributor's account system, so it need not poll (issue 26).
    let events = blocks
        .iter()
        .map(|(tenant_id, id)| {
            NewEvent::new(
                *tenant_id,
                types::INSTRUCTION_CREATED,
                format!("instruction:{id}"),
                Some(date),
                serde_json::json!({ "instruction_id": id, "status": "awaiting_fills" }),
            )
        })
        .collect();
    crate::events::record(txn, events, now).await?;
    Ok(())
}

/// (all, still open) instructions of `date`.
pub async fn counts<C: ConnectionTrait>(db: &C, date: NaiveDate) -> Result<(u64, u64), EodError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'awaiting_fills' THEN 1 ELSE 0 END), 0) \
         FROM instructions WHERE business_date = {}",
        pa.push(date)
    );
    let rows = query(db, q, pa.values).await?;
    let Some(r) = rows.first() else {
        return Ok((0, 0));
    };
    let n = |i| get::<i64>(r, i).map(|v| u64::try_from(v).unwrap_or(0));
    Ok((n(0)?, n(1)?))
}

/// Instructions of `date` still awaiting fills.
pub async fn open_count<C: ConnectionTrait>(db: &C, date: NaiveDate) -> Result<u64, EodError> {
    Ok(counts(db, date).await?.1)
}

// ---------------------------------------------------------------------------------------
// Reading

/// An instruction: a block order sent to the distributor's account system, with what has
/// been reported against it so far.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Instruction {
    /// The block order's id.
    pub id: Uuid,
    /// The distributor.
    pub tenant_id: Uuid,
    pub business_date: NaiveDate,
    pub instrument: String,
    /// `buy` (by amount) or `sell` (by units).
    pub side: String,
    /// The instrument's currency (of `amount`, `filled_amount` and `price`).
    pub currency: String,
    /// Buys: the amount to invest, at most, as a decimal string.
    #[schema(value_type = Option<String>)]
    pub amount: Option<Decimal>,
    /// Sells: the units to sell.
    #[schema(value_type = Option<String>)]
    pub units: Option<Decimal>,
    /// The price of the day per `quote_unit` units (the one every step of the day uses).
    #[schema(value_type = String)]
    pub price: Decimal,
    /// The date of that price (before `business_date` when the day had none).
    pub price_date: NaiveDate,
    pub quote_unit: i64,
    /// Units reported so far (bought or sold).
    #[schema(value_type = String)]
    pub filled_units: Decimal,
    /// Cash reported so far (paid for a buy, received for a sell).
    #[schema(value_type = String)]
    pub filled_amount: Decimal,
    /// Reports with units (a closing report without units is not counted).
    pub fills: i64,
    /// `awaiting_fills` (open), or how it completed: `filled`, `partially_filled`, `unfilled`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Every report, oldest first (on `GET /v1/instructions/{id}` and fill answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reports: Option<Vec<FillReported>>,
}

/// One report of a fill, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FillReported {
    pub fill_id: String,
    #[schema(value_type = String)]
    pub units: Decimal,
    #[schema(value_type = String)]
    pub amount: Decimal,
    #[serde(rename = "final")]
    pub is_final: bool,
    pub created_at: DateTime<Utc>,
}

/// Which instructions to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The distributor (None: every distributor, for the platform).
    pub tenant_id: Option<Uuid>,
    pub date: Option<NaiveDate>,
    pub status: Option<String>,
    /// Ids after this one (the cursor).
    pub after: Option<Uuid>,
}

/// Most instructions per page.
pub const MAX_PAGE: u64 = 1_000;

const COLS: &str = "i.id, i.tenant_id, i.business_date, b.instrument, b.side, b.amount, b.units, \
    b.price, n.price_date, ins.currency, a.scale, ins.unit_scale, ins.quote_unit, i.status, \
    i.created_at, i.completed_at";

const FROM: &str = "instructions i \
    JOIN block_orders b ON b.tenant_id = i.tenant_id AND b.id = i.id \
    JOIN trade_netting n ON n.tenant_id = b.tenant_id AND n.business_date = b.business_date \
        AND n.instrument = b.instrument \
    JOIN instruments ins ON ins.code = b.instrument \
    JOIN ledger_assets a ON a.code = ins.currency";

/// The scales an instruction's figures are in.
#[derive(Debug, Clone, Copy)]
pub struct Scales {
    pub currency: u32,
    pub units: u32,
}

/// An instruction as read, in minor units, before it is shown.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub business_date: NaiveDate,
    pub side: TradeSide,
    pub amount: i64,
    pub units: i64,
    pub status: String,
    pub scales: Scales,
    pub pricing: Pricing,
    created_at: i64,
    completed_at: Option<i64>,
}

impl Row {
    /// Whether fills of `units` for `amount` in all leave nothing more to fill: a buy's
    /// amount spent, a sell's units sold.
    fn exhausted(&self, units: i64, amount: i64) -> bool {
        match self.side {
            TradeSide::Buy => amount >= self.amount,
            TradeSide::Sell => units >= self.units,
        }
    }
}

fn row_of(r: &sea_orm::QueryResult) -> Result<Row, EodError> {
    let side_s: String = get(r, 4)?;
    let price: String = get(r, 7)?;
    let scales = Scales {
        currency: u32::try_from(get::<i32>(r, 10)?).unwrap_or(0),
        units: u32::try_from(get::<i32>(r, 11)?).unwrap_or(0),
    };
    let instrument: String = get(r, 3)?;
    Ok(Row {
        id: get(r, 0)?,
        tenant_id: get(r, 1)?,
        business_date: get(r, 2)?,
        side: TradeSide::parse(&side_s).ok_or_else(|| corrupt(format!("side {side_s}")))?,
        amount: get::<Option<i64>>(r, 5)?.unwrap_or(0),
        units: get::<Option<i64>>(r, 6)?.unwrap_or(0),
        status: get(r, 13)?,
        scales,
        pricing: Pricing {
            instrument,
            currency: get(r, 9)?,
            currency_scale: scales.currency,
            unit_scale: scales.units,
            quote_unit: get(r, 12)?,
            price: price
                .parse()
                .map_err(|_| corrupt(format!("block price {price:?}")))?,
            price_date: get(r, 8)?,
            // A block is priced, not levied: the levy is per wrap, at allocation.
            levy_rate: Decimal::ZERO,
        },
        created_at: get(r, 14)?,
        completed_at: get(r, 15)?,
    })
}

/// Units and cash reported per instruction (tenant, id), and how many fills.
async fn filled<C: ConnectionTrait>(
    db: &C,
    rows: &[Row],
) -> Result<HashMap<(Uuid, Uuid), (i64, i64, i64)>, EodError> {
    let mut out = HashMap::with_capacity(rows.len());
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    for chunk in ids.chunks(IN_CHUNK) {
        let mut pa = Params::new(db.get_database_backend());
        let list = pa.list(chunk);
        // `trade_fills` is what allocation reads: the figures shown are the ones it will use.
        let q = format!(
            "SELECT tenant_id, block_order_id, CAST(SUM(units) AS BIGINT), \
             CAST(SUM(amount) AS BIGINT), COUNT(*) FROM trade_fills \
             WHERE block_order_id IN {list} GROUP BY tenant_id, block_order_id"
        );
        for r in query(db, q, pa.values).await? {
            out.insert(
                (get(&r, 0)?, get(&r, 1)?),
                (get(&r, 2)?, get(&r, 3)?, get(&r, 4)?),
            );
        }
    }
    Ok(out)
}

/// Shows `rows` with their fill totals (and every report when `reports` is given).
async fn show<C: ConnectionTrait>(
    db: &C,
    rows: Vec<Row>,
    with_reports: bool,
) -> Result<Vec<Instruction>, EodError> {
    let sums = filled(db, &rows).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let (fu, fa, n) = sums.get(&(r.tenant_id, r.id)).copied().unwrap_or_default();
        let reports = if with_reports {
            Some(reports_of(db, &r).await?)
        } else {
            None
        };
        let (cs, us) = (r.scales.currency, r.scales.units);
        out.push(Instruction {
            id: r.id,
            tenant_id: r.tenant_id,
            business_date: r.business_date,
            instrument: r.pricing.instrument.clone(),
            side: r.side.as_str().to_owned(),
            currency: r.pricing.currency.clone(),
            amount: (r.side == TradeSide::Buy).then(|| decimal_of(i128::from(r.amount), cs)),
            units: (r.side == TradeSide::Sell).then(|| decimal_of(i128::from(r.units), us)),
            price: r.pricing.price,
            price_date: r.pricing.price_date,
            quote_unit: r.pricing.quote_unit,
            filled_units: decimal_of(i128::from(fu), us),
            filled_amount: decimal_of(i128::from(fa), cs),
            fills: n,
            status: r.status.clone(),
            created_at: from_micros(r.created_at).unwrap_or_default(),
            completed_at: r.completed_at.and_then(from_micros),
            reports,
        });
    }
    Ok(out)
}

async fn reports_of<C: ConnectionTrait>(db: &C, r: &Row) -> Result<Vec<FillReported>, EodError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT fill_id, units, amount, final, created_at FROM instruction_fills \
         WHERE tenant_id = {} AND instruction_id = {} ORDER BY created_at, fill_id",
        pa.push(r.tenant_id),
        pa.push(r.id)
    );
    let mut out = Vec::new();
    for f in query(db, q, pa.values).await? {
        out.push(FillReported {
            fill_id: get(&f, 0)?,
            units: decimal_of(i128::from(get::<i64>(&f, 1)?), r.scales.units),
            amount: decimal_of(i128::from(get::<i64>(&f, 2)?), r.scales.currency),
            is_final: get(&f, 3)?,
            created_at: from_micros(get(&f, 4)?).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// A page of instructions matching `filter`, by id, and the cursor of the next page.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    filter: &Filter,
    limit: u64,
) -> Result<(Vec<Instruction>, Option<Uuid>), EodError> {
    let mut pa = Params::new(db.get_database_backend());
    let mut wheres = Vec::new();
    if let Some(t) = filter.tenant_id {
        wheres.push(format!("i.tenant_id = {}", pa.push(t)));
    }
    if let Some(d) = filter.date {
        wheres.push(format!("i.business_date = {}", pa.push(d)));
    }
    if let Some(s) = &filter.status {
        wheres.push(format!("i.status = {}", pa.push(s.clone())));
    }
    if let Some(a) = filter.after {
        wheres.push(format!("i.id > {}", pa.push(a)));
    }
    let wheres = if wheres.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", wheres.join(" AND "))
    };
    let take = limit.min(MAX_PAGE);
    let q = format!(
        "SELECT {COLS} FROM {FROM}{wheres} ORDER BY i.id LIMIT {}",
        take + 1
    );
    let mut rows: Vec<Row> = query(db, q, pa.values)
        .await?
        .iter()
        .map(row_of)
        .collect::<Result<_, _>>()?;
    let next = if rows.len() as u64 > take {
        rows.truncate(usize::try_from(take).unwrap_or(usize::MAX));
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok((show(db, rows, false).await?, next))
}

/// Instruction `id` (of `tenant_id`, or of anyone for None), locked for the rest of the
/// transaction when `lock` (PostgreSQL; SQLite's write transaction is exclusive already).
async fn row<C: ConnectionTrait>(
    db: &C,
    tenant_id: Option<Uuid>,
    id: Uuid,
    lock: bool,
) -> Result<Option<Row>, EodError> {
    let b = db.get_database_backend();
    let mut pa = Params::new(b);
    let mut q = format!("SELECT {COLS} FROM {FROM} WHERE i.id = {}", pa.push(id));
    if let Some(t) = tenant_id {
        q.push_str(&format!(" AND i.tenant_id = {}", pa.push(t)));
    }
    if lock && b == sea_orm::DbBackend::Postgres {
        q.push_str(" FOR UPDATE OF i");
    }
    query(db, q, pa.values)
        .await?
        .first()
        .map(row_of)
        .transpose()
}

/// Instruction `id` with every report, if `tenant_id` (None: any) has it.
pub async fn get_one<C: ConnectionTrait>(
    db: &C,
    tenant_id: Option<Uuid>,
    id: Uuid,
) -> Result<Option<Instruction>, EodError> {
    let Some(r) = row(db, tenant_id, id, false).await? else {
        return Ok(None);
    };
    Ok(show(db, vec![r], true).await?.pop())
}

// ---------------------------------------------------------------------------------------
// Reporting a fill

/// A report as asked, in minor units (the route converted and checked the decimals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub fill_id: String,
    pub units: i64,
    pub amount: i64,
    pub is_final: bool,
}

/// Why a report was refused (nothing was written).
#[derive(Debug)]
pub enum Refused {
    /// No such instruction for this distributor.
    NotFound,
    /// The instruction is complete.
    Complete(String),
    /// The fill id was reported before with other figures.
    Conflict(String),
    /// A field is wrong (over-fill, bad figures).
    Invalid {
        field: &'static str,
        message: String,
    },
    Eod(EodError),
}

impl From<EodError> for Refused {
    fn from(e: EodError) -> Self {
        Self::Eod(e)
    }
}

impl From<sea_orm::DbErr> for Refused {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Eod(e.into())
    }
}

/// The answer to a report: the fill and the instruction after it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportAnswer {
    pub fill: FillReported,
    pub instruction: Instruction,
}

/// What [`report`] did: a new answer, or the stored answer to the same report before.
#[derive(Debug)]
pub enum Reported {
    New(String),
    Replayed(String),
}

/// The instruction `id` of `tenant_id`, locked, with the scales to read a report in.
pub async fn lock(txn: &DatabaseTransaction, tenant_id: Uuid, id: Uuid) -> Result<Row, Refused> {
    row(txn, Some(tenant_id), id, true)
        .await?
        .ok_or(Refused::NotFound)
}

/// Records `report` against instruction `r` (locked by [`lock`] in `txn`): the first answer
/// again for a replay, else the checks (open, not beyond what was asked), the fill in
/// `trade_fills`, the report, and completion when it is final or nothing more could be
/// filled. The caller commits (with its audit record).
pub async fn report(
    txn: &DatabaseTransaction,
    r: &Row,
    report: &Report,
    now: DateTime<Utc>,
) -> Result<Reported, Refused> {
    let b = txn.get_database_backend();
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT units, amount, final, response FROM instruction_fills \
         WHERE tenant_id = {} AND instruction_id = {} AND fill_id = {}",
        pa.push(r.tenant_id),
        pa.push(r.id),
        pa.push(report.fill_id.clone())
    );
    if let Some(f) = query(txn, q, pa.values).await?.first() {
        let before = Report {
            fill_id: report.fill_id.clone(),
            units: get(f, 0)?,
            amount: get(f, 1)?,
            is_final: get(f, 2)?,
        };
        if before != *report {
            return Err(Refused::Conflict(format!(
                "fill {:?} was reported before with other figures ({} units, amount {}, \
                 final {}); a new fill needs a new fill_id",
                report.fill_id,
                decimal_of(i128::from(before.units), r.scales.units),
                decimal_of(i128::from(before.amount), r.scales.currency),
                before.is_final
            )));
        }
        return Ok(Reported::Replayed(get(f, 3)?));
    }
    if r.status != "awaiting_fills" {
        return Err(Refused::Complete(format!(
            "instruction {} is complete ({}): it takes no more fills",
            r.id, r.status
        )));
    }
    let sums = filled(txn, std::slice::from_ref(r)).await?;
    let (units_before, amount_before, _) =
        sums.get(&(r.tenant_id, r.id)).copied().unwrap_or_default();
    // Each fill is bounded by `[limits]`, but the sum of many must not wrap around either.
    let total = |field: &'static str, before: i64, this: i64| {
        before.checked_add(this).ok_or(Refused::Invalid {
            field,
            message: "the fills' total would exceed the range of the books".to_owned(),
        })
    };
    let units = total("units", units_before, report.units)?;
    let amount = total("amount", amount_before, report.amount)?;
    match r.side {
        TradeSide::Buy if amount > r.amount => {
            return Err(Refused::Invalid {
                field: "amount",
                message: format!(
                    "the fills would pay {} for a buy of at most {} ({} reported before)",
                    decimal_of(i128::from(amount), r.scales.currency),
                    decimal_of(i128::from(r.amount), r.scales.currency),
                    decimal_of(i128::from(amount_before), r.scales.currency),
                ),
            });
        }
        TradeSide::Sell if units > r.units => {
            return Err(Refused::Invalid {
                field: "units",
                message: format!(
                    "the fills would sell {} units of the {} asked ({} reported before)",
                    decimal_of(i128::from(units), r.scales.units),
                    decimal_of(i128::from(r.units), r.scales.units),
                    decimal_of(i128::from(units_before), r.scales.units),
                ),
            });
        }
        _ => {}
    }
    let trade_fill = (report.units > 0).then(Uuid::now_v7);
    if let Some(fill_id) = trade_fill {
        let mut pa = Params::new(b);
        let row = pa.row(vec![
            r.tenant_id.into(),
            fill_id.into(),
            r.id.into(),
            r.business_date.into(),
            report.units.into(),
            report.amount.into(),
            VenueKind::External.as_str().into(),
            micros(now).into(),
        ]);
        let q = format!(
            "INSERT INTO trade_fills (tenant_id, id, block_order_id, business_date, units, \
             amount, venue, created_at) VALUES {row}"
        );
        exec(txn, q, pa.values).await?;
    }
    // Complete when told so, or when nothing more could be accepted.
    let exhausted = r.exhausted(units, amount);
    let mut after = r.clone();
    if report.is_final || exhausted {
        complete(txn, &mut after, units, exhausted, now).await?;
    }
    let fill = FillReported {
        fill_id: report.fill_id.clone(),
        units: decimal_of(i128::from(report.units), r.scales.units),
        amount: decimal_of(i128::from(report.amount), r.scales.currency),
        is_final: report.is_final,
        created_at: from_micros(micros(now)).unwrap_or(now),
    };
    // The answer shows the instruction with this report in it.
    let mut pa = Params::new(b);
    let row = pa.row(vec![
        r.tenant_id.into(),
        r.id.into(),
        report.fill_id.clone().into(),
        report.units.into(),
        report.amount.into(),
        report.is_final.into(),
        trade_fill.into(),
        String::new().into(),
        micros(now).into(),
    ]);
    let q = format!(
        "INSERT INTO instruction_fills (tenant_id, instruction_id, fill_id, units, amount, final, \
         trade_fill_id, response, created_at) VALUES {row}"
    );
    exec(txn, q, pa.values).await?;
    let instruction = show(txn, vec![after], true)
        .await?
        .pop()
        .ok_or_else(|| corrupt(format!("instruction {} vanished", r.id)))?;
    let answer = ReportAnswer { fill, instruction };
    let text =
        serde_json::to_string(&answer).map_err(|e| corrupt(format!("answer {}: {e}", r.id)))?;
    // Kept for a replay of the same report.
    let mut pa = Params::new(b);
    let q = format!(
        "UPDATE instruction_fills SET response = {} WHERE tenant_id = {} AND instruction_id = {} \
         AND fill_id = {}",
        pa.push(text.clone()),
        pa.push(r.tenant_id),
        pa.push(r.id),
        pa.push(report.fill_id.clone())
    );
    exec(txn, q, pa.values).await?;
    Ok(Reported::New(text))
}

/// Completes instruction `r` (open) with `units` filled in all: its status and its block
/// order's, by the simulated venue's rule (a buy that got every unit its amount buys at the
/// day's price is filled even if rounding left cash unspent).
async fn complete(
    txn: &DatabaseTransaction,
    r: &mut Row,
    units: i64,
    exhausted: bool,
    now: DateTime<Utc>,
) -> Result<(), EodError> {
    let status = if units == 0 {
        "unfilled"
    } else if exhausted || (r.side == TradeSide::Buy && units >= r.pricing.units_for(r.amount)) {
        "filled"
    } else {
        "partially_filled"
    };
    for table in ["instructions", "block_orders"] {
        let mut pa = Params::new(txn.get_database_backend());
        let s = pa.push(status);
        let done = if table == "instructions" {
            format!(", completed_at = {}", pa.push(micros(now)))
        } else {
            String::new()
        };
        let t = pa.push(r.tenant_id);
        let id = pa.push(r.id);
        let q =
            format!("UPDATE {table} SET status = {s}{done} WHERE tenant_id = {t} AND id = {id}");
        exec(txn, q, pa.values).await?;
    }
    status.clone_into(&mut r.status);
    r.completed_at = Some(micros(now));
    let event = NewEvent::new(
        r.tenant_id,
        types::INSTRUCTION_COMPLETED,
        format!("instruction:{}", r.id),
        Some(r.business_date),
        serde_json::json!({ "instruction_id": r.id, "status": status }),
    );
    crate::events::record(txn, vec![event], now).await?;
    Ok(())
}

/// The instruction `id` (any distributor's), locked, for the platform to close.
pub async fn lock_any(txn: &DatabaseTransaction, id: Uuid) -> Result<Row, Refused> {
    // Its tenant first, unlocked, so that the lock names one tenant (one shard on Citus,
    // which refuses a lock that may span several; deploy/SCALING.md).
    let owner = row(txn, None, id, false)
        .await?
        .ok_or(Refused::NotFound)?
        .tenant_id;
    row(txn, Some(owner), id, true)
        .await?
        .ok_or(Refused::NotFound)
}

/// Closes open instruction `r` (locked by [`lock_any`]) for the platform, when its account
/// system will never complete it: it completes with the fills reported so far, exactly as a
/// `final` report with nothing in it would, so the date can go on. The caller audits (with
/// the reason) and commits.
pub async fn close(
    txn: &DatabaseTransaction,
    r: &Row,
    now: DateTime<Utc>,
) -> Result<Instruction, Refused> {
    if r.status != "awaiting_fills" {
        return Err(Refused::Complete(format!(
            "instruction {} is complete ({}): there is nothing to close",
            r.id, r.status
        )));
    }
    let sums = filled(txn, std::slice::from_ref(r)).await?;
    let (units, amount, _) = sums.get(&(r.tenant_id, r.id)).copied().unwrap_or_default();
    let exhausted = r.exhausted(units, amount);
    let mut after = r.clone();
    complete(txn, &mut after, units, exhausted, now).await?;
    Ok(show(txn, vec![after], true)
        .await?
        .pop()
        .ok_or_else(|| corrupt(format!("instruction {} vanished", r.id)))?)
}
