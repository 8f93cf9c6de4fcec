//! Persistence of tenants and API clients (sea-orm, raw SQL; SQLite and PostgreSQL).
//!
//! Invariants this module enforces:
//! * every function that acts for a tenant takes its `tenant_id` and puts it in the `WHERE`
//!   clause, so another tenant's id answers [`TenantsError::NotFound`], exactly like an id that
//!   does not exist; the only unscoped lookups are the platform's tenant reads and
//!   [`find_client_by_client_id`] / [`authenticate`] (the token endpoint, before a tenant is
//!   known);
//! * at most one platform tenant: checked before the insert for a clear error, and enforced by
//!   the `tenants_one_platform` unique index against races;
//! * secrets are hashed before they reach SQL; the plaintext is returned once to the caller;
//! * a revoked client stays revoked (revoking again keeps the first time), and a rotation is
//!   applied only to the hash it was computed from (two concurrent rotations: one wins, the
//!   other gets a conflict instead of silently dropping a secret).
//!
//! Times are BIGINT microseconds since the epoch, ids are bound as uuids, as in the ledger.
//! Hashing a secret costs tens of milliseconds of CPU: the API hashes on a blocking thread and
//! uses the split forms ([`ApiClient::create`] + [`insert_client`], [`ApiClient::rotated`] +
//! [`apply_rotation`], [`check_secret`] + [`principal_of`]).

use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, SqlErr, Statement, Value};
use uuid::Uuid;

use crate::client::{ApiClient, NewClient, PlainSecret, Role, SecretHashes};
use crate::error::TenantsError;
use crate::principal::Principal;
use crate::tenant::{DisplaySettings, NewTenant, Tenant, TenantKind, TenantStatus};

/// Largest page a list returns.
pub const MAX_PAGE: u64 = 1000;

/// One page of a list ordered by id, and the cursor of the next page (`None` at the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<Uuid>,
}

pub(crate) fn p(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    }
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(us: i64) -> Result<DateTime<Utc>, TenantsError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| TenantsError::Corrupt(format!("time {us} out of range")))
}

pub(crate) fn get<T: sea_orm::TryGetable>(
    row: &QueryResult,
    idx: usize,
) -> Result<T, TenantsError> {
    Ok(row.try_get_by_index::<T>(idx)?)
}

pub(crate) async fn query<C: ConnectionTrait>(
    db: &C,
    sql: String,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, TenantsError> {
    let backend = db.get_database_backend();
    Ok(db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?)
}

pub(crate) async fn exec<C: ConnectionTrait>(
    db: &C,
    sql: String,
    values: Vec<Value>,
) -> Result<u64, TenantsError> {
    let backend = db.get_database_backend();
    Ok(db
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
        .rows_affected())
}

pub(crate) fn check_limit(limit: u64) -> Result<i64, TenantsError> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(TenantsError::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    // `limit + 1` rows are fetched to know whether there is a next page.
    Ok(limit as i64 + 1)
}

pub(crate) fn page<T>(mut items: Vec<T>, limit: u64, id: impl Fn(&T) -> Uuid) -> Page<T> {
    let next_cursor = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items.last().map(id)
    } else {
        None
    };
    Page { items, next_cursor }
}

// ---------------------------------------------------------------------------------------
// Tenants

const TENANT_COLS: &str = "id, kind, name, status, display_name, contact_email, created_at";

fn tenant_from_row(row: &QueryResult) -> Result<Tenant, TenantsError> {
    let kind: String = get(row, 1)?;
    let status: String = get(row, 3)?;
    Ok(Tenant {
        id: get(row, 0)?,
        kind: TenantKind::parse(&kind)
            .ok_or_else(|| TenantsError::Corrupt(format!("unknown tenant kind {kind:?}")))?,
        name: get(row, 2)?,
        status: TenantStatus::parse(&status)
            .ok_or_else(|| TenantsError::Corrupt(format!("unknown tenant status {status:?}")))?,
        display: DisplaySettings {
            display_name: get(row, 4)?,
            contact_email: get(row, 5)?,
        },
        created_at: from_micros(get(row, 6)?)?,
    })
}

