//! Authentication: the OAuth 2.0 token endpoint, the JWKS, signing keys, and the bearer-token
//! extractor every `/v1` handler takes.
//!
//! Invariants enforced here (tested by `api/tests/auth.rs`):
//! * a `/v1` handler runs only for a caller whose token verifies ([`tenants::KeySet::verify`]:
//!   EdDSA pinned, known `kid`, `iss`, `aud` and `exp` checked) *and* whose client is still
//!   unrevoked and tenant still active ([`tenants::store::principal_is_live`]), so a
//!   suspension or revocation takes effect at once; anything else is a 401. Both answers may
//!   come from [`crate::auth_cache`], which keeps these guarantees;
//! * the token endpoint gives one answer, `invalid_client`, for an unknown client, a wrong or
//!   expired secret, a revoked client and a suspended tenant, and an unknown client costs the
//!   same argon2 work as a wrong secret;
//! * secrets are hashed and checked on the blocking pool, never on an async worker, at most
//!   one per core at a time ([`AppState::hash`]).

use std::path::{Path, PathBuf};

use actix_web::dev::Payload;
use actix_web::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use futures::future::LocalBoxFuture;
use serde::Serialize;
use tenants::{JwtConfig, KeySet, Principal, SigningKey};
use utoipa::ToSchema;

use crate::error::Error;
use crate::middleware::RequestId;
use crate::problem::{Problem, method_not_allowed};
use crate::server::AppState;
use crate::settings::AuthSettings;

/// File name of the development signing key, beside the SQLite database.
pub const DEV_KEY_FILE: &str = "jwt-dev-key.pem";

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::routes::resource("/oauth/token").post(token))
        .service(
            web::resource("/.well-known/jwks.json")
                .get(jwks)
                .default_service(web::to(method_not_allowed)),
        );
}

// ---------------------------------------------------------------------------------------
// Keys

/// The key set from `[auth]`: the signing key (`key_pem` or `key_file`), and the key being
/// rotated out (`previous_key_*`), which only verifies. Without a configured key, an SQLite
/// file database gets a development key kept beside it (created on first use, mode 0600),
/// an in-memory SQLite database a key for this process only; PostgreSQL is refused.
pub fn load_keys(auth: &AuthSettings, database_url: &str) -> Result<KeySet, Error> {
    let config = JwtConfig {
        issuer: auth.issuer.clone(),
        audience: auth.audience.clone(),
        lifetime: chrono::Duration::seconds(
            i64::try_from(auth.token_lifetime_seconds).map_err(|_| {
                Error::Config("auth.token_lifetime_seconds is too large".to_owned())
            })?,
        ),
        leeway_seconds: auth.leeway_seconds,
    };
    let mut keys = Vec::new();
    if let Some(pem) = pem_from(
        "auth.previous_key",
        &auth.previous_key_pem,
        &auth.previous_key_file,
    )? {
        keys.push(parse_key("auth.previous_key", &pem)?);
    }
    let signing = match pem_from("auth.key", &auth.key_pem, &auth.key_file)? {
        Some(pem) => pem,
        None => dev_key(database_url)?,
    };
    keys.push(parse_key("auth.key", &signing)?);
    KeySet::new(config, keys).map_err(|e| Error::Config(format!("auth keys: {e}")))
}

fn pem_from(what: &str, inline: &str, file: &str) -> Result<Option<String>, Error> {
    if !inline.trim().is_empty() {
        return Ok(Some(inline.to_owned()));
    }
    if file.trim().is_empty() {
        return Ok(None);
    }
    std::fs::read_to_string(file)
        .map(Some)
        .map_err(|e| Error::Config(format!("{what}_file {file}: {e}")))
}

fn parse_key(what: &str, pem: &str) -> Result<SigningKey, Error> {
    SigningKey::from_pkcs8_pem(pem, None)
        .map_err(|e| Error::Config(format!("{what}: {e} (expected an Ed25519 PKCS#8 PEM key)")))
}

fn dev_key(database_url: &str) -> Result<String, Error> {
    if !crate::db::is_sqlite(database_url) {
        return Err(Error::Config(
            "no token signing key: set WRAP__AUTH__KEY_PEM or auth.key_file \
             (make one with `openssl genpkey -algorithm ed25519`)"
                .to_owned(),
        ));
    }
    let generate =
        || tenants::jwt::generate_dev_key().map_err(|e| Error::Other(format!("dev key: {e}")));
    let Some(db_file) = crate::db::sqlite_path(database_url) else {
        tracing::warn!(
            "no signing key configured: using a key for this process only (in-memory database)"
        );
        return generate();
    };
    let path = dev_key_path(&db_file);
    if path.exists() {
        return std::fs::read_to_string(&path)
            .map_err(|e| Error::Config(format!("development key {}: {e}", path.display())));
    }
    let pem = generate()?;
    match write_private(&path, &pem) {
        Ok(()) => {}
        // Another process made it first: use theirs.
        Err(e) if path.exists() => {
            tracing::debug!(error = %e, "development key created concurrently");
            return std::fs::read_to_string(&path)
                .map_err(|e| Error::Config(format!("development key {}: {e}", path.display())));
        }
        Err(e) => return Err(e),
    }
    tracing::warn!(
        path = %path.display(),
        "no signing key configured: generated a development key (set auth.key_file or \
         WRAP__AUTH__KEY_PEM in production)"
    );
    Ok(pem)
}

