//! # Who is on the platform and what they agreed
//!
//! This crate owns tenants (platform, distributors, managers), their API clients and
//! secrets, JWT issue and verification, the permission rules of a [`Principal`], strategies
//! (managers' model portfolios and their versions), agreements (fee schedules and splits, in
//! versioned terms) and the platform's fees to distributors. It never depends on HTTP: the `api` crate parses
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
//! * [`strategy`]: managers' strategies and model versions; weights sum to exactly 1.
//! * [`agreement`]: agreements and their versioned terms; splits sum to exactly 1, tiered fees
//!   are blended.
//! * [`market_store`]: persistence of both, and [`market_store::offer`]; a strategy or an
//!   agreement another tenant may not see answers not found.
//! * [`fee_impact`]: the fee impact projection, in exact decimals month by month.
//! * [`goal`]: goal probability by seeded Monte Carlo, with the closed form to check it.
//! * [`store`]: persistence; every query that acts for a tenant is scoped by its id, and there
//!   is at most one platform tenant (checked here and by a unique index).

pub mod agreement;
pub mod audit;
pub mod client;
pub mod error;
pub mod fee_impact;
pub mod goal;
pub mod jwt;
pub mod market_store;
pub mod principal;
pub mod store;
pub mod strategy;
pub mod tenant;

pub use agreement::{
    Agreement, AgreementStatus, BillingPeriod, FeeSchedule, Split, Terms, TermsInput, TermsStatus,
    TermsVersion, Tier,
};
pub use client::{ApiClient, NewClient, PlainSecret, Role};
pub use error::TenantsError;
pub use jwt::{Claims, JwtConfig, JwtError, KeySet, SigningKey};
pub use market_store::{Offer, offer, strategy_for, version_in_effect};
pub use principal::{Action, Forbidden, Principal};
pub use strategy::{NewStrategy, NewVersion, Strategy, StrategyVersion};
pub use tenant::{DisplaySettings, NewTenant, Tenant, TenantKind, TenantStatus};

/// `t` truncated to whole microseconds: the precision the store keeps, so a value read back
/// equals the value written.
pub(crate) fn to_micros_precision(
    t: chrono::DateTime<chrono::Utc>,
) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}
