//! Account statements ([`Reports::wrap_statement`], [`Reports::customer_statement`]) over a
//! period `[from, to]`. The API serves them as `GET /v1/wraps/{id}/statement` and
//! `GET /v1/customers/{id}/statement`, as JSON or CSV (`api/src/routes/statements.rs`).
//!
//! Everything is read from what end of day stored; nothing is written.
//!
//! **Values** are end-of-day NAVs (`wrap_snapshots.nav`, which deducts the fees owed):
//! `opening_value` is the NAV of the day before `from` (0 when the wrap had no snapshot then:
//! it did not exist yet), `closing_value` the NAV of `to` (0 when it has none: closed). `to`
//! must have a finished end of day ([`ReportError::StatementNotClosed`] otherwise).
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
//! **Gains: average cost per instrument** ([`cost`]), replayed from the wrap's filled trade
//! allocations (`trade_allocations` with the side of their `trade_orders`), in date order, sells
//! before buys within a day (as allocation books them). A buy adds its units and its cost (the cash
//! paid); a sell releases cost × units sold ÷ units held, rounded half to even to the minor unit
//! (all of it when the last unit goes), so the cost carried is always a whole amount and never
//! leaks. `realised_gain` = Σ (proceeds − released cost) over the period's sells. The market value
//! of the holdings is computed as valuation does (units × the last price on or before the date ÷
//! quote unit, the exact sum rounded down once per wrap); the wrap's `unrealised_gain` at a date is
//! that rounded value − the cost carried, and `unrealised_gain_change` the closing one less the
//! opening one. The sub-unit part dropped by the rounding down is shown as `valuation_rounding` (so
//! the holdings' exact gains sum to the wrap's plus it).
//!
//! **The check** (`check`, computed in `figures.rs`): `closing − opening = contributions −
//! withdrawals − fees + investment_gain`, with `investment_gain = realised_gain +
//! unrealised_gain_change + unexplained`. `unexplained` is whatever the books moved that the
//! statement cannot classify; it is 0 (and `check.balanced` true) whenever every movement of the
//! wrap's cash is a classified flow, a trade, or a fee collection. Known cases where it is not:
//! money booked to the wrap through the API after the day's end of day had run but dated that day
//! (valued in the next day's NAV, dated in the earlier day), and the owed fees of a wrap closed in
//! the period (closing billing is not built). Integers in minor units throughout; only holdings
//! lines carry sub-unit decimals.
//!
//! **Time-weighted return**: the daily returns of `wrap_returns` over the period chained
//! (the `cumulative` of `GET /v1/wraps/{id}/returns` for the same range), absent when the
//! wrap has none in the period. A customer statement gives no total return (summing or
//! averaging returns of different sizes and timings would mean nothing); its totals are sums
//! per currency of the money figures.
//!
//! **Isolation**: the API finds the wrap or the customer as the caller may see it (a wrap as
//! `GET /v1/wraps/{id}`: its distributor, the manager of its strategy, the platform; a
//! customer only its distributor; anyone else 404 exactly as for a missing id); here a
//! manager [`Viewer`] is never shown the `customer_id`. Tried by
//! `api/tests/http/statements.rs`: `statement_matches_the_hand_computation` (every figure, the
//! CSV parsed back, the customer's sums), `statements_are_isolated`,
//! `bad_statement_requests_are_refused`.

use std::collections::{BTreeMap, HashMap};

use crate::customers::Wrap;
use crate::customers::store::{self as store, WrapFilter, WrapScope};
use chrono::{Days, NaiveDate};
use ledger::asset::decimal_of;
use ledger::sql::{IN_CHUNK, Params, get, query};
use rust_decimal::Decimal;
use sea_orm::DatabaseConnection;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Period, ReportError, Reports, Viewer, finished_between, sum_at};
use crate::eod::returns;

pub mod cost;
mod figures;

use cost::{Position, Quote, Trade, exact_value, replay, shown, valued};
use figures::Figures;

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
// Reading

