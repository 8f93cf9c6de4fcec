//! RFC 9457 problem details: every error answer is `application/problem+json` with a stable
//! `type`, a human `title` and `detail`, and `errors[]` naming fields for validation failures.
//!
//! Invariant: bodies of 5xx answers say nothing internal. [`Problem::internal`] logs the
//! cause (under the request's span, so with its request id) and answers a bare 500, and
//! [`crate::middleware`] rewrites every 5xx body, whoever produced it, to the status and the
//! request id alone. Tested by `api/tests/errors.rs`.
//!
//! Status codes: 400 malformed request (syntax, unknown or unparsable parameter), 401 no
//! valid token, 403 authenticated but not allowed, 404 nothing there (or not yours), 409 the
//! state forbids it, 413 body too large, 415 not JSON, 422 well-formed but breaks a rule,
//! 503 with `Retry-After` when the database cannot be reached (a connection refused or cut,
//! the pool's acquire timeout, the server shutting down): the request's transaction did not
//! commit, or, if the connection broke during the commit, its retry with the same
//! `Idempotency-Key` answers what was done; either way, trying again is the remedy, not a bug
//! report (tried by `api/tests/http/faults/db_outage.rs`).

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

/// Media type of problem answers.
pub const CONTENT_TYPE_PROBLEM: &str = "application/problem+json";

/// Prefix of every problem `type`.
pub const TYPE_BASE: &str = "https://wrap.example/problems/";

/// One problem answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable URI naming the kind of problem.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short summary, the same for every occurrence of this type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What happened this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The fields at fault, for validation failures.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The request id, on 5xx answers (the log has the rest under it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The OAuth 2.0 error code (RFC 6749 section 5.2), on answers of the token endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// The OAuth 2.0 error description (the same text as `detail`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// Seconds to wait before trying again: the `Retry-After` header (429, 503).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// JSON pointer or parameter name.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl Problem {
    /// A problem of type `TYPE_BASE + slug`.
    pub fn new(status: StatusCode, slug: &str, title: &str) -> Self {
        Self {
            type_uri: format!("{TYPE_BASE}{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            errors: Vec::new(),
            request_id: None,
            error: None,
            error_description: None,
            retry_after: None,
        }
    }

    /// With a `detail`.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// With the request id (5xx answers carry nothing else).
    #[must_use]
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// With one more invalid field.
    #[must_use]
    pub fn with_field_error(
        mut self,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
        self
    }

    /// 404 for a path that names nothing.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not Found").with_detail(detail)
    }

    /// 405 for a known path asked with the wrong method.
    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method Not Allowed",
        )
        .with_detail(detail)
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", "Bad Request").with_detail(detail)
    }

    /// 400 naming one query or path parameter.
    pub fn bad_parameter(name: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-parameter",
            "Invalid Parameter",
        )
        .with_detail(format!("{name}: {message}"))
        .with_field_error(name, message)
    }

    /// 422: well-formed, but a field breaks a rule.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Validation Failed",
        )
        .with_detail(format!("{field}: {message}"))
        .with_field_error(field, message)
    }

    /// 401: no valid access token. `detail` says what was wrong with it.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized").with_detail(detail)
    }

    /// 403: authenticated, not allowed.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden").with_detail(detail)
    }

    /// 409: the current state forbids the change.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict").with_detail(detail)
    }

    /// 413: the body is over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload Too Large",
        )
        .with_detail(format!(
            "the request body is over the limit of {limit} bytes"
        ))
    }

    /// 415: the body is not of the media type the endpoint reads.
    pub fn unsupported_media_type(expected: &str, got: Option<&str>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported Media Type",
        )
        .with_detail(match got {
            Some(got) => format!("expected a body of type {expected}, got {got}"),
            None => format!("expected a body of type {expected}, and no Content-Type was given"),
        })
    }

    /// 500, logging `cause` (which never reaches the caller).
    pub fn internal(cause: &dyn fmt::Display) -> Self {
        let text = cause.to_string();
        // PostgreSQL cancelled a statement over `[database] statement_timeout_seconds`
        // (SQLSTATE 57014; sqlx shows only the server's message, English unless the server's
        // `lc_messages` says otherwise): the transaction rolled back, so this is "try again",
        // not a fault of the service.
        if text.contains("canceling statement due to statement timeout") {
            tracing::warn!(error = %text, "statement timeout");
            let mut p = Self::unavailable(
                "a database statement ran over its time limit and was cancelled; nothing was \
                 changed: retry (money requests with the same Idempotency-Key)",
            );
            p.retry_after = Some(1);
            return p;
        }
        tracing::error!(error = %text, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal Server Error",
        )
    }

    /// An OAuth 2.0 token endpoint error (RFC 6749 section 5.2): `error` and
    /// `error_description` beside the problem members. `invalid_client` is 401, the rest 400.
    pub fn oauth(error: &'static str, description: impl Into<String>) -> Self {
        let description = description.into();
        let status = if error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        let mut p = Self::new(status, &format!("oauth/{error}"), "Token Request Refused")
            .with_detail(description.clone());
        p.error = Some(error);
        p.error_description = Some(description);
        p
    }

    /// 429: a rate limit (`crate::rate_limit`); try again in `seconds`.
    pub fn too_many_requests(what: &str, seconds: u64) -> Self {
        let mut p = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too Many Requests",
        )
        .with_detail(format!("too many {what}: try again in {seconds} s"));
        p.retry_after = Some(seconds);
        p
    }

    /// 503: a dependency (the database) is not available.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service Unavailable",
        )
        .with_detail(detail)
    }

    /// 503 with `Retry-After` when `cause` (or an error it wraps) is the database being out of
    /// reach ([`database_unreachable`]), else 500 as [`Problem::internal`].
    pub fn internal_or_unavailable(cause: &(dyn std::error::Error + 'static)) -> Self {
        if database_unreachable(cause) {
            tracing::warn!(error = %cause, "database unreachable: answering 503");
            let mut p = Self::unavailable("the database is not reachable; retry shortly");
            p.retry_after = Some(UNAVAILABLE_RETRY_AFTER_SECONDS);
            p
        } else {
            Self::internal(&cause)
        }
    }

    /// The status as a [`StatusCode`].
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The answer.
    pub fn to_response(&self) -> HttpResponse {
        let body = serde_json::to_string(self).unwrap_or_else(|_| {
            format!(
                r#"{{"type":"{TYPE_BASE}internal","title":"Internal Server Error","status":500}}"#
            )
        });
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_PROBLEM)));
        if self.status == 401 {
            // RFC 6750 section 3 (Bearer) and RFC 6749 section 5.2 (client authentication).
            let challenge = if self.error.is_some() {
                r#"Basic realm="wrapd""#
            } else {
                r#"Bearer realm="wrapd""#
            };
            response.insert_header((WWW_AUTHENTICATE, HeaderValue::from_static(challenge)));
        }
        if self.error.is_some() {
            response.insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header((RETRY_AFTER, HeaderValue::from(seconds)));
        }
        response.body(body)
    }
}

