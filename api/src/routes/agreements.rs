//! `/v1/agreements`: distributor × manager × strategy, their terms, and platform fees.

use actix_web::web;

/// Routes of this module.
pub fn configure(_cfg: &mut web::ServiceConfig) {}
