//! The events outbox end to end on both databases: the external-execution flow told without
//! polling (instruction.created → fills → instruction.completed → eod.date.finished, on the
//! stream and by a signed webhook), the stream resumable by cursor and long-polled,
//! tenant-scoped (a manager never sees a customer), no event for a refused change, and the
//! relay to the NATS JetStream server at 127.0.0.1:4222 (`wraps::events` states the rules).

use std::time::Duration;

use chrono::NaiveDate;
use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestServer;
use crate::eod::run_days;
use crate::eod_trading::{book_named, funded_wrap, instrument, prices};
use crate::on_each_backend;
use crate::webhooks::{Receiver, quick, record_events, register, until, verify};
use wraps::events::types;

const A: &str = "JP90C000EVT1";

fn day0() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, 5).unwrap()
}

/// Every event of the tenant `token`, in order.
async fn all_events(s: &TestServer, token: &str) -> Vec<Value> {
    let r = s.get(token, "/v1/events?limit=1000").await;
    r.ok(200)["items"].as_array().unwrap().clone()
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

fn seq(e: &Value) -> i64 {
    e["seq"].as_str().unwrap().parse().unwrap()
}

on_each_backend!(the_external_execution_flow_needs_no_polling, external_flow);
async fn external_flow(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let platform = s.token(&s.platform).await;
    instrument(&s, A, "100").await;
    let x = book_named(&s, "Bank X", &[(A, "1")], "0", "0").await;
    let other = book_named(&s, "Bank S", &[(A, "1")], "0", "0").await;
    funded_wrap(&s, &x, "X-1", "30000", Some("30000")).await;
    funded_wrap(&s, &other, "S-1", "10000", Some("10000")).await;
    // Bank X's account system subscribes instead of polling.
    let rx = Receiver::start(&[], None).await;
    let (_, secret) = register(
        &s,
        &x.bank,
        &rx.url,
        &[
            "instruction.created",
            "instruction.completed",
            "eod.date.finished",
        ],
    )
    .await;
    let worker = api::webhooks::spawn(s.db.clone(), quick(), "test-worker".into()).unwrap();
    s.put(
        &platform,
        &format!("/v1/tenants/{}/execution-venue", x.bank_id),
        json!({ "venue": "external" }),
    )
    .await
    .ok(200);
    prices(&s, day0(), &[(A, "13000")]).await;
    let st = run_days(&s, day0(), day0()).await;
    assert_eq!(st["status"], "awaiting_fills", "{st}");

    // The stream: the bank's events so far, numbered 1, 2, 3, … with no gap.
    let events = all_events(&s, &x.bank).await;
    let seqs: Vec<i64> = events.iter().map(seq).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as i64).collect::<Vec<_>>(),
        "{events:#?}"
    );
    let created = of_type(&events, "instruction.created");
    assert_eq!(created.len(), 1, "{events:#?}");
    let instruction: Uuid = created[0]["payload"]["instruction_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(created[0]["business_date"], "2026-10-05");
    assert_eq!(
        created[0]["object_id"],
        format!("instruction:{instruction}")
    );
    // Resumable: after any cursor, exactly the rest.
    for (k, cursor) in seqs.iter().enumerate() {
        let r = s
            .get(&x.bank, &format!("/v1/events?after={cursor}&limit=2"))
            .await;
        let page = r.ok(200);
        let want: Vec<&Value> = events.iter().skip(k + 1).take(2).collect();
        assert_eq!(
            page["items"].as_array().unwrap().iter().collect::<Vec<_>>(),
            want
        );
        let next = want.last().map_or(*cursor, |e| seq(e));
        assert_eq!(page["next_cursor"], next.to_string());
    }
    until(&rx, "instruction.created by webhook", |got| {
        got.iter()
            .any(|g| g.json()["type"] == "instruction.created")
    })
    .await;

    // A long-poll waits for the next event: the fills' completion.
    let last = *seqs.last().unwrap();
    let (http, url) = (
        s.http.clone(),
        format!("{}/v1/events?after={last}&wait=10", s.base),
    );
    let token = x.bank.clone();
    let poll = tokio::spawn(async move {
        let r = http.get(url).bearer_auth(token).send().await.unwrap();
        r.json::<Value>().await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !poll.is_finished(),
        "the long-poll waits while there is nothing"
    );
    s.post(
        &x.bank,
        &format!("/v1/instructions/{instruction}/fills"),
        Some(json!({ "fill_id": "F-1", "units": "23000", "amount": "29900", "final": true })),
    )
    .await
    .ok(201);
    let page = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page["items"][0]["type"], "instruction.completed", "{page}");
    assert_eq!(
        page["items"][0]["payload"]["instruction_id"],
        instruction.to_string()
    );
    // An empty wait answers empty, at its cursor.
    let after = seq(&page["items"][0]);
    let r = s
        .get(&x.bank, &format!("/v1/events?after={after}&wait=1"))
        .await;
    assert_eq!(r.ok(200)["items"], json!([]));
    assert_eq!(r.body["next_cursor"], after.to_string());

    // The day goes on and finishes: told to every tenant, the figures only to the platform.
    let st = run_days(&s, day0(), day0()).await;
    assert_eq!(st["status"], "finished", "{st}");
    let events = all_events(&s, &x.bank).await;
    let finished = of_type(&events, "eod.date.finished");
    assert_eq!(finished.len(), 1, "{events:#?}");
    assert_eq!(
        finished[0]["payload"],
        json!({ "business_date": "2026-10-05" })
    );
    let platform_events = all_events(&s, &platform).await;
    assert!(of_type(&platform_events, "eod.date.finished")[0]["payload"]["steps"].is_object());
    until(&rx, "the three types by webhook", |got| {
        got.iter().any(|g| g.json()["type"] == "eod.date.finished")
    })
    .await;
    let got = rx.got();
    let kinds: Vec<String> = got
        .iter()
        .map(|g| g.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "instruction.created",
            "instruction.completed",
            "eod.date.finished"
        ],
        "only the subscribed types, once each"
    );
    assert!(got.iter().all(|g| verify(&secret, g)));

    // Tenant-scoped: Bank S sees none of X's events, and its manager no customer.
    let theirs = all_events(&s, &other.bank).await;
    assert!(
        of_type(&theirs, "instruction.created").is_empty(),
        "{theirs:#?}"
    );
    let ours: Vec<&Value> = events.iter().map(|e| &e["id"]).collect();
    assert!(theirs.iter().all(|e| !ours.contains(&&e["id"])));
    let accepted = of_type(&events, "agreement.accepted");
    let manager_id: Uuid = accepted[0]["payload"]["manager_tenant_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let manager = s.token_for_role(manager_id, "viewer").await;
    let manager_events = all_events(&s, &manager).await;
    assert!(!manager_events.is_empty());
    for e in &manager_events {
        let kind = e["type"].as_str().unwrap();
        assert!(
            kind.starts_with("agreement.")
                || kind.starts_with("eod.")
                || kind == "strategy.version.published",
            "{e}"
        );
        assert!(!e.to_string().contains("customer"), "{e}");
    }

    // A refused change writes no event: the same agreement proposed again (409).
    let before = s.count_rows("events").await;
    let strategy = accepted[0]["payload"]["strategy_id"].clone();
    s.post(
        &x.bank,
        "/v1/agreements",
        Some(
            json!({ "manager_tenant_id": manager_id, "strategy_id": strategy,
                     "terms": crate::agreements::terms_body("2026-01-01") }),
        ),
    )
    .await
    .problem(409);
    assert_eq!(s.count_rows("events").await, before);

    // Bad parameters name themselves.
    for (query, name) in [
        ("after=-1", "after"),
        ("after=x", "after"),
        ("wait=11", "wait"),
        ("limit=0", "limit"),
        ("since=1", "since"),
    ] {
        let r = s.get(&x.bank, &format!("/v1/events?{query}")).await;
        let p = r.problem(400);
        assert!(p.to_string().contains(name), "{query}: {p}");
    }
    worker.stop().await;
    rx.stop().await;
    s.stop().await;
}

