//! Persistence of the virtual account layer ([`super`]): customers, wraps, pending
//! movements and plans. Every function takes the caller's connection or transaction, so a
//! workflow writes these rows and their ledger entries in one transaction.
//!
//! Isolation: every query names the distributor (`tenant_id`) that owns the row, or for a
//! manager's reads the manager (`manager_tenant_id`); a row of anyone else is simply not
//! found. Amounts are BIGINT minor units of the wrap's currency (`scale` is passed in).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, QueryResult, SqlErr, Value};
use uuid::Uuid;

use ledger::asset::{Amount, decimal_of};
use ledger::sql::typed::{exec, from_micros, get, micros, query, value_rows};
use ledger::sql::{Params, param};
use ledger::store::{ACCOUNT_COLS, account_from_row};
use ledger::{Account, LedgerError};

use super::{
    Customer, CustomerStatus, Frequency, Goal, Movement, MovementKind, MovementStatus, NewCustomer,
    NewPlan, Plan, PlanKind, PlanStatus, Scope, Wrap, WrapStatus,
};

/// Largest page of a list.
pub const MAX_PAGE: u64 = 500;

fn corrupt(what: &str, value: &str) -> LedgerError {
    LedgerError::Corrupt(format!("unknown {what} {value:?}"))
}

fn minor(amount: Decimal, scale: u32) -> Result<i64, LedgerError> {
    Amount::try_new(amount, scale)
        .map(Amount::minor)
        .map_err(|reason| LedgerError::InvalidAmount {
            asset: format!("scale {scale}"),
            value: amount.to_string(),
            reason,
        })
}

/// Keeps `limit` items and returns the cursor of the next page, if there is one (the
/// queries fetch `limit + 1`).
fn page<T>(mut items: Vec<T>, limit: u64, id: impl Fn(&T) -> Uuid) -> (Vec<T>, Option<Uuid>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(id);
        (items, next)
    } else {
        (items, None)
    }
}

fn fetch_limit(limit: u64) -> i64 {
    i64::try_from(limit.clamp(1, MAX_PAGE) + 1).unwrap_or(2)
}

// ---------------------------------------------------------------------------------------
// Customers

const CUSTOMER_COLS: &str = "id, tenant_id, external_ref, name, date_of_birth, risk_tolerance, \
     status, created_at, branch_id, adviser_id";

fn customer_from_row(row: &QueryResult) -> Result<Customer, LedgerError> {
    let status: String = get(row, 6)?;
    Ok(Customer {
        id: get(row, 0)?,
        tenant_id: get(row, 1)?,
        external_ref: get(row, 2)?,
        name: get(row, 3)?,
        date_of_birth: get::<Option<NaiveDate>>(row, 4)?,
        risk_tolerance: get(row, 5)?,
        status: CustomerStatus::parse(&status)
            .ok_or_else(|| corrupt("customer status", &status))?,
        created_at: from_micros(get(row, 7)?)?,
        branch_id: get(row, 8)?,
        adviser_id: get(row, 9)?,
    })
}

/// Inserts a customer; `Ok(None)` when the distributor already has one with that external
/// reference.
pub async fn insert_customer<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    new: &NewCustomer,
    now: DateTime<Utc>,
) -> Result<Option<Customer>, LedgerError> {
    let backend = db.get_database_backend();
    let customer = Customer {
        id: Uuid::now_v7(),
        tenant_id,
        external_ref: new.external_ref.clone(),
        name: new.name.clone(),
        date_of_birth: new.date_of_birth,
        risk_tolerance: new.risk_tolerance,
        status: CustomerStatus::Active,
        created_at: from_micros(micros(now))?,
        branch_id: None,
        adviser_id: None,
    };
    let q = format!(
        "INSERT INTO customers ({CUSTOMER_COLS}, updated_at) VALUES {}",
        value_rows(backend, 1, 11, 1)
    );
    let values: Vec<Value> = vec![
        customer.id.into(),
        tenant_id.into(),
        customer.external_ref.clone().into(),
        customer.name.clone().into(),
        customer.date_of_birth.into(),
        customer.risk_tolerance.into(),
        customer.status.as_str().into(),
        micros(now).into(),
        customer.branch_id.into(),
        customer.adviser_id.into(),
        micros(now).into(),
    ];
    match exec(db, q, values).await {
        Err(LedgerError::Storage(e))
            if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
        Ok(_) => Ok(Some(customer)),
    }
}

