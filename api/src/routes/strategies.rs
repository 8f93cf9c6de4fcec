//! `/v1/strategies`: managers' strategies and their model versions.

use actix_web::web;

/// Routes of this module.
pub fn configure(_cfg: &mut web::ServiceConfig) {}
