//! API clients: the machine identities a tenant uses to call the platform (OAuth 2.0 client
//! credentials).
//!
//! Invariants this module enforces:
//! * a secret is never stored, only its argon2id PHC hash; the plaintext exists once, in the
//!   [`PlainSecret`] returned at creation or rotation, and is redacted from `Debug`;
//! * secrets come from the operating system's CSPRNG: 32 bytes, URL-safe base64 (43 chars);
//! * after a rotation the previous secret keeps working until `previous_valid_until` and not
//!   one microsecond longer; a revoked client verifies no secret at all;
//! * comparison is argon2's own verification (constant time in the hash comparison).

use argon2::password_hash::rand_core::OsRng as SaltRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::TenantsError;
use crate::tenant::validate_name;

/// What a client may do within its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything the tenant may do, including managing its own clients.
    Admin,
    /// Reads and day-to-day writes; no client or tenant management.
    Operator,
    /// Reads only.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "operator" => Some(Self::Operator),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }
}

/// Prefix of every public client id.
pub const CLIENT_ID_PREFIX: &str = "cli_";
/// Bytes of randomness in a secret.
pub const SECRET_BYTES: usize = 32;
/// Longest overlap a rotation may grant the previous secret.
pub const MAX_ROTATION_OVERLAP: Duration = Duration::days(30);

/// A plaintext secret, handed out once. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainSecret(String);

impl PlainSecret {
    /// The secret itself, to show the caller once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PlainSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlainSecret(<redacted>)")
    }
}

/// The stored hashes of a client's secrets. `Debug` shows only whether each is present.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHashes {
    /// argon2id PHC string of the current secret.
    pub current_hash: String,
    /// argon2id PHC string of the secret before the last rotation, while it is still valid.
    pub previous_hash: Option<String>,
    /// When the previous secret stops working (exclusive).
    pub previous_valid_until: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SecretHashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretHashes")
            .field("current_hash", &"<argon2id>")
            .field(
                "previous_hash",
                &self.previous_hash.as_ref().map(|_| "<argon2id>"),
            )
            .field("previous_valid_until", &self.previous_valid_until)
            .finish()
    }
}

/// An API client as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiClient {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// Public identifier presented at the token endpoint, `cli_` + 22 URL-safe characters.
    pub client_id: String,
    /// A label for people ("reconciliation job").
    pub name: String,
    pub role: Role,
    pub secrets: SecretHashes,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// What it takes to create a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewClient {
    pub name: String,
    pub role: Role,
}

impl NewClient {
    pub fn validate(&self) -> Result<(), TenantsError> {
        validate_name("name", &self.name)
    }
}