fn day_before(d: NaiveDate) -> NaiveDate {
    d.checked_sub_days(Days::new(1)).unwrap_or(d)
}

/// Two sums of one row read as text (NULL: 0).
fn sums(rows: &[sea_orm::QueryResult]) -> Result<(i128, i128), ReportError> {
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
) -> Result<HashMap<String, Quote>, ReportError> {
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

/// The placeholders of a read of one wrap's rows over dates, pushed in the order the reads
/// below write them (`?` binds in text order on SQLite): tenant, wrap, first and last date.
fn wrap_dates(pa: &mut Params, wrap: &Wrap, first: NaiveDate, last: NaiveDate) -> [String; 4] {
    [
        pa.push(wrap.tenant_id),
        pa.push(wrap.id),
        pa.push(first),
        pa.push(last),
    ]
}

/// The wrap's end-of-day NAVs from `opening_date` to `to`: how many there are, the opening
/// one and the closing one (0 where there is none).
async fn navs(
    db: &DatabaseConnection,
    wrap: &Wrap,
    opening_date: NaiveDate,
    to: NaiveDate,
) -> Result<(i64, i128, i128), ReportError> {
    // The daily rows are keyed date first (migration 000015): reads of one wrap are driven by
    // the dates end of day ran, each a lookup by the whole key (CROSS JOIN keeps that order on
    // SQLite).
    let mut pa = Params::new(db.get_database_backend());
    let [t, w, first, last] = wrap_dates(&mut pa, wrap, opening_date, to);
    let q = format!(
        "SELECT s.business_date, s.nav FROM eod_runs d CROSS JOIN wrap_snapshots s \
         WHERE s.tenant_id = {t} AND s.business_date = d.business_date AND s.wrap_id = {w} \
         AND d.business_date >= {first} AND d.business_date <= {last}"
    );
    let rows = query(db, q, pa.values).await?;
    let (mut opening, mut closing) = (0, 0);
    for r in &rows {
        let date: NaiveDate = get(r, 0)?;
        let nav = i128::from(get::<i64>(r, 1)?);
        if date == opening_date {
            opening = nav;
        }
        if date == to {
            closing = nav;
        }
    }
    let snapshots = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    Ok((snapshots, opening, closing))
}

/// Contributions (credits) and withdrawals (debits) of the wrap's cash account in `[from,
/// to]` by the entries that move customers' money.
async fn flows(
    db: &DatabaseConnection,
    wrap: &Wrap,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(i128, i128), ReportError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT e.kind, p.side, CAST(SUM(p.amount) AS TEXT) FROM ledger_postings p \
         JOIN ledger_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id \
         WHERE p.tenant_id = {} AND p.account_id = {} AND p.pending = {} \
         AND p.effective_date >= {} AND p.effective_date <= {} \
         AND e.kind IN ('contribution', 'withdrawal', 'wrap_close', 'switch') \
         GROUP BY e.kind, p.side",
        pa.push(wrap.tenant_id),
        pa.push(wrap.cash_account_id),
        pa.push(false),
        pa.push(from),
        pa.push(to)
    );
    let (mut contributions, mut withdrawals) = (0, 0);
    for r in query(db, q, pa.values).await? {
        let side: String = get(&r, 1)?;
        let sum = sum_at(&r, 2)?;
        if side == "credit" {
            contributions += sum;
        } else {
            withdrawals += sum;
        }
    }
    Ok((contributions, withdrawals))
}

