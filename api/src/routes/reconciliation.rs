//! `/v1/ledger/reconciliation`: the virtual layer against the omnibus, and custodian
//! statements against the books (the break report).
//!
//! Scoping (tested by `api/tests/http/reconciliation.rs::reconciliation_is_scoped`): the
//! platform sees every distributor's book, with a per-distributor breakdown; a distributor
//! only its own book; a manager holds no customer money and gets 403. Custodian statements
//! are the platform's (they cover every distributor's customers): uploaded by platform
//! writers (`ManageMarketData`), read by the platform only; anyone else gets 403 (a kind
//! check, the same for every id, so it tells nothing about which ids exist).
//!
//! A statement upload is validated like a price upload (every bad row named, nothing
//! stored on a refusal) and stored with its audit record in one transaction
//! (`statement_rows_are_each_named`, `break_report_finds_breaks`).

use std::collections::HashMap;

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{NaiveDate, Utc};
use ledger::market::{self, FieldError};
use ledger::store::reconciliation as store;
use ledger::store::reconciliation::{BreakReport, CustodianStatement, Reconciliation};
use ledger::{Asset, AssetKind};
use serde::Deserialize;
use serde_json::{Value, json};
use tenants::Action;
use utoipa::ToSchema;

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::extract::{Query, path_uuid};
use crate::problem::Problem;
use crate::routes::instruments::{Upload, read_upload, rows_refused};
use crate::routes::tenants::Page;
use crate::server::AppState;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(resource("/v1/ledger/reconciliation").get(reconciliation))
        .service(
            resource("/v1/ledger/reconciliation/custodian-statements")
                .get(list_statements)
                .post(create_statement),
        )
        .service(resource("/v1/ledger/reconciliation/custodian-statements/{id}").get(get_statement))
        .service(
            resource("/v1/ledger/reconciliation/custodian-statements/{id}/breaks")
                .get(statement_breaks),
        );
}

/// Reconcile the customer and wrap accounts with the omnibus, per asset: the platform over
/// every distributor (with a breakdown), a distributor over its own book.
#[utoipa::path(
    get, path = "/v1/ledger/reconciliation", tag = "ledger",
    params(("as_of" = Option<NaiveDate>, Query, description = "Posted entries with a business date on or before this date; default the current balances")),
    responses(
        (status = 200, body = Reconciliation),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A manager", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn reconciliation(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadReconciliation)?;
    let q = Query::parse(&req, &["as_of"])?;
    let as_of = q.date("as_of")?;
    let scope = (!caller.principal.is_platform()).then_some(caller.principal.tenant_id);
    let report = store::reconcile(&state.db, scope, as_of).await?;
    Ok(HttpResponse::Ok().json(report))
}

fn platform_reader(caller: &Caller) -> Result<(), Problem> {
    caller.principal.authorize(Action::ReadReconciliation)?;
    if !caller.principal.is_platform() {
        return Err(Problem::forbidden(
            "custodian statements cover every distributor: only the platform reads them",
        ));
    }
    Ok(())
}

/// One position of a statement upload.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PositionInput {
    /// A ledger asset (currency or instrument).
    pub asset: String,
    /// Not negative, exact to the asset's scale, a decimal string.
    #[schema(example = "123456")]
    pub quantity: String,
}

/// A statement upload as JSON; as CSV the header is `asset,quantity` and `as_of`, `source`
/// are query parameters.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StatementUpload {
    pub as_of: NaiveDate,
    /// 1 to 200 characters.
    pub source: String,
    pub positions: Vec<PositionInput>,
}

const POSITION_COLUMNS: [&str; 2] = ["asset", "quantity"];