/// The distributor's customer `id`.
pub async fn customer<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<Customer>, LedgerError> {
    customer_row(db, tenant_id, id, false).await
}

/// [`customer`], locking its row on PostgreSQL for the rest of the write transaction: taken
/// before counting or changing the customer's wraps, so two concurrent openings cannot both
/// pass the limit (SQLite's write transaction is exclusive already).
pub async fn customer_for_update<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<Customer>, LedgerError> {
    customer_row(db, tenant_id, id, true).await
}

async fn customer_row<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
    for_update: bool,
) -> Result<Option<Customer>, LedgerError> {
    if for_update {
        // The book first: the platform's lock order (store/work.rs).
        ledger::store::lock_book(db, tenant_id).await?;
    }
    let b = db.get_database_backend();
    let q = format!(
        "SELECT {CUSTOMER_COLS} FROM customers WHERE tenant_id = {} AND id = {}{}",
        param(b, 1),
        param(b, 2),
        if for_update {
            ledger::sql::for_update(b)
        } else {
            ""
        }
    );
    let rows = query(db, q, vec![tenant_id.into(), id.into()]).await?;
    rows.first().map(customer_from_row).transpose()
}

/// Changes a customer's name, risk tolerance or status (the caller has validated them and
/// holds the row's lock); returns the customer as it is now, or `None` if there is none.
pub async fn update_customer<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
    change: &CustomerChange,
    now: DateTime<Utc>,
) -> Result<Option<Customer>, LedgerError> {
    let b = db.get_database_backend();
    let q = format!(
        "UPDATE customers SET name = COALESCE({}, name), risk_tolerance = COALESCE({}, risk_tolerance), \
         status = COALESCE({}, status), updated_at = {} WHERE tenant_id = {} AND id = {}",
        param(b, 1),
        param(b, 2),
        param(b, 3),
        param(b, 4),
        param(b, 5),
        param(b, 6)
    );
    exec(
        db,
        q,
        vec![
            change.name.clone().into(),
            change.risk_tolerance.into(),
            change.status.map(CustomerStatus::as_str).into(),
            micros(now).into(),
            tenant_id.into(),
            id.into(),
        ],
    )
    .await?;
    customer(db, tenant_id, id).await
}

/// Puts a customer in `branch_id` under `adviser_id` (the caller has checked both with
/// [`super::check_assignment`] and holds the row's lock); returns the customer as it is now.
pub async fn set_assignment<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
    branch_id: Uuid,
    adviser_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Option<Customer>, LedgerError> {
    let b = db.get_database_backend();
    let q = format!(
        "UPDATE customers SET branch_id = {}, adviser_id = {}, updated_at = {} \
         WHERE tenant_id = {} AND id = {}",
        param(b, 1),
        param(b, 2),
        param(b, 3),
        param(b, 4),
        param(b, 5)
    );
    exec(
        db,
        q,
        vec![
            branch_id.into(),
            adviser_id.into(),
            micros(now).into(),
            tenant_id.into(),
            id.into(),
        ],
    )
    .await?;
    customer(db, tenant_id, id).await
}

/// A change to a customer; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerChange {
    pub name: Option<String>,
    pub risk_tolerance: Option<i32>,
    pub status: Option<CustomerStatus>,
}

