//! Console sessions: a signed-in browser. This module is the only writer of
//! `console_sessions`.
//!
//! Invariants this module enforces:
//! * the token is 32 bytes from the OS CSPRNG and only its SHA-256 is stored, so a copy of the
//!   table signs nobody in (a fast hash is enough: the token is random, not a password);
//! * the cookie value is `<tenant_id>.<token>`: every lookup names the tenant (Citus routes it
//!   to one shard) and a token is only ever looked for among its own tenant's sessions;
//! * a session ends at whichever comes first: `idle` after its last use, `absolute` after its
//!   creation, sign-out, or its user or tenant no longer being active; an ended session is
//!   deleted when it is next presented ([`resolve`] answers `None` for all of these);
//! * the CSRF token of a form is derived from the session token ([`csrf_token`]), so it
//!   changes with every session, needs no storage, and cannot be computed by a page that
//!   does not hold the cookie; it is compared in constant time ([`csrf_matches`]).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore as _;
use sea_orm::{ConnectionTrait, Value};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::error::TenantsError;
use crate::store::{exec, from_micros, get, micros, p, query};
use crate::tenant::{TenantKind, TenantStatus};
use crate::users::{USER_COL_COUNT, USER_COLS, User, UserStatus, user_from_row};

/// How long sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Ended after this long without a request.
    pub idle: Duration,
    /// Ended this long after sign-in, however busy.
    pub absolute: Duration,
}

/// The cookie value of a session, handed to the browser once. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCookie(String);

impl SessionCookie {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The tenant and the token hash, or `None` for a malformed value.
    fn parts(&self) -> Option<(Uuid, String)> {
        let (tenant, token) = self.0.split_once('.')?;
        if token.len() != 43 {
            return None;
        }
        Some((tenant.parse().ok()?, token_hash(token)))
    }
}

impl std::fmt::Debug for SessionCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionCookie(<redacted>)")
    }
}

