//! The rows of [`super`]: `fund_terms`, `individual_costs`, `realised_gains` (the only
//! module that writes them). Rates are exact decimal TEXT, amounts BIGINT minor units; every
//! statement on a tenant's rows names the tenant.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use ledger::sql::{IN_CHUNK, INSERT_ROWS, Params, exec, get, micros, query};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, Value};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::cost::{self, Basis, Scale};
use super::{FundTerm, FundTermRate, FundsError};
use crate::customers::Invalid;

fn corrupt(what: String) -> FundsError {
    FundsError::Ledger(ledger::LedgerError::Corrupt(what))
}

fn rate_of(text: &str) -> Result<Decimal, FundsError> {
    text.parse()
        .map_err(|_| corrupt(format!("fund term rate {text:?}")))
}

// ---------------------------------------------------------------------------------------
// Fund terms (reference data)

/// Sets `term` of `instrument` from `effective_date` (replacing the rate already set for that
/// date). The date must be later than every date whose end of day has started, so no trade
/// or valuation already done used another rate (422 naming `effective_date`); an unknown
/// instrument is 404. Returns the row written and the rate it replaced.
#[allow(clippy::too_many_arguments)]
pub async fn set_term<C: ConnectionTrait>(
    txn: &C,
    instrument: &str,
    term: FundTerm,
    effective_date: NaiveDate,
    rate: Decimal,
    set_by: &str,
    now: DateTime<Utc>,
) -> Result<(FundTermRate, Option<Decimal>), FundsError> {
    let b = txn.get_database_backend();
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT code FROM instruments WHERE code = {}",
        pa.push(instrument)
    );
    if query(txn, q, pa.values).await?.is_empty() {
        return Err(FundsError::NotFound(format!("no instrument {instrument}")));
    }
    let started: Option<NaiveDate> = query(
        txn,
        "SELECT MAX(business_date) FROM eod_runs".to_owned(),
        vec![],
    )
    .await?
    .first()
    .map(|r| get::<Option<NaiveDate>>(r, 0))
    .transpose()?
    .flatten();
    if let Some(last) = started.filter(|last| effective_date <= *last) {
        return Err(Invalid::new(
            "effective_date",
            format!("end of day has already started {last}: a term takes effect from a later date"),
        )
        .into());
    }
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT rate FROM fund_terms WHERE instrument_code = {} AND term = {} \
         AND effective_date = {}",
        pa.push(instrument),
        pa.push(term.as_str()),
        pa.push(effective_date)
    );
    let before = match query(txn, q, pa.values).await?.first() {
        Some(r) => Some(rate_of(&get::<String>(r, 0)?)?),
        None => None,
    };
    let mut pa = Params::new(b);
    let row = pa.row(vec![
        instrument.into(),
        term.as_str().into(),
        effective_date.into(),
        rate.normalize().to_string().into(),
        set_by.into(),
        micros(now).into(),
    ]);
    let q = format!(
        "INSERT INTO fund_terms (instrument_code, term, effective_date, rate, set_by, set_at) \
         VALUES {row} ON CONFLICT (instrument_code, term, effective_date) DO UPDATE SET \
         rate = excluded.rate, set_by = excluded.set_by, set_at = excluded.set_at"
    );
    exec(txn, q, pa.values).await?;
    Ok((
        FundTermRate {
            instrument: instrument.to_owned(),
            term,
            effective_date,
            rate: rate.normalize(),
            set_by: set_by.to_owned(),
        },
        before,
    ))
}

/// Every version of every term of `instrument`, by term and date.
pub async fn terms<C: ConnectionTrait>(
    db: &C,
    instrument: &str,
) -> Result<Vec<FundTermRate>, FundsError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT term, effective_date, rate, set_by FROM fund_terms WHERE instrument_code = {} \
         ORDER BY term, effective_date",
        pa.push(instrument)
    );
    let mut out = Vec::new();
    for r in query(db, q, pa.values).await? {
        let term: String = get(&r, 0)?;
        out.push(FundTermRate {
            instrument: instrument.to_owned(),
            term: FundTerm::parse(&term).ok_or_else(|| corrupt(format!("fund term {term}")))?,
            effective_date: get(&r, 1)?,
            rate: rate_of(&get::<String>(&r, 2)?)?,
            set_by: get(&r, 3)?,
        });
    }
    Ok(out)
}

