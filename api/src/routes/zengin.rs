//! Zengin files over HTTP (issue 25, item 8): a customer's bank account for direct debit, the
//! direct-debit request (口座振替) of a collection date as a Shift_JIS file, and the bank's
//! result file read back. Adapters only: the rules are in [`wraps::zengin`].
//!
//! * `PUT|GET /v1/customers/{id}/bank-account`
//! * `POST /v1/zengin/debit-requests` (JSON: collection date and collector) → the request,
//!   with the plans it left out; `GET /v1/zengin/debit-requests` (head office's list, with
//!   collected and failed figures); `GET /v1/zengin/debit-requests/{id}` (with each debit);
//!   `GET /v1/zengin/debit-requests/{id}/file` (the bytes for the bank)
//! * `POST /v1/zengin/debit-requests/{id}/results` (the bank's file, `application/octet-stream`)
//! * `GET /v1/wraps/{id}/plans/{plan}/debits`: one plan's instalments and their results.
//! * `POST /v1/zengin/transfers` (JSON: date and sender) → the bulk transfer file (総合振込)
//!   of the day's payouts to the customers' bank accounts (written from the books; nothing
//!   stored, so a POST only because the sender's fields are a body).
//!
//! Isolation: only a distributor has customers, bank accounts and requests; every read names
//! the caller's tenant, so another distributor's customer, request or plan answers 404 like a
//! missing one (`api/tests/http/zengin.rs::zengin_is_isolated`). Writes need a distributor
//! writer (`ManageCustomers`).

use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use tenants::{Action, TenantKind};
use utoipa::ToSchema;
use uuid::Uuid;
use wraps::zengin::{
    self, BankAccountInput, CustomerBankAccount, DebitRequestInput, DebitRequestView, DebitView,
    ResultsApplied, TransferRequestInput,
};

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::extract::{Query, path_uuid};
use crate::money;
use crate::problem::Problem;
use crate::server::AppState;

/// Media type of the files (bytes, Shift_JIS inside).
const FILE_TYPE: &str = "application/octet-stream";

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(
        resource("/v1/customers/{id}/bank-account")
            .get(get_bank_account)
            .put(set_bank_account),
    )
    .service(
        resource("/v1/zengin/debit-requests")
            .get(list_debit_requests)
            .post(create_debit_request),
    )
    .service(resource("/v1/zengin/debit-requests/{id}").get(get_debit_request))
    .service(resource("/v1/zengin/debit-requests/{id}/file").get(debit_request_file))
    .service(resource("/v1/zengin/debit-requests/{id}/results").post(upload_results))
    .service(resource("/v1/wraps/{id}/plans/{plan}/debits").get(list_plan_debits))
    .service(resource("/v1/zengin/transfers").post(transfer_file));
}

/// Only a distributor has requests: anyone else is answered as for a missing one.
fn distributor(caller: &Caller, what: &str) -> Result<Uuid, Problem> {
    if caller.principal.tenant_kind == TenantKind::Distributor {
        Ok(caller.principal.tenant_id)
    } else {
        Err(Problem::not_found(format!("no {what}")))
    }
}

/// A customer's account for direct debit (the customer's distributor).
#[utoipa::path(
    get, path = "/v1/customers/{id}/bank-account", tag = "zengin",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = CustomerBankAccount),
        (status = 404, description = "No such customer, or no bank account set", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_bank_account(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    let customer = crate::routes::customers::find_customer(&state.db, &caller, id).await?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let account = zengin::store::bank_account(&state.db, customer.tenant_id, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("customer {id} has no bank account")))?;
    Ok(HttpResponse::Ok().json(account))
}

/// Set a customer's account for direct debit (distributor writers). The holder's name may be
/// given in full-width katakana; it is stored half-width, as the files write it.
#[utoipa::path(
    put, path = "/v1/customers/{id}/bank-account", tag = "zengin",
    params(("id" = Uuid, Path)),
    request_body(content = BankAccountInput, example = json!({"bank_code": "0005", "branch_code": "001", "account_type": 1, "account_number": "1234567", "holder_name": "ヤマダ タロウ"})),
    responses(
        (status = 200, body = CustomerBankAccount),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A code that is not its digits, an unknown account type, a name with a character that has no half-width form", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn set_bank_account(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    crate::routes::customers::find_customer(&state.db, &caller, id).await?;
    caller.principal.authorize(Action::ManageCustomers)?;
    let body: BankAccountInput = crate::extract::json(&req, payload).await?;
    let tenant_id = caller.principal.tenant_id;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let account = zengin::set_bank_account(&txn, tenant_id, id, &body, now).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "customer.bank_account.set",
            target_tenant_id: Some(tenant_id),
            target_type: "customer",
            target_id: id.to_string(),
            // The bank and branch only: the account number stays out of the audit log.
            detail: json!({ "bank_code": account.bank_code, "branch_code": account.branch_code }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(account))
}

