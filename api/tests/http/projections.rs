//! Projections through HTTP on both databases: the fee impact (worked example by hand, an
//! agreement's schedule, bad input, isolation) and a wrap's goal probability (reproducible,
//! agreeing with the closed form, the contribution needed, isolation).

use chrono::{Datelike, Months, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::common::TestServer;
use crate::customers::{counts, deposit, make_customer};
use crate::on_each_backend;
use crate::wraps::market;

async fn fee_impact(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let path = "/v1/projections/fee-impact";

    // By hand: 1,200,000, no growth, 1.2 % a year without tax = 0.1 % a month:
    // 1,200,000 × 0.999^12 = 1,185,678.9366 → 1,185,679; fees 14,321.06 → 14,321; the
    // cost is 1,200,000 − 1,185,679 = 14,321; TER = 0.001 × 12 = 0.012 exactly.
    let r = server
        .post(
            &m.bank,
            path,
            Some(json!({
                "initial_amount": "1200000", "years": 1, "gross_annual_return": "0",
                "fee_rates": ["0.012", "0"], "tax_rate": "0",
            })),
        )
        .await;
    let b = r.ok(200);
    assert_eq!(b["currency"], "JPY");
    let s = &b["scenarios"][0];
    assert_eq!(s["final_value_without_fees"], "1200000");
    assert_eq!(s["final_value_with_fees"], "1185679");
    assert_eq!(s["fees_paid"], "14321");
    assert_eq!(s["cumulative_cost"], "14321");
    assert_eq!(s["total_expense_ratio"], "0.012000");
    assert_eq!(s["years"][0]["contributed"], "1200000");
    // The zero rate costs nothing.
    assert_eq!(b["scenarios"][1]["cumulative_cost"], "0");

    // The agreement's schedule (flat 1.1 %) and its tax (10 %), for its distributor and its
    // manager alike.
    let body = json!({
        "initial_amount": "1000000", "monthly_contribution": "30000", "years": 20,
        "gross_annual_return": "0.05", "agreement_id": m.agreement_id,
    });
    let a = server.post(&m.bank, path, Some(body.clone())).await;
    let a = a.ok(200).clone();
    assert_eq!(a["tax_rate"], "0.10");
    assert_eq!(a["scenarios"][0]["management_fee"]["rate_annual"], "0.011");
    assert_eq!(a["scenarios"][0]["years"].as_array().unwrap().len(), 20);
    // 1,000,000 + 240 × 30,000 contributed.
    assert_eq!(a["scenarios"][0]["years"][19]["contributed"], "8200000");
    let by_manager = server.post(&m.manager, path, Some(body.clone())).await;
    assert_eq!(by_manager.ok(200), &a);
    // Another distributor does not see the agreement.
    let other = market(&server, "Other", 3).await;
    let r = server.post(&other.bank, path, Some(body)).await;
    r.problem(404);

    // Bad input: named, nothing written.
    let before = counts(&server).await;
    for (body, field) in [
        (
            json!({"initial_amount": "1000", "years": 1, "gross_annual_return": "0.05",
                   "fee_rates": ["0.01"], "agreement_id": m.agreement_id}),
            "fee_rates",
        ),
        (
            json!({"initial_amount": "1000", "years": 0, "gross_annual_return": "0.05", "fee_rates": ["0.01"]}),
            "years",
        ),
        (
            json!({"initial_amount": "1000", "years": 1, "gross_annual_return": "0.05", "fee_rates": ["0.01", "1.5"]}),
            "fee_rates/1",
        ),
        (
            json!({"initial_amount": "1000.5", "years": 1, "gross_annual_return": "0.05", "fee_rates": ["0.01"]}),
            "initial_amount",
        ),
        (
            json!({"initial_amount": "1000", "years": 1, "gross_annual_return": "0.05", "fee_rates": ["0.01"], "currency": "XXX"}),
            "currency",
        ),
    ] {
        let r = server.post(&m.bank, path, Some(body)).await;
        let p = r.problem(422);
        assert_eq!(p["errors"][0]["field"], field, "{}", r.text);
    }
    let r = server
        .post(
            &m.bank,
            path,
            Some(json!({"initial_amount": "1000", "years": 1})),
        )
        .await;
    let detail = r.problem(422)["detail"].as_str().unwrap();
    assert!(detail.contains("gross_annual_return"), "{detail}");
    assert_eq!(counts(&server).await, before);
    server.stop().await;
}
on_each_backend!(fee_impact_projection, fee_impact);

async fn goal(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-1", 3).await;
    deposit(&server, &m.bank, c, "2000000").await;
    let today = Utc::now().date_naive();
    let target = today.checked_add_months(Months::new(60)).unwrap();
    let target = target.with_day(1).unwrap();
    let r = server
        .post(
            &m.bank,
            &format!("/v1/customers/{c}/wraps"),
            Some(json!({
                "agreement_id": m.agreement_id,
                "goal": { "name": "House", "target_amount": "1200000", "target_date": target },
            })),
        )
        .await;
    let w: Uuid = r.ok(201)["id"].as_str().unwrap().parse().unwrap();
    server
        .post_idem(
            &m.bank,
            &format!("/v1/wraps/{w}/contributions"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": "1000000" }),
        )
        .await
        .ok(201);
    let path = format!("/v1/wraps/{w}/goal");

    let r = server.get(&m.bank, &path).await;
    let g = r.ok(200).clone();
    assert_eq!(g["current_value"], "1000000");
    assert_eq!(g["paths"], 10000);
    // The strategy's assumptions and the agreement's fee with tax: 0.011 × 1.1.
    assert_eq!(g["expected_return_annual"], "0.04");
    assert_eq!(g["fee_rate_annual"], "0.0121");
    assert_eq!(g["plans_counted"], 0);
    // The default seed is the strategy's (its id's halves folded: hi XOR lo), shared by all
    // its wraps, sent as a decimal string (it uses all 64 bits: above int64 and JSON's exact
    // integers); no end of day has run, so there is no end-of-day figure yet.
    let (hi, lo) = m.strategy_id.as_u64_pair();
    assert_eq!(g["seed"], (hi ^ lo).to_string());
    assert!(g["end_of_day"].is_null(), "{g}");
    let months = g["months"].as_u64().unwrap();
    assert!((59..=60).contains(&months), "{months}");
    assert_eq!(g["fan"].as_array().unwrap().len() as u64, months + 1);
    // Without plans the closed form is given, and the estimate agrees within 4 standard
    // errors (plus the 4-decimal rounding).
    let p: f64 = g["probability"].as_str().unwrap().parse().unwrap();
    let cf: f64 = g["closed_form_probability"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let se = (cf * (1.0 - cf) / 10_000.0).sqrt();
    assert!(
        (p - cf).abs() <= 4.0 * se + 1e-4,
        "MC {p} vs closed form {cf}"
    );
    assert!(p > 0.0 && p < 1.0, "{p}");
    // Reproducible: the same request answers the same; another seed differs.
    assert_eq!(server.get(&m.bank, &path).await.ok(200), &g);
    let other_seed = server.get(&m.bank, &format!("{path}?seed=7")).await;
    assert_ne!(other_seed.ok(200)["fan"], g["fan"]);
    assert_eq!(other_seed.ok(200)["seed"], "7");
    // Every u64 is a seed, above int64 too, and comes back digit for digit.
    for big in ["9223372036854775808", "18446744073709551615"] {
        let r = server.get(&m.bank, &format!("{path}?seed={big}")).await;
        assert_eq!(r.ok(200)["seed"], big);
    }

    // A monthly plan of 20,000 lifts it, and the closed form no longer applies.
    server
        .post(
            &m.bank,
            &format!("/v1/wraps/{w}/plans"),
            Some(json!({
                "kind": "contribution", "amount": "20000", "frequency": "monthly",
                "day_of_month": 10,
            })),
        )
        .await
        .ok(201);
    let r = server
        .get(&m.bank, &format!("{path}?target_probability=0.95"))
        .await;
    let with_plan = r.ok(200);
    assert_eq!(with_plan["plans_counted"], 1);
    assert!(with_plan.get("closed_form_probability").is_none());
    let p2: f64 = with_plan["probability"].as_str().unwrap().parse().unwrap();
    assert!(p2 > p, "{p2} > {p}");
    let need = &with_plan["needed_monthly_contribution"];
    assert_eq!(need["target_probability"], "0.95");
    assert!(need["amount"].is_string(), "{need}");

    // The manager of the strategy sees it; another distributor does not; a wrap without a
    // goal answers 409; bad parameters 400.
    server.get(&m.manager, &path).await.ok(200);
    let other = market(&server, "Other", 3).await;
    server.get(&other.bank, &path).await.problem(404);
    let r = server
        .post(
            &m.bank,
            &format!("/v1/customers/{c}/wraps"),
            Some(json!({ "agreement_id": m.agreement_id })),
        )
        .await;
    let no_goal = r.ok(201)["id"].as_str().unwrap().to_owned();
    server
        .get(&m.bank, &format!("/v1/wraps/{no_goal}/goal"))
        .await
        .problem(409);
    for q in [
        "paths=5",
        "target_probability=1.5",
        "seed=x",
        "seed=-1",
        "seed=18446744073709551616",
        "colour=red",
    ] {
        server
            .get(&m.bank, &format!("{path}?{q}"))
            .await
            .problem(400);
    }
    server.stop().await;
}
on_each_backend!(goal_probability, goal);