/// The rate of `term` in effect on `date` per instrument (the latest effective on or before
/// it); instruments with none are absent (a rate of zero).
pub async fn rates_on<C: ConnectionTrait>(
    db: &C,
    term: FundTerm,
    date: NaiveDate,
) -> Result<HashMap<String, Decimal>, FundsError> {
    let mut pa = Params::new(db.get_database_backend());
    let (t, d1, d2) = (pa.push(term.as_str()), pa.push(date), pa.push(date));
    let q = format!(
        "SELECT f.instrument_code, f.rate FROM fund_terms f WHERE f.term = {t} \
         AND f.effective_date <= {d1} AND NOT EXISTS (SELECT 1 FROM fund_terms g \
         WHERE g.instrument_code = f.instrument_code AND g.term = f.term \
         AND g.effective_date <= {d2} AND g.effective_date > f.effective_date)"
    );
    let mut out = HashMap::new();
    for r in query(db, q, pa.values).await? {
        out.insert(get::<String>(&r, 0)?, rate_of(&get::<String>(&r, 1)?)?);
    }
    Ok(out)
}

/// The weighted expense ratio of `strategy_id`'s model version in effect on `on`
/// ([`super::weighted_expense_ratio`] with the ratios in effect that day); `None` when no
/// version is in effect.
pub async fn model_expense_ratio<C: ConnectionTrait>(
    db: &C,
    manager_tenant_id: Uuid,
    strategy_id: Uuid,
    on: NaiveDate,
) -> Result<Option<Decimal>, FundsError> {
    let Some(version) =
        crate::market::store::version_in_effect(db, manager_tenant_id, strategy_id, on).await?
    else {
        return Ok(None);
    };
    let ratios = rates_on(db, FundTerm::ExpenseRatio, on).await?;
    let weights: Vec<(String, Decimal)> = version
        .weights
        .iter()
        .map(|w| (w.instrument.clone(), w.weight))
        .collect();
    Ok(Some(super::weighted_expense_ratio(&weights, &ratios)))
}

// ---------------------------------------------------------------------------------------
// Individual cost and realised gains (written by end of day's allocation)

/// One filled trade of a day as allocation booked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookedTrade {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub wrap_id: Uuid,
    pub instrument: String,
    pub sell: bool,
    /// Units bought or sold (minor).
    pub units: i64,
    /// Buys: what the wrap paid; sells: what it received (net of the levy).
    pub amount: i64,
    /// Sells: the redemption levy deducted.
    pub levy: i64,
    pub scale: Scale,
}

/// Individual costs by (customer, fund).
pub type Costs = BTreeMap<(Uuid, String), Basis>;

/// What [`apply_trades`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CostTotals {
    pub buys: u64,
    pub sales: u64,
    /// Σ gains realised (minor units; currencies added up: a count for the step's detail).
    pub gain: i64,
}

/// The pure part of [`apply_trades`]: the day's trades applied to the customers' costs,
/// sales before buys (as allocation books them) in order; returns the costs after and one
/// realised row per sale. Asserts that the gains add up: Σ gain = Σ proceeds − Σ cost.
pub fn apply(mut costs: Costs, trades: &[BookedTrade]) -> (Costs, Vec<(usize, cost::Realised)>) {
    let mut realised = Vec::new();
    let mut order: Vec<usize> = (0..trades.len()).collect();
    order.sort_by_key(|i| (!trades[*i].sell, *i));
    for i in order {
        let t = &trades[i];
        let key = (t.customer_id, t.instrument.clone());
        let basis = costs.get(&key).copied().unwrap_or_default();
        if t.sell {
            let (left, r) = cost::sale(basis, t.scale, t.units, t.amount);
            costs.insert(key, left);
            realised.push((i, r));
        } else {
            costs.insert(key, cost::after_buy(basis, t.scale, t.units, t.amount));
        }
    }
    debug_assert_eq!(
        realised.iter().map(|(_, r)| r.gain).sum::<i64>(),
        realised
            .iter()
            .map(|(i, r)| trades[*i].amount - r.cost)
            .sum::<i64>()
    );
    (costs, realised)
}