/// The distributor's customers in `scope`, in id (creation) order after `after`, optionally
/// only those with `status`; and the next page's cursor.
pub async fn customers<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    scope: Scope,
    status: Option<CustomerStatus>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<(Vec<Customer>, Option<Uuid>), LedgerError> {
    let b = db.get_database_backend();
    let mut conds = vec![format!("tenant_id = {}", param(b, 1))];
    let mut values: Vec<Value> = vec![tenant_id.into()];
    if let Scope::Branch(branch) = scope {
        values.push(branch.into());
        conds.push(format!("branch_id = {}", param(b, values.len())));
    }
    if let Some(s) = status {
        values.push(s.as_str().into());
        conds.push(format!("status = {}", param(b, values.len())));
    }
    if let Some(a) = after {
        values.push(a.into());
        conds.push(format!("id > {}", param(b, values.len())));
    }
    values.push(fetch_limit(limit).into());
    let q = format!(
        "SELECT {CUSTOMER_COLS} FROM customers WHERE {} ORDER BY id LIMIT {}",
        conds.join(" AND "),
        param(b, values.len())
    );
    let rows = query(db, q, values).await?;
    let items = rows
        .iter()
        .map(customer_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page(items, limit.clamp(1, MAX_PAGE), |c| c.id))
}

/// Longest search text for [`customers_matching`], in characters.
pub const MAX_SEARCH_CHARS: usize = 100;

/// Up to `limit` customers of `tenant_id` whose name or external reference contains `text`
/// (ASCII letters without case), ordered by id: the console's customer search. `%`, `_` and
/// `\` in `text` match themselves.
pub async fn customers_matching<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    scope: Scope,
    text: &str,
    limit: u64,
) -> Result<Vec<Customer>, LedgerError> {
    let b = db.get_database_backend();
    let escaped: String = text
        .chars()
        .take(MAX_SEARCH_CHARS)
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c.to_ascii_lowercase()],
        })
        .collect();
    let pattern = format!("%{escaped}%");
    let limit = limit.clamp(1, MAX_PAGE);
    // Values in the order the statement names them (SQLite binds `?` by position).
    let mut values: Vec<Value> = vec![tenant_id.into(), pattern.clone().into(), pattern.into()];
    let branch = match scope {
        Scope::All => String::new(),
        Scope::Branch(branch) => {
            values.push(branch.into());
            format!(" AND branch_id = {}", param(b, values.len()))
        }
    };
    values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    let q = format!(
        "SELECT {CUSTOMER_COLS} FROM customers WHERE tenant_id = {} \
         AND (lower(name) LIKE {} ESCAPE '\\' OR lower(external_ref) LIKE {} ESCAPE '\\'){branch} \
         ORDER BY id LIMIT {}",
        param(b, 1),
        param(b, 2),
        param(b, 3),
        param(b, values.len())
    );
    let rows = query(db, q, values).await?;
    rows.iter().map(customer_from_row).collect()
}

/// The ledger accounts of a customer's real account (cash per currency).
pub async fn customer_accounts<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    customer_id: Uuid,
) -> Result<Vec<Account>, LedgerError> {
    accounts_with_prefix(db, tenant_id, &format!("customer:{customer_id}:")).await
}

/// The ledger accounts of a wrap (cash, and units per instrument).
pub async fn wrap_accounts<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    wrap_id: Uuid,
) -> Result<Vec<Account>, LedgerError> {
    accounts_with_prefix(db, tenant_id, &format!("wrap:{wrap_id}:")).await
}

async fn accounts_with_prefix<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    prefix: &str,
) -> Result<Vec<Account>, LedgerError> {
    let b = db.get_database_backend();
    // A range on the (tenant_id, code) unique index rather than LIKE, whose use of the index
    // depends on the backend's collation. ';' is the character after ':'.
    let upper = format!("{};", prefix.trim_end_matches(':'));
    let q = format!(
        "SELECT {ACCOUNT_COLS} FROM ledger_accounts WHERE tenant_id = {} AND code >= {} AND code < {} ORDER BY code",
        param(b, 1),
        param(b, 2),
        param(b, 3)
    );
    let rows = query(db, q, vec![tenant_id.into(), prefix.into(), upper.into()]).await?;
    rows.iter().map(account_from_row).collect()
}

