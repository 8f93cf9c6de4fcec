//! `/v1/instructions`: block orders sent to a distributor's own account system (its
//! execution venue is `external`), and the fills that system reports; and the venue setting
//! itself, `/v1/tenants/{id}/execution-venue`. The rules of instructions and fills are in
//! [`wraps::eod::instructions`].
//!
//! Isolation (tested by `api/tests/http/eod_instructions.rs`): an instruction belongs to its
//! distributor; every query is scoped by the caller's tenant, so another distributor's
//! instruction answers 404 exactly like a missing one. The platform reads every
//! distributor's instructions but reports no fills (403); a manager has none (the list
//! answers 403, an id 404). Reporting a fill needs a distributor writer (`ReportFills`).
//! Closing an instruction that its account system will never complete is for platform
//! admins alone (`ManageTenants`, 403 for anyone else), with a reason kept in the audit log.
//! The venue setting is visible to the platform and the distributor itself, and set by
//! platform admins; a tenant that is not a distributor answers 404.
//!
//! A fill report is idempotent through its own `fill_id` (the account system's execution
//! id), not the `Idempotency-Key` header: the id is what the venue already has, and it keeps
//! one instruction's reports together. Every change runs in one write transaction with its
//! audit record.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use ledger::amount::AmountLimits;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenants::{Action, TenantKind};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::extract::{Query, path_uuid};
use crate::problem::Problem;
use crate::routes::tenants::Page;
use crate::server::AppState;
use wraps::eod::instructions::{
    self as store, Filter, Instruction, Refused, Report, ReportAnswer, Reported, VenueKind,
    VenueSetting,
};

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(resource("/v1/instructions").get(list_instructions))
        .service(resource("/v1/instructions/{id}").get(get_instruction))
        .service(resource("/v1/instructions/{id}/fills").post(report_fill))
        .service(resource("/v1/instructions/{id}/close").post(close_instruction))
        .service(
            resource("/v1/tenants/{id}/execution-venue")
                .get(get_venue)
                .put(set_venue),
        );
}

fn not_found(id: Uuid) -> Problem {
    Problem::not_found(format!("no instruction {id}"))
}

/// The tenant whose instructions the caller sees: its own (a distributor), every one (the
/// platform: `None`), or 403 for a manager.
fn scope(caller: &Caller) -> Result<Option<Uuid>, Problem> {
    caller.principal.authorize(Action::ReadOwnData)?;
    match caller.principal.tenant_kind {
        TenantKind::Platform => Ok(None),
        TenantKind::Distributor => Ok(Some(caller.principal.tenant_id)),
        TenantKind::Manager => Err(Problem::forbidden(
            "only a distributor (or the platform) has instructions",
        )),
    }
}

/// List instructions, oldest first: the caller's own (a distributor's account system polls
/// `?status=awaiting_fills`), or every distributor's for the platform.
#[utoipa::path(
    get, path = "/v1/instructions", tag = "instructions",
    params(
        ("date" = Option<chrono::NaiveDate>, Query, description = "Business date, YYYY-MM-DD"),
        ("status" = Option<String>, Query, description = "awaiting_fills, filled, partially_filled or unfilled"),
        ("tenant_id" = Option<Uuid>, Query, description = "The platform only: one distributor's"),
        ("limit" = Option<u64>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, body = Page<Instruction>),
        (status = 400, description = "A bad query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A manager", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_instructions(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let own = scope(&caller)?;
    let q = Query::parse(&req, &["date", "status", "tenant_id", "limit", "cursor"])?;
    let tenant_id = match (own, q.uuid("tenant_id")?) {
        (Some(own), None) => Some(own),
        (Some(_), Some(_)) => {
            return Err(Problem::bad_parameter(
                "tenant_id",
                "only the platform filters by tenant: yours are the only ones you see",
            ));
        }
        (None, t) => t,
    };
    let filter = Filter {
        tenant_id,
        date: q.date("date")?,
        status: q
            .one_of(
                "status",
                &["awaiting_fills", "filled", "partially_filled", "unfilled"],
            )?
            .map(str::to_owned),
        after: q.id_cursor()?,
    };
    let (items, next) = store::list(&state.db, &filter, q.limit(100, store::MAX_PAGE)?).await?;
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: next.map(|c| c.to_string()),
    }))
}

