//! Money moving into, out of and between wraps: one function per movement, the one home of its
//! rules, called by the HTTP handlers (`api/src/routes/customers.rs`, `api/src/routes/wraps.rs`)
//! inside the request's write transaction, beside the request's idempotency record, so a
//! movement and its record commit or vanish together:
//! [`move_cash`] (a customer's deposit or withdrawal), [`contribute`], [`request_payout`] (a
//! withdrawal from a wrap or a switch to another, pending until end of day sells units) and
//! [`close`]. End of day's plans step contributes by the same rule ([`check_contribution`]).
//! Each refuses with a [`MoveError`] worded for the caller's reader; the API maps it to a
//! problem (404, 409, 422) and decides nothing itself.
//!
//! Before, the plans step had its own checks, and a plan could make the first contribution to
//! an `open` wrap below the strategy's minimum initial investment, which the API refuses.
//! Tried by `movements::tests` and
//! `api/tests/http/eod_plans.rs::a_plan_cannot_open_a_wrap_below_the_initial_minimum`.
//!
//! **Locks** (the platform's one order, `ledger/src/store/work.rs`): the tenant's book first
//! (taken by [`store::wrap`] and [`store::customer_for_update`] before the row), then the rows:
//! wraps in id order, so two opposite switches between the same wraps wait for each other
//! instead of deadlocking. A close therefore reads the wrap's accounts after the lock, and end
//! of day, which takes the same book lock per step, can neither credit a wrap being closed nor
//! be overtaken by one (`api/tests/http/concurrency.rs`). The ledger's no-negative rule,
//! applied under the book lock, is what guarantees that two withdrawals cannot overdraw; the
//! checks before posting give the caller a refusal naming the field.
//!
//! **Dates**: every movement is booked on the open business date given by the caller
//! ([`crate::clock::open_date`], docs/DOMAIN.md section 7).

use crate::customers::store::{self as store, WrapScope};
use crate::customers::{
    Customer, CustomerStatus, Invalid, Movement, MovementKind, MovementStatus, WrapStatus,
    check_money, wrap_cash_code,
};
use chrono::{DateTime, NaiveDate, Utc};
use ledger::amount::AmountLimits;
use ledger::{Account, Asset, Entry, Ledger, LedgerError, NewAccount, NewEntry, NewPosting};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde_json::json;
use uuid::Uuid;

use crate::eod::EodError;
use crate::value;

/// Why a movement was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    /// No such wrap of the tenant (404).
    #[error("{0}")]
    NotFound(String),
    /// The state of the customer or wrap forbids it (409).
    #[error("{0}")]
    Conflict(String),
    /// A value of the request breaks a rule, naming the field (422).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Tenants(#[from] tenants::TenantsError),
    #[error(transparent)]
    Eod(#[from] EodError),
}

fn invalid(field: &str, message: impl Into<String>) -> MoveError {
    MoveError::Invalid(Invalid::new(field, message))
}

/// Who asked, written into each entry's metadata.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub request_id: &'a str,
    pub client_id: &'a str,
}

// ---------------------------------------------------------------------------------------
// Accounts and entries

/// The tenant's account `code`, opened in `txn` if it does not exist yet.
pub async fn ensure_account(
    txn: &DatabaseTransaction,
    books: &Ledger,
    new: NewAccount,
) -> Result<Account, LedgerError> {
    if let Some(account) = ledger::store::account_by_code(txn, new.tenant_id, &new.code).await? {
        return Ok(account);
    }
    books.create_account_in(txn, &new).await?;
    ledger::store::account_by_code(txn, new.tenant_id, &new.code)
        .await?
        .ok_or_else(|| LedgerError::Corrupt(format!("account {} vanished", new.code)))
}

/// A customer's cash account in `currency` (opened on first use).
pub async fn customer_cash(
    txn: &DatabaseTransaction,
    books: &Ledger,
    tenant_id: Uuid,
    customer_id: Uuid,
    currency: &str,
) -> Result<Account, LedgerError> {
    ensure_account(
        txn,
        books,
        crate::chart::customer_cash_account(tenant_id, customer_id, currency),
    )
    .await
}

/// The distributor's omnibus account of `asset` (opened with the distributor for JPY, on
/// first use for other assets).
pub async fn omnibus(
    txn: &DatabaseTransaction,
    books: &Ledger,
    tenant_id: Uuid,
    asset: &str,
) -> Result<Account, LedgerError> {
    ensure_account(txn, books, crate::chart::omnibus_account(tenant_id, asset)).await
}

