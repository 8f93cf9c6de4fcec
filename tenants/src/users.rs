//! Console users: the people of a tenant (head office, branch advisers, managers, the
//! platform's operators), as opposed to its API clients (machines). This module is the only
//! writer of `console_users`.
//!
//! Invariants this module enforces:
//! * a password is never stored, only its argon2id PHC hash ([`prepare`]); the plaintext is
//!   redacted from `Debug` ([`Password`]);
//! * a user's role fits its tenant's kind (an operator only on the platform, head office and
//!   advisers only at a distributor, a manager user only at a manager), checked by [`prepare`];
//! * an email is unique per tenant, case-insensitively: it is stored lower-cased and the
//!   schema's `UNIQUE (tenant_id, email)` holds against races;
//! * after `max_failed` wrong passwords in a row an active user is locked ([`record_failure`],
//!   one atomic UPDATE, so concurrent guesses cannot slip past the limit); only an admin
//!   resuming the user ([`set_status`]) unlocks it, and a right password resets the count;
//! * every query names the tenant: another tenant's user answers [`TenantsError::NotFound`].
//!
//! A signed-in user acts as a [`Principal`] of its tenant ([`User::principal`]): read-write
//! access is the `operator` role, read-only the `viewer` role, never `admin`, so the console
//! can do nothing the tenant's operator API client could not.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, QueryResult, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::client::{Role, hash_text, matches_hash};
use crate::error::TenantsError;
use crate::principal::Principal;
use crate::store::{
    Page, check_limit, exec, from_micros, get, is_unique_violation, micros, p, page, query,
};
use crate::tenant::{Tenant, TenantKind, validate_email, validate_name};

/// Wrong passwords in a row before a user is locked, unless configured otherwise.
pub const DEFAULT_MAX_FAILED_SIGN_INS: u32 = 5;
/// Shortest password, in characters (NIST SP 800-63B asks for at least 8; 12 for staff).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password, in characters: bounds the argon2 input.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// What a user does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    /// The platform's operations staff (end of day, audit log).
    Operator,
    /// A distributor's head office: the whole book and every customer.
    HeadOffice,
    /// A distributor's branch adviser, in front of customers.
    Adviser,
    /// A manager's staff: strategies and subscribers.
    Manager,
}

impl UserRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::HeadOffice => "head_office",
            Self::Adviser => "adviser",
            Self::Manager => "manager",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "operator" => Some(Self::Operator),
            "head_office" => Some(Self::HeadOffice),
            "adviser" => Some(Self::Adviser),
            "manager" => Some(Self::Manager),
            _ => None,
        }
    }

    /// The kind of tenant this role exists in.
    pub fn tenant_kind(self) -> TenantKind {
        match self {
            Self::Operator => TenantKind::Platform,
            Self::HeadOffice | Self::Adviser => TenantKind::Distributor,
            Self::Manager => TenantKind::Manager,
        }
    }
}

/// Whether a user may change anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            _ => None,
        }
    }
}

/// Whether a user may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    /// Stopped by an admin.
    Suspended,
    /// Too many wrong passwords; an admin resumes it.
    Locked,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Locked => "locked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            "locked" => Some(Self::Locked),
            _ => None,
        }
    }
}

/// A plaintext password on its way to the hash. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A user as stored, without its password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    /// Lower-cased; unique within the tenant.
    pub email: String,
    pub role: UserRole,
    pub access: Access,
    pub status: UserStatus,
    /// Wrong passwords since the last right one.
    pub failed_sign_ins: u32,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// An adviser's branch (`tenants::branches`); no other role has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch_id: Option<Uuid>,
}

impl User {
    /// The principal this user acts as: its tenant, `operator` for read-write access and
    /// `viewer` for read-only, named `user:<email>` in the audit log.
    pub fn principal(&self, tenant_kind: TenantKind) -> Principal {
        Principal {
            tenant_id: self.tenant_id,
            tenant_kind,
            client_id: self.actor(),
            role: match self.access {
                Access::Write => Role::Operator,
                Access::Read => Role::Viewer,
            },
        }
    }

    /// How the audit log names this user.
    pub fn actor(&self) -> String {
        format!("user:{}", self.email)
    }
}

/// What it takes to create a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub email: String,
    pub role: UserRole,
    pub access: Access,
    pub password: Password,
    /// The branch of an adviser: required for one, refused for any other role.
    pub branch_id: Option<Uuid>,
}

