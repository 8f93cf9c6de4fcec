//! Step `rebalance`: what each wrap trades today, recorded as a decision per wrap
//! (`rebalance_decisions`) and its orders (`trade_orders`, planned or skipped with the
//! reason). Nothing moves here: netting, execution and allocation ([`super::trading`]) do.
//!
//! On a day that is not a business day of the calendar (`[calendar]`) nothing is decided.
//! Otherwise every wrap that is `active` or `closing` is looked at, with its available cash
//! and units, its strategy's model version in effect on the date, the agreement's terms, the
//! instruments' prices of the date (the last price before it when there is none) and its
//! pending movements. Triggers, the first that applies wins:
//! 1. `close` / `liquidation`: a pending close, or a withdrawal or switch of everything:
//!    every unit is sold (no minimum applies to a liquidation);
//! 2. `withdrawal` / `switch`: pending amounts `L`: units are sold, in proportion to the
//!    holdings' values, to raise `L + D + reserve − cash` when that is positive, `D` the fees
//!    due (each sale rounded up to whole units, so the cash is there: [`sales_to_raise`]);
//! 3. `model_change`: the model version in effect differs from the one the wrap last traded
//!    to; 4. `calendar`: the strategy rebalances monthly or quarterly and this is the first
//!    business day of the month or quarter; 5. `cash`: the cash above its target is at least
//!    the smallest minimum order of the model's instruments (buy-only); 6. `drift`: a
//!    holding's weight is outside the strategy's band (`absolute`: |weight − target| > band;
//!    `relative`: > band × target; an instrument no longer in the model has target 0), and
//!    the strategy's `cooldown_days` have passed since the last drift, calendar or model
//!    rebalance. A wrap that holds no units yet is always a `cash` case; 7. `fees`: fees
//!    due `D` (the fee state's `fee_due + tax_due + perf_due + perf_tax_due`: billing found
//!    too little settled cash for them) exceed the cash, all of it counted (proceeds on
//!    their way will pay them once settled, and are not raised twice): units are sold, by
//!    the same function and rule as for a withdrawal, to raise `D + reserve − cash`, each
//!    sale subject to the minimum order as a rebalancing sale is. Billing collects from the
//!    proceeds once they settle. Without this trigger a wrap fully invested, inside its band
//!    and with no calendar rebalance never sold: the reserve kept at its last purchase ran
//!    out and its fees stayed owed for ever.
//!
//! Targets: the reserve `R` is the next fee collection estimated as the agreement's blended
//! annual fee on the NAV, tax included, for 45 days (`fee × (1 + tax) × 45 ÷ 365`, rounded
//! up); the cash target is `max(cash weight × NAV, R) + D` (the fees due are cash already
//! spent, so neither the `cash` trigger nor a rebalance invests it); each instrument's target
//! is its weight's share of the rest. Rebalancing (3, 4, 6) sells what is above target (an
//! instrument out of the model entirely) and buys the shortfalls with the cash on hand
//! above its target, in proportion to the shortfalls (any cash beyond them by weight,
//! largest remainder); the proceeds of today's sales are invested at the next business day's
//! `cash` trigger, so a buy never depends on a sale that might not fill. An order below the
//! instrument's `min_order_amount` (a sale's value, for rebalancing sales that do not empty
//! the holding) is recorded `skipped` with the reason; so is one in an instrument that is
//! not active or has no price.
//!
//! Set-based: per distributor, one keyset-paged scan of its `wrap:` accounts, one query of
//! its wraps and one of its pending movements; models, strategies, terms and prices once
//! for the day; multi-row INSERTs. Tried by `api/tests/http/eod_trading.rs`
//! (`a_first_contribution_is_invested_along_the_model`, `drift_beyond_the_band_rebalances`,
//! `an_order_below_the_minimum_is_skipped`, `a_withdrawal_sells_units_and_pays_the_customer`)
//! and `eod_fees.rs` (`fees_due_sell_units_without_a_rebalance`,
//! `billing_reports_what_it_could_not_collect`).

use std::collections::{BTreeMap, HashMap};

use crate::market::agreement::Terms;
use chrono::{Datelike, NaiveDate};
use ledger::asset::decimal_of;
use ledger::calendar::Calendar;
use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::{ConnectionTrait, DatabaseTransaction, Value};
use serde_json::json;
use uuid::Uuid;

use super::EodError;
use super::trading::{Pricing, TradeSide, insert_rows, largest_remainder, pricing_of};
use ledger::sql::{Params, exec, get, query};

/// Accounts read per page of the scan.
const PAGE: i64 = 20_000;

/// Days of fees the reserve covers (a monthly collection with margin).
const RESERVE_DAYS: i64 = 45;

/// A model version: target weights per instrument and of cash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    pub version: i32,
    pub cash_weight: Decimal,
    pub weights: Vec<(String, Decimal)>,
}

/// A strategy's rebalancing rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub band_relative: bool,
    pub band: Decimal,
    /// `none`, `monthly` or `quarterly`.
    pub calendar: String,
    pub cooldown_days: i64,
}

/// What trading needs to know of an instrument besides its price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tradable {
    pub min_order_amount: i64,
    pub active: bool,
}

/// A pending movement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: Uuid,
    pub kind: String,
    /// Minor units; `None` for everything.
    pub amount: Option<i64>,
}

