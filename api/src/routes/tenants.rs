//! `/v1/tenants` and `/v1/tenants/{id}/clients`: the platform manages tenants; each tenant's
//! admins manage its API clients.
//!
//! Isolation (tested per endpoint by `api/tests/isolation.rs`): an id the caller may not see
//! answers 404 exactly like an id that does not exist. The order of checks is what makes
//! this true: first "may this caller see this tenant at all" (404), then "may this role do
//! this" (403), then the store, whose queries are scoped by tenant id.
//!
//! Every change runs in one write transaction with its audit record ([`crate::audit`]).
//! Secrets are hashed on the blocking pool before the transaction starts, so no database
//! lock is held while argon2 runs.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tenants::store;
use tenants::{
    Action, ApiClient, DisplaySettings, NewClient, NewTenant, Role, Tenant, TenantKind,
    TenantStatus,
};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::extract::{Query, path_uuid};
use crate::problem::Problem;
use crate::server::AppState;

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let resource = super::resource;
    cfg.service(
        resource("/v1/tenants")
            .get(list_tenants)
            .post(create_tenant),
    )
    .service(resource("/v1/tenants/{id}").get(get_tenant))
    .service(resource("/v1/tenants/{id}/suspend").post(suspend_tenant))
    .service(resource("/v1/tenants/{id}/resume").post(resume_tenant))
    .service(
        resource("/v1/tenants/{id}/clients")
            .get(list_clients)
            .post(create_client),
    )
    .service(resource("/v1/tenants/{id}/clients/{client}").get(get_client))
    .service(resource("/v1/tenants/{id}/clients/{client}/revoke").post(revoke_client))
    .service(resource("/v1/tenants/{id}/clients/{client}/rotate").post(rotate_client));
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn created<T: Serialize>(location: String, body: &T) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((LOCATION, location))
        .json(body)
}

// ---------------------------------------------------------------------------------------
// Tenants

/// What it takes to create a tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// `distributor` or `manager` (the platform tenant is made by `wrapd bootstrap`).
    pub kind: TenantKind,
    /// Unique name, 1 to 200 characters.
    pub name: String,
    /// Name shown to the tenant's own users; defaults to `name`.
    pub display_name: Option<String>,
    /// Where the platform reaches the tenant's operations team.
    pub contact_email: String,
}