/// Applies a tenant's booked trades of `date` to its customers' individual costs and records
/// each sale's realised gain: load the costs, [`apply`], write (in the caller's transaction:
/// allocation's, with its entries and checkpoint, so a re-run finds it done).
pub async fn apply_trades<C: ConnectionTrait>(
    txn: &C,
    tenant_id: Uuid,
    date: NaiveDate,
    trades: &[BookedTrade],
) -> Result<CostTotals, FundsError> {
    if trades.is_empty() {
        return Ok(CostTotals::default());
    }
    let b = txn.get_database_backend();
    let mut customers: Vec<Uuid> = trades.iter().map(|t| t.customer_id).collect();
    customers.sort();
    customers.dedup();
    let mut costs: BTreeMap<(Uuid, String), Basis> = BTreeMap::new();
    for chunk in customers.chunks(IN_CHUNK) {
        let mut pa = Params::new(b);
        let t = pa.push(tenant_id);
        let list = pa.list(chunk);
        let q = format!(
            "SELECT customer_id, instrument, units, cost_per_quote FROM individual_costs \
             WHERE tenant_id = {t} AND customer_id IN {list}"
        );
        for r in query(txn, q, pa.values).await? {
            costs.insert(
                (get(&r, 0)?, get(&r, 1)?),
                Basis {
                    units: get(&r, 2)?,
                    cost_per_quote: get(&r, 3)?,
                },
            );
        }
    }
    let (after, realised) = apply(costs, trades);
    // Only the (customer, fund) pairs traded today are written.
    let touched: std::collections::BTreeSet<(Uuid, String)> = trades
        .iter()
        .map(|t| (t.customer_id, t.instrument.clone()))
        .collect();
    let rows: Vec<Vec<Value>> = touched
        .iter()
        .filter_map(|k| after.get(k).map(|basis| (k, basis)))
        .map(|((customer, instrument), basis)| {
            vec![
                tenant_id.into(),
                (*customer).into(),
                instrument.clone().into(),
                basis.units.into(),
                basis.cost_per_quote.into(),
                date.into(),
            ]
        })
        .collect();
    for chunk in rows.chunks(INSERT_ROWS) {
        let mut pa = Params::new(b);
        let values: Vec<String> = chunk.iter().map(|r| pa.row(r.clone())).collect();
        let q = format!(
            "INSERT INTO individual_costs (tenant_id, customer_id, instrument, units, \
             cost_per_quote, updated_date) VALUES {} ON CONFLICT (tenant_id, customer_id, \
             instrument) DO UPDATE SET units = excluded.units, \
             cost_per_quote = excluded.cost_per_quote, updated_date = excluded.updated_date",
            values.join(", ")
        );
        exec(txn, q, pa.values).await?;
    }
    let mut totals = CostTotals {
        buys: trades.iter().filter(|t| !t.sell).count() as u64,
        sales: realised.len() as u64,
        gain: 0,
    };
    let gains: Vec<Vec<Value>> = realised
        .iter()
        .map(|(i, r)| {
            let t = &trades[*i];
            totals.gain += r.gain;
            vec![
                tenant_id.into(),
                t.order_id.into(),
                date.into(),
                t.customer_id.into(),
                t.wrap_id.into(),
                t.instrument.clone().into(),
                t.units.into(),
                t.amount.into(),
                t.levy.into(),
                r.cost.into(),
                r.gain.into(),
                r.cost_per_quote.into(),
            ]
        })
        .collect();
    for chunk in gains.chunks(INSERT_ROWS) {
        let mut pa = Params::new(b);
        let values: Vec<String> = chunk.iter().map(|r| pa.row(r.clone())).collect();
        let q = format!(
            "INSERT INTO realised_gains (tenant_id, order_id, business_date, customer_id, \
             wrap_id, instrument, units, proceeds, levy, cost, gain, cost_per_quote) VALUES {}",
            values.join(", ")
        );
        exec(txn, q, pa.values).await?;
    }
    Ok(totals)
}

