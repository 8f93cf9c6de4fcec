//! End of day's plans step against the agreement: a contribution plan runs only while its
//! wrap's agreement is active, checked on the day, as a contribution through the API is.

use chrono::Datelike;
use serde_json::json;

use crate::common::TestServer;
use crate::customers::{deposit, make_customer};
use crate::eod::{first_day, rows, run_days};
use crate::on_each_backend;
use crate::wraps::{market, open_wrap};

async fn plans_stop_with_the_agreement(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let d1 = first_day();
    let c = make_customer(&server, &m.bank, "C-1", 3).await;
    deposit(&server, &m.bank, c, "100000").await;
    let w = open_wrap(&server, &m, c).await;
    let r = server
        .post(
            &m.bank,
            &format!("/v1/wraps/{w}/plans"),
            Some(json!({ "kind": "contribution", "amount": "30000", "day_of_month": d1.day(), "start_date": d1 })),
        )
        .await;
    let plan = r.ok(201)["id"].as_str().unwrap().to_owned();
    // The agreement ends after the plan was set up (no endpoint ends one yet: the row is
    // changed as an operator would).
    rows(
        &server,
        "UPDATE agreements SET status = 'terminated' WHERE id = ?",
        vec![m.agreement_id.into()],
    )
    .await;

    let s = run_days(&server, d1, d1).await;
    assert_eq!(s["status"], "finished", "{s}");
    assert_eq!(
        s["steps"][0]["detail"],
        json!({ "due": 1, "executed": 0, "skipped": 1 })
    );
    let r = rows(
        &server,
        "SELECT reason FROM plan_runs WHERE plan_id = ?",
        vec![plan.parse::<uuid::Uuid>().unwrap().into()],
    )
    .await;
    let reason: String = r[0].try_get_by_index(0).unwrap();
    assert_eq!(
        reason,
        "the wrap's agreement is terminated: it takes no contributions"
    );
    // The customer's cash did not move.
    let r = server.get(&m.bank, &format!("/v1/customers/{c}")).await;
    assert_eq!(r.ok(200)["cash"][0]["balance"], "100000", "{}", r.text);
    server.stop().await;
}
on_each_backend!(plans_stop_with_the_agreement, plans_stop_with_the_agreement);

on_each_backend!(
    a_plans_runs_show_each_execution_and_skip,
    a_plans_runs_show_each_execution_and_skip
);
async fn a_plans_runs_show_each_execution_and_skip(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let d1 = first_day();
    let c = make_customer(&server, &m.bank, "C-1", 3).await;
    deposit(&server, &m.bank, c, "50000").await;
    let w = open_wrap(&server, &m, c).await;
    let plan = |amount: &str| {
        json!({ "kind": "contribution", "amount": amount,
                                       "day_of_month": d1.day(), "start_date": d1 })
    };
    let paid = server
        .post(
            &m.bank,
            &format!("/v1/wraps/{w}/plans"),
            Some(plan("30000")),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Due the same day: what is left (20,000) cannot pay it.
    let short = server
        .post(
            &m.bank,
            &format!("/v1/wraps/{w}/plans"),
            Some(plan("40000")),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let s = run_days(&server, d1, d1).await;
    assert_eq!(s["status"], "finished", "{s}");

    let runs = |plan: String| {
        let server = &server;
        let token = m.bank.clone();
        async move {
            server
                .get(&token, &format!("/v1/wraps/{w}/plans/{plan}/runs"))
                .await
        }
    };
    let r = runs(paid.clone()).await;
    let body = r.ok(200);
    let items = body["items"].as_array().unwrap();
    // One of the two plans ran first and was paid; the other is skipped, with the reason.
    let other = runs(short.clone()).await;
    let other = other.ok(200);
    let others = other["items"].as_array().unwrap();
    assert_eq!(items.len() + others.len(), 2, "{body} {other}");
    let all: Vec<_> = items.iter().chain(others.iter()).collect();
    assert_eq!(
        all.iter().filter(|i| i["status"] == "executed").count(),
        1,
        "{body} {other}"
    );
    let skip = all.iter().find(|i| i["status"] == "skipped").unwrap();
    assert_eq!(skip["run_date"], d1.to_string());
    assert!(skip["reason"].as_str().unwrap().contains("cash"), "{skip}");
    assert!(skip.get("entry_id").is_none(), "{skip}");
    let done = all.iter().find(|i| i["status"] == "executed").unwrap();
    assert!(done["entry_id"].is_string(), "{done}");

    // Another distributor, a plan of another wrap, or no plan: 404 alike.
    let (_, other_bank) = server.tenant_with_token("distributor", "Other").await;
    server
        .get(&other_bank, &format!("/v1/wraps/{w}/plans/{paid}/runs"))
        .await
        .problem(404);
    let c2 = make_customer(&server, &m.bank, "C-2", 3).await;
    let w2 = open_wrap(&server, &m, c2).await;
    server
        .get(&m.bank, &format!("/v1/wraps/{w2}/plans/{paid}/runs"))
        .await
        .problem(404);
    // A bad cursor names itself.
    server
        .get(
            &m.bank,
            &format!("/v1/wraps/{w}/plans/{paid}/runs?cursor=yesterday"),
        )
        .await
        .problem(400);
    server.stop().await;
}

on_each_backend!(
    a_plan_cannot_open_a_wrap_below_the_initial_minimum,
    a_plan_cannot_open_a_wrap_below_the_initial_minimum
);
async fn a_plan_cannot_open_a_wrap_below_the_initial_minimum(backend: &'static str) {
    let server = TestServer::start(backend).await;
    // The strategy asks ¥10,000 for a wrap's first money; the agreement ¥1,000 a contribution.
    let m = market(&server, "Bank", 3).await;
    let d1 = first_day();
    let c = make_customer(&server, &m.bank, "C-1", 3).await;
    deposit(&server, &m.bank, c, "100000").await;
    let w = open_wrap(&server, &m, c).await;
    // Through the API, ¥5,000 cannot be the first contribution.
    let r = server
        .post_idem(
            &m.bank,
            &format!("/v1/wraps/{w}/contributions"),
            &uuid::Uuid::now_v7().to_string(),
            json!({ "amount": "5000" }),
        )
        .await;
    let p = r.problem(422);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("minimum initial investment"),
        "{p}"
    );
    // Nor through a plan: the same rule, so the plan is skipped with the reason and the wrap
    // stays open with nothing in it.
    let plan = server
        .post(
            &m.bank,
            &format!("/v1/wraps/{w}/plans"),
            Some(json!({ "kind": "contribution", "amount": "5000",
                         "day_of_month": d1.day(), "start_date": d1 })),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let s = run_days(&server, d1, d1).await;
    assert_eq!(s["status"], "finished", "{s}");
    let runs = server
        .get(&m.bank, &format!("/v1/wraps/{w}/plans/{plan}/runs"))
        .await;
    let runs = runs.ok(200);
    assert_eq!(runs["items"][0]["status"], "skipped", "{runs}");
    assert!(
        runs["items"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("minimum initial investment of 10000 JPY"),
        "{runs}"
    );
    let wrap = server.get(&m.bank, &format!("/v1/wraps/{w}")).await;
    let wrap = wrap.ok(200);
    assert_eq!(wrap["wrap"]["status"], "open", "{wrap}");
    assert_eq!(wrap["valuation"]["cash"], "0", "{wrap}");
    server.stop().await;
}
