//! A wrap's value now, by the same rule as end of day's NAV (`eod::valuation::nav_minor`, docs/
//! DOMAIN.md section 4): cash plus units at their last prices, less the fees owed and not yet
//! paid. `GET /v1/wraps/{id}`, a customer's total, what may be withdrawn and the goal's
//! starting value all read it here.

use std::collections::HashMap;

use crate::customers::store;
use crate::customers::{Wrap, wrap_cash_code};
use chrono::NaiveDate;
use ledger::{Account, Ledger};
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::eod::EodError;

/// A holding of one instrument.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Holding {
    pub instrument: String,
    /// The ledger account of these units.
    pub account_id: Uuid,
    #[schema(value_type = String)]
    pub units: Decimal,
    /// The last price on or before today, per `quote_unit` units; absent if none was ever
    /// uploaded (the holding is then valued at zero, and `priced` is false).
    #[schema(value_type = Option<String>)]
    pub price: Option<Decimal>,
    pub price_date: Option<NaiveDate>,
    pub quote_unit: i64,
    /// units × price ÷ quote unit.
    #[schema(value_type = String)]
    pub value: Decimal,
    pub priced: bool,
}

/// A wrap's value now, by the same rule as end of day's NAV
/// (`crate::eod::valuation::nav_minor`): cash plus units at their last prices, less the fees
/// owed and not yet paid.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Valuation {
    pub currency: String,
    pub as_of: NaiveDate,
    #[schema(value_type = String)]
    pub cash: Decimal,
    /// Cash that may be used now (holds counted).
    #[schema(value_type = String)]
    pub cash_available: Decimal,
    pub holdings: Vec<Holding>,
    /// Σ holdings' values, rounded down to the currency's minor unit once.
    #[schema(value_type = String)]
    pub units_value: Decimal,
    /// Management and performance fees (with their tax) accrued and not yet paid: collected
    /// at the billing period's end, deducted from the value until then.
    #[schema(value_type = String)]
    pub fees_owed: Decimal,
    /// cash + units_value − fees_owed: the wrap's NAV now, as end of day computes it.
    #[schema(value_type = String)]
    pub value: Decimal,
}

/// Values `wrap` at the last prices on or before `today`, reading through `db` (the request's
/// transaction when there is one: a second pool connection inside a transaction could wait
/// for a pool that every waiting transaction holds).
pub async fn value_now<C: ConnectionTrait>(
    db: &C,
    books: &Ledger,
    wrap: &Wrap,
    today: NaiveDate,
) -> Result<Valuation, EodError> {
    let accounts = store::wrap_accounts(db, wrap.tenant_id, wrap.id).await?;
    let cash_code = wrap_cash_code(wrap.id);
    let mut cash_minor = 0_i128;
    let mut cash_available = Decimal::ZERO;
    let mut units: Vec<(&Account, String)> = Vec::new();
    for a in &accounts {
        if a.code == cash_code {
            cash_minor = a.balance.posted(a.normal_side);
            cash_available =
                ledger::asset::decimal_of(a.balance.available(a.normal_side), wrap.currency_scale);
        } else if let Some(instrument) = a.code.strip_prefix(&format!("wrap:{}:units:", wrap.id)) {
            units.push((a, instrument.to_owned()));
        }
    }
    let codes: Vec<String> = units.iter().map(|(_, c)| c.clone()).collect();
    let prices = if codes.is_empty() {
        HashMap::new()
    } else {
        ledger::store::market::latest_prices(db, &codes, today).await?
    };
    let mut holdings = Vec::with_capacity(units.len());
    let mut exact_units_value = Decimal::ZERO;
    for (account, code) in units {
        let asset = books.asset_in(db, &code).await?;
        let quote_unit = match asset.kind {
            ledger::AssetKind::Instrument { quote_unit, .. } => quote_unit,
            ledger::AssetKind::Currency => 1,
        };
        let n = ledger::asset::decimal_of(account.balance.posted(account.normal_side), asset.scale);
        let quote = prices.get(&code);
        let v = quote
            .map(|q| n * q.price / Decimal::from(quote_unit))
            .unwrap_or_default();
        exact_units_value += v;
        holdings.push(Holding {
            instrument: code,
            account_id: account.id,
            units: n,
            price: quote.map(|q| q.price),
            price_date: quote.map(|q| q.date),
            quote_unit,
            value: v.normalize(),
            priced: quote.is_some(),
        });
    }
    let scale = wrap.currency_scale;
    let units_value = crate::eod::valuation::units_value_minor(exact_units_value, scale);
    let fees_owed = crate::eod::fees::owed_by(db, wrap.tenant_id, &[wrap.id])
        .await?
        .get(&wrap.id)
        .copied()
        .unwrap_or(0);
    let cash_i64 = i64::try_from(cash_minor).unwrap_or(i64::MAX);
    let nav = crate::eod::valuation::nav_minor(cash_i64, units_value, fees_owed);
    let of = |minor: i64| ledger::asset::decimal_of(i128::from(minor), scale);
    Ok(Valuation {
        currency: wrap.currency.clone(),
        as_of: today,
        cash: ledger::asset::decimal_of(cash_minor, scale),
        cash_available,
        holdings,
        units_value: of(units_value),
        fees_owed: of(fees_owed),
        value: of(nav).normalize(),
    })
}