// ---------------------------------------------------------------------------------------
// Reads for the API

/// One sale's realised gain.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RealisedGain {
    pub order_id: Uuid,
    pub date: NaiveDate,
    pub wrap_id: Uuid,
    pub instrument: String,
    /// Units sold, exact decimal string.
    pub units: String,
    /// What the wrap received, net of the levy.
    pub proceeds: String,
    /// The redemption levy deducted.
    pub levy: String,
    /// Cost of the units sold.
    pub cost: String,
    /// `proceeds − cost`.
    pub gain: String,
    /// The individual cost per quote unit the sale used.
    pub cost_per_quote: String,
}

/// One fund's cost as a wrap or a customer holds it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FundCost {
    pub instrument: String,
    pub currency: String,
    /// Units held (the wrap's units; for a customer, the units its cost covers).
    pub units: String,
    /// The customer's individual cost (個別元本) per quote unit.
    pub cost_per_quote: String,
    pub quote_unit: i64,
    /// `floor(units × cost_per_quote ÷ quote_unit)`.
    pub cost: String,
    /// Σ gains realised by sales of this fund (the wrap's, or all the customer's).
    pub realised_gain: String,
}

/// A wrap's or a customer's cost basis.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CostBasis {
    pub holdings: Vec<FundCost>,
    /// Every sale, newest first (at most 1,000).
    pub sales: Vec<RealisedGain>,
}

/// Whose cost basis.
#[derive(Debug, Clone, Copy)]
pub enum Holder {
    /// A wrap (of the customer): its units, its customer's cost, its own sales.
    Wrap { wrap_id: Uuid, customer_id: Uuid },
    /// A customer: every fund it has a cost for, every sale of its wraps.
    Customer(Uuid),
}

struct FundInfo {
    currency: String,
    currency_scale: u32,
    scale: Scale,
}

async fn fund_info<C: ConnectionTrait>(db: &C, instrument: &str) -> Result<FundInfo, FundsError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT i.currency, a.scale, i.quote_unit, i.unit_scale FROM instruments i \
         JOIN ledger_assets a ON a.code = i.currency WHERE i.code = {}",
        pa.push(instrument)
    );
    let r = query(db, q, pa.values)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| corrupt(format!("no instrument {instrument}")))?;
    Ok(FundInfo {
        currency: get(&r, 0)?,
        currency_scale: u32::try_from(get::<i32>(&r, 1)?).unwrap_or(0),
        scale: Scale {
            quote_unit: get(&r, 2)?,
            unit_scale: u32::try_from(get::<i32>(&r, 3)?).unwrap_or(0),
        },
    })
}

fn text(minor: i64, scale: u32) -> String {
    ledger::asset::decimal_of(i128::from(minor), scale).to_string()
}