/// One movement between two accounts of the same asset, as a balanced entry.
struct Transfer<'a> {
    tenant_id: Uuid,
    /// The entry's kind: `deposit`, `withdrawal`, `contribution`, `wrap_close`.
    kind: &'static str,
    description: String,
    debit: &'a Account,
    credit: &'a Account,
    amount: Decimal,
    date: NaiveDate,
    /// What the entry is about (customer, wrap), merged with who asked.
    metadata: serde_json::Value,
}

/// Posts `t` in `txn`. The entry's own idempotency key is fresh: the request's
/// `Idempotency-Key` is enforced around the whole request, which also covers the rows written
/// beside the entry.
async fn post(
    txn: &DatabaseTransaction,
    books: &Ledger,
    who: Who<'_>,
    t: Transfer<'_>,
) -> Result<Entry, LedgerError> {
    let mut metadata = t.metadata;
    if let Some(m) = metadata.as_object_mut() {
        m.insert("request_id".into(), json!(who.request_id));
        m.insert("client_id".into(), json!(who.client_id));
    }
    let id = Uuid::now_v7();
    let entry = NewEntry {
        tenant_id: t.tenant_id,
        idempotency_key: format!("{}:{id}", t.kind),
        kind: t.kind.to_owned(),
        effective_date: t.date,
        description: t.description,
        metadata,
        postings: vec![
            NewPosting::debit(t.debit.id, &t.debit.asset, t.amount),
            NewPosting::credit(t.credit.id, &t.credit.asset, t.amount),
        ],
        hold: None,
    };
    let mut posted = books.post_batch_in(txn, vec![entry]).await?;
    posted
        .pop()
        .map(|p| p.entry)
        .ok_or_else(|| LedgerError::Corrupt("the ledger returned no entry".into()))
}

async fn account_now<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    code: &str,
) -> Result<Account, LedgerError> {
    ledger::store::account_by_code(db, tenant_id, code)
        .await?
        .ok_or_else(|| LedgerError::Corrupt(format!("account {code} vanished")))
}

/// What `account` has available (holds deducted), in units of its asset (`scale` decimals).
fn available(account: &Account, scale: u32) -> Decimal {
    ledger::asset::decimal_of(account.balance.available(account.normal_side), scale)
}

// ---------------------------------------------------------------------------------------
// A customer's cash

/// Which way a customer's cash moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A deposit from the bank's settlement into the customer's account.
    In,
    /// A withdrawal from the customer's account to the bank.
    Out,
}

/// A deposit or withdrawal of a customer's cash, as asked (the amount already checked against
/// the currency's bound by the caller's parsing: [`check_amount`]).
#[derive(Debug)]
pub struct CashMove<'a> {
    pub customer: &'a Customer,
    pub asset: &'a Asset,
    pub amount: Decimal,
    pub direction: Direction,
    pub reference: Option<&'a str>,
    pub date: NaiveDate,
}

/// What a cash movement booked: its entry and the customer's cash account after it.
#[derive(Debug)]
pub struct CashMoved {
    pub entry: Entry,
    pub cash: Account,
}

/// `amount` checked as a positive amount of `asset`, exact to its scale and at most its
/// `[limits]` bound ([`ledger::amount::check_money`], the one check of a single amount).
pub fn check_amount(
    limits: &AmountLimits,
    field: &str,
    amount: Decimal,
    asset: &Asset,
) -> Result<Decimal, Invalid> {
    check_money(field, amount, &limits.bound(asset))?;
    Ok(amount)
}

/// Moves a customer's cash between the distributor's omnibus and the customer's account: a
/// closed customer takes no deposit; a withdrawal never exceeds what is available.
pub async fn move_cash(
    txn: &DatabaseTransaction,
    books: &Ledger,
    who: Who<'_>,
    m: &CashMove<'_>,
) -> Result<CashMoved, MoveError> {
    let c = m.customer;
    if c.status != CustomerStatus::Active && m.direction == Direction::In {
        return Err(MoveError::Conflict(format!("customer {} is closed", c.id)));
    }
    let code = &m.asset.code;
    let cash = customer_cash(txn, books, c.tenant_id, c.id, code).await?;
    let omnibus = omnibus(txn, books, c.tenant_id, code).await?;
    let (kind, debit, credit, description) = match m.direction {
        Direction::In => (
            "deposit",
            &omnibus,
            &cash,
            format!("deposit into customer {}", c.external_ref),
        ),
        Direction::Out => {
            let available = available(&cash, m.asset.scale);
            if m.amount > available {
                return Err(invalid(
                    "amount",
                    format!(
                        "{} {code} is more than the available balance of {available} {code}",
                        m.amount
                    ),
                ));
            }
            (
                "withdrawal",
                &cash,
                &omnibus,
                format!("withdrawal from customer {}", c.external_ref),
            )
        }
    };
    let entry = post(
        txn,
        books,
        who,
        Transfer {
            tenant_id: c.tenant_id,
            kind,
            description,
            debit,
            credit,
            amount: m.amount,
            date: m.date,
            metadata: json!({ "customer_id": c.id, "reference": m.reference }),
        },
    )
    .await?;
    let cash = account_now(txn, c.tenant_id, &cash.code).await?;
    Ok(CashMoved { entry, cash })
}

