//! `GET /metrics`: Prometheus text exposition (format 0.0.4).
//!
//! Counted by this process:
//! * `http_requests_total{method, route, status}`: answers, by route pattern (never the raw
//!   path, so ids do not explode the label set; unknown paths are `unmatched`);
//! * `http_request_duration_seconds{method, route}`: latency histogram, 0.5 ms to 10 s;
//! * `ledger_entries_written_total`: entries the ledger wrote since the process started,
//!   through its writer or in a request's transaction (a deposit, a withdrawal, a
//!   contribution), idempotent replays excluded ([`ledger::Ledger::entries_written`]);
//! * `rate_limit_refusals_total{limit}`: requests refused 429 by each bucket
//!   (`token_address`, `token_client`, `api_client`; [`crate::rate_limit`]).
//!
//! Read at each scrape:
//! * `db_pool_connections{state}`: the pool's connections `in_use` and `idle`, and
//!   `db_pool_max_connections`;
//! * end of day, from the database (so whichever process ran it, `wrapd eod` included):
//!   `eod_latest_date_seconds` (the latest business date started, midnight UTC, Unix
//!   seconds; 0 before the first run), `eod_latest_date_finished` (1 or 0), and for that date's steps
//!   `eod_step_duration_seconds{step}` and `eod_step_rows{step, count}` (each count the
//!   step recorded: `executed` plans, `wraps` valued, …).
//!
//! The endpoint is not behind a token, like `/healthz`: keep it on the internal network (the
//! production example binds behind a proxy that does not route it).

