//! Every error path answers problem+json with the right status and names what is wrong;
//! request ids; 5xx bodies carry only the request id; rejected writes leave nothing behind;
//! the audit log records each change under its request id; metrics and the OpenAPI document.

use serde_json::json;

use crate::common::TestServer;
use crate::on_each_backend;

on_each_backend!(malformed_requests, malformed_requests);
on_each_backend!(rule_violations, rule_violations);
on_each_backend!(audit_log_records_changes, audit_log_records_changes);
on_each_backend!(server_errors_say_nothing, server_errors_say_nothing);
on_each_backend!(metrics_and_openapi, metrics_and_openapi);

async fn malformed_requests(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    let url = |p: &str| format!("{}{p}", s.base);
    let audit_before = s.audit_count().await;

    // Unknown route, wrong method.
    s.get(&root, "/v1/nothing-here").await.problem(404);
    let r = TestServer::read(
        s.http
            .delete(url("/v1/tenants"))
            .bearer_auth(&root)
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.problem(405);

    let send = |body: &'static str, content_type: &'static str| {
        let req = s
            .http
            .post(url("/v1/tenants"))
            .bearer_auth(&root)
            .header("content-type", content_type)
            .body(body);
        async move { TestServer::read(req.send().await.unwrap()).await }
    };
    // Malformed JSON: 400.
    send(r#"{"kind": "distributor", "name": "#, "application/json")
        .await
        .problem(400);
    // Well-formed, wrong shape: 422 naming the field.
    let r = send(
        r#"{"kind": "distributor", "name": "Bank", "contact_email": 5}"#,
        "application/json",
    )
    .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "contact_email");
    let r = send(
        r#"{"kind": "bank", "name": "Bank", "contact_email": "a@b.example"}"#,
        "application/json",
    )
    .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "kind");
    let r = send(
        r#"{"kind": "distributor", "name": "Bank"}"#,
        "application/json",
    )
    .await;
    assert!(
        r.problem(422)["detail"]
            .as_str()
            .unwrap()
            .contains("contact_email")
    );
    let r = send(
        r#"{"kind": "distributor", "name": "Bank", "contact_email": "a@b.example", "colour": "red"}"#,
        "application/json",
    )
    .await;
    assert!(
        r.problem(422)["detail"]
            .as_str()
            .unwrap()
            .contains("colour")
    );
    // Not JSON at all: 415.
    send("kind=distributor", "application/x-www-form-urlencoded")
        .await
        .problem(415);
    send("{}", "text/plain").await.problem(415);
    // Over the limit (1 MiB by default): 413.
    let big = format!(
        r#"{{"kind": "distributor", "name": "{}", "contact_email": "a@b.example"}}"#,
        "x".repeat(1024 * 1024)
    );
    let r = TestServer::read(
        s.http
            .post(url("/v1/tenants"))
            .bearer_auth(&root)
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.problem(413);

    // Path and query parameters.
    let r = s.get(&root, "/v1/tenants/not-a-uuid").await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "id");
    let r = s
        .get(
            &root,
            &format!("/v1/tenants/{}/clients/nope", s.platform.tenant_id),
        )
        .await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "client");
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("limit=1001", "limit"),
        ("cursor=zzz", "cursor"),
        ("colour=red", "colour"),
        ("limit=1&limit=2", "limit"),
    ] {
        let r = s.get(&root, &format!("/v1/tenants?{query}")).await;
        assert_eq!(r.problem(400)["errors"][0]["field"], field, "{query}");
    }
    let r = s
        .get(
            &root,
            &format!(
                "/v1/ledger/accounts/{}?as_of=yesterday",
                uuid::Uuid::now_v7()
            ),
        )
        .await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "as_of");
    let r = s.get(&root, "/v1/ledger/entries").await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "account_id");

    // None of it changed anything.
    assert_eq!(s.audit_count().await, audit_before);
    let list = s.get(&root, "/v1/tenants").await;
    assert_eq!(list.ok(200)["items"].as_array().unwrap().len(), 1);

    // Request ids: ours is echoed, else one is made; on errors too.
    let r = TestServer::read(
        s.http
            .get(url("/v1/tenants/not-a-uuid"))
            .bearer_auth(&root)
            .header("x-request-id", "trace-42")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.headers["x-request-id"], "trace-42");
    let r = s.get(&root, "/v1/tenants").await;
    let made = r.headers["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(made).is_ok(), "{made}");
    s.stop().await;
}

