//! Account statements: `GET /v1/wraps/{id}/statement` and `GET /v1/customers/{id}/statement`
//! over a period `[from, to]`, as JSON or CSV (`?format=csv` or `Accept: text/csv`, the same
//! negotiation as the fee-split report: [`crate::routes::format`]).
//!
//! Everything is read from what end of day stored; nothing is written.
//!
//! **Values** are end-of-day NAVs (`wrap_snapshots.nav`, which deducts the fees owed):
//! `opening_value` is the NAV of the day before `from` (0 when the wrap had no snapshot then:
//! it did not exist yet), `closing_value` the NAV of `to` (0 when it has none: closed). `to`
//! must have a finished end of day (409 otherwise).
//!
//! **Flows**: contributions are credits and withdrawals debits of the wrap's cash account by
//! entries of kind `contribution`, `withdrawal`, `wrap_close` and `switch` (a switch out is a
//! withdrawal of the source wrap and a contribution of the destination) effective in
//! `[from, to]`.
//!
//! **Fees: what the NAVs deducted.** A date's snapshot is struck before that date's accrual
//! (valuation runs first), so the NAV of day d deducts the accruals of the days before d.
//! The fees of `[from, to]` are therefore the accruals posted on the dates `from − 1 …
//! to − 1` (`fee_accruals.fee_posted` / `tax_posted`: whole units, the sub-unit carry is not
//! owed yet) and the performance fees crystallised then (`performance_fees`): exactly what
//! moved the NAV between the opening and the closing value. The answer names those dates
//! (`fees_accrued_from`, `fees_accrued_to`). Collection by billing moves the owed amount
//! from the wrap's cash to the partners and leaves the NAV unchanged, so it is not a charge
//! of its own; what was collected in `[from, to]` is shown apart (`fees_collected`) for the
//! customer to match with cash.
//!
//! **Gains: average cost per instrument**, replayed from the wrap's filled trade allocations
//! (`trade_allocations` with the side of their `trade_orders`), in date order, sells before
//! buys within a day (as allocation books them). A buy adds its units and its cost (the cash
//! paid); a sell releases cost × units sold ÷ units held, rounded half to even to the minor
//! unit (all of it when the last unit goes), so the cost carried is always a whole amount
//! and never leaks. `realised_gain` = Σ (proceeds − released cost) over the period's sells.
//! The market value of the holdings is computed as valuation does (units × the last price on
//! or before the date ÷ quote unit, the exact sum rounded down once per wrap); the wrap's
//! `unrealised_gain` at a date is that rounded value − the cost carried, and
//! `unrealised_gain_change` the closing one less the opening one. The sub-unit part dropped
//! by the rounding down is shown as `valuation_rounding` (so the holdings' exact gains sum to
//! the wrap's plus it).
//!
//! **The check** (`check`): `closing − opening = contributions − withdrawals − fees +
//! investment_gain`, with `investment_gain = realised_gain + unrealised_gain_change +
//! unexplained`. `unexplained` is whatever the books moved that the statement cannot
//! classify; it is 0 (and `check.balanced` true) whenever every movement of the wrap's cash
//! is a classified flow, a trade, or a fee collection. Known cases where it is not: money
//! booked to the wrap through the API after the day's end of day had run but dated that
//! day (valued in the next day's NAV, dated in the earlier day), and the owed fees of a wrap
//! closed in the period (closing billing is not built). Integers in minor units throughout;
//! only holdings lines carry sub-unit decimals.
//!
//! **Time-weighted return**: the daily returns of `wrap_returns` over the period chained
//! (the `cumulative` of `GET /v1/wraps/{id}/returns` for the same range), absent when the
//! wrap has none in the period. A customer statement gives no total return (summing or
//! averaging returns of different sizes and timings would mean nothing); its totals are sums
//! per currency of the money figures.
//!
//! **Isolation**: a wrap's statement as `GET /v1/wraps/{id}` (its distributor, the manager of
//! its strategy without `customer_id`, the platform); a customer's only its distributor.
//! Anyone else gets 404 exactly as for a missing id. Tried by
//! `api/tests/http/statements.rs`: `statement_matches_the_hand_computation` (every figure, the
//! CSV parsed back, the customer's sums), `statements_are_isolated`,
//! `bad_statement_requests_are_refused`.

use std::collections::{BTreeMap, HashMap};

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Days, NaiveDate};
use ledger::asset::decimal_of;
use ledger::store::wraps::{self as store, WrapFilter, WrapScope};
use ledger::wraps::Wrap;
use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::DatabaseConnection;
use serde::Serialize;
use tenants::{Action, TenantKind};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::{Query, path_uuid};
use crate::problem::{Problem, method_not_allowed};
use crate::routes::format;
use crate::routes::reports::{finished_between, period, sum_at};
use crate::server::AppState;
use ledger::sql::{IN_CHUNK, Params, get, query};
use wraps::eod::returns;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = |path: &str| web::resource(path).default_service(web::to(method_not_allowed));
    cfg.service(resource("/v1/wraps/{id}/statement").get(wrap_statement))
        .service(resource("/v1/customers/{id}/statement").get(customer_statement));
}