/// `as_of` and `source` from the JSON body or (CSV) the query.
fn statement_header(
    upload: &Upload,
    q: &Query,
    errors: &mut Vec<FieldError>,
) -> Result<Option<(NaiveDate, String)>, Problem> {
    let (as_of, source) = if upload.csv {
        let as_of = q
            .get("as_of")
            .ok_or_else(|| Problem::bad_parameter("as_of", "is required with a CSV body"))?;
        let source = q
            .get("source")
            .ok_or_else(|| Problem::bad_parameter("source", "is required with a CSV body"))?;
        let as_of = market::parse_date(as_of).map_err(|m| Problem::bad_parameter("as_of", m))?;
        (Some(as_of), source.to_owned())
    } else {
        if q.get("as_of").is_some() || q.get("source").is_some() {
            return Err(Problem::bad_parameter(
                if q.get("as_of").is_some() {
                    "as_of"
                } else {
                    "source"
                },
                "goes in the JSON body (query parameters are for CSV uploads)",
            ));
        }
        if let Some(extra) = upload
            .top
            .keys()
            .find(|k| !matches!(k.as_str(), "as_of" | "source"))
        {
            errors.push(FieldError::new(
                extra.clone(),
                "unknown field; expected as_of, source, positions",
            ));
        }
        let as_of = match upload.top.get("as_of") {
            Some(Value::String(s)) => market::parse_date(s)
                .map_err(|m| errors.push(FieldError::new("as_of", m)))
                .ok(),
            Some(_) => {
                errors.push(FieldError::new(
                    "as_of",
                    "must be a date string, YYYY-MM-DD",
                ));
                None
            }
            None => {
                errors.push(FieldError::new("as_of", "is missing"));
                None
            }
        };
        let source = match upload.top.get("source") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                errors.push(FieldError::new("source", "must be a string"));
                String::new()
            }
            None => {
                errors.push(FieldError::new("source", "is missing"));
                String::new()
            }
        };
        (as_of, source)
    };
    if source.trim().is_empty() || source.chars().count() > 200 {
        let m = "must be 1 to 200 characters, not blank";
        if upload.csv {
            return Err(Problem::bad_parameter("source", m));
        }
        if !errors.iter().any(|e| e.field == "source") {
            errors.push(FieldError::new("source", m));
        }
    }
    Ok(as_of.map(|d| (d, source)))
}