/// Creates a tenant, active. Refuses a second platform tenant and a duplicate name
/// ([`TenantsError::Conflict`]).
pub async fn create_tenant<C: ConnectionTrait>(
    db: &C,
    new: &NewTenant,
    now: DateTime<Utc>,
) -> Result<Tenant, TenantsError> {
    new.validate()?;
    if new.kind == TenantKind::Platform && find_platform(db).await?.is_some() {
        return Err(TenantsError::Conflict(
            "a platform tenant already exists".into(),
        ));
    }
    let b = db.get_database_backend();
    let exists = query(
        db,
        format!("SELECT 1 FROM tenants WHERE name = {}", p(b, 1)),
        vec![new.name.clone().into()],
    )
    .await?;
    if !exists.is_empty() {
        return Err(TenantsError::Conflict(format!(
            "a tenant named {:?} already exists",
            new.name
        )));
    }
    let tenant = Tenant {
        id: Uuid::now_v7(),
        kind: new.kind,
        name: new.name.clone(),
        status: TenantStatus::Active,
        display: new.display.clone(),
        created_at: crate::to_micros_precision(now),
    };
    let placeholders: Vec<String> = (1..=8).map(|n| p(b, n)).collect();
    let sql = format!(
        "INSERT INTO tenants ({TENANT_COLS}, updated_at) VALUES ({})",
        placeholders.join(", ")
    );
    let values: Vec<Value> = vec![
        tenant.id.into(),
        tenant.kind.as_str().into(),
        tenant.name.clone().into(),
        tenant.status.as_str().into(),
        tenant.display.display_name.clone().into(),
        tenant.display.contact_email.clone().into(),
        micros(tenant.created_at).into(),
        micros(tenant.created_at).into(),
    ];
    exec(db, sql, values).await.map_err(|e| match e {
        TenantsError::Db(ref db_err) if is_unique_violation(db_err) => TenantsError::Conflict(
            "a platform tenant or a tenant with this name already exists".into(),
        ),
        other => other,
    })?;
    Ok(tenant)
}

pub(crate) fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

fn is_foreign_key_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_)))
}

/// The tenant `id` (platform view: no scoping).
pub async fn get_tenant<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Tenant, TenantsError> {
    let b = db.get_database_backend();
    let rows = query(
        db,
        format!("SELECT {TENANT_COLS} FROM tenants WHERE id = {}", p(b, 1)),
        vec![id.into()],
    )
    .await?;
    rows.first()
        .map(tenant_from_row)
        .transpose()?
        .ok_or(TenantsError::NotFound)
}

/// The tenant `id` as `principal` may see it: its own tenant, or any for the platform;
/// anything else is [`TenantsError::NotFound`].
pub async fn get_tenant_for<C: ConnectionTrait>(
    db: &C,
    principal: &Principal,
    id: Uuid,
) -> Result<Tenant, TenantsError> {
    if !principal.can_see_tenant(id) {
        return Err(TenantsError::NotFound);
    }
    get_tenant(db, id).await
}

/// The tenant named `name`, if any (the console's sign-in names its tenant before anyone is
/// known; names are unique, `tenants` is a reference table on Citus).
pub async fn find_tenant_by_name<C: ConnectionTrait>(
    db: &C,
    name: &str,
) -> Result<Option<Tenant>, TenantsError> {
    let b = db.get_database_backend();
    let rows = query(
        db,
        format!("SELECT {TENANT_COLS} FROM tenants WHERE name = {}", p(b, 1)),
        vec![name.to_owned().into()],
    )
    .await?;
    rows.first().map(tenant_from_row).transpose()
}

/// The platform tenant, if it has been created.
pub async fn find_platform<C: ConnectionTrait>(db: &C) -> Result<Option<Tenant>, TenantsError> {
    let rows = query(
        db,
        format!("SELECT {TENANT_COLS} FROM tenants WHERE kind = 'platform'"),
        vec![],
    )
    .await?;
    rows.first().map(tenant_from_row).transpose()
}

