//! Rate limits, timeouts and security headers (`api/src/rate_limit.rs`, `api/src/middleware.rs`):
//! a flood of token requests from one address or at one client is refused with 429 and
//! `Retry-After` before any secret is hashed; a client's API requests are bounded per second;
//! a handler over its time limit is abandoned with 503, and its retry with the same
//! `Idempotency-Key` books the money exactly once.

use serde_json::json;
use uuid::Uuid;

use crate::common::{TestServer, simulated_start};
use crate::on_each_backend;

/// Asserts a 429 problem with a `Retry-After` of at least one second.
fn assert_limited(r: &crate::common::Res) {
    let body = r.problem(429);
    assert_eq!(
        body["type"], "https://wrap.example/problems/rate-limited",
        "{body}"
    );
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait >= 1, "{wait}");
}

on_each_backend!(
    token_requests_are_limited_per_address_and_per_client,
    token_requests_are_limited_per_address_and_per_client
);
async fn token_requests_are_limited_per_address_and_per_client(backend: &'static str) {
    // Per client: two tries a minute, whatever the secret.
    let s = TestServer::start_tuned(backend, &simulated_start(), |c| {
        c.rate_limits.token_per_minute_per_client = 2;
    })
    .await;
    let platform = s.token(&s.platform).await;
    let bank = s.make_tenant(&platform, "distributor", "Bank").await;
    let other = s.make_client(&platform, bank, "admin").await;
    let p = &s.platform;
    s.token_request(&p.client_id, "wrong").await.problem(401);
    // The third try in the minute is refused before its secret is checked, right or wrong.
    assert_limited(&s.token_request(&p.client_id, &p.secret).await);
    assert_limited(&s.token_request(&p.client_id, "wrong").await);
    // Another client has its own bucket.
    s.token_request(&other.client_id, &other.secret)
        .await
        .ok(200);
    s.stop().await;

    // Per address: three a minute from 127.0.0.1, whichever clients they name.
    let s = TestServer::start_tuned(backend, &simulated_start(), |c| {
        c.rate_limits.token_per_minute_per_address = 3;
    })
    .await;
    let p = &s.platform;
    s.token_request(&p.client_id, &p.secret).await.ok(200);
    s.token_request("nobody", "x").await.problem(401);
    s.token_request(&p.client_id, &p.secret).await.ok(200);
    assert_limited(&s.token_request(&p.client_id, &p.secret).await);
    assert_limited(&s.token_request("someone-else", "x").await);
    s.stop().await;
}

on_each_backend!(
    api_requests_are_limited_per_client,
    api_requests_are_limited_per_client
);
async fn api_requests_are_limited_per_client(backend: &'static str) {
    let s = TestServer::start_tuned(backend, &simulated_start(), |c| {
        c.rate_limits.api_per_second_per_client = 3;
    })
    .await;
    let platform = s.token(&s.platform).await;
    let bank = s.make_tenant(&platform, "distributor", "Bank").await;
    let viewer = s.token_for_role(bank, "viewer").await;
    // The platform client's bucket was spent setting up; wait for it to refill.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut limited = None;
    for _ in 0..10 {
        let r = s.get(&platform, "/v1/tenants").await;
        if r.status.as_u16() == 429 {
            limited = Some(r);
            break;
        }
        r.ok(200);
    }
    assert_limited(&limited.expect("10 requests at once pass a limit of 3 a second"));
    // Another client of the platform's API is not held up by it.
    s.get(&viewer, "/v1/customers").await.ok(200);
    s.stop().await;
}

on_each_backend!(
    a_slow_handler_is_abandoned_and_its_retry_books_once,
    a_slow_handler_is_abandoned_and_its_retry_books_once
);
async fn a_slow_handler_is_abandoned_and_its_retry_books_once(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let platform = s.token(&s.platform).await;
    let bank = s.make_tenant(&platform, "distributor", "Bank").await;
    let bank_token = s.token_for_role(bank, "admin").await;
    let customer = crate::customers::make_customer(&s, &bank_token, "C-1", 3).await;
    let entries = s.count_rows("ledger_entries").await;
    // A second service on the same database whose handlers may take no time at all: every
    // request that waits for the database is over its limit.
    let mut settings = api::settings::Settings::builtin().unwrap();
    settings.server.bind = "127.0.0.1:0".to_owned();
    settings.database.url = s.url.clone();
    settings.auth.key_pem = s.key_pem.clone();
    settings.clock.simulated_start = simulated_start();
    settings.server.handler_timeout_seconds = 0;
    let (server, addr) = api::build_server(&settings, s.db.clone()).await.unwrap();
    let handle = server.handle();
    let running = tokio::spawn(server);
    let key = Uuid::now_v7().to_string();
    let deposit = |base: String| {
        s.http
            .post(format!("{base}/v1/customers/{customer}/deposits"))
            .bearer_auth(&bank_token)
            .header("idempotency-key", &key)
            .json(&json!({ "amount": "1000" }))
            .send()
    };
    let r = TestServer::read(deposit(format!("http://{addr}")).await.unwrap()).await;
    r.problem(503);
    assert_eq!(r.headers["retry-after"], "1");
    // Abandoned: its transaction rolled back, or had committed whole just before (a local
    // SQLite can get that far within the first millisecond). The retry with the same key
    // settles which: the deposit is booked exactly once.
    let r = TestServer::read(deposit(s.base.clone()).await.unwrap()).await;
    r.ok(201);
    assert_eq!(s.count_rows("ledger_entries").await, entries + 1);
    let again = TestServer::read(deposit(s.base.clone()).await.unwrap()).await;
    assert_eq!(again.ok(201)["entry_id"], r.body["entry_id"]);
    assert_eq!(s.count_rows("ledger_entries").await, entries + 1);
    handle.stop(true).await;
    let _ = running.await;
    // Every answer carries the security headers.
    let r = s.get(&bank_token, "/v1/customers").await;
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(r.headers[name], value, "{name}");
    }
    s.stop().await;
}
