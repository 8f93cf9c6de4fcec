//! Steps `netting`, `execution` and `allocation`: the day's orders (from
//! [`super::rebalance`]) netted per distributor and instrument, the net sent to a [`Venue`]
//! as one block order, and every fill (with the internally crossed part) allocated back to
//! the wraps as ledger entries; then the pending withdrawals, switches and closes whose
//! sales are in are paid out.
//!
//! Conventions (integers throughout: minor units of the currency, minor units of the
//! instrument's unit scale; prices exact decimals per quote unit):
//! * buys are by amount, sells by units; the day's price is the instrument's price of the
//!   date, or its last price before it (recorded on the netting row, so every step uses the
//!   same price);
//! * **netting** per (distributor, instrument): the buyers' amount converts to
//!   `floor(amount × quote unit ÷ price)` units; the crossed units are the smaller of that
//!   and the units sold, and change hands at `floor(units × price ÷ quote unit)`; only the
//!   rest goes out as a block order (a buy by the buyers' remaining amount, or a sell of the
//!   remaining units). Tried by `api/tests/http/eod_trading.rs::buys_and_sells_cancel_exactly`;
//! * **the simulated venue** fills everything at the day's price: a buy of amount `a` gets
//!   `floor(a × quote unit ÷ price)` units and costs `ceil(units × price ÷ quote unit)`
//!   (never more than `a`; the rest stays in the wraps' cash); a sell of `u` units pays
//!   `floor(u × price ÷ quote unit)`. [`Venue`] is the seam for a real one;
//! * **the external venue** (a distributor's setting): its blocks become instructions
//!   ([`super::instructions`]) and the execution step stays `awaiting_fills` until each is
//!   complete; what its account system reports goes into `trade_fills`, several fills per
//!   block, which allocation sums like any venue's. Tried by
//!   `api/tests/http/eod_instructions.rs::an_external_distributor_waits_for_its_fills`;
//! * **allocation** per (distributor, instrument, side), crossed part and fills together:
//!   the side that is divided is split by largest remainder in proportion to the orders, so
//!   it adds up exactly (buys: the cash paid, by ordered amount; sells: the units sold, by
//!   ordered units); each wrap then gets the other side computed on its own at the day's
//!   price, rounded down (buys: `floor(cash × quote unit ÷ price)` units; sells:
//!   `floor(units × price ÷ quote unit)`), as a fund computes each investor's trade. The
//!   pool's rounding gain (less than one minor unit per wrap) goes to `residual:{ASSET}`,
//!   and so does a share that cannot be booked (the wrap's cash no longer covers its buy);
//!   both are counted in the step's detail. Should the pool fall short of what the wraps are
//!   owed (a crossing and a partial fill rounded apart), the pool itself is split by largest
//!   remainder instead. Tried by
//!   `eod_trading.rs::a_partial_fill_is_allocated_by_largest_remainder`;
//! * the wraps' trades of the day are ledger entries of a chunk of wraps each (kind `trade`,
//!   key `trade:{tenant_id}:{date}:{chunk}`, chunks in wrap order, at most
//!   [`ledger::MAX_POSTINGS`] postings): each wrap's net cash and units, and per asset one
//!   posting of the chunk's net against `omnibus:{ASSET}`, so each entry reconciles on its
//!   own, the crossed part nets to nothing on the omnibus, and a day's trades take one
//!   entry per thousand postings rather than one per wrap; the residue is one entry per
//!   distributor
//!   (`trade-residual:{date}`); payouts one per movement (`movement:{movement_id}`). All go
//!   through [`ledger::Ledger::post_batch_in`] in batches of at most [`ledger::MAX_BATCH`];
//! * **movements**: a withdrawal pays `min(amount, the wrap's available cash)` to the
//!   customer's cash account (kind `withdrawal`); a withdrawal of everything and a close pay
//!   all the cash once every unit is sold (a close then marks the wrap `closed`; kind
//!   `wrap_close`); a switch moves the cash into the destination wrap (kind `switch`), or
//!   to the customer when the destination no longer takes money. A movement whose units are
//!   not all sold yet (a partial fill) stays pending and is sold again the next day.
//!   **Fees first:** the wrap's cash that pays out never includes what it owes in fees
//!   (the fee state's owed amounts, accrued and not yet collected: fee, performance fee
//!   and their tax, posted to `accrued:wrap:{id}` or not yet), so no payout leaves the fees
//!   behind. A movement of everything (close,
//!   full withdrawal or switch) also makes that amount due at once, and the `billing` step
//!   of the same date collects it from the cash kept and splits it as on a period end. The
//!   sub-yen carry is not owed and is not charged; a closing wrap accrues nothing on its
//!   closing date (valuation skips closed wraps). Tried by
//!   `api/tests/http/eod_fees.rs::a_close_pays_its_fees_before_the_customer`. Before a
//!   movement of everything is paid, a performance fee in the wrap's terms crystallises on
//!   what it pays out ([`super::billing::crystallise_at_liquidation`]) and is kept back
//!   with the rest (`eod_fees.rs::a_liquidation_crystallises_the_performance_fee`).
//!
//! **Settlement** (DOMAIN.md section 4): a trade of date T in an instrument with
//! `settlement_days` n (T+n, 0 to 10) settles on the calendar's n-th business day after T.
//! The books take it on the trade date (ownership, NAV, reconciliation: trade-date
//! accounting), but until it settles what it brought is not free: a sale's proceeds are not
//! paid out, reinvested or taken for fees, and bought units are not sold again. A withdrawal
//! that its wrap's settled cash does not cover while any of its trades are unsettled, and a
//! close or withdrawal of everything while proceeds are, wait (pending) for settlement; rebalance
//! sizes sales against all the cash, settled or not, so nothing is sold twice while it
//! waits. Unsettled amounts are derived from the allocations ([`unsettled`]), not booked.
//! Tried by `api/tests/http/eod_trading.rs::proceeds_wait_for_settlement`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use crate::customers::store as wrap_rows;
use crate::customers::{
    WrapStatus, customer_cash_code, omnibus_code, parse_wrap_code, wrap_cash_code, wrap_units_code,
};
use chrono::{NaiveDate, Utc};
use ledger::asset::decimal_of;
use ledger::{Ledger, MAX_BATCH, NewAccount, NewEntry, NewPosting, Side};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseTransaction, Value};
use serde_json::json;
use uuid::Uuid;

use super::billing::{self, Liquidation};
use super::{EodError, corrupt};
use crate::events::{NewEvent, types};
use ledger::sql::{IN_CHUNK, INSERT_ROWS, Params, exec, get, micros, query};

// ---------------------------------------------------------------------------------------
// Exact arithmetic

/// An instrument's terms and its price of the day: everything needed to turn cash into
/// units and back exactly (integer arithmetic on i128, no rounding until the last step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pricing {
    pub instrument: String,
    pub currency: String,
    pub currency_scale: u32,
    pub unit_scale: u32,
    pub quote_unit: i64,
    /// Price per quote unit, in the currency.
    pub price: Decimal,
    /// The date of the price (before the business date when the day has none).
    pub price_date: NaiveDate,
    /// The fund's redemption levy (信託財産留保額) in effect on the business date: a
    /// fraction of the value redeemed, deducted from every sale's proceeds
    /// ([`crate::funds::redemption_levy`]); zero for none.
    pub levy_rate: Decimal,
}

fn pow10(n: u32) -> i128 {
    10_i128.pow(n)
}

fn clamp64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

impl Pricing {
    /// (price mantissa, price scale): the price is `m / 10^s`, exactly.
    fn price_parts(&self) -> (i128, u32) {
        (self.price.mantissa(), self.price.scale())
    }

    /// Units (minor) that `amount` (minor) buys, rounded down to the unit scale:
    /// `amount × quote unit ÷ price`.
    pub fn units_for(&self, amount: i64) -> i64 {
        let (m, ps) = self.price_parts();
        if m <= 0 || amount <= 0 {
            return 0;
        }
        let num =
            i128::from(amount) * i128::from(self.quote_unit) * pow10(self.unit_scale) * pow10(ps);
        let den = m * pow10(self.currency_scale);
        clamp64(num / den)
    }

    /// `units × price ÷ quote unit` as (numerator, denominator) in minor currency units.
    fn value_parts(&self, units: i64) -> (i128, i128) {
        let (m, ps) = self.price_parts();
        let num = i128::from(units) * m * pow10(self.currency_scale);
        let den = i128::from(self.quote_unit.max(1)) * pow10(self.unit_scale) * pow10(ps);
        (num, den)
    }

    /// What `units` (minor) are worth, rounded down to the minor unit.
    pub fn value_of(&self, units: i64) -> i64 {
        if units <= 0 {
            return 0;
        }
        let (num, den) = self.value_parts(units);
        clamp64(num / den)
    }

    /// What `units` (minor) cost, rounded up to the minor unit.
    pub fn cost_of(&self, units: i64) -> i64 {
        if units <= 0 {
            return 0;
        }
        let (num, den) = self.value_parts(units);
        clamp64((num + den - 1) / den)
    }

    /// The redemption levy on a sale worth `value` (minor units of the currency).
    pub fn levy_on(&self, value: i64) -> i64 {
        crate::funds::redemption_levy(value, self.levy_rate)
    }

    /// Units (minor) whose sale raises at least `amount` (minor) in cash once the
    /// redemption levy is deducted: what money going out sells.
    pub fn units_to_raise_net(&self, amount: i64) -> i64 {
        self.units_to_raise(crate::funds::value_to_raise(amount, self.levy_rate))
    }

    /// Units (minor) needed to raise at least `amount` (minor) of value: rounded up.
    pub fn units_to_raise(&self, amount: i64) -> i64 {
        let (m, ps) = self.price_parts();
        if m <= 0 || amount <= 0 {
            return 0;
        }
        let num =
            i128::from(amount) * i128::from(self.quote_unit) * pow10(self.unit_scale) * pow10(ps);
        let den = m * pow10(self.currency_scale);
        clamp64((num + den - 1) / den)
    }
}

