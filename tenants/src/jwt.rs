//! JWT access tokens: issue and verify, signed with Ed25519 (EdDSA).
//!
//! Invariants this module enforces:
//! * the algorithm is pinned: only `EdDSA` is accepted, whatever the token's header says, so
//!   `alg: none` and algorithm-confusion tokens fail;
//! * every token names its key in `kid`; a token without one, or with a `kid` not in the
//!   [`KeySet`], fails, as does one whose signature does not match that key;
//! * `iss`, `aud`, `exp`, `iat` and `sub` are required; `iss` and `aud` must equal the
//!   configured ones and `exp` must be in the future (leeway configurable, default 0); a
//!   token carrying `nbf` (tokens issued here do not) fails before that time;
//! * the newest key signs; every key in the set verifies, so two keys are active during a
//!   rotation (add the new key last, keep the old until the last token it signed expires).
//!
//! Keys are PKCS#8 PEM strings (from config, the environment or a file). A key's `kid`
//! defaults to its RFC 7638 JWK thumbprint. [`generate_dev_key`] makes a new key for the
//! embedded development setup.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::client::Role;
use crate::error::TenantsError;
use crate::principal::Principal;
use crate::tenant::TenantKind;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The public client id.
    pub sub: String,
    pub tenant_id: Uuid,
    pub tenant_kind: TenantKind,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Unique token id (UUID v7).
    pub jti: Uuid,
}

impl Claims {
    /// The caller the token speaks for.
    pub fn principal(&self) -> Principal {
        Principal {
            tenant_id: self.tenant_id,
            tenant_kind: self.tenant_kind,
            client_id: self.sub.clone(),
            role: self.role,
        }
    }
}

/// Token settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    pub issuer: String,
    pub audience: String,
    /// How long a token lives; 1 second to 24 hours.
    pub lifetime: Duration,
    /// Clock skew tolerated on `exp`, in seconds.
    pub leeway_seconds: u64,
}

/// Default token lifetime.
pub const DEFAULT_LIFETIME: Duration = Duration::minutes(15);

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            issuer: "wrapd".into(),
            audience: "wrap-api".into(),
            lifetime: DEFAULT_LIFETIME,
            leeway_seconds: 0,
        }
    }
}

/// Why a token was refused. The API answers 401 for all of them; the variant is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("algorithm not allowed")]
    Algorithm,
    #[error("token has no kid")]
    MissingKid,
    #[error("unknown kid")]
    UnknownKid,
    #[error("bad signature")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("wrong issuer")]
    Issuer,
    #[error("wrong audience")]
    Audience,
    #[error("missing or invalid claim: {0}")]
    Claim(String),
}

/// One Ed25519 key pair with its `kid`. `Debug` shows only the kid.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The public key, base64url (the JWK `x`).
    x: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A key from a PKCS#8 PEM Ed25519 private key. `kid` defaults to the RFC 7638 thumbprint.
    pub fn from_pkcs8_pem(pem: &str, kid: Option<&str>) -> Result<Self, TenantsError> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| TenantsError::Crypto(format!("not an Ed25519 PKCS#8 PEM key: {e}")))?;
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
        let kid = match kid {
            Some(k) if k.is_empty() || k.len() > 128 => {
                return Err(TenantsError::invalid("kid", "must be 1 to 128 characters"));
            }
            Some(k) => k.to_owned(),
            None => thumbprint(&x),
        };
        let encoding = EncodingKey::from_ed_pem(pem.as_bytes())
            .map_err(|e| TenantsError::Crypto(format!("signing key: {e}")))?;
        let decoding = DecodingKey::from_ed_components(&x)
            .map_err(|e| TenantsError::Crypto(format!("verifying key: {e}")))?;
        Ok(Self {
            kid,
            encoding,
            decoding,
            x,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK (kty OKP, crv Ed25519).
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": self.x,
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }
}

