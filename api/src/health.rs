//! Liveness and readiness probes.
//!
//! `GET /healthz`: the process answers (no dependency is checked, so a database outage does
//! not get the process restarted). `GET /readyz`: the database answers `SELECT 1` within
//! [`READY_TIMEOUT`]; otherwise 503, and the load balancer stops sending traffic.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::problem::{Problem, method_not_allowed};
use crate::server::AppState;

/// How long `/readyz` waits for the database.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/healthz")
            .get(healthz)
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/readyz")
            .get(readyz)
            .default_service(web::to(method_not_allowed)),
    );
}

/// Liveness: the process answers.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = serde_json::Value))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness: the database answers.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = serde_json::Value),
        (status = 503, description = "The database is not reachable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    match tokio::time::timeout(READY_TIMEOUT, crate::db::ping(&state.db)).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(json!({ "status": "ready" }))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            Err(Problem::unavailable("the database is not reachable"))
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = READY_TIMEOUT.as_millis(),
                "readiness: database check timed out"
            );
            Err(Problem::unavailable("the database did not answer in time"))
        }
    }
}