/// Splits `total` in proportion to `weights` by largest remainder: each share is
/// `floor(total × w ÷ Σw)`, then the units left over go one each to the largest fractional
/// parts (ties to the earlier index), so the shares add up to `total` exactly. All zero when
/// the weights are.
pub fn largest_remainder(total: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|w| i128::from((*w).max(0))).sum();
    if sum == 0 || total <= 0 {
        return vec![0; weights.len()];
    }
    let t = i128::from(total);
    let mut shares = Vec::with_capacity(weights.len());
    let mut rems: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
    let mut given: i128 = 0;
    for (i, w) in weights.iter().enumerate() {
        let p = t * i128::from((*w).max(0));
        shares.push(p / sum);
        given += p / sum;
        rems.push((p % sum, i));
    }
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let left = usize::try_from(t - given).unwrap_or(0);
    for (_, i) in rems.iter().take(left) {
        if let Some(s) = shares.get_mut(*i) {
            *s += 1;
        }
    }
    shares.into_iter().map(clamp64).collect()
}

// ---------------------------------------------------------------------------------------
// Venues

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TradeSide {
    Buy,
    Sell,
}

impl TradeSide {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "buy",
            Self::Sell => "sell",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "buy" => Some(Self::Buy),
            "sell" => Some(Self::Sell),
            _ => None,
        }
    }
}

/// The net of one distributor's orders in one instrument, sent to a venue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOrder {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub business_date: NaiveDate,
    pub side: TradeSide,
    /// Buys: the amount to invest (minor currency units).
    pub amount: i64,
    /// Sells: the units to sell (minor units of the unit scale).
    pub units: i64,
    pub pricing: Pricing,
}

/// What a venue did with a block order: units and cash that changed hands (zero for
/// nothing). A buy's `amount` is what was paid (at most the block's amount), a sell's `units`
/// what was sold (at most the block's units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fill {
    pub units: i64,
    pub amount: i64,
}

/// Where block orders are executed when the answer comes at once.
///
/// Execution through this trait is synchronous and inside the step's transaction: the venue
/// answers with the fill. A distributor whose venue is `external` does not go through it:
/// its blocks become instructions for its own account system, which reports fills later
/// over HTTP while the day waits ([`super::instructions`]).
pub trait Venue: Send + Sync + fmt::Debug {
    /// Recorded on the block order and its fills.
    fn name(&self) -> &str;
    /// Executes `block`; an error stops the step (nothing of it is kept).
    fn execute(&self, block: &BlockOrder) -> Result<Fill, String>;
}

/// Fills every block in full at the day's price (see the module's conventions).
#[derive(Debug, Clone, Copy, Default)]
pub struct SimulatedVenue;

impl Venue for SimulatedVenue {
    fn name(&self) -> &str {
        "simulated"
    }

    fn execute(&self, block: &BlockOrder) -> Result<Fill, String> {
        Ok(match block.side {
            TradeSide::Buy => {
                let units = block.pricing.units_for(block.amount);
                Fill {
                    units,
                    amount: block.pricing.cost_of(units).min(block.amount),
                }
            }
            TradeSide::Sell => Fill {
                units: block.units,
                amount: block.pricing.value_of(block.units),
            },
        })
    }
}

// ---------------------------------------------------------------------------------------
// Reading what the day decided

/// Every instrument's terms with its last price on or before `date` (instruments never
/// priced are absent).
pub async fn pricing_of<C: ConnectionTrait>(
    db: &C,
    date: NaiveDate,
) -> Result<HashMap<String, Pricing>, EodError> {
    let rows = query(
        db,
        "SELECT i.code, i.currency, a.scale, i.unit_scale, i.quote_unit FROM instruments i \
         JOIN ledger_assets a ON a.code = i.currency"
            .to_owned(),
        vec![],
    )
    .await?;
    let mut terms = Vec::with_capacity(rows.len());
    for r in &rows {
        terms.push((
            get::<String>(r, 0)?,
            get::<String>(r, 1)?,
            u32::try_from(get::<i32>(r, 2)?).unwrap_or(0),
            u32::try_from(get::<i32>(r, 3)?).unwrap_or(0),
            get::<i64>(r, 4)?,
        ));
    }
    let codes: Vec<String> = terms.iter().map(|t| t.0.clone()).collect();
    let prices = ledger::store::market::latest_prices(db, &codes, date).await?;
    let levies = crate::funds::store::rates_on(db, crate::funds::FundTerm::RedemptionLevy, date)
        .await
        .map_err(funds_error)?;
    let mut out = HashMap::with_capacity(prices.len());
    for (code, currency, cs, us, qu) in terms {
        if let Some(q) = prices.get(&code) {
            let levy_rate = levies.get(&code).copied().unwrap_or(Decimal::ZERO);
            out.insert(
                code.clone(),
                Pricing {
                    instrument: code,
                    currency,
                    currency_scale: cs,
                    unit_scale: us,
                    quote_unit: qu,
                    price: q.price,
                    price_date: q.date,
                    levy_rate,
                },
            );
        }
    }
    Ok(out)
}

/// A fund-terms error met inside end of day: the store's own errors pass through, anything
/// else is a broken row.
pub(crate) fn funds_error(e: crate::funds::FundsError) -> EodError {
    match e {
        crate::funds::FundsError::Ledger(e) => EodError::Ledger(e),
        other => corrupt(other.to_string()),
    }
}

fn not_a_business_day() -> serde_json::Value {
    json!({ "reason": "not a business day" })
}

/// The tenants with planned orders on `date`, in id order.
async fn tenants_with_orders(
    txn: &DatabaseTransaction,
    date: NaiveDate,
) -> Result<Vec<Uuid>, EodError> {
    let mut pa = Params::new(txn.get_database_backend());
    let q = format!(
        "SELECT DISTINCT tenant_id FROM trade_orders WHERE business_date = {} AND status = 'planned' \
         ORDER BY tenant_id",
        pa.push(date)
    );
    query(txn, q, pa.values)
        .await?
        .iter()
        .map(|r| get::<Uuid>(r, 0).map_err(EodError::from))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Step `netting`

/// One distributor's day in one instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Netting {
    pub buy_amount: i64,
    pub sell_units: i64,
    pub crossed_units: i64,
    pub crossed_amount: i64,
    /// What goes out: a buy of this amount …
    pub net_buy_amount: i64,
    /// … or a sell of these units (at most one of the two is non-zero).
    pub net_sell_units: i64,
}

/// Nets the day's buys (`buy_amount`) against its sells (`sell_units`) at `pricing`.
pub fn net(pricing: &Pricing, buy_amount: i64, sell_units: i64) -> Netting {
    let wanted = pricing.units_for(buy_amount);
    let crossed_units = wanted.min(sell_units);
    let crossed_amount = pricing.value_of(crossed_units);
    Netting {
        buy_amount,
        sell_units,
        crossed_units,
        crossed_amount,
        net_buy_amount: if sell_units >= wanted {
            0
        } else {
            buy_amount - crossed_amount
        },
        net_sell_units: sell_units - crossed_units,
    }
}

/// Nets the day's planned orders per distributor and instrument; returns the counts.
pub async fn run_netting(
    txn: &DatabaseTransaction,
    date: NaiveDate,
    calendar: &ledger::calendar::Calendar,
) -> Result<serde_json::Value, EodError> {
    if !calendar.is_business_day(date) {
        return Ok(not_a_business_day());
    }
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        // Uploads in flight land before the prices are read, later ones wait for this step and
        // are then refused if they would change a price it traded at
        // (wraps::eod::prices::upload).
        txn.execute_unprepared("LOCK TABLE instrument_prices IN SHARE MODE")
            .await?;
    }
    let pricing = pricing_of(txn, date).await?;
    let mut pa = Params::new(txn.get_database_backend());
    let q = format!(
        "SELECT tenant_id, instrument, CAST(SUM(COALESCE(amount, 0)) AS BIGINT), \
         CAST(SUM(COALESCE(units, 0)) AS BIGINT) FROM trade_orders \
         WHERE business_date = {} AND status = 'planned' GROUP BY tenant_id, instrument \
         ORDER BY tenant_id, instrument",
        pa.push(date)
    );
    let mut rows_netting: Vec<Vec<Value>> = Vec::new();
    let mut rows_block: Vec<Vec<Value>> = Vec::new();
    let (mut crossed, mut blocks) = (0_u64, 0_u64);
    for r in query(txn, q, pa.values).await? {
        let tenant_id: Uuid = get(&r, 0)?;
        let instrument: String = get(&r, 1)?;
        let buy: i64 = get(&r, 2)?;
        let sell: i64 = get(&r, 3)?;
        let p = pricing
            .get(&instrument)
            .ok_or_else(|| corrupt(format!("an order in {instrument}, which has no price")))?;
        let n = net(p, buy, sell);
        let side = if n.net_buy_amount > 0 {
            Some(TradeSide::Buy)
        } else if n.net_sell_units > 0 {
            Some(TradeSide::Sell)
        } else {
            None
        };
        if n.crossed_units > 0 {
            crossed += 1;
        }
        rows_netting.push(vec![
            tenant_id.into(),
            date.into(),
            instrument.clone().into(),
            p.price.to_string().into(),
            p.price_date.into(),
            buy.into(),
            sell.into(),
            n.crossed_units.into(),
            n.crossed_amount.into(),
            side.map(|s| s.as_str().to_owned()).into(),
        ]);
        if let Some(side) = side {
            blocks += 1;
            rows_block.push(vec![
                tenant_id.into(),
                Uuid::now_v7().into(),
                date.into(),
                instrument.into(),
                side.as_str().into(),
                (side == TradeSide::Buy).then_some(n.net_buy_amount).into(),
                (side == TradeSide::Sell).then_some(n.net_sell_units).into(),
                p.price.to_string().into(),
                "open".into(),
            ]);
        }
    }
    insert_rows(
        txn,
        "trade_netting (tenant_id, business_date, instrument, price, price_date, buy_amount, \
         sell_units, crossed_units, crossed_amount, net_side)",
        rows_netting,
    )
    .await?;
    insert_rows(
        txn,
        "block_orders (tenant_id, id, business_date, instrument, side, amount, units, price, status)",
        rows_block,
    )
    .await?;
    Ok(json!({ "instruments_crossed": crossed, "block_orders": blocks }))
}