/// Tenants ordered by id (creation order), `limit` after the cursor `after`.
pub async fn list_tenants<C: ConnectionTrait>(
    db: &C,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<Tenant>, TenantsError> {
    let fetch = check_limit(limit)?;
    let b = db.get_database_backend();
    let (sql, values): (String, Vec<Value>) = match after {
        Some(cursor) => (
            format!(
                "SELECT {TENANT_COLS} FROM tenants WHERE id > {} ORDER BY id LIMIT {}",
                p(b, 1),
                p(b, 2)
            ),
            vec![cursor.into(), fetch.into()],
        ),
        None => (
            format!(
                "SELECT {TENANT_COLS} FROM tenants ORDER BY id LIMIT {}",
                p(b, 1)
            ),
            vec![fetch.into()],
        ),
    };
    let rows = query(db, sql, values).await?;
    let items = rows
        .iter()
        .map(tenant_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page(items, limit, |t| t.id))
}

/// Suspends or resumes tenant `id`; returns it as it now is. The platform tenant cannot be
/// suspended (nobody would be left to resume it).
pub async fn set_status<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    status: TenantStatus,
    now: DateTime<Utc>,
) -> Result<Tenant, TenantsError> {
    let tenant = get_tenant(db, id).await?;
    if tenant.kind == TenantKind::Platform && status == TenantStatus::Suspended {
        return Err(TenantsError::Conflict(
            "the platform tenant cannot be suspended".into(),
        ));
    }
    let b = db.get_database_backend();
    exec(
        db,
        format!(
            "UPDATE tenants SET status = {}, updated_at = {} WHERE id = {}",
            p(b, 1),
            p(b, 2),
            p(b, 3)
        ),
        vec![status.as_str().into(), micros(now).into(), id.into()],
    )
    .await?;
    announce_standing_change(db).await?;
    Ok(Tenant { status, ..tenant })
}

// ---------------------------------------------------------------------------------------
// API clients

const CLIENT_COLS: &str = "tenant_id, id, client_id, name, role, secret_hash, previous_secret_hash, \
     previous_valid_until, revoked_at, created_at";

fn client_from_row(row: &QueryResult) -> Result<ApiClient, TenantsError> {
    let role: String = get(row, 4)?;
    Ok(ApiClient {
        tenant_id: get(row, 0)?,
        id: get(row, 1)?,
        client_id: get(row, 2)?,
        name: get(row, 3)?,
        role: Role::parse(&role)
            .ok_or_else(|| TenantsError::Corrupt(format!("unknown role {role:?}")))?,
        secrets: SecretHashes {
            current_hash: get(row, 5)?,
            previous_hash: get(row, 6)?,
            previous_valid_until: get::<Option<i64>>(row, 7)?.map(from_micros).transpose()?,
        },
        revoked_at: get::<Option<i64>>(row, 8)?.map(from_micros).transpose()?,
        created_at: from_micros(get(row, 9)?)?,
    })
}

/// Creates a client of `tenant_id`; returns it and its secret, the only time the secret is
/// seen. An unknown tenant is [`TenantsError::NotFound`]. Hashes the secret (tens of
/// milliseconds of CPU) before it touches the database; on an async server, call
/// [`ApiClient::create`] on a blocking thread and then [`insert_client`] instead.
pub async fn create_client<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    new: &NewClient,
    now: DateTime<Utc>,
) -> Result<(ApiClient, PlainSecret), TenantsError> {
    new.validate()?;
    let (client, secret) = ApiClient::create(tenant_id, new, now)?;
    insert_client(db, &client).await?;
    Ok((client, secret))
}