// ---------------------------------------------------------------------------------------
// Wraps

const WRAP_COLS: &str = "id, tenant_id, customer_id, agreement_id, manager_tenant_id, strategy_id, \
     currency, name, status, goal_name, goal_target_amount, goal_target_date, cash_account_id, \
     opened_at, closed_at, currency_scale";

fn wrap_from_row(row: &QueryResult) -> Result<Wrap, LedgerError> {
    let status: String = get(row, 8)?;
    let scale = u32::try_from(get::<i32>(row, 15)?)
        .map_err(|_| LedgerError::Corrupt("negative currency scale".to_owned()))?;
    let goal = match (
        get::<Option<String>>(row, 9)?,
        get::<Option<i64>>(row, 10)?,
        get::<Option<NaiveDate>>(row, 11)?,
    ) {
        (Some(name), Some(target), Some(date)) => Some(Goal {
            name,
            target_amount: decimal_of(i128::from(target), scale),
            target_date: date,
        }),
        _ => None,
    };
    Ok(Wrap {
        id: get(row, 0)?,
        tenant_id: get(row, 1)?,
        customer_id: get(row, 2)?,
        agreement_id: get(row, 3)?,
        manager_tenant_id: get(row, 4)?,
        strategy_id: get(row, 5)?,
        currency: get(row, 6)?,
        name: get(row, 7)?,
        status: WrapStatus::parse(&status).ok_or_else(|| corrupt("wrap status", &status))?,
        goal,
        cash_account_id: get(row, 12)?,
        opened_at: from_micros(get(row, 13)?)?,
        closed_at: get::<Option<i64>>(row, 14)?.map(from_micros).transpose()?,
        currency_scale: scale,
    })
}

/// Inserts a wrap (its cash account already opened in the same transaction).
pub async fn insert_wrap<C: ConnectionTrait>(db: &C, wrap: &Wrap) -> Result<(), LedgerError> {
    let scale = wrap.currency_scale;
    let b = db.get_database_backend();
    let q = format!(
        "INSERT INTO wraps ({WRAP_COLS}, updated_at) VALUES {}",
        value_rows(b, 1, 17, 1)
    );
    let goal_target = wrap
        .goal
        .as_ref()
        .map(|g| minor(g.target_amount, scale))
        .transpose()?;
    let values: Vec<Value> = vec![
        wrap.id.into(),
        wrap.tenant_id.into(),
        wrap.customer_id.into(),
        wrap.agreement_id.into(),
        wrap.manager_tenant_id.into(),
        wrap.strategy_id.into(),
        wrap.currency.clone().into(),
        wrap.name.clone().into(),
        wrap.status.as_str().into(),
        wrap.goal.as_ref().map(|g| g.name.clone()).into(),
        goal_target.into(),
        wrap.goal.as_ref().map(|g| g.target_date).into(),
        wrap.cash_account_id.into(),
        micros(wrap.opened_at).into(),
        wrap.closed_at.map(micros).into(),
        i32::try_from(scale).unwrap_or(i32::MAX).into(),
        micros(wrap.opened_at).into(),
    ];
    exec(db, q, values).await?;
    Ok(())
}

/// Whose wraps a query may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrapScope {
    /// The distributor that opened them.
    Distributor(Uuid),
    /// The manager whose strategies they follow.
    Manager(Uuid),
    /// Every wrap (the platform operator).
    All,
}

impl WrapScope {
    fn condition(self, backend: sea_orm::DbBackend, n: usize) -> (String, Value) {
        match self {
            // A condition that binds its parameter too, so numbering stays the same.
            Self::All => (
                format!("{} IS NOT NULL", param(backend, n)),
                Value::from(true),
            ),
            Self::Distributor(id) => (format!("tenant_id = {}", param(backend, n)), id.into()),
            Self::Manager(id) => (
                format!("manager_tenant_id = {}", param(backend, n)),
                id.into(),
            ),
        }
    }
}