/// Multi-row INSERTs of `rows` into `table_cols` (`table (col, …)`).
pub(super) async fn insert_rows(
    txn: &DatabaseTransaction,
    table_cols: &str,
    rows: Vec<Vec<Value>>,
) -> Result<(), EodError> {
    let mut rows = rows;
    while !rows.is_empty() {
        let tail = rows.split_off(rows.len().min(INSERT_ROWS));
        let mut pa = Params::new(txn.get_database_backend());
        let values: Vec<String> = rows.into_iter().map(|r| pa.row(r)).collect();
        let q = format!("INSERT INTO {table_cols} VALUES {}", values.join(", "));
        exec(txn, q, pa.values).await?;
        rows = tail;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Step `execution`

/// What the execution step did, and how many instructions of the date are still open.
#[derive(Debug, Clone)]
pub struct Execution {
    pub detail: serde_json::Value,
    /// Instructions of the date awaiting fills: the day waits while this is not zero.
    pub awaiting: u64,
}

/// Sends the day's open block orders to `venue`, or as instructions to their distributor's
/// account system when its venue is external ([`super::instructions`]), and records the
/// fills. Re-run while the day awaits fills, it sends nothing again and counts what is still
/// open. The counts are the date's, whichever pass made them.
pub async fn run_execution(
    txn: &DatabaseTransaction,
    date: NaiveDate,
    calendar: &ledger::calendar::Calendar,
    venue: &dyn Venue,
) -> Result<Execution, EodError> {
    if !calendar.is_business_day(date) {
        return Ok(Execution {
            detail: not_a_business_day(),
            awaiting: 0,
        });
    }
    let terms = pricing_of(txn, date).await?;
    let external = super::instructions::external_tenants(txn).await?;
    let b = txn.get_database_backend();
    let mut pa = Params::new(b);
    // `venue IS NULL`: not sent yet (an instruction's block stays open with venue external).
    let q = format!(
        "SELECT tenant_id, id, instrument, side, amount, units, price FROM block_orders \
         WHERE business_date = {} AND status = 'open' AND venue IS NULL \
         ORDER BY tenant_id, instrument",
        pa.push(date)
    );
    let mut fills: Vec<Vec<Value>> = Vec::new();
    // Per book and status: each update then names its tenant (one shard on Citus).
    let mut by_status: BTreeMap<(Uuid, &'static str), Vec<Uuid>> = BTreeMap::new();
    let mut sent: Vec<(Uuid, Uuid)> = Vec::new();
    let now = micros(Utc::now());
    for r in query(txn, q, pa.values).await? {
        let tenant_id: Uuid = get(&r, 0)?;
        let id: Uuid = get(&r, 1)?;
        if external.contains(&tenant_id) {
            sent.push((tenant_id, id));
            continue;
        }
        let instrument: String = get(&r, 2)?;
        let side_s: String = get(&r, 3)?;
        let side = TradeSide::parse(&side_s).ok_or_else(|| corrupt(format!("side {side_s}")))?;
        let price: String = get(&r, 6)?;
        let mut pricing = terms
            .get(&instrument)
            .ok_or_else(|| corrupt(format!("block order in unpriced {instrument}")))?
            .clone();
        // The price netting recorded, so execution and allocation agree with it.
        pricing.price = price
            .parse()
            .map_err(|_| corrupt(format!("block price {price:?}")))?;
        let block = BlockOrder {
            id,
            tenant_id,
            business_date: date,
            side,
            amount: get::<Option<i64>>(&r, 4)?.unwrap_or(0),
            units: get::<Option<i64>>(&r, 5)?.unwrap_or(0),
            pricing,
        };
        let fill = venue.execute(&block).map_err(|e| EodError::Invalid {
            field: "venue",
            message: format!("{} refused block order {id}: {e}", venue.name()),
        })?;
        let (asked, got, paid_ok) = match side {
            TradeSide::Buy => (block.amount, fill.amount, fill.amount <= block.amount),
            TradeSide::Sell => (block.units, fill.units, fill.units <= block.units),
        };
        if !paid_ok || fill.units < 0 || fill.amount < 0 {
            return Err(EodError::Invalid {
                field: "venue",
                message: format!(
                    "{} filled block order {id} beyond what it asked: {fill:?}",
                    venue.name()
                ),
            });
        }
        let status = if got == 0 || fill.units == 0 {
            "unfilled"
        } else if got >= asked
            || (side == TradeSide::Buy && fill.units == block.pricing.units_for(asked))
        {
            "filled"
        } else {
            "partially_filled"
        };
        by_status.entry((tenant_id, status)).or_default().push(id);
        if fill.units > 0 {
            fills.push(vec![
                tenant_id.into(),
                Uuid::now_v7().into(),
                id.into(),
                date.into(),
                fill.units.into(),
                fill.amount.into(),
                venue.name().to_owned().into(),
                now.into(),
            ]);
        }
    }
    insert_rows(
        txn,
        "trade_fills (tenant_id, id, block_order_id, business_date, units, amount, venue, created_at)",
        fills,
    )
    .await?;
    for ((tenant_id, status), ids) in &by_status {
        for chunk in ids.chunks(IN_CHUNK) {
            let mut pa = Params::new(b);
            let s = pa.push(*status);
            let v = pa.push(venue.name().to_owned());
            let t = pa.push(*tenant_id);
            let list = pa.list(chunk);
            let q = format!(
                "UPDATE block_orders SET status = {s}, venue = {v} \
                 WHERE tenant_id = {t} AND id IN {list}"
            );
            exec(txn, q, pa.values).await?;
        }
    }
    super::instructions::send(txn, date, &sent, Utc::now()).await?;

    // The date's counts (a re-run while awaiting fills reports the whole day, not its pass).
    let mut counts = serde_json::Map::new();
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT status, COUNT(*) FROM block_orders WHERE business_date = {} \
         AND status <> 'open' GROUP BY status ORDER BY status",
        pa.push(date)
    );
    for r in query(txn, q, pa.values).await? {
        counts.insert(get::<String>(&r, 0)?, json!(get::<i64>(&r, 1)?));
    }
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT COUNT(*) FROM trade_fills WHERE business_date = {}",
        pa.push(date)
    );
    let n_fills = match query(txn, q, pa.values).await?.first() {
        Some(r) => get::<i64>(r, 0)?,
        None => 0,
    };
    counts.insert("fills".to_owned(), json!(n_fills));
    counts.insert("venue".to_owned(), json!(venue.name()));
    let (instructions, awaiting) = super::instructions::counts(txn, date).await?;
    if instructions > 0 {
        counts.insert("instructions".to_owned(), json!(instructions));
        counts.insert("awaiting_fills".to_owned(), json!(awaiting));
    }
    Ok(Execution {
        detail: serde_json::Value::Object(counts),
        awaiting,
    })
}

// ---------------------------------------------------------------------------------------
// Step `allocation`

struct Order {
    id: Uuid,
    wrap_id: Uuid,
    instrument: String,
    side: TradeSide,
    amount: i64,
    units: i64,
}

/// One wrap's share of one order.
struct Share {
    order: usize,
    units: i64,
    /// Buys: the cash paid; sells: the value redeemed at the day's price (before the levy).
    amount: i64,
    /// Sells: the redemption levy on `amount`; the wrap receives `amount − levy`.
    levy: i64,
}

/// What one wrap's day comes to, per asset: + means the wrap receives.
#[derive(Default)]
struct WrapTrades {
    cash: i64,
    units: BTreeMap<String, i64>,
}

/// A wrap as allocation needs it.
struct WrapRow {
    customer_id: Uuid,
    agreement_id: Uuid,
    currency: String,
    scale: u32,
    status: String,
}

/// A pending movement decided on today.
struct MovementRow {
    id: Uuid,
    wrap_id: Uuid,
    kind: String,
    amount: Option<i64>,
    destination: Option<Uuid>,
}

/// Allocates the day's crossed units and fills to the wraps, then pays out the movements
/// whose sales are in; returns the counts.
pub async fn run_allocation(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    date: NaiveDate,
    calendar: &ledger::calendar::Calendar,
) -> Result<serde_json::Value, EodError> {
    if !calendar.is_business_day(date) {
        return Ok(not_a_business_day());
    }
    let mut totals = Totals::default();
    let terms = pricing_of(txn, date).await?;
    for tenant_id in tenants_with_decisions(txn, date).await? {
        allocate_tenant(txn, ledger, &terms, tenant_id, date, calendar, &mut totals).await?;
    }
    Ok(json!({
        "orders": totals.orders,
        "filled": totals.filled,
        "partially_filled": totals.partial,
        "unfilled": totals.unfilled,
        "entries": totals.entries,
        "residual": totals.residual,
        "redemption_levy": totals.levy,
        "cost_basis": { "buys": totals.cost_buys, "sales": totals.cost_sales },
        "movements_fulfilled": totals.fulfilled,
        "wraps_closed": totals.closed,
    }))
}

#[derive(Default)]
struct Totals {
    orders: u64,
    filled: u64,
    partial: u64,
    unfilled: u64,
    entries: u64,
    fulfilled: u64,
    closed: u64,
    /// Residue per asset, in minor units.
    residual: BTreeMap<String, i64>,
    /// Redemption levies deducted per currency, in minor units.
    levy: BTreeMap<String, i64>,
    /// Buys and sales applied to the customers' individual costs.
    cost_buys: u64,
    cost_sales: u64,
}

async fn tenants_with_decisions(
    txn: &DatabaseTransaction,
    date: NaiveDate,
) -> Result<Vec<Uuid>, EodError> {
    let mut out = tenants_with_orders(txn, date).await?;
    let mut pa = Params::new(txn.get_database_backend());
    let q = format!(
        "SELECT DISTINCT tenant_id FROM rebalance_decisions WHERE business_date = {} \
         AND movement_ids <> '[]'",
        pa.push(date)
    );
    for r in query(txn, q, pa.values).await? {
        out.push(get(&r, 0)?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Traded totals of one tenant's day per (instrument, side): (units, amount), crossed and
/// filled together; and the (instrument, side) whose block order was not filled in full.
type SideTotals = (
    HashMap<(String, TradeSide), (i64, i64)>,
    std::collections::HashSet<(String, TradeSide)>,
    HashMap<String, String>,
);

async fn side_totals(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    date: NaiveDate,
) -> Result<SideTotals, EodError> {
    let b = txn.get_database_backend();
    let mut out: HashMap<(String, TradeSide), (i64, i64)> = HashMap::new();
    let mut short = std::collections::HashSet::new();
    let mut prices = HashMap::new();
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT instrument, crossed_units, crossed_amount, price FROM trade_netting \
         WHERE tenant_id = {} AND business_date = {}",
        pa.push(tenant_id),
        pa.push(date)
    );
    for r in query(txn, q, pa.values).await? {
        let instrument: String = get(&r, 0)?;
        let (u, a): (i64, i64) = (get(&r, 1)?, get(&r, 2)?);
        for side in [TradeSide::Buy, TradeSide::Sell] {
            let t = out.entry((instrument.clone(), side)).or_default();
            t.0 += u;
            t.1 += a;
        }
        prices.insert(instrument, get::<String>(&r, 3)?);
    }
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT instrument, side FROM block_orders WHERE tenant_id = {} AND business_date = {} \
         AND status <> 'filled'",
        pa.push(tenant_id),
        pa.push(date)
    );
    for r in query(txn, q, pa.values).await? {
        let side_s: String = get(&r, 1)?;
        let side = TradeSide::parse(&side_s).ok_or_else(|| corrupt(format!("side {side_s}")))?;
        short.insert((get::<String>(&r, 0)?, side));
    }
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT o.instrument, o.side, CAST(SUM(f.units) AS BIGINT), CAST(SUM(f.amount) AS BIGINT) \
         FROM trade_fills f JOIN block_orders o ON o.tenant_id = f.tenant_id AND o.id = f.block_order_id \
         WHERE f.tenant_id = {} AND f.business_date = {} GROUP BY o.instrument, o.side",
        pa.push(tenant_id),
        pa.push(date)
    );
    for r in query(txn, q, pa.values).await? {
        let instrument: String = get(&r, 0)?;
        let side_s: String = get(&r, 1)?;
        let side = TradeSide::parse(&side_s).ok_or_else(|| corrupt(format!("side {side_s}")))?;
        let t = out.entry((instrument, side)).or_default();
        t.0 += get::<i64>(&r, 2)?;
        t.1 += get::<i64>(&r, 3)?;
    }
    Ok((out, short, prices))
}

/// The wraps' side of one allocation entry being gathered.
#[derive(Default)]
struct TradeChunk {
    postings: Vec<NewPosting>,
    /// Asset → (what the chunk's wraps received, net; the asset's scale).
    net: BTreeMap<String, (i64, u32)>,
    wraps: usize,
}

impl TradeChunk {
    /// The entry: the wraps' postings and one omnibus posting per asset that nets to
    /// non-zero; leaves the chunk empty for the next.
    fn entry(
        &mut self,
        tenant_id: Uuid,
        date: NaiveDate,
        number: usize,
        id_of: &impl Fn(&str) -> Result<Uuid, EodError>,
    ) -> Result<NewEntry, EodError> {
        let mut postings = std::mem::take(&mut self.postings);
        for (asset, (net, scale)) in std::mem::take(&mut self.net) {
            let omnibus = id_of(&omnibus_code(&asset))?;
            let amount = decimal_of(i128::from(net.abs()), scale);
            match net.signum() {
                1 => postings.push(NewPosting::debit(omnibus, &asset, amount)),
                -1 => postings.push(NewPosting::credit(omnibus, &asset, amount)),
                _ => {}
            }
        }
        let wraps = std::mem::take(&mut self.wraps);
        Ok(NewEntry {
            tenant_id,
            idempotency_key: format!("trade:{tenant_id}:{date}:{number}"),
            kind: "trade".to_owned(),
            effective_date: date,
            description: format!("trades of {date}"),
            metadata: json!({ "eod_date": date, "chunk": number, "wraps": wraps }),
            postings,
            hold: None,
        })
    }
}

#[allow(clippy::too_many_arguments)]
async fn allocate_tenant(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    terms: &HashMap<String, Pricing>,
    tenant_id: Uuid,
    date: NaiveDate,
    calendar: &ledger::calendar::Calendar,
    totals: &mut Totals,
) -> Result<(), EodError> {
    let b = txn.get_database_backend();
    // The day's planned orders.
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT id, wrap_id, instrument, side, amount, units FROM trade_orders \
         WHERE tenant_id = {} AND business_date = {} AND status = 'planned' ORDER BY id",
        pa.push(tenant_id),
        pa.push(date)
    );
    let mut orders: Vec<Order> = Vec::new();
    for r in query(txn, q, pa.values).await? {
        let side_s: String = get(&r, 3)?;
        orders.push(Order {
            id: get(&r, 0)?,
            wrap_id: get(&r, 1)?,
            instrument: get(&r, 2)?,
            side: TradeSide::parse(&side_s).ok_or_else(|| corrupt(format!("side {side_s}")))?,
            amount: get::<Option<i64>>(&r, 4)?.unwrap_or(0),
            units: get::<Option<i64>>(&r, 5)?.unwrap_or(0),
        });
    }
    let (side_totals, short, prices) = side_totals(txn, tenant_id, date).await?;
    // The price netting recorded, on each instrument's terms.
    let mut priced: HashMap<String, Pricing> = HashMap::new();
    for (instrument, price) in prices {
        let mut p = terms
            .get(&instrument)
            .ok_or_else(|| corrupt(format!("netted {instrument} has no terms")))?
            .clone();
        p.price = price
            .parse()
            .map_err(|_| corrupt(format!("netting price {price:?}")))?;
        priced.insert(instrument, p);
    }
    let movements = decided_movements(txn, tenant_id, date).await?;

    // The wraps involved, and their cash and units now (available: holds deducted).
    let mut wrap_ids: Vec<Uuid> = orders.iter().map(|o| o.wrap_id).collect();
    for m in &movements {
        wrap_ids.push(m.wrap_id);
        wrap_ids.extend(m.destination);
    }
    wrap_ids.sort();
    wrap_ids.dedup();
    let wraps = wrap_rows(txn, tenant_id, &wrap_ids).await?;
    let mut codes: Vec<String> = Vec::new();
    for id in &wrap_ids {
        codes.push(wrap_cash_code(*id));
    }
    for o in &orders {
        codes.push(wrap_units_code(o.wrap_id, &o.instrument));
    }
    for m in &movements {
        // A close or a withdrawal of everything waits until no units are left: read them all.
        if m.amount.is_none() {
            codes.extend(units_codes_of(txn, tenant_id, m.wrap_id).await?);
        }
    }
    codes.sort();
    codes.dedup();
    let mut balances = available_balances(txn, tenant_id, &codes).await?;

    // Compute: who gets what (no database), then check that the fills are given out whole.
    let Allocated {
        trades,
        statuses,
        residue,
        levy,
        filled,
        partial,
        unfilled,
    } = allocate(&orders, &side_totals, &short, &priced, &balances, &wraps)?;
    check_allocation(&orders, &side_totals, &wraps, &trades, &residue, &levy)
        .map_err(|e| corrupt(format!("allocation of {date} for tenant {tenant_id}: {e}")))?;
    totals.filled += filled;
    totals.partial += partial;
    totals.unfilled += unfilled;
    totals.orders += filled + partial + unfilled;

    // Write.
    // Accounts: units accounts of buyers may not exist yet; omnibus and residual per asset.
    let mut news: Vec<NewAccount> = Vec::new();
    let mut assets: Vec<String> = Vec::new();
    for (wrap_id, t) in &trades {
        for (instrument, delta) in &t.units {
            // Sellers' accounts exist; listing them too gets their ids back.
            if *delta != 0 {
                news.push(NewAccount {
                    tenant_id,
                    code: wrap_units_code(*wrap_id, instrument),
                    asset: instrument.clone(),
                    normal_side: Side::Credit,
                    no_negative: true,
                    metadata: json!({ "wrap_id": wrap_id, "purpose": "wrap units" }),
                });
            }
            assets.push(instrument.clone());
        }
        if let Some(w) = wraps.get(wrap_id) {
            assets.push(w.currency.clone());
        }
    }
    for (asset, v) in &residue {
        if *v != 0 {
            news.push(NewAccount {
                tenant_id,
                code: format!("residual:{asset}"),
                asset: asset.clone(),
                normal_side: Side::Credit,
                no_negative: false,
                metadata: json!({ "purpose": "allocation residue held by the platform" }),
            });
            assets.push(asset.clone());
        }
    }
    for m in &movements {
        if let Some(w) = wraps.get(&m.wrap_id) {
            news.push(crate::chart::customer_cash_account(
                tenant_id,
                w.customer_id,
                &w.currency,
            ));
        }
    }
    assets.sort();
    assets.dedup();
    for asset in &assets {
        news.push(crate::chart::omnibus_account(tenant_id, asset));
    }
    for id in &wrap_ids {
        news.push(NewAccount {
            tenant_id,
            code: wrap_cash_code(*id),
            asset: wraps
                .get(id)
                .map_or_else(|| "JPY".to_owned(), |w| w.currency.clone()),
            normal_side: Side::Credit,
            no_negative: true,
            metadata: json!({ "wrap_id": id }),
        });
    }
    let ids = ledger::store::accounts_bulk::ensure_accounts(txn, &news).await?;
    let id_of = |code: &str| -> Result<Uuid, EodError> {
        ids.get(&(tenant_id, code.to_owned()))
            .copied()
            .ok_or_else(|| corrupt(format!("account {code} missing")))
    };

    // Every trading wrap's cash and units against the omnibus of each asset, a chunk of
    // wraps per entry: the wraps' postings in wrap order, then per asset one omnibus posting
    // of the chunk's net (none where the chunk's buys and sells cancel). At most
    // MAX_POSTINGS postings, omnibus ones included.
    let mut entries: Vec<NewEntry> = Vec::new();
    let mut chunk = TradeChunk::default();
    for (wrap_id, t) in &trades {
        let Some(w) = wraps.get(wrap_id) else {
            continue;
        };
        let mut mine: Vec<(String, Uuid, i64, u32)> = Vec::with_capacity(t.units.len() + 1);
        if t.cash != 0 {
            mine.push((
                w.currency.clone(),
                id_of(&wrap_cash_code(*wrap_id))?,
                t.cash,
                w.scale,
            ));
        }
        for (instrument, delta) in &t.units {
            if *delta != 0 {
                mine.push((
                    instrument.clone(),
                    id_of(&wrap_units_code(*wrap_id, instrument))?,
                    *delta,
                    asset_scale(txn, ledger, instrument).await?,
                ));
            }
        }
        if mine.is_empty() {
            continue;
        }
        let new_assets = mine
            .iter()
            .filter(|m| !chunk.net.contains_key(&m.0))
            .count();
        if chunk.wraps > 0
            && chunk.postings.len() + mine.len() + chunk.net.len() + new_assets
                > ledger::MAX_POSTINGS
        {
            entries.push(chunk.entry(tenant_id, date, entries.len(), &id_of)?);
        }
        for (asset, account, delta, scale) in mine {
            let amount = decimal_of(i128::from(delta.abs()), scale);
            chunk.postings.push(if delta > 0 {
                NewPosting::credit(account, &asset, amount)
            } else {
                NewPosting::debit(account, &asset, amount)
            });
            let net = chunk.net.entry(asset).or_insert((0, scale));
            net.0 += delta;
        }
        chunk.wraps += 1;
    }
    if chunk.wraps > 0 {
        entries.push(chunk.entry(tenant_id, date, entries.len(), &id_of)?);
    }
    let mut residual_postings = Vec::new();
    for (asset, v) in &residue {
        if *v == 0 {
            continue;
        }
        let scale = asset_scale(txn, ledger, asset).await?;
        let amount = decimal_of(i128::from(v.abs()), scale);
        let (r, o) = (
            id_of(&format!("residual:{asset}"))?,
            id_of(&omnibus_code(asset))?,
        );
        if *v > 0 {
            residual_postings.push(NewPosting::debit(o, asset, amount));
            residual_postings.push(NewPosting::credit(r, asset, amount));
        } else {
            residual_postings.push(NewPosting::debit(r, asset, amount));
            residual_postings.push(NewPosting::credit(o, asset, amount));
        }
        *totals.residual.entry(asset.clone()).or_default() += v;
    }
    if !residual_postings.is_empty() {
        entries.push(NewEntry {
            tenant_id,
            idempotency_key: format!("trade-residual:{date}"),
            kind: "trade_residual".to_owned(),
            effective_date: date,
            description: format!("allocation residue of {date}"),
            metadata: json!({ "eod_date": date }),
            postings: residual_postings,
            hold: None,
        });
    }
    totals.entries += entries.len() as u64;
    post_all(txn, ledger, entries).await?;
    // What the wraps hold now, for the payouts.
    for (wrap_id, t) in &trades {
        *balances.entry(wrap_cash_code(*wrap_id)).or_default() += t.cash;
        for (instrument, delta) in &t.units {
            *balances
                .entry(wrap_units_code(*wrap_id, instrument))
                .or_default() += delta;
        }
    }
    for (currency, v) in &levy {
        *totals.levy.entry(currency.clone()).or_default() += v;
    }
    insert_rows(
        txn,
        "trade_allocations (tenant_id, order_id, business_date, wrap_id, units, amount, status, \
         levy)",
        statuses
            .iter()
            .map(|(order, wrap, u, a, s, l)| {
                vec![
                    tenant_id.into(),
                    (*order).into(),
                    date.into(),
                    (*wrap).into(),
                    (*u).into(),
                    (*a).into(),
                    (*s).into(),
                    (*l).into(),
                ]
            })
            .collect(),
    )
    .await?;
    // The customers' individual costs (個別元本) and each sale's realised gain, from what
    // was booked: in this transaction, so they are done exactly when the entries are.
    let booked = booked_trades(&orders, &statuses, &wraps, &priced);
    let costs = crate::funds::store::apply_trades(txn, tenant_id, date, &booked)
        .await
        .map_err(funds_error)?;
    totals.cost_buys += costs.buys;
    totals.cost_sales += costs.sales;
    // Each order takes its allocation's status (a residual one counts as unfilled for the
    // wrap); one statement for the tenant's day.
    let mut pa = Params::new(b);
    let t = pa.push(tenant_id);
    let d = pa.push(date);
    let q = format!(
        "UPDATE trade_orders SET status = COALESCE((SELECT CASE a.status WHEN 'residual' \
         THEN 'unfilled' ELSE a.status END FROM trade_allocations a \
         WHERE a.tenant_id = trade_orders.tenant_id AND a.order_id = trade_orders.id), 'unfilled') \
         WHERE tenant_id = {t} AND business_date = {d} AND status = 'planned'"
    );
    exec(txn, q, pa.values).await?;

    // Today's allocations are written: what is still unsettled includes today's trades.
    let unsettled = unsettled(txn, tenant_id, date, calendar).await?;
    pay_movements(
        txn, ledger, tenant_id, date, &movements, &wraps, &balances, &unsettled, &ids, totals,
    )
    .await
}

