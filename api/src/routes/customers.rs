//! `/v1/customers`: a distributor's customers, their one real account (cash per currency),
//! and the cash that comes in from and goes back to the bank's settlement.
//!
//! Isolation: customers belong to the distributor that opened them; every query is scoped
//! by the caller's tenant, so another distributor's customer answers 404 exactly like a
//! missing one (`api/tests/http/customers.rs::customers_are_isolated`). Managers and the
//! platform may not open customers (403); a manager sees wraps on its strategies through
//! `/v1/wraps`, never the customers behind them.
//!
//! Deposits and withdrawals move money, so they require an `Idempotency-Key`
//! ([`crate::idempotency`]); a withdrawal never exceeds the available balance (holds
//! counted), which the ledger's no-negative rule enforces under concurrency.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{NaiveDate, Utc};
use ledger::Account;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenants::{Action, TenantKind};
use utoipa::ToSchema;
use uuid::Uuid;
use wraps::customers::store;
use wraps::customers::{Customer, CustomerStatus, NewCustomer, WrapStatus};

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::extract::{Query, path_uuid};
use crate::idempotency::Idempotency;
use crate::money;
use crate::onboarding::BASE_CURRENCY;
use crate::problem::Problem;
use crate::routes::tenants::Page;
use crate::server::AppState;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(
        resource("/v1/customers")
            .get(list_customers)
            .post(create_customer),
    )
    .service(
        resource("/v1/customers/{id}")
            .get(get_customer)
            .patch(update_customer),
    )
    .service(resource("/v1/customers/{id}/deposits").post(deposit))
    .service(resource("/v1/customers/{id}/withdrawals").post(withdraw))
    .service(
        resource("/v1/customers/{id}/wraps")
            .get(crate::routes::wraps::list_customer_wraps)
            .post(crate::routes::wraps::open_wrap),
    );
}

/// The caller's customer `id`, or 404 (another distributor's customer is not found either).
pub async fn find_customer<C: sea_orm::ConnectionTrait>(
    db: &C,
    caller: &Caller,
    id: Uuid,
) -> Result<Customer, Problem> {
    find_customer_of(db, &caller.principal, id).await
}

/// [`find_customer`] for any principal (an API client's or a console user's).
pub async fn find_customer_of<C: sea_orm::ConnectionTrait>(
    db: &C,
    principal: &tenants::Principal,
    id: Uuid,
) -> Result<Customer, Problem> {
    if principal.tenant_kind != TenantKind::Distributor {
        return Err(Problem::not_found(format!("no customer {id}")));
    }
    store::customer(db, principal.tenant_id, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no customer {id}")))
}

/// What it takes to open a customer.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    /// The distributor's own reference, unique within the distributor (1 to 100 characters).
    pub external_ref: String,
    pub name: String,
    pub date_of_birth: Option<NaiveDate>,
    /// 1 (cautious) to 5 (adventurous): wraps on riskier strategies are refused.
    pub risk_tolerance: i32,
}

/// Open a customer with its account (cash in JPY) (distributor writers).
#[utoipa::path(
    post, path = "/v1/customers", tag = "customers",
    request_body = CreateCustomer,
    responses(
        (status = 201, body = Customer),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "External reference taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_customer(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ManageCustomers)?;
    Query::parse(&req, &[])?;
    let body: CreateCustomer = crate::extract::json(&req, payload).await?;
    let now = Utc::now();
    let new = NewCustomer {
        external_ref: body.external_ref,
        name: body.name,
        date_of_birth: body.date_of_birth,
        risk_tolerance: body.risk_tolerance,
    };
    new.validate(money::today(now))?;
    let tenant_id = caller.principal.tenant_id;
    let txn = ledger::begin_write(&state.db).await?;
    let customer = store::insert_customer(&txn, tenant_id, &new, now)
        .await?
        .ok_or_else(|| {
            Problem::conflict(format!(
                "external_ref {:?} is already used by another customer",
                new.external_ref
            ))
        })?;
    wraps::movements::customer_cash(&txn, &state.ledger, tenant_id, customer.id, BASE_CURRENCY)
        .await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "customer.create",
            target_tenant_id: Some(tenant_id),
            target_type: "customer",
            target_id: customer.id.to_string(),
            detail: json!({ "external_ref": customer.external_ref }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/v1/customers/{}", customer.id),
        ))
        .json(customer))
}

