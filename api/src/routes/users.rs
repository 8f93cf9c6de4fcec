//! `/v1/users`: a tenant's admins manage its console users (the people who sign in to
//! `/console`), always of the caller's own tenant.
//!
//! Isolation (tested by `api/tests/http/console.rs`): every query names the caller's tenant,
//! so another tenant's user id answers 404 exactly like an id that does not exist. The order
//! of checks: the role (403: only an admin client manages users), then the store.
//!
//! Every change runs in one write transaction with its audit record ([`crate::audit`]).
//! Passwords are hashed on the blocking pool before the transaction starts, so no database
//! lock is held while argon2 runs; a password never reaches the audit log or a response.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use tenants::Action;
use tenants::users::{self, Access, NewUser, Password, User, UserRole, UserStatus};
use utoipa::ToSchema;

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::extract::{Query, path_uuid};
use crate::problem::Problem;
use crate::routes::tenants::Page;
use crate::server::AppState;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(resource("/v1/users").get(list_users).post(create_user))
        .service(resource("/v1/users/{id}").get(get_user))
        .service(resource("/v1/users/{id}/suspend").post(suspend_user))
        .service(resource("/v1/users/{id}/resume").post(resume_user));
}

/// What it takes to create a console user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// The person's name, 1 to 200 characters.
    pub name: String,
    /// Their sign-in email, unique in the tenant (case does not matter).
    pub email: String,
    /// `operator` (platform), `head_office` or `adviser` (distributor), `manager` (manager).
    pub role: UserRole,
    /// `read` (sees, changes nothing) or `write`.
    pub access: Access,
    /// The first password, 12 to 128 characters; only its argon2id hash is kept.
    #[schema(value_type = String, format = Password)]
    pub password: Password,
    /// An adviser's branch (`/v1/branches`): required for an adviser, refused for any other
    /// role.
    #[serde(default)]
    pub branch_id: Option<uuid::Uuid>,
}

fn manage(caller: &Caller) -> Result<uuid::Uuid, Problem> {
    let tenant_id = caller.principal.tenant_id;
    caller
        .principal
        .authorize(Action::ManageUsers { tenant_id })?;
    Ok(tenant_id)
}

/// Create a console user of the caller's tenant (its admins).
#[utoipa::path(
    post, path = "/v1/users", tag = "users",
    request_body = CreateUser,
    responses(
        (status = 201, body = User),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Email taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_user(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let tenant_id = manage(&caller)?;
    Query::parse(&req, &[])?;
    let body: CreateUser = crate::extract::json(&req, payload).await?;
    let tenant = tenants::store::get_tenant(&state.db, tenant_id).await?;
    let new = NewUser {
        name: body.name,
        email: body.email,
        role: body.role,
        access: body.access,
        password: body.password,
        branch_id: body.branch_id,
    };
    let now = Utc::now();
    let (user, hash) = state
        .hash(move || users::prepare(&tenant, &new, now))
        .await??;
    let txn = ledger::begin_write(&state.db).await?;
    if let Some(branch_id) = user.branch_id {
        tenants::branches::require(&txn, tenant_id, "branch_id", branch_id).await?;
    }
    users::insert_user(&txn, &user, &hash).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "user.create",
            target_tenant_id: Some(tenant_id),
            target_type: "user",
            target_id: user.id.to_string(),
            detail: json!({
                "name": user.name, "email": user.email, "role": user.role, "access": user.access,
                "branch_id": user.branch_id,
            }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/v1/users/{}", user.id)))
        .json(&user))
}

/// List the console users of the caller's tenant, oldest first (its admins).
#[utoipa::path(
    get, path = "/v1/users", tag = "users",
    params(
        ("limit" = Option<u64>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, body = Page<User>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_users(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let tenant_id = manage(&caller)?;
    let q = Query::parse(&req, &["limit", "cursor"])?;
    let page = users::list_users(&state.db, tenant_id, q.id_cursor()?, q.limit(100, 1000)?).await?;
    Ok(HttpResponse::Ok().json(Page {
        items: page.items,
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// One console user of the caller's tenant (its admins).
#[utoipa::path(
    get, path = "/v1/users/{id}", tag = "users",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = User),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_user(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let tenant_id = manage(&caller)?;
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    Ok(HttpResponse::Ok().json(users::get_user(&state.db, tenant_id, id).await?))
}

/// Suspend a console user: their sessions end at once (its admins).
#[utoipa::path(
    post, path = "/v1/users/{id}/suspend", tag = "users",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = User),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn suspend_user(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    set_status(req, caller, state, UserStatus::Suspended).await
}

/// Resume a suspended or locked console user, clearing its failed sign-ins (its admins).
#[utoipa::path(
    post, path = "/v1/users/{id}/resume", tag = "users",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = User),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn resume_user(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    set_status(req, caller, state, UserStatus::Active).await
}

async fn set_status(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    status: UserStatus,
) -> Result<HttpResponse, Problem> {
    let tenant_id = manage(&caller)?;
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let before = users::get_user(&txn, tenant_id, id).await?;
    let user = users::set_status(&txn, tenant_id, id, status, now).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: match status {
                UserStatus::Active => "user.resume",
                UserStatus::Suspended | UserStatus::Locked => "user.suspend",
            },
            target_tenant_id: Some(tenant_id),
            target_type: "user",
            target_id: id.to_string(),
            detail: json!({ "email": user.email, "from": before.status, "to": user.status }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(user))
}
