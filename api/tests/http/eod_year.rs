//! A simulated year of end of day on both databases: two distributors, one manager, prices
//! moving every day, contributions, monthly plans and a withdrawal. Every day's `checks` step
//! (trial balance, reconciliation, no negative balance) must pass, or the day would not
//! finish. Then the year's fee-split report must reconcile with the ledger to the yen, its
//! CSV must parse back to the same numbers, each partner must see only its own lines, and the
//! platform's invoices and the AUM history must cover the year.

use std::time::Duration;

use chrono::{Datelike, Days, NaiveDate};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestServer;
use crate::customers::{deposit, make_customer};
use crate::eod::first_day;
use crate::on_each_backend;
use crate::wraps::{Market, market, open_wrap};

/// The fund of `wraps::make_strategy` (98 % of the model).
const FUND: &str = "JP90C000AAA1";

/// A deterministic price path: a slow rise with a wave, per 10,000 units.
fn price_on(i: u64) -> i64 {
    let wave = [0, 35, 60, 70, 60, 35, 0, -35, -60, -70, -60, -35];
    10_000 + i as i64 * 3 + wave[(i % 12) as usize]
}

async fn customer_with_wrap(
    server: &TestServer,
    m: &Market,
    r: &str,
    cash: &str,
    amount: &str,
) -> Uuid {
    let c = make_customer(server, &m.bank, r, 3).await;
    deposit(server, &m.bank, c, cash).await;
    let w = open_wrap(server, m, c).await;
    server
        .post_idem(
            &m.bank,
            &format!("/v1/wraps/{w}/contributions"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": amount }),
        )
        .await
        .ok(201);
    w
}

/// Runs `from..=to` through the API and waits (up to ten minutes) for `to`.
async fn run_year(server: &TestServer, from: NaiveDate, to: NaiveDate) -> Value {
    let platform = server.token(&server.platform).await;
    server
        .post(
            &platform,
            "/v1/operations/eod",
            Some(json!({ "date": from, "to": to })),
        )
        .await
        .ok(202);
    for _ in 0..6_000 {
        let token = server.token(&server.platform).await;
        let r = server
            .get(&token, &format!("/v1/operations/eod/{to}"))
            .await;
        let body = r.ok(200).clone();
        if body["status"] == "finished" || body["status"] == "failed" {
            return body;
        }
        // A failed earlier date stops the run before `to` starts.
        let next = body["next_date"].as_str().unwrap_or_default().to_owned();
        if !next.is_empty() {
            let r = server
                .get(&token, &format!("/v1/operations/eod/{next}"))
                .await;
            if r.ok(200)["status"] == "failed" {
                panic!("end of day failed on {next}: {}", r.text);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the year did not finish");
}

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap().parse().unwrap()
}

async fn a_year(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let platform = server.token(&server.platform).await;
    let a = market(&server, "Bank", 3).await;
    let b = market(&server, "Advisor", 3).await;
    let d1 = first_day();
    let end = d1 + Days::new(364);
    // The platform charges Bank ¥50,000 a month.
    server
        .put(
            &platform,
            &format!("/v1/tenants/{}/platform-fee", a.bank_id),
            json!({ "amount": "50000", "currency": "JPY", "effective_date": "2020-01-01" }),
        )
        .await
        .ok(200);
    // A year of prices, uploaded at once.
    let rows: Vec<Value> = (0..365)
        .map(|i| {
            json!({ "instrument": FUND, "date": d1 + Days::new(i), "price": price_on(i).to_string() })
        })
        .collect();
    server
        .post(&platform, "/v1/prices", Some(json!({ "prices": rows })))
        .await
        .ok(200);
    // Bank: three wraps, one with a monthly plan, one that withdraws; Advisor: one wrap.
    let w1 = customer_with_wrap(&server, &a, "A-1", "5000000", "3000000").await;
    let w2 = customer_with_wrap(&server, &a, "A-2", "2000000", "1000000").await;
    let w3 = customer_with_wrap(&server, &a, "A-3", "800000", "500000").await;
    let _w4 = customer_with_wrap(&server, &b, "B-1", "1500000", "1200000").await;
    server
        .post(
            &a.bank,
            &format!("/v1/wraps/{w2}/plans"),
            Some(json!({ "kind": "contribution", "amount": "30000", "day_of_month": d1.day().min(28), "start_date": d1 })),
        )
        .await
        .ok(201);
    server
        .post_idem(
            &a.bank,
            &format!("/v1/wraps/{w3}/withdrawals"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": "100000" }),
        )
        .await
        .ok(202);
    let _ = w1;

    let last = run_year(&server, d1, end).await;
    assert_eq!(last["status"], "finished", "{last}");

    // The year's fee split, as the platform sees it: reconciled with the ledger, every line's
    // parts summing to its fees.
    let path = format!("/v1/reports/fee-split?from={d1}&to={end}");
    let r = server.get(&platform, &path).await;
    let all = r.ok(200).clone();
    assert_eq!(all["reconciled"], true, "{all}");
    let lines = all["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "one line per agreement: {all}");
    for l in lines {
        let fees = dec(&l["management_fee"]) + dec(&l["performance_fee"]);
        assert!(fees > Decimal::ZERO, "{l}");
        assert_eq!(
            dec(&l["channel"]) + dec(&l["manager"]) + dec(&l["platform"]),
            fees,
            "{l}"
        );
        assert!(dec(&l["tax"]) > Decimal::ZERO);
        assert!(dec(&l["average_aum"]) > Decimal::ZERO);
    }
    for c in all["ledger_check"].as_array().unwrap() {
        assert_eq!(c["report"], c["ledger"], "{c}");
    }
    assert_eq!(all["ledger_check"].as_array().unwrap().len(), 4);

    // CSV, by either way of asking, parses back to the same numbers.
    let csv_text = server
        .get(&platform, &format!("{path}&format=csv"))
        .await
        .text;
    let csv_by_accept = server
        .send(
            reqwest::Method::GET,
            Some(&platform),
            &path,
            &[("accept", "text/csv")],
            None,
        )
        .await
        .text;
    assert_eq!(csv_text, csv_by_accept);
    let mut rows = csv_text.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    assert_eq!(header[0], "agreement_id");
    let parsed: Vec<Vec<&str>> = rows.map(|r| r.split(',').collect()).collect();
    assert_eq!(parsed.len(), lines.len());
    for row in &parsed {
        let l = lines
            .iter()
            .find(|l| l["agreement_id"] == row[0])
            .expect("a CSV row per JSON line");
        for (i, name) in header.iter().enumerate().skip(6) {
            let v = &l[*name];
            let json_value = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(row[i], json_value, "{name}");
        }
    }

    // Each partner sees only its own line, and its check covers what it may see.
    let r = server.get(&a.bank, &path).await;
    let mine = r.ok(200);
    assert_eq!(mine["lines"].as_array().unwrap().len(), 1);
    assert_eq!(mine["lines"][0]["agreement_id"], a.agreement_id.to_string());
    assert_eq!(mine["reconciled"], true, "{mine}");
    let r = server.get(&b.manager, &path).await;
    let theirs = r.ok(200);
    assert_eq!(theirs["lines"].as_array().unwrap().len(), 1);
    assert_eq!(
        theirs["lines"][0]["agreement_id"],
        b.agreement_id.to_string()
    );
    assert_eq!(theirs["ledger_check"].as_array().unwrap().len(), 1);
    assert_eq!(theirs["ledger_check"][0]["part"], "manager");
    assert_eq!(theirs["reconciled"], true);

    // Twelve month ends in the year: twelve invoices of ¥50,000 for Bank, none for Advisor.
    let r = server
        .get(
            &platform,
            &format!("/v1/reports/invoices?from={d1}&to={end}"),
        )
        .await;
    let inv = r.ok(200).as_array().unwrap().clone();
    assert_eq!(inv.len(), 12, "{inv:?}");
    assert!(
        inv.iter()
            .all(|i| i["amount"] == "50000" && i["distributor"] == "Bank")
    );
    let r = server
        .get(&b.bank, &format!("/v1/reports/invoices?from={d1}&to={end}"))
        .await;
    assert_eq!(r.ok(200), &json!([]));
    // A distributor sees its own, the same as the platform shows for it.
    let r = server
        .get(&a.bank, &format!("/v1/reports/invoices?from={d1}&to={end}"))
        .await;
    assert_eq!(r.ok(200).as_array().unwrap(), &inv);

    // AUM was struck every day of the year.
    let r = server
        .get(
            &a.manager,
            &format!("/v1/reports/aum/history?from={d1}&to={end}"),
        )
        .await;
    assert_eq!(r.ok(200)["points"].as_array().unwrap().len(), 365);
    server.stop().await;
}
on_each_backend!(a_simulated_year_reconciles_every_day, a_year);