async fn rule_violations(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    s.make_tenant(&root, "distributor", "Bank A").await;
    let audit_before = s.audit_count().await;
    let create = |body: serde_json::Value| s.post(&root, "/v1/tenants", Some(body));

    // Duplicate name: 409. A second platform: 422 (bootstrap makes the only one).
    create(json!({"kind": "manager", "name": "Bank A", "contact_email": "a@b.example"}))
        .await
        .problem(409);
    let r =
        create(json!({"kind": "platform", "name": "Other", "contact_email": "a@b.example"})).await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "kind");
    let r =
        create(json!({"kind": "manager", "name": " padded", "contact_email": "a@b.example"})).await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "name");
    let r = create(json!({"kind": "manager", "name": "M", "contact_email": "not-an-email"})).await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "contact_email");
    let r = s
        .post(
            &root,
            &format!("/v1/tenants/{}/clients", s.platform.tenant_id),
            Some(json!({"name": "x", "role": "superuser"})),
        )
        .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "role");

    // The platform cannot be suspended, nor lose its last admin client.
    s.post(
        &root,
        &format!("/v1/tenants/{}/suspend", s.platform.tenant_id),
        None,
    )
    .await
    .problem(409);
    s.post(
        &root,
        &format!(
            "/v1/tenants/{}/clients/{}/revoke",
            s.platform.tenant_id, s.platform.id
        ),
        None,
    )
    .await
    .problem(409);
    assert_eq!(s.audit_count().await, audit_before);
    s.get(&root, "/v1/tenants").await.ok(200);

    // With a second admin, the first may go.
    let second = s.make_client(&root, s.platform.tenant_id, "admin").await;
    s.post(
        &root,
        &format!(
            "/v1/tenants/{}/clients/{}/revoke",
            s.platform.tenant_id, s.platform.id
        ),
        None,
    )
    .await
    .ok(200);
    s.get(&root, "/v1/tenants").await.problem(401);
    let root2 = s.token(&second).await;
    s.get(&root2, "/v1/tenants").await.ok(200);
    // A revoked client cannot be rotated.
    s.post(
        &root2,
        &format!(
            "/v1/tenants/{}/clients/{}/rotate",
            s.platform.tenant_id, s.platform.id
        ),
        None,
    )
    .await
    .problem(409);
    s.stop().await;
}