/// Where the development key of an SQLite file lives.
pub fn dev_key_path(db_file: &Path) -> PathBuf {
    db_file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
        .join(DEV_KEY_FILE)
}

fn write_private(path: &Path, text: &str) -> Result<(), Error> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| Error::Other(format!("writing {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::Other(format!("writing {}: {e}", path.display())))
}

// ---------------------------------------------------------------------------------------
// Token endpoint

/// A successful token answer (RFC 6749 section 5.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The JWT to send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

/// The form of a token request, for the OpenAPI document.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct TokenRequest {
    /// Must be `client_credentials`.
    grant_type: String,
    /// The client id (`cli_...`), unless sent with HTTP Basic authentication.
    client_id: Option<String>,
    /// The client secret, unless sent with HTTP Basic authentication.
    client_secret: Option<String>,
}

/// Exchange client credentials for an access token.
///
/// Form-encoded (`application/x-www-form-urlencoded`) with `grant_type=client_credentials`;
/// the client authenticates with `client_id` and `client_secret` in the form or with HTTP
/// Basic authentication (not both). Errors are problem+json with the RFC 6749 `error` and
/// `error_description` members: `invalid_request`, `unsupported_grant_type`,
/// `invalid_client` (401; the same answer for every kind of bad credential).
#[utoipa::path(
    post, path = "/oauth/token", tag = "auth", operation_id = "issue_token",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A token", body = TokenResponse),
        (status = 400, description = "invalid_request or unsupported_grant_type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "invalid_client", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not form-encoded", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many token requests from this address or for this client (Retry-After)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn token(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let essence = content_type
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !essence.is_some_and(|e| e.eq_ignore_ascii_case("application/x-www-form-urlencoded")) {
        return Err(Problem::unsupported_media_type(
            "application/x-www-form-urlencoded",
            content_type,
        ));
    }
    // Before any work: a flood from one address stops here (`crate::rate_limit`).
    state.rate_limits.token_address(&req)?;
    let body = crate::extract::read_body(&req, &mut payload).await?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|e| Problem::oauth("invalid_request", format!("malformed form: {e}")))?;
    let param = |name: &str| -> Result<Option<String>, Problem> {
        let mut values = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next().cloned();
        if values.next().is_some() {
            return Err(Problem::oauth(
                "invalid_request",
                format!("{name} is given more than once"),
            ));
        }
        Ok(first.filter(|v| !v.is_empty()))
    };
    match param("grant_type")?.as_deref() {
        None => return Err(Problem::oauth("invalid_request", "grant_type is missing")),
        Some("client_credentials") => {}
        Some(other) => {
            return Err(Problem::oauth(
                "unsupported_grant_type",
                format!("grant_type {other:?} is not supported; use client_credentials"),
            ));
        }
    }
    let (client_id, secret) = match (
        basic_credentials(&req)?,
        param("client_id")?,
        param("client_secret")?,
    ) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(Problem::oauth(
                "invalid_request",
                "send the client credentials either with HTTP Basic or in the form, not both",
            ));
        }
        (Some(basic), None, None) => basic,
        (None, Some(id), Some(secret)) => (id, secret),
        (None, None, _) => return Err(Problem::oauth("invalid_request", "client_id is missing")),
        (None, Some(_), None) => {
            return Err(Problem::oauth(
                "invalid_request",
                "client_secret is missing",
            ));
        }
    };

    // Before the argon2id hash: guesses at one client's secret stop here, known or not.
    state.rate_limits.token_client(&client_id)?;
    let now = Utc::now();
    let client = tenants::store::find_client_by_client_id(&state.db, &client_id).await?;
    let checked = client.clone();
    let ok = state
        .hash(move || tenants::store::check_secret(checked.as_ref(), &secret, now))
        .await?;
    let principal = match (ok, client) {
        (true, Some(client)) => tenants::store::principal_of(&state.db, &client).await?,
        _ => None,
    };
    let Some(principal) = principal else {
        tracing::warn!(client_id = %client_id, "token refused: client authentication failed");
        return Err(Problem::oauth(
            "invalid_client",
            "client authentication failed (unknown client, wrong or expired secret, revoked \
             client, or suspended tenant)",
        ));
    };
    let (access_token, claims) = state.keys.issue(&principal, now)?;
    tracing::info!(
        client_id = %principal.client_id,
        tenant_id = %principal.tenant_id,
        jti = %claims.jti,
        "token issued"
    );
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((PRAGMA, "no-cache"))
        .json(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: claims.exp - claims.iat,
        }))
}