/// Write the direct-debit request (口座振替, 種別 91) of a collection date for the
/// contribution plans due that day whose customer has a bank account (distributor writers).
/// One request per date; fetch its file at `/v1/zengin/debit-requests/{id}/file`.
#[utoipa::path(
    post, path = "/v1/zengin/debit-requests", tag = "zengin",
    request_body(content = DebitRequestInput, example = json!({"collection_date": "2031-04-10", "collector": {"code": "1234567890", "name": "カ)サクララップ", "bank_code": "0005", "branch_code": "001", "account_type": 1, "account_number": "1234567"}})),
    responses(
        (status = 201, body = DebitRequestView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The date's request is already written", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad collector field, a past date, or no plan due", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_debit_request(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    Query::parse(&req, &[])?;
    caller.principal.authorize(Action::ManageCustomers)?;
    let body: DebitRequestInput = crate::extract::json(&req, payload).await?;
    let tenant_id = caller.principal.tenant_id;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let today = wraps::clock::open_date(&txn, &state.clock).await?;
    let request = zengin::request_debits(
        &txn,
        tenant_id,
        &body,
        &caller.principal.client_id,
        today,
        now,
    )
    .await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "zengin.debit_request.create",
            target_tenant_id: Some(tenant_id),
            target_type: "debit_request",
            target_id: request.id.to_string(),
            detail: json!({ "collection_date": request.collection_date, "records": request.records }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/v1/zengin/debit-requests/{}", request.id),
        ))
        .json(request))
}

/// The distributor's direct-debit requests, newest collection date first, with how many
/// debits were collected and failed (head office).
#[derive(Debug, Serialize, ToSchema)]
pub struct DebitRequests {
    pub items: Vec<DebitRequestView>,
}

/// List the distributor's direct-debit requests with their results (distributors).
#[utoipa::path(
    get, path = "/v1/zengin/debit-requests", tag = "zengin",
    params(("limit" = Option<u64>, Query, description = "1 to 500, default 100")),
    responses(
        (status = 200, body = DebitRequests),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_debit_requests(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadOwnData)?;
    if caller.principal.tenant_kind != TenantKind::Distributor {
        return Err(Problem::forbidden("only a distributor has direct debits"));
    }
    let q = Query::parse(&req, &["limit"])?;
    let limit = q.limit(100, 500)?;
    let items = zengin::requests(&state.db, caller.principal.tenant_id, limit).await?;
    Ok(HttpResponse::Ok().json(DebitRequests { items }))
}

/// One direct-debit request with each debit and its result (distributors).
#[utoipa::path(
    get, path = "/v1/zengin/debit-requests/{id}", tag = "zengin",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = DebitRequestView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_debit_request(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    let tenant_id = distributor(&caller, &format!("debit request {id}"))?;
    caller.principal.authorize(Action::ReadOwnData)?;
    Ok(HttpResponse::Ok().json(zengin::request(&state.db, tenant_id, id).await?))
}

/// The request's file for the bank: Shift_JIS, 120-byte records (header, data, trailer,
/// end) joined by CR LF; the same bytes every time (distributors).
#[utoipa::path(
    get, path = "/v1/zengin/debit-requests/{id}/file", tag = "zengin",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn debit_request_file(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    let tenant_id = distributor(&caller, &format!("debit request {id}"))?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let (date, bytes) = zengin::request_file(&state.db, tenant_id, id).await?;
    Ok(file_response(
        &format!("debit-{}.txt", date.format("%Y%m%d")),
        bytes,
    ))
}

