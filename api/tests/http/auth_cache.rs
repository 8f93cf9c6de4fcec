//! The authentication caches (api/src/auth_cache.rs) keep the guarantees of `auth.rs`:
//! * a revocation or suspension made through one server is honoured by a second server on
//!   the same database (another process's cache, which remembered the client's standing),
//!   without a restart, and a resumption too;
//! * a remembered token is refused once it expires.
//!
//! The second server is a real one on its own port with its own pool and cache, as a replica
//! is.

use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use api::settings::Settings;
use sea_orm::DatabaseConnection;

use crate::common::{TestServer, simulated_start};
use crate::on_each_backend;

/// A second server over `server`'s database, with the same signing key.
async fn replica(server: &TestServer) -> (String, ServerHandle, DatabaseConnection) {
    let mut settings = Settings::builtin().unwrap();
    settings.server.bind = "127.0.0.1:0".to_owned();
    settings.database.url = server.url.clone();
    settings.clock.simulated_start = simulated_start();
    settings.auth.key_pem = server.key_pem.clone();
    let db = api::db::connect(&server.url).await.unwrap();
    let (running, addr) = api::build_server(&settings, db.clone()).await.unwrap();
    let handle = running.handle();
    tokio::spawn(running);
    (format!("http://{addr}"), handle, db)
}

/// The status of `GET /v1/customers` on `base` with `token`.
async fn status(http: &reqwest::Client, base: &str, token: &str) -> u16 {
    http.get(format!("{base}/v1/customers"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls the replica until it answers `want`, for at most two seconds; the time it took.
async fn until(http: &reqwest::Client, base: &str, token: &str, want: u16) -> Duration {
    let started = Instant::now();
    loop {
        let got = status(http, base, token).await;
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the replica still answers {got}, not {want}, 2 s after the change"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

on_each_backend!(
    revocation_and_suspension_reach_a_replica,
    revocation_and_suspension_reach_a_replica
);
async fn revocation_and_suspension_reach_a_replica(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let (base, handle, db) = replica(&server).await;
    let http = reqwest::Client::new();
    let platform = server.token(&server.platform).await;
    let bank = server.make_tenant(&platform, "distributor", "Bank").await;
    let operator = server.make_client(&platform, bank, "operator").await;
    let spare = server.make_client(&platform, bank, "operator").await;
    let token = server.token(&operator).await;
    let spare_token = server.token(&spare).await;
    // Used twice on the replica: its cache now holds the token and (PostgreSQL) the standing.
    for _ in 0..2 {
        assert_eq!(status(&http, &base, &token).await, 200);
        assert_eq!(status(&http, &base, &spare_token).await, 200);
    }

    // Revoked through the first server: refused there at once, and on the replica.
    let r = server
        .post(
            &platform,
            &format!("/v1/tenants/{bank}/clients/{}/revoke", operator.id),
            None,
        )
        .await;
    r.ok(200);
    assert_eq!(status(&http, &server.base, &token).await, 401);
    let revoked = until(&http, &base, &token, 401).await;
    assert_eq!(status(&http, &base, &spare_token).await, 200);

    // Suspended: every client of the tenant refused on the replica; resumed: accepted again.
    server
        .post(&platform, &format!("/v1/tenants/{bank}/suspend"), None)
        .await
        .ok(200);
    assert_eq!(status(&http, &server.base, &spare_token).await, 401);
    let suspended = until(&http, &base, &spare_token, 401).await;
    server
        .post(&platform, &format!("/v1/tenants/{bank}/resume"), None)
        .await
        .ok(200);
    let resumed = until(&http, &base, &spare_token, 200).await;
    assert_eq!(status(&http, &base, &token).await, 401, "still revoked");
    eprintln!(
        "{backend}: the replica refused the revoked client after {revoked:?}, the suspended \
         tenant after {suspended:?}, accepted it again after {resumed:?}"
    );

    handle.stop(true).await;
    let _ = db.close().await;
    server.stop().await;
}

on_each_backend!(a_remembered_token_expires, a_remembered_token_expires);
async fn a_remembered_token_expires(backend: &'static str) {
    let server = TestServer::start_tuned(backend, &simulated_start(), |s| {
        // Long enough for the setup's own platform token, under a loaded machine.
        s.auth.token_lifetime_seconds = 5;
    })
    .await;
    let platform = server.token(&server.platform).await;
    let bank = server.make_tenant(&platform, "distributor", "Bank").await;
    let operator = server.make_client(&platform, bank, "operator").await;
    let token = server.token(&operator).await;
    assert_eq!(status(&server.http, &server.base, &token).await, 200);
    assert_eq!(status(&server.http, &server.base, &token).await, 200);
    // Until a second past the token's own `exp` (whole seconds).
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    let exp = claims["exp"].as_i64().unwrap();
    let wait = (exp + 1) * 1000 - chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait.max(0)).unwrap())).await;
    let r = server.get(&token, "/v1/customers").await;
    let problem = r.problem(401);
    assert!(
        problem["detail"].as_str().unwrap().contains("expired"),
        "{problem}"
    );
    server.stop().await;
}