// ---------------------------------------------------------------------------------------
// Wire types

/// Fees by kind.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Fees {
    #[schema(value_type = String)]
    pub management_fee: Decimal,
    #[schema(value_type = String)]
    pub performance_fee: Decimal,
    /// Consumption tax on both.
    #[schema(value_type = String)]
    pub tax: Decimal,
    #[schema(value_type = String)]
    pub total: Decimal,
}

/// One instrument held at the close.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Holding {
    pub instrument: String,
    #[schema(value_type = String)]
    pub units: Decimal,
    /// The last price on or before `to`, per quote unit (absent: never priced, valued at 0).
    #[schema(value_type = Option<String>)]
    pub price: Option<Decimal>,
    pub price_date: Option<NaiveDate>,
    pub quote_unit: i64,
    /// units × price ÷ quote unit, exact (before the wrap's rounding down).
    #[schema(value_type = String)]
    pub value: Decimal,
    /// The average cost carried.
    #[schema(value_type = String)]
    pub cost: Decimal,
    /// value − cost, exact.
    #[schema(value_type = String)]
    pub unrealised_gain: Decimal,
}

/// The statement's arithmetic, shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatementCheck {
    /// closing_value − opening_value.
    #[schema(value_type = String)]
    pub value_change: Decimal,
    /// contributions − withdrawals − fees.total + investment_gain: equal to `value_change`.
    #[schema(value_type = String)]
    pub flows_fees_and_gain: Decimal,
    /// What the books moved that no flow, fee, trade or price explains (see the docs); 0
    /// when the statement is fully explained.
    #[schema(value_type = String)]
    pub unexplained: Decimal,
    /// `unexplained` is 0.
    pub balanced: bool,
}

/// One wrap's statement over `[from, to]`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WrapStatement {
    pub wrap_id: Uuid,
    /// Shown to the distributor only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<Uuid>,
    pub name: String,
    pub strategy_id: Uuid,
    pub currency: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The day before `from`: the opening value is its end-of-day NAV.
    pub opening_date: NaiveDate,
    #[schema(value_type = String)]
    pub opening_value: Decimal,
    #[schema(value_type = String)]
    pub contributions: Decimal,
    #[schema(value_type = String)]
    pub withdrawals: Decimal,
    /// Fees charged: those the period's NAVs deducted (accrued `fees_accrued_from` …
    /// `fees_accrued_to`).
    pub fees: Fees,
    pub fees_accrued_from: NaiveDate,
    pub fees_accrued_to: NaiveDate,
    /// Collected from the wrap's cash in `[from, to]` (information: collection does not
    /// change the NAV).
    pub fees_collected: Fees,
    #[schema(value_type = String)]
    pub realised_gain: Decimal,
    #[schema(value_type = String)]
    pub unrealised_gain_opening: Decimal,
    #[schema(value_type = String)]
    pub unrealised_gain_closing: Decimal,
    #[schema(value_type = String)]
    pub unrealised_gain_change: Decimal,
    /// realised_gain + unrealised_gain_change + check.unexplained.
    #[schema(value_type = String)]
    pub investment_gain: Decimal,
    #[schema(value_type = String)]
    pub closing_value: Decimal,
    /// The sub-unit part of the holdings' exact value dropped at the close (in [0, 1 minor
    /// unit)).
    #[schema(value_type = String)]
    pub valuation_rounding: Decimal,
    /// The daily time-weighted returns of the period chained; absent when there are none.
    #[schema(value_type = Option<String>)]
    pub time_weighted_return: Option<Decimal>,
    /// End-of-day snapshots of the wrap from the opening date to `to`.
    pub snapshots: i64,
    pub holdings: Vec<Holding>,
    pub check: StatementCheck,
}

/// A customer's totals in one currency: sums of its wraps' figures.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatementTotals {
    pub currency: String,
    pub wraps: i64,
    #[schema(value_type = String)]
    pub opening_value: Decimal,
    #[schema(value_type = String)]
    pub contributions: Decimal,
    #[schema(value_type = String)]
    pub withdrawals: Decimal,
    pub fees: Fees,
    pub fees_collected: Fees,
    #[schema(value_type = String)]
    pub realised_gain: Decimal,
    #[schema(value_type = String)]
    pub unrealised_gain_change: Decimal,
    #[schema(value_type = String)]
    pub investment_gain: Decimal,
    #[schema(value_type = String)]
    pub closing_value: Decimal,
    pub check: StatementCheck,
}

