//! Customers, their account, deposits and withdrawals, through HTTP on both databases.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestServer;
use crate::on_each_backend;

/// Rows that any money movement or customer change writes: a refusal must leave them all.
pub const TABLES: [&str; 7] = [
    "customers",
    "wraps",
    "wrap_movements",
    "wrap_plans",
    "idempotency_keys",
    "ledger_entries",
    "ledger_postings",
];

pub async fn counts(server: &TestServer) -> Vec<i64> {
    let mut out = Vec::new();
    for t in TABLES {
        out.push(server.count_rows(t).await);
    }
    out
}

/// Opens a customer of the distributor behind `token`; returns its id.
pub async fn make_customer(
    server: &TestServer,
    token: &str,
    external_ref: &str,
    risk: i32,
) -> Uuid {
    let r = server
        .post(
            token,
            "/v1/customers",
            Some(json!({
                "external_ref": external_ref,
                "name": format!("Customer {external_ref}"),
                "date_of_birth": "1975-06-15",
                "risk_tolerance": risk,
            })),
        )
        .await;
    r.ok(201)["id"].as_str().unwrap().parse().unwrap()
}

pub async fn deposit(server: &TestServer, token: &str, customer: Uuid, amount: &str) -> Value {
    let r = server
        .post_idem(
            token,
            &format!("/v1/customers/{customer}/deposits"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": amount }),
        )
        .await;
    r.ok(201).clone()
}

/// The trial balance nets to zero in every asset.
pub async fn assert_books_balance(server: &TestServer) {
    let platform = server.token(&server.platform).await;
    let r = server.get(&platform, "/v1/ledger/trial-balance").await;
    for line in r.ok(200)["lines"].as_array().unwrap() {
        assert_eq!(line["difference"], "0", "{line}");
    }
}

async fn customer_and_cash_flow(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let (_, bank) = server.tenant_with_token("distributor", "Bank").await;
    let id = make_customer(&server, &bank, "C-001", 3).await;

    let r = server.get(&bank, &format!("/v1/customers/{id}")).await;
    let view = r.ok(200);
    assert_eq!(view["external_ref"], "C-001");
    assert_eq!(view["risk_tolerance"], 3);
    assert_eq!(view["cash"][0]["currency"], "JPY");
    assert_eq!(view["cash"][0]["balance"], "0");
    assert_eq!(view["wraps"], json!([]));

    // A deposit, then its retry with the same key and body: the same answer, no new entry.
    let path = format!("/v1/customers/{id}/deposits");
    let first = server
        .post_idem(
            &bank,
            &path,
            "dep-1",
            json!({ "amount": "100000", "reference": "SETTLE-1" }),
        )
        .await;
    let body = first.ok(201).clone();
    assert_eq!(body["amount"], "100000");
    assert_eq!(body["cash"]["balance"], "100000");
    assert_eq!(body["cash"]["available"], "100000");
    let entries = server.count_rows("ledger_entries").await;
    let retry = server
        .post_idem(
            &bank,
            &path,
            "dep-1",
            json!({ "amount": "100000", "reference": "SETTLE-1" }),
        )
        .await;
    assert_eq!(
        retry.ok(201),
        &body,
        "a retry answers what the first request did"
    );
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    assert_eq!(
        server.count_rows("ledger_entries").await,
        entries,
        "no second entry"
    );
    // The same key for a different request is a conflict and moves nothing.
    let other = server
        .post_idem(&bank, &path, "dep-1", json!({ "amount": "999" }))
        .await;
    assert!(
        other.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("different request")
    );
    assert_eq!(server.count_rows("ledger_entries").await, entries);

    // Withdrawals: within the balance, then beyond it (refused, nothing changes).
    let w = server
        .post_idem(
            &bank,
            &format!("/v1/customers/{id}/withdrawals"),
            "wd-1",
            json!({ "amount": "30000" }),
        )
        .await;
    assert_eq!(w.ok(201)["cash"]["balance"], "70000");
    let before = counts(&server).await;
    let too_much = server
        .post_idem(
            &bank,
            &format!("/v1/customers/{id}/withdrawals"),
            "wd-2",
            json!({ "amount": "70001" }),
        )
        .await;
    let p = too_much.problem(422);
    assert_eq!(p["errors"][0]["field"], "amount", "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("available balance of 70000"),
        "{p}"
    );
    assert_eq!(counts(&server).await, before);
    let all = server
        .post_idem(
            &bank,
            &format!("/v1/customers/{id}/withdrawals"),
            "wd-3",
            json!({ "amount": "70000" }),
        )
        .await;
    assert_eq!(all.ok(201)["cash"]["balance"], "0");

    // The books: the customer's cash account shows the three entries; the omnibus holds
    // exactly what the customer has (nothing now), and the trial balance nets to zero.
    let view = server.get(&bank, &format!("/v1/customers/{id}")).await;
    let account = view.ok(200)["cash"][0]["account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let entries = server
        .get(&bank, &format!("/v1/ledger/entries?account_id={account}"))
        .await;
    let kinds: Vec<&str> = entries.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["deposit", "withdrawal", "withdrawal"]);
    assert_books_balance(&server).await;

    // Lists, with the status filter and paging.
    make_customer(&server, &bank, "C-002", 1).await;
    let page = server.get(&bank, "/v1/customers?limit=1").await;
    let b = page.ok(200);
    assert_eq!(b["items"].as_array().unwrap().len(), 1);
    let next = b["next_cursor"].as_str().unwrap();
    let page2 = server
        .get(&bank, &format!("/v1/customers?limit=1&cursor={next}"))
        .await;
    assert_eq!(page2.ok(200)["items"][0]["external_ref"], "C-002");
    let closed = server.get(&bank, "/v1/customers?status=closed").await;
    assert_eq!(closed.ok(200)["items"], json!([]));
    server.stop().await;
}
on_each_backend!(customer_and_cash_flow_works, customer_and_cash_flow);

async fn bad_customer_input(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let (_, bank) = server.tenant_with_token("distributor", "Bank").await;
    let id = make_customer(&server, &bank, "C-001", 3).await;
    deposit(&server, &bank, id, "5000").await;
    let before = counts(&server).await;

    let good = json!({ "external_ref": "C-009", "name": "Taro", "risk_tolerance": 3 });
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    for (body, field) in [
        (with("risk_tolerance", json!(0)), "risk_tolerance"),
        (with("risk_tolerance", json!(6)), "risk_tolerance"),
        (with("name", json!("   ")), "name"),
        (with("external_ref", json!("")), "external_ref"),
        (with("date_of_birth", json!("2999-01-01")), "date_of_birth"),
    ] {
        let r = server
            .post(&bank, "/v1/customers", Some(body.clone()))
            .await;
        assert_eq!(r.problem(422)["errors"][0]["field"], field, "{body}");
    }
    let r = server
        .post(&bank, "/v1/customers", Some(with("vip", json!(true))))
        .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "vip");
    let r = server
        .post(
            &bank,
            "/v1/customers",
            Some(with("external_ref", json!("C-001"))),
        )
        .await;
    assert!(r.problem(409)["detail"].as_str().unwrap().contains("C-001"));

    let path = format!("/v1/customers/{id}/deposits");
    for (amount, field) in [
        (json!("0"), "amount"),
        (json!("-100"), "amount"),
        (json!("10.5"), "amount"),
    ] {
        let r = server
            .post_idem(
                &bank,
                &path,
                &Uuid::now_v7().to_string(),
                json!({ "amount": amount }),
            )
            .await;
        assert_eq!(r.problem(422)["errors"][0]["field"], field, "{amount}");
    }
    let r = server
        .post_idem(
            &bank,
            &path,
            "k-cur",
            json!({ "amount": "100", "currency": "XXX" }),
        )
        .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "currency");
    let r = server
        .post_idem(&bank, &path, "k-nan", json!({ "amount": "lots" }))
        .await;
    assert!(r.status.is_client_error(), "{}", r.text);
    // No Idempotency-Key: refused before anything happens.
    let r = server
        .post(&bank, &path, Some(json!({ "amount": "100" })))
        .await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "Idempotency-Key");
    assert_eq!(counts(&server).await, before, "refusals wrote nothing");
    server.stop().await;
}
on_each_backend!(
    bad_customer_input_is_refused_and_changes_nothing,
    bad_customer_input
);