/// One instruction with every fill reported against it.
#[utoipa::path(
    get, path = "/v1/instructions/{id}", tag = "instructions",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Instruction),
        (status = 404, description = "Not the caller's, or a manager", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_instruction(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    // A manager has no instructions: its asking for an id finds nothing, as for anyone's.
    let own = scope(&caller).map_err(|_| not_found(id))?;
    let found = store::get_one(&state.db, own, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(HttpResponse::Ok().json(found))
}

/// A fill as the account system reports it.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FillReport {
    /// The account system's own id of this fill (1 to 100 visible ASCII characters), unique
    /// per instruction: the same report sent again is answered as the first time.
    pub fill_id: String,
    /// Units bought or sold in this fill, a decimal string exact to the instrument's unit
    /// scale; default 0 (a closing report).
    #[schema(value_type = Option<String>, example = "11538")]
    #[serde(default, deserialize_with = "ledger::amount::de_strict")]
    pub units: Decimal,
    /// Cash paid (buy) or received (sell) for them, exact to the currency's minor unit;
    /// default 0.
    #[schema(value_type = Option<String>, example = "15000")]
    #[serde(default, deserialize_with = "ledger::amount::de_strict")]
    pub amount: Decimal,
    /// No more fills will come: the instruction completes with what was reported.
    #[serde(default, rename = "final")]
    pub is_final: bool,
}

/// `value` (≥ 0) in minor units of `asset` at `scale`, at most its `[limits]` bound, or 422
/// naming `field` ([`ledger::amount::check_quantity`]).
fn minor(
    limits: &AmountLimits,
    field: &str,
    value: Decimal,
    asset: &str,
    scale: u32,
) -> Result<i64, Problem> {
    ledger::amount::check_quantity(value, &limits.bound_of(asset, scale))
        .map_err(|refused| Problem::invalid_field(field, refused.0))
}

/// Report a fill of an instruction (the distributor's account system). Several reports add
/// up; `final` closes the instruction (it completes by itself when all that was asked is
/// filled). The same `fill_id` again returns the first answer and changes nothing.
#[utoipa::path(
    post, path = "/v1/instructions/{id}/fills", tag = "instructions",
    params(("id" = Uuid, Path)),
    request_body(content = FillReport, examples(
        ("partial" = (summary = "A partial fill", value = json!({"fill_id": "OMS-20261124-000123-1", "units": "11538", "amount": "15000"}))),
        ("final" = (summary = "The last fill: the instruction completes", value = json!({"fill_id": "OMS-20261124-000123-2", "units": "7692", "amount": "10000", "final": true}))),
    )),
    responses(
        (status = 201, description = "Recorded (a replay of the same report answers the same, with `idempotent-replayed: true`)", body = ReportAnswer),
        (status = 403, description = "Not a distributor writer", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The instruction is complete, or the fill_id was reported with other figures", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad figure, or more than the instruction asked", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn report_fill(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReportFills)?;
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    let body: FillReport = crate::extract::json(&req, payload).await?;
    if !(1..=100).contains(&body.fill_id.len())
        || !body.fill_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Problem::invalid_field(
            "fill_id",
            "must be 1 to 100 visible ASCII characters",
        ));
    }
    let tenant_id = caller.principal.tenant_id;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let row = store::lock(&txn, tenant_id, id)
        .await
        .map_err(refused(id))?;
    let report = Report {
        fill_id: body.fill_id.clone(),
        units: minor(
            &state.amount_limits,
            "units",
            body.units,
            &row.pricing.instrument,
            row.scales.units,
        )?,
        amount: minor(
            &state.amount_limits,
            "amount",
            body.amount,
            &row.pricing.currency,
            row.scales.currency,
        )?,
        is_final: body.is_final,
    };
    if (report.units == 0) != (report.amount == 0) {
        return Err(Problem::invalid_field(
            if report.units == 0 { "units" } else { "amount" },
            "a fill has both units and an amount (both 0 only in a closing report)",
        ));
    }
    if report.units == 0 && !report.is_final {
        return Err(Problem::invalid_field(
            "units",
            "must be greater than zero, unless the report is final (closes the instruction)",
        ));
    }
    let text = match store::report(&txn, &row, &report, now)
        .await
        .map_err(refused(id))?
    {
        Reported::Replayed(text) => {
            return Ok(HttpResponse::build(StatusCode::CREATED)
                .insert_header((CONTENT_TYPE, "application/json"))
                .insert_header(("idempotent-replayed", "true"))
                .body(text));
        }
        Reported::New(text) => text,
    };
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "instruction.fill",
            target_tenant_id: Some(tenant_id),
            target_type: "instruction",
            target_id: id.to_string(),
            detail: json!({
                "fill_id": report.fill_id,
                "units": body.units.to_string(),
                "amount": body.amount.to_string(),
                "final": report.is_final,
            }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header((LOCATION, format!("/v1/instructions/{id}")))
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(text))
}

