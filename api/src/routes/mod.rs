//! The `/v1` resources. Each module exposes `configure`, mounted by
//! [`crate::server::routes`], and documents its isolation rule at its top.

pub mod agreements;
pub mod branches;
pub mod cost_basis;
pub mod customers;
pub mod events;
pub mod format;
pub mod instructions;
pub mod instruments;
pub mod ledger;
pub mod operations;
pub mod projections;
pub mod reconciliation;
pub mod reports;
pub mod returns;
pub mod statements;
pub mod strategies;
pub mod tenants;
pub mod users;
pub mod webhooks;
pub mod wraps;
pub mod zengin;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::web;

use crate::problem::method_not_allowed;

/// A resource of the API: 405 problem for a method it does not serve, and the handler deadline
/// ([`crate::middleware::deadline`], mounted here, after routing, where it may hold the request).
pub fn resource(
    path: &str,
) -> actix_web::Resource<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::resource(path)
        .default_service(web::to(method_not_allowed))
        .wrap(from_fn(crate::middleware::deadline))
}