/// A customer's statement: one per wrap that existed in the period, and totals per currency.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerStatement {
    pub customer_id: Uuid,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub wraps: Vec<WrapStatement>,
    pub totals: Vec<StatementTotals>,
}

// ---------------------------------------------------------------------------------------
// The arithmetic (pure)

/// One instrument's position: units (minor units of the unit scale) and the cost carried
/// (minor units of the currency).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub units: i64,
    pub cost: i128,
}

/// `n ÷ d` rounded half to even (d > 0, n ≥ 0).
fn div_half_even(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    match (2 * r).cmp(&d) {
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal if q % 2 != 0 => q + 1,
        _ => q,
    }
}

impl Position {
    pub fn buy(&mut self, units: i64, amount: i64) {
        self.units += units;
        self.cost += i128::from(amount);
    }

    /// Sells `units` for `proceeds`; returns the realised gain (proceeds − the average cost
    /// of the units sold). The cost released is rounded half to even to the minor unit, and
    /// is the whole cost when no unit is left, so the cost carried stays whole and exact.
    pub fn sell(&mut self, units: i64, proceeds: i64) -> i128 {
        let released = if units >= self.units || self.units <= 0 {
            self.cost
        } else {
            div_half_even(self.cost * i128::from(units), i128::from(self.units))
        };
        self.units -= units;
        self.cost -= released;
        i128::from(proceeds) - released
    }
}

/// A filled allocation of one of the wrap's orders.
#[derive(Debug, Clone)]
pub struct Trade {
    pub date: NaiveDate,
    pub instrument: String,
    pub sell: bool,
    pub units: i64,
    pub amount: i64,
}

/// Replays `trades` (in booking order): the positions at the end of the day before `from`,
/// at the end of the last trade, and the gain realised by the sells dated `from` or later.
pub fn replay(
    trades: &[Trade],
    from: NaiveDate,
) -> (BTreeMap<String, Position>, BTreeMap<String, Position>, i128) {
    let mut book: BTreeMap<String, Position> = BTreeMap::new();
    let mut opening = None;
    let mut realised = 0_i128;
    for t in trades {
        if t.date >= from && opening.is_none() {
            opening = Some(book.clone());
        }
        let p = book.entry(t.instrument.clone()).or_default();
        if t.sell {
            let gain = p.sell(t.units, t.amount);
            if t.date >= from {
                realised += gain;
            }
        } else {
            p.buy(t.units, t.amount);
        }
    }
    let opening = opening.unwrap_or_else(|| book.clone());
    (opening, book, realised)
}

/// How to value an instrument at a date.
#[derive(Debug, Clone)]
pub struct Quote {
    pub unit_scale: u32,
    pub quote_unit: i64,
    pub price: Option<(NaiveDate, Decimal)>,
}

/// The exact value of `units` (minor units) at `q`, as valuation computes it (0 if never
/// priced).
fn exact_value(units: i64, q: &Quote) -> Decimal {
    let Some((_, price)) = q.price else {
        return Decimal::ZERO;
    };
    decimal_of(i128::from(units), q.unit_scale)
        .checked_mul(price)
        .and_then(|v| v.checked_div(Decimal::from(q.quote_unit.max(1))))
        .unwrap_or(Decimal::ZERO)
}

/// The positions' exact market value, and rounded down to the currency's minor unit (as
/// valuation rounds once per wrap), and the cost carried, in minor units.
fn valued(
    book: &BTreeMap<String, Position>,
    quotes: &HashMap<String, Quote>,
    scale: u32,
) -> (Decimal, i128, i128) {
    let mut exact = Decimal::ZERO;
    let mut cost = 0_i128;
    for (code, p) in book {
        cost += p.cost;
        if p.units == 0 {
            continue;
        }
        if let Some(q) = quotes.get(code) {
            exact += exact_value(p.units, q);
        }
    }
    let mut floor = exact.round_dp_with_strategy(scale, RoundingStrategy::ToZero);
    floor.rescale(scale);
    (exact, floor.mantissa(), cost)
}

/// A wrap's figures in minor units of its currency.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    opening: i128,
    closing: i128,
    contributions: i128,
    withdrawals: i128,
    management: i128,
    performance: i128,
    tax: i128,
    collected_management: i128,
    collected_performance: i128,
    collected_tax: i128,
    realised: i128,
    unrealised_opening: i128,
    unrealised_closing: i128,
}

impl Figures {
    fn fees(&self) -> i128 {
        self.management + self.performance + self.tax
    }

    fn unrealised_change(&self) -> i128 {
        self.unrealised_closing - self.unrealised_opening
    }