/// Wrap `id` if `scope` may see it. Pass `for_update` inside a write transaction that is about
/// to change the wrap or its movements: on PostgreSQL it locks the row, so two requests on
/// one wrap (a withdrawal and a close) see each other's result instead of both passing their
/// checks (SQLite's write transaction is exclusive already).
pub async fn wrap<C: ConnectionTrait>(
    db: &C,
    scope: WrapScope,
    id: Uuid,
    for_update: bool,
) -> Result<Option<Wrap>, LedgerError> {
    let b = db.get_database_backend();
    let mut owner = None;
    if for_update && b == sea_orm::DbBackend::Postgres {
        // The book first: the platform's lock order (store/work.rs). The wrap's book is its
        // distributor's; another scope learns it from the row itself.
        let tenant_id = match scope {
            WrapScope::Distributor(t) => Some(t),
            _ => Box::pin(wrap(db, scope, id, false))
                .await?
                .map(|w| w.tenant_id),
        };
        match tenant_id {
            Some(t) => ledger::store::lock_book(db, t).await?,
            None => return Ok(None),
        }
        owner = tenant_id;
    }
    let (cond, v) = scope.condition(b, 1);
    let mut values = vec![v, id.into()];
    // A lock names the one tenant whose row it takes (one shard on Citus; deploy/SCALING.md).
    let one_tenant = match owner {
        Some(t) => {
            values.push(t.into());
            format!(" AND tenant_id = {}", param(b, 3))
        }
        None => String::new(),
    };
    let q = format!(
        "SELECT {WRAP_COLS} FROM wraps WHERE {cond} AND id = {}{one_tenant}{}",
        param(b, 2),
        if for_update {
            ledger::sql::for_update(b)
        } else {
            ""
        }
    );
    let rows = query(db, q, values).await?;
    rows.first().map(wrap_from_row).transpose()
}

/// Filters of a wrap list.
#[derive(Debug, Clone, Default)]
pub struct WrapFilter {
    pub customer_id: Option<Uuid>,
    pub status: Option<WrapStatus>,
    pub strategy_id: Option<Uuid>,
}

/// Wraps `scope` may see, in id order after `after`, filtered; and the next page's cursor.
pub async fn wraps<C: ConnectionTrait>(
    db: &C,
    scope: WrapScope,
    filter: &WrapFilter,
    after: Option<Uuid>,
    limit: u64,
) -> Result<(Vec<Wrap>, Option<Uuid>), LedgerError> {
    let b = db.get_database_backend();
    let (cond, v) = scope.condition(b, 1);
    let mut conds = vec![cond];
    let mut values = vec![v];
    if let Some(c) = filter.customer_id {
        values.push(c.into());
        conds.push(format!("customer_id = {}", param(b, values.len())));
    }
    if let Some(s) = filter.status {
        values.push(s.as_str().into());
        conds.push(format!("status = {}", param(b, values.len())));
    }
    if let Some(s) = filter.strategy_id {
        values.push(s.into());
        conds.push(format!("strategy_id = {}", param(b, values.len())));
    }
    if let Some(a) = after {
        values.push(a.into());
        conds.push(format!("id > {}", param(b, values.len())));
    }
    values.push(fetch_limit(limit).into());
    let q = format!(
        "SELECT {WRAP_COLS} FROM wraps WHERE {} ORDER BY id LIMIT {}",
        conds.join(" AND "),
        param(b, values.len())
    );
    let rows = query(db, q, values).await?;
    let items = rows
        .iter()
        .map(wrap_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page(items, limit.clamp(1, MAX_PAGE), |w| w.id))
}

/// How many of the customer's wraps are not closed.
pub async fn count_live_wraps<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    customer_id: Uuid,
) -> Result<i64, LedgerError> {
    let b = db.get_database_backend();
    let q = format!(
        "SELECT COUNT(*) FROM wraps WHERE tenant_id = {} AND customer_id = {} AND status <> 'closed'",
        param(b, 1),
        param(b, 2)
    );
    let rows = query(db, q, vec![tenant_id.into(), customer_id.into()]).await?;
    rows.first().map(|r| get::<i64>(r, 0)).unwrap_or(Ok(0))
}