/// One wrap as rebalancing sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WrapBook {
    /// Available cash, minor units.
    pub cash: i64,
    /// Available units per instrument, minor units of the unit scale.
    pub units: BTreeMap<String, i64>,
    /// Of `cash`, sale proceeds not settled yet ([`super::trading::unsettled`]).
    pub unsettled_cash: i64,
    /// Of `units`, bought units not settled yet, per instrument.
    pub unsettled_units: HashMap<String, i64>,
    /// Fees due now and not collected (the fee state's `fee_due + tax_due + perf_due +
    /// perf_tax_due`): billing found too little settled cash for them.
    pub fees_due: i64,
}

impl WrapBook {
    /// The units of `code` that may be sold: held and settled.
    fn free_units(&self, code: &str, units: i64) -> i64 {
        (units - self.unsettled_units.get(code).copied().unwrap_or(0)).max(0)
    }
}

/// The market of the day.
#[derive(Debug)]
pub struct Market<'a> {
    pub pricing: &'a HashMap<String, Pricing>,
    pub instruments: &'a HashMap<String, Tradable>,
    pub currency: &'a str,
    pub scale: u32,
}

/// What the wrap last traded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct History {
    pub model_version: Option<i32>,
    pub rebalanced_on: Option<NaiveDate>,
}

/// An order decided, or skipped with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedOrder {
    pub instrument: String,
    pub side: TradeSide,
    /// Buys: minor currency units.
    pub amount: i64,
    /// Sells: minor units of the unit scale.
    pub units: i64,
    pub skipped: Option<String>,
}

/// What was decided for one wrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub trigger: &'static str,
    pub nav: i64,
    pub reserve: i64,
    pub orders: Vec<PlannedOrder>,
    pub movement_ids: Vec<Uuid>,
    pub note: Option<String>,
}

impl Decision {
    /// The sums a decision must keep, checked before anything is written (TigerBeetle-style:
    /// a broken sum stops the step instead of reaching the books):
    /// * a planned sale sells more than nothing and at most the wrap's settled units of the
    ///   instrument, and there is one planned order per instrument and side;
    /// * the purchases (planned or skipped: they are one split of the cash) spend neither
    ///   unsettled proceeds nor the cash owed as fees: Σ buys ≤ cash − unsettled cash and
    ///   Σ buys ≤ cash − fees due.
    ///
    /// Tried by `tests::a_decision_that_breaks_its_sums_is_refused`.
    pub fn check(&self, book: &WrapBook) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut buys: i128 = 0;
        for o in &self.orders {
            if o.side == TradeSide::Buy {
                if o.amount <= 0 {
                    return Err(format!("a purchase of {} in {}", o.amount, o.instrument));
                }
                buys += i128::from(o.amount);
            }
            if o.skipped.is_some() {
                continue;
            }
            if !seen.insert((o.instrument.as_str(), o.side)) {
                return Err(format!(
                    "two planned {:?} orders in {}",
                    o.side, o.instrument
                ));
            }
            if o.side == TradeSide::Sell {
                let held = book.units.get(&o.instrument).copied().unwrap_or(0);
                let free = book.free_units(&o.instrument, held);
                if o.units <= 0 || o.units > free {
                    return Err(format!(
                        "a sale of {} units of {} with {free} settled",
                        o.units, o.instrument
                    ));
                }
            }
        }
        let settled = i128::from(book.cash) - i128::from(book.unsettled_cash);
        let unowed = i128::from(book.cash) - i128::from(book.fees_due);
        if buys > 0 && (buys > settled || buys > unowed) {
            return Err(format!(
                "purchases of {buys} with {settled} settled cash and {} fees due",
                book.fees_due
            ));
        }
        Ok(())
    }
}

fn ceil_minor(d: Decimal, scale: u32) -> i64 {
    let mut r = d.round_dp_with_strategy(scale, RoundingStrategy::AwayFromZero);
    r.rescale(scale);
    i64::try_from(r.mantissa()).unwrap_or(i64::MAX)
}

fn floor_minor(d: Decimal, scale: u32) -> i64 {
    let mut r = d.round_dp_with_strategy(scale, RoundingStrategy::ToZero);
    r.rescale(scale);
    i64::try_from(r.mantissa()).unwrap_or(i64::MAX)
}

/// The reserve kept for the next fee collection: the blended annual fee on `nav`, tax
/// included, for [`RESERVE_DAYS`] days, rounded up to the minor unit.
pub fn fee_reserve(terms: Option<&Terms>, nav: i64, scale: u32) -> i64 {
    let Some(terms) = terms else {
        return 0;
    };
    let fee = terms.blended_annual_fee(decimal_of(i128::from(nav.max(0)), scale));
    let with_tax = fee * (Decimal::ONE + terms.consumption_tax_rate);
    ceil_minor(
        with_tax * Decimal::from(RESERVE_DAYS) / Decimal::from(365),
        scale,
    )
}

/// Whether `date` is the first business day of its month (or quarter).
pub fn first_business_day_of_period(calendar: &Calendar, date: NaiveDate, quarterly: bool) -> bool {
    if !calendar.is_business_day(date) || (quarterly && !matches!(date.month(), 1 | 4 | 7 | 10)) {
        return false;
    }
    let Some(first) = date.with_day(1) else {
        return false;
    };
    first
        .iter_days()
        .take_while(|d| *d < date)
        .all(|d| !calendar.is_business_day(d))
}

