//! Errors of the tenants domain and its store.

use sea_orm::DbErr;

/// What can go wrong in this crate, apart from token verification ([`crate::jwt::JwtError`])
/// and permission checks ([`crate::principal::Forbidden`]).
#[derive(Debug, thiserror::Error)]
pub enum TenantsError {
    /// Input that breaks a rule; `field` names the offending field for `errors[]`.
    #[error("{field}: {message}")]
    Validation {
        field: &'static str,
        message: String,
    },
    /// No such object, or one the caller may not see (the two must look the same).
    #[error("not found")]
    NotFound,
    /// The change clashes with the current state (second platform, duplicate name, revoked client).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A cryptographic operation failed (hashing, key parsing, signing).
    #[error("crypto: {0}")]
    Crypto(String),
    /// A stored row that cannot be read back (unknown enum value, time out of range).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl TenantsError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Validation {
            field,
            message: message.into(),
        }
    }
}
