//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and
//! the wire types' `ToSchema` derives, served at `/v1/openapi.json` and browsable (Redoc) at
//! `/docs`. Redoc's script is vendored (`vendor/redoc/`, its licence beside it) and served
//! from the binary at `/docs/redoc.standalone.js`: no CDN, so `/docs` renders without
//! internet. `api/tests/openapi.rs` checks that every route of the server is in it.

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::problem::method_not_allowed;

/// The API description.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "wrapd",
        description = "The fund-wrap platform API. Authenticate with OAuth 2.0 client \
                       credentials at POST /oauth/token and send the token as \
                       `Authorization: Bearer <token>`. Errors are RFC 9457 problem+json; \
                       amounts are decimal strings.",
    ),
    paths(
        crate::auth::token,
        crate::auth::jwks,
        crate::health::healthz,
        crate::health::readyz,
        crate::metrics::metrics,
        crate::routes::tenants::create_tenant,
        crate::routes::tenants::list_tenants,
        crate::routes::tenants::get_tenant,
        crate::routes::tenants::suspend_tenant,
        crate::routes::tenants::resume_tenant,
        crate::routes::tenants::create_client,
        crate::routes::tenants::list_clients,
        crate::routes::tenants::get_client,
        crate::routes::tenants::revoke_client,
        crate::routes::tenants::rotate_client,
        crate::routes::ledger::list_accounts,
        crate::routes::ledger::get_account,
        crate::routes::ledger::list_entries,
        crate::routes::ledger::get_entry,
        crate::routes::ledger::trial_balance,
        crate::audit::list_audit,
        crate::routes::users::create_user,
        crate::routes::users::list_users,
        crate::routes::users::get_user,
        crate::routes::users::suspend_user,
        crate::routes::users::resume_user,
        crate::routes::branches::create_branch,
        crate::routes::branches::list_branches,
        crate::routes::branches::get_branch,
        crate::routes::branches::assign_customer,
        // instruments, prices, custodian statements (routes/instruments.rs)
        crate::routes::instruments::create_instrument,
        crate::routes::instruments::list_instruments,
        crate::routes::instruments::get_instrument,
        crate::routes::instruments::update_instrument,
        crate::routes::instruments::upload_prices,
        crate::routes::instruments::list_prices,
        crate::routes::instruments::set_fund_term,
        crate::routes::instruments::list_fund_terms,
        // individual cost (routes/cost_basis.rs)
        crate::routes::cost_basis::wrap_cost_basis,
        crate::routes::cost_basis::customer_cost_basis,

        // strategies (routes/strategies.rs)
        crate::routes::strategies::create_strategy,
        crate::routes::strategies::list_strategies,
        crate::routes::strategies::get_strategy,
        crate::routes::strategies::update_strategy,
        crate::routes::strategies::create_version,
        crate::routes::strategies::list_versions,
        crate::routes::strategies::current_version,

        // agreements and platform fees (routes/agreements.rs)
        crate::routes::agreements::propose_agreement,
        crate::routes::agreements::list_agreements,
        crate::routes::agreements::get_agreement,
        crate::routes::agreements::accept_agreement,
        crate::routes::agreements::decline_agreement,
        crate::routes::agreements::propose_terms,
        crate::routes::agreements::list_terms,
        crate::routes::agreements::set_platform_fee,
        crate::routes::agreements::get_platform_fee,

        // customers and their money (routes/customers.rs)
        crate::routes::customers::create_customer,
        crate::routes::customers::list_customers,
        crate::routes::customers::get_customer,
        crate::routes::customers::update_customer,
        crate::routes::customers::deposit,
        crate::routes::customers::withdraw,

        // wraps and their movements (routes/wraps.rs)
        crate::routes::wraps::open_wrap,
        crate::routes::wraps::list_customer_wraps,
        crate::routes::wraps::list_wraps,
        crate::routes::wraps::get_wrap,
        crate::routes::wraps::contribute,
        crate::routes::wraps::withdraw,
        crate::routes::wraps::switch,
        crate::routes::wraps::close,
        crate::routes::wraps::list_movements,
        crate::routes::wraps::create_plan,
        crate::routes::wraps::list_plans,
        crate::routes::wraps::cancel_plan,
        crate::routes::wraps::list_plan_runs,
        crate::routes::returns::wrap_returns,

        // Zengin files: bank accounts, direct debits (routes/zengin.rs)
        crate::routes::zengin::get_bank_account,
        crate::routes::zengin::set_bank_account,
        crate::routes::zengin::create_debit_request,
        crate::routes::zengin::list_debit_requests,
        crate::routes::zengin::get_debit_request,
        crate::routes::zengin::debit_request_file,
        crate::routes::zengin::upload_results,
        crate::routes::zengin::list_plan_debits,
        crate::routes::zengin::transfer_file,

        // statements (routes/statements.rs)
        crate::routes::statements::wrap_statement,
        crate::routes::statements::customer_statement,

        // reconciliation (routes/reconciliation.rs)
        crate::routes::reconciliation::reconciliation,
        crate::routes::reconciliation::create_statement,
        crate::routes::reconciliation::list_statements,
        crate::routes::reconciliation::get_statement,
        crate::routes::reconciliation::statement_breaks,

        // end of day (routes/operations.rs)
        crate::routes::operations::start_eod,
        crate::routes::operations::eod_status,

        // projections (routes/projections.rs)
        crate::routes::projections::fee_impact,
        crate::routes::projections::wrap_goal,
        crate::routes::projections::goal_history,

        // reports (routes/reports.rs)
        crate::routes::reports::aum,
        crate::routes::reports::aum_history,
        crate::routes::reports::fee_split_report,
        crate::routes::reports::invoices,

        // external execution (routes/instructions.rs)
        crate::routes::instructions::list_instructions,
        crate::routes::instructions::get_instruction,
        crate::routes::instructions::report_fill,
        crate::routes::instructions::close_instruction,
        crate::routes::instructions::set_venue,
        crate::routes::instructions::get_venue,
        // events and webhooks (routes/events.rs, routes/webhooks.rs)
        crate::routes::events::list_events,
        crate::routes::webhooks::create_webhook,
        crate::routes::webhooks::list_webhooks,
        crate::routes::webhooks::get_webhook,
        crate::routes::webhooks::delete_webhook,
        crate::routes::webhooks::enable_webhook,
        crate::routes::webhooks::list_deliveries,
        crate::routes::webhooks::replay_delivery,

        openapi_json,
    ),
    modifiers(&BearerAuth, &DescribeResponses, &InputLimits),
    tags(
        (name = "auth", description = "Tokens and keys"),
        (name = "platform", description = "The platform operator's endpoints"),
        (name = "tenants", description = "A tenant's own record and API clients"),
        (name = "users", description = "A tenant's console users (people who sign in to /console)"),
        (name = "branches", description = "A distributor's branches, and each customer's branch and adviser"),
        (name = "ledger", description = "Reads of the caller's books"),
        (name = "customers", description = "A distributor's customers and their cash"),
        (name = "wraps", description = "Wraps (virtual sub-accounts) and their money movements"),
        (name = "zengin", description = "Zengin files with the bank: customers' accounts for direct debit, the debit request (口座振替) and its result"),
        (name = "reports", description = "AUM and fee reports"),
        (name = "instructions", description = "Block orders for a distributor's own account system, and the fills it reports"),
        (name = "events", description = "The caller's events, resumable by cursor (long-poll)"),
        (name = "webhooks", description = "Signed deliveries of the caller's events, their log and replays"),
        (name = "projections", description = "Fee impact and goal probability"),
        (name = "operations", description = "Probes, metrics and this document"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from POST /oauth/token"))
                    .build(),
            ),
        );
    }
}