/// Whether `code` is traded today, and at what price; why not otherwise.
fn tradable<'m>(market: &Market<'m>, code: &str, date: NaiveDate) -> Result<&'m Pricing, String> {
    let active = market.instruments.get(code).is_some_and(|t| t.active);
    if !active {
        return Err(format!("{code} is not active: it is not traded"));
    }
    market
        .pricing
        .get(code)
        .ok_or_else(|| format!("{code} has no price on or before {date}"))
}

fn sell_order(code: &str, units: i64, skipped: Option<String>) -> PlannedOrder {
    PlannedOrder {
        instrument: code.to_owned(),
        side: TradeSide::Sell,
        amount: 0,
        units,
        skipped,
    }
}

/// Why a sale of `units` of the `held` units of `code`, raising `proceeds`, is not placed: it
/// is below the instrument's minimum order and does not empty the holding (a sale that empties
/// it has no minimum, or a holding worth less than the minimum could never be sold).
fn sale_below_minimum(
    market: &Market<'_>,
    code: &str,
    units: i64,
    held: i64,
    proceeds: i64,
) -> Option<String> {
    let min = market
        .instruments
        .get(code)
        .map_or(0, |t| t.min_order_amount);
    (units < held && proceeds < min).then(|| {
        format!(
            "a sale of {} {} is below {code}'s minimum order of {} {}",
            decimal_of(i128::from(proceeds), market.scale),
            market.currency,
            decimal_of(i128::from(min), market.scale),
            market.currency
        )
    })
}

/// The cash a wrap worth `nav` must raise to pay out `out` (a withdrawal, fees due) and keep
/// the reserve for the next fee collection on what is left: `(need, reserve)`, `need` ≤ 0 when
/// its cash is enough. All the cash counts, settled or not: proceeds on their way are not
/// raised twice.
fn cash_to_raise(
    book: &WrapBook,
    terms: Option<&Terms>,
    nav: i64,
    out: i64,
    scale: u32,
) -> (i64, i64) {
    let left = (nav - out).max(0);
    let reserve = fee_reserve(terms, left, scale).min(left);
    (out + reserve - book.cash, reserve)
}

/// The sales that raise `need` (minor units of cash) from the wrap's settled units, in
/// proportion to the holdings' values: each holding's share of the need rounded up, in units
/// rounded up, so the cash is there; every sellable unit when they are worth no more than
/// the need. The one way cash is raised for money going out (withdrawals, switches, fees
/// due). The note says when the holdings fall short.
fn sales_to_raise(
    book: &WrapBook,
    market: &Market<'_>,
    date: NaiveDate,
    need: i64,
) -> (Vec<PlannedOrder>, Option<String>) {
    let mut orders = Vec::new();
    if need <= 0 {
        return (orders, None);
    }
    let sellable: Vec<(&String, i64, i64)> = book
        .units
        .iter()
        .filter(|(c, u)| **u > 0 && tradable(market, c, date).is_ok())
        .map(|(c, u)| (c, book.free_units(c, *u)))
        .filter(|(_, u)| *u > 0)
        .map(|(c, u)| {
            (
                c,
                u,
                market.pricing.get(c.as_str()).map_or(0, |p| p.value_of(u)),
            )
        })
        .collect();
    let total: i64 = sellable.iter().map(|s| s.2).sum();
    for (code, units, worth) in sellable {
        let to_sell = if total <= need {
            units
        } else {
            // This holding's share of the need, rounded up, in units rounded up.
            let share =
                (i128::from(need) * i128::from(worth) + i128::from(total) - 1) / i128::from(total);
            let share = i64::try_from(share).unwrap_or(i64::MAX);
            market
                .pricing
                .get(code.as_str())
                .map_or(units, |p| p.units_to_raise_net(share))
                .min(units)
        };
        if to_sell > 0 {
            orders.push(sell_order(code, to_sell, None));
        }
    }
    debug_assert!(
        orders
            .iter()
            .map(|o| market
                .pricing
                .get(&o.instrument)
                .map_or(0, |p| p.value_of(o.units)))
            .sum::<i64>()
            >= need.min(total),
        "the sales raise the need, or all the holdings are worth"
    );
    let note = (total < need).then(|| {
        format!(
            "the sellable holdings are worth {} {}, less than the {} needed",
            decimal_of(i128::from(total), market.scale),
            market.currency,
            decimal_of(i128::from(need), market.scale)
        )
    });
    (orders, note)
}