/// RFC 7638 thumbprint of an Ed25519 public key: base64url(SHA-256 of the canonical JWK).
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// A new Ed25519 private key as PKCS#8 PEM, from the OS CSPRNG.
pub fn generate_dev_key() -> Result<String, TenantsError> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    seed.fill(0);
    key.to_pkcs8_pem(LineEnding::LF)
        .map(|pem| pem.as_str().to_owned())
        .map_err(|e| TenantsError::Crypto(format!("encoding a key: {e}")))
}

/// The keys tokens are signed and verified with, oldest first; the last one signs.
#[derive(Debug, Clone)]
pub struct KeySet {
    keys: Vec<SigningKey>,
    config: JwtConfig,
    validation: Validation,
}

impl KeySet {
    /// A key set; `keys` oldest first, at least one, kids unique.
    pub fn new(config: JwtConfig, keys: Vec<SigningKey>) -> Result<Self, TenantsError> {
        if keys.is_empty() {
            return Err(TenantsError::invalid("keys", "at least one key is needed"));
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.kid == k.kid) {
                return Err(TenantsError::invalid(
                    "keys",
                    format!("kid {:?} appears twice", k.kid),
                ));
            }
        }
        if config.lifetime < Duration::seconds(1) || config.lifetime > Duration::hours(24) {
            return Err(TenantsError::invalid(
                "lifetime",
                "must be between 1 second and 24 hours",
            ));
        }
        if config.issuer.is_empty() || config.audience.is_empty() {
            return Err(TenantsError::invalid(
                "issuer",
                "issuer and audience must not be empty",
            ));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.leeway = config.leeway_seconds;
        validation.validate_exp = true;
        // Tokens issued here carry no `nbf`; one that does is not honoured before it.
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        Ok(Self {
            keys,
            config,
            validation,
        })
    }

    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// The key that signs new tokens (the newest).
    pub fn signing_key(&self) -> &SigningKey {
        // `new` refuses an empty set.
        &self.keys[self.keys.len() - 1]
    }

