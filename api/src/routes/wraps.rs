//! `/v1/wraps`: wraps (virtual sub-accounts) and their money movements.

use actix_web::web;

/// Routes of this module.
pub fn configure(_cfg: &mut web::ServiceConfig) {}