use std::sync::Mutex;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use prometheus::{
    Encoder as _, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use sea_orm::{DatabaseBackend, DatabaseConnection};

use crate::problem::{Problem, method_not_allowed};
use crate::server::AppState;

/// Latency buckets, seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What a scrape reads from elsewhere: counters kept by other parts of the process, and
/// state read now.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// [`ledger::Ledger::entries_written`].
    pub entries_written: u64,
    /// Refusals per rate-limit bucket.
    pub refusals: Vec<(&'static str, u64)>,
    /// The pool: (in use, idle, maximum).
    pub pool: Option<(u64, u64, u64)>,
    /// The latest end-of-day date started.
    pub eod: Option<EodSnapshot>,
}

/// The latest end-of-day date and its steps.
#[derive(Debug)]
pub struct EodSnapshot {
    pub date: chrono::NaiveDate,
    pub finished: bool,
    /// Each step that has run.
    pub steps: Vec<EodStep>,
}

/// One step of the latest end-of-day date.
#[derive(Debug)]
pub struct EodStep {
    pub step: String,
    pub seconds: f64,
    /// The counts the step recorded (`executed`, `wraps`, ...).
    pub counts: Vec<(String, i64)>,
}

/// The process's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    entries: IntCounter,
    refusals: IntCounterVec,
    pool: IntGaugeVec,
    pool_max: IntGauge,
    eod_date: IntGauge,
    eod_finished: IntGauge,
    eod_duration: GaugeVec,
    eod_rows: IntGaugeVec,
    /// Serialises scrapes, so counters kept elsewhere are caught up once per scrape.
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
        let refusals = IntCounterVec::new(
            Opts::new(
                "rate_limit_refusals_total",
                "Requests refused with 429, by rate-limit bucket.",
            ),
            &["limit"],
        )?;
        let pool = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database pool connections, in use or idle.",
            ),
            &["state"],
        )?;
        let pool_max = IntGauge::new(
            "db_pool_max_connections",
            "Most connections the database pool opens.",
        )?;
        let eod_date = IntGauge::new(
            "eod_latest_date_seconds",
            "The latest business date end of day started (midnight UTC, Unix seconds).",
        )?;
        let eod_finished = IntGauge::new(
            "eod_latest_date_finished",
            "1 when end of day of the latest date started has finished, else 0.",
        )?;
        let eod_duration = GaugeVec::new(
            Opts::new(
                "eod_step_duration_seconds",
                "How long each step of the latest end-of-day date took.",
            ),
            &["step"],
        )?;
        let eod_rows = IntGaugeVec::new(
            Opts::new(
                "eod_step_rows",
                "What each step of the latest end-of-day date counted (plans executed, wraps valued, ...).",
            ),
            &["step", "count"],
        )?;
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(entries.clone()),
            Box::new(refusals.clone()),
            Box::new(pool.clone()),
            Box::new(pool_max.clone()),
            Box::new(eod_date.clone()),
            Box::new(eod_finished.clone()),
            Box::new(eod_duration.clone()),
            Box::new(eod_rows.clone()),
        ] {
            registry.register(m)?;
        }
        Ok(Self {
            registry,
            requests,
            latency,
            entries,
            refusals,
            pool,
            pool_max,
            eod_date,
            eod_finished,
            eod_duration,
            eod_rows,
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

    /// The text exposition, with `now` applied: counters kept elsewhere caught up, gauges set.
    pub fn render(&self, now: &Snapshot) -> Result<String, prometheus::Error> {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        catch_up(&self.entries, now.entries_written);
        for (limit, refused) in &now.refusals {
            catch_up(&self.refusals.with_label_values(&[*limit]), *refused);
        }
        if let Some((in_use, idle, max)) = now.pool {
            self.pool.with_label_values(&["in_use"]).set(gauge(in_use));
            self.pool.with_label_values(&["idle"]).set(gauge(idle));
            self.pool_max.set(gauge(max));
        }
        self.eod_duration.reset();
        self.eod_rows.reset();
        if let Some(eod) = &now.eod {
            let midnight = eod.date.and_time(chrono::NaiveTime::MIN).and_utc();
            self.eod_date.set(midnight.timestamp());
            self.eod_finished.set(i64::from(eod.finished));
            for EodStep {
                step,
                seconds,
                counts,
            } in &eod.steps
            {
                self.eod_duration
                    .with_label_values(&[step.as_str()])
                    .set(*seconds);
                for (count, n) in counts {
                    self.eod_rows
                        .with_label_values(&[step.as_str(), count.as_str()])
                        .set(*n);
                }
            }
        }
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// Raises `counter` to `total` (a counter kept elsewhere only grows; never counted twice).
fn catch_up(counter: &IntCounter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The pool's connections now: (in use, idle, maximum).
pub fn pool_of(db: &DatabaseConnection) -> Option<(u64, u64, u64)> {
    fn of<D: sea_orm::sqlx::Database>(p: &sea_orm::sqlx::Pool<D>) -> (u64, u64, u64) {
        let (size, idle) = (u64::from(p.size()), p.num_idle() as u64);
        (
            size.saturating_sub(idle),
            idle,
            u64::from(p.options().get_max_connections()),
        )
    }
    match db.get_database_backend() {
        DatabaseBackend::Sqlite => Some(of(db.get_sqlite_connection_pool())),
        DatabaseBackend::Postgres => Some(of(db.get_postgres_connection_pool())),
        _ => None,
    }
}

/// The latest end-of-day date and its steps, read from the database.
async fn eod_of(
    db: &DatabaseConnection,
    lock: &wraps::eod::RunLock,
) -> Result<Option<EodSnapshot>, wraps::eod::EodError> {
    let Some(date) = wraps::eod::latest_date(db).await? else {
        return Ok(None);
    };
    let status = wraps::eod::status(db, lock, date).await?;
    let steps = status
        .steps
        .iter()
        .filter(|s| s.status == "done" || s.status == "awaiting_fills")
        .map(|s| {
            let counts = s
                .detail
                .as_ref()
                .and_then(serde_json::Value::as_object)
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| v.as_i64().map(|n| (k.clone(), n)))
                        .collect()
                })
                .unwrap_or_default();
            let elapsed = u64::try_from(s.elapsed_ms.unwrap_or(0)).unwrap_or(0);
            EodStep {
                step: s.step.clone(),
                seconds: Duration::from_millis(elapsed).as_secs_f64(),
                counts,
            }
        })
        .collect();
    Ok(Some(EodSnapshot {
        date,
        finished: status.status == "finished",
        steps,
    }))
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
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    // End of day's figures are read from the database; a scrape still answers without them
    // when it is away (readiness says so).
    let eod = match req.app_data::<web::Data<wraps::eod::RunLock>>() {
        Some(lock) => eod_of(&state.db, lock)
            .await
            .map_err(|e| tracing::warn!(error = %e, "metrics: end of day not read"))
            .ok()
            .flatten(),
        None => None,
    };
    let now = Snapshot {
        entries_written: state.ledger.entries_written(),
        refusals: state.rate_limits.refusals(),
        pool: pool_of(&state.db),
        eod,
    };
    let text = state
        .metrics
        .render(&now)
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
        let mut now = Snapshot {
            entries_written: 7,
            refusals: vec![("api_client", 2)],
            pool: Some((3, 5, 16)),
            eod: Some(EodSnapshot {
                date: chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
                finished: true,
                steps: vec![EodStep {
                    step: "plans".into(),
                    seconds: 1.5,
                    counts: vec![("executed".into(), 4)],
                }],
            }),
        };
        let text = m.render(&now).unwrap();
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
        for line in [
            "ledger_entries_written_total 7",
            r#"rate_limit_refusals_total{limit="api_client"} 2"#,
            r#"db_pool_connections{state="in_use"} 3"#,
            r#"db_pool_connections{state="idle"} 5"#,
            "db_pool_max_connections 16",
            "eod_latest_date_seconds 1796601600",
            "eod_latest_date_finished 1",
            r#"eod_step_duration_seconds{step="plans"} 1.5"#,
            r#"eod_step_rows{count="executed",step="plans"} 4"#,
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        // Caught up, never double counted.
        now.entries_written = 9;
        assert!(
            m.render(&now)
                .unwrap()
                .contains("ledger_entries_written_total 9")
        );
        assert!(
            m.render(&now)
                .unwrap()
                .contains("ledger_entries_written_total 9")
        );
    }
}