/// Moves a wrap to `status` (stamping `closed_at` when it closes).
pub async fn set_wrap_status<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
    status: WrapStatus,
    now: DateTime<Utc>,
) -> Result<(), LedgerError> {
    let b = db.get_database_backend();
    let closed_at = (status == WrapStatus::Closed).then(|| micros(now));
    let q = format!(
        "UPDATE wraps SET status = {}, closed_at = {}, updated_at = {} WHERE tenant_id = {} AND id = {}",
        param(b, 1),
        param(b, 2),
        param(b, 3),
        param(b, 4),
        param(b, 5)
    );
    exec(
        db,
        q,
        vec![
            status.as_str().into(),
            closed_at.into(),
            micros(now).into(),
            tenant_id.into(),
            id.into(),
        ],
    )
    .await?;
    Ok(())
}

/// End of day's transitions of many wraps at once: each of `ids` in status `from` moves to
/// `to` (stamping `closed_at` when it closes); a wrap no longer in `from` is left alone.
/// Returns how many moved.
pub async fn advance_wraps<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    ids: &[Uuid],
    from: WrapStatus,
    to: WrapStatus,
    now: DateTime<Utc>,
) -> Result<u64, LedgerError> {
    let mut moved = 0;
    for chunk in ids.chunks(ledger::sql::IN_CHUNK) {
        // Pushed in the order the placeholders appear: SQLite binds each `?` by position.
        let mut pa = Params::new(db.get_database_backend());
        let to_s = pa.push(to.as_str());
        let at = pa.push(micros(now));
        // A placeholder of its own: SQLite numbers each `?` anew.
        let closed_at = if to == WrapStatus::Closed {
            format!(", closed_at = {}", pa.push(micros(now)))
        } else {
            String::new()
        };
        let t = pa.push(tenant_id);
        let list = pa.list(chunk);
        let from_s = pa.push(from.as_str());
        let q = format!(
            "UPDATE wraps SET status = {to_s}, updated_at = {at}{closed_at} \
             WHERE tenant_id = {t} AND id IN {list} AND status = {from_s}"
        );
        moved += exec(db, q, pa.values).await?;
    }
    Ok(moved)
}

// ---------------------------------------------------------------------------------------
// Movements waiting for end of day

/// The columns a new movement is written with.
const MOVEMENT_COLS: &str =
    "id, wrap_id, kind, amount, destination_wrap_id, status, requested_at, resolved_at";

/// The columns of a movement, in the order [`movement_from_row`] reads them: the written ones,
/// then what end of day paid (`paid`, minor units, and its business date).
const MOVEMENT_READ_COLS: &str = "id, wrap_id, kind, amount, destination_wrap_id, status, \
     requested_at, resolved_at, paid, paid_date";

fn movement_from_row(row: &QueryResult, scale: u32) -> Result<Movement, LedgerError> {
    let kind: String = get(row, 2)?;
    let status: String = get(row, 5)?;
    Ok(Movement {
        id: get(row, 0)?,
        wrap_id: get(row, 1)?,
        kind: MovementKind::parse(&kind).ok_or_else(|| corrupt("movement kind", &kind))?,
        amount: get::<Option<i64>>(row, 3)?.map(|m| decimal_of(i128::from(m), scale)),
        destination_wrap_id: get(row, 4)?,
        status: MovementStatus::parse(&status)
            .ok_or_else(|| corrupt("movement status", &status))?,
        requested_at: from_micros(get(row, 6)?)?,
        resolved_at: get::<Option<i64>>(row, 7)?.map(from_micros).transpose()?,
        paid: get::<Option<i64>>(row, 8)?.map(|m| decimal_of(i128::from(m), scale)),
        paid_on: get(row, 9)?,
    })
}