    /// A token for `principal`, issued at `now`, and its claims.
    pub fn issue(
        &self,
        principal: &Principal,
        now: DateTime<Utc>,
    ) -> Result<(String, Claims), TenantsError> {
        let iat = now.timestamp();
        let claims = Claims {
            sub: principal.client_id.clone(),
            tenant_id: principal.tenant_id,
            tenant_kind: principal.tenant_kind,
            role: principal.role,
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            iat,
            exp: iat + self.config.lifetime.num_seconds(),
            jti: Uuid::now_v7(),
        };
        let key = self.signing_key();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|e| TenantsError::Crypto(format!("signing a token: {e}")))?;
        Ok((token, claims))
    }

    /// The claims of `token` if it is valid now (see the module docs for what is checked).
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::InvalidAlgorithmName | ErrorKind::InvalidAlgorithm => JwtError::Algorithm,
            _ => JwtError::Malformed,
        })?;
        if header.alg != Algorithm::EdDSA {
            return Err(JwtError::Algorithm);
        }
        let kid = header.kid.ok_or(JwtError::MissingKid)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(JwtError::UnknownKid)?;
        jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.into_kind() {
                ErrorKind::InvalidSignature => JwtError::Signature,
                ErrorKind::ExpiredSignature => JwtError::Expired,
                ErrorKind::ImmatureSignature => JwtError::NotYetValid,
                ErrorKind::InvalidIssuer => JwtError::Issuer,
                ErrorKind::InvalidAudience => JwtError::Audience,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    JwtError::Algorithm
                }
                ErrorKind::MissingRequiredClaim(c) | ErrorKind::InvalidClaimFormat(c) => {
                    JwtError::Claim(c)
                }
                _ => JwtError::Malformed,
            })
    }

    /// The public keys as a JWK Set, for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.keys.iter().map(SigningKey::jwk).collect::<Vec<_>>() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str) -> SigningKey {
        SigningKey::from_pkcs8_pem(&generate_dev_key().unwrap(), Some(kid)).unwrap()
    }

    fn set(keys: Vec<SigningKey>) -> KeySet {
        KeySet::new(JwtConfig::default(), keys).unwrap()
    }

    fn principal() -> Principal {
        Principal {
            tenant_id: Uuid::now_v7(),
            tenant_kind: TenantKind::Distributor,
            client_id: "cli_abc".into(),
            role: Role::Operator,
        }
    }

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    fn parts(token: &str) -> (String, String, String) {
        let mut it = token.split('.').map(str::to_owned);
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
    }

    fn decode_part(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn valid_token_round_trips() {
        let ks = set(vec![key("k1")]);
        let p = principal();
        let (token, claims) = ks.issue(&p, Utc::now()).unwrap();
        let got = ks.verify(&token).unwrap();
        assert_eq!(got, claims);
        assert_eq!(got.principal(), p);
        assert_eq!(got.exp - got.iat, 15 * 60);
        let header = decode_part(&parts(&token).0);
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["kid"], "k1");
        let body = decode_part(&parts(&token).1);
        assert_eq!(body["tenant_kind"], "distributor");
        assert_eq!(body["role"], "operator");
    }

    #[test]
    fn lifetime_is_configurable_and_bounded() {
        let cfg = JwtConfig {
            lifetime: Duration::minutes(5),
            ..JwtConfig::default()
        };
        let ks = KeySet::new(cfg.clone(), vec![key("k")]).unwrap();
        let (_, c) = ks.issue(&principal(), Utc::now()).unwrap();
        assert_eq!(c.exp - c.iat, 300);
        for bad in [Duration::zero(), Duration::hours(25)] {
            let cfg = JwtConfig {
                lifetime: bad,
                ..cfg.clone()
            };
            assert!(KeySet::new(cfg, vec![key("k")]).is_err());
        }
    }

    #[test]
    fn expired_token_fails() {
        let ks = set(vec![key("k1")]);
        let (token, _) = ks
            .issue(&principal(), Utc::now() - Duration::minutes(16))
            .unwrap();
        assert_eq!(ks.verify(&token), Err(JwtError::Expired));
    }

    #[test]
    fn wrong_audience_and_issuer_fail() {
        let k = generate_dev_key().unwrap();
        let other_aud = KeySet::new(
            JwtConfig {
                audience: "someone-else".into(),
                ..JwtConfig::default()
            },
            vec![SigningKey::from_pkcs8_pem(&k, Some("k")).unwrap()],
        )
        .unwrap();
        let other_iss = KeySet::new(
            JwtConfig {
                issuer: "evil".into(),
                ..JwtConfig::default()
            },
            vec![SigningKey::from_pkcs8_pem(&k, Some("k")).unwrap()],
        )
        .unwrap();
        let ours = set(vec![SigningKey::from_pkcs8_pem(&k, Some("k")).unwrap()]);
        let (t, _) = other_aud.issue(&principal(), Utc::now()).unwrap();
        assert_eq!(ours.verify(&t), Err(JwtError::Audience));
        let (t, _) = other_iss.issue(&principal(), Utc::now()).unwrap();
        assert_eq!(ours.verify(&t), Err(JwtError::Issuer));
    }

    #[test]
    fn unknown_kid_and_foreign_key_fail() {
        let ours = set(vec![key("k1")]);
        let theirs = set(vec![key("k2")]);
        let (t, _) = theirs.issue(&principal(), Utc::now()).unwrap();
        assert_eq!(ours.verify(&t), Err(JwtError::UnknownKid));

        // Signed by a key not in the set but claiming our kid.
        let impostor = set(vec![key("k1")]);
        let (t, _) = impostor.issue(&principal(), Utc::now()).unwrap();
        assert_eq!(ours.verify(&t), Err(JwtError::Signature));

        // No kid at all.
        let (t, _) = ours.issue(&principal(), Utc::now()).unwrap();
        let (_, body, sig) = parts(&t);
        let header = b64(&serde_json::json!({"alg": "EdDSA", "typ": "JWT"}));
        assert_eq!(
            ours.verify(&format!("{header}.{body}.{sig}")),
            Err(JwtError::MissingKid)
        );
    }

    #[test]
    fn alg_none_and_other_algorithms_fail() {
        let ks = set(vec![key("k1")]);
        let (t, _) = ks.issue(&principal(), Utc::now()).unwrap();
        let (_, body, sig) = parts(&t);
        for alg in ["none", "None", "HS256", "RS256"] {
            let header = b64(&serde_json::json!({"alg": alg, "typ": "JWT", "kid": "k1"}));
            for signature in ["", sig.as_str()] {
                let forged = format!("{header}.{body}.{signature}");
                assert!(ks.verify(&forged).is_err(), "{alg} accepted");
            }
        }
    }

    #[test]
    fn tampered_payload_fails() {
        let ks = set(vec![key("k1")]);
        let (t, _) = ks.issue(&principal(), Utc::now()).unwrap();
        let (header, body, sig) = parts(&t);
        let mut claims = decode_part(&body);
        claims["role"] = "admin".into();
        claims["tenant_kind"] = "platform".into();
        let forged = format!("{header}.{}.{sig}", b64(&claims));
        assert_eq!(ks.verify(&forged), Err(JwtError::Signature));
        assert_eq!(ks.verify("not a token"), Err(JwtError::Malformed));
        assert_eq!(ks.verify(""), Err(JwtError::Malformed));
    }

    #[test]
    fn two_keys_verify_during_rotation_and_the_newest_signs() {
        let old_pem = generate_dev_key().unwrap();
        let new_pem = generate_dev_key().unwrap();
        let before = set(vec![
            SigningKey::from_pkcs8_pem(&old_pem, Some("old")).unwrap(),
        ]);
        let (old_token, _) = before.issue(&principal(), Utc::now()).unwrap();

        let during = set(vec![
            SigningKey::from_pkcs8_pem(&old_pem, Some("old")).unwrap(),
            SigningKey::from_pkcs8_pem(&new_pem, Some("new")).unwrap(),
        ]);
        let (new_token, _) = during.issue(&principal(), Utc::now()).unwrap();
        assert_eq!(decode_part(&parts(&new_token).0)["kid"], "new");
        assert!(during.verify(&old_token).is_ok());
        assert!(during.verify(&new_token).is_ok());

        let after = set(vec![
            SigningKey::from_pkcs8_pem(&new_pem, Some("new")).unwrap(),
        ]);
        assert_eq!(after.verify(&old_token), Err(JwtError::UnknownKid));
        assert!(after.verify(&new_token).is_ok());
    }

    #[test]
    fn key_set_rules_and_jwks() {
        assert!(KeySet::new(JwtConfig::default(), vec![]).is_err());
        assert!(KeySet::new(JwtConfig::default(), vec![key("a"), key("a")]).is_err());
        assert!(SigningKey::from_pkcs8_pem("not pem", None).is_err());

        let pem = generate_dev_key().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let k = SigningKey::from_pkcs8_pem(&pem, None).unwrap();
        assert_eq!(k.kid().len(), 43, "thumbprint kid");
        assert_eq!(
            SigningKey::from_pkcs8_pem(&pem, None).unwrap().kid(),
            k.kid()
        );
        assert!(!format!("{k:?}").contains("PRIVATE"));

        let ks = set(vec![key("a"), k]);
        let jwks = ks.jwks();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        for j in keys {
            assert_eq!(j["kty"], "OKP");
            assert_eq!(j["crv"], "Ed25519");
            assert_eq!(j["alg"], "EdDSA");
            assert_eq!(j["use"], "sig");
            assert_eq!(
                URL_SAFE_NO_PAD
                    .decode(j["x"].as_str().unwrap())
                    .unwrap()
                    .len(),
                32
            );
            assert!(j.get("d").is_none(), "no private part");
        }
        // A token verifies with a decoding key built from the published JWK alone.
        let (t, _) = ks.issue(&principal(), Utc::now()).unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(keys[1].clone()).unwrap();
        let dk = DecodingKey::from_jwk(&jwk).unwrap();
        assert!(jsonwebtoken::decode::<Claims>(&t, &dk, &ks.validation).is_ok());
    }
}