    /// What the figures leave unexplained of the value change (0 when they add up).
    fn unexplained(&self) -> i128 {
        (self.closing - self.opening)
            - (self.contributions - self.withdrawals - self.fees()
                + self.realised
                + self.unrealised_change())
    }

    fn investment_gain(&self) -> i128 {
        self.realised + self.unrealised_change() + self.unexplained()
    }

    fn add(&mut self, o: &Figures) {
        self.opening += o.opening;
        self.closing += o.closing;
        self.contributions += o.contributions;
        self.withdrawals += o.withdrawals;
        self.management += o.management;
        self.performance += o.performance;
        self.tax += o.tax;
        self.collected_management += o.collected_management;
        self.collected_performance += o.collected_performance;
        self.collected_tax += o.collected_tax;
        self.realised += o.realised;
        self.unrealised_opening += o.unrealised_opening;
        self.unrealised_closing += o.unrealised_closing;
    }

    fn fees_view(&self, scale: u32) -> Fees {
        let d = |v| decimal_of(v, scale);
        Fees {
            management_fee: d(self.management),
            performance_fee: d(self.performance),
            tax: d(self.tax),
            total: d(self.fees()),
        }
    }

    fn collected_view(&self, scale: u32) -> Fees {
        let d = |v| decimal_of(v, scale);
        Fees {
            management_fee: d(self.collected_management),
            performance_fee: d(self.collected_performance),
            tax: d(self.collected_tax),
            total: d(self.collected_management + self.collected_performance + self.collected_tax),
        }
    }