/// Stores a client made by [`ApiClient::create`] (its secret already hashed). An unknown
/// tenant is [`TenantsError::NotFound`].
pub async fn insert_client<C: ConnectionTrait>(
    db: &C,
    client: &ApiClient,
) -> Result<(), TenantsError> {
    // Scoped existence check first, so the answer does not depend on constraint wording.
    get_tenant(db, client.tenant_id).await?;
    let b = db.get_database_backend();
    let placeholders: Vec<String> = (1..=10).map(|n| p(b, n)).collect();
    let sql = format!(
        "INSERT INTO tenant_api_clients ({CLIENT_COLS}) VALUES ({})",
        placeholders.join(", ")
    );
    let values: Vec<Value> = vec![
        client.tenant_id.into(),
        client.id.into(),
        client.client_id.clone().into(),
        client.name.clone().into(),
        client.role.as_str().into(),
        client.secrets.current_hash.clone().into(),
        client.secrets.previous_hash.clone().into(),
        client.secrets.previous_valid_until.map(micros).into(),
        client.revoked_at.map(micros).into(),
        micros(client.created_at).into(),
    ];
    exec(db, sql, values).await.map_err(|e| match e {
        TenantsError::Db(ref d) if is_foreign_key_violation(d) => TenantsError::NotFound,
        other => other,
    })?;
    Ok(())
}

/// Client `id` of `tenant_id`; another tenant's client is [`TenantsError::NotFound`].
pub async fn get_client<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<ApiClient, TenantsError> {
    let b = db.get_database_backend();
    let rows = query(
        db,
        format!(
            "SELECT {CLIENT_COLS} FROM tenant_api_clients WHERE tenant_id = {} AND id = {}",
            p(b, 1),
            p(b, 2)
        ),
        vec![tenant_id.into(), id.into()],
    )
    .await?;
    rows.first()
        .map(client_from_row)
        .transpose()?
        .ok_or(TenantsError::NotFound)
}

/// Clients of `tenant_id` ordered by id, `limit` after the cursor `after`.
pub async fn list_clients<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<ApiClient>, TenantsError> {
    let fetch = check_limit(limit)?;
    let b = db.get_database_backend();
    let (sql, values): (String, Vec<Value>) = match after {
        Some(cursor) => (
            format!(
                "SELECT {CLIENT_COLS} FROM tenant_api_clients WHERE tenant_id = {} AND id > {} \
                 ORDER BY id LIMIT {}",
                p(b, 1),
                p(b, 2),
                p(b, 3)
            ),
            vec![tenant_id.into(), cursor.into(), fetch.into()],
        ),
        None => (
            format!(
                "SELECT {CLIENT_COLS} FROM tenant_api_clients WHERE tenant_id = {} \
                 ORDER BY id LIMIT {}",
                p(b, 1),
                p(b, 2)
            ),
            vec![tenant_id.into(), fetch.into()],
        ),
    };
    let rows = query(db, sql, values).await?;
    let items = rows
        .iter()
        .map(client_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page(items, limit, |c| c.id))
}

/// Revokes client `id` of `tenant_id` at `now`; revoking twice keeps the first time.
pub async fn revoke_client<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<ApiClient, TenantsError> {
    let b = db.get_database_backend();
    exec(
        db,
        format!(
            "UPDATE tenant_api_clients SET revoked_at = {} \
             WHERE tenant_id = {} AND id = {} AND revoked_at IS NULL",
            p(b, 1),
            p(b, 2),
            p(b, 3)
        ),
        vec![micros(now).into(), tenant_id.into(), id.into()],
    )
    .await?;
    announce_standing_change(db).await?;
    get_client(db, tenant_id, id).await
}

