//! Amounts and currencies on the wire, for the handlers that move money. The movements
//! themselves (deposits, withdrawals, contributions, switches, closes) and their rules live in
//! [`wraps::movements`]; the handlers parse, authorise, call it inside the request's write
//! transaction beside the idempotency record, and answer.

use chrono::{DateTime, NaiveDate, Utc};
use ledger::amount::AmountLimits;
use ledger::{Asset, AssetKind, Ledger};
use rust_decimal::Decimal;

use crate::auth::Caller;
use crate::problem::Problem;

/// A currency known to the books, for amounts on the wire, read through `db` (inside a write
/// transaction, that transaction: see `Ledger::asset_in`).
pub async fn currency<C: sea_orm::ConnectionTrait>(
    db: &C,
    ledger: &Ledger,
    field: &str,
    code: &str,
) -> Result<Asset, Problem> {
    match ledger.asset_in(db, code).await {
        Ok(asset) if asset.kind == AssetKind::Currency => Ok(asset),
        Ok(_) => Err(Problem::invalid_field(
            field,
            format!("{code} is not a currency"),
        )),
        Err(ledger::LedgerError::UnknownAsset(_)) => Err(Problem::invalid_field(
            field,
            format!("unknown currency {code}"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// `amount` checked as a positive amount of `asset`, exact to its scale and at most its
/// `[limits]` bound ([`wraps::movements::check_amount`]).
pub fn amount(
    limits: &AmountLimits,
    field: &str,
    amount: Decimal,
    asset: &Asset,
) -> Result<Decimal, Problem> {
    Ok(wraps::movements::check_amount(
        limits, field, amount, asset,
    )?)
}

pub use wraps::chart::omnibus_account;

/// Who asked, for the entries a movement posts.
pub fn who(caller: &Caller) -> wraps::movements::Who<'_> {
    wraps::movements::Who {
        request_id: &caller.request_id,
        client_id: &caller.principal.client_id,
    }
}

/// Today's business date.
pub fn today(now: DateTime<Utc>) -> NaiveDate {
    ledger::calendar::business_date(now)
}