/// The cost basis of `holder` in `tenant_id`'s book (the caller has checked that it may see
/// the wrap or customer).
pub async fn cost_basis<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    holder: Holder,
) -> Result<CostBasis, FundsError> {
    let b = db.get_database_backend();
    let customer_id = match holder {
        Holder::Wrap { customer_id, .. } | Holder::Customer(customer_id) => customer_id,
    };
    let mut pa = Params::new(b);
    let q = format!(
        "SELECT instrument, units, cost_per_quote FROM individual_costs \
         WHERE tenant_id = {} AND customer_id = {} ORDER BY instrument",
        pa.push(tenant_id),
        pa.push(customer_id)
    );
    let mut basis: BTreeMap<String, Basis> = BTreeMap::new();
    for r in query(db, q, pa.values).await? {
        basis.insert(
            get(&r, 0)?,
            Basis {
                units: get(&r, 1)?,
                cost_per_quote: get(&r, 2)?,
            },
        );
    }
    // Units: the customer's covered units, or the wrap's own units accounts.
    let mut units: BTreeMap<String, i64> = BTreeMap::new();
    match holder {
        Holder::Customer(_) => {
            for (i, bs) in &basis {
                units.insert(i.clone(), bs.units);
            }
        }
        Holder::Wrap { wrap_id, .. } => {
            let prefix = format!("wrap:{wrap_id}:units:");
            let mut pa = Params::new(b);
            let t = pa.push(tenant_id);
            let p = pa.push(prefix.clone());
            let q = format!(
                "SELECT code, credits_posted - debits_posted FROM ledger_accounts \
                 WHERE tenant_id = {t} AND substr(code, 1, {}) = {p} ORDER BY code",
                prefix.len()
            );
            for r in query(db, q, pa.values).await? {
                let code: String = get(&r, 0)?;
                let held: i64 = get(&r, 1)?;
                let instrument = code[prefix.len()..].to_owned();
                if held != 0 || basis.contains_key(&instrument) {
                    units.insert(instrument, held);
                }
            }
        }
    }
    // Sales.
    let mut pa = Params::new(b);
    let t = pa.push(tenant_id);
    let (column, id) = match holder {
        Holder::Wrap { wrap_id, .. } => ("wrap_id", wrap_id),
        Holder::Customer(c) => ("customer_id", c),
    };
    let who = pa.push(id);
    let q = format!(
        "SELECT order_id, business_date, wrap_id, instrument, units, proceeds, levy, cost, gain, \
         cost_per_quote FROM realised_gains WHERE tenant_id = {t} AND {column} = {who} \
         ORDER BY business_date DESC, order_id DESC LIMIT 1000"
    );
    let mut infos: HashMap<String, FundInfo> = HashMap::new();
    let mut realised_by_fund: BTreeMap<String, i64> = BTreeMap::new();
    let mut sales = Vec::new();
    for r in query(db, q, pa.values).await? {
        let instrument: String = get(&r, 3)?;
        if !infos.contains_key(&instrument) {
            infos.insert(instrument.clone(), fund_info(db, &instrument).await?);
        }
        let info = infos
            .get(&instrument)
            .ok_or_else(|| corrupt(format!("no instrument {instrument}")))?;
        let cs = info.currency_scale;
        let gain: i64 = get(&r, 8)?;
        *realised_by_fund.entry(instrument.clone()).or_default() += gain;
        sales.push(RealisedGain {
            order_id: get(&r, 0)?,
            date: get(&r, 1)?,
            wrap_id: get(&r, 2)?,
            units: text(get(&r, 4)?, info.scale.unit_scale),
            proceeds: text(get(&r, 5)?, cs),
            levy: text(get(&r, 6)?, cs),
            cost: text(get(&r, 7)?, cs),
            gain: text(gain, cs),
            cost_per_quote: text(get(&r, 9)?, cs),
            instrument,
        });
    }
    let mut holdings = Vec::new();
    let mut funds: Vec<String> = units.keys().cloned().collect();
    funds.extend(realised_by_fund.keys().cloned());
    funds.sort();
    funds.dedup();
    for instrument in funds {
        if !infos.contains_key(&instrument) {
            infos.insert(instrument.clone(), fund_info(db, &instrument).await?);
        }
        let info = infos
            .get(&instrument)
            .ok_or_else(|| corrupt(format!("no instrument {instrument}")))?;
        let held = units.get(&instrument).copied().unwrap_or(0);
        let per_quote = basis.get(&instrument).map_or(0, |b| b.cost_per_quote);
        // The cost of the units held, by the sale rule (what selling them all would release).
        let (_, cost_of_held) = cost::sale(
            Basis {
                units: held,
                cost_per_quote: per_quote,
            },
            info.scale,
            held,
            0,
        );
        holdings.push(FundCost {
            currency: info.currency.clone(),
            units: text(held, info.scale.unit_scale),
            cost_per_quote: text(per_quote, info.currency_scale),
            quote_unit: info.scale.quote_unit,
            cost: text(cost_of_held.cost, info.currency_scale),
            realised_gain: text(
                realised_by_fund.get(&instrument).copied().unwrap_or(0),
                info.currency_scale,
            ),
            instrument,
        });
    }
    Ok(CostBasis { holdings, sales })
}