/// `Retry-After` of a 503 for an unreachable database: long enough for a pool to reconnect,
/// short enough that a client retrying a money request is not kept waiting.
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 1;

/// Whether `e`, or any error in its `source()` chain, says the database could not be reached or
/// the connection broke (as opposed to a statement the database refused): the pool timed out
/// waiting for a connection, an I/O error or TLS failure on the socket, a broken protocol stream, or
/// PostgreSQL's SQLSTATE classes 08 (connection exception) and 57P01-57P03 (the server is
/// shutting down, crashed or starting up).
pub fn database_unreachable(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        // A wrapper marked `#[error(transparent)]` (tenants' `Db`) hands out its inner error's
        // source, not the inner error: so the parts of a `DbErr` are looked for too.
        if let Some(db) = e.downcast_ref::<sea_orm::DbErr>() {
            return db_err_unreachable(db);
        }
        if let Some(acquire) = e.downcast_ref::<sea_orm::error::ConnAcquireErr>() {
            return *acquire == sea_orm::error::ConnAcquireErr::Timeout;
        }
        if let Some(sea_orm::RuntimeErr::SqlxError(sqlx)) = e.downcast_ref::<sea_orm::RuntimeErr>()
        {
            return sqlx_unreachable(sqlx);
        }
        if let Some(sqlx) = e.downcast_ref::<sea_orm::sqlx::Error>() {
            return sqlx_unreachable(sqlx);
        }
        next = e.source();
    }
    false
}

fn db_err_unreachable(e: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match e {
        // A closed pool is this process shutting down (or a bug), not the database away:
        // it will not come back by itself.
        DbErr::ConnectionAcquire(acquire) => *acquire == sea_orm::error::ConnAcquireErr::Timeout,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => sqlx_unreachable(e),
        _ => false,
    }
}