    fn check(&self, scale: u32) -> StatementCheck {
        let d = |v| decimal_of(v, scale);
        let unexplained = self.unexplained();
        StatementCheck {
            value_change: d(self.closing - self.opening),
            flows_fees_and_gain: d(
                self.contributions - self.withdrawals - self.fees() + self.investment_gain()
            ),
            unexplained: d(unexplained),
            balanced: unexplained == 0,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reading

fn day_before(d: NaiveDate) -> NaiveDate {
    d.checked_sub_days(Days::new(1)).unwrap_or(d)
}

/// Two sums of one row read as text (NULL: 0).
fn sums(rows: &[sea_orm::QueryResult]) -> Result<(i128, i128), Problem> {
    match rows.first() {
        Some(r) => Ok((sum_at(r, 0)?, sum_at(r, 1)?)),
        None => Ok((0, 0)),
    }
}

/// The instruments' unit scales, quote units and last prices on or before `date`.
async fn quotes(
    db: &DatabaseConnection,
    codes: &[String],
    date: NaiveDate,
) -> Result<HashMap<String, Quote>, Problem> {
    let mut out = HashMap::with_capacity(codes.len());
    for chunk in codes.chunks(IN_CHUNK) {
        let mut pa = Params::new(db.get_database_backend());
        let list: Vec<String> = chunk.iter().map(|c| pa.push(c.clone())).collect();
        let q = format!(
            "SELECT code, unit_scale, quote_unit FROM instruments WHERE code IN ({})",
            list.join(", ")
        );
        for r in query(db, q, pa.values).await? {
            out.insert(
                get::<String>(&r, 0)?,
                Quote {
                    unit_scale: u32::try_from(get::<i32>(&r, 1)?).unwrap_or(0),
                    quote_unit: get(&r, 2)?,
                    price: None,
                },
            );
        }
    }
    for (code, p) in ledger::store::market::latest_prices(db, codes, date).await? {
        if let Some(q) = out.get_mut(&code) {
            q.price = Some((p.date, p.price));
        }
    }
    Ok(out)
}

/// The statement of `wrap` (which the caller may see) over `[from, to]`.
async fn statement_of(
    db: &DatabaseConnection,
    wrap: &Wrap,
    from: NaiveDate,
    to: NaiveDate,
    show_customer: bool,
) -> Result<(WrapStatement, Figures), Problem> {
    let b = db.get_database_backend();
    let (t, w, scale) = (wrap.tenant_id, wrap.id, wrap.currency_scale);
    let opening_date = day_before(from);
    let fees_to = day_before(to);
    let mut f = Figures::default();

    // Values: the NAVs of the opening date and of `to`. The daily rows are keyed date first
    // (migration 000015): reads of one wrap are driven by the dates end of day ran, each a
    // lookup by the whole key (CROSS JOIN keeps that order on SQLite).
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT s.business_date, s.nav FROM eod_runs d CROSS JOIN wrap_snapshots s \
         WHERE s.tenant_id = {} AND s.business_date = d.business_date AND s.wrap_id = {} \
         AND d.business_date >= {} AND d.business_date <= {}",
        pa.push(t),
        pa.push(w),
        pa.push(opening_date),
        pa.push(to)
    );
    let rows = query(db, q, pa.values).await?;
    let snapshots = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    for r in &rows {
        let date: NaiveDate = get(r, 0)?;
        let nav = i128::from(get::<i64>(r, 1)?);
        if date == opening_date {
            f.opening = nav;
        }
        if date == to {
            f.closing = nav;
        }
    }

    // Flows: the wrap's cash account, by entry kind and side.
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT e.kind, p.side, CAST(SUM(p.amount) AS TEXT) FROM ledger_postings p \
         JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id \
         WHERE p.tenant_id = {} AND p.account_id = {} AND p.pending = {} \
         AND p.effective_date >= {} AND p.effective_date <= {} \
         AND e.kind IN ('contribution', 'withdrawal', 'wrap_close', 'switch') \
         GROUP BY e.kind, p.side",
        pa.push(t),
        pa.push(wrap.cash_account_id),
        pa.push(false),
        pa.push(from),
        pa.push(to)
    );
    for r in query(db, q, pa.values).await? {
        let side: String = get(&r, 1)?;
        let sum = sum_at(&r, 2)?;
        if side == "credit" {
            f.contributions += sum;
        } else {
            f.withdrawals += sum;
        }
    }

    // Fees the period's NAVs deducted: accruals and crystallisations of from − 1 … to − 1.
    if fees_to >= opening_date {
        let mut pa = Params::new(b);
        let q = format!(
            "SELECT CAST(SUM(a.fee_posted) AS TEXT), CAST(SUM(a.tax_posted) AS TEXT) \
             FROM eod_runs d CROSS JOIN fee_accruals a WHERE a.tenant_id = {} \
             AND a.business_date = d.business_date AND a.wrap_id = {} \
             AND d.business_date >= {} AND d.business_date <= {}",
            pa.push(t),
            pa.push(w),
            pa.push(opening_date),
            pa.push(fees_to)
        );
        let (fee, tax) = sums(&query(db, q, pa.values).await?)?;
        f.management += fee;
        f.tax += tax;
        let mut pa = Params::new(b);
        let q = format!(
            "SELECT CAST(SUM(fee) AS TEXT), CAST(SUM(tax) AS TEXT) \
             FROM performance_fees WHERE tenant_id = {} AND wrap_id = {} \
             AND business_date >= {} AND business_date <= {}",
            pa.push(t),
            pa.push(w),
            pa.push(opening_date),
            pa.push(fees_to)
        );
        let (fee, tax) = sums(&query(db, q, pa.values).await?)?;
        f.performance += fee;
        f.tax += tax;
    }

    // Collected in [from, to] (information).
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT kind, CAST(SUM(fee_collected) AS TEXT), CAST(SUM(tax_collected) AS TEXT) \
         FROM fee_collections WHERE tenant_id = {} AND wrap_id = {} \
         AND business_date >= {} AND business_date <= {} GROUP BY kind",
        pa.push(t),
        pa.push(w),
        pa.push(from),
        pa.push(to)
    );
    for r in query(db, q, pa.values).await? {
        let kind: String = get(&r, 0)?;
        let (fee, tax) = (sum_at(&r, 1)?, sum_at(&r, 2)?);
        if kind == "performance" {
            f.collected_performance += fee;
        } else {
            f.collected_management += fee;
        }
        f.collected_tax += tax;
    }