/// End of day's payouts: each pending movement of `paid` (id, minor units paid) becomes
/// `fulfilled`, with what it paid and the business date it paid on; one no longer pending is
/// left alone.
pub async fn fulfil_movements<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    paid: &[(Uuid, i64)],
    date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), LedgerError> {
    // One statement per chunk; VALUES columns are named column1, column2 on both databases.
    for chunk in paid.chunks(ledger::sql::IN_CHUNK) {
        let mut pa = Params::new(db.get_database_backend());
        let r = pa.push(micros(now));
        let d = pa.push(date);
        let rows: Vec<String> = chunk
            .iter()
            .map(|(id, paid)| pa.row(vec![(*id).into(), (*paid).into()]))
            .collect();
        let t = pa.push(tenant_id);
        let q = format!(
            "UPDATE wrap_movements SET status = 'fulfilled', resolved_at = {r}, \
             paid = v.column2, paid_date = {d} FROM (VALUES {}) AS v \
             WHERE wrap_movements.tenant_id = {t} AND wrap_movements.id = v.column1 \
             AND wrap_movements.status = 'pending'",
            rows.join(", ")
        );
        exec(db, q, pa.values).await?;
    }
    Ok(())
}

/// Records a pending movement of the distributor's wrap.
pub async fn insert_movement<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    m: &Movement,
    scale: u32,
) -> Result<(), LedgerError> {
    let b = db.get_database_backend();
    let q = format!(
        "INSERT INTO wrap_movements (tenant_id, {MOVEMENT_COLS}) VALUES {}",
        value_rows(b, 1, 9, 1)
    );
    let amount = m.amount.map(|a| minor(a, scale)).transpose()?;
    let values: Vec<Value> = vec![
        tenant_id.into(),
        m.id.into(),
        m.wrap_id.into(),
        m.kind.as_str().into(),
        amount.into(),
        m.destination_wrap_id.into(),
        m.status.as_str().into(),
        micros(m.requested_at).into(),
        m.resolved_at.map(micros).into(),
    ];
    exec(db, q, values).await?;
    Ok(())
}

/// A wrap's movements, newest first; only the pending ones when `pending_only`.
pub async fn movements<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    wrap_id: Uuid,
    pending_only: bool,
    scale: u32,
) -> Result<Vec<Movement>, LedgerError> {
    let b = db.get_database_backend();
    let q = format!(
        "SELECT {MOVEMENT_READ_COLS} FROM wrap_movements WHERE tenant_id = {} AND wrap_id = {}{} ORDER BY id DESC",
        param(b, 1),
        param(b, 2),
        if pending_only {
            " AND status = 'pending'"
        } else {
            ""
        }
    );
    let rows = query(db, q, vec![tenant_id.into(), wrap_id.into()]).await?;
    rows.iter().map(|r| movement_from_row(r, scale)).collect()
}

// ---------------------------------------------------------------------------------------
// Plans

/// The columns of a plan, in the order [`plan_from_row`] reads them.
pub const PLAN_COLS: &str = "id, wrap_id, kind, amount, percentage, frequency, day_of_month, \
     start_date, end_date, status, created_at";

/// A plan from columns 0..11 of `row` ([`PLAN_COLS`]); amounts in the currency of `scale`.
pub fn plan_from_row(row: &QueryResult, scale: u32) -> Result<Plan, LedgerError> {
    let kind: String = get(row, 2)?;
    let frequency: String = get(row, 5)?;
    let status: String = get(row, 9)?;
    let percentage = get::<Option<String>>(row, 4)?
        .map(|p| {
            p.parse::<Decimal>()
                .map_err(|_| corrupt("plan percentage", &p))
        })
        .transpose()?;
    Ok(Plan {
        id: get(row, 0)?,
        wrap_id: get(row, 1)?,
        kind: PlanKind::parse(&kind).ok_or_else(|| corrupt("plan kind", &kind))?,
        amount: get::<Option<i64>>(row, 3)?.map(|m| decimal_of(i128::from(m), scale)),
        percentage,
        frequency: Frequency::parse(&frequency)
            .ok_or_else(|| corrupt("plan frequency", &frequency))?,
        day_of_month: get(row, 6)?,
        start_date: get(row, 7)?,
        end_date: get(row, 8)?,
        status: PlanStatus::parse(&status).ok_or_else(|| corrupt("plan status", &status))?,
        created_at: from_micros(get(row, 10)?)?,
    })
}

