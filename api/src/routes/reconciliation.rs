//! `/v1/ledger/reconciliation`: the virtual layer against the omnibus.

use actix_web::web;

/// Routes of this module.
pub fn configure(_cfg: &mut web::ServiceConfig) {}