/// Upload a custodian or bank statement (platform writers): JSON `{"as_of","source",
/// "positions":[{"asset","quantity"}]}` or CSV `asset,quantity` with `?as_of=&source=`.
#[utoipa::path(
    post, path = "/v1/ledger/reconciliation/custodian-statements", tag = "ledger",
    params(
        ("as_of" = Option<NaiveDate>, Query, description = "CSV uploads only"),
        ("source" = Option<String>, Query, description = "CSV uploads only"),
    ),
    request_body(content((StatementUpload = "application/json"), (String = "text/csv"))),
    responses(
        (status = 201, body = CustodianStatement),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Every bad row named", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_statement(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ManageMarketData)?;
    let q = Query::parse(&req, &["as_of", "source"])?;
    let upload = read_upload(&req, payload, "positions", &POSITION_COLUMNS).await?;
    let mut errors = Vec::new();
    let header = statement_header(&upload, &q, &mut errors)?;
    errors.extend(upload.errors.iter().cloned());
    let codes: Vec<String> = upload.rows.iter().map(|r| r.cells[0].clone()).collect();
    let assets: HashMap<String, Asset> = {
        let mut unique = codes;
        unique.sort();
        unique.dedup();
        store::assets_by_code(&state.db, &unique).await?
    };
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut positions = Vec::with_capacity(upload.rows.len());
    for row in &upload.rows {
        let (code, text) = (&row.cells[0], &row.cells[1]);
        let asset = assets.get(code);
        if asset.is_none() {
            let m = if code.is_empty() {
                "is missing".to_owned()
            } else {
                format!("unknown asset {code:?}")
            };
            errors.push(FieldError::new(row.label.field("asset"), m));
        }
        let quantity = market::parse_decimal(text).and_then(|v| match asset {
            Some(a) => market::money_minor(v, a.scale).map_err(|m| {
                m.replace(
                    "the currency",
                    match a.kind {
                        AssetKind::Currency => "the currency",
                        AssetKind::Instrument { .. } => "the instrument's units",
                    },
                )
            }),
            // Unknown asset: no scale to check against, only the sign.
            None if v.is_sign_negative() && !v.is_zero() => {
                Err(format!("{v} must not be negative"))
            }
            None => Ok(0),
        });
        let quantity = quantity
            .map_err(|m| errors.push(FieldError::new(row.label.field("quantity"), m)))
            .ok();
        if asset.is_some() {
            match seen.get(code) {
                Some(first) => errors.push(FieldError::new(
                    row.label.field("asset"),
                    format!("duplicates {first}: an asset appears once per statement"),
                )),
                None => {
                    seen.insert(code.clone(), row.label.name());
                }
            }
            if let Some(q) = quantity {
                positions.push((code.clone(), q));
            }
        }
    }
    let (as_of, source) = match header {
        Some(h) if errors.is_empty() => h,
        _ => {
            return Err(rows_refused(
                errors,
                if upload.csv { "CSV file" } else { "statement" },
            ));
        }
    };
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let id = store::create_statement(
        &txn,
        as_of,
        &source,
        &positions,
        &caller.principal.client_id,
        now,
    )
    .await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "custodian_statement.create",
            target_tenant_id: None,
            target_type: "custodian_statement",
            target_id: id.to_string(),
            detail: json!({ "as_of": as_of, "source": source, "positions": positions.len() }),
        },
        now,
    )
    .await?;
    // A statement that breaks is the platform's event, in the upload's transaction (last, as
    // the outbox's lock order asks): its operators' systems hear of it without polling.
    let report = store::break_report(&txn, id)
        .await?
        .ok_or_else(|| Problem::internal(&"a statement just stored cannot be read"))?;
    if !report.clean {
        let breaks: Vec<serde_json::Value> = report
            .breaks
            .iter()
            .map(|b| {
                json!({
                    "asset": b.asset, "custodian": b.custodian.to_string(),
                    "books": b.books.to_string(), "difference": b.difference.to_string(),
                })
            })
            .collect();
        let event = wraps::events::NewEvent::new(
            caller.principal.tenant_id,
            wraps::events::types::RECONCILIATION_BREAK,
            format!("custodian_statement:{id}"),
            Some(as_of),
            json!({ "statement_id": id, "as_of": as_of, "source": source, "breaks": breaks }),
        );
        wraps::events::record(&txn, vec![event], now).await?;
    }
    txn.commit().await?;
    let statement = store::statement(&state.db, id)
        .await?
        .ok_or_else(|| Problem::internal(&"a statement just stored cannot be read"))?;
    Ok(HttpResponse::Created()
        .insert_header((
            LOCATION,
            format!("/v1/ledger/reconciliation/custodian-statements/{id}"),
        ))
        .json(statement))
}

/// List custodian statements, newest first (platform).
#[utoipa::path(
    get, path = "/v1/ledger/reconciliation/custodian-statements", tag = "ledger",
    params(
        ("limit" = Option<u64>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, body = Page<CustodianStatement>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_statements(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    platform_reader(&caller)?;
    let q = Query::parse(&req, &["limit", "cursor"])?;
    let (items, next_cursor) =
        store::list_statements(&state.db, q.id_cursor()?, q.limit(100, 1000)?).await?;
    Ok(HttpResponse::Ok().json(Page { items, next_cursor }))
}

/// One custodian statement with its positions (platform).
#[utoipa::path(
    get, path = "/v1/ledger/reconciliation/custodian-statements/{id}", tag = "ledger",
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = CustodianStatement),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_statement(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    platform_reader(&caller)?;
    Query::parse(&req, &[])?;
    let s = store::statement(&state.db, id)
        .await?
        .ok_or_else(|| Problem::not_found("no such object"))?;
    Ok(HttpResponse::Ok().json(s))
}

/// The break report: a statement against the omnibus holdings of every distributor's book
/// as of its date, per asset (platform).
#[utoipa::path(
    get, path = "/v1/ledger/reconciliation/custodian-statements/{id}/breaks", tag = "ledger",
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = BreakReport),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn statement_breaks(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    platform_reader(&caller)?;
    Query::parse(&req, &[])?;
    let report = store::break_report(&state.db, id)
        .await?
        .ok_or_else(|| Problem::not_found("no such object"))?;
    Ok(HttpResponse::Ok().json(report))
}
