//! Reports through HTTP on both databases: AUM struck by end of day, grouped four ways, and
//! each tenant's view of it.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestServer;
use crate::customers::{deposit, make_customer};
use crate::eod::{first_day, run_days};
use crate::on_each_backend;
use crate::wraps::{make_agreement, make_strategy, market};

async fn wrap_with(server: &TestServer, bank: &str, customer: Uuid, agreement: Uuid, amount: &str) {
    let r = server
        .post(
            bank,
            &format!("/v1/customers/{customer}/wraps"),
            Some(json!({ "agreement_id": agreement })),
        )
        .await;
    let w = r.ok(201)["id"].as_str().unwrap().to_owned();
    server
        .post_idem(
            bank,
            &format!("/v1/wraps/{w}/contributions"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": amount }),
        )
        .await
        .ok(201);
}

/// The groups of a report as (name, aum, wraps), in name order.
fn groups(report: &Value) -> Vec<(String, String, i64)> {
    let mut v: Vec<(String, String, i64)> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                g["aum"].as_str().unwrap().to_owned(),
                g["wraps"].as_i64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn g(name: &str, aum: &str, wraps: i64) -> (String, String, i64) {
    (name.to_owned(), aum.to_owned(), wraps)
}

async fn aum(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let platform = server.token(&server.platform).await;
    // Bank sells two strategies of one manager; Other sells its own manager's.
    let a = market(&server, "Bank", 3).await;
    let grow = make_strategy(&server, &a.manager, "GROW", 3).await;
    let a2 = make_agreement(&server, &a.bank, &a.manager, a.manager_id, grow, true).await;
    let b = market(&server, "Other", 3).await;
    let c1 = make_customer(&server, &a.bank, "C-1", 3).await;
    deposit(&server, &a.bank, c1, "1000000").await;
    wrap_with(&server, &a.bank, c1, a.agreement_id, "300000").await;
    wrap_with(&server, &a.bank, c1, a2, "200000").await;
    let c2 = make_customer(&server, &b.bank, "C-2", 3).await;
    deposit(&server, &b.bank, c2, "500000").await;
    wrap_with(&server, &b.bank, c2, b.agreement_id, "150000").await;

    // Before any end of day there is nothing to report.
    server.get(&a.bank, "/v1/reports/aum").await.problem(409);

    let day = first_day();
    let status = run_days(&server, day, day).await;
    assert_eq!(status["status"], "finished", "{status}");

    // The wraps hold only the cash contributed (no price, nothing bought): AUM = Σ cash.
    // The platform: Bank 300,000 + 200,000, Other 150,000; 650,000 over 3 wraps.
    let r = server.get(&platform, "/v1/reports/aum").await;
    let all = r.ok(200).clone();
    assert_eq!(all["as_of"], day.to_string());
    assert_eq!(
        groups(&all),
        vec![g("Bank", "500000", 2), g("Other", "150000", 1)]
    );
    assert_eq!(
        all["totals"],
        json!([{ "currency": "JPY", "wraps": 3, "aum": "650000" }])
    );

    // A distributor sees only its own book, whatever the grouping.
    let r = server.get(&a.bank, "/v1/reports/aum").await;
    assert_eq!(groups(r.ok(200)), vec![g("Bank", "500000", 2)]);
    let r = server
        .get(
            &a.bank,
            &format!("/v1/reports/aum?as_of={day}&group_by=agreement"),
        )
        .await;
    assert_eq!(
        groups(r.ok(200)),
        vec![
            g("Strategy BAL", "300000", 1),
            g("Strategy GROW", "200000", 1)
        ]
    );
    let r = server
        .get(&b.bank, "/v1/reports/aum?group_by=manager")
        .await;
    assert_eq!(groups(r.ok(200)), vec![g("Other AM", "150000", 1)]);
    // A manager sees the wraps on its strategies only.
    let r = server
        .get(&a.manager, "/v1/reports/aum?group_by=strategy")
        .await;
    let m = r.ok(200).clone();
    assert_eq!(
        groups(&m),
        vec![
            g("Strategy BAL", "300000", 1),
            g("Strategy GROW", "200000", 1)
        ]
    );
    assert_eq!(m["totals"][0]["aum"], "500000");
    let r = server
        .get(&b.manager, "/v1/reports/aum?group_by=distributor")
        .await;
    assert_eq!(groups(r.ok(200)), vec![g("Other", "150000", 1)]);

    // History: only finished dates are points.
    let next = day.succ_opt().unwrap();
    let r = server
        .get(
            &platform,
            &format!("/v1/reports/aum/history?from={day}&to={next}&group_by=strategy"),
        )
        .await;
    let h = r.ok(200);
    assert_eq!(h["points"].as_array().unwrap().len(), 1);
    assert_eq!(h["points"][0]["totals"][0]["aum"], "650000");

    // A date whose end of day has not finished, and bad parameters.
    server
        .get(&a.bank, &format!("/v1/reports/aum?as_of={next}"))
        .await
        .problem(409);
    for q in [
        "/v1/reports/aum?group_by=customer",
        "/v1/reports/aum?as_of=2026-13-01",
        "/v1/reports/aum?colour=red",
        "/v1/reports/aum/history?from=2026-01-01",
        "/v1/reports/aum/history?from=2026-02-01&to=2026-01-01",
        "/v1/reports/aum/history?from=2024-12-31&to=2026-01-01",
    ] {
        let r = server.get(&a.bank, q).await;
        r.problem(400);
    }
    server.stop().await;
}
on_each_backend!(aum_is_struck_at_end_of_day_and_scoped, aum);