async fn audit_log_records_changes(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    let r = TestServer::read(
        s.http
            .post(format!("{}/v1/tenants", s.base))
            .bearer_auth(&root)
            .header("x-request-id", "req-create-bank")
            .json(&json!({"kind": "distributor", "name": "Bank C", "display_name": "C Bank Wraps", "contact_email": "ops@c.example"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let bank: uuid::Uuid = r.ok(201)["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(r.headers["location"], format!("/v1/tenants/{bank}"));
    assert_eq!(r.body["display"]["display_name"], "C Bank Wraps");
    let client = s.make_client(&root, bank, "operator").await;
    s.post(
        &root,
        &format!("/v1/tenants/{bank}/clients/{}/rotate", client.id),
        None,
    )
    .await
    .ok(200);
    s.post(
        &root,
        &format!("/v1/tenants/{bank}/clients/{}/revoke", client.id),
        None,
    )
    .await
    .ok(200);
    s.post(&root, &format!("/v1/tenants/{bank}/suspend"), None)
        .await
        .ok(200);
    // Suspending twice changes nothing and records nothing.
    s.post(&root, &format!("/v1/tenants/{bank}/suspend"), None)
        .await
        .ok(200);

    let log = s.get(&root, &format!("/v1/audit?tenant_id={bank}")).await;
    let items = log.ok(200)["items"].as_array().unwrap().clone();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "tenant.create",
            "client.create",
            "client.rotate",
            "client.revoke",
            "tenant.suspend"
        ]
    );
    assert_eq!(items[0]["request_id"], "req-create-bank");
    assert_eq!(items[0]["actor_client_id"], s.platform.client_id.as_str());
    assert_eq!(items[0]["target_id"], bank.to_string());
    assert!(
        !log.text.contains(&client.secret),
        "no secret in the audit log"
    );

    // Paging: one at a time, in order, to the end.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/v1/audit?tenant_id={bank}&limit=2&cursor={c}"),
            None => format!("/v1/audit?tenant_id={bank}&limit=2"),
        };
        let page = s.get(&root, &q).await;
        let body = page.ok(200);
        for e in body["items"].as_array().unwrap() {
            seen.push(e["action"].as_str().unwrap().to_owned());
        }
        match body.get("next_cursor").and_then(|c| c.as_str()) {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, actions);

    // The whole log also holds bootstrap's records.
    let all = s.get(&root, "/v1/audit").await;
    assert_eq!(
        all.ok(200)["items"][0]["actor_client_id"],
        "wrapd-bootstrap"
    );

    // Append-only: the database itself refuses to rewrite it.
    use sea_orm::ConnectionTrait as _;
    assert!(
        s.db.execute_unprepared("UPDATE audit_log SET action = 'x'")
            .await
            .is_err()
    );
    assert!(
        s.db.execute_unprepared("DELETE FROM audit_log")
            .await
            .is_err()
    );
    s.stop().await;
}

async fn server_errors_say_nothing(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    // Take the database away: the token check fails inside the server.
    s.db.close_by_ref().await.unwrap();
    let r = TestServer::read(
        s.http
            .get(format!("{}/v1/tenants", s.base))
            .bearer_auth(&root)
            .header("x-request-id", "req-boom")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let body = r.problem(500).clone();
    assert_eq!(
        body,
        json!({
            "type": "https://wrap.example/problems/internal",
            "title": "Internal Server Error",
            "status": 500,
            "request_id": "req-boom",
        })
    );
    assert_eq!(r.headers["x-request-id"], "req-boom");
    // The readiness probe's 503 also carries only the request id.
    let r = TestServer::read(
        s.http
            .get(format!("{}/readyz", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let body = r.problem(503);
    assert!(body.get("detail").is_none(), "{body}");
    assert!(body["request_id"].is_string());
    s.stop().await;
}

async fn metrics_and_openapi(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    s.get(&root, "/v1/tenants").await.ok(200);
    s.get(&root, &format!("/v1/tenants/{}", uuid::Uuid::now_v7()))
        .await
        .problem(404);
    let r = TestServer::read(
        s.http
            .get(format!("{}/metrics", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
    );
    for needle in [
        r#"http_requests_total{method="GET",route="/v1/tenants",status="200"} 1"#,
        r#"http_requests_total{method="GET",route="/v1/tenants/{id}",status="404"} 1"#,
        r#"http_requests_total{method="POST",route="/oauth/token",status="200"} 1"#,
        "http_request_duration_seconds_bucket",
        "ledger_entries_written_total 0",
    ] {
        assert!(r.text.contains(needle), "{needle} not in\n{}", r.text);
    }

    let doc = TestServer::read(
        s.http
            .get(format!("{}/v1/openapi.json", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let doc = doc.ok(200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for route in [
        "/.well-known/jwks.json",
        "/healthz",
        "/metrics",
        "/oauth/token",
        "/readyz",
        "/v1/agreements",
        "/v1/agreements/{id}",
        "/v1/agreements/{id}/accept",
        "/v1/agreements/{id}/decline",
        "/v1/agreements/{id}/terms",
        "/v1/audit",
        "/v1/branches",
        "/v1/branches/{id}",
        "/v1/customers",
        "/v1/customers/{id}",
        "/v1/customers/{id}/assignment",
        "/v1/customers/{id}/bank-account",
        "/v1/customers/{id}/cost-basis",
        "/v1/customers/{id}/deposits",
        "/v1/customers/{id}/statement",
        "/v1/customers/{id}/withdrawals",
        "/v1/customers/{id}/wraps",
        "/v1/events",
        "/v1/instruments",
        "/v1/instructions",
        "/v1/instructions/{id}",
        "/v1/instructions/{id}/fills",
        "/v1/instructions/{id}/close",
        "/v1/instruments/{code}",
        "/v1/instruments/{code}/fund-terms",
        "/v1/ledger/accounts",
        "/v1/ledger/accounts/{id}",
        "/v1/ledger/entries",
        "/v1/ledger/entries/{id}",
        "/v1/ledger/reconciliation",
        "/v1/ledger/reconciliation/custodian-statements",
        "/v1/ledger/reconciliation/custodian-statements/{id}",
        "/v1/ledger/reconciliation/custodian-statements/{id}/breaks",
        "/v1/ledger/trial-balance",
        "/v1/openapi.json",
        "/v1/operations/eod",
        "/v1/operations/eod/{date}",
        "/v1/prices",
        "/v1/projections/fee-impact",
        "/v1/reports/aum",
        "/v1/reports/aum/history",
        "/v1/reports/fee-split",
        "/v1/reports/invoices",
        "/v1/strategies",
        "/v1/strategies/{id}",
        "/v1/strategies/{id}/versions",
        "/v1/strategies/{id}/versions/current",
        "/v1/tenants",
        "/v1/tenants/{id}",
        "/v1/tenants/{id}/clients",
        "/v1/tenants/{id}/clients/{client}",
        "/v1/tenants/{id}/clients/{client}/revoke",
        "/v1/tenants/{id}/clients/{client}/rotate",
        "/v1/tenants/{id}/execution-venue",
        "/v1/tenants/{id}/platform-fee",
        "/v1/tenants/{id}/resume",
        "/v1/tenants/{id}/suspend",
        "/v1/users",
        "/v1/users/{id}",
        "/v1/users/{id}/resume",
        "/v1/users/{id}/suspend",
        "/v1/webhooks",
        "/v1/webhooks/{id}",
        "/v1/webhooks/{id}/deliveries",
        "/v1/webhooks/{id}/enable",
        "/v1/webhooks/{id}/deliveries/{seq}/replay",
        "/v1/wraps",
        "/v1/wraps/{id}",
        "/v1/wraps/{id}/close",
        "/v1/wraps/{id}/contributions",
        "/v1/wraps/{id}/cost-basis",
        "/v1/wraps/{id}/goal",
        "/v1/wraps/{id}/goal/history",
        "/v1/wraps/{id}/movements",
        "/v1/wraps/{id}/plans",
        "/v1/wraps/{id}/plans/{plan}/cancel",
        "/v1/wraps/{id}/plans/{plan}/debits",
        "/v1/wraps/{id}/plans/{plan}/runs",
        "/v1/wraps/{id}/returns",
        "/v1/wraps/{id}/statement",
        "/v1/wraps/{id}/switches",
        "/v1/wraps/{id}/withdrawals",
        "/v1/zengin/debit-requests",
        "/v1/zengin/debit-requests/{id}",
        "/v1/zengin/debit-requests/{id}/file",
        "/v1/zengin/debit-requests/{id}/results",
        "/v1/zengin/transfers",
    ] {
        assert!(
            paths.contains(&route),
            "{route} missing from the OpenAPI document"
        );
    }
    assert_eq!(
        paths.len(),
        92,
        "a route in the document that the test does not know: {paths:?}"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let docs = s.http.get(format!("{}/docs", s.base)).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("redoc"));
    s.stop().await;
}
