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

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
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