/// What allocation decided for a book's day, before anything is written.
#[derive(Default)]
struct Allocated {
    /// Per wrap, what it receives (+) and pays (−) per asset.
    trades: BTreeMap<Uuid, WrapTrades>,
    /// Per order: (order, wrap, units, amount, status, levy); a sale's amount is what the
    /// wrap received, net of the levy.
    statuses: Vec<(Uuid, Uuid, i64, i64, &'static str, i64)>,
    /// Per asset, what the platform keeps (+) or gives (−): rounding of the pool, and the
    /// trades of wraps that can no longer take them.
    residue: BTreeMap<String, i64>,
    /// Per currency, the redemption levies deducted from the wraps' proceeds: they stay in
    /// the fund, so the omnibus receives the proceeds net of them.
    levy: BTreeMap<String, i64>,
    filled: u64,
    partial: u64,
    unfilled: u64,
}

/// Allocation's pure part: each block's fills divided among its orders (largest remainder),
/// each wrap's side at the day's price, and what each wrap receives and pays. No database.
fn allocate(
    orders: &[Order],
    side_totals: &HashMap<(String, TradeSide), (i64, i64)>,
    short: &std::collections::HashSet<(String, TradeSide)>,
    priced: &HashMap<String, Pricing>,
    balances: &HashMap<String, i64>,
    wraps: &HashMap<Uuid, WrapRow>,
) -> Result<Allocated, EodError> {
    let mut out = Allocated::default();
    // Split each (instrument, side) among its orders.
    let mut groups: BTreeMap<(String, TradeSide), Vec<usize>> = BTreeMap::new();
    for (i, o) in orders.iter().enumerate() {
        groups
            .entry((o.instrument.clone(), o.side))
            .or_default()
            .push(i);
    }
    let mut shares: Vec<Share> = Vec::with_capacity(orders.len());
    for ((instrument, side), idx) in &groups {
        let (units_total, amount_total) = side_totals
            .get(&(instrument.clone(), *side))
            .copied()
            .unwrap_or_default();
        let pricing = priced
            .get(instrument)
            .ok_or_else(|| corrupt(format!("orders in {instrument} were not netted")))?;
        let (divided, weights): (i64, Vec<i64>) = match side {
            TradeSide::Buy => (
                amount_total,
                idx.iter().map(|i| orders[*i].amount).collect(),
            ),
            TradeSide::Sell => (units_total, idx.iter().map(|i| orders[*i].units).collect()),
        };
        let parts = largest_remainder(divided, &weights);
        // Each wrap's side of the trade at the day's price, as a fund computes it per
        // investor; the pool's rounding gain is the residue. Should the pool fall short of
        // that (crossing and a partial fill rounded apart), the pool is split instead.
        let owed: Vec<i64> = parts
            .iter()
            .map(|p| match side {
                TradeSide::Buy => pricing.units_for(*p),
                TradeSide::Sell => pricing.value_of(*p),
            })
            .collect();
        let pool = match side {
            TradeSide::Buy => units_total,
            TradeSide::Sell => amount_total,
        };
        let owed_total: i64 = owed.iter().sum();
        let other = if owed_total <= pool {
            owed
        } else {
            largest_remainder(pool, &owed)
        };
        let given: i64 = other.iter().sum();
        let residue_asset = match side {
            TradeSide::Buy => instrument.clone(),
            TradeSide::Sell => pricing.currency.clone(),
        };
        *out.residue.entry(residue_asset).or_default() += pool - given;
        for (k, i) in idx.iter().enumerate() {
            let (units, amount, levy) = match side {
                TradeSide::Buy => (other[k], parts[k], 0),
                // Each sale's levy on its own value, as the fund charges each redemption.
                TradeSide::Sell => (parts[k], other[k], pricing.levy_on(other[k])),
            };
            shares.push(Share {
                order: *i,
                units,
                amount,
                levy,
            });
        }
    }

    // Per wrap: what it receives and pays. A buy whose cash the wrap no longer has (its cash
    // left through the API between rebalancing and now) is not booked to it: its units and
    // cash go to the residual accounts instead.
    let (trades, statuses) = (&mut out.trades, &mut out.statuses);
    // Sells first: their proceeds are there before the same wrap's buys.
    shares.sort_by_key(|s| (orders[s.order].side == TradeSide::Buy, s.order));
    for s in &shares {
        let o = &orders[s.order];
        let cash_code = wrap_cash_code(o.wrap_id);
        let t = trades.entry(o.wrap_id).or_default();
        let open = wraps.get(&o.wrap_id).is_some_and(|w| w.status != "closed");
        let status = match o.side {
            TradeSide::Sell => {
                let full = s.units >= o.units;
                if s.units == 0 {
                    "unfilled"
                } else if full {
                    "filled"
                } else {
                    "partially_filled"
                }
            }
            TradeSide::Buy => {
                let cash_now = balances.get(&cash_code).copied().unwrap_or(0) + t.cash;
                if s.amount == 0 {
                    "unfilled"
                } else if !open || cash_now < s.amount {
                    *out.residue.entry(o.instrument.clone()).or_default() += s.units;
                    let currency = wraps
                        .get(&o.wrap_id)
                        .map_or_else(|| "JPY".to_owned(), |w| w.currency.clone());
                    *out.residue.entry(currency).or_default() -= s.amount;
                    "residual"
                } else if !short.contains(&(o.instrument.clone(), TradeSide::Buy)) {
                    // Its block filled in full (or it was all crossed): the venue's cost
                    // rounding may still leave a yen of the amount unspent.
                    "filled"
                } else {
                    "partially_filled"
                }
            }
        };
        if matches!(status, "filled" | "partially_filled") {
            match o.side {
                TradeSide::Buy => {
                    t.cash -= s.amount;
                    *t.units.entry(o.instrument.clone()).or_default() += s.units;
                }
                TradeSide::Sell => {
                    t.cash += s.amount - s.levy;
                    *t.units.entry(o.instrument.clone()).or_default() -= s.units;
                    if s.levy > 0 {
                        let currency = wraps
                            .get(&o.wrap_id)
                            .map_or_else(|| "JPY".to_owned(), |w| w.currency.clone());
                        *out.levy.entry(currency).or_default() += s.levy;
                    }
                }
            }
        }
        match status {
            "filled" => out.filled += 1,
            "partially_filled" => out.partial += 1,
            _ => out.unfilled += 1,
        }
        let (amount, levy) = match (o.side, status) {
            (TradeSide::Sell, "filled" | "partially_filled") => (s.amount - s.levy, s.levy),
            _ => (s.amount, 0),
        };
        statuses.push((o.id, o.wrap_id, s.units, amount, status, levy));
    }

    Ok(out)
}

/// The day's filled trades as the individual-cost rule needs them (the sales' amounts net of
/// the levy, as booked).
fn booked_trades(
    orders: &[Order],
    statuses: &[(Uuid, Uuid, i64, i64, &'static str, i64)],
    wraps: &HashMap<Uuid, WrapRow>,
    priced: &HashMap<String, Pricing>,
) -> Vec<crate::funds::store::BookedTrade> {
    let by_id: HashMap<Uuid, &Order> = orders.iter().map(|o| (o.id, o)).collect();
    statuses
        .iter()
        .filter(|s| matches!(s.4, "filled" | "partially_filled") && s.2 > 0)
        .filter_map(|(order, wrap, units, amount, _, levy)| {
            let o = by_id.get(order)?;
            let w = wraps.get(wrap)?;
            let p = priced.get(&o.instrument)?;
            Some(crate::funds::store::BookedTrade {
                order_id: *order,
                customer_id: w.customer_id,
                wrap_id: *wrap,
                instrument: o.instrument.clone(),
                sell: o.side == TradeSide::Sell,
                units: *units,
                amount: *amount,
                levy: *levy,
                scale: crate::funds::cost::Scale {
                    quote_unit: p.quote_unit,
                    unit_scale: p.unit_scale,
                },
            })
        })
        .collect()
}

/// The sums allocation must keep (checked before anything is written): per asset, what the
/// wraps receive plus the residue plus the redemption levies (kept by the fund) equals what
/// the day's blocks filled, so no unit or yen is made or lost in the division. A break is a
/// bug: the day stops, nothing is booked.
fn check_allocation(
    orders: &[Order],
    side_totals: &HashMap<(String, TradeSide), (i64, i64)>,
    wraps: &HashMap<Uuid, WrapRow>,
    trades: &BTreeMap<Uuid, WrapTrades>,
    residue: &BTreeMap<String, i64>,
    levy: &BTreeMap<String, i64>,
) -> Result<(), String> {
    let mut filled: BTreeMap<String, i128> = BTreeMap::new();
    let mut groups: BTreeMap<(&str, TradeSide), &str> = BTreeMap::new();
    for o in orders {
        let currency = wraps.get(&o.wrap_id).map_or("JPY", |w| w.currency.as_str());
        groups.insert((o.instrument.as_str(), o.side), currency);
    }
    for ((instrument, side), currency) in groups {
        let (units, amount) = side_totals
            .get(&(instrument.to_owned(), side))
            .copied()
            .unwrap_or_default();
        let sign: i128 = if side == TradeSide::Buy { 1 } else { -1 };
        *filled.entry(instrument.to_owned()).or_default() += sign * i128::from(units);
        *filled.entry(currency.to_owned()).or_default() -= sign * i128::from(amount);
    }
    let mut given: BTreeMap<String, i128> = BTreeMap::new();
    for (wrap_id, t) in trades {
        if let Some(w) = wraps.get(wrap_id) {
            *given.entry(w.currency.clone()).or_default() += i128::from(t.cash);
        }
        for (instrument, delta) in &t.units {
            *given.entry(instrument.clone()).or_default() += i128::from(*delta);
        }
    }
    for (asset, v) in residue.iter().chain(levy) {
        *given.entry(asset.clone()).or_default() += i128::from(*v);
    }
    for asset in filled.keys().chain(given.keys()) {
        let (f, g) = (
            filled.get(asset).copied().unwrap_or(0),
            given.get(asset).copied().unwrap_or(0),
        );
        if f != g {
            return Err(format!(
                "{asset}: the blocks filled {f} (minor units, + received) but the wraps and the \
                 residue were given {g}"
            ));
        }
    }
    Ok(())
}

/// The scale of `asset`, read in the step's transaction when not cached (never through a
/// second connection of the pool: `Ledger::asset_in`).
async fn asset_scale(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    asset: &str,
) -> Result<u32, EodError> {
    Ok(ledger.asset_in(txn, asset).await?.scale)
}

/// Posts `entries` in batches of at most [`MAX_BATCH`].
pub(super) async fn post_all(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    entries: Vec<NewEntry>,
) -> Result<(), EodError> {
    let mut rest = entries;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(MAX_BATCH));
        ledger.post_batch_in(txn, rest).await?;
        rest = tail;
    }
    Ok(())
}

async fn decided_movements(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    date: NaiveDate,
) -> Result<Vec<MovementRow>, EodError> {
    let b = txn.get_database_backend();
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT movement_ids FROM rebalance_decisions WHERE tenant_id = {} AND business_date = {} \
         AND movement_ids <> '[]'",
        pa.push(tenant_id),
        pa.push(date)
    );
    let mut ids: Vec<Uuid> = Vec::new();
    for r in query(txn, q, pa.values).await? {
        let text: String = get(&r, 0)?;
        let list: Vec<Uuid> =
            serde_json::from_str(&text).map_err(|_| corrupt(format!("movement_ids {text:?}")))?;
        ids.extend(list);
    }
    ids.sort();
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IN_CHUNK) {
        let mut pa = Params::new(b);
        let t = pa.push(tenant_id);
        let list = pa.list(chunk);
        let q = format!(
            "SELECT id, wrap_id, kind, amount, destination_wrap_id FROM wrap_movements \
             WHERE tenant_id = {t} AND id IN {list} AND status = 'pending' ORDER BY id"
        );
        for r in query(txn, q, pa.values).await? {
            out.push(MovementRow {
                id: get(&r, 0)?,
                wrap_id: get(&r, 1)?,
                kind: get(&r, 2)?,
                amount: get(&r, 3)?,
                destination: get(&r, 4)?,
            });
        }
    }
    Ok(out)
}