// ---------------------------------------------------------------------------------------
// Contributions

/// A contribution as asked: `amount` of the wrap's currency, not yet checked.
#[derive(Debug)]
pub struct Contribution<'a> {
    pub tenant_id: Uuid,
    pub wrap_id: Uuid,
    pub amount: Decimal,
    pub limits: &'a AmountLimits,
    pub date: NaiveDate,
}

/// What a contribution booked.
#[derive(Debug)]
pub struct Contributed {
    pub entry: Entry,
    pub amount: Decimal,
    /// The wrap's status after it (`active`: a wrap's first money activates it).
    pub status: WrapStatus,
    pub wrap_cash: Account,
    pub customer_cash: Account,
    pub scale: u32,
}

fn no_wrap(id: Uuid) -> MoveError {
    MoveError::NotFound(format!("no wrap {id}"))
}

/// Moves cash from the customer's account into the wrap, by the one contribution rule
/// ([`check_contribution`]), and activates a wrap's first money.
pub async fn contribute(
    txn: &DatabaseTransaction,
    books: &Ledger,
    who: Who<'_>,
    c: &Contribution<'_>,
    now: DateTime<Utc>,
) -> Result<Contributed, MoveError> {
    let (tenant_id, id) = (c.tenant_id, c.wrap_id);
    let wrap = store::wrap(txn, WrapScope::Distributor(tenant_id), id, true)
        .await?
        .ok_or_else(|| no_wrap(id))?;
    let asset = books.asset_in(txn, &wrap.currency).await?;
    let amount = check_amount(c.limits, "amount", c.amount, &asset)?;
    // An agreement that is no longer active has no offer.
    let offer = if wrap.status.accepts_money() {
        match crate::market::store::offer(txn, tenant_id, wrap.agreement_id, c.date).await {
            Ok(o) => Some(o),
            Err(tenants::TenantsError::NotFound) => None,
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    let customer_cash =
        customer_cash(txn, books, tenant_id, wrap.customer_id, &wrap.currency).await?;
    let facts = ContributionFacts {
        wrap_status: wrap.status,
        agreement_status: if offer.is_some() {
            "active"
        } else {
            "inactive"
        },
        amount,
        min_contribution: offer.as_ref().map(|o| o.terms.min_contribution),
        min_initial_investment: offer
            .as_ref()
            .map_or(Decimal::ZERO, |o| o.strategy.min_initial_investment),
        available: available(&customer_cash, asset.scale),
    };
    if let Err(refusal) = check_contribution(&facts) {
        use ContributionRefusal as R;
        let ccy = &wrap.currency;
        return Err(match refusal {
            R::WrapTakesNoMoney(status) => MoveError::Conflict(format!(
                "wrap {id} is {}: it takes no contributions",
                status.as_str()
            )),
            R::AgreementNotActive(_) => MoveError::Conflict(format!(
                "the wrap's agreement {} is no longer active",
                wrap.agreement_id
            )),
            R::BelowMinimum { minimum } => invalid(
                "amount",
                format!(
                    "{amount} is below the agreement's minimum contribution of {minimum} {ccy}"
                ),
            ),
            R::BelowInitialMinimum { minimum } => invalid(
                "amount",
                format!(
                    "the first contribution must be at least the strategy's minimum initial \
                     investment of {minimum} {ccy}"
                ),
            ),
            R::InsufficientCash { available } => invalid(
                "amount",
                format!("{amount} {ccy} is more than the available balance of {available} {ccy}"),
            ),
        });
    }
    let wrap_cash = account_now(txn, tenant_id, &wrap_cash_code(id)).await?;
    let entry = post(
        txn,
        books,
        who,
        Transfer {
            tenant_id,
            kind: "contribution",
            description: format!("contribution to wrap {}", wrap.name),
            debit: &customer_cash,
            credit: &wrap_cash,
            amount,
            date: c.date,
            metadata: json!({ "customer_id": wrap.customer_id, "wrap_id": id }),
        },
    )
    .await?;
    let status = if wrap.status == WrapStatus::Open {
        store::set_wrap_status(txn, tenant_id, id, WrapStatus::Active, now).await?;
        WrapStatus::Active
    } else {
        wrap.status
    };
    Ok(Contributed {
        entry,
        amount,
        status,
        wrap_cash: account_now(txn, tenant_id, &wrap_cash.code).await?,
        customer_cash: account_now(txn, tenant_id, &customer_cash.code).await?,
        scale: asset.scale,
    })
}

// ---------------------------------------------------------------------------------------
// Withdrawals and switches: pending until end of day sells units

/// A withdrawal from a wrap or a switch into another wrap of the same customer, as asked.
#[derive(Debug)]
pub struct Payout<'a> {
    pub tenant_id: Uuid,
    pub wrap_id: Uuid,
    pub kind: MovementKind,
    /// An amount, or `None` with `all` for everything.
    pub amount: Option<Decimal>,
    pub all: Option<bool>,
    /// The switch's destination.
    pub destination: Option<Uuid>,
    pub limits: &'a AmountLimits,
    pub today: NaiveDate,
}

/// Value less what pending movements already ask for; zero when one asks for everything.
pub fn available_to_withdraw(value: Decimal, pending: &[Movement]) -> Decimal {
    let mut left = value;
    for m in pending {
        match m.amount {
            None => return Decimal::ZERO,
            Some(a) => left -= a,
        }
    }
    left.max(Decimal::ZERO)
}

/// Records a withdrawal or switch as a pending movement that end of day fulfils by selling
/// units: only an active wrap pays out, never more than its value less what is already
/// pending, and a switch goes to another open or active wrap of the same customer in the same
/// currency.
pub async fn request_payout(
    txn: &DatabaseTransaction,
    books: &Ledger,
    p: &Payout<'_>,
    now: DateTime<Utc>,
) -> Result<Movement, MoveError> {
    let (tenant_id, id) = (p.tenant_id, p.wrap_id);
    let scope = WrapScope::Distributor(tenant_id);
    // Wrap rows in id order (module doc, "Locks").
    if let Some(to) = p.destination
        && to < id
    {
        store::wrap(txn, scope, to, true).await?;
    }
    let wrap = store::wrap(txn, scope, id, true)
        .await?
        .ok_or_else(|| no_wrap(id))?;
    let asset = books.asset_in(txn, &wrap.currency).await?;
    let amount = match (p.amount, p.all) {
        (Some(a), None | Some(false)) => Some(check_amount(p.limits, "amount", a, &asset)?),
        (None, Some(true)) => None,
        (Some(_), Some(true)) => {
            return Err(invalid("all", "give either amount or all: true, not both"));
        }
        (None, _) => {
            return Err(invalid(
                "amount",
                "is required (or all: true for everything)",
            ));
        }
    };
    if wrap.status != WrapStatus::Active {
        return Err(MoveError::Conflict(format!(
            "wrap {id} is {}: only an active wrap pays out",
            wrap.status.as_str()
        )));
    }
    if let Some(to) = p.destination {
        let target = match store::wrap(txn, scope, to, true).await? {
            Some(t) if t.customer_id == wrap.customer_id && t.id != id => t,
            Some(t) if t.id == id => {
                return Err(invalid("to_wrap_id", "is the wrap being switched from"));
            }
            _ => {
                return Err(invalid(
                    "to_wrap_id",
                    format!("no wrap {to} of the same customer"),
                ));
            }
        };
        if !target.status.accepts_money() {
            return Err(invalid(
                "to_wrap_id",
                format!("wrap {to} is {} and takes no money", target.status.as_str()),
            ));
        }
        if target.currency != wrap.currency {
            return Err(invalid(
                "to_wrap_id",
                format!("wrap {to} is in {}, not {}", target.currency, wrap.currency),
            ));
        }
    }
    let pending = store::movements(txn, tenant_id, id, true, wrap.currency_scale).await?;
    let valuation = value::value_now(txn, books, &wrap, p.today).await?;
    let available = available_to_withdraw(valuation.value, &pending);
    if pending.iter().any(|m| m.amount.is_none()) {
        return Err(MoveError::Conflict(format!(
            "wrap {id} already has a pending movement of everything it holds"
        )));
    }
    match amount {
        Some(a) if a > available => {
            return Err(invalid(
                "amount",
                format!(
                    "{a} {} is more than is available to withdraw, {available} {} (value {} less \
                     pending movements)",
                    wrap.currency, wrap.currency, valuation.value
                ),
            ));
        }
        None if valuation.value <= Decimal::ZERO => {
            return Err(MoveError::Conflict(format!("wrap {id} holds nothing")));
        }
        _ => {}
    }
    let movement = pending_movement(id, p.kind, amount, p.destination, now);
    store::insert_movement(txn, tenant_id, &movement, wrap.currency_scale).await?;
    Ok(movement)
}

fn pending_movement(
    wrap_id: Uuid,
    kind: MovementKind,
    amount: Option<Decimal>,
    destination_wrap_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> Movement {
    Movement {
        id: Uuid::now_v7(),
        wrap_id,
        kind,
        amount,
        destination_wrap_id,
        status: MovementStatus::Pending,
        requested_at: DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now),
        resolved_at: None,
        paid: None,
        paid_on: None,
    }
}

// ---------------------------------------------------------------------------------------
// Close

/// What a close did.
#[derive(Debug)]
pub enum Closed {
    /// Closed at once: the wrap held only cash, had nothing pending and owed no fees; its cash
    /// (`amount`, maybe zero) was paid back by `entry`.
    Now {
        entry: Option<Entry>,
        amount: Decimal,
    },
    /// `closing` until end of day has sold everything, collected the fees owed and paid the
    /// rest back.
    Pending(Movement),
}

/// Closes wrap `wrap_id`: its plans are cancelled and it takes no more money. A wrap that
/// holds only cash and owes no fees closes at once, its cash paid back to the customer's
/// account on `date`; otherwise it becomes `closing` with a pending close movement. Fees
/// accrued and not collected are paid before the customer: end of day's billing collects
/// them (`eod::trading`, "Fees first"), so such a wrap closes there.
pub async fn close(
    txn: &DatabaseTransaction,
    books: &Ledger,
    who: Who<'_>,
    tenant_id: Uuid,
    wrap_id: Uuid,
    date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Closed, MoveError> {
    let id = wrap_id;
    let wrap = store::wrap(txn, WrapScope::Distributor(tenant_id), id, true)
        .await?
        .ok_or_else(|| no_wrap(id))?;
    if !matches!(wrap.status, WrapStatus::Open | WrapStatus::Active) {
        return Err(MoveError::Conflict(format!(
            "wrap {id} is already {}",
            wrap.status.as_str()
        )));
    }
    // Read under the wrap's lock (and so the book's): nothing credits it meanwhile.
    let accounts = store::wrap_accounts(txn, tenant_id, id).await?;
    let cash_code = wrap_cash_code(id);
    let holds_only_cash = accounts.iter().all(|a| {
        a.code == cash_code
            || (a.balance.posted(a.normal_side) == 0 && a.balance.pending(a.normal_side) == 0)
    });
    let pending = store::movements(txn, tenant_id, id, true, wrap.currency_scale).await?;
    let owes_fees = !crate::eod::fees::owed_by(txn, tenant_id, &[id])
        .await?
        .is_empty();
    store::cancel_all_plans(txn, tenant_id, id, now).await?;
    let closed = if holds_only_cash && pending.is_empty() && !owes_fees {
        let cash = accounts
            .iter()
            .find(|a| a.code == cash_code)
            .ok_or_else(|| LedgerError::Corrupt(format!("account {cash_code} missing")))?;
        let minor = cash.balance.posted(cash.normal_side);
        let amount = ledger::asset::decimal_of(minor, wrap.currency_scale);
        let entry = if minor > 0 {
            let customer_cash =
                customer_cash(txn, books, tenant_id, wrap.customer_id, &wrap.currency).await?;
            Some(
                post(
                    txn,
                    books,
                    who,
                    Transfer {
                        tenant_id,
                        kind: "wrap_close",
                        description: format!("wrap {} closed: cash paid back", wrap.name),
                        debit: cash,
                        credit: &customer_cash,
                        amount,
                        date,
                        metadata: json!({ "customer_id": wrap.customer_id, "wrap_id": id }),
                    },
                )
                .await?,
            )
        } else {
            None
        };
        store::set_wrap_status(txn, tenant_id, id, WrapStatus::Closed, now).await?;
        Closed::Now { entry, amount }
    } else {
        let movement = pending_movement(id, MovementKind::Close, None, None, now);
        store::insert_movement(txn, tenant_id, &movement, wrap.currency_scale).await?;
        store::set_wrap_status(txn, tenant_id, id, WrapStatus::Closing, now).await?;
        Closed::Pending(movement)
    };
    Ok(closed)
}

// ---------------------------------------------------------------------------------------
// The contribution rule

/// What a contribution is checked against, in the wrap's currency.
#[derive(Debug, Clone, Copy)]
pub struct ContributionFacts<'a> {
    /// The wrap's status (`open`, `active`, `closing`, `closed`).
    pub wrap_status: WrapStatus,
    /// The status of the wrap's agreement (`active` or another).
    pub agreement_status: &'a str,
    pub amount: Decimal,
    /// The agreement's minimum per contribution, when this contribution must meet it (a
    /// plan's amount was checked when the plan was set up).
    pub min_contribution: Option<Decimal>,
    /// The strategy's minimum first investment (a wrap still `open` has had none).
    pub min_initial_investment: Decimal,
    /// What the customer's cash account has available (holds counted).
    pub available: Decimal,
}

/// Why a contribution is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContributionRefusal {
    /// The wrap is closing or closed.
    WrapTakesNoMoney(WrapStatus),
    /// The agreement is no longer active.
    AgreementNotActive(String),
    /// Below the agreement's minimum contribution.
    BelowMinimum { minimum: Decimal },
    /// A first contribution below the strategy's minimum initial investment.
    BelowInitialMinimum { minimum: Decimal },
    /// More than the customer's available cash.
    InsufficientCash { available: Decimal },
}

