//! # Who is on the platform
//!
//! Identity and access only: tenants (platform, distributors, managers), their API clients and
//! secrets, JWT issue and verification, the permission rules of a [`Principal`] and the audit
//! writer. What tenants agree with each other (strategies, agreements, fees) is the wrap
//! business's marketplace (`wraps::market`). It never depends on HTTP: the `api` crate parses
//! requests, calls into here, and maps [`TenantsError`], [`jwt::JwtError`] and
//! [`principal::Forbidden`] to responses.
//!
//! Modules, and the invariant each one enforces:
//! * [`audit`]: the audit writer; a change and its record commit together.
//! * [`tenant`]: a tenant's kind, status and white-label display settings; names and emails
//!   are validated before they reach the store.
//! * [`client`]: API clients; a secret is never stored, only its argon2id hash, and a
//!   rotated-out secret stops working at its overlap deadline.
//! * [`jwt`]: tokens are signed with EdDSA only; verification pins the algorithm, requires a
//!   known `kid`, and checks `iss`, `aud` and `exp`.
//! * [`principal`]: who is calling and what they may do; every operation is checked against
//!   one [`principal::Action`].
//! * [`users`]: console users (people); a password is stored only as its argon2id hash, a
//!   role fits its tenant's kind, and repeated wrong passwords lock the user.
//! * [`sessions`]: console sessions; only a token's SHA-256 is stored, every lookup names the
//!   tenant, and a session ends on idle or absolute expiry.
//! * [`store`]: persistence; every query that acts for a tenant is scoped by its id, and there
//!   is at most one platform tenant (checked here and by a unique index).

pub mod audit;
pub mod branches;
pub mod client;
pub mod error;
pub mod jwt;
pub mod principal;
pub mod sessions;
pub mod store;
pub mod tenant;
pub mod users;

pub use client::{ApiClient, NewClient, PlainSecret, Role};
pub use error::TenantsError;
pub use jwt::{Claims, JwtConfig, JwtError, KeySet, SigningKey};
pub use principal::{Action, Forbidden, Principal};
pub use tenant::{DisplaySettings, NewTenant, Tenant, TenantKind, TenantStatus};

/// `t` truncated to whole microseconds: the precision the store keeps, so a value read back
/// equals the value written (also used by the marketplace's store in `wraps`).
pub fn to_micros_precision(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}
