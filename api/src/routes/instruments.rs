//! `/v1/instruments` and `/v1/prices`: the platform's market data.

use actix_web::web;

/// Routes of this module.
pub fn configure(_cfg: &mut web::ServiceConfig) {}
