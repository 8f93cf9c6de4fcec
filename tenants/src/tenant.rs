//! Tenants: the platform operator (exactly one), distributors (banks, securities firms,
//! advisors) and managers (asset managers).
//!
//! This module owns the shape of a tenant and the rules for its fields: a name and display
//! name are 1 to 200 characters with no leading or trailing space and no control characters;
//! a contact email is a plausible `local@domain.tld`. A suspended tenant keeps its data, but
//! its clients' tokens stop working at once (the API checks the status on every request, see
//! [`crate::store::principal_is_live`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::TenantsError;

/// What a tenant is to the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantKind {
    /// The operator of the platform. There is exactly one.
    Platform,
    /// A bank, securities firm or advisor that sells wraps to customers.
    Distributor,
    /// An asset manager that publishes strategies.
    Manager,
}

impl TenantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Distributor => "distributor",
            Self::Manager => "manager",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "platform" => Some(Self::Platform),
            "distributor" => Some(Self::Distributor),
            "manager" => Some(Self::Manager),
            _ => None,
        }
    }
}

/// Whether a tenant's clients may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

/// White-label settings: how the tenant is shown to its own users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DisplaySettings {
    pub display_name: String,
    pub contact_email: String,
}

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tenant {
    /// UUID v7, so ids sort by creation time (cursor pagination orders by id).
    pub id: Uuid,
    pub kind: TenantKind,
    pub name: String,
    pub status: TenantStatus,
    pub display: DisplaySettings,
    pub created_at: DateTime<Utc>,
}

impl Tenant {
    pub fn is_active(&self) -> bool {
        self.status == TenantStatus::Active
    }
}

/// What it takes to create a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTenant {
    pub kind: TenantKind,
    pub name: String,
    pub display: DisplaySettings,
}

impl NewTenant {
    /// Checks every field; the first broken rule is returned.
    pub fn validate(&self) -> Result<(), TenantsError> {
        validate_name("name", &self.name)?;
        validate_name("display_name", &self.display.display_name)?;
        validate_email("contact_email", &self.display.contact_email)
    }
}

/// Longest name or display name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest email address (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// A name: 1 to [`MAX_NAME_CHARS`] characters, trimmed, no control characters.
pub fn validate_name(field: &'static str, s: &str) -> Result<(), TenantsError> {
    if s.trim().is_empty() {
        return Err(TenantsError::invalid(field, "must not be empty"));
    }
    if s.chars().count() > MAX_NAME_CHARS {
        return Err(TenantsError::invalid(
            field,
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if s.trim() != s {
        return Err(TenantsError::invalid(
            field,
            "must not start or end with whitespace",
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(TenantsError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A plausible email address: `local@domain` with a dot in the domain, no whitespace, at most
/// [`MAX_EMAIL_CHARS`] characters. Deliverability is not our concern; typos like a missing `@`
/// or a trailing space are.
pub fn validate_email(field: &'static str, s: &str) -> Result<(), TenantsError> {
    let bad = |why: &str| Err(TenantsError::invalid(field, why.to_owned()));
    if s.is_empty() {
        return bad("must not be empty");
    }
    if s.chars().count() > MAX_EMAIL_CHARS {
        return bad("must be at most 254 characters");
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not contain whitespace");
    }
    let Some((local, domain)) = s.split_once('@') else {
        return bad("must be an address like name@example.com");
    };
    if local.is_empty() || domain.contains('@') {
        return bad("must be an address like name@example.com");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return bad("must have a domain like example.com");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("name", "Mizuho Bank").is_ok());
        assert!(validate_name("name", "").is_err());
        assert!(validate_name("name", "   ").is_err());
        assert!(validate_name("name", " padded").is_err());
        assert!(validate_name("name", "tab\there").is_err());
        assert!(validate_name("name", &"x".repeat(200)).is_ok());
        assert!(validate_name("name", &"x".repeat(201)).is_err());
        // Characters, not bytes.
        assert!(validate_name("name", &"銀".repeat(200)).is_ok());
    }

    #[test]
    fn emails() {
        for ok in ["ops@bank.example", "a.b+c@x.co.jp"] {
            assert!(validate_email("e", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ops",
            "@bank.example",
            "ops@",
            "ops@bank",
            "ops@bank.",
            "ops@.example",
            "a@b@c.com",
            "ops @bank.example",
            "ops@bank.example ",
        ] {
            assert!(validate_email("e", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn validation_names_the_field() {
        let t = NewTenant {
            kind: TenantKind::Distributor,
            name: "Bank".into(),
            display: DisplaySettings {
                display_name: "Bank".into(),
                contact_email: "nope".into(),
            },
        };
        match t.validate() {
            Err(TenantsError::Validation { field, .. }) => assert_eq!(field, "contact_email"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kinds_round_trip() {
        for k in [
            TenantKind::Platform,
            TenantKind::Distributor,
            TenantKind::Manager,
        ] {
            assert_eq!(TenantKind::parse(k.as_str()), Some(k));
        }
        for s in [TenantStatus::Active, TenantStatus::Suspended] {
            assert_eq!(TenantStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(TenantKind::parse("Platform"), None);
    }
}