/// Why the platform closes an instruction.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseInstruction {
    /// Why (1 to 500 characters), kept in the audit log: the account system's ticket, say.
    #[schema(example = "account system retired the order, ticket OPS-4411")]
    pub reason: String,
}

/// Close an open instruction that its account system will never complete (platform
/// admins). It completes with the fills reported so far, as a `final` report with nothing
/// in it would (`unfilled` when there are none), so the date's end of day can go on:
/// allocation then divides what was filled and the rest of the wraps' orders stay unfilled.
#[utoipa::path(
    post, path = "/v1/instructions/{id}/close", tag = "instructions",
    params(("id" = Uuid, Path)),
    request_body = CloseInstruction,
    responses(
        (status = 200, description = "Closed: the instruction as it now is", body = Instruction),
        (status = 403, description = "Not a platform admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The instruction is already complete", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason, or one too long", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn close_instruction(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ManageTenants)?;
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    let body: CloseInstruction = crate::extract::json(&req, payload).await?;
    let reason = body.reason.trim();
    if !(1..=500).contains(&reason.chars().count()) {
        return Err(Problem::invalid_field(
            "reason",
            "must be 1 to 500 characters: why the instruction is closed",
        ));
    }
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let row = store::lock_any(&txn, id).await.map_err(refused(id))?;
    let instruction = store::close(&txn, &row, now).await.map_err(refused(id))?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "instruction.close",
            target_tenant_id: Some(row.tenant_id),
            target_type: "instruction",
            target_id: id.to_string(),
            detail: json!({ "reason": reason, "status": instruction.status }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(instruction))
}

fn refused(id: Uuid) -> impl Fn(Refused) -> Problem {
    move |r| match r {
        Refused::NotFound => not_found(id),
        Refused::Complete(detail) | Refused::Conflict(detail) => Problem::conflict(detail),
        Refused::Invalid { field, message } => Problem::invalid_field(field, message),
        Refused::Eod(e) => Problem::from(e),
    }
}

// ---------------------------------------------------------------------------------------
// The venue setting

/// A distributor's execution venue.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetVenue {
    /// `simulated` (filled at the day's price during end of day, the default) or `external`
    /// (instructions for the distributor's account system, which reports the fills).
    pub venue: VenueKind,
}

/// Set where a distributor's block orders are executed (platform admins). Takes effect at
/// the next execution step; instructions already out stay open until complete.
#[utoipa::path(
    put, path = "/v1/tenants/{id}/execution-venue", tag = "platform",
    params(("id" = Uuid, Path)),
    request_body = SetVenue,
    responses(
        (status = 200, body = VenueSetting),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn set_venue(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    crate::routes::agreements::distributor(&state, &caller, id).await?;
    caller.principal.authorize(Action::ManageTenants)?;
    Query::parse(&req, &[])?;
    let body: SetVenue = crate::extract::json(&req, payload).await?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let before = store::venue_of(&txn, id).await?;
    let setting = store::set_venue(&txn, id, body.venue, &caller.principal.client_id, now).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "execution_venue.set",
            target_tenant_id: Some(id),
            target_type: "tenant",
            target_id: id.to_string(),
            detail: json!({ "from": before.venue, "to": setting.venue }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(setting))
}

/// A distributor's execution venue (the platform, or the distributor itself).
#[utoipa::path(
    get, path = "/v1/tenants/{id}/execution-venue", tag = "tenants",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = VenueSetting),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_venue(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    crate::routes::agreements::distributor(&state, &caller, id).await?;
    Query::parse(&req, &[])?;
    Ok(HttpResponse::Ok().json(store::venue_of(&state.db, id).await?))
}