impl ApiClient {
    /// A new client of `tenant_id` with a fresh client id and secret. The secret is returned
    /// once, here; the client keeps only its hash.
    pub fn create(
        tenant_id: Uuid,
        new: &NewClient,
        now: DateTime<Utc>,
    ) -> Result<(Self, PlainSecret), TenantsError> {
        new.validate()?;
        let secret = generate_secret();
        let client = Self {
            id: Uuid::now_v7(),
            tenant_id,
            client_id: generate_client_id(),
            name: new.name.clone(),
            role: new.role,
            secrets: SecretHashes {
                current_hash: hash_secret(&secret)?,
                previous_hash: None,
                previous_valid_until: None,
            },
            revoked_at: None,
            created_at: crate::to_micros_precision(now),
        };
        Ok((client, secret))
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    /// New secret hashes for a rotation at `now`: the current secret becomes the previous one,
    /// valid until `now + overlap` (a zero overlap retires it at once). Returns the hashes to
    /// store and the new plaintext secret.
    pub fn rotated(
        &self,
        now: DateTime<Utc>,
        overlap: Duration,
    ) -> Result<(SecretHashes, PlainSecret), TenantsError> {
        if self.is_revoked() {
            return Err(TenantsError::Conflict("client is revoked".into()));
        }
        if overlap < Duration::zero() || overlap > MAX_ROTATION_OVERLAP {
            return Err(TenantsError::invalid(
                "overlap",
                "must be between 0 seconds and 30 days",
            ));
        }
        let secret = generate_secret();
        let (previous_hash, previous_valid_until) = if overlap.is_zero() {
            (None, None)
        } else {
            (
                Some(self.secrets.current_hash.clone()),
                Some(crate::to_micros_precision(now + overlap)),
            )
        };
        let hashes = SecretHashes {
            current_hash: hash_secret(&secret)?,
            previous_hash,
            previous_valid_until,
        };
        Ok((hashes, secret))
    }

    /// Whether `presented` is this client's secret at `now`: the current one, or the previous
    /// one before its deadline. A revoked client matches nothing.
    pub fn verify_secret(&self, presented: &str, now: DateTime<Utc>) -> bool {
        verify_secret(self, presented, now)
    }
}

/// Whether `presented` is `client`'s secret at `now` (see [`ApiClient::verify_secret`]).
pub fn verify_secret(client: &ApiClient, presented: &str, now: DateTime<Utc>) -> bool {
    if client.is_revoked() {
        return false;
    }
    if matches_hash(&client.secrets.current_hash, presented) {
        return true;
    }
    match (
        &client.secrets.previous_hash,
        client.secrets.previous_valid_until,
    ) {
        (Some(hash), Some(until)) if now < until => matches_hash(hash, presented),
        _ => false,
    }
}

/// A fresh public client id: `cli_` + 16 random bytes in URL-safe base64.
pub fn generate_client_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{CLIENT_ID_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A fresh secret: [`SECRET_BYTES`] bytes from the OS CSPRNG in URL-safe base64.
pub fn generate_secret() -> PlainSecret {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    PlainSecret(URL_SAFE_NO_PAD.encode(bytes))
}

/// argon2id with the crate's default (OWASP) parameters: m = 19 MiB, t = 2, p = 1.
fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// The argon2id PHC string of `secret`, with a random salt.
pub fn hash_secret(secret: &PlainSecret) -> Result<String, TenantsError> {
    let salt = SaltString::generate(&mut SaltRng);
    argon2()
        .hash_password(secret.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| TenantsError::Crypto(format!("hashing a secret: {e}")))
}

/// The argon2id PHC string of any text (a console user's password), with a random salt.
pub(crate) fn hash_text(text: &str) -> Result<String, TenantsError> {
    let salt = SaltString::generate(&mut SaltRng);
    argon2()
        .hash_password(text.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| TenantsError::Crypto(format!("hashing a password: {e}")))
}

/// Whether `presented` hashes to `phc`. Only argon2id hashes are accepted, so a row tampered
/// into a weaker scheme never verifies.
pub(crate) fn matches_hash(phc: &str, presented: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    argon2()
        .verify_password(presented.as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> (ApiClient, PlainSecret) {
        ApiClient::create(
            Uuid::now_v7(),
            &NewClient {
                name: "job".into(),
                role: Role::Operator,
            },
            Utc::now(),
        )
        .unwrap()
    }

    #[test]
    fn secret_is_random_long_and_url_safe() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
        assert!(
            a.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(format!("{a:?}"), "PlainSecret(<redacted>)");
        let id = generate_client_id();
        assert!(id.starts_with("cli_") && id.len() == 26, "{id}");
    }

    #[test]
    fn only_the_hash_is_kept() {
        let (c, secret) = client();
        assert!(c.secrets.current_hash.starts_with("$argon2id$v=19$"));
        assert!(!c.secrets.current_hash.contains(secret.expose()));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(secret.expose()) && !dbg.contains("$argon2id$"));
    }

    #[test]
    fn verifies_the_secret_and_nothing_else() {
        let (c, secret) = client();
        let now = Utc::now();
        assert!(c.verify_secret(secret.expose(), now));
        assert!(!c.verify_secret("", now));
        assert!(!c.verify_secret(&secret.expose()[1..], now));
        assert!(!c.verify_secret(generate_secret().expose(), now));
    }

    #[test]
    fn revoked_client_verifies_nothing() {
        let (mut c, secret) = client();
        c.revoked_at = Some(Utc::now());
        assert!(!c.verify_secret(secret.expose(), Utc::now()));
        assert!(matches!(
            c.rotated(Utc::now(), Duration::hours(1)),
            Err(TenantsError::Conflict(_))
        ));
    }

    #[test]
    fn rotation_keeps_the_previous_secret_until_the_deadline() {
        let (mut c, old) = client();
        let now = Utc::now();
        let (hashes, new) = c.rotated(now, Duration::hours(1)).unwrap();
        c.secrets = hashes;
        assert!(c.verify_secret(new.expose(), now));
        assert!(c.verify_secret(old.expose(), now));
        let just_before = now + Duration::hours(1) - Duration::microseconds(1);
        assert!(c.verify_secret(old.expose(), just_before));
        let deadline = c.secrets.previous_valid_until.unwrap();
        assert!(!c.verify_secret(old.expose(), deadline));
        assert!(c.verify_secret(new.expose(), deadline + Duration::days(365)));

        // A second rotation retires the first secret for good.
        let (hashes, newest) = c.rotated(now, Duration::hours(1)).unwrap();
        c.secrets = hashes;
        assert!(!c.verify_secret(old.expose(), now));
        assert!(c.verify_secret(new.expose(), now));
        assert!(c.verify_secret(newest.expose(), now));
    }

    #[test]
    fn zero_overlap_retires_at_once_and_bounds_are_checked() {
        let (mut c, old) = client();
        let now = Utc::now();
        let (hashes, new) = c.rotated(now, Duration::zero()).unwrap();
        c.secrets = hashes;
        assert!(c.secrets.previous_hash.is_none());
        assert!(!c.verify_secret(old.expose(), now));
        assert!(c.verify_secret(new.expose(), now));
        assert!(c.rotated(now, Duration::seconds(-1)).is_err());
        assert!(c.rotated(now, Duration::days(31)).is_err());
    }

    #[test]
    fn a_non_argon2id_hash_never_verifies() {
        let (mut c, secret) = client();
        let salt = SaltString::generate(&mut SaltRng);
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::default())
            .hash_password(secret.expose().as_bytes(), &salt)
            .unwrap()
            .to_string();
        c.secrets.current_hash = argon2i;
        assert!(!c.verify_secret(secret.expose(), Utc::now()));
        c.secrets.current_hash = "garbage".into();
        assert!(!c.verify_secret(secret.expose(), Utc::now()));
    }

    #[test]
    fn role_round_trip() {
        for r in [Role::Admin, Role::Operator, Role::Viewer] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }
}