async fn customers_isolated(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let (bank_id, bank) = server.tenant_with_token("distributor", "Bank").await;
    let (_, ifa) = server.tenant_with_token("distributor", "IFA").await;
    let (_, manager) = server.tenant_with_token("manager", "Manager").await;
    let platform = server.token(&server.platform).await;
    let id = make_customer(&server, &bank, "C-001", 3).await;
    deposit(&server, &bank, id, "5000").await;
    let missing = Uuid::now_v7();
    let before = counts(&server).await;

    for token in [&ifa, &manager, &platform] {
        let theirs = server.get(token, &format!("/v1/customers/{id}")).await;
        let none = server.get(token, &format!("/v1/customers/{missing}")).await;
        theirs.problem(404);
        assert_eq!(
            theirs.body["title"], none.body["title"],
            "a foreign customer looks missing"
        );
        let r = server
            .post_idem(
                token,
                &format!("/v1/customers/{id}/deposits"),
                "x",
                json!({ "amount": "1" }),
            )
            .await;
        r.problem(404);
        let r = server
            .get(token, &format!("/v1/customers/{id}/wraps"))
            .await;
        r.problem(404);
    }
    let r = server.get(&ifa, "/v1/customers").await;
    assert_eq!(
        r.ok(200)["items"],
        json!([]),
        "another distributor's list is its own"
    );
    // Managers and the platform do not open customers.
    for token in [&manager, &platform] {
        let r = server
            .post(
                token,
                "/v1/customers",
                Some(json!({ "external_ref": "X", "name": "X", "risk_tolerance": 1 })),
            )
            .await;
        r.problem(403);
    }
    // A viewer of the bank reads but does not move money.
    let viewer = server.token_for_role(bank_id, "viewer").await;
    server
        .get(&viewer, &format!("/v1/customers/{id}"))
        .await
        .ok(200);
    let r = server
        .post_idem(
            &viewer,
            &format!("/v1/customers/{id}/withdrawals"),
            "v-1",
            json!({ "amount": "1" }),
        )
        .await;
    r.problem(403);
    assert_eq!(counts(&server).await, before);
    server.stop().await;
}
on_each_backend!(customers_are_isolated, customers_isolated);