/// Every response described: OpenAPI requires a `description` on each, and a response whose
/// annotation gives none gets its status's name ("Created", "Not Found"); every operation's
/// unlisted statuses are its `default` problem+json answer. Validators, fuzzers and client
/// generators accept the document (`wrapd openapi`, checked in `.ci/run` by
/// `.ci/openapi-check.sh`).
struct DescribeResponses;

impl Modify for DescribeResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                // Any status an operation does not list (400 for a malformed query, 401, 403,
                // 429, 503, ...) is a problem+json answer: said once, as its `default`.
                op.responses
                    .responses
                    .entry("default".to_owned())
                    .or_insert_with(|| utoipa::openapi::RefOr::T(problem_response()));
                for (status, response) in &mut op.responses.responses {
                    if let utoipa::openapi::RefOr::T(r) = response
                        && r.description.trim().is_empty()
                    {
                        r.description = status
                            .parse::<u16>()
                            .ok()
                            .and_then(|c| actix_web::http::StatusCode::from_u16(c).ok())
                            .and_then(|c| c.canonical_reason())
                            .unwrap_or("Response")
                            .to_owned();
                    }
                }
            }
        }
    }
}

/// An RFC 9457 problem answer.
fn problem_response() -> utoipa::openapi::Response {
    utoipa::openapi::ResponseBuilder::new()
        .description("A problem (RFC 9457): any status this operation does not list")
        .content(
            crate::problem::CONTENT_TYPE_PROBLEM,
            utoipa::openapi::Content::new(Some(utoipa::openapi::Ref::from_schema_name("Problem"))),
        )
        .build()
}

/// The request bodies' limits, stated in the document from the one table the extractor
/// enforces (`crate::extract`): each string property of a schema that only requests use gets
/// `maxLength` = [`crate::extract::max_chars`] of its name, each array `maxItems` =
/// [`crate::extract::MAX_ARRAY_ITEMS`], unless the annotation says tighter. Schemas that a
/// response also uses are left alone: a limit there would describe answers, which the
/// extractor never checks. So fuzzers and generated clients know the bounds before a 4xx
/// tells them.
struct InputLimits;