fn sqlx_unreachable(e: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    match e {
        E::Io(_) | E::Tls(_) | E::Protocol(_) | E::PoolTimedOut | E::WorkerCrashed => true,
        E::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.title)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        Problem::status_code(self)
    }

    fn error_response(&self) -> HttpResponse {
        self.to_response()
    }
}

/// Default service: 404 problem for any unknown path.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    Problem::not_found(format!("no resource at {}", req.path())).to_response()
}

/// Default service of a resource: 405 problem for a method it does not serve.
pub async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    Problem::method_not_allowed(format!("{} does not accept {}", req.path(), req.method()))
        .to_response()
}

impl From<tenants::TenantsError> for Problem {
    fn from(e: tenants::TenantsError) -> Self {
        use tenants::TenantsError as E;
        match e {
            E::Validation { field, message } => Problem::invalid_field(field, message),
            E::NotFound => Problem::not_found("no such object"),
            E::Conflict(detail) => Problem::conflict(detail),
            E::Db(_) => Problem::internal_or_unavailable(&e),
            E::Crypto(_) | E::Corrupt(_) => Problem::internal(&e),
        }
    }
}

impl From<ledger::LedgerError> for Problem {
    fn from(e: ledger::LedgerError) -> Self {
        use ledger::LedgerError as E;
        match e {
            E::AccountNotFound(id) => Problem::not_found(format!("no account {id}")),
            E::EntryNotFound(id) => Problem::not_found(format!("no entry {id}")),
            ref refusal if refusal.is_refusal() => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "ledger-refused",
                "Refused by the Ledger",
            )
            .with_detail(refusal.to_string()),
            other => Problem::internal_or_unavailable(&other),
        }
    }
}

impl From<tenants::Forbidden> for Problem {
    fn from(e: tenants::Forbidden) -> Self {
        Problem::forbidden(e.reason)
    }
}

impl From<sea_orm::DbErr> for Problem {
    fn from(e: sea_orm::DbErr) -> Self {
        Problem::internal_or_unavailable(&e)
    }
}

impl From<actix_web::error::BlockingError> for Problem {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Problem::internal(&e)
    }
}

impl From<wraps::customers::Invalid> for Problem {
    fn from(e: wraps::customers::Invalid) -> Self {
        Problem::invalid_field(&e.field, e.message)
    }
}

