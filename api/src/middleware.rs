//! The one middleware every request passes through: request id, tracing span, metrics, and
//! the last word on error bodies.
//!
//! Invariants enforced here (tested by `api/tests/errors.rs`):
//! * every answer carries `x-request-id`: the caller's, when it is 1 to 128 visible ASCII
//!   characters, else a fresh UUID v7;
//! * every answer with a 5xx status has a problem+json body holding only its type, title,
//!   status and request id, whatever produced it (the cause is in the log, under the span);
//! * every other error answer is problem+json: actix's own plain-text errors (say, a body
//!   cut short) are rewritten, keeping their status and message.
//!
//! The span `request` carries the request id, method and path; the bearer-token extractor
//! ([`crate::auth::Caller`]) records `tenant_id` and `client_id` on it once the caller is known.

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, web};
use tracing::Instrument as _;

use crate::problem::{CONTENT_TYPE_PROBLEM, Problem};
use crate::server::AppState;

/// The request id header, read and written.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, in the request extensions for handlers (the audit log records it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// The middleware function (mounted with `actix_web::middleware::from_fn`).
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| std::sync::Arc::clone(&s.metrics));
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        path = %req.path(),
        tenant_id = tracing::field::Empty,
        client_id = tracing::field::Empty,
    );
    let res = next.call(req).instrument(span.clone()).await?;

    let status = res.status();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let elapsed = started.elapsed();
    if let Some(metrics) = metrics {
        metrics.observe_request(method.as_str(), &route, status.as_u16(), elapsed);
    }
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            route = %route,
            elapsed_us = elapsed.as_micros() as u64,
            "request done"
        );
    });

    let is_problem = res
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == CONTENT_TYPE_PROBLEM.as_bytes());
    // The console's own 4xx pages (sign-in refused, forbidden, not found) are HTML for a
    // person, not an API answer: kept as they are. Its 5xx still get the rule below.
    let is_console_page = res.request().path().starts_with("/console")
        && res
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    let mut res = if status.is_server_error() {
        let problem = Problem::new(status, slug_of(status), title_of(status))
            .with_request_id(request_id.clone());
        replace_body(res, &problem)
    } else if status.is_client_error() && !is_problem && !is_console_page {
        let detail = res
            .response()
            .error()
            .map_or_else(|| title_of(status).to_owned(), ToString::to_string);
        let problem = Problem::new(status, slug_of(status), title_of(status)).with_detail(detail);
        replace_body(res, &problem)
    } else {
        res.map_into_left_body()
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}

fn replace_body<B>(res: ServiceResponse<B>, problem: &Problem) -> ServiceResponse<EitherBody<B>> {
    let (req, old) = res.into_parts();
    let mut fresh = problem.to_response();
    // Keep the headers a client may rely on (Allow, WWW-Authenticate, Retry-After).
    for (name, value) in old.headers() {
        if name != CONTENT_TYPE && name != actix_web::http::header::CONTENT_LENGTH {
            fresh.headers_mut().insert(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(req, fresh).map_into_right_body()
}

fn slug_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad-request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not-found",
        405 => "method-not-allowed",
        408 => "timeout",
        413 => "payload-too-large",
        415 => "unsupported-media-type",
        429 => "too-many-requests",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "client-error",
    }
}

fn title_of(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_bounded_visible_ascii() {
        assert!(acceptable("abc-123"));
        assert!(acceptable(&"x".repeat(128)));
        assert!(!acceptable(&"x".repeat(129)));
        assert!(!acceptable(""));
        assert!(!acceptable("has space"));
        assert!(!acceptable("line\nbreak"));
        assert!(!acceptable("ünïcode"));
    }
}

/// `[server] handler_timeout_seconds`, in the app data for [`deadline`].
#[derive(Debug, Clone, Copy)]
pub struct HandlerTimeout(pub std::time::Duration);

/// Abandons a request whose handler runs longer than [`HandlerTimeout`]: 503 problem+json with
/// `Retry-After`. Dropping the handler drops its transaction, which rolls back unless it had
/// committed; a money request is retried with its `Idempotency-Key`, which answers what was
/// done, if anything. Mounted per resource (`crate::routes::resource`): after routing, so the
/// request it keeps for the answer is not a second owner while the router still writes to it.
/// Tried by `api/tests/http/rate_limits.rs::a_slow_handler_is_abandoned_and_its_retry_books_once`.
pub async fn deadline(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let Some(limit) = req.app_data::<HandlerTimeout>().map(|t| t.0) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let http = req.request().clone();
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(res) => Ok(res?.map_into_left_body()),
        Err(_) => {
            tracing::warn!(
                seconds = limit.as_secs(),
                "handler abandoned: over its time limit"
            );
            let mut p = Problem::unavailable(format!(
                "the request took longer than {} s and was abandoned; retry (money requests with \
                 the same Idempotency-Key)",
                limit.as_secs()
            ));
            p.retry_after = Some(1);
            Ok(ServiceResponse::new(http, p.to_response()).map_into_right_body())
        }
    }
}

/// Headers every answer carries: no MIME sniffing, never framed, no referrer sent on. (The
/// service speaks JSON and CSV; TLS and HSTS are the reverse proxy's, docs/OPERATIONS.md.)
pub fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add(("x-content-type-options", "nosniff"))
        .add(("x-frame-options", "DENY"))
        .add(("referrer-policy", "no-referrer"))
}
