//! The HTTP service (actix-web 4).
//!
//! Each feature module exposes `configure(&mut web::ServiceConfig)`; [`routes`] mounts them
//! all, so tests and the binary serve the same table. actix stops gracefully on SIGINT and
//! SIGTERM: it stops accepting, lets requests in flight finish (up to
//! [`SHUTDOWN_TIMEOUT_SECS`]), then exits.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use std::time::Duration;

use actix_web::{App, HttpServer, web};

use crate::middleware::HandlerTimeout;
use ledger::Ledger;
use sea_orm::DatabaseConnection;
use tenants::KeySet;

use crate::error::Error;
use crate::extract::BodyLimit;
use crate::logging::redact_url;
use crate::metrics::Metrics;
use crate::settings::Settings;

/// Seconds in-flight requests get to finish on shutdown.
pub const SHUTDOWN_TIMEOUT_SECS: u64 = 30;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database pool.
    pub db: DatabaseConnection,
    /// The books (its writer task runs on the runtime that built the server).
    pub ledger: Ledger,
    /// Token signing and verification keys.
    pub keys: Arc<KeySet>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// `auth.default_rotation_overlap_seconds`.
    pub rotation_overlap_seconds: u64,
    /// `wraps.max_open_per_customer`.
    pub max_open_wraps: i64,
    /// `[limits]`: the largest single amount per asset.
    pub amount_limits: ledger::amount::AmountLimits,
    /// `[clock]`: what "today" is; money is booked on the open business date
    /// (`wraps::clock::open_date`).
    pub clock: wraps::clock::Clock,
    /// Bounds concurrent argon2 work (about 20 MiB each): a flood of token requests queues
    /// here instead of exhausting memory.
    pub hashing: Arc<tokio::sync::Semaphore>,
    /// `[rate_limits]`: the token endpoint's and the API's buckets.
    pub rate_limits: Arc<crate::rate_limit::RateLimits>,
    /// Verified tokens and client standings (`auth.cache_entries`).
    pub auth_cache: Arc<crate::auth_cache::AuthCache>,
    /// `[console]`: session lifetimes, the cookie's `Secure` flag, the lockout threshold.
    pub console: crate::settings::ConsoleSettings,
}

impl AppState {
    /// Runs CPU-heavy secret hashing `f` on the blocking pool, at most one per core at a time.
    pub async fn hash<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, crate::problem::Problem> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| crate::problem::Problem::internal(&e))?;
        Ok(web::block(f).await?)
    }
}

/// The route table: every feature module, then problem+json 404 for anything else.
pub fn routes(cfg: &mut web::ServiceConfig) {
    crate::health::configure(cfg);
    crate::metrics::configure(cfg);
    crate::openapi::configure(cfg);
    crate::auth::configure(cfg);
    crate::routes::tenants::configure(cfg);
    crate::routes::ledger::configure(cfg);
    crate::routes::instruments::configure(cfg);
    crate::routes::strategies::configure(cfg);
    crate::routes::agreements::configure(cfg);
    crate::routes::customers::configure(cfg);
    crate::routes::wraps::configure(cfg);
    crate::routes::zengin::configure(cfg);
    crate::routes::returns::configure(cfg);
    crate::routes::statements::configure(cfg);
    crate::routes::cost_basis::configure(cfg);
    crate::routes::reconciliation::configure(cfg);
    crate::routes::operations::configure(cfg);
    crate::routes::projections::configure(cfg);
    crate::routes::reports::configure(cfg);
    crate::routes::instructions::configure(cfg);
    crate::routes::users::configure(cfg);
    crate::routes::branches::configure(cfg);
    crate::routes::events::configure(cfg);
    crate::routes::webhooks::configure(cfg);
    crate::audit::configure(cfg);
    crate::console::configure(cfg);
    cfg.default_service(web::to(crate::problem::not_found));
}