fn token_hash(token: &str) -> String {
    hex_lower(&Sha256::digest(token.as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A live session: who it is, and as which tenant kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub user: User,
    pub tenant_kind: TenantKind,
    /// The tenant's name shown to its people.
    pub tenant_display_name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Starts a session for `user` at `now`; returns the cookie value (the only time the token
/// exists outside the browser).
pub async fn create<C: ConnectionTrait>(
    db: &C,
    user: &User,
    policy: SessionPolicy,
    now: DateTime<Utc>,
) -> Result<SessionCookie, TenantsError> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let b = db.get_database_backend();
    let placeholders: Vec<String> = (1..=6).map(|n| p(b, n)).collect();
    let values: Vec<Value> = vec![
        user.tenant_id.into(),
        token_hash(&token).into(),
        user.id.into(),
        micros(now).into(),
        micros(now).into(),
        micros(now + policy.absolute).into(),
    ];
    exec(
        db,
        format!(
            "INSERT INTO console_sessions (tenant_id, token_hash, user_id, created_at, \
             last_seen_at, expires_at) VALUES ({})",
            placeholders.join(", ")
        ),
        values,
    )
    .await?;
    Ok(SessionCookie(format!("{}.{token}", user.tenant_id)))
}

/// The session of `cookie` at `now`, its last use moved to `now`; `None` when it does not
/// exist or has ended (idle, absolute expiry, user or tenant not active), in which case it is
/// deleted.
pub async fn resolve<C: ConnectionTrait>(
    db: &C,
    cookie: &SessionCookie,
    policy: SessionPolicy,
    now: DateTime<Utc>,
) -> Result<Option<SignedIn>, TenantsError> {
    let Some((tenant_id, hash)) = cookie.parts() else {
        return Ok(None);
    };
    let b = db.get_database_backend();
    let cols = USER_COLS
        .split(", ")
        .map(|c| format!("u.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = query(
        db,
        format!(
            "SELECT {cols}, s.created_at, s.last_seen_at, s.expires_at, t.kind, t.status, \
             t.display_name FROM console_sessions s \
             JOIN console_users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id \
             JOIN tenants t ON t.id = s.tenant_id \
             WHERE s.tenant_id = {} AND s.token_hash = {}",
            p(b, 1),
            p(b, 2)
        ),
        vec![tenant_id.into(), hash.clone().into()],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let user = user_from_row(row, 0)?;
    let created_at = from_micros(get(row, USER_COL_COUNT)?)?;
    let last_seen_at = from_micros(get(row, USER_COL_COUNT + 1)?)?;
    let expires_at = from_micros(get(row, USER_COL_COUNT + 2)?)?;
    let kind: String = get(row, USER_COL_COUNT + 3)?;
    let status: String = get(row, USER_COL_COUNT + 4)?;
    let tenant_display_name: String = get(row, USER_COL_COUNT + 5)?;
    let live = now < expires_at
        && now < last_seen_at + policy.idle
        && now < created_at + policy.absolute
        && user.status == UserStatus::Active
        && status == TenantStatus::Active.as_str();
    if !live {
        end_hash(db, tenant_id, &hash).await?;
        return Ok(None);
    }
    let tenant_kind = TenantKind::parse(&kind)
        .ok_or_else(|| TenantsError::Corrupt(format!("unknown tenant kind {kind:?}")))?;
    exec(
        db,
        format!(
            "UPDATE console_sessions SET last_seen_at = {} \
             WHERE tenant_id = {} AND token_hash = {}",
            p(b, 1),
            p(b, 2),
            p(b, 3)
        ),
        vec![micros(now).into(), tenant_id.into(), hash.into()],
    )
    .await?;
    Ok(Some(SignedIn {
        user,
        tenant_kind,
        tenant_display_name,
        created_at,
        expires_at,
    }))
}

/// Ends the session of `cookie` (sign-out); ending an unknown session does nothing.
pub async fn end<C: ConnectionTrait>(db: &C, cookie: &SessionCookie) -> Result<(), TenantsError> {
    match cookie.parts() {
        Some((tenant_id, hash)) => end_hash(db, tenant_id, &hash).await,
        None => Ok(()),
    }
}

async fn end_hash<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    hash: &str,
) -> Result<(), TenantsError> {
    let b = db.get_database_backend();
    exec(
        db,
        format!(
            "DELETE FROM console_sessions WHERE tenant_id = {} AND token_hash = {}",
            p(b, 1),
            p(b, 2)
        ),
        vec![tenant_id.into(), hash.to_owned().into()],
    )
    .await?;
    Ok(())
}

/// Ends every session of user `user_id` of `tenant_id` (suspended or locked).
pub async fn end_all_for_user<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    user_id: Uuid,
) -> Result<(), TenantsError> {
    let b = db.get_database_backend();
    exec(
        db,
        format!(
            "DELETE FROM console_sessions WHERE tenant_id = {} AND user_id = {}",
            p(b, 1),
            p(b, 2)
        ),
        vec![tenant_id.into(), user_id.into()],
    )
    .await?;
    Ok(())
}

/// The CSRF token of the session of `cookie`: SHA-256 of a fixed label and the session token.
pub fn csrf_token(cookie: &SessionCookie) -> String {
    let mut h = Sha256::new();
    h.update(b"wrapd console csrf\0");
    h.update(cookie.expose().as_bytes());
    hex_lower(&h.finalize())
}

/// Whether `presented` is the CSRF token of `cookie`, compared in constant time.
pub fn csrf_matches(cookie: &SessionCookie, presented: &str) -> bool {
    constant_time_eq(csrf_token(cookie).as_bytes(), presented.as_bytes())
}

/// Equality whose time depends only on the lengths, not on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_cookies_name_no_session() {
        for v in [
            "",
            "x",
            "not-a-uuid.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "0.short",
        ] {
            assert!(SessionCookie::new(v).parts().is_none(), "{v}");
        }
        let ok = format!("{}.{}", Uuid::now_v7(), "a".repeat(43));
        assert!(SessionCookie::new(ok).parts().is_some());
        assert_eq!(
            format!("{:?}", SessionCookie::new("secret")),
            "SessionCookie(<redacted>)"
        );
    }

    #[test]
    fn csrf_token_belongs_to_its_session() {
        let a = SessionCookie::new(format!("{}.{}", Uuid::now_v7(), "a".repeat(43)));
        let b = SessionCookie::new(format!("{}.{}", Uuid::now_v7(), "b".repeat(43)));
        let token = csrf_token(&a);
        assert_eq!(token.len(), 64);
        assert!(csrf_matches(&a, &token));
        assert!(!csrf_matches(&b, &token));
        assert!(!csrf_matches(&a, ""));
        assert!(!csrf_matches(&a, &token[1..]));
    }
}