impl Modify for InputLimits {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use serde_json::Value;
        use std::collections::{BTreeMap, BTreeSet};
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let Ok(Value::Object(mut schemas)) = serde_json::to_value(&components.schemas) else {
            return;
        };
        fn refs(v: &Value, out: &mut BTreeSet<String>) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        match (k.as_str(), x) {
                            ("$ref", Value::String(r)) => {
                                if let Some(n) = r.strip_prefix("#/components/schemas/") {
                                    out.insert(n.to_owned());
                                }
                            }
                            _ => refs(x, out),
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
                _ => {}
            }
        }
        let graph: BTreeMap<String, BTreeSet<String>> = schemas
            .iter()
            .map(|(n, s)| {
                let mut r = BTreeSet::new();
                refs(s, &mut r);
                (n.clone(), r)
            })
            .collect();
        let closure = |mut todo: Vec<String>| {
            let mut seen = BTreeSet::new();
            while let Some(n) = todo.pop() {
                if seen.insert(n.clone()) {
                    todo.extend(graph.get(&n).into_iter().flatten().cloned());
                }
            }
            seen
        };
        let (mut asked, mut answered) = (BTreeSet::new(), BTreeSet::new());
        if let Ok(paths) = serde_json::to_value(&openapi.paths) {
            for item in paths.as_object().into_iter().flat_map(|m| m.values()) {
                for op in item.as_object().into_iter().flat_map(|m| m.values()) {
                    refs(&op["requestBody"], &mut asked);
                    refs(&op["responses"], &mut answered);
                }
            }
        }
        let answered = closure(answered.into_iter().collect());
        let limited: Vec<String> = closure(asked.into_iter().collect())
            .difference(&answered)
            .cloned()
            .collect();
        fn limit(schema: &mut Value, name: Option<&str>) {
            let Value::Object(m) = schema else { return };
            let is = |m: &serde_json::Map<String, Value>, t: &str| match m.get("type") {
                Some(Value::String(s)) => s == t,
                Some(Value::Array(a)) => a.iter().any(|x| x == t),
                _ => false,
            };
            if let Some(name) = name
                && is(m, "string")
                && !m.contains_key("maxLength")
            {
                m.insert("maxLength".into(), crate::extract::max_chars(name).into());
            }
            if is(m, "array") && !m.contains_key("maxItems") {
                m.insert("maxItems".into(), crate::extract::MAX_ARRAY_ITEMS.into());
            }
            if let Some(Value::Object(props)) = m.get_mut("properties") {
                for (k, p) in props.iter_mut() {
                    limit(p, Some(k));
                }
            }
            if let Some(items) = m.get_mut("items") {
                limit(items, name);
            }
            for key in ["oneOf", "anyOf", "allOf"] {
                if let Some(Value::Array(a)) = m.get_mut(key) {
                    a.iter_mut().for_each(|x| limit(x, name));
                }
            }
        }
        // One schema at a time: a schema utoipa cannot read back (some of its own shapes do
        // not round-trip through JSON) keeps its annotation as it was.
        for n in &limited {
            let Some(mut schema) = schemas.remove(n) else {
                continue;
            };
            limit(&mut schema, None);
            if let Ok(back) = serde_json::from_value(schema) {
                components.schemas.insert(n.clone(), back);
            }
        }
    }
}

/// The document, as served and as `wrapd openapi` prints it.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/openapi.json")
            .get(openapi_json)
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/docs")
            .get(docs_page)
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/docs/redoc.standalone.js")
            .get(redoc_script)
            .default_service(web::to(method_not_allowed)),
    );
}

/// Redoc 2.5.4's standalone bundle (`vendor/redoc/`).
const REDOC_JS: &[u8] = include_bytes!("../../vendor/redoc/redoc.standalone.js");

/// The page at `/docs`: Redoc over `/v1/openapi.json`, every asset from this server.
const DOCS_HTML: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wrapd API</title>
<style>body { margin: 0; padding: 0; }</style>
</head>
<body>
<redoc spec-url="/v1/openapi.json"></redoc>
<script src="/docs/redoc.standalone.js"></script>
</body>
</html>
"#;

async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(DOCS_HTML)
}

async fn redoc_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/javascript; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=86400"))
        .body(REDOC_JS)
}

/// This document.
#[utoipa::path(
    get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1", body = serde_json::Value))
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request bodies carry the extractor's bounds; the schemas of answers do not.
    #[test]
    fn request_schemas_state_the_input_limits() {
        let doc = serde_json::to_value(document()).unwrap_or_default();
        let schemas = &doc["components"]["schemas"];
        let branch = &schemas["CreateBranch"]["properties"];
        assert_eq!(
            branch["name"]["maxLength"],
            crate::extract::max_chars("name"),
            "{branch}"
        );
        assert_eq!(
            branch["code"]["maxLength"],
            crate::extract::max_chars("code")
        );
        assert_eq!(
            schemas["NewVersion"]["properties"]["weights"]["maxItems"],
            crate::extract::MAX_ARRAY_ITEMS
        );
        // An answer's schema is left as annotated.
        assert!(
            schemas["Branch"]["properties"]["name"]
                .get("maxLength")
                .is_none()
        );
    }
}