/// How many unrevoked admin clients `tenant_id` has (revoking the platform's last one would
/// lock everybody out of tenant management, so the API refuses it).
pub async fn count_live_admins<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
) -> Result<u64, TenantsError> {
    let b = db.get_database_backend();
    let rows = query(
        db,
        format!(
            "SELECT COUNT(*) FROM tenant_api_clients \
             WHERE tenant_id = {} AND role = 'admin' AND revoked_at IS NULL",
            p(b, 1)
        ),
        vec![tenant_id.into()],
    )
    .await?;
    let n: i64 = rows.first().map(|r| get(r, 0)).transpose()?.unwrap_or(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Gives client `id` of `tenant_id` a new secret; the old one keeps working for `overlap`.
/// Returns the client and the new secret (shown once). A revoked client is a conflict.
/// Hashes on the calling thread; on an async server, call [`get_client`], then
/// [`ApiClient::rotated`] on a blocking thread, then [`apply_rotation`].
pub async fn rotate_secret<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
    overlap: Duration,
) -> Result<(ApiClient, PlainSecret), TenantsError> {
    let client = get_client(db, tenant_id, id).await?;
    let (hashes, secret) = client.rotated(now, overlap)?;
    let client = apply_rotation(db, &client, hashes).await?;
    Ok((client, secret))
}

/// Stores the hashes of a rotation computed from `client` (as read). Applied only if the
/// client is still unrevoked and still has the secret the rotation was computed from: two
/// concurrent rotations give one winner and one [`TenantsError::Conflict`], never a
/// silently dropped secret.
pub async fn apply_rotation<C: ConnectionTrait>(
    db: &C,
    client: &ApiClient,
    hashes: SecretHashes,
) -> Result<ApiClient, TenantsError> {
    let b = db.get_database_backend();
    let changed = exec(
        db,
        format!(
            "UPDATE tenant_api_clients SET secret_hash = {}, previous_secret_hash = {}, \
             previous_valid_until = {} \
             WHERE tenant_id = {} AND id = {} AND revoked_at IS NULL AND secret_hash = {}",
            p(b, 1),
            p(b, 2),
            p(b, 3),
            p(b, 4),
            p(b, 5),
            p(b, 6)
        ),
        vec![
            hashes.current_hash.clone().into(),
            hashes.previous_hash.clone().into(),
            hashes.previous_valid_until.map(micros).into(),
            client.tenant_id.into(),
            client.id.into(),
            client.secrets.current_hash.clone().into(),
        ],
    )
    .await?;
    if changed == 0 {
        return Err(TenantsError::Conflict(
            "the client was revoked or rotated concurrently".into(),
        ));
    }
    Ok(ApiClient {
        secrets: hashes,
        ..client.clone()
    })
}

/// The client with public id `client_id`, in any tenant (the token endpoint's lookup).
pub async fn find_client_by_client_id<C: ConnectionTrait>(
    db: &C,
    client_id: &str,
) -> Result<Option<ApiClient>, TenantsError> {
    let b = db.get_database_backend();
    let rows = query(
        db,
        format!(
            "SELECT {CLIENT_COLS} FROM tenant_api_clients WHERE client_id = {}",
            p(b, 1)
        ),
        vec![client_id.to_owned().into()],
    )
    .await?;
    rows.first().map(client_from_row).transpose()
}

/// An argon2id hash of a throwaway secret, verified against when the client id is unknown so
/// that an unknown id takes as long as a wrong secret.
fn dummy_client() -> Option<&'static ApiClient> {
    static DUMMY: OnceLock<Option<ApiClient>> = OnceLock::new();
    DUMMY
        .get_or_init(|| {
            ApiClient::create(
                Uuid::nil(),
                &NewClient {
                    name: "dummy".into(),
                    role: Role::Viewer,
                },
                Utc::now(),
            )
            .ok()
            .map(|(c, _)| c)
        })
        .as_ref()
}

/// Whether `secret` is the secret of `client` at `now`. With no client (an unknown
/// `client_id`), a throwaway hash is verified instead, so that an unknown id takes as long as
/// a wrong secret. CPU-bound (argon2id): on an async server, call it on a blocking thread.
pub fn check_secret(client: Option<&ApiClient>, secret: &str, now: DateTime<Utc>) -> bool {
    match client {
        Some(client) => client.verify_secret(secret, now),
        None => {
            if let Some(dummy) = dummy_client() {
                let _ = dummy.verify_secret(secret, now);
            }
            false
        }
    }
}

