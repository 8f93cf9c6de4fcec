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