/// A file for the bank, to be saved as `name`.
fn file_response(name: &str, bytes: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, FILE_TYPE))
        .insert_header((
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(bytes)
}

/// Read the bank's result file (the request's layout with each 振替結果コード and the
/// trailer's collected and failed figures filled in) and apply it whole: each collected debit
/// is deposited into its customer's cash on the open business date, each failed one recorded
/// with its reason. A malformed file is refused with 422 naming the line and the field, and
/// nothing is applied; reading the same file again changes nothing (distributor writers).
#[utoipa::path(
    post, path = "/v1/zengin/debit-requests/{id}/results", tag = "zengin",
    params(("id" = Uuid, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The result file as the bank sent it"),
    responses(
        (status = 200, body = ResultsApplied),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A debit already has another result, or the collection date has not come", body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The file refused: `errors[0].field` is `line N: field`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn upload_results(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    mut payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    let tenant_id = distributor(&caller, &format!("debit request {id}"))?;
    zengin::store::request(&state.db, tenant_id, id, false)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no debit request {id}")))?;
    caller.principal.authorize(Action::ManageCustomers)?;
    let given = req
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)").to_owned());
    let essence = given
        .as_deref()
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !matches!(essence.as_deref(), Some(FILE_TYPE | "text/plain")) {
        return Err(Problem::unsupported_media_type(FILE_TYPE, given.as_deref()));
    }
    let bytes = crate::extract::read_body(&req, &mut payload).await?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let today = wraps::clock::open_date(&txn, &state.clock).await?;
    let applied = zengin::apply_results(
        &txn,
        &state.ledger,
        money::who(&caller),
        tenant_id,
        id,
        &bytes,
        today,
        now,
    )
    .await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "zengin.debit_results.apply",
            target_tenant_id: Some(tenant_id),
            target_type: "debit_request",
            target_id: id.to_string(),
            detail: json!({ "applied": applied.applied, "unchanged": applied.unchanged }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(applied))
}

/// A plan's direct debits.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanDebits {
    pub items: Vec<DebitView>,
}

/// A contribution plan's direct debits, newest collection date first: requested, collected
/// (with the deposit's entry) or failed (with the reason) (the wrap's distributor).
#[utoipa::path(
    get, path = "/v1/wraps/{id}/plans/{plan}/debits", tag = "zengin",
    params(("id" = Uuid, Path), ("plan" = Uuid, Path)),
    responses(
        (status = 200, body = PlanDebits),
        (status = 404, description = "No such wrap, or no such plan on it", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_plan_debits(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    let plan_id = path_uuid(&req, "plan")?;
    Query::parse(&req, &[])?;
    // A manager sees the wrap but not its customer's bank account: answered as missing.
    distributor(&caller, &format!("wrap {id}"))?;
    let wrap = crate::routes::wraps::find_wrap(&state.db, &caller, id, false).await?;
    caller.principal.authorize(Action::ReadOwnData)?;
    let plans =
        wraps::customers::store::plans(&state.db, wrap.tenant_id, id, wrap.currency_scale).await?;
    if !plans.iter().any(|p| p.id == plan_id) {
        return Err(Problem::not_found(format!(
            "no plan {plan_id} on wrap {id}"
        )));
    }
    let items = zengin::plan_debits(&state.db, wrap.tenant_id, plan_id).await?;
    Ok(HttpResponse::Ok().json(PlanDebits { items }))
}

/// Write the bulk transfer file (総合振込, 種別 21) of a date: one telegraphic transfer per
/// payout of the distributor's customers' cash booked that date (`POST
/// /v1/customers/{id}/withdrawals`), to each customer's bank account. The same payouts give the
/// same bytes; nothing is stored (distributor writers).
#[utoipa::path(
    post, path = "/v1/zengin/transfers", tag = "zengin",
    request_body(content = TransferRequestInput, example = json!({"transfer_date": "2031-04-10", "sender": {"code": "1234567890", "name": "カ)サクララップ", "bank_code": "0005", "branch_code": "001", "account_type": 1, "account_number": "1234567"}})),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A payout's customer has no bank account", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad sender field, or no payouts on the date", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn transfer_file(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    Query::parse(&req, &[])?;
    caller.principal.authorize(Action::ManageCustomers)?;
    let body: TransferRequestInput = crate::extract::json(&req, payload).await?;
    let bytes = zengin::transfer_file(&state.db, caller.principal.tenant_id, &body).await?;
    Ok(file_response(
        &format!("transfer-{}.txt", body.transfer_date.format("%Y%m%d")),
        bytes,
    ))
}
