//! `GET /metrics`: Prometheus text exposition (format 0.0.4).
//!
//! * `http_requests_total{method, route, status}`: answers, by route pattern (never the raw
//!   path, so ids do not explode the label set; unknown paths are `unmatched`);
//! * `http_request_duration_seconds{method, route}`: latency histogram, 0.5 ms to 10 s;
//! * `ledger_entries_written_total`: entries the ledger's writer has written since the
//!   process started (idempotent replays excluded).
//!
//! The endpoint is not behind a token, like `/healthz`: keep it on the internal network (the
//! production example binds behind a proxy that does not route it).

use std::sync::Mutex;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

use crate::problem::{Problem, method_not_allowed};
use crate::server::AppState;

/// Latency buckets, seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    entries: IntCounter,
    /// Serialises scrapes, so the ledger counter is caught up once per scrape.
    scrape: Mutex<()>,
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP answers by route and status."),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from request to answer, by route.",
            )
            .buckets(BUCKETS.to_vec()),
            &["method", "route"],
        )?;
        let entries = IntCounter::new(
            "ledger_entries_written_total",
            "Ledger entries written by this process (idempotent replays excluded).",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(entries.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            entries,
            scrape: Mutex::new(()),
        })
    }

    /// Counts one answer.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        self.requests
            .with_label_values(&[method, route, status.as_str()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition, with the ledger counter caught up to `entries_written`.
    pub fn render(&self, entries_written: u64) -> Result<String, prometheus::Error> {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        let seen = self.entries.get();
        if entries_written > seen {
            self.entries.inc_by(entries_written - seen);
        }
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// Routes of this module.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/metrics")
            .get(metrics)
            .default_service(web::to(method_not_allowed)),
    );
}

/// Prometheus metrics (text format 0.0.4).
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"))
)]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let text = state
        .metrics
        .render(state.ledger.entries_written())
        .map_err(|e| Problem::internal(&e))?;
    Ok(HttpResponse::Ok()
        .content_type(TextEncoder::new().format_type())
        .body(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_routes_statuses_and_entries() {
        let m = Metrics::new().unwrap();
        m.observe_request("GET", "/v1/tenants/{id}", 404, Duration::from_millis(3));
        m.observe_request("GET", "/v1/tenants/{id}", 404, Duration::from_millis(30));
        let text = m.render(7).unwrap();
        assert!(
            text.contains(
                r#"http_requests_total{method="GET",route="/v1/tenants/{id}",status="404"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"http_request_duration_seconds_bucket{method="GET",route="/v1/tenants/{id}",le="0.005"} 1"#),
            "{text}"
        );
        assert!(text.contains("ledger_entries_written_total 7"), "{text}");
        // Caught up, never double counted.
        assert!(
            m.render(9)
                .unwrap()
                .contains("ledger_entries_written_total 9")
        );
        assert!(
            m.render(9)
                .unwrap()
                .contains("ledger_entries_written_total 9")
        );
    }
}
