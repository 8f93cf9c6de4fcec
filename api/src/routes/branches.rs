//! `/v1/branches` and `PUT /v1/customers/{id}/assignment`: a distributor's branches, and which
//! branch and adviser each customer has (the console shows an adviser their branch's
//! customers only: `wraps::customers::Scope`).
//!
//! Isolation (tested by `api/tests/http/branches.rs`): every query names the caller's tenant,
//! so another distributor's branch, user or customer answers 404 in a path and 422 naming the
//! field in a body, exactly like one that does not exist. Creating a branch is for the tenant's
//! admins (as creating users is); reading them for any of its clients; assigning a customer for
//! its writers (as changing the customer is). Each change commits with its audit record.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenants::Action;
use tenants::branches::{self, Branch};
use utoipa::ToSchema;
use uuid::Uuid;
use wraps::customers::{Customer, store};

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::extract::{Query, path_uuid};
use crate::problem::Problem;
use crate::routes::tenants::Page;
use crate::server::AppState;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(
        resource("/v1/branches")
            .get(list_branches)
            .post(create_branch),
    )
    .service(resource("/v1/branches/{id}").get(get_branch))
    .service(resource("/v1/customers/{id}/assignment").put(assign_customer));
}

/// What it takes to create a branch.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBranch {
    /// The distributor's own code for it, 1 to 20 ASCII letters, digits or `-`; unique.
    #[schema(example = "001")]
    pub code: String,
    /// 1 to 200 characters.
    #[schema(example = "本店営業部")]
    pub name: String,
}

/// Create a branch of the caller's distributor (its admins).
#[utoipa::path(
    post, path = "/v1/branches", tag = "branches",
    request_body = CreateBranch,
    responses(
        (status = 201, body = Branch),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Code taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_branch(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let tenant_id = caller.principal.tenant_id;
    caller
        .principal
        .authorize(Action::ManageUsers { tenant_id })?;
    Query::parse(&req, &[])?;
    let body: CreateBranch = crate::extract::json(&req, payload).await?;
    let tenant = tenants::store::get_tenant(&state.db, tenant_id).await?;
    let now = Utc::now();
    let branch = branches::prepare(&tenant, &body.code, &body.name, now)?;
    let txn = ledger::begin_write(&state.db).await?;
    branches::insert_branch(&txn, &branch).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "branch.create",
            target_tenant_id: Some(tenant_id),
            target_type: "branch",
            target_id: branch.id.to_string(),
            detail: json!(body),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/v1/branches/{}", branch.id)))
        .json(&branch))
}

/// The caller's branches, oldest first.
#[utoipa::path(
    get, path = "/v1/branches", tag = "branches",
    params(
        ("limit" = Option<u64>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, body = Page<Branch>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_branches(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadOwnData)?;
    let q = Query::parse(&req, &["limit", "cursor"])?;
    let page = branches::list_branches(
        &state.db,
        caller.principal.tenant_id,
        q.id_cursor()?,
        q.limit(100, 1000)?,
    )
    .await?;
    Ok(HttpResponse::Ok().json(Page {
        items: page.items,
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// One of the caller's branches.
#[utoipa::path(
    get, path = "/v1/branches/{id}", tag = "branches",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Branch),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_branch(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadOwnData)?;
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    let branch = branches::get_branch(&state.db, caller.principal.tenant_id, id)
        .await
        .map_err(|e| match e {
            tenants::TenantsError::NotFound => Problem::not_found(format!("no branch {id}")),
            other => other.into(),
        })?;
    Ok(HttpResponse::Ok().json(branch))
}

/// Where a customer belongs and who looks after them.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// One of the distributor's branches.
    pub branch_id: Uuid,
    /// An active adviser of that branch (a console user), or none yet.
    #[serde(default)]
    pub adviser_id: Option<Uuid>,
}

/// Put a customer in a branch, under an adviser of it (distributor writers).
#[utoipa::path(
    put, path = "/v1/customers/{id}/assignment", tag = "branches",
    params(("id" = Uuid, Path)),
    request_body = Assignment,
    responses(
        (status = 200, body = Customer),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No such branch, or the adviser does not work there", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn assign_customer(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    // Visibility before permission, as for every customer route.
    crate::routes::customers::find_customer(&state.db, &caller, id).await?;
    caller.principal.authorize(Action::ManageCustomers)?;
    let body: Assignment = crate::extract::json(&req, payload).await?;
    let tenant_id = caller.principal.tenant_id;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    store::customer_for_update(&txn, tenant_id, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no customer {id}")))?;
    let branch = branches::require(&txn, tenant_id, "branch_id", body.branch_id).await?;
    let adviser = match body.adviser_id {
        Some(adviser_id) => Some(
            tenants::users::get_user(&txn, tenant_id, adviser_id)
                .await
                .map_err(|e| match e {
                    tenants::TenantsError::NotFound => Problem::invalid_field(
                        "adviser_id",
                        format!("no user {adviser_id} of this distributor"),
                    ),
                    other => other.into(),
                })?,
        ),
        None => None,
    };
    wraps::customers::check_assignment(&branch, adviser.as_ref())?;
    let customer = store::set_assignment(&txn, tenant_id, id, branch.id, body.adviser_id, now)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no customer {id}")))?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "customer.assign",
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