/// `Authorization: Basic` client credentials (RFC 6749 section 2.3.1: each part is
/// form-urlencoded before the base64).
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, Problem> {
    let Some(value) = req.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || Problem::oauth("invalid_request", "malformed Basic authorization header");
    let value = value.to_str().map_err(|_| bad())?;
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return Err(Problem::oauth(
            "invalid_request",
            "the token endpoint takes Basic client authentication or form parameters",
        ));
    };
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|mut v| v.pop())
            .map(|(_, v)| v)
            .ok_or_else(bad)
    };
    Ok(Some((unescape(id)?, unescape(secret)?)))
}

/// The public signing keys (JWK Set), to verify tokens elsewhere.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JWK Set (RFC 7517)", body = serde_json::Value))
)]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        .json(state.keys.jwks())
}

// ---------------------------------------------------------------------------------------
// Bearer extractor

/// The authenticated caller of a `/v1` request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who they are.
    pub principal: Principal,
    /// The request's id (for the audit log).
    pub request_id: String,
}

impl FromRequest for Caller {
    type Error = Problem;
    type Future = LocalBoxFuture<'static, Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| Problem::internal(&"application state missing"))?;
            let token = bearer(&req)?;
            let claims = state.auth_cache.verify(&state.keys, token).map_err(|e| {
                tracing::info!(reason = %e, "bearer token refused");
                Problem::unauthorized(format!("invalid access token: {e}"))
            })?;
            let principal = claims.principal();
            if !state.auth_cache.is_live(&state.db, &principal).await? {
                tracing::info!(client_id = %principal.client_id, "bearer token of a revoked client or suspended tenant");
                return Err(Problem::unauthorized(
                    "the token's client has been revoked, or its tenant suspended",
                ));
            }
            let span = tracing::Span::current();
            span.record("tenant_id", tracing::field::display(principal.tenant_id));
            span.record("client_id", tracing::field::display(&principal.client_id));
            state.rate_limits.api(&principal.client_id)?;
            let request_id = req
                .extensions()
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default();
            Ok(Caller {
                principal,
                request_id,
            })
        })
    }
}

fn bearer(req: &HttpRequest) -> Result<&str, Problem> {
    let missing = || {
        Problem::unauthorized(
            "send an access token as `Authorization: Bearer <token>` (get one at POST /oauth/token)",
        )
    };
    let value = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_key_lives_beside_the_database() {
        assert_eq!(
            dev_key_path(Path::new("data/wrap.db")),
            Path::new("data").join(DEV_KEY_FILE)
        );
        assert_eq!(
            dev_key_path(Path::new("wrap.db")),
            Path::new(".").join(DEV_KEY_FILE)
        );
    }

    #[test]
    fn postgres_without_a_key_is_refused() {
        let settings = crate::Settings::builtin().unwrap();
        let err = load_keys(&settings.auth, "postgres://u@h/db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("WRAP__AUTH__KEY_PEM"), "{err}");
    }

    #[test]
    fn development_key_is_made_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("wrapd-keys-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/wrap.db?mode=rwc", dir.display());
        let settings = crate::Settings::builtin().unwrap();
        let first = load_keys(&settings.auth, &url).unwrap();
        let second = load_keys(&settings.auth, &url).unwrap();
        assert_eq!(first.signing_key().kid(), second.signing_key().kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join(DEV_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rotation_keeps_the_previous_key_verifying() {
        let mut settings = crate::Settings::builtin().unwrap();
        let old = tenants::jwt::generate_dev_key().unwrap();
        settings.auth.key_pem = old.clone();
        let before = load_keys(&settings.auth, "postgres://u@h/db").unwrap();
        let p = Principal {
            tenant_id: uuid::Uuid::now_v7(),
            tenant_kind: tenants::TenantKind::Manager,
            client_id: "cli_x".into(),
            role: tenants::Role::Viewer,
        };
        let (old_token, _) = before.issue(&p, Utc::now()).unwrap();
        settings.auth.previous_key_pem = old;
        settings.auth.key_pem = tenants::jwt::generate_dev_key().unwrap();
        let after = load_keys(&settings.auth, "postgres://u@h/db").unwrap();
        assert!(after.verify(&old_token).is_ok());
        assert_ne!(after.signing_key().kid(), before.signing_key().kid());
        assert_eq!(after.jwks()["keys"].as_array().unwrap().len(), 2);
    }
}