/// The principal of a client whose secret has been checked: `None` when its tenant is
/// suspended.
pub async fn principal_of<C: ConnectionTrait>(
    db: &C,
    client: &ApiClient,
) -> Result<Option<Principal>, TenantsError> {
    let tenant = get_tenant(db, client.tenant_id).await?;
    if !tenant.is_active() {
        return Ok(None);
    }
    Ok(Some(Principal {
        tenant_id: tenant.id,
        tenant_kind: tenant.kind,
        client_id: client.client_id.clone(),
        role: client.role,
    }))
}

/// The client credentials grant: the [`Principal`] for `client_id` and `secret` at `now`, or
/// `None` when the client is unknown or revoked, the secret is wrong or expired, or the
/// tenant is suspended (all one answer, `invalid_client`, to the caller). Hashes on the
/// calling thread (see [`check_secret`]).
pub async fn authenticate<C: ConnectionTrait>(
    db: &C,
    client_id: &str,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<Option<Principal>, TenantsError> {
    let client = find_client_by_client_id(db, client_id).await?;
    if !check_secret(client.as_ref(), secret, now) {
        return Ok(None);
    }
    match client {
        Some(client) => principal_of(db, &client).await,
        None => Ok(None),
    }
}

/// Whether a token's principal may still act: its tenant exists, is active and still has the
/// kind the token claims, and its client exists in that tenant, is not revoked and still has
/// the role the token claims. Call on every request (or keep a [`Standing`] only for as long
/// as [`STANDING_CHANNEL`] says nothing changed): suspension and revocation take effect at
/// once, not when the token expires.
pub async fn principal_is_live<C: ConnectionTrait>(
    db: &C,
    principal: &Principal,
) -> Result<bool, TenantsError> {
    Ok(standing(db, principal.tenant_id, &principal.client_id)
        .await?
        .is_some_and(|s| s.admits(principal)))
}

/// What decides whether a client's tokens are honoured, as stored now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    tenant_kind: String,
    tenant_status: String,
    role: String,
    revoked: bool,
}

impl Standing {
    /// Whether `principal` (from a verified token) may act on this standing.
    pub fn admits(&self, principal: &Principal) -> bool {
        self.tenant_kind == principal.tenant_kind.as_str()
            && self.tenant_status == TenantStatus::Active.as_str()
            && self.role == principal.role.as_str()
            && !self.revoked
    }
}

/// The standing of client `client_id` of `tenant_id`; `None` if there is no such client.
pub async fn standing<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    client_id: &str,
) -> Result<Option<Standing>, TenantsError> {
    let b = db.get_database_backend();
    let rows = query(
        db,
        format!(
            "SELECT t.kind, t.status, c.role, c.revoked_at FROM tenant_api_clients c \
             JOIN tenants t ON t.id = c.tenant_id \
             WHERE c.tenant_id = {} AND c.client_id = {}",
            p(b, 1),
            p(b, 2)
        ),
        vec![tenant_id.into(), client_id.to_owned().into()],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(Standing {
        tenant_kind: get(row, 0)?,
        tenant_status: get(row, 1)?,
        role: get(row, 2)?,
        revoked: get::<Option<i64>>(row, 3)?.is_some(),
    }))
}

/// The PostgreSQL notification channel on which every change of a [`Standing`] (a tenant
/// suspended or resumed, a client revoked) is announced, in the transaction that makes it,
/// so it arrives when that commits: a process that keeps standings (the API's
/// `auth_cache`) forgets them all when anything arrives on it.
pub const STANDING_CHANNEL: &str = "wrap_principal_standing";

/// Announces on [`STANDING_CHANNEL`] (PostgreSQL; SQLite has no notifications and nothing
/// keeps standings on it).
async fn announce_standing_change<C: ConnectionTrait>(db: &C) -> Result<(), TenantsError> {
    if db.get_database_backend() == DbBackend::Postgres {
        exec(
            db,
            format!("SELECT pg_notify('{STANDING_CHANNEL}', '')"),
            vec![],
        )
        .await?;
    }
    Ok(())
}