/// Decides one wrap's trades; `None` when nothing triggers.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    book: &WrapBook,
    model: &Model,
    rules: &Rules,
    terms: Option<&Terms>,
    market: &Market<'_>,
    pending: &[Pending],
    history: History,
    date: NaiveDate,
    calendar_day: bool,
) -> Option<Decision> {
    let value = |code: &str, units: i64| market.pricing.get(code).map_or(0, |p| p.value_of(units));
    let held: Vec<(&String, i64)> = book
        .units
        .iter()
        .filter(|(_, u)| **u > 0)
        .map(|(c, u)| (c, *u))
        .collect();
    let units_value: i64 = held.iter().map(|(c, u)| value(c, *u)).sum();
    let nav = book.cash + units_value;
    let tradable = |code: &str| tradable(market, code, date);
    let movement_ids: Vec<Uuid> = pending.iter().map(|m| m.id).collect();
    let mut orders: Vec<PlannedOrder> = Vec::new();
    let sell = sell_order;

    // 1. Everything out (units bought and not settled yet are sold once they settle).
    if let Some(all) = pending.iter().find(|m| m.amount.is_none()) {
        for (code, units) in &held {
            let units = book.free_units(code, *units);
            if units == 0 {
                continue;
            }
            match tradable(code) {
                Ok(_) => orders.push(sell(code, units, None)),
                Err(why) => orders.push(sell(code, units, Some(why))),
            }
        }
        return Some(Decision {
            trigger: if all.kind == "close" {
                "close"
            } else {
                "liquidation"
            },
            nav,
            reserve: 0,
            orders,
            movement_ids,
            note: None,
        });
    }
    // 2. Amounts out, with the fees due (they are collected before anything is paid out).
    let asked: i64 = pending.iter().filter_map(|m| m.amount).sum();
    if asked > 0 {
        let (need, reserve) = cash_to_raise(book, terms, nav, asked + book.fees_due, market.scale);
        let (orders, note) = sales_to_raise(book, market, date, need);
        let kind = if pending.iter().any(|m| m.kind == "switch") {
            "switch"
        } else {
            "withdrawal"
        };
        return Some(Decision {
            trigger: kind,
            nav,
            reserve,
            orders,
            movement_ids,
            note,
        });
    }

    // Targets.
    let reserve = fee_reserve(terms, nav, market.scale).min(nav.max(0));
    // The fees due now are cash already spent: on top of the target.
    let cash_target = (ceil_minor(
        model.cash_weight * decimal_of(i128::from(nav.max(0)), market.scale),
        market.scale,
    )
    .max(reserve)
        + book.fees_due)
        .min(nav.max(0));
    let invested_share = Decimal::ONE - model.cash_weight;
    let investable = decimal_of(i128::from(nav - cash_target), market.scale);
    let targets: BTreeMap<&str, i64> = model
        .weights
        .iter()
        .map(|(code, w)| {
            let t = if invested_share > Decimal::ZERO {
                // Multiplied before dividing, so 0.6 × 980,000 ÷ 0.98 is 600,000 exactly.
                floor_minor(*w * investable / invested_share, market.scale)
            } else {
                0
            };
            (code.as_str(), t.max(0))
        })
        .collect();
    // Only settled cash buys.
    let available = (book.cash - cash_target).min(book.cash - book.unsettled_cash);
    let holds_units = units_value > 0 || !held.is_empty();

    // 3-6. Which trigger.
    let min_order = model
        .weights
        .iter()
        .filter_map(|(c, _)| market.instruments.get(c).map(|t| t.min_order_amount))
        .min()
        .unwrap_or(0)
        .max(1);
    let cooled = history
        .rebalanced_on
        .is_none_or(|d| (date - d).num_days() >= rules.cooldown_days);
    let drifted = || {
        if nav <= 0 {
            return false;
        }
        let nav_d = Decimal::from(nav);
        let mut codes: Vec<&str> = targets.keys().copied().collect();
        codes.extend(held.iter().map(|(c, _)| c.as_str()));
        codes.into_iter().any(|code| {
            let target_w = model
                .weights
                .iter()
                .find(|(c, _)| c == code)
                .map_or(Decimal::ZERO, |w| w.1);
            let v = held
                .iter()
                .find(|(c, _)| c.as_str() == code)
                .map_or(0, |(c, u)| value(c, *u));
            let w = Decimal::from(v) / nav_d;
            let band = if rules.band_relative {
                rules.band * target_w
            } else {
                rules.band
            };
            (w - target_w).abs() > band
        })
    };
    let trigger = if holds_units && history.model_version.is_some_and(|v| v != model.version) {
        "model_change"
    } else if holds_units && calendar_day && history.rebalanced_on != Some(date) {
        "calendar"
    } else if available >= min_order {
        "cash"
    } else if holds_units && cooled && drifted() {
        "drift"
    } else if book.fees_due > book.cash {
        // 7. Fees due that the cash (proceeds on their way included) cannot pay: raised as
        // a withdrawal's amount is, each sale subject to the minimum order.
        let (need, reserve) = cash_to_raise(book, terms, nav, book.fees_due, market.scale);
        let (mut orders, note) = sales_to_raise(book, market, date, need);
        for o in &mut orders {
            let held = book.units.get(&o.instrument).copied().unwrap_or(0);
            let proceeds = market
                .pricing
                .get(&o.instrument)
                .map_or(0, |p| p.value_of(o.units));
            o.skipped = sale_below_minimum(market, &o.instrument, o.units, held, proceeds);
        }
        return Some(Decision {
            trigger: "fees",
            nav,
            reserve,
            orders,
            movement_ids,
            note,
        });
    } else {
        return None;
    };

    // Sells (rebalancing only): what is above target.
    let mut after: BTreeMap<&str, i64> = BTreeMap::new();
    for (code, units) in &held {
        let v = value(code, *units);
        after.insert(code.as_str(), v);
        if trigger == "cash" {
            continue;
        }
        let target = targets.get(code.as_str()).copied().unwrap_or(0);
        if v <= target {
            continue;
        }
        let p = match tradable(code) {
            Ok(p) => p,
            Err(why) => {
                orders.push(sell(code, *units, Some(why)));
                continue;
            }
        };
        let free = book.free_units(code, *units);
        let to_sell = if target == 0 {
            free
        } else {
            p.units_for(v - target).min(free)
        };
        if to_sell <= 0 {
            continue;
        }
        let proceeds = p.value_of(to_sell);
        if let Some(why) = sale_below_minimum(market, code, to_sell, *units, proceeds) {
            orders.push(sell(code, to_sell, Some(why)));
            continue;
        }
        after.insert(code.as_str(), v - proceeds);
        orders.push(sell(code, to_sell, None));
    }
    // Buys: the shortfalls, with the cash on hand above its target.
    if available > 0 {
        let model_codes: Vec<&str> = model.weights.iter().map(|(c, _)| c.as_str()).collect();
        let shortfalls: Vec<i64> = model_codes
            .iter()
            .map(|c| {
                (targets.get(c).copied().unwrap_or(0) - after.get(c).copied().unwrap_or(0)).max(0)
            })
            .collect();
        let short_total: i64 = shortfalls.iter().sum();
        let amounts: Vec<i64> = if available <= short_total {
            largest_remainder(available, &shortfalls)
        } else {
            // Beyond the shortfalls, by weight (weights have at most 10 decimals).
            let w: Vec<i64> = model
                .weights
                .iter()
                .map(|(_, w)| {
                    let mut s = *w * Decimal::from(10_000_000_000_i64);
                    s.rescale(0);
                    i64::try_from(s.mantissa()).unwrap_or(0)
                })
                .collect();
            let extra = largest_remainder(available - short_total, &w);
            shortfalls.iter().zip(extra).map(|(s, e)| s + e).collect()
        };
        for (code, amount) in model_codes.iter().zip(amounts) {
            if amount <= 0 {
                continue;
            }
            let skipped = match tradable(code) {
                Err(why) => Some(why),
                Ok(_) => {
                    let min = market
                        .instruments
                        .get(*code)
                        .map_or(0, |t| t.min_order_amount);
                    (amount < min).then(|| {
                        format!(
                            "a purchase of {} {} is below {code}'s minimum order of {} {}",
                            decimal_of(i128::from(amount), market.scale),
                            market.currency,
                            decimal_of(i128::from(min), market.scale),
                            market.currency
                        )
                    })
                }
            };
            orders.push(PlannedOrder {
                instrument: (*code).to_owned(),
                side: TradeSide::Buy,
                amount,
                units: 0,
                skipped,
            });
        }
    }
    Some(Decision {
        trigger,
        nav,
        reserve,
        orders,
        movement_ids,
        note: None,
    })
}