async fn wrap_rows(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, WrapRow>, EodError> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IN_CHUNK) {
        let mut pa = Params::new(txn.get_database_backend());
        let t = pa.push(tenant_id);
        let list = pa.list(chunk);
        let q = format!(
            "SELECT id, customer_id, currency, currency_scale, status, agreement_id FROM wraps \
             WHERE tenant_id = {t} AND id IN {list}"
        );
        for r in query(txn, q, pa.values).await? {
            out.insert(
                get::<Uuid>(&r, 0)?,
                WrapRow {
                    customer_id: get(&r, 1)?,
                    currency: get(&r, 2)?,
                    scale: u32::try_from(get::<i32>(&r, 3)?).unwrap_or(0),
                    status: get(&r, 4)?,
                    agreement_id: get(&r, 5)?,
                },
            );
        }
    }
    Ok(out)
}

async fn units_codes_of(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    wrap_id: Uuid,
) -> Result<Vec<String>, EodError> {
    let mut pa = Params::new(txn.get_database_backend());
    let prefix = format!("wrap:{wrap_id}:units:");
    let q = format!(
        "SELECT code FROM ledger_accounts WHERE tenant_id = {} AND code > {} AND code < {}",
        pa.push(tenant_id),
        pa.push(prefix.clone()),
        pa.push(format!("wrap:{wrap_id}:units;"))
    );
    query(txn, q, pa.values)
        .await?
        .iter()
        .map(|r| get::<String>(r, 0).map_err(EodError::from))
        .collect()
}