async fn customer_changes(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let (_, bank) = server.tenant_with_token("distributor", "Bank").await;
    let (_, ifa) = server.tenant_with_token("distributor", "IFA").await;
    let id = make_customer(&server, &bank, "C-001", 3).await;
    let path = format!("/v1/customers/{id}");
    let patch = |body: Value| {
        let server = &server;
        let bank = bank.clone();
        let path = path.clone();
        async move {
            server
                .send(
                    reqwest::Method::PATCH,
                    Some(&bank),
                    &path,
                    &[],
                    Some(("application/json", serde_json::to_vec(&body).unwrap())),
                )
                .await
        }
    };
    let r = patch(json!({ "name": "Hanako Sato", "risk_tolerance": 4 })).await;
    let c = r.ok(200);
    assert_eq!(c["name"], "Hanako Sato");
    assert_eq!(c["risk_tolerance"], 4);
    let before = counts(&server).await;
    for (body, field) in [
        (json!({ "risk_tolerance": 9 }), "risk_tolerance"),
        (json!({ "name": "" }), "name"),
        (json!({ "status": "dormant" }), "status"),
        (json!({ "external_ref": "X" }), "external_ref"),
    ] {
        let r = patch(body.clone()).await;
        assert_eq!(r.problem(422)["errors"][0]["field"], field, "{body}");
    }
    // Closing needs an empty account.
    deposit(&server, &bank, id, "1000").await;
    let r = patch(json!({ "status": "closed" })).await;
    assert!(
        r.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("JPY cash")
    );
    assert_eq!(counts(&server).await[0], before[0]);
    server
        .post_idem(
            &bank,
            &format!("{path}/withdrawals"),
            "w-all",
            json!({ "amount": "1000" }),
        )
        .await
        .ok(201);
    assert_eq!(
        patch(json!({ "status": "closed" })).await.ok(200)["status"],
        "closed"
    );
    let r = server
        .post_idem(
            &bank,
            &format!("{path}/deposits"),
            "d-closed",
            json!({ "amount": "1000" }),
        )
        .await;
    r.problem(409);
    // Another distributor cannot touch it.
    let r = server
        .send(
            reqwest::Method::PATCH,
            Some(&ifa),
            &path,
            &[],
            Some(("application/json", b"{\"name\":\"X\"}".to_vec())),
        )
        .await;
    r.problem(404);
    server.stop().await;
}
on_each_backend!(customers_change_and_close, customer_changes);

async fn concurrent_retries(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let (_, bank) = server.tenant_with_token("distributor", "Bank").await;
    let id = make_customer(&server, &bank, "C-001", 3).await;
    let path = format!("/v1/customers/{id}/deposits");
    let entries = server.count_rows("ledger_entries").await;
    // Eight copies of one request at once, as a client retrying after timeouts might send.
    let tries =
        (0..8).map(|_| server.post_idem(&bank, &path, "same-key", json!({ "amount": "5000" })));
    let answers = futures::future::join_all(tries).await;
    let mut entry_ids = std::collections::BTreeSet::new();
    for r in &answers {
        match r.status.as_u16() {
            201 => {
                entry_ids.insert(r.body["entry_id"].as_str().unwrap().to_owned());
            }
            // A copy that raced the first one to commit is told to retry; it moved nothing.
            409 => assert!(
                r.body["detail"].as_str().unwrap().contains("retry"),
                "{}",
                r.text
            ),
            _ => panic!("{}", r.text),
        }
    }
    assert_eq!(entry_ids.len(), 1, "every success names the same entry");
    assert_eq!(
        server.count_rows("ledger_entries").await,
        entries + 1,
        "money moved once"
    );
    let view = server.get(&bank, &format!("/v1/customers/{id}")).await;
    assert_eq!(view.ok(200)["cash"][0]["balance"], "5000");
    // The retry after the race gets the first answer.
    let again = server
        .post_idem(&bank, &path, "same-key", json!({ "amount": "5000" }))
        .await;
    assert_eq!(
        again.ok(201)["entry_id"].as_str().unwrap(),
        entry_ids.iter().next().unwrap()
    );
    server.stop().await;
}
on_each_backend!(concurrent_retries_move_money_once, concurrent_retries);