// ---------------------------------------------------------------------------------------
// The step

/// Everything of the day that does not depend on the distributor.
struct Day {
    pricing: HashMap<String, Pricing>,
    instruments: HashMap<String, Tradable>,
    /// (manager, strategy) → model in effect.
    models: HashMap<(Uuid, Uuid), Model>,
    rules: HashMap<(Uuid, Uuid), Rules>,
    /// (distributor, agreement) → terms in effect.
    terms: HashMap<(Uuid, Uuid), Terms>,
}

/// Decides every wrap's trades for `date`; returns the counts.
pub async fn run(
    txn: &DatabaseTransaction,
    date: NaiveDate,
    calendar: &Calendar,
) -> Result<serde_json::Value, EodError> {
    if !calendar.is_business_day(date) {
        return Ok(
            json!({ "reason": "not a business day", "wraps": 0, "orders": 0, "skipped": 0 }),
        );
    }
    let day = load_day(txn, date).await?;
    let tenants = query(
        txn,
        "SELECT DISTINCT tenant_id FROM wraps WHERE status IN ('active', 'closing') ORDER BY tenant_id"
            .to_owned(),
        vec![],
    )
    .await?;
    let mut counts = Counts::default();
    for r in &tenants {
        let tenant_id: Uuid = get(r, 0)?;
        decide_tenant(txn, &day, tenant_id, date, calendar, &mut counts).await?;
    }
    Ok(json!({
        "wraps": counts.wraps,
        "orders": counts.orders,
        "skipped": counts.skipped,
        "triggers": counts.triggers,
    }))
}

#[derive(Default)]
struct Counts {
    wraps: u64,
    orders: u64,
    skipped: u64,
    triggers: BTreeMap<&'static str, u64>,
}

fn bad(what: String) -> EodError {
    EodError::Ledger(ledger::LedgerError::Corrupt(what))
}

fn dec(s: &str) -> Result<Decimal, EodError> {
    s.parse().map_err(|_| bad(format!("decimal {s:?}")))
}