/// What the handlers share, and the one end-of-day lock of a service: built once per
/// service (and by `wrapd demo`, which calls the same handlers in process).
pub fn app_data(
    settings: &Settings,
    db: DatabaseConnection,
) -> Result<(web::Data<AppState>, web::Data<wraps::eod::RunLock>), Error> {
    let keys = crate::auth::load_keys(&settings.auth, &settings.database.url)?;
    let metrics = Metrics::new().map_err(|e| Error::Other(format!("metrics: {e}")))?;
    let auth_cache = crate::auth_cache::AuthCache::new(settings.auth.cache_entries, &db);
    let state = web::Data::new(AppState {
        auth_cache: Arc::new(auth_cache),
        ledger: Ledger::new(db.clone()),
        db,
        keys: Arc::new(keys),
        metrics: Arc::new(metrics),
        rotation_overlap_seconds: settings.auth.default_rotation_overlap_seconds,
        max_open_wraps: settings.wraps.max_open_per_customer,
        amount_limits: settings.limits.clone(),
        clock: settings.clock()?,
        hashing: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
        )),
        rate_limits: Arc::new(crate::rate_limit::RateLimits::new(&settings.rate_limits)),
        console: settings.console.clone(),
    });
    // One end-of-day run at a time for this service (shared by every worker).
    let lock = wraps::eod::RunLock::with(
        settings.calendar.calendar()?,
        Arc::new(wraps::eod::trading::SimulatedVenue),
    );
    lock.set_goal_cadence(settings.goals.recompute);
    lock.set_database_url(&settings.database.url);
    lock.set_clock(settings.clock()?);
    let eod_lock = web::Data::from(lock);
    Ok((state, eod_lock))
}

/// Binds `settings.server.bind` (port 0 picks a free port) and returns the server, not yet
/// running (await it, or `tokio::spawn` it and stop it with `server.handle().stop(true)`),
/// with the address it listens on.
pub async fn build_server(
    settings: &Settings,
    db: DatabaseConnection,
) -> Result<(Server, SocketAddr), Error> {
    let (state, eod_lock) = app_data(settings, db)?;
    let limit = settings.server.body_limit_bytes;
    let (read_timeout, handler_timeout) = (
        settings.server.read_timeout_seconds,
        settings.server.handler_timeout_seconds,
    );
    let addr = settings.server.bind.clone();
    let http = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(eod_lock.clone())
            .app_data(BodyLimit(limit))
            .app_data(web::PayloadConfig::new(limit))
            .app_data(HandlerTimeout(Duration::from_secs(handler_timeout)))
            .wrap(crate::middleware::security_headers())
            .wrap(from_fn(crate::middleware::observe))
            .configure(routes)
    })
    .client_request_timeout(Duration::from_secs(read_timeout))
    .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
    .bind(addr.as_str())
    .map_err(|source| Error::Bind {
        addr: addr.clone(),
        source,
    })?;
    let bound = http
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| Error::Other(format!("binding {addr} gave no address")))?;
    Ok((http.run(), bound))
}

/// `wrapd serve`: connect, migrate as [`crate::db::prepare`] rules, serve until a signal.
pub async fn serve(settings: &Settings) -> Result<(), Error> {
    let url = &settings.database.url;
    tracing::info!(database = %redact_url(url), "connecting");
    let db = crate::db::connect_with(url, settings.database.statement_timeout()).await?;
    crate::db::prepare(&db, &settings.database).await?;
    let (server, addr) = build_server(settings, db.clone()).await?;
    tracing::info!(%addr, "listening");
    // The background workers: each resumes from the database, so a restart loses nothing.
    let worker = if settings.webhooks.worker {
        let name = format!("wrapd-{}-{}", std::process::id(), uuid::Uuid::now_v7());
        Some(crate::webhooks::spawn(
            db.clone(),
            settings.webhooks.clone(),
            name,
        )?)
    } else {
        None
    };
    let relay = if settings.nats.enabled {
        Some(crate::relay::spawn(db.clone(), settings.nats.clone()).await?)
    } else {
        None
    };
    server.await?;
    for background in [worker, relay].into_iter().flatten() {
        background.stop().await;
    }
    tracing::info!("stopped");
    let _ = db.close().await;
    Ok(())
}