/// The fees the NAVs of a period deducted: management fees and tax accrued (whole units
/// posted) and performance fees and tax crystallised on `first` … `last`, as (management,
/// performance, tax).
async fn fees_deducted(
    db: &DatabaseConnection,
    wrap: &Wrap,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<(i128, i128, i128), ReportError> {
    let b = db.get_database_backend();
    let mut pa = Params::new(b);
    let [t, w, from, to] = wrap_dates(&mut pa, wrap, first, last);
    let q = format!(
        "SELECT CAST(SUM(a.fee_posted) AS TEXT), CAST(SUM(a.tax_posted) AS TEXT) \
         FROM eod_runs d CROSS JOIN fee_accruals a WHERE a.tenant_id = {t} \
         AND a.business_date = d.business_date AND a.wrap_id = {w} \
         AND d.business_date >= {from} AND d.business_date <= {to}"
    );
    let (management, management_tax) = sums(&query(db, q, pa.values).await?)?;
    let mut pa = Params::new(b);
    let [t, w, from, to] = wrap_dates(&mut pa, wrap, first, last);
    let q = format!(
        "SELECT CAST(SUM(fee) AS TEXT), CAST(SUM(tax) AS TEXT) \
         FROM performance_fees WHERE tenant_id = {t} AND wrap_id = {w} \
         AND business_date >= {from} AND business_date <= {to}"
    );
    let (performance, performance_tax) = sums(&query(db, q, pa.values).await?)?;
    Ok((management, performance, management_tax + performance_tax))
}

/// The fees collected from the wrap in `[from, to]`, as (management, performance, tax).
async fn fees_collected(
    db: &DatabaseConnection,
    wrap: &Wrap,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(i128, i128, i128), ReportError> {
    let mut pa = Params::new(db.get_database_backend());
    let [t, w, from, to] = wrap_dates(&mut pa, wrap, from, to);
    let q = format!(
        "SELECT kind, CAST(SUM(fee_collected) AS TEXT), CAST(SUM(tax_collected) AS TEXT) \
         FROM fee_collections WHERE tenant_id = {t} AND wrap_id = {w} \
         AND business_date >= {from} AND business_date <= {to} GROUP BY kind"
    );
    let (mut management, mut performance, mut tax) = (0, 0, 0);
    for r in query(db, q, pa.values).await? {
        let kind: String = get(&r, 0)?;
        let (fee, fee_tax) = (sum_at(&r, 1)?, sum_at(&r, 2)?);
        if kind == "performance" {
            performance += fee;
        } else {
            management += fee;
        }
        tax += fee_tax;
    }
    Ok((management, performance, tax))
}

/// The wrap's filled allocations up to `to`, in the order allocation booked them (by date,
/// sells before buys).
async fn trades(
    db: &DatabaseConnection,
    wrap: &Wrap,
    to: NaiveDate,
) -> Result<Vec<Trade>, ReportError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT a.business_date, o.instrument, o.side, a.units, a.amount \
         FROM trade_allocations a JOIN trade_orders o \
         ON o.tenant_id = a.tenant_id AND o.id = a.order_id \
         WHERE a.tenant_id = {} AND a.wrap_id = {} AND a.business_date <= {} \
         AND a.status IN ('filled', 'partially_filled') \
         ORDER BY a.business_date, o.side DESC, a.order_id",
        pa.push(wrap.tenant_id),
        pa.push(wrap.id),
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
    Ok(trades)
}

/// The holdings of `book` at the close, each valued exactly at `quotes` (an instrument never
/// priced is valued at 0).
fn holdings(
    book: &BTreeMap<String, Position>,
    quotes: &HashMap<String, Quote>,
    scale: u32,
) -> Vec<Holding> {
    book.iter()
        .filter(|(_, p)| p.units != 0)
        .map(|(code, p)| {
            let q = quotes.get(code).cloned().unwrap_or(Quote {
                unit_scale: 0,
                quote_unit: 1,
                price: None,
            });
            let value = exact_value(p.units, &q);
            let cost = decimal_of(p.cost, scale);
            Holding {
                instrument: code.clone(),
                units: decimal_of(i128::from(p.units), q.unit_scale),
                price: q.price.map(|(_, p)| p),
                price_date: q.price.map(|(d, _)| d),
                quote_unit: q.quote_unit,
                value: shown(value, scale),
                cost,
                unrealised_gain: shown(value - cost, scale),
            }
        })
        .collect()
}

/// The statement of `wrap` (which the caller may see) over `[from, to]`, and its figures.
async fn statement_of(
    db: &DatabaseConnection,
    wrap: &Wrap,
    from: NaiveDate,
    to: NaiveDate,
    show_customer: bool,
) -> Result<(WrapStatement, Figures), ReportError> {
    let scale = wrap.currency_scale;
    let opening_date = day_before(from);
    let fees_to = day_before(to);
    let mut f = Figures::default();

    // Values: the NAVs of the opening date and of `to`.
    let (snapshots, opening, closing) = navs(db, wrap, opening_date, to).await?;
    (f.opening, f.closing) = (opening, closing);
    (f.contributions, f.withdrawals) = flows(db, wrap, from, to).await?;
    // Fees the period's NAVs deducted: accruals and crystallisations of from − 1 … to − 1.
    if fees_to >= opening_date {
        (f.management, f.performance, f.tax) =
            fees_deducted(db, wrap, opening_date, fees_to).await?;
    }
    // Collected in [from, to] (information).
    (
        f.collected_management,
        f.collected_performance,
        f.collected_tax,
    ) = fees_collected(db, wrap, from, to).await?;

    // Gains: the trades up to `to` replayed at average cost, the books valued at the
    // opening date's and `to`'s prices.
    let (opening_book, closing_book, realised) = replay(&trades(db, wrap, to).await?, from);
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
    let rounding = shown(close_exact - money(close_value), scale);
    let holdings = holdings(&closing_book, &close_quotes, scale);

    let view = returns::range(
        db,
        wrap.tenant_id,
        wrap.id,
        &wrap.currency,
        scale,
        Some(from),
        Some(to),
    )
    .await?;
    let twr = (view.days > 0).then_some(view.time_weighted.cumulative);

    let statement = WrapStatement {
        wrap_id: wrap.id,
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

impl Reports<'_> {
    /// `wrap`'s statement over `period` (the caller found the wrap as the viewer may see it).
    /// `to` must have a finished end of day; a manager is not shown the customer.
    pub async fn wrap_statement(
        &self,
        viewer: Viewer,
        wrap: &Wrap,
        Period { from, to }: Period,
    ) -> Result<WrapStatement, ReportError> {
        closes_on_finished_day(self.db, to).await?;
        let show_customer = !matches!(viewer, Viewer::Manager(_));
        let (statement, _) = statement_of(self.db, wrap, from, to, show_customer).await?;
        Ok(statement)
    }

    /// The statement of the distributor's customer `customer_id` (which the caller found)
    /// over `period`: one per wrap that had a snapshot in the period or the day before it
    /// (or a flow in the period), and totals per currency. `to` must have a finished end of
    /// day.
    pub async fn customer_statement(
        &self,
        distributor: Uuid,
        customer_id: Uuid,
        Period { from, to }: Period,
    ) -> Result<CustomerStatement, ReportError> {
        let db = self.db;
        closes_on_finished_day(db, to).await?;
        let filter = WrapFilter {
            customer_id: Some(customer_id),
            ..WrapFilter::default()
        };
        let mut wraps = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = store::wraps(
                db,
                WrapScope::Distributor(distributor),
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
            let (s, f) = statement_of(db, w, from, to, true).await?;
            // A wrap with no snapshot in the period nor the day before it did not exist then
            // (opened later, or closed before), unless money still moved through it.
            if s.snapshots == 0 && f.contributions == 0 && f.withdrawals == 0 {
                continue;
            }
            let t = totals.entry(w.currency.clone()).or_insert((
                0,
                w.currency_scale,
                Figures::default(),
            ));
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
        Ok(CustomerStatement {
            customer_id,
            from,
            to,
            wraps: statements,
            totals,
        })
    }
}

/// Refuses a statement whose `to` has no finished end of day: a statement closes on an
/// end-of-day value.
async fn closes_on_finished_day(db: &DatabaseConnection, to: NaiveDate) -> Result<(), ReportError> {
    if finished_between(db, to, to).await?.is_empty() {
        return Err(ReportError::StatementNotClosed { to });
    }
    Ok(())
}