/// List the caller's customers in creation order (distributors).
#[utoipa::path(
    get, path = "/v1/customers", tag = "customers",
    params(
        ("status" = Option<String>, Query, description = "`active` or `closed`"),
        ("branch_id" = Option<Uuid>, Query, description = "Only the customers of this branch"),
        ("limit" = Option<u64>, Query, description = "1 to 500, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, body = Page<Customer>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_customers(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadOwnData)?;
    if caller.principal.tenant_kind != TenantKind::Distributor {
        return Err(Problem::forbidden("only a distributor has customers"));
    }
    let q = Query::parse(&req, &["status", "branch_id", "limit", "cursor"])?;
    let status = q
        .one_of("status", &["active", "closed"])?
        .and_then(CustomerStatus::parse);
    let scope = q.uuid("branch_id")?.map_or(
        wraps::customers::Scope::All,
        wraps::customers::Scope::Branch,
    );
    let (items, next) = store::customers(
        &state.db,
        caller.principal.tenant_id,
        scope,
        status,
        q.id_cursor()?,
        q.limit(100, store::MAX_PAGE)?,
    )
    .await?;
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: next.map(|c| c.to_string()),
    }))
}

/// Cash of one currency in a customer's account.
#[derive(Debug, Serialize, ToSchema)]
pub struct CashLine {
    pub currency: String,
    /// The ledger account (`GET /v1/ledger/accounts/{id}` for its history).
    pub account_id: Uuid,
    /// Posted balance.
    #[schema(value_type = String)]
    pub balance: Decimal,
    /// What may be withdrawn or contributed now.
    #[schema(value_type = String)]
    pub available: Decimal,
}

impl CashLine {
    /// The line of a customer's cash `account` (its currency has `scale` decimals).
    fn of(account: &Account, scale: u32) -> Self {
        Self {
            currency: account.asset.clone(),
            account_id: account.id,
            balance: ledger::asset::decimal_of(account.balance.posted(account.normal_side), scale),
            available: ledger::asset::decimal_of(
                account.balance.available(account.normal_side),
                scale,
            ),
        }
    }
}

/// A wrap in a customer's overview.
#[derive(Debug, Serialize, ToSchema)]
pub struct WrapLine {
    pub id: Uuid,
    pub name: String,
    pub strategy_id: Uuid,
    pub status: WrapStatus,
    pub currency: String,
    /// Cash plus units at their last price (see `GET /v1/wraps/{id}` for the detail).
    #[schema(value_type = String)]
    pub value: Decimal,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goal: Option<wraps::customers::Goal>,
}

/// A customer with its account and wraps.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    #[serde(flatten)]
    pub customer: Customer,
    pub cash: Vec<CashLine>,
    pub wraps: Vec<WrapLine>,
    /// Cash plus the value of every wrap, per currency.
    pub total_value: Vec<crate::routes::wraps::Money>,
}

