//! Webhooks end to end on both databases, against a real receiver on a free port: signed
//! deliveries (verified here with an independent HMAC), retries on a 500 and on a timeout,
//! order per object, the delivery log and replay, the endpoint disabled after repeated
//! failure, no delivery across tenants, two workers at once, and a worker killed mid-attempt
//! whose successor resumes (`wraps::events::webhooks` states what each tries).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::agreements::terms_body;
use crate::common::TestServer;
use crate::on_each_backend;
use crate::strategies::strategy_with_version;
use api::settings::WebhookSettings;
use wraps::events::{NewEvent, types};

/// What the receiver does with one request.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Status(u16),
    /// Answers 200 after this long (past the worker's timeout: a failed attempt).
    Sleep(u64),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
    /// The reply it was given.
    pub reply: Option<Reply>,
}

impl Got {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Inbox {
    got: Vec<Got>,
    script: VecDeque<Reply>,
    /// Reply to every request after the script (default 200).
    otherwise: Option<Reply>,
}

/// A real HTTP receiver on a free port.
pub struct Receiver {
    pub url: String,
    inbox: Arc<Mutex<Inbox>>,
    handle: actix_web::dev::ServerHandle,
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    inbox: web::Data<Mutex<Inbox>>,
) -> HttpResponse {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let reply = {
        let mut inbox = inbox.lock().unwrap();
        let reply = inbox.script.pop_front().or(inbox.otherwise);
        inbox.got.push(Got {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body: body.to_vec(),
            reply,
        });
        reply
    };
    match reply {
        Some(Reply::Status(code)) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap()).finish()
        }
        Some(Reply::Sleep(ms)) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            HttpResponse::Ok().finish()
        }
        None => HttpResponse::Ok().finish(),
    }
}