impl From<ledger::MarketError> for Problem {
    fn from(e: ledger::MarketError) -> Self {
        use ledger::MarketError as E;
        match e {
            E::Invalid(errors) => {
                let detail = errors
                    .iter()
                    .take(5)
                    .map(|f| format!("{}: {}", f.field, f.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                let more = if errors.len() > 5 {
                    format!(" (and {} more)", errors.len() - 5)
                } else {
                    String::new()
                };
                errors.into_iter().fold(
                    Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "validation",
                        "Validation Failed",
                    )
                    .with_detail(format!("{detail}{more}")),
                    |p, f| p.with_field_error(f.field, f.message),
                )
            }
            E::NotFound(_) => Problem::not_found("no such object"),
            E::Conflict { detail, errors } => {
                errors.into_iter().fold(Problem::conflict(detail), |p, f| {
                    p.with_field_error(f.field, f.message)
                })
            }
            E::Ledger(e) => Problem::from(e),
        }
    }
}

impl From<wraps::eod::EodError> for Problem {
    fn from(e: wraps::eod::EodError) -> Self {
        match e {
            wraps::eod::EodError::OutOfOrder { date, expected } => Problem::conflict(format!(
                "end of day runs dates in order with no gaps: the next date to run is {expected}, not {date}"
            ))
            .with_field_error("date", format!("the next date to run is {expected}")),
            wraps::eod::EodError::InProgress => Problem::conflict(
                "an end-of-day run is in progress (in this service or another process)",
            ),
            e @ wraps::eod::EodError::ClaimLost => Problem::conflict(e.to_string()),
            e @ wraps::eod::EodError::LockFile(_) => Problem::internal(&e),
            wraps::eod::EodError::Invalid { field, message } => Problem::invalid_field(field, message),
            wraps::eod::EodError::ChecksFailed { date, reason } => {
                Problem::conflict(format!("end of day for {date} stopped: {reason}"))
            }
            e @ wraps::eod::EodError::AwaitingFills { .. } => {
                Problem::new(StatusCode::CONFLICT, "awaiting-fills", "Awaiting Fills")
                    .with_detail(e.to_string())
            }
            wraps::eod::EodError::Ledger(e) => Problem::from(e),
            wraps::eod::EodError::Db(e) => Problem::from(e),
        }
    }
}

impl From<wraps::movements::MoveError> for Problem {
    fn from(e: wraps::movements::MoveError) -> Self {
        use wraps::movements::MoveError as E;
        match e {
            E::NotFound(m) => Problem::not_found(m),
            E::Conflict(m) => Problem::conflict(m),
            E::Invalid(i) => Problem::from(i),
            E::Ledger(e) => Problem::from(e),
            E::Tenants(e) => Problem::from(e),
            E::Eod(e) => Problem::from(e),
        }
    }
}

impl From<wraps::funds::FundsError> for Problem {
    fn from(e: wraps::funds::FundsError) -> Self {
        use wraps::funds::FundsError as E;
        match e {
            E::NotFound(m) => Problem::not_found(m),
            E::Invalid(i) => Problem::from(i),
            E::Ledger(e) => Problem::from(e),
            E::Tenants(e) => Problem::from(e),
        }
    }
}

impl From<wraps::zengin::ZenginError> for Problem {
    fn from(e: wraps::zengin::ZenginError) -> Self {
        use wraps::zengin::ZenginError as E;
        // A file's fault names its line and field: `errors[0].field` is `line 3: total_amount`.
        let at = |e: &wraps::zengin::codec::FileError| format!("line {}: {}", e.line, e.field);
        match e {
            E::NotFound(m) => Problem::not_found(m),
            E::Conflict(m) => Problem::conflict(m),
            E::Invalid(i) => Problem::from(i),
            E::File(f) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "zengin-file",
                "Zengin File Refused",
            )
            .with_detail(format!("{f}; nothing was applied"))
            .with_field_error(at(&f), f.message),
            E::ResultChanged(f) => Problem::conflict(format!("{f}; nothing was applied"))
                .with_field_error(at(&f), f.message),
            E::Move(e) => Problem::from(e),
            E::Ledger(e) => Problem::from(e),
        }
    }
}

impl From<wraps::reports::ReportError> for Problem {
    fn from(e: wraps::reports::ReportError) -> Self {
        use wraps::reports::ReportError as E;
        match e {
            // The period's refusals name `to`, the parameter that made it invalid.
            e @ (E::ToBeforeFrom { .. } | E::PeriodTooLong { .. }) => {
                Problem::bad_parameter("to", e.to_string())
            }
            e @ (E::NoEndOfDayFinished | E::AumNotStruck { .. } | E::StatementNotClosed { .. }) => {
                Problem::conflict(e.to_string())
            }
            e @ E::Corrupt(_) => Problem::internal(&e),
            E::Eod(e) => Problem::from(e),
            E::Ledger(e) => Problem::from(e),
            E::Db(e) => Problem::from(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::DbErr;
    use sea_orm::error::ConnAcquireErr;

    use super::*;

    #[test]
    fn an_unreachable_database_is_503_with_retry_after_however_wrapped() {
        let timeout = || DbErr::ConnectionAcquire(ConnAcquireErr::Timeout);
        let io = || {
            DbErr::Query(sea_orm::RuntimeErr::SqlxError(std::sync::Arc::new(
                sea_orm::sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()),
            )))
        };
        // Tenants' `Db` is transparent: its source is the DbErr's own source.
        for p in [
            Problem::from(timeout()),
            Problem::from(io()),
            Problem::from(tenants::TenantsError::Db(timeout())),
            Problem::from(tenants::TenantsError::Db(io())),
            Problem::from(ledger::LedgerError::Storage(io())),
        ] {
            assert_eq!((p.status, p.retry_after), (503, Some(1)), "{p}");
        }
        // A statement the database refused, or this process's pool closed, is still a 500.
        for e in [
            DbErr::Custom("boom".into()),
            DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        ] {
            let p = Problem::from(e);
            assert_eq!((p.status, p.retry_after), (500, None));
        }
    }

    #[test]
    fn a_cancelled_statement_is_unavailable_not_a_fault() {
        let p = Problem::internal(
            &"Execution Error: error returned from database: canceling statement due to statement timeout",
        );
        assert_eq!((p.status, p.retry_after), (503, Some(1)));
        assert_eq!(Problem::internal(&"disk full").status, 500);
    }
}