/// What of a wrap's trades has not settled yet: sale proceeds (cash) and bought units, in
/// minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unsettled {
    pub cash: i64,
    pub units: HashMap<String, i64>,
}

/// Calendar days back that [`unsettled`] may look for trades: more than any settlement lag
/// ([`ledger::market::MAX_SETTLEMENT_DAYS`] business days) spans, holidays included.
const SETTLEMENT_WINDOW_DAYS: u64 = 40;

/// Each of the tenant's wraps' trades that have not settled by `date` (see the module doc):
/// a trade of date T in an instrument with `settlement_days` n settles on the calendar's
/// T+n business day, and is unsettled before it. Only trades after the n-th business day
/// before `date` can be unsettled, n the longest lag of any instrument, so that is all that
/// is read (the `trade_orders_by_date` index): with T+1 funds, the day's own trades.
pub(super) async fn unsettled(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    date: NaiveDate,
    calendar: &ledger::calendar::Calendar,
) -> Result<HashMap<Uuid, Unsettled>, EodError> {
    let rows = query(
        txn,
        "SELECT MAX(settlement_days) FROM instruments".to_owned(),
        vec![],
    )
    .await?;
    let longest: i32 = match rows.first() {
        Some(r) => get::<Option<i32>>(r, 0)?.unwrap_or(0),
        None => 0,
    };
    // The latest date whose trades have all settled by `date` (so have all before it).
    let longest = u32::try_from(longest).unwrap_or(0);
    let floor = date
        .checked_sub_days(chrono::Days::new(SETTLEMENT_WINDOW_DAYS))
        .unwrap_or(date);
    let mut after = date;
    while after > floor
        && calendar
            .add_business_days(after, longest)
            .is_none_or(|d| d > date)
    {
        after = after.pred_opt().unwrap_or(floor);
    }
    let mut pa = Params::new(txn.get_database_backend());
    let from = pa.push(after);
    let to = pa.push(date);
    let t = pa.push(tenant_id);
    let q = format!(
        "SELECT o.wrap_id, o.business_date, o.side, o.instrument, a.units, a.amount, \
         i.settlement_days FROM trade_orders o \
         JOIN trade_allocations a ON a.tenant_id = o.tenant_id AND a.order_id = o.id \
         JOIN instruments i ON i.code = o.instrument \
         WHERE o.business_date > {from} AND o.business_date <= {to} AND o.tenant_id = {t} \
         AND a.status IN ('filled', 'partially_filled')"
    );
    let mut out: HashMap<Uuid, Unsettled> = HashMap::new();
    for r in query(txn, q, pa.values).await? {
        let traded: NaiveDate = get(&r, 1)?;
        let lag = u32::try_from(get::<i32>(&r, 6)?).unwrap_or(0);
        // Beyond the calendar's reach: not settled (never released early).
        let settles = calendar.add_business_days(traded, lag);
        if settles.is_some_and(|d| d <= date) {
            continue;
        }
        let u = out.entry(get(&r, 0)?).or_default();
        let side: String = get(&r, 2)?;
        if side == "sell" {
            u.cash += get::<i64>(&r, 5)?;
        } else {
            *u.units.entry(get(&r, 3)?).or_default() += get::<i64>(&r, 4)?;
        }
    }
    Ok(out)
}