    // Trades up to `to`, in the order allocation booked them.
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT a.business_date, o.instrument, o.side, a.units, a.amount \
         FROM trade_allocations a JOIN trade_orders o \
         ON o.tenant_id = a.tenant_id AND o.id = a.order_id \
         WHERE a.tenant_id = {} AND a.wrap_id = {} AND a.business_date <= {} \
         AND a.status IN ('filled', 'partially_filled') \
         ORDER BY a.business_date, o.side DESC, a.order_id",
        pa.push(t),
        pa.push(w),
        pa.push(to)
    );
    let mut trades = Vec::new();
    for r in query(db, q, pa.values).await? {
        trades.push(Trade {
            date: get(&r, 0)?,
            instrument: get(&r, 1)?,
            sell: get::<String>(&r, 2)? == "sell",
            units: get(&r, 3)?,
            amount: get(&r, 4)?,
        });
    }
    let (opening_book, closing_book, realised) = replay(&trades, from);
    f.realised = realised;
    let mut codes: Vec<String> = closing_book.keys().cloned().collect();
    codes.sort();
    codes.dedup();
    let (open_quotes, close_quotes) = if codes.is_empty() {
        (HashMap::new(), HashMap::new())
    } else {
        (
            quotes(db, &codes, opening_date).await?,
            quotes(db, &codes, to).await?,
        )
    };
    let (_, open_value, open_cost) = valued(&opening_book, &open_quotes, scale);
    let (close_exact, close_value, close_cost) = valued(&closing_book, &close_quotes, scale);
    f.unrealised_opening = open_value - open_cost;
    f.unrealised_closing = close_value - close_cost;
    let money = |v: i128| decimal_of(v, scale);
    let mut rounding = close_exact - money(close_value);
    rounding = rounding.normalize();
    if rounding.scale() < scale {
        rounding.rescale(scale);
    }
    let holdings = closing_book
        .iter()
        .filter(|(_, p)| p.units != 0)
        .map(|(code, p)| {
            let q = close_quotes.get(code).cloned().unwrap_or(Quote {
                unit_scale: 0,
                quote_unit: 1,
                price: None,
            });
            let value = exact_value(p.units, &q);
            let cost = money(p.cost);
            let shown = |v: Decimal| {
                let mut v = v.normalize();
                if v.scale() < scale {
                    v.rescale(scale);
                }
                v
            };
            Holding {
                instrument: code.clone(),
                units: decimal_of(i128::from(p.units), q.unit_scale),
                price: q.price.map(|(_, p)| p),
                price_date: q.price.map(|(d, _)| d),
                quote_unit: q.quote_unit,
                value: shown(value),
                cost,
                unrealised_gain: shown(value - cost),
            }
        })
        .collect();

    let view = returns::range(db, t, w, &wrap.currency, scale, Some(from), Some(to)).await?;
    let twr = (view.days > 0).then_some(view.time_weighted.cumulative);

    let statement = WrapStatement {
        wrap_id: w,
        customer_id: show_customer.then_some(wrap.customer_id),
        name: wrap.name.clone(),
        strategy_id: wrap.strategy_id,
        currency: wrap.currency.clone(),
        from,
        to,
        opening_date,
        opening_value: money(f.opening),
        contributions: money(f.contributions),
        withdrawals: money(f.withdrawals),
        fees: f.fees_view(scale),
        fees_accrued_from: opening_date,
        fees_accrued_to: fees_to,
        fees_collected: f.collected_view(scale),
        realised_gain: money(f.realised),
        unrealised_gain_opening: money(f.unrealised_opening),
        unrealised_gain_closing: money(f.unrealised_closing),
        unrealised_gain_change: money(f.unrealised_change()),
        investment_gain: money(f.investment_gain()),
        closing_value: money(f.closing),
        valuation_rounding: rounding,
        time_weighted_return: twr,
        snapshots,
        holdings,
        check: f.check(scale),
    };
    Ok((statement, f))
}

/// The period and format of a statement request, checked before anything is read: `from`
/// and `to` required dates, `to` not before `from`, at most 366 days (400 naming the
/// parameter); `format` json or csv (400).
fn request(req: &HttpRequest) -> Result<(NaiveDate, NaiveDate, bool), Problem> {
    let q = Query::parse(req, &["from", "to", "format"])?;
    let (from, to) = period(&q)?;
    let csv = format::wants_csv(req, &q)?;
    Ok((from, to, csv))
}