on_each_backend!(the_relay_publishes_to_jetstream, relay_publishes);
async fn relay_publishes(backend: &'static str) {
    let Ok(client) = async_nats::connect("nats://127.0.0.1:4222").await else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "NATS is not reachable at 127.0.0.1:4222, and CI=true requires it"
        );
        eprintln!("NATS not reachable at 127.0.0.1:4222: the relay test is skipped");
        return;
    };
    let s = TestServer::start(backend).await;
    let (bank_id, _) = s.tenant_with_token("distributor", "Bank N").await;
    let tag = Uuid::now_v7().simple().to_string();
    let settings = api::settings::NatsSettings {
        enabled: true,
        url: "nats://127.0.0.1:4222".into(),
        stream: format!("WRAP_TEST_{tag}"),
        subject_prefix: format!("wraptest.{tag}"),
        poll_interval_ms: 50,
    };
    let mut sub = client
        .subscribe(format!("{}.>", settings.subject_prefix))
        .await
        .unwrap();
    record_events(&s, bank_id, types::PLAN_SKIPPED, 3, 1).await;
    let relay = api::relay::spawn(s.db.clone(), settings.clone())
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let m = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("the relay publishes")
            .unwrap();
        assert_eq!(
            m.subject.as_str(),
            format!("{}.{bank_id}.plan.skipped", settings.subject_prefix)
        );
        let body: Value = serde_json::from_slice(&m.payload).unwrap();
        let id = m
            .headers
            .as_ref()
            .unwrap()
            .get("Nats-Msg-Id")
            .unwrap()
            .as_str()
            .to_owned();
        assert_eq!(body["id"], id);
        seen.push(body["payload"]["n"].as_i64().unwrap());
    }
    assert_eq!(seen, [0, 1, 2], "in order");
    relay.stop().await;
    // A restarted relay resumes after what it published: nothing again.
    let relay = api::relay::spawn(s.db.clone(), settings.clone())
        .await
        .unwrap();
    let again = tokio::time::timeout(Duration::from_millis(700), sub.next()).await;
    assert!(again.is_err(), "published twice: {again:?}");
    relay.stop().await;
    let js = async_nats::jetstream::new(client);
    let info = js
        .get_stream(&settings.stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.state.messages, 3);
    js.delete_stream(&settings.stream).await.unwrap();
    s.stop().await;
}