/// Available balances (posted, less what holds reserve) of the tenant's accounts `codes`
/// that exist.
pub(super) async fn available_balances(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    codes: &[String],
) -> Result<HashMap<String, i64>, EodError> {
    let mut out = HashMap::with_capacity(codes.len());
    for chunk in codes.chunks(IN_CHUNK) {
        let mut pa = Params::new(txn.get_database_backend());
        let t = pa.push(tenant_id);
        let list = pa.list(chunk);
        let q = format!(
            "SELECT code, CASE WHEN normal_side = 'credit' \
                 THEN credits_posted - debits_posted - debits_pending \
                 ELSE debits_posted - credits_posted - credits_pending END \
             FROM ledger_accounts WHERE tenant_id = {t} AND code IN {list}"
        );
        for r in query(txn, q, pa.values).await? {
            out.insert(get::<String>(&r, 0)?, get::<i64>(&r, 1)?);
        }
    }
    Ok(out)
}

/// A movement paid today, before a liquidation's performance fee is taken from it.
struct Payout<'a> {
    movement: &'a MovementRow,
    wrap: &'a WrapRow,
    pay: i64,
    from: Uuid,
    to: Uuid,
    kind: &'static str,
    /// A movement of everything that pays something: a liquidation.
    liquidation: bool,
}