/// 409 unless `to`'s end of day has finished: a statement closes on an end-of-day value.
async fn closes_on_finished_day(db: &DatabaseConnection, to: NaiveDate) -> Result<(), Problem> {
    if finished_between(db, to, to).await?.is_empty() {
        return Err(Problem::conflict(format!(
            "end of day for {to} (the statement's `to`) has not finished: a statement closes \
             on an end-of-day value"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// CSV

const CSV_HEADER: [&str; 22] = [
    "line",
    "wrap_id",
    "name",
    "currency",
    "from",
    "to",
    "opening_value",
    "contributions",
    "withdrawals",
    "management_fee",
    "performance_fee",
    "tax",
    "fees",
    "realised_gain",
    "unrealised_gain_change",
    "unexplained",
    "investment_gain",
    "closing_value",
    "unrealised_gain_closing",
    "fees_collected",
    "time_weighted_return",
    "balanced",
];

fn csv_wrap_line(out: &mut String, s: &WrapStatement) {
    format::row(
        out,
        &[
            "wrap".to_owned(),
            s.wrap_id.to_string(),
            format::field(&s.name).into_owned(),
            format::field(&s.currency).into_owned(),
            s.from.to_string(),
            s.to.to_string(),
            s.opening_value.to_string(),
            s.contributions.to_string(),
            s.withdrawals.to_string(),
            s.fees.management_fee.to_string(),
            s.fees.performance_fee.to_string(),
            s.fees.tax.to_string(),
            s.fees.total.to_string(),
            s.realised_gain.to_string(),
            s.unrealised_gain_change.to_string(),
            s.check.unexplained.to_string(),
            s.investment_gain.to_string(),
            s.closing_value.to_string(),
            s.unrealised_gain_closing.to_string(),
            s.fees_collected.total.to_string(),
            s.time_weighted_return
                .map(|r| r.to_string())
                .unwrap_or_default(),
            s.check.balanced.to_string(),
        ],
    );
}

fn csv_total_line(out: &mut String, t: &StatementTotals, from: NaiveDate, to: NaiveDate) {
    format::row(
        out,
        &[
            "total".to_owned(),
            String::new(),
            String::new(),
            format::field(&t.currency).into_owned(),
            from.to_string(),
            to.to_string(),
            t.opening_value.to_string(),
            t.contributions.to_string(),
            t.withdrawals.to_string(),
            t.fees.management_fee.to_string(),
            t.fees.performance_fee.to_string(),
            t.fees.tax.to_string(),
            t.fees.total.to_string(),
            t.realised_gain.to_string(),
            t.unrealised_gain_change.to_string(),
            t.check.unexplained.to_string(),
            t.investment_gain.to_string(),
            t.closing_value.to_string(),
            String::new(),
            t.fees_collected.total.to_string(),
            String::new(),
            t.check.balanced.to_string(),
        ],
    );
}

fn header() -> String {
    let mut out = String::new();
    format::row(&mut out, &CSV_HEADER);
    out
}

// ---------------------------------------------------------------------------------------
// Handlers

/// A wrap's statement over `[from, to]`: opening and closing values, contributions,
/// withdrawals, fees by kind, realised and unrealised gains (average cost), the period's
/// time-weighted return, holdings at the close, and the check that it adds up. JSON, or CSV
/// (one line) with `?format=csv` or `Accept: text/csv`.
#[utoipa::path(
    get, path = "/v1/wraps/{id}/statement", tag = "wraps",
    params(
        ("id" = Uuid, Path),
        ("from" = NaiveDate, Query, description = "First date, YYYY-MM-DD"),
        ("to" = NaiveDate, Query, description = "Last date, YYYY-MM-DD; its end of day must have finished"),
        ("format" = Option<String>, Query, description = "json (default) or csv"),
    ),
    responses(
        (status = 200, body = WrapStatement, content_type = "application/json"),
        (status = 200, description = "CSV: a header and one line", body = String, content_type = "text/csv"),
        (status = 400, description = "A bad or missing query parameter, or a period too long", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "End of day has not finished for `to`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn wrap_statement(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    // Visibility first, so a foreign id answers 404 whatever else is wrong.
    let wrap = crate::routes::wraps::find_wrap(&state.db, &caller, id, false).await?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let (from, to, csv) = request(&req)?;
    closes_on_finished_day(&state.db, to).await?;
    let show_customer = caller.principal.tenant_kind != TenantKind::Manager;
    let (statement, _) = statement_of(&state.db, &wrap, from, to, show_customer).await?;
    if csv {
        let mut out = header();
        csv_wrap_line(&mut out, &statement);
        return Ok(format::csv_response(out));
    }
    Ok(HttpResponse::Ok().json(statement))
}

/// A customer's statement over `[from, to]`: the statement of each of its wraps that had a
/// snapshot in the period or the day before it, and totals per currency (sums; no total
/// return). JSON, or CSV (one line per wrap, then one total line per currency).
#[utoipa::path(
    get, path = "/v1/customers/{id}/statement", tag = "customers",
    params(
        ("id" = Uuid, Path),
        ("from" = NaiveDate, Query, description = "First date, YYYY-MM-DD"),
        ("to" = NaiveDate, Query, description = "Last date, YYYY-MM-DD; its end of day must have finished"),
        ("format" = Option<String>, Query, description = "json (default) or csv"),
    ),
    responses(
        (status = 200, body = CustomerStatement, content_type = "application/json"),
        (status = 200, description = "CSV: a header, a line per wrap, a total line per currency", body = String, content_type = "text/csv"),
        (status = 400, description = "A bad or missing query parameter, or a period too long", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "End of day has not finished for `to`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn customer_statement(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    let customer = crate::routes::customers::find_customer(&state.db, &caller, id).await?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let (from, to, csv) = request(&req)?;
    closes_on_finished_day(&state.db, to).await?;
    let tenant_id = caller.principal.tenant_id;
    let filter = WrapFilter {
        customer_id: Some(customer.id),
        ..WrapFilter::default()
    };
    let mut wraps = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = store::wraps(
            &state.db,
            WrapScope::Distributor(tenant_id),
            &filter,
            after,
            u64::from(ledger::store::MAX_PAGE),
        )
        .await?;
        wraps.extend(page);
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let mut statements = Vec::new();
    let mut totals: BTreeMap<String, (i64, u32, Figures)> = BTreeMap::new();
    for w in &wraps {
        let (s, f) = statement_of(&state.db, w, from, to, true).await?;
        // A wrap with no snapshot in the period nor the day before it did not exist then
        // (opened later, or closed before), unless money still moved through it.
        if s.snapshots == 0 && f.contributions == 0 && f.withdrawals == 0 {
            continue;
        }
        let t =
            totals
                .entry(w.currency.clone())
                .or_insert((0, w.currency_scale, Figures::default()));
        t.0 += 1;
        t.2.add(&f);
        statements.push(s);
    }
    let totals: Vec<StatementTotals> = totals
        .into_iter()
        .map(|(currency, (wraps, scale, f))| StatementTotals {
            currency,
            wraps,
            opening_value: decimal_of(f.opening, scale),
            contributions: decimal_of(f.contributions, scale),
            withdrawals: decimal_of(f.withdrawals, scale),
            fees: f.fees_view(scale),
            fees_collected: f.collected_view(scale),
            realised_gain: decimal_of(f.realised, scale),
            unrealised_gain_change: decimal_of(f.unrealised_change(), scale),
            investment_gain: decimal_of(f.investment_gain(), scale),
            closing_value: decimal_of(f.closing, scale),
            check: f.check(scale),
        })
        .collect();
    let statement = CustomerStatement {
        customer_id: customer.id,
        from,
        to,
        wraps: statements,
        totals,
    };
    if csv {
        let mut out = header();
        for s in &statement.wraps {
            csv_wrap_line(&mut out, s);
        }
        for t in &statement.totals {
            csv_total_line(&mut out, t, from, to);
        }
        return Ok(format::csv_response(out));
    }
    Ok(HttpResponse::Ok().json(statement))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn trade(date: &str, sell: bool, units: i64, amount: i64) -> Trade {
        Trade {
            date: d(date),
            instrument: "F".to_owned(),
            sell,
            units,
            amount,
        }
    }

    #[test]
    fn average_cost_releases_whole_amounts_and_never_leaks() {
        // Buy 3 units for 100, 3 more for 200: 6 units cost 300 (average 50).
        // Sell 1 for 70: releases 300 × 1 ÷ 6 = 50, realised 20, carried 250 on 5 units.
        // Sell 2 for 90: releases 250 × 2 ÷ 5 = 100, realised −10, carried 150 on 3 units.
        // Sell 3 for 151: the last units release all 150, realised 1.
        let trades = [
            trade("2026-01-05", false, 3, 100),
            trade("2026-01-06", false, 3, 200),
            trade("2026-01-07", true, 1, 70),
            trade("2026-01-08", true, 2, 90),
            trade("2026-01-09", true, 3, 151),
        ];
        let (opening, closing, realised) = replay(&trades, d("2026-01-07"));
        assert_eq!(
            opening["F"],
            Position {
                units: 6,
                cost: 300
            }
        );
        assert_eq!(closing["F"], Position { units: 0, cost: 0 });
        assert_eq!(realised, 20 - 10 + 1);
        // Sells before `from` realise nothing in the period.
        let (_, _, realised) = replay(&trades, d("2026-01-09"));
        assert_eq!(realised, 1);
    }

    #[test]
    fn released_cost_rounds_half_to_even() {
        // 7 units cost 10: one sold releases 10 ÷ 7 = 1.43 → 1; two release 2.86 → 3.
        let mut p = Position { units: 7, cost: 10 };
        assert_eq!(p.sell(1, 1), 0);
        assert_eq!(p, Position { units: 6, cost: 9 });
        // 6 units cost 9: three sold release 4.5 → 4 (even), 3 remain at 5.
        assert_eq!(p.sell(3, 4), 0);
        assert_eq!(p, Position { units: 3, cost: 5 });
        assert_eq!(div_half_even(5, 2), 2);
        assert_eq!(div_half_even(7, 2), 4);
        assert_eq!(div_half_even(11, 4), 3);
    }

    #[test]
    fn holdings_are_valued_as_valuation_values_them() {
        // 12,345 units at 10,123 per 10,000: 12,496.8435 exact, 12,496 rounded down.
        let book = BTreeMap::from([(
            "F".to_owned(),
            Position {
                units: 12_345,
                cost: 12_000,
            },
        )]);
        let quotes = HashMap::from([(
            "F".to_owned(),
            Quote {
                unit_scale: 0,
                quote_unit: 10_000,
                price: Some((d("2026-01-05"), Decimal::from(10_123))),
            },
        )]);
        let (exact, floor, cost) = valued(&book, &quotes, 0);
        assert_eq!(exact, "12496.8435".parse::<Decimal>().unwrap());
        assert_eq!((floor, cost), (12_496, 12_000));
    }
}
