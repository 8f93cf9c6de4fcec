//! Moving customers' money: the workflows behind `/v1/customers/{id}/deposits`,
//! `/withdrawals` and the wrap movements, shared by their handlers.
//!
//! Each movement is one balanced ledger entry posted inside the request's write transaction
//! ([`ledger::Ledger::post_batch_in`]), together with its idempotency record and any rows of
//! its own, so a movement and its record commit or vanish together. The chart of accounts
//! and why it reconciles are in [`ledger::wraps`].
//!
//! Checks before posting give the caller a problem naming the field (`amount exceeds the
//! available balance …`); the ledger's no-negative rule, applied under the tenant's book
//! lock, is what actually guarantees that two concurrent withdrawals cannot overdraw.

use chrono::{DateTime, NaiveDate, Utc};
use ledger::amount::AmountLimits;
use ledger::store::wraps as store;
use ledger::wraps::{Invalid, check_money, customer_cash_code};
use ledger::{Account, Asset, AssetKind, Entry, Ledger, NewAccount, NewEntry, NewPosting, Side};
use rust_decimal::Decimal;
use sea_orm::DatabaseTransaction;
use serde_json::json;
use uuid::Uuid;

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
/// `[limits]` bound ([`ledger::amount::check_money`], the one check of a single amount).
pub fn amount(
    limits: &AmountLimits,
    field: &str,
    amount: Decimal,
    asset: &Asset,
) -> Result<Decimal, Problem> {
    check_money(field, amount, &limits.bound(asset))?;
    Ok(amount)
}

/// The tenant's account `code`, opened in `txn` if it does not exist yet.
pub async fn ensure_account(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    new: NewAccount,
) -> Result<Account, Problem> {
    if let Some(account) = store::account_by_code(txn, new.tenant_id, &new.code).await? {
        return Ok(account);
    }
    ledger.create_account_in(txn, &new).await?;
    store::account_by_code(txn, new.tenant_id, &new.code)
        .await?
        .ok_or_else(|| Problem::internal(&format!("account {} vanished", new.code)))
}

pub use wraps::chart::omnibus_account;

/// The distributor's omnibus account of `asset` (opened with the distributor for JPY, on
/// first use for other assets).
pub async fn omnibus(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    tenant_id: Uuid,
    asset: &str,
) -> Result<Account, Problem> {
    ensure_account(txn, ledger, omnibus_account(tenant_id, asset)).await
}

/// A customer's cash account in `currency` (opened on first use).
pub async fn customer_cash(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    tenant_id: Uuid,
    customer_id: Uuid,
    currency: &str,
) -> Result<Account, Problem> {
    ensure_account(
        txn,
        ledger,
        NewAccount {
            tenant_id,
            code: customer_cash_code(customer_id, currency),
            asset: currency.to_owned(),
            normal_side: Side::Credit,
            no_negative: true,
            metadata: json!({ "customer_id": customer_id, "purpose": "customer cash" }),
        },
    )
    .await
}

/// Refuses `amount` (minor units) beyond what `account` has available, naming `field`.
pub fn check_available(
    field: &str,
    account: &Account,
    amount: Decimal,
    asset: &Asset,
) -> Result<(), Problem> {
    let available =
        ledger::asset::decimal_of(account.balance.available(account.normal_side), asset.scale);
    if amount > available {
        return Err(Invalid::new(
            field,
            format!(
                "{amount} {} is more than the available balance of {available} {}",
                asset.code, asset.code
            ),
        )
        .into());
    }
    Ok(())
}

/// One movement between two accounts of the same asset, as a balanced entry.
#[derive(Debug)]
pub struct Transfer<'a> {
    pub tenant_id: Uuid,
    /// The entry's kind: `deposit`, `withdrawal`, `contribution`, `wrap_close`.
    pub kind: &'static str,
    pub description: String,
    pub debit: &'a Account,
    pub credit: &'a Account,
    pub amount: Decimal,
    pub effective_date: NaiveDate,
    /// What the entry is about (customer, wrap), merged with who asked.
    pub metadata: serde_json::Value,
}

/// Posts `t` in `txn` and returns the entry. The entry's own idempotency key is fresh: the
/// request's `Idempotency-Key` is enforced by [`crate::idempotency`] around the whole
/// request, which also covers the rows written beside the entry.
pub async fn post(
    txn: &DatabaseTransaction,
    ledger: &Ledger,
    caller: &Caller,
    t: Transfer<'_>,
) -> Result<Entry, Problem> {
    let mut metadata = t.metadata;
    if let Some(m) = metadata.as_object_mut() {
        m.insert("request_id".into(), json!(caller.request_id));
        m.insert("client_id".into(), json!(caller.principal.client_id));
    }
    let id = Uuid::now_v7();
    let entry = NewEntry {
        tenant_id: t.tenant_id,
        idempotency_key: format!("{}:{id}", t.kind),
        kind: t.kind.to_owned(),
        effective_date: t.effective_date,
        description: t.description,
        metadata,
        postings: vec![
            NewPosting::debit(t.debit.id, &t.debit.asset, t.amount),
            NewPosting::credit(t.credit.id, &t.credit.asset, t.amount),
        ],
        hold: None,
    };
    let mut posted = ledger.post_batch_in(txn, vec![entry]).await?;
    posted
        .pop()
        .map(|p| p.entry)
        .ok_or_else(|| Problem::internal(&"the ledger returned no entry"))
}

/// Today's business date.
pub fn today(now: DateTime<Utc>) -> NaiveDate {
    ledger::calendar::business_date(now)
}