#[allow(clippy::too_many_arguments)]
async fn pay_movements(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    tenant_id: Uuid,
    date: NaiveDate,
    movements: &[MovementRow],
    wraps: &HashMap<Uuid, WrapRow>,
    balances: &HashMap<String, i64>,
    unsettled: &HashMap<Uuid, Unsettled>,
    ids: &HashMap<(Uuid, String), Uuid>,
    totals: &mut Totals,
) -> Result<(), EodError> {
    let mut payouts: Vec<Payout> = Vec::new();
    let mut liquidations: Vec<Liquidation> = Vec::new();
    let mut fulfilled: Vec<(Uuid, i64)> = Vec::new();
    let mut closed: Vec<Uuid> = Vec::new();
    let mut activated: Vec<Uuid> = Vec::new();
    // What each wrap owes in fees stays in its cash (see the module doc).
    let movers: Vec<Uuid> = movements.iter().map(|m| m.wrap_id).collect();
    let owed = super::fees::owed_by(txn, tenant_id, &movers).await?;
    let mut settle_now: Vec<Uuid> = Vec::new();
    // The wraps that still hold units (read once: a scan per movement was quadratic).
    let holding: HashSet<Uuid> = balances
        .iter()
        .filter(|(_, v)| **v > 0)
        .filter_map(|(code, _)| match parse_wrap_code(code)? {
            (wrap, Some(_)) => Some(wrap),
            (_, None) => None,
        })
        .collect();
    // Cash each wrap may still pay out, as earlier movements of the same wrap take theirs.
    let mut cash_left: HashMap<Uuid, i64> = HashMap::new();
    // Paid out of each wrap by earlier movements here (flows not posted yet).
    let mut paid: HashMap<Uuid, i64> = HashMap::new();
    for m in movements {
        let Some(w) = wraps.get(&m.wrap_id) else {
            continue;
        };
        let pending_cash = unsettled.get(&m.wrap_id).map_or(0, |u| u.cash);
        // Units bought and not settled cannot be sold yet: the money they will raise is to come.
        let pending_units = unsettled
            .get(&m.wrap_id)
            .is_some_and(|u| u.units.values().any(|v| *v > 0));
        let cash = cash_left.entry(m.wrap_id).or_insert_with(|| {
            balances
                .get(&wrap_cash_code(m.wrap_id))
                .copied()
                .unwrap_or(0)
                - owed.get(&m.wrap_id).copied().unwrap_or(0)
                - pending_cash
        });
        let units_left = holding.contains(&m.wrap_id);
        let pay = match m.amount {
            // Short while trades have not settled: wait for them.
            Some(a) if a > *cash && (pending_cash > 0 || pending_units) => continue,
            Some(a) => a.min(*cash),
            // Everything: only once every unit is sold (a partial fill waits for tomorrow)
            // and every sale has settled.
            None if units_left || pending_cash > 0 => continue,
            None => *cash,
        };
        let pay = pay.max(0);
        *cash -= pay;
        let paid_before = paid.entry(m.wrap_id).or_default();
        let liquidation = m.amount.is_none() && pay > 0;
        if liquidation {
            // Its performance fee, if its terms have one, is charged first.
            liquidations.push(Liquidation {
                wrap_id: m.wrap_id,
                agreement_id: w.agreement_id,
                scale: w.scale,
                value: pay,
                paid_before: *paid_before,
            });
        }
        if m.amount.is_none() && owed.get(&m.wrap_id).is_some_and(|o| *o > 0) {
            settle_now.push(m.wrap_id);
        }
        *paid_before += pay;
        let id_of = |code: String| -> Result<Uuid, EodError> {
            ids.get(&(tenant_id, code.clone()))
                .copied()
                .ok_or_else(|| corrupt(format!("account {code} missing")))
        };
        let from = id_of(wrap_cash_code(m.wrap_id))?;
        let destination = m
            .destination
            .and_then(|d| wraps.get(&d).map(|dw| (d, dw)))
            .filter(|(_, dw)| matches!(dw.status.as_str(), "open" | "active"));
        let (to, kind) = match (m.kind.as_str(), destination) {
            ("switch", Some((d, dw))) => {
                if dw.status == "open" {
                    activated.push(d);
                }
                (id_of(wrap_cash_code(d))?, "switch")
            }
            ("close", _) => (
                id_of(customer_cash_code(w.customer_id, &w.currency))?,
                "wrap_close",
            ),
            _ => (
                id_of(customer_cash_code(w.customer_id, &w.currency))?,
                "withdrawal",
            ),
        };
        payouts.push(Payout {
            movement: m,
            wrap: w,
            pay,
            from,
            to,
            kind,
            liquidation,
        });
        if m.kind == "close" {
            closed.push(m.wrap_id);
        }
    }
    let perf =
        billing::crystallise_at_liquidation(txn, ledger, tenant_id, date, &liquidations).await?;
    let mut entries = Vec::new();
    let mut paid_events: Vec<NewEvent> = Vec::new();
    for p in payouts {
        let (m, w) = (p.movement, p.wrap);
        // The fee stays in the wrap (owed and due: billing collects it today).
        let pay = if p.liquidation {
            p.pay - perf.get(&m.wrap_id).copied().unwrap_or(0)
        } else {
            p.pay
        };
        fulfilled.push((m.id, pay));
        paid_events.push(NewEvent::new(
            tenant_id,
            types::MOVEMENT_PAID,
            format!("wrap:{}", m.wrap_id),
            Some(date),
            json!({
                "movement_id": m.id,
                "wrap_id": m.wrap_id,
                "kind": m.kind,
                "destination_wrap_id": m.destination,
                "currency": w.currency,
                "paid": decimal_of(i128::from(pay), w.scale).to_string(),
            }),
        ));
        if pay > 0 {
            let amount = decimal_of(i128::from(pay), w.scale);
            entries.push(NewEntry {
                tenant_id,
                idempotency_key: format!("movement:{}", m.id),
                kind: p.kind.to_owned(),
                effective_date: date,
                description: format!("{} {} paid out", m.kind, m.id),
                metadata: json!({
                    "movement_id": m.id,
                    "wrap_id": m.wrap_id,
                    "customer_id": w.customer_id,
                    "destination_wrap_id": m.destination,
                    "eod_date": date,
                }),
                postings: vec![
                    NewPosting::debit(p.from, &w.currency, amount),
                    NewPosting::credit(p.to, &w.currency, amount),
                ],
                hold: None,
            });
        }
    }
    totals.entries += entries.len() as u64;
    post_all(txn, ledger, entries).await?;
    super::fees::make_owed_due(txn, tenant_id, &settle_now).await?;
    let now = Utc::now();
    wrap_rows::fulfil_movements(txn, tenant_id, &fulfilled, date, now).await?;
    wrap_rows::advance_wraps(
        txn,
        tenant_id,
        &closed,
        WrapStatus::Closing,
        WrapStatus::Closed,
        now,
    )
    .await?;
    wrap_rows::advance_wraps(
        txn,
        tenant_id,
        &activated,
        WrapStatus::Open,
        WrapStatus::Active,
        now,
    )
    .await?;
    totals.fulfilled += fulfilled.len() as u64;
    totals.closed += closed.len() as u64;
    // Last (the events' cursor locks come after every other lock: crate::events). A wrap's
    // events share its object id, so its payout is delivered before its closing.
    paid_events.extend(closed.iter().map(|wrap_id| {
        NewEvent::new(
            tenant_id,
            types::WRAP_CLOSED,
            format!("wrap:{wrap_id}"),
            Some(date),
            json!({ "wrap_id": wrap_id }),
        )
    }));
    crate::events::record(txn, paid_events, now).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fund(price: &str) -> Pricing {
        Pricing {
            instrument: "F".into(),
            currency: "JPY".into(),
            currency_scale: 0,
            unit_scale: 0,
            quote_unit: 10_000,
            price: price.parse().unwrap(),
            price_date: NaiveDate::from_ymd_opt(2027, 2, 15).unwrap(),
            levy_rate: Decimal::ZERO,
        }
    }

    #[test]
    fn cash_and_units_convert_exactly() {
        let p = fund("13000");
        // 30,000 × 10,000 ÷ 13,000 = 23,076.92… → 23,076 units.
        assert_eq!(p.units_for(30_000), 23_076);
        // 23,076 × 13,000 ÷ 10,000 = 29,998.8: worth 29,998, costs 29,999.
        assert_eq!(p.value_of(23_076), 29_998);
        assert_eq!(p.cost_of(23_076), 29_999);
        // Raising 1,000 takes ceil(769.23…) = 770 units.
        assert_eq!(p.units_to_raise(1_000), 770);
        // A price with decimals and a unit scale: 1.5 units (scale 1) at 12,345.67 per
        // 10,000 units is 1.85185… → 1 yen.
        let q = Pricing {
            unit_scale: 1,
            price: "12345.67".parse().unwrap(),
            ..fund("1")
        };
        assert_eq!(q.value_of(15), 1);
        assert_eq!(q.units_for(1), 8);
    }

    #[test]
    fn allocation_must_give_out_the_fills_whole() {
        let (w, order) = (Uuid::now_v7(), Uuid::now_v7());
        let orders = vec![Order {
            id: order,
            wrap_id: w,
            instrument: "F".into(),
            side: TradeSide::Buy,
            amount: 1_000,
            units: 0,
        }];
        let side_totals = HashMap::from([(("F".to_owned(), TradeSide::Buy), (100, 1_000))]);
        let wraps = HashMap::from([(
            w,
            WrapRow {
                customer_id: Uuid::now_v7(),
                agreement_id: Uuid::now_v7(),
                currency: "JPY".into(),
                scale: 0,
                status: "active".into(),
            },
        )]);
        let trades = BTreeMap::from([(
            w,
            WrapTrades {
                cash: -1_000,
                units: BTreeMap::from([("F".to_owned(), 99)]),
            },
        )]);
        // One unit filled and given to no one: refused, naming the asset.
        let none = BTreeMap::new();
        let lost = check_allocation(
            &orders,
            &side_totals,
            &wraps,
            &trades,
            &BTreeMap::new(),
            &none,
        );
        assert!(lost.unwrap_err().starts_with("F: "));
        // Kept as the platform's residue: whole.
        let residue = BTreeMap::from([("F".to_owned(), 1)]);
        assert_eq!(
            check_allocation(&orders, &side_totals, &wraps, &trades, &residue, &none),
            Ok(())
        );
    }

    #[test]
    fn a_sale_pays_its_levy_to_the_fund_and_the_rest_to_the_wrap() {
        // Two wraps sell 23,147 and 10,000 units at ¥13,000 per 10,000 units, levy 0.3 %:
        // the block of 33,147 units fills for floor(33,147 × 1.3) = ¥43,091. Each wrap's
        // value: 23,147 × 1.3 = 30,091.1 → 30,091 and 10,000 × 1.3 = 13,000 (residue 0);
        // levies floor(90.273) = 90 and floor(39) = 39; proceeds 30,001 and 12,961.
        let p = Pricing {
            levy_rate: "0.003".parse().unwrap(),
            ..fund("13000")
        };
        let (w1, w2) = (Uuid::now_v7(), Uuid::now_v7());
        let order = |wrap_id, units| Order {
            id: Uuid::now_v7(),
            wrap_id,
            instrument: "F".into(),
            side: TradeSide::Sell,
            amount: 0,
            units,
        };
        let orders = vec![order(w1, 23_147), order(w2, 10_000)];
        let side_totals = HashMap::from([(("F".to_owned(), TradeSide::Sell), (33_147, 43_091))]);
        let row = || WrapRow {
            customer_id: Uuid::now_v7(),
            agreement_id: Uuid::now_v7(),
            currency: "JPY".into(),
            scale: 0,
            status: "active".into(),
        };
        let wraps = HashMap::from([(w1, row()), (w2, row())]);
        let priced = HashMap::from([("F".to_owned(), p)]);
        let a = allocate(
            &orders,
            &side_totals,
            &HashSet::new(),
            &priced,
            &HashMap::new(),
            &wraps,
        )
        .unwrap();
        assert_eq!(a.trades[&w1].cash, 30_001);
        assert_eq!(a.trades[&w2].cash, 12_961);
        assert_eq!(a.levy, BTreeMap::from([("JPY".to_owned(), 129)]));
        assert_eq!(a.residue.get("JPY").copied().unwrap_or(0), 0);
        let amounts: Vec<(i64, i64)> = a.statuses.iter().map(|s| (s.3, s.5)).collect();
        assert_eq!(amounts, vec![(30_001, 90), (12_961, 39)]);
        // The sums hold with the levy; without it, 129 yen would be missing.
        assert_eq!(
            check_allocation(
                &orders,
                &side_totals,
                &wraps,
                &a.trades,
                &a.residue,
                &a.levy
            ),
            Ok(())
        );
        assert!(
            check_allocation(
                &orders,
                &side_totals,
                &wraps,
                &a.trades,
                &a.residue,
                &BTreeMap::new()
            )
            .is_err()
        );
    }

    #[test]
    fn largest_remainder_adds_up() {
        // 29,999 in 3:2:1 → 14,999.5, 9,999.67, 4,999.83: floors 29,997, the two left over go
        // to .83 and .67.
        assert_eq!(
            largest_remainder(29_999, &[30_000, 20_000, 10_000]),
            vec![14_999, 10_000, 5_000]
        );
        assert_eq!(largest_remainder(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(largest_remainder(5, &[0, 0]), vec![0, 0]);
        assert_eq!(largest_remainder(0, &[3, 4]), vec![0, 0]);
    }

    #[test]
    fn netting_crosses_then_sends_the_rest() {
        let p = fund("10000");
        // Buys of 50,000 want 50,000 units; sells of 50,000 units cancel them exactly.
        let n = net(&p, 50_000, 50_000);
        assert_eq!((n.crossed_units, n.crossed_amount), (50_000, 50_000));
        assert_eq!((n.net_buy_amount, n.net_sell_units), (0, 0));
        // More bought than sold: the sellers' 20,000 units cross, 30,000 yen go out.
        let n = net(&p, 50_000, 20_000);
        assert_eq!(
            (n.crossed_units, n.net_buy_amount, n.net_sell_units),
            (20_000, 30_000, 0)
        );
        // More sold: 5,000 units cross, 15,000 go out.
        let n = net(&p, 5_000, 20_000);
        assert_eq!(
            (n.crossed_units, n.net_buy_amount, n.net_sell_units),
            (5_000, 0, 15_000)
        );
    }
}
