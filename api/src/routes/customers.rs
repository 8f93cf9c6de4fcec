//! `/v1/customers`: a distributor's customers, their accounts and cash movements.

use actix_web::web;

/// Routes of this module.
pub fn configure(_cfg: &mut web::ServiceConfig) {}