/// One customer with its cash and wraps (the customer's distributor).
#[utoipa::path(
    get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = CustomerView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_customer(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    let (view, _) = customer_overview(&state, &caller.principal, id).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Customer `id` of `principal`'s distributor with its cash and wraps, and each wrap's
/// valuation (holdings): what `GET /v1/customers/{id}` answers and the console shows. Another
/// tenant's customer is 404.
pub async fn customer_overview(
    state: &AppState,
    principal: &tenants::Principal,
    id: Uuid,
) -> Result<(CustomerView, Vec<wraps::value::Valuation>), Problem> {
    principal.authorize(Action::ReadOwnData)?;
    let customer = find_customer_of(&state.db, principal, id).await?;
    let tenant_id = principal.tenant_id;
    let accounts = store::customer_accounts(&state.db, tenant_id, id).await?;
    let mut cash = Vec::with_capacity(accounts.len());
    for account in &accounts {
        let scale = state.ledger.asset(&account.asset).await?.scale;
        cash.push(CashLine::of(account, scale));
    }
    let mut wraps = Vec::new();
    let mut after = None;
    loop {
        let filter = store::WrapFilter {
            customer_id: Some(id),
            ..Default::default()
        };
        let (page, next) = store::wraps(
            &state.db,
            store::WrapScope::Distributor(tenant_id),
            &filter,
            after,
            store::MAX_PAGE,
        )
        .await?;
        wraps.extend(page);
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let mut lines = Vec::with_capacity(wraps.len());
    let mut valuations = Vec::with_capacity(wraps.len());
    let mut totals: std::collections::BTreeMap<String, Decimal> = cash
        .iter()
        .map(|c| (c.currency.clone(), c.balance))
        .collect();
    for w in wraps {
        let value =
            wraps::value::value_now(&state.db, &state.ledger, &w, money::today(Utc::now())).await?;
        *totals.entry(w.currency.clone()).or_default() += value.value;
        lines.push(WrapLine {
            id: w.id,
            name: w.name,
            strategy_id: w.strategy_id,
            status: w.status,
            currency: w.currency,
            value: value.value,
            goal: w.goal,
        });
        valuations.push(value);
    }
    let view = CustomerView {
        customer,
        cash,
        wraps: lines,
        total_value: totals
            .into_iter()
            .map(|(currency, amount)| crate::routes::wraps::Money { currency, amount })
            .collect(),
    };
    Ok((view, valuations))
}

/// A change to a customer.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    pub name: Option<String>,
    /// A lower tolerance leaves existing wraps as they are; it applies to wraps opened later.
    pub risk_tolerance: Option<i32>,
    /// `closed` only when the customer has no wrap that is not closed and no cash.
    pub status: Option<CustomerStatus>,
}

/// Change a customer's name, risk tolerance or status (distributor writers).
#[utoipa::path(
    patch, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = Uuid, Path)),
    request_body = UpdateCustomer,
    responses(
        (status = 200, body = Customer),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Closing a customer that still holds wraps or cash", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_customer(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    find_customer(&state.db, &caller, id).await?;
    caller.principal.authorize(Action::ManageCustomers)?;
    let body: UpdateCustomer = crate::extract::json(&req, payload).await?;
    if let Some(name) = &body.name {
        wraps::customers::check_name("name", name)?;
    }
    if let Some(r) = body.risk_tolerance {
        wraps::customers::check_risk("risk_tolerance", r)?;
    }
    let tenant_id = caller.principal.tenant_id;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    store::customer_for_update(&txn, tenant_id, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no customer {id}")))?;
    if body.status == Some(CustomerStatus::Closed) {
        let live = store::count_live_wraps(&txn, tenant_id, id).await?;
        if live > 0 {
            return Err(Problem::conflict(format!(
                "customer {id} has {live} wraps that are not closed; close them first"
            )));
        }
        let accounts = store::customer_accounts(&txn, tenant_id, id).await?;
        if let Some(a) = accounts
            .iter()
            .find(|a| a.balance.posted(a.normal_side) != 0 || a.balance.pending(a.normal_side) != 0)
        {
            return Err(Problem::conflict(format!(
                "customer {id} still holds {} cash; withdraw it first",
                a.asset
            )));
        }
    }
    let change = store::CustomerChange {
        name: body.name.clone(),
        risk_tolerance: body.risk_tolerance,
        status: body.status,
    };
    let customer = store::update_customer(&txn, tenant_id, id, &change, now)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no customer {id}")))?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "customer.update",
            target_tenant_id: Some(tenant_id),
            target_type: "customer",
            target_id: id.to_string(),
            detail: json!(body),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(customer))
}