/// The contribution rule, checked in this order: the wrap takes money, its agreement is
/// active, the amount meets the minimum per contribution and, for a wrap's first money, the
/// minimum initial investment, and the customer's cash covers it.
pub fn check_contribution(f: &ContributionFacts<'_>) -> Result<(), ContributionRefusal> {
    if !f.wrap_status.accepts_money() {
        return Err(ContributionRefusal::WrapTakesNoMoney(f.wrap_status));
    }
    if f.agreement_status != "active" {
        return Err(ContributionRefusal::AgreementNotActive(
            f.agreement_status.to_owned(),
        ));
    }
    if let Some(minimum) = f.min_contribution
        && f.amount < minimum
    {
        return Err(ContributionRefusal::BelowMinimum { minimum });
    }
    if f.wrap_status == WrapStatus::Open && f.amount < f.min_initial_investment {
        return Err(ContributionRefusal::BelowInitialMinimum {
            minimum: f.min_initial_investment,
        });
    }
    if f.amount > f.available {
        return Err(ContributionRefusal::InsufficientCash {
            available: f.available,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(status: WrapStatus, amount: i64, available: i64) -> ContributionFacts<'static> {
        ContributionFacts {
            wrap_status: status,
            agreement_status: "active",
            amount: Decimal::from(amount),
            min_contribution: Some(Decimal::from(1_000)),
            min_initial_investment: Decimal::from(100_000),
            available: Decimal::from(available),
        }
    }

    #[test]
    fn each_rule_refuses_in_order() {
        assert_eq!(
            check_contribution(&facts(WrapStatus::Active, 5_000, 9_000)),
            Ok(())
        );
        assert_eq!(
            check_contribution(&facts(WrapStatus::Closing, 5_000, 9_000)),
            Err(ContributionRefusal::WrapTakesNoMoney(WrapStatus::Closing))
        );
        let mut ended = facts(WrapStatus::Active, 5_000, 9_000);
        ended.agreement_status = "terminated";
        assert_eq!(
            check_contribution(&ended),
            Err(ContributionRefusal::AgreementNotActive("terminated".into()))
        );
        assert_eq!(
            check_contribution(&facts(WrapStatus::Active, 999, 9_000)),
            Err(ContributionRefusal::BelowMinimum {
                minimum: Decimal::from(1_000)
            })
        );
        // A first contribution must meet the initial minimum; later ones need not.
        assert_eq!(
            check_contribution(&facts(WrapStatus::Open, 50_000, 900_000)),
            Err(ContributionRefusal::BelowInitialMinimum {
                minimum: Decimal::from(100_000)
            })
        );
        assert_eq!(
            check_contribution(&facts(WrapStatus::Active, 50_000, 40_000)),
            Err(ContributionRefusal::InsufficientCash {
                available: Decimal::from(40_000)
            })
        );
    }
}