/// Records a plan of the distributor's wrap.
pub async fn insert_plan<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    wrap_id: Uuid,
    new: &NewPlan,
    scale: u32,
    now: DateTime<Utc>,
) -> Result<Plan, LedgerError> {
    let b = db.get_database_backend();
    let plan = Plan {
        id: Uuid::now_v7(),
        wrap_id,
        kind: new.kind,
        amount: new.amount,
        percentage: new.percentage.map(|p| p.normalize()),
        frequency: new.frequency,
        day_of_month: new.day_of_month,
        start_date: new.start_date,
        end_date: new.end_date,
        status: PlanStatus::Active,
        created_at: from_micros(micros(now))?,
    };
    let q = format!(
        "INSERT INTO wrap_plans (tenant_id, {PLAN_COLS}, updated_at) VALUES {}",
        value_rows(b, 1, 13, 1)
    );
    let amount = plan.amount.map(|a| minor(a, scale)).transpose()?;
    let values: Vec<Value> = vec![
        tenant_id.into(),
        plan.id.into(),
        wrap_id.into(),
        plan.kind.as_str().into(),
        amount.into(),
        plan.percentage.map(|p| p.to_string()).into(),
        plan.frequency.as_str().into(),
        plan.day_of_month.into(),
        plan.start_date.into(),
        plan.end_date.into(),
        plan.status.as_str().into(),
        micros(now).into(),
        micros(now).into(),
    ];
    exec(db, q, values).await?;
    Ok(plan)
}

/// A wrap's plans, oldest first.
pub async fn plans<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    wrap_id: Uuid,
    scale: u32,
) -> Result<Vec<Plan>, LedgerError> {
    let b = db.get_database_backend();
    let q = format!(
        "SELECT {PLAN_COLS} FROM wrap_plans WHERE tenant_id = {} AND wrap_id = {} ORDER BY id",
        param(b, 1),
        param(b, 2)
    );
    let rows = query(db, q, vec![tenant_id.into(), wrap_id.into()]).await?;
    rows.iter().map(|r| plan_from_row(r, scale)).collect()
}

/// Cancels an active plan of the wrap; `Ok(false)` if there is no such active plan.
pub async fn cancel_plan<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    wrap_id: Uuid,
    plan_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, LedgerError> {
    let b = db.get_database_backend();
    let q = format!(
        "UPDATE wrap_plans SET status = 'cancelled', updated_at = {} \
         WHERE tenant_id = {} AND wrap_id = {} AND id = {} AND status = 'active'",
        param(b, 1),
        param(b, 2),
        param(b, 3),
        param(b, 4)
    );
    let n = exec(
        db,
        q,
        vec![
            micros(now).into(),
            tenant_id.into(),
            wrap_id.into(),
            plan_id.into(),
        ],
    )
    .await?;
    Ok(n == 1)
}

/// Cancels every active plan of a wrap (when it closes).
pub async fn cancel_all_plans<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    wrap_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), LedgerError> {
    let b = db.get_database_backend();
    let q = format!(
        "UPDATE wrap_plans SET status = 'cancelled', updated_at = {} \
         WHERE tenant_id = {} AND wrap_id = {} AND status = 'active'",
        param(b, 1),
        param(b, 2),
        param(b, 3)
    );
    exec(
        db,
        q,
        vec![micros(now).into(), tenant_id.into(), wrap_id.into()],
    )
    .await?;
    Ok(())
}