/// Cash arriving in, or leaving, a customer's account.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CashMovement {
    /// A positive decimal string, exact to the currency's minor unit.
    #[schema(value_type = String, example = "100000")]
    #[serde(deserialize_with = "ledger::amount::de_strict")]
    pub amount: Decimal,
    /// ISO 4217 code; default JPY.
    pub currency: Option<String>,
    /// The bank's reference for the settlement, kept on the entry.
    pub reference: Option<String>,
}

/// The result of a cash movement.
#[derive(Debug, Serialize, ToSchema)]
pub struct CashMovementResult {
    /// The ledger entry.
    pub entry_id: Uuid,
    pub customer_id: Uuid,
    pub currency: String,
    #[schema(value_type = String)]
    pub amount: Decimal,
    /// The customer's cash after it.
    pub cash: CashLine,
}

/// Cash received from the bank's settlement into a customer's account (distributor
/// writers; `Idempotency-Key` required).
#[utoipa::path(
    post, path = "/v1/customers/{id}/deposits", tag = "customers",
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "Same key and body on a retry", example = "dep-SETTLE-0001")),
    request_body(content = CashMovement, example = json!({"amount": "1000000", "reference": "SETTLE-0001"})),
    responses(
        (status = 201, body = CashMovementResult),
        (status = 400, description = "No Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Key used for another request", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn deposit(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    cash_movement(req, caller, state, payload, Direction::In).await
}

/// Cash paid out of a customer's account to the bank (distributor writers;
/// `Idempotency-Key` required). Never more than the available balance.
#[utoipa::path(
    post, path = "/v1/customers/{id}/withdrawals", tag = "customers", operation_id = "withdraw_customer_cash",
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "Same key and body on a retry", example = "wd-PAYOUT-0001")),
    request_body(content = CashMovement, example = json!({"amount": "200000", "currency": "JPY", "reference": "PAYOUT-0001"})),
    responses(
        (status = 201, body = CashMovementResult),
        (status = 400, description = "No Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Key used for another request", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More than is available", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn withdraw(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    cash_movement(req, caller, state, payload, Direction::Out).await
}

use wraps::movements::Direction;

async fn cash_movement(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
    direction: Direction,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    // Visibility before permission: another distributor's customer is 404 for everyone.
    let customer = find_customer(&state.db, &caller, id).await?;
    caller.principal.authorize(Action::ManageCustomers)?;
    let body: CashMovement = crate::extract::json(&req, payload).await?;
    let tenant_id = caller.principal.tenant_id;
    let idem = Idempotency::of(&req, tenant_id, &body)?;
    let currency = body.currency.as_deref().unwrap_or(BASE_CURRENCY);
    let asset = money::currency(&state.db, &state.ledger, "currency", currency).await?;
    let amount = money::amount(&state.amount_limits, "amount", body.amount, &asset)?;
    if let Some(r) = &body.reference
        && (r.is_empty() || r.len() > 200 || r.chars().any(char::is_control))
    {
        return Err(Problem::invalid_field(
            "reference",
            "must be 1 to 200 characters, no control characters",
        ));
    }
    let txn = ledger::begin_write(&state.db).await?;
    if let Some(replay) = idem.replay(&txn).await? {
        return Ok(replay);
    }
    let moved = wraps::movements::move_cash(
        &txn,
        &state.ledger,
        money::who(&caller),
        &wraps::movements::CashMove {
            customer: &customer,
            asset: &asset,
            amount,
            direction,
            reference: body.reference.as_deref(),
            // The open business date (DOMAIN.md section 7): after today's end of day, tomorrow.
            date: wraps::clock::open_date(&txn, &state.clock).await?,
        },
    )
    .await?;
    let (entry, after) = (moved.entry, moved.cash);
    let result = CashMovementResult {
        entry_id: entry.id,
        customer_id: id,
        currency: asset.code.clone(),
        amount,
        cash: CashLine::of(&after, asset.scale),
    };
    let response = idem.answer(&txn, StatusCode::CREATED, &result).await?;
    txn.commit().await?;
    Ok(response)
}