/// Create a distributor or manager tenant (platform admin).
#[utoipa::path(
    post, path = "/v1/tenants", tag = "platform",
    request_body = CreateTenant,
    responses(
        (status = 201, body = Tenant),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Name taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_tenant(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ManageTenants)?;
    Query::parse(&req, &[])?;
    let body: CreateTenant = crate::extract::json(&req, payload).await?;
    if body.kind == TenantKind::Platform {
        return Err(Problem::invalid_field(
            "kind",
            "must be distributor or manager; the platform tenant is created by `wrapd bootstrap`",
        ));
    }
    let new = NewTenant {
        kind: body.kind,
        display: DisplaySettings {
            display_name: body.display_name.unwrap_or_else(|| body.name.clone()),
            contact_email: body.contact_email,
        },
        name: body.name,
    };
    new.validate()?;
    crate::onboarding::ensure_base_currency(&state.ledger).await?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let tenant = crate::onboarding::open_tenant(&txn, &state.ledger, &new, now).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "tenant.create",
            target_tenant_id: Some(tenant.id),
            target_type: "tenant",
            target_id: tenant.id.to_string(),
            detail: json!({ "kind": tenant.kind, "name": tenant.name }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(created(format!("/v1/tenants/{}", tenant.id), &tenant))
}

/// List tenants, oldest first (platform).
#[utoipa::path(
    get, path = "/v1/tenants", tag = "platform",
    params(
        ("limit" = Option<u64>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, body = Page<Tenant>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_tenants(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadTenants)?;
    let q = Query::parse(&req, &["limit", "cursor"])?;
    let page = store::list_tenants(&state.db, q.id_cursor()?, q.limit(100, 1000)?).await?;
    Ok(HttpResponse::Ok().json(Page {
        items: page.items,
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// One tenant: any tenant for the platform, otherwise only the caller's own.
#[utoipa::path(
    get, path = "/v1/tenants/{id}", tag = "tenants",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Tenant),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_tenant(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    Query::parse(&req, &[])?;
    let tenant = store::get_tenant_for(&state.db, &caller.principal, id).await?;
    Ok(HttpResponse::Ok().json(tenant))
}

/// Suspend a tenant: its tokens stop working at once, its data stays (platform admin).
#[utoipa::path(
    post, path = "/v1/tenants/{id}/suspend", tag = "platform",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Tenant),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The platform tenant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn suspend_tenant(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    set_status(req, caller, state, TenantStatus::Suspended).await
}

/// Resume a suspended tenant (platform admin).
#[utoipa::path(
    post, path = "/v1/tenants/{id}/resume", tag = "platform",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Tenant),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn resume_tenant(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    set_status(req, caller, state, TenantStatus::Active).await
}

async fn set_status(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    status: TenantStatus,
) -> Result<HttpResponse, Problem> {
    let id = path_uuid(&req, "id")?;
    // Another tenant's id must look like a missing one, even to a caller who may not act.
    if !caller.principal.can_see_tenant(id) {
        return Err(Problem::not_found("no such object"));
    }
    caller.principal.authorize(Action::ManageTenants)?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let before = store::get_tenant(&txn, id).await?;
    let tenant = store::set_status(&txn, id, status, now).await?;
    if before.status != tenant.status {
        audit::record(
            &txn,
            &caller,
            &Change {
                action: match status {
                    TenantStatus::Suspended => "tenant.suspend",
                    TenantStatus::Active => "tenant.resume",
                },
                target_tenant_id: Some(id),
                target_type: "tenant",
                target_id: id.to_string(),
                detail: json!({ "from": before.status, "to": tenant.status }),
            },
            now,
        )
        .await?;
    }
    txn.commit().await?;
    // As for a revocation: at once here, on announcement elsewhere (crate::auth_cache).
    state.auth_cache.forget_standings();
    Ok(HttpResponse::Ok().json(tenant))
}

// ---------------------------------------------------------------------------------------
// Clients

/// An API client as the API shows it (never its secret or hashes).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    /// The client's id in paths.
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The public id presented at the token endpoint.
    pub client_id: String,
    pub name: String,
    pub role: Role,
    /// `active` or `revoked`.
    pub status: &'static str,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation still works.
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<&ApiClient> for ClientView {
    fn from(c: &ApiClient) -> Self {
        Self {
            id: c.id,
            tenant_id: c.tenant_id,
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            role: c.role,
            status: if c.is_revoked() { "revoked" } else { "active" },
            revoked_at: c.revoked_at,
            previous_secret_valid_until: c.secrets.previous_valid_until,
            created_at: c.created_at,
        }
    }
}

/// A client with its new secret: the only answer that ever shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientWithSecret {
    #[serde(flatten)]
    pub client: ClientView,
    /// Shown once; only its argon2id hash is kept.
    pub client_secret: String,
}

/// What it takes to create a client.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    /// A label for people, 1 to 200 characters.
    pub name: String,
    /// `admin`, `operator` or `viewer`.
    pub role: Role,
}

/// Options of a secret rotation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateClient {
    /// How long the old secret keeps working, 0 to 2592000 seconds (30 days); default
    /// `auth.default_rotation_overlap_seconds` (a day).
    pub overlap_seconds: Option<u64>,
}

/// 404 for a tenant the caller may not see, then the role check.
fn check_clients(caller: &Caller, tenant_id: Uuid, action: Action) -> Result<(), Problem> {
    if !caller.principal.can_see_tenant(tenant_id) {
        return Err(Problem::not_found("no such object"));
    }
    caller.principal.authorize(action)?;
    Ok(())
}

