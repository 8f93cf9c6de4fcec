//! `GET /v1/events`: the caller's tenant's events, oldest first, resumable by cursor, for
//! partners that prefer pulling to webhooks. The same events, in the same order, as the
//! webhooks deliver ([`wraps::events`] owns them).
//!
//! Isolation (tested by
//! `api/tests/http/events.rs::the_external_execution_flow_needs_no_polling`): every read names
//! the caller's tenant; there is no parameter to name another.
//!
//! Long-poll: with `wait=<seconds>` (at most [`MAX_WAIT_SECONDS`], below the handler's time
//! limit) an empty answer is held until an event arrives or the wait ends.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use tenants::Action;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::extract::Query;
use crate::problem::Problem;
use crate::server::AppState;
use wraps::events::{self as store, Event};

/// The longest a long-poll holds an empty answer: far below the handler deadline, and short
/// enough that a proxy's idle timeout never cuts a waiting request (clients simply ask again).
pub const MAX_WAIT_SECONDS: u64 = 10;

/// How often a long-poll looks again.
const POLL: Duration = Duration::from_millis(200);

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/v1/events").get(list_events));
}

/// Cursor parameter `name`: an event's `seq` (0 or more; absent: 0, before the first).
pub fn cursor(q: &Query, name: &str) -> Result<i64, Problem> {
    match q.get(name) {
        None => Ok(0),
        Some(text) => text.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            Problem::bad_parameter(name, "a cursor: the seq of an event (0 or more)")
        }),
    }
}

/// A page of events.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<Event>,
    /// Pass as `after` for the next page (the last event's `seq`, or `after` again when the
    /// page is empty).
    pub next_cursor: String,
}

/// The caller's tenant's events after cursor `after` (0 or absent: from the first), oldest
/// first. Keep `next_cursor` and pass it as `after` to resume: nothing is missed or repeated.
#[utoipa::path(
    get, path = "/v1/events", tag = "events",
    params(
        ("after" = Option<String>, Query, description = "Cursor: the `seq` of the last event seen (default 0)"),
        ("limit" = Option<u64>, Query, description = "1 to 1000, default 100"),
        ("wait" = Option<u64>, Query, maximum = 10, description = "Seconds (0 to 10) to hold an empty answer until an event arrives"),
    ),
    responses(
        (status = 200, body = EventPage),
        (status = 400, description = "A bad query parameter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_events(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    caller.principal.authorize(Action::ReadOwnData)?;
    let q = Query::parse(&req, &["after", "limit", "wait"])?;
    let after = cursor(&q, "after")?;
    let wait = match q.get("wait") {
        None => 0,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= MAX_WAIT_SECONDS)
            .ok_or_else(|| {
                Problem::bad_parameter(
                    "wait",
                    format!("seconds, an integer from 0 to {MAX_WAIT_SECONDS}"),
                )
            })?,
    };
    let limit = q.limit(100, store::MAX_PAGE)?;
    let tenant_id = caller.principal.tenant_id;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let items = loop {
        let items = store::after(&state.db, tenant_id, after, limit).await?;
        if !items.is_empty() || tokio::time::Instant::now() >= deadline {
            break items;
        }
        tokio::time::sleep(POLL).await;
    };
    let next = items.last().map_or(after, |e| e.seq);
    Ok(HttpResponse::Ok().json(EventPage {
        items,
        next_cursor: next.to_string(),
    }))
}