async fn load_day(txn: &DatabaseTransaction, date: NaiveDate) -> Result<Day, EodError> {
    let b = txn.get_database_backend();
    let pricing = pricing_of(txn, date).await?;
    let mut instruments = HashMap::new();
    for r in query(
        txn,
        "SELECT code, min_order_amount, status FROM instruments".to_owned(),
        vec![],
    )
    .await?
    {
        instruments.insert(
            get::<String>(&r, 0)?,
            Tradable {
                min_order_amount: get(&r, 1)?,
                active: get::<String>(&r, 2)? == "active",
            },
        );
    }
    // The model in effect: the latest version effective on or before the date.
    let mut pa = Params::new(b);
    let (d1, d2) = (pa.push(date), pa.push(date));
    let q = format!(
        "SELECT v.tenant_id, v.strategy_id, v.version, v.cash_weight, w.instrument_code, w.weight \
         FROM strategy_versions v JOIN strategy_weights w ON w.tenant_id = v.tenant_id \
         AND w.strategy_id = v.strategy_id AND w.version = v.version \
         WHERE v.effective_date <= {d1} AND NOT EXISTS (SELECT 1 FROM strategy_versions v2 \
         WHERE v2.tenant_id = v.tenant_id AND v2.strategy_id = v.strategy_id \
         AND v2.effective_date <= {d2} AND v2.version > v.version) \
         ORDER BY v.tenant_id, v.strategy_id, w.instrument_code"
    );
    let mut models: HashMap<(Uuid, Uuid), Model> = HashMap::new();
    for r in query(txn, q, pa.values).await? {
        let key = (get::<Uuid>(&r, 0)?, get::<Uuid>(&r, 1)?);
        let version: i32 = get(&r, 2)?;
        let cash: String = get(&r, 3)?;
        let m = models.entry(key).or_insert(Model {
            version,
            cash_weight: dec(&cash)?,
            weights: Vec::new(),
        });
        let w: String = get(&r, 5)?;
        m.weights.push((get(&r, 4)?, dec(&w)?));
    }
    let mut rules = HashMap::new();
    for r in query(
        txn,
        "SELECT tenant_id, id, drift_band_kind, drift_band, rebalance_calendar, cooldown_days \
         FROM strategies"
            .to_owned(),
        vec![],
    )
    .await?
    {
        let band: String = get(&r, 3)?;
        rules.insert(
            (get::<Uuid>(&r, 0)?, get::<Uuid>(&r, 1)?),
            Rules {
                band_relative: get::<String>(&r, 2)? == "relative",
                band: dec(&band)?,
                calendar: get(&r, 4)?,
                cooldown_days: i64::from(get::<i32>(&r, 5)?),
            },
        );
    }
    // Terms in effect: the newest accepted version effective on or before the date (rows in
    // order, so the last one read wins).
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT tenant_id, agreement_id, terms FROM agreement_terms WHERE status = 'accepted' \
         AND effective_date <= {} ORDER BY tenant_id, agreement_id, effective_date, version",
        pa.push(date)
    );
    let mut terms = HashMap::new();
    for r in query(txn, q, pa.values).await? {
        let text: String = get(&r, 2)?;
        let t: Terms =
            serde_json::from_str(&text).map_err(|e| bad(format!("agreement terms: {e}")))?;
        terms.insert((get::<Uuid>(&r, 0)?, get::<Uuid>(&r, 1)?), t);
    }
    Ok(Day {
        pricing,
        instruments,
        models,
        rules,
        terms,
    })
}

struct WrapRow {
    id: Uuid,
    agreement_id: Uuid,
    manager_id: Uuid,
    strategy_id: Uuid,
    currency: String,
    scale: u32,
    history: History,
}