impl Receiver {
    pub async fn start(script: &[Reply], otherwise: Option<Reply>) -> Self {
        let inbox = Arc::new(Mutex::new(Inbox {
            got: Vec::new(),
            script: script.iter().copied().collect(),
            otherwise,
        }));
        let data = web::Data::from(inbox.clone());
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(2)
        .bind("127.0.0.1:0")
        .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://{addr}/hook"),
            inbox,
            handle,
        }
    }

    pub fn got(&self) -> Vec<Got> {
        self.inbox.lock().unwrap().got.clone()
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// Worker settings for tests: quick polls and retries, a short timeout.
pub fn quick() -> WebhookSettings {
    WebhookSettings {
        worker: false,
        poll_interval_ms: 50,
        batch_size: 50,
        timeout_ms: 400,
        base_delay_ms: 100,
        max_delay_ms: 400,
        give_up_after_seconds: 60,
        disable_after_failures: 3,
        // The tests' receivers listen on loopback.
        allow_private_targets: true,
    }
}

/// The receiver's own check of a delivery, by the Standard Webhooks rule (not the server's
/// code): HMAC-SHA256 over "id.timestamp.body" with the secret's bytes, and a timestamp
/// within five minutes.
pub fn verify(secret: &str, got: &Got) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", got.id, got.timestamp).as_bytes());
    mac.update(&got.body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let fresh = (Utc::now().timestamp() - got.timestamp.parse::<i64>().unwrap()).abs() < 300;
    fresh
        && got
            .signature
            .split(' ')
            .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

/// Registers an endpoint of the tenant `token` at `url`; returns (id, secret).
pub async fn register(s: &TestServer, token: &str, url: &str, types: &[&str]) -> (Uuid, String) {
    let r = s
        .post(
            token,
            "/v1/webhooks",
            Some(json!({ "url": url, "event_types": types })),
        )
        .await;
    let body = r.ok(201);
    assert!(
        body["secret"].as_str().unwrap().starts_with("whsec_"),
        "{body}"
    );
    (
        body["id"].as_str().unwrap().parse().unwrap(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

/// Waits (up to 20 s) until `done` holds for what `receiver` got.
pub async fn until(receiver: &Receiver, what: &str, done: impl Fn(&[Got]) -> bool) {
    for _ in 0..400 {
        if done(&receiver.got()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}: got {:#?}", receiver.got());
}

/// A distributor and a manager with a strategy; returns (bank id, bank token, manager id,
/// manager token, strategy id).
async fn partners(s: &TestServer) -> (Uuid, String, Uuid, String) {
    let (bank_id, bank) = s.tenant_with_token("distributor", "Bank W").await;
    let (manager_id, manager) = s.tenant_with_token("manager", "Manager W").await;
    (bank_id, bank, manager_id, manager)
}

async fn propose(s: &TestServer, bank: &str, manager_id: Uuid, strategy: Uuid) -> Uuid {
    let r = s
        .post(
            bank,
            "/v1/agreements",
            Some(
                json!({ "manager_tenant_id": manager_id, "strategy_id": strategy,
                         "terms": terms_body("2026-01-01") }),
            ),
        )
        .await;
    r.ok(201)["id"].as_str().unwrap().parse().unwrap()
}

on_each_backend!(
    deliveries_are_signed_retried_and_in_order,
    signed_retried_in_order
);
async fn signed_retried_in_order(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (bank_id, bank, manager_id, manager) = partners(&s).await;
    // Bank W's receiver fails the first attempt with a 500 and times out on the second.
    let bank_rx = Receiver::start(&[Reply::Status(500), Reply::Sleep(1_500)], None).await;
    let manager_rx = Receiver::start(&[], None).await;
    let (bank_hook, bank_secret) = register(
        &s,
        &bank,
        &bank_rx.url,
        &["agreement.proposed", "agreement.accepted"],
    )
    .await;
    let (_, manager_secret) = register(&s, &manager, &manager_rx.url, &["*"]).await;
    // Refusals name the field and write nothing.
    let before = s.count_rows("webhook_endpoints").await;
    for (body, field) in [
        (
            json!({ "url": "ftp://x.test", "event_types": ["*"] }),
            "url",
        ),
        (
            json!({ "url": "https://x.test", "event_types": ["plan.nothing"] }),
            "event_types",
        ),
        (
            json!({ "url": "https://x.test", "event_types": [] }),
            "event_types",
        ),
    ] {
        let r = s.post(&bank, "/v1/webhooks", Some(body)).await;
        assert_eq!(r.problem(422)["errors"][0]["field"], field, "{}", r.text);
    }
    assert_eq!(s.count_rows("webhook_endpoints").await, before);
    // The secret is shown once: never in a read.
    let r = s.get(&bank, &format!("/v1/webhooks/{bank_hook}")).await;
    assert!(r.ok(200).get("secret").is_none(), "{}", r.text);
    assert_eq!(
        r.body["event_types"],
        json!(["agreement.accepted", "agreement.proposed"])
    );
    // Another tenant's endpoint is not there for it.
    s.get(&manager, &format!("/v1/webhooks/{bank_hook}"))
        .await
        .problem(404);
    s.send(
        reqwest::Method::DELETE,
        Some(&manager),
        &format!("/v1/webhooks/{bank_hook}"),
        &[],
        None,
    )
    .await
    .problem(404);
    s.get(&manager, &format!("/v1/webhooks/{bank_hook}/deliveries"))
        .await
        .problem(404);
    let listed = s.get(&manager, "/v1/webhooks").await;
    assert_eq!(
        listed.ok(200)["items"].as_array().unwrap().len(),
        1,
        "{}",
        listed.text
    );
    // A viewer reads but does not register.
    let viewer = s.token_for_role(bank_id, "viewer").await;
    s.get(&viewer, "/v1/webhooks").await.ok(200);
    s.post(
        &viewer,
        "/v1/webhooks",
        Some(json!({ "url": "https://x.test", "event_types": ["*"] })),
    )
    .await
    .problem(403);

    let worker = api::webhooks::spawn(s.db.clone(), quick(), "test-worker".into()).unwrap();
    let strategy = strategy_with_version(&s, &manager, "EVT").await;
    let agreement = propose(&s, &bank, manager_id, strategy).await;
    s.post(
        &manager,
        &format!("/v1/agreements/{agreement}/accept"),
        None,
    )
    .await
    .ok(200);

    until(&bank_rx, "both of the bank's events delivered", |got| {
        got.iter().filter(|g| g.reply.is_none()).count() == 2
    })
    .await;
    let got = bank_rx.got();
    for g in &got {
        assert!(verify(&bank_secret, g), "bad signature: {g:?}");
        assert!(
            !verify(&manager_secret, g),
            "signed with another tenant's secret"
        );
    }
    // proposed: a 500, a timeout, then delivered; only then accepted (the same object).
    let kinds: Vec<String> = got
        .iter()
        .map(|g| g.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "agreement.proposed",
            "agreement.proposed",
            "agreement.proposed",
            "agreement.accepted"
        ],
        "{got:#?}"
    );
    assert!(
        got.iter().take(3).all(|g| g.id == got[0].id),
        "retries carry the same webhook-id"
    );
    assert_eq!(
        got[0].json()["payload"]["agreement_id"],
        agreement.to_string()
    );

    // The delivery log: every attempt with its outcome, code and latency.
    let log = s
        .get(&bank, &format!("/v1/webhooks/{bank_hook}/deliveries"))
        .await;
    let items = log.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2, "{}", log.text);
    let attempts = items[0]["attempts"].as_array().unwrap();
    assert_eq!(items[0]["status"], "delivered");
    assert_eq!(attempts.len(), 3, "{}", log.text);
    assert_eq!(
        (
            attempts[0]["outcome"].as_str(),
            attempts[0]["response_code"].as_i64()
        ),
        (Some("failed"), Some(500))
    );
    assert_eq!(attempts[1]["error"], "timeout", "{}", log.text);
    assert!(
        attempts[1]["latency_ms"].as_i64().unwrap() >= 400,
        "{}",
        log.text
    );
    assert_eq!(
        (
            attempts[2]["outcome"].as_str(),
            attempts[2]["response_code"].as_i64()
        ),
        (Some("delivered"), Some(200))
    );

    // No delivery across tenants: the manager's receiver got only the manager's own events
    // (its strategy version and the agreement), none naming a customer.
    until(&manager_rx, "the manager's events", |got| got.len() >= 3).await;
    let manager_events = s.get(&manager, "/v1/events").await;
    let own: Vec<&str> = manager_events.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    for g in manager_rx.got() {
        assert!(verify(&manager_secret, &g));
        assert!(own.contains(&g.id.as_str()), "{g:?} is not the manager's");
        assert!(
            !String::from_utf8_lossy(&g.body).contains("customer"),
            "{g:?}"
        );
    }

    // Replay: the accepted event again, with the same id.
    let seq = items[1]["event_seq"].as_str().unwrap();
    let r = s
        .post(
            &bank,
            &format!("/v1/webhooks/{bank_hook}/deliveries/{seq}/replay"),
            None,
        )
        .await;
    r.ok(202);
    s.post(
        &manager,
        &format!("/v1/webhooks/{bank_hook}/deliveries/{seq}/replay"),
        None,
    )
    .await
    .problem(404);
    until(&bank_rx, "the replay", |got| got.len() == 5).await;
    assert_eq!(bank_rx.got()[4].id, got[3].id);

    // Deleted: nothing more is sent to it.
    s.send(
        reqwest::Method::DELETE,
        Some(&bank),
        &format!("/v1/webhooks/{bank_hook}"),
        &[],
        None,
    )
    .await
    .ok(204);
    s.get(&bank, &format!("/v1/webhooks/{bank_hook}"))
        .await
        .problem(404);
    worker.stop().await;
    bank_rx.stop().await;
    manager_rx.stop().await;
    s.stop().await;
}

on_each_backend!(a_failing_endpoint_is_disabled, failing_endpoint_disabled);
async fn failing_endpoint_disabled(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (bank_id, bank, manager_id, manager) = partners(&s).await;
    let rx = Receiver::start(&[], Some(Reply::Status(503))).await;
    let (hook, _) = register(&s, &bank, &rx.url, &["*"]).await;
    let worker = api::webhooks::spawn(s.db.clone(), quick(), "test-worker".into()).unwrap();
    let strategy = strategy_with_version(&s, &manager, "DIS").await;
    propose(&s, &bank, manager_id, strategy).await;
    until(&rx, "three failed attempts", |got| got.len() >= 3).await;
    // Disabled after the third failure in a row, and the tenant told.
    let mut status = Value::Null;
    for _ in 0..100 {
        status = s.get(&bank, &format!("/v1/webhooks/{hook}")).await.body;
        if status["status"] == "disabled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status["status"], "disabled", "{status}");
    assert!(
        status["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("3 delivery attempts"),
        "{status}"
    );
    let events = s.get(&bank, "/v1/events").await;
    let disabled: Vec<&Value> = events.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "webhook.endpoint.disabled")
        .collect();
    assert_eq!(disabled.len(), 1, "{}", events.text);
    assert_eq!(disabled[0]["payload"]["webhook_id"], hook.to_string());
    // Nothing more is tried.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.got().len(), 3, "{:#?}", rx.got());
    // Enabled again by its tenant (not by another, not by a viewer): the pending delivery is
    // tried again, from a clean failure count.
    let (_, other) = s.tenant_with_token("distributor", "Bank X").await;
    s.post(&other, &format!("/v1/webhooks/{hook}/enable"), None)
        .await
        .problem(404);
    let viewer = s.token_for_role(bank_id, "viewer").await;
    s.post(&viewer, &format!("/v1/webhooks/{hook}/enable"), None)
        .await
        .problem(403);
    let enabled = s
        .post(&bank, &format!("/v1/webhooks/{hook}/enable"), None)
        .await;
    assert_eq!(enabled.ok(200)["status"], "enabled", "{}", enabled.text);
    assert_eq!(
        enabled.ok(200)["consecutive_failures"],
        0,
        "{}",
        enabled.text
    );
    until(&rx, "a fourth attempt after enabling", |got| got.len() >= 4).await;
    worker.stop().await;
    rx.stop().await;
    s.stop().await;
}

/// `count` events of `kind` of the tenant in `objects` objects (payload `{"n": i}`),
/// recorded as the domain records them.
pub async fn record_events(
    s: &TestServer,
    tenant: Uuid,
    kind: &'static str,
    count: usize,
    objects: usize,
) {
    let events = (0..count)
        .map(|i| {
            NewEvent::new(
                tenant,
                kind,
                format!("plan:{}", i % objects),
                None,
                json!({ "n": i }),
            )
        })
        .collect();
    let txn = ledger::begin_write(&s.db).await.unwrap();
    wraps::events::record(&txn, events, Utc::now())
        .await
        .unwrap();
    txn.commit().await.unwrap();
}

/// The receiver's deliveries of each event, by event id.
fn by_event(got: &[Got]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for g in got {
        *counts.entry(g.id.clone()).or_insert(0) += 1;
    }
    counts
}

on_each_backend!(two_workers_deliver_each_event_once, two_workers_once);
async fn two_workers_once(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (bank_id, bank, _, _) = partners(&s).await;
    let rx = Receiver::start(&[], None).await;
    register(&s, &bank, &rx.url, &["plan.executed"]).await;
    record_events(&s, bank_id, types::PLAN_EXECUTED, 40, 4).await;
    let a = api::webhooks::spawn(s.db.clone(), quick(), "worker-a".into()).unwrap();
    let b = api::webhooks::spawn(s.db.clone(), quick(), "worker-b".into()).unwrap();
    until(&rx, "40 events", |got| by_event(got).len() == 40).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = rx.got();
    assert!(
        by_event(&got).values().all(|n| *n == 1),
        "an event went twice: {got:#?}"
    );
    // In order per object: each object's events arrive in their order.
    let mut last: HashMap<String, i64> = HashMap::new();
    for g in &got {
        let e = g.json();
        let seq: i64 = e["seq"].as_str().unwrap().parse().unwrap();
        let previous = last.insert(e["object_id"].as_str().unwrap().to_owned(), seq);
        assert!(previous.is_none_or(|p| p < seq), "out of order: {e}");
    }
    a.stop().await;
    b.stop().await;
    rx.stop().await;
    s.stop().await;
}

on_each_backend!(a_restarted_worker_resumes, restarted_worker_resumes);
async fn restarted_worker_resumes(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (bank_id, bank, _, _) = partners(&s).await;
    // The first request hangs: the worker dies while it waits.
    let rx = Receiver::start(&[Reply::Sleep(3_000)], None).await;
    register(&s, &bank, &rx.url, &["plan.executed"]).await;
    record_events(&s, bank_id, types::PLAN_EXECUTED, 5, 1).await;
    let mut settings = quick();
    settings.timeout_ms = 5_000;
    let first = api::webhooks::spawn(s.db.clone(), settings.clone(), "first".into()).unwrap();
    until(&rx, "the first attempt", |got| !got.is_empty()).await;
    first.abort();
    // A successor: the claim lapses with its lease, then everything is delivered, the first
    // event again with the same id (at least once), the others once.
    let lease_ms = u64::try_from(api::webhooks::lease(&settings).as_millis()).unwrap();
    let second = api::webhooks::spawn(s.db.clone(), settings, "second".into()).unwrap();
    tokio::time::sleep(Duration::from_millis(lease_ms / 2)).await;
    assert_eq!(
        rx.got().len(),
        1,
        "nobody sends a claimed delivery before its lease lapses"
    );
    for _ in 0..(lease_ms / 50 + 200) {
        if by_event(&rx.got()).len() == 5 && rx.got().len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = rx.got();
    let counts = by_event(&got);
    assert_eq!(counts.len(), 5, "{got:#?}");
    assert_eq!(counts[&got[0].id], 2, "{got:#?}");
    assert_eq!(got.len(), 6, "{got:#?}");
    second.stop().await;
    rx.stop().await;
    s.stop().await;
}

on_each_backend!(private_targets_are_refused, private_targets_refused);
/// With `allow_private_targets` off (the default), nothing is posted to a loopback address,
/// given as an IP literal or as a name that resolves to one; the delivery log says why.
async fn private_targets_refused(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (bank_id, bank, _, _) = partners(&s).await;
    let rx = Receiver::start(&[], None).await;
    let by_name = rx.url.replace("127.0.0.1", "localhost");
    let (literal, _) = register(&s, &bank, &rx.url, &["*"]).await;
    let (named, _) = register(&s, &bank, &by_name, &["*"]).await;
    let settings = WebhookSettings {
        allow_private_targets: false,
        ..quick()
    };
    let worker = api::webhooks::spawn(s.db.clone(), settings, "test-worker".into()).unwrap();
    record_events(&s, bank_id, "plan.executed", 1, 1).await;
    for hook in [literal, named] {
        let mut log = Value::Null;
        for _ in 0..200 {
            log = s
                .get(&bank, &format!("/v1/webhooks/{hook}/deliveries"))
                .await
                .body;
            if log["items"][0]["attempts"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let attempt = &log["items"][0]["attempts"][0];
        assert_eq!(attempt["outcome"], "failed", "{log}");
        assert!(
            attempt["error"]
                .as_str()
                .is_some_and(|e| e.contains("not allowed")),
            "{log}"
        );
    }
    assert!(rx.got().is_empty(), "{:#?}", rx.got());
    worker.stop().await;
    rx.stop().await;
    s.stop().await;
}

on_each_backend!(a_killed_wrapd_resumes_deliveries, killed_wrapd_resumes);
/// `wrapd serve` itself (its own worker) SIGKILLed while a delivery is in flight, then started
/// again: nothing is lost, and the one delivery cut short comes again with the same
/// `webhook-id` once its claim's lease lapses, the others once each, in order.
async fn killed_wrapd_resumes(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let (bank_id, bank, _, _) = partners(&s).await;
    // The first request hangs (the process is killed while it waits); the rest answer 200.
    let rx = Receiver::start(&[Reply::Sleep(4_000)], None).await;
    register(&s, &bank, &rx.url, &["plan.executed"]).await;
    record_events(&s, bank_id, types::PLAN_EXECUTED, 3, 1).await;
    let env = [
        ("WRAP__WEBHOOKS__WORKER", "true"),
        ("WRAP__WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true"),
        ("WRAP__WEBHOOKS__POLL_INTERVAL_MS", "50"),
        ("WRAP__WEBHOOKS__TIMEOUT_MS", "5000"),
        ("WRAP__WEBHOOKS__BASE_DELAY_MS", "100"),
    ];
    let mut served = crate::faults::Served::start_with(&s.url, &s.key_pem, &env);
    until(&rx, "the first attempt", |got| !got.is_empty()).await;
    served.kill();
    served.spawn();
    // The lease of the cut-short claim: timeout × 2 + 10 s (api::webhooks::lease).
    let lease = api::webhooks::lease(&WebhookSettings {
        timeout_ms: 5_000,
        ..quick()
    });
    for _ in 0..(lease.as_millis() / 50 + 400) {
        if by_event(&rx.got()).len() == 3 && rx.got().len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = rx.got();
    let counts = by_event(&got);
    assert_eq!(counts.len(), 3, "{got:#?}");
    assert_eq!(
        counts[&got[0].id], 2,
        "the cut-short delivery again: {got:#?}"
    );
    assert_eq!(got.len(), 4, "{got:#?}");
    // In order per object: the payloads' n after the repeat are 0, 1, 2.
    let order: Vec<i64> = got[1..]
        .iter()
        .map(|g| g.json()["payload"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(order, [0, 1, 2], "{got:#?}");
    served.kill();
    rx.stop().await;
    s.stop().await;
}