/// Create an API client of a tenant (its admins, or a platform admin).
#[utoipa::path(
    post, path = "/v1/tenants/{id}/clients", tag = "tenants",
    params(("id" = Uuid, Path)),
    request_body = CreateClient,
    responses(
        (status = 201, body = ClientWithSecret),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_client(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let tenant_id = path_uuid(&req, "id")?;
    check_clients(&caller, tenant_id, Action::ManageClients { tenant_id })?;
    Query::parse(&req, &[])?;
    let body: CreateClient = crate::extract::json(&req, payload).await?;
    let new = NewClient {
        name: body.name,
        role: body.role,
    };
    new.validate()?;
    let now = Utc::now();
    let (client, secret) = state
        .hash(move || ApiClient::create(tenant_id, &new, now))
        .await??;
    let txn = ledger::begin_write(&state.db).await?;
    store::insert_client(&txn, &client).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "client.create",
            target_tenant_id: Some(tenant_id),
            target_type: "client",
            target_id: client.id.to_string(),
            detail: json!({ "client_id": client.client_id, "name": client.name, "role": client.role }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(created(
        format!("/v1/tenants/{tenant_id}/clients/{}", client.id),
        &ClientWithSecret {
            client: ClientView::from(&client),
            client_secret: secret.expose().to_owned(),
        },
    ))
}

/// List a tenant's API clients, oldest first (its admins, or the platform).
#[utoipa::path(
    get, path = "/v1/tenants/{id}/clients", tag = "tenants",
    params(
        ("id" = Uuid, Path),
        ("limit" = Option<u64>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, body = Page<ClientView>),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_clients(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let tenant_id = path_uuid(&req, "id")?;
    check_clients(&caller, tenant_id, Action::ReadClients { tenant_id })?;
    let q = Query::parse(&req, &["limit", "cursor"])?;
    // An unknown tenant is a 404, not an empty list.
    store::get_tenant(&state.db, tenant_id).await?;
    let page =
        store::list_clients(&state.db, tenant_id, q.id_cursor()?, q.limit(100, 1000)?).await?;
    Ok(HttpResponse::Ok().json(Page {
        items: page.items.iter().map(ClientView::from).collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

/// One API client of a tenant.
#[utoipa::path(
    get, path = "/v1/tenants/{id}/clients/{client}", tag = "tenants",
    params(("id" = Uuid, Path), ("client" = Uuid, Path)),
    responses(
        (status = 200, body = ClientView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_client(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let tenant_id = path_uuid(&req, "id")?;
    let id = path_uuid(&req, "client")?;
    check_clients(&caller, tenant_id, Action::ReadClients { tenant_id })?;
    Query::parse(&req, &[])?;
    let client = store::get_client(&state.db, tenant_id, id).await?;
    Ok(HttpResponse::Ok().json(ClientView::from(&client)))
}

/// Revoke an API client: its secret and its tokens stop working at once.
#[utoipa::path(
    post, path = "/v1/tenants/{id}/clients/{client}/revoke", tag = "tenants",
    params(("id" = Uuid, Path), ("client" = Uuid, Path)),
    responses(
        (status = 200, body = ClientView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The platform's last admin client", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_client(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let tenant_id = path_uuid(&req, "id")?;
    let id = path_uuid(&req, "client")?;
    check_clients(&caller, tenant_id, Action::ManageClients { tenant_id })?;
    let now = Utc::now();
    let txn = ledger::begin_write(&state.db).await?;
    let before = store::get_client(&txn, tenant_id, id).await?;
    if before.is_revoked() {
        return Ok(HttpResponse::Ok().json(ClientView::from(&before)));
    }
    let tenant = store::get_tenant(&txn, tenant_id).await?;
    if tenant.kind == TenantKind::Platform
        && before.role == Role::Admin
        && store::count_live_admins(&txn, tenant_id).await? <= 1
    {
        return Err(Problem::conflict(
            "this is the platform's last admin client: create another admin client first, \
             or nobody could manage tenants any more",
        ));
    }
    let client = store::revoke_client(&txn, tenant_id, id, now).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "client.revoke",
            target_tenant_id: Some(tenant_id),
            target_type: "client",
            target_id: id.to_string(),
            detail: json!({ "client_id": client.client_id }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    // This process refuses the client's tokens from now on; the others when the
    // announcement of the revocation reaches them (crate::auth_cache).
    state.auth_cache.forget_standings();
    Ok(HttpResponse::Ok().json(ClientView::from(&client)))
}

/// Give an API client a new secret; the old one keeps working for the overlap.
#[utoipa::path(
    post, path = "/v1/tenants/{id}/clients/{client}/rotate", tag = "tenants",
    params(("id" = Uuid, Path), ("client" = Uuid, Path)),
    request_body(content = Option<RotateClient>, description = "Optional; an empty body takes the defaults"),
    responses(
        (status = 200, body = ClientWithSecret),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Revoked, or rotated concurrently", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_client(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let tenant_id = path_uuid(&req, "id")?;
    let id = path_uuid(&req, "client")?;
    check_clients(&caller, tenant_id, Action::ManageClients { tenant_id })?;
    Query::parse(&req, &[])?;
    let body: Option<RotateClient> = crate::extract::optional_json(&req, payload).await?;
    let overlap_seconds = body
        .unwrap_or_default()
        .overlap_seconds
        .unwrap_or(state.rotation_overlap_seconds);
    let overlap = i64::try_from(overlap_seconds)
        .ok()
        .filter(|s| *s <= 30 * 86_400)
        .and_then(chrono::Duration::try_seconds)
        .ok_or_else(|| {
            Problem::invalid_field("overlap_seconds", "must be between 0 and 2592000")
        })?;
    let now = Utc::now();
    let client = store::get_client(&state.db, tenant_id, id).await?;
    let read = client.clone();
    let (hashes, secret) = state.hash(move || read.rotated(now, overlap)).await??;
    let txn = ledger::begin_write(&state.db).await?;
    // Applied only if nobody rotated or revoked it since it was read (else 409).
    let client = store::apply_rotation(&txn, &client, hashes).await?;
    audit::record(
        &txn,
        &caller,
        &Change {
            action: "client.rotate",
            target_tenant_id: Some(tenant_id),
            target_type: "client",
            target_id: id.to_string(),
            detail: json!({
                "client_id": client.client_id,
                "previous_secret_valid_until": client.secrets.previous_valid_until,
            }),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(ClientWithSecret {
        client: ClientView::from(&client),
        client_secret: secret.expose().to_owned(),
    }))
}