async fn decide_tenant(
    txn: &DatabaseTransaction,
    day: &Day,
    tenant_id: Uuid,
    date: NaiveDate,
    calendar: &Calendar,
    counts: &mut Counts,
) -> Result<(), EodError> {
    let b = txn.get_database_backend();
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT w.id, w.agreement_id, w.manager_tenant_id, w.strategy_id, w.currency, \
         w.currency_scale, t.model_version, t.rebalanced_on FROM wraps w \
         LEFT JOIN wrap_trading t ON t.tenant_id = w.tenant_id AND t.wrap_id = w.id \
         WHERE w.tenant_id = {} AND w.status IN ('active', 'closing') ORDER BY w.id",
        pa.push(tenant_id)
    );
    let mut wraps = Vec::new();
    for r in query(txn, q, pa.values).await? {
        wraps.push(WrapRow {
            id: get(&r, 0)?,
            agreement_id: get(&r, 1)?,
            manager_id: get(&r, 2)?,
            strategy_id: get(&r, 3)?,
            currency: get(&r, 4)?,
            scale: u32::try_from(get::<i32>(&r, 5)?).unwrap_or(0),
            history: History {
                model_version: get(&r, 6)?,
                rebalanced_on: get(&r, 7)?,
            },
        });
    }
    if wraps.is_empty() {
        return Ok(());
    }
    // Every wrap account of the tenant, available balances, a page at a time.
    let mut books: HashMap<Uuid, WrapBook> = HashMap::with_capacity(wraps.len());
    let mut after = "wrap:".to_owned();
    loop {
        let mut pa = Params::new(b);
        let q = format!(
            "SELECT code, credits_posted - debits_posted - debits_pending FROM ledger_accounts \
             WHERE tenant_id = {} AND code > {} AND code < {} ORDER BY code LIMIT {}",
            pa.push(tenant_id),
            pa.push(after.clone()),
            pa.push("wrap;".to_owned()),
            pa.push(PAGE)
        );
        let rows = query(txn, q, pa.values).await?;
        let n = rows.len();
        for r in &rows {
            let code: String = get(r, 0)?;
            let balance: i64 = get(r, 1)?;
            if let Some((wrap, what)) = crate::customers::parse_wrap_code(&code) {
                let book = books.entry(wrap).or_default();
                match what {
                    None => book.cash = balance,
                    Some(i) => {
                        book.units.insert(i.to_owned(), balance);
                    }
                }
            }
            after = code;
        }
        if i64::try_from(n).unwrap_or(0) < PAGE {
            break;
        }
    }
    // What has not settled yet of the recent trades (the cash and units it brought are
    // counted above, but not free).
    for (wrap, u) in super::trading::unsettled(txn, tenant_id, date, calendar).await? {
        let book = books.entry(wrap).or_default();
        book.unsettled_cash = u.cash;
        book.unsettled_units = u.units;
    }
    // Fees due that billing could not collect (a reason to sell on their own).
    for (wrap, due) in super::fees::due_by(txn, tenant_id).await? {
        books.entry(wrap).or_default().fees_due = due;
    }
    // Pending movements, oldest first.
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT wrap_id, id, kind, amount FROM wrap_movements WHERE tenant_id = {} \
         AND status = 'pending' ORDER BY id",
        pa.push(tenant_id)
    );
    let mut pending: HashMap<Uuid, Vec<Pending>> = HashMap::new();
    for r in query(txn, q, pa.values).await? {
        pending.entry(get(&r, 0)?).or_default().push(Pending {
            id: get(&r, 1)?,
            kind: get(&r, 2)?,
            amount: get(&r, 3)?,
        });
    }

    let empty = WrapBook::default();
    let mut decisions: Vec<Vec<Value>> = Vec::new();
    let mut orders: Vec<Vec<Value>> = Vec::new();
    let mut traded: Vec<Vec<Value>> = Vec::new();
    for w in &wraps {
        let key = (w.manager_id, w.strategy_id);
        let (Some(model), Some(rules)) = (day.models.get(&key), day.rules.get(&key)) else {
            continue;
        };
        let calendar_day = match rules.calendar.as_str() {
            "monthly" => first_business_day_of_period(calendar, date, false),
            "quarterly" => first_business_day_of_period(calendar, date, true),
            _ => false,
        };
        let market = Market {
            pricing: &day.pricing,
            instruments: &day.instruments,
            currency: &w.currency,
            scale: w.scale,
        };
        let Some(d) = decide(
            books.get(&w.id).unwrap_or(&empty),
            model,
            rules,
            day.terms.get(&(tenant_id, w.agreement_id)),
            &market,
            pending.get(&w.id).map_or(&[][..], Vec::as_slice),
            w.history,
            date,
            calendar_day,
        ) else {
            continue;
        };
        let book = books.get(&w.id).unwrap_or(&empty);
        d.check(book)
            .map_err(|e| bad(format!("rebalance of wrap {} on {date}: {e}", w.id)))?;
        let planned = d.orders.iter().filter(|o| o.skipped.is_none()).count();
        let skipped = d.orders.len() - planned;
        counts.wraps += 1;
        counts.orders += planned as u64;
        counts.skipped += skipped as u64;
        *counts.triggers.entry(d.trigger).or_default() += 1;
        decisions.push(vec![
            tenant_id.into(),
            date.into(),
            w.id.into(),
            d.trigger.into(),
            model.version.into(),
            d.nav.into(),
            book.cash.into(),
            d.reserve.into(),
            i32::try_from(planned).unwrap_or(i32::MAX).into(),
            i32::try_from(skipped).unwrap_or(i32::MAX).into(),
            serde_json::to_string(&d.movement_ids)
                .unwrap_or_else(|_| "[]".to_owned())
                .into(),
            d.note.clone().into(),
        ]);
        for o in &d.orders {
            orders.push(vec![
                tenant_id.into(),
                Uuid::now_v7().into(),
                date.into(),
                w.id.into(),
                o.instrument.clone().into(),
                o.side.as_str().into(),
                (o.side == TradeSide::Buy).then_some(o.amount).into(),
                (o.side == TradeSide::Sell).then_some(o.units).into(),
                if o.skipped.is_some() {
                    "skipped"
                } else {
                    "planned"
                }
                .into(),
                o.skipped.clone().into(),
            ]);
        }
        // Sales for money going out trade to no model.
        if planned > 0
            && !matches!(
                d.trigger,
                "close" | "liquidation" | "withdrawal" | "switch" | "fees"
            )
        {
            let rebalanced = matches!(d.trigger, "model_change" | "calendar" | "drift");
            traded.push(vec![
                tenant_id.into(),
                w.id.into(),
                model.version.into(),
                date.into(),
                rebalanced.then_some(date).into(),
            ]);
        }
    }
    insert_rows(
        txn,
        "rebalance_decisions (tenant_id, business_date, wrap_id, trigger, model_version, nav, \
         cash, cash_reserve, orders, skipped, movement_ids, note)",
        decisions,
    )
    .await?;
    insert_rows(
        txn,
        "trade_orders (tenant_id, id, business_date, wrap_id, instrument, side, amount, units, \
         status, reason)",
        orders,
    )
    .await?;
    for chunk in traded.chunks(ledger::sql::INSERT_ROWS) {
        let mut pa = Params::new(b);
        let rows: Vec<String> = chunk.iter().map(|r| pa.row(r.clone())).collect();
        let q = format!(
            "INSERT INTO wrap_trading (tenant_id, wrap_id, model_version, traded_on, rebalanced_on) \
             VALUES {} ON CONFLICT (tenant_id, wrap_id) DO UPDATE SET \
             model_version = excluded.model_version, traded_on = excluded.traded_on, \
             rebalanced_on = COALESCE(excluded.rebalanced_on, wrap_trading.rebalanced_on)",
            rows.join(", ")
        );
        exec(txn, q, pa.values).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_first_business_day_of_a_period() {
        let cal = Calendar::japan();
        // 2027-02-01 is a Monday.
        assert!(first_business_day_of_period(&cal, d("2027-02-01"), false));
        assert!(!first_business_day_of_period(&cal, d("2027-02-02"), false));
        assert!(!first_business_day_of_period(&cal, d("2027-02-01"), true));
        // 1–3 January are closed, the 4th (a Monday) is the first business day of Q1.
        assert!(first_business_day_of_period(&cal, d("2027-01-04"), true));
        // 2027-05-01 is a Saturday, 3–5 holidays: the 6th is May's first business day.
        assert!(first_business_day_of_period(&cal, d("2027-05-06"), false));
    }

    /// Two funds at ¥1 a unit (price 10,000 per 10,000 units), `min_order` each; the model
    /// 60 / 40, no cash weight, no calendar, a band of 5 %; a wrap holding them along the
    /// model with ¥50 cash and `fees_due` due. No terms: no reserve.
    fn fee_case(fees_due: i64, min_order: i64) -> Option<Decision> {
        let price = |code: &str| Pricing {
            instrument: code.into(),
            currency: "JPY".into(),
            currency_scale: 0,
            unit_scale: 0,
            quote_unit: 10_000,
            price: Decimal::from(10_000),
            price_date: d("2027-02-15"),
            levy_rate: Decimal::ZERO,
        };
        let pricing: HashMap<String, Pricing> = ["A", "B"].map(|c| (c.to_owned(), price(c))).into();
        let instruments: HashMap<String, Tradable> = ["A", "B"]
            .map(|c| {
                (
                    c.to_owned(),
                    Tradable {
                        min_order_amount: min_order,
                        active: true,
                    },
                )
            })
            .into();
        let market = Market {
            pricing: &pricing,
            instruments: &instruments,
            currency: "JPY",
            scale: 0,
        };
        let book = WrapBook {
            cash: 50,
            units: [("A".to_owned(), 600_000), ("B".to_owned(), 400_000)].into(),
            fees_due,
            ..WrapBook::default()
        };
        let model = Model {
            version: 1,
            cash_weight: Decimal::ZERO,
            weights: vec![
                ("A".into(), "0.6".parse().unwrap()),
                ("B".into(), "0.4".parse().unwrap()),
            ],
        };
        let rules = Rules {
            band_relative: false,
            band: "0.05".parse().unwrap(),
            calendar: "none".into(),
            cooldown_days: 0,
        };
        let history = History {
            model_version: Some(1),
            rebalanced_on: None,
        };
        decide(
            &book,
            &model,
            &rules,
            None,
            &market,
            &[],
            history,
            d("2027-02-15"),
            false,
        )
    }

    #[test]
    fn fees_due_beyond_the_cash_sell_units_on_their_own() {
        // Nothing else triggers: inside the band, no calendar, no cash above its target.
        assert_eq!(fee_case(0, 100), None);
        // ¥50 pays ¥50 due: nothing to sell.
        assert_eq!(fee_case(50, 100), None);
        // ¥1,050 due, ¥50 cash: ¥1,000 raised by the holdings' values, 600 + 400 units.
        let d = fee_case(1_050, 100).unwrap();
        assert_eq!((d.trigger, d.reserve), ("fees", 0));
        let sold: Vec<(&str, i64, bool)> = d
            .orders
            .iter()
            .map(|o| (o.instrument.as_str(), o.units, o.skipped.is_none()))
            .collect();
        assert_eq!(sold, [("A", 600, true), ("B", 400, true)]);
        assert!(d.orders.iter().all(|o| o.side == TradeSide::Sell));
        // Below a minimum of ¥500, B's ¥400 is skipped (it does not empty the holding).
        let d = fee_case(1_050, 500).unwrap();
        let skipped: Vec<bool> = d.orders.iter().map(|o| o.skipped.is_some()).collect();
        assert_eq!(skipped, [false, true]);
    }

    #[test]
    fn a_decision_that_breaks_its_sums_is_refused() {
        let book = WrapBook {
            cash: 1_000,
            units: [("A".to_owned(), 600)].into(),
            unsettled_cash: 200,
            unsettled_units: [("A".to_owned(), 100)].into(),
            fees_due: 300,
        };
        let order = |side, amount, units| PlannedOrder {
            instrument: "A".into(),
            side,
            amount,
            units,
            skipped: None,
        };
        let decision = |orders| Decision {
            trigger: "drift",
            nav: 1_600,
            reserve: 0,
            orders,
            movement_ids: vec![],
            note: None,
        };
        // At the limits: 500 settled units, and ¥700 = cash − fees due (settled cash is 800).
        assert_eq!(
            decision(vec![
                order(TradeSide::Sell, 0, 500),
                order(TradeSide::Buy, 700, 0)
            ])
            .check(&book),
            Ok(())
        );
        // One unit beyond the settled ones.
        assert!(
            decision(vec![order(TradeSide::Sell, 0, 501)])
                .check(&book)
                .is_err()
        );
        // A yen of the fees due spent on a purchase.
        assert!(
            decision(vec![order(TradeSide::Buy, 701, 0)])
                .check(&book)
                .is_err()
        );
        // Two planned sales of one instrument.
        let twice = vec![order(TradeSide::Sell, 0, 1), order(TradeSide::Sell, 0, 1)];
        assert!(decision(twice).check(&book).is_err());
        // Unsettled proceeds are not spent either.
        let owes_nothing = WrapBook {
            fees_due: 0,
            ..book.clone()
        };
        assert!(
            decision(vec![order(TradeSide::Buy, 801, 0)])
                .check(&owes_nothing)
                .is_err()
        );
        // The day's decisions keep their sums.
        let d = fee_case(1_050, 100).unwrap();
        let mut held = WrapBook {
            cash: 50,
            fees_due: 1_050,
            ..WrapBook::default()
        };
        held.units = [("A".to_owned(), 600_000), ("B".to_owned(), 400_000)].into();
        assert_eq!(d.check(&held), Ok(()));
    }
}