/// A password: [`MIN_PASSWORD_CHARS`] to [`MAX_PASSWORD_CHARS`] characters, no control
/// characters.
pub fn validate_password(field: &'static str, password: &Password) -> Result<(), TenantsError> {
    let n = password.expose().chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(TenantsError::invalid(
            field,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(TenantsError::invalid(
            field,
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    if password.expose().chars().any(char::is_control) {
        return Err(TenantsError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Emails compare without case: `Hanako@Bank.example` and `hanako@bank.example` are one user.
pub fn normalise_email(email: &str) -> String {
    email.to_lowercase()
}

/// A new active user of `tenant` and its password hash, after every rule is checked. CPU-bound
/// (argon2id): on an async server, call it on a blocking thread, then [`insert_user`].
pub fn prepare(
    tenant: &Tenant,
    new: &NewUser,
    now: DateTime<Utc>,
) -> Result<(User, String), TenantsError> {
    validate_name("name", &new.name)?;
    validate_email("email", &new.email)?;
    if new.role.tenant_kind() != tenant.kind {
        return Err(TenantsError::invalid(
            "role",
            format!(
                "a {} tenant has no {} users",
                tenant.kind.as_str(),
                new.role.as_str()
            ),
        ));
    }
    match (new.role, new.branch_id) {
        (UserRole::Adviser, None) => {
            return Err(TenantsError::invalid(
                "branch_id",
                "an adviser works at a branch: give its id",
            ));
        }
        (role, Some(_)) if role != UserRole::Adviser => {
            return Err(TenantsError::invalid(
                "branch_id",
                format!("only advisers have a branch, not {} users", role.as_str()),
            ));
        }
        _ => {}
    }
    validate_password("password", &new.password)?;
    let hash = hash_text(new.password.expose())?;
    let at = crate::to_micros_precision(now);
    let user = User {
        id: Uuid::now_v7(),
        tenant_id: tenant.id,
        name: new.name.clone(),
        email: normalise_email(&new.email),
        role: new.role,
        access: new.access,
        status: UserStatus::Active,
        failed_sign_ins: 0,
        last_sign_in_at: None,
        created_at: at,
        branch_id: new.branch_id,
    };
    Ok((user, hash))
}

pub(crate) const USER_COLS: &str = "tenant_id, id, name, email, role, access, status, \
     failed_sign_ins, last_sign_in_at, created_at, branch_id";
/// How many columns [`USER_COLS`] names: where the columns a query selects after them start.
pub(crate) const USER_COL_COUNT: usize = 11;

/// A user from [`USER_COLS`] starting at column `at`.
pub(crate) fn user_from_row(row: &QueryResult, at: usize) -> Result<User, TenantsError> {
    let role: String = get(row, at + 4)?;
    let access: String = get(row, at + 5)?;
    let status: String = get(row, at + 6)?;
    let failed: i64 = get(row, at + 7)?;
    Ok(User {
        tenant_id: get(row, at)?,
        id: get(row, at + 1)?,
        name: get(row, at + 2)?,
        email: get(row, at + 3)?,
        role: UserRole::parse(&role)
            .ok_or_else(|| TenantsError::Corrupt(format!("unknown user role {role:?}")))?,
        access: Access::parse(&access)
            .ok_or_else(|| TenantsError::Corrupt(format!("unknown access {access:?}")))?,
        status: UserStatus::parse(&status)
            .ok_or_else(|| TenantsError::Corrupt(format!("unknown user status {status:?}")))?,
        failed_sign_ins: u32::try_from(failed).unwrap_or(u32::MAX),
        last_sign_in_at: get::<Option<i64>>(row, at + 8)?
            .map(from_micros)
            .transpose()?,
        created_at: from_micros(get(row, at + 9)?)?,
        branch_id: get(row, at + 10)?,
    })
}

/// Stores a user made by [`prepare`]. A taken email is [`TenantsError::Conflict`].
pub async fn insert_user<C: ConnectionTrait>(
    db: &C,
    user: &User,
    password_hash: &str,
) -> Result<(), TenantsError> {
    let b = db.get_database_backend();
    let placeholders: Vec<String> = (1..=13).map(|n| p(b, n)).collect();
    let sql = format!(
        "INSERT INTO console_users ({USER_COLS}, password_hash, updated_at) VALUES ({})",
        placeholders.join(", ")
    );
    let values: Vec<Value> = vec![
        user.tenant_id.into(),
        user.id.into(),
        user.name.clone().into(),
        user.email.clone().into(),
        user.role.as_str().into(),
        user.access.as_str().into(),
        user.status.as_str().into(),
        i64::from(user.failed_sign_ins).into(),
        user.last_sign_in_at.map(micros).into(),
        micros(user.created_at).into(),
        user.branch_id.into(),
        password_hash.to_owned().into(),
        micros(user.created_at).into(),
    ];
    exec(db, sql, values).await.map_err(|e| match e {
        TenantsError::Db(ref d) if is_unique_violation(d) => {
            TenantsError::Conflict(format!("a user with email {:?} already exists", user.email))
        }
        other => other,
    })?;
    Ok(())
}

/// User `id` of `tenant_id`; another tenant's user is [`TenantsError::NotFound`].
pub async fn get_user<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<User, TenantsError> {
    let b = db.get_database_backend();
    let rows = query(
        db,
        format!(
            "SELECT {USER_COLS} FROM console_users WHERE tenant_id = {} AND id = {}",
            p(b, 1),
            p(b, 2)
        ),
        vec![tenant_id.into(), id.into()],
    )
    .await?;
    rows.first()
        .map(|r| user_from_row(r, 0))
        .transpose()?
        .ok_or(TenantsError::NotFound)
}

/// Users of `tenant_id` ordered by id, `limit` after the cursor `after`.
pub async fn list_users<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Page<User>, TenantsError> {
    let fetch = check_limit(limit)?;
    let b = db.get_database_backend();
    // The cursor is optional: `id > nil` is every id (v7 ids are never nil).
    let sql = format!(
        "SELECT {USER_COLS} FROM console_users WHERE tenant_id = {} AND id > {} \
         ORDER BY id LIMIT {}",
        p(b, 1),
        p(b, 2),
        p(b, 3)
    );
    let values: Vec<Value> = vec![
        tenant_id.into(),
        after.unwrap_or(Uuid::nil()).into(),
        fetch.into(),
    ];
    let rows = query(db, sql, values).await?;
    let items = rows
        .iter()
        .map(|r| user_from_row(r, 0))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page(items, limit, |u| u.id))
}

/// Suspends, or resumes (which also unlocks and clears the failure count), user `id` of
/// `tenant_id`; returns it as it now is. Suspending or locking ends its sessions.
pub async fn set_status<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
    status: UserStatus,
    now: DateTime<Utc>,
) -> Result<User, TenantsError> {
    get_user(db, tenant_id, id).await?;
    let b = db.get_database_backend();
    exec(
        db,
        format!(
            "UPDATE console_users SET status = {}, failed_sign_ins = 0, updated_at = {} \
             WHERE tenant_id = {} AND id = {}",
            p(b, 1),
            p(b, 2),
            p(b, 3),
            p(b, 4)
        ),
        vec![
            status.as_str().into(),
            micros(now).into(),
            tenant_id.into(),
            id.into(),
        ],
    )
    .await?;
    if status != UserStatus::Active {
        crate::sessions::end_all_for_user(db, tenant_id, id).await?;
    }
    get_user(db, tenant_id, id).await
}

/// The user of `tenant_id` with `email` (any case) and its password hash, for sign-in.
pub async fn find_for_sign_in<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    email: &str,
) -> Result<Option<(User, String)>, TenantsError> {
    let b = db.get_database_backend();
    let rows = query(
        db,
        format!(
            "SELECT {USER_COLS}, password_hash FROM console_users \
             WHERE tenant_id = {} AND email = {}",
            p(b, 1),
            p(b, 2)
        ),
        vec![tenant_id.into(), normalise_email(email).into()],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    Ok(Some((user_from_row(row, 0)?, get(row, USER_COL_COUNT)?)))
}

/// A throwaway argon2id hash, checked when the email is unknown so that an unknown email
/// takes as long as a wrong password.
fn dummy_hash() -> Option<&'static str> {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    DUMMY
        .get_or_init(|| hash_text("not a password of anybody").ok())
        .as_deref()
}

/// Whether `password` matches `hash`; with no hash (an unknown email) a throwaway hash is
/// checked instead, and the answer is `false`. CPU-bound: call on a blocking thread.
pub fn check_password(hash: Option<&str>, password: &str) -> bool {
    match hash {
        Some(hash) => matches_hash(hash, password),
        None => {
            if let Some(dummy) = dummy_hash() {
                let _ = matches_hash(dummy, password);
            }
            false
        }
    }
}

/// Counts a wrong password for user `id` of `tenant_id` and locks an active user at the
/// `max_failed`-th in a row, in one UPDATE (concurrent guesses each count). Returns the
/// user as it now is.
pub async fn record_failure<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
    max_failed: u32,
    now: DateTime<Utc>,
) -> Result<User, TenantsError> {
    let b = db.get_database_backend();
    exec(
        db,
        format!(
            "UPDATE console_users SET failed_sign_ins = failed_sign_ins + 1, \
             status = CASE WHEN status = 'active' AND failed_sign_ins + 1 >= {} \
             THEN 'locked' ELSE status END, updated_at = {} \
             WHERE tenant_id = {} AND id = {}",
            p(b, 1),
            p(b, 2),
            p(b, 3),
            p(b, 4)
        ),
        vec![
            i64::from(max_failed.max(1)).into(),
            micros(now).into(),
            tenant_id.into(),
            id.into(),
        ],
    )
    .await?;
    get_user(db, tenant_id, id).await
}

/// Records a successful sign-in: the failure count starts again from zero.
pub async fn record_success<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), TenantsError> {
    let b = db.get_database_backend();
    exec(
        db,
        format!(
            "UPDATE console_users SET failed_sign_ins = 0, last_sign_in_at = {}, updated_at = {} \
             WHERE tenant_id = {} AND id = {}",
            p(b, 1),
            p(b, 2),
            p(b, 3),
            p(b, 4)
        ),
        vec![
            micros(now).into(),
            micros(now).into(),
            tenant_id.into(),
            id.into(),
        ],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::{DisplaySettings, TenantStatus};

    fn tenant(kind: TenantKind) -> Tenant {
        Tenant {
            id: Uuid::now_v7(),
            kind,
            name: "t".into(),
            status: TenantStatus::Active,
            display: DisplaySettings {
                display_name: "T".into(),
                contact_email: "ops@t.example".into(),
            },
            created_at: Utc::now(),
        }
    }

    fn new_user(role: UserRole, password: &str) -> NewUser {
        NewUser {
            name: "Hanako Sato".into(),
            email: "Hanako@Bank.example".into(),
            role,
            access: Access::Write,
            password: Password::new(password),
            branch_id: (role == UserRole::Adviser).then(Uuid::now_v7),
        }
    }

    #[test]
    fn the_column_count_matches_the_columns() {
        assert_eq!(USER_COLS.split(", ").count(), USER_COL_COUNT);
    }

    #[test]
    fn advisers_and_only_advisers_have_a_branch() {
        let t = tenant(TenantKind::Distributor);
        let mut adviser = new_user(UserRole::Adviser, "a long enough secret");
        adviser.branch_id = None;
        let e = prepare(&t, &adviser, Utc::now()).unwrap_err();
        assert!(
            matches!(
                e,
                TenantsError::Validation {
                    field: "branch_id",
                    ..
                }
            ),
            "{e:?}"
        );
        let mut head = new_user(UserRole::HeadOffice, "a long enough secret");
        head.branch_id = Some(Uuid::now_v7());
        let e = prepare(&t, &head, Utc::now()).unwrap_err();
        assert!(
            matches!(
                e,
                TenantsError::Validation {
                    field: "branch_id",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn only_the_hash_is_kept_and_it_verifies() {
        let t = tenant(TenantKind::Distributor);
        let (user, hash) = prepare(
            &t,
            &new_user(UserRole::HeadOffice, "correct horse battery"),
            Utc::now(),
        )
        .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"));
        assert_eq!(user.email, "hanako@bank.example");
        assert!(check_password(Some(&hash), "correct horse battery"));
        assert!(!check_password(Some(&hash), "correct horse batter"));
        assert!(!check_password(None, "correct horse battery"));
        let dbg = format!("{:?}", new_user(UserRole::Adviser, "secret secret secret"));
        assert!(!dbg.contains("secret secret"), "{dbg}");
    }

    #[test]
    fn role_must_fit_the_tenant_and_password_the_rules() {
        let t = tenant(TenantKind::Distributor);
        let field = |r: Result<(User, String), TenantsError>| match r {
            Err(TenantsError::Validation { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(prepare(
                &t,
                &new_user(UserRole::Operator, "long enough pass"),
                Utc::now()
            )),
            "role"
        );
        assert_eq!(
            field(prepare(
                &t,
                &new_user(UserRole::Adviser, "short"),
                Utc::now()
            )),
            "password"
        );
        let mut bad_email = new_user(UserRole::Adviser, "long enough pass");
        bad_email.email = "no-at-sign".into();
        assert_eq!(field(prepare(&t, &bad_email, Utc::now())), "email");
    }

    #[test]
    fn principal_is_never_an_admin() {
        let t = tenant(TenantKind::Distributor);
        let (mut user, _) = prepare(
            &t,
            &new_user(UserRole::HeadOffice, "long enough pass"),
            Utc::now(),
        )
        .unwrap();
        let p = user.principal(TenantKind::Distributor);
        assert_eq!(p.role, Role::Operator);
        assert_eq!(p.client_id, "user:hanako@bank.example");
        user.access = Access::Read;
        assert_eq!(user.principal(TenantKind::Distributor).role, Role::Viewer);
    }

    #[test]
    fn enums_round_trip() {
        for r in [
            UserRole::Operator,
            UserRole::HeadOffice,
            UserRole::Adviser,
            UserRole::Manager,
        ] {
            assert_eq!(UserRole::parse(r.as_str()), Some(r));
        }
        for s in [
            UserStatus::Active,
            UserStatus::Suspended,
            UserStatus::Locked,
        ] {
            assert_eq!(UserStatus::parse(s.as_str()), Some(s));
        }
        for a in [Access::Read, Access::Write] {
            assert_eq!(Access::parse(a.as_str()), Some(a));
        }
    }
}
