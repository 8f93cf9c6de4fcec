//! End of day's `returns` step and `GET /v1/wraps/{id}/returns`, on both databases: daily
//! time-weighted returns with flows in and out worked out by hand, the chain-linked index,
//! XIRR over two ranges, isolation, and bad ranges.

use chrono::{Datelike, Days, NaiveDate, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestServer;
use crate::customers::{deposit, make_customer};
use crate::on_each_backend;
use crate::wraps::{Market, market, open_wrap};

const FUND: &str = "JP90C000AAA1";

/// The first date from today (Tokyo) whose day of month is at most 28 (as in eod.rs).
fn first_day() -> NaiveDate {
    let mut d = api::money::today(Utc::now());
    while d.day() > 28 {
        d = d + Days::new(1);
    }
    d
}

fn plus(d: NaiveDate, n: u64) -> NaiveDate {
    d + Days::new(n)
}

/// Runs `from..=to` through the API and waits until `to` has finished.
async fn run_days(server: &TestServer, from: NaiveDate, to: NaiveDate) {
    let platform = server.token(&server.platform).await;
    server
        .post(
            &platform,
            "/v1/operations/eod",
            Some(json!({ "date": from, "to": to })),
        )
        .await
        .ok(202);
    for _ in 0..600 {
        let r = server
            .get(&platform, &format!("/v1/operations/eod/{to}"))
            .await;
        let body = r.ok(200).clone();
        if body["status"] == "finished" {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            return;
        }
        assert_ne!(body["status"], "failed", "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("end of day to {to} did not finish");
}

async fn account(
    books: &ledger::Ledger,
    tenant: Uuid,
    code: String,
    side: ledger::Side,
    asset: &str,
) -> Uuid {
    if let Some(a) = books.account_by_code(tenant, &code).await.unwrap() {
        return a.id;
    }
    books
        .create_account(&ledger::NewAccount {
            tenant_id: tenant,
            code,
            asset: asset.to_owned(),
            normal_side: side,
            no_negative: side == ledger::Side::Credit,
            metadata: json!({}),
        })
        .await
        .unwrap()
        .id
}

/// One entry of `kind` on `date` (what the API or the trading steps book).
async fn post(
    books: &ledger::Ledger,
    m: &Market,
    key: String,
    kind: &str,
    date: NaiveDate,
    postings: Vec<ledger::NewPosting>,
) {
    books
        .post_entry(ledger::NewEntry {
            tenant_id: m.bank_id,
            idempotency_key: key,
            kind: kind.into(),
            effective_date: date,
            description: kind.into(),
            metadata: json!({}),
            postings,
            hold: None,
        })
        .await
        .unwrap();
}

/// A wrap with a contribution of 100,000 and a buy of 40,000 units for 50,000 on d1, a
/// contribution of 45,000 on d3 and a withdrawal of 20,000 on d4, each booked before its
/// day's end of day; prices 12,500, 12,510, 12,490 and 12,520 per 10,000 units on d1..d4.
async fn book(server: &TestServer, m: &Market) -> (Uuid, NaiveDate) {
    let c = make_customer(server, &m.bank, "C-001", 3).await;
    deposit(server, &m.bank, c, "200000").await;
    // On an agreement without a management fee, so the NAVs are cash + units exactly (the
    // fee's own arithmetic is tried in eod_fees.rs); one agreement per strategy.
    let strategy = crate::wraps::make_strategy(server, &m.manager, "NOFEE", 3).await;
    let r = server
        .post(
            &m.bank,
            "/v1/agreements",
            Some(json!({
                "manager_tenant_id": m.manager_id,
                "strategy_id": strategy,
                "terms": {
                    "effective_date": "2020-01-01",
                    "management_fee": { "kind": "flat", "rate_annual": "0" },
                    "split": { "channel": "0.5", "manager": "0.4", "platform": "0.1" },
                    "billing_period": "monthly",
                },
            })),
        )
        .await;
    let free: Uuid = r.ok(201)["id"].as_str().unwrap().parse().unwrap();
    server
        .post(&m.manager, &format!("/v1/agreements/{free}/accept"), None)
        .await
        .ok(200);
    let free = Market {
        bank_id: m.bank_id,
        bank: m.bank.clone(),
        manager_id: m.manager_id,
        manager: m.manager.clone(),
        strategy_id: strategy,
        agreement_id: free,
    };
    let w = open_wrap(server, &free, c).await;
    let books = ledger::Ledger::new(server.db.clone());
    let t = m.bank_id;
    let jpy = "JPY";
    let customer = account(
        &books,
        t,
        format!("customer:{c}:cash:JPY"),
        ledger::Side::Credit,
        jpy,
    )
    .await;
    let cash = account(
        &books,
        t,
        format!("wrap:{w}:cash"),
        ledger::Side::Credit,
        jpy,
    )
    .await;
    let units = account(
        &books,
        t,
        format!("wrap:{w}:units:{FUND}"),
        ledger::Side::Credit,
        FUND,
    )
    .await;
    let omnibus = account(&books, t, "omnibus:JPY".into(), ledger::Side::Debit, jpy).await;
    let omnibus_units = account(
        &books,
        t,
        format!("omnibus:{FUND}"),
        ledger::Side::Debit,
        FUND,
    )
    .await;
    let n = |s: &str| s.parse::<rust_decimal::Decimal>().unwrap();
    let d1 = first_day();
    let (d3, d4) = (plus(d1, 2), plus(d1, 3));
    use ledger::NewPosting as P;
    post(
        &books,
        m,
        format!("t:{w}:c1"),
        "contribution",
        d1,
        vec![
            P::debit(customer, jpy, n("100000")),
            P::credit(cash, jpy, n("100000")),
        ],
    )
    .await;
    post(
        &books,
        m,
        format!("t:{w}:buy"),
        "trade",
        d1,
        vec![
            P::debit(cash, jpy, n("50000")),
            P::credit(omnibus, jpy, n("50000")),
            P::debit(omnibus_units, FUND, n("40000")),
            P::credit(units, FUND, n("40000")),
        ],
    )
    .await;
    let platform = server.token(&server.platform).await;
    let prices: Vec<Value> = [12_500, 12_510, 12_490, 12_520]
        .iter()
        .enumerate()
        .map(|(i, p)| json!({ "instrument": FUND, "date": plus(d1, i as u64), "price": p.to_string() }))
        .collect();
    server
        .post(&platform, "/v1/prices", Some(json!({ "prices": prices })))
        .await
        .ok(200);
    // Valuation reads the balances as they are when it runs, so each day's entries are
    // booked before that day's end of day, as the API and the trading steps would.
    run_days(server, d1, plus(d1, 1)).await;
    post(
        &books,
        m,
        format!("t:{w}:c3"),
        "contribution",
        d3,
        vec![
            P::debit(customer, jpy, n("45000")),
            P::credit(cash, jpy, n("45000")),
        ],
    )
    .await;
    run_days(server, d3, d3).await;
    post(
        &books,
        m,
        format!("t:{w}:w4"),
        "withdrawal",
        d4,
        vec![
            P::debit(cash, jpy, n("20000")),
            P::credit(customer, jpy, n("20000")),
        ],
    )
    .await;
    run_days(server, d4, d4).await;
    (w, d1)
}

on_each_backend!(
    returns_with_flows_match_the_hand_computation,
    returns_with_flows_match_the_hand_computation
);
async fn returns_with_flows_match_the_hand_computation(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let (w, d1) = book(&server, &m).await;

    // NAV = cash + units × price ÷ 10,000, flows at the end of the day (they trade at the
    // day's price, after the day's move):
    // d1: cash 100,000 − 50,000 = 50,000; 40,000 × 12,500 ÷ 10,000 = 50,000; NAV 100,000.
    //     r1 = 0: the wrap's first snapshot starts its index            index 1
    // d2: 40,000 × 12,510 ÷ 10,000 = 50,040; NAV 100,040.
    //     r2 = 100,040 ÷ 100,000 − 1 = 0.0004                            index 1.0004
    // d3: cash 95,000; 40,000 × 12,490 ÷ 10,000 = 49,960; NAV 144,960.
    //     r3 = (144,960 − 45,000) ÷ 100,040 − 1 = −0.000799680127948820 (18 places): the
    //     units' −80 on the 100,040 exposed; index 1.0004 × (1 + r3) = 0.9996 exactly
    // d4: cash 75,000; 40,000 × 12,520 ÷ 10,000 = 50,080; NAV 125,080.
    //     r4 = (125,080 + 20,000) ÷ 144,960 − 1 = 0.000827814569536424 (+120 on 144,960)
    //     index 0.9996 × (1 + r4) = 1.000427483443708610                 → 1.0004274834
    let r = server.get(&m.bank, &format!("/v1/wraps/{w}/returns")).await;
    let body = r.ok(200).clone();
    assert_eq!(body["days"], 4, "{body}");
    assert_eq!(body["from"], json!(d1));
    assert_eq!(body["to"], json!(plus(d1, 3)));
    assert_eq!(body["cash_flow_timing"], "end_of_day");
    let col = |k: &str| -> Vec<String> {
        body["daily"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d[k].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        col("daily"),
        ["0", "0.0004", "-0.0007996801", "0.0008278146"],
        "{body}"
    );
    assert_eq!(
        col("cumulative_index"),
        ["1", "1.0004", "0.9996", "1.0004274834"]
    );
    assert_eq!(col("nav"), ["100000", "100040", "144960", "125080"]);
    assert_eq!(col("contributions"), ["100000", "0", "45000", "0"]);
    assert_eq!(col("withdrawals"), ["0", "0", "0", "20000"]);
    // TWR over the four days: (1.0004)(1 + r3)(1 + r4) − 1 = 0.0004274834…; four days are
    // not annualised.
    assert_eq!(body["time_weighted"]["cumulative"], "0.0004274834");
    assert_eq!(body["time_weighted"]["annualised"], Value::Null);
    // XIRR, flows from the investor's side, at day offsets from the end of the day before
    // d1 (end-of-day flows: d1's at 1): −100,000 at 1, −45,000 at 3, +20,000 and the
    // closing +125,080 at 4. The daily factor g solves −100,000 g³ − 45,000 g + 145,080 = 0,
    // and g³⁶⁵ − 1 = 0.0882934345 (8.8 % a year; solved by bisection with Python's decimal
    // module at 60 digits: 0.08829343453292301447…).
    assert_eq!(body["money_weighted"]["xirr"], "0.0882934345", "{body}");

    // d3..d4: starts from d2's NAV 100,040. TWR (1 + r3)(1 + r4) − 1 = 0.0000274725.
    // XIRR: −100,040 at 0, −45,000 at 1, +20,000 and +125,080 at 2:
    // −100,040 g² − 45,000 g + 145,080 = 0 → g³⁶⁵ − 1 = 0.0613732154 (Python: 0.06137321540…).
    let r = server
        .get(
            &m.bank,
            &format!(
                "/v1/wraps/{w}/returns?from={}&to={}",
                plus(d1, 2),
                plus(d1, 3)
            ),
        )
        .await;
    let body = r.ok(200).clone();
    assert_eq!(body["days"], 2, "{body}");
    assert_eq!(body["time_weighted"]["cumulative"], "0.0000274725");
    assert_eq!(body["money_weighted"]["xirr"], "0.0613732154");
    assert_eq!(body["daily"].as_array().unwrap().len(), 2);

    // A range with no returns: nothing to measure, and it says so.
    let r = server
        .get(
            &m.bank,
            &format!("/v1/wraps/{w}/returns?from={}", plus(d1, 30)),
        )
        .await;
    let body = r.ok(200).clone();
    assert_eq!(body["days"], 0);
    assert_eq!(body["money_weighted"]["xirr"], Value::Null);
    assert!(body["money_weighted"]["reason"].is_string());

    // The step stored one row per wrap and date, and said how many it did.
    assert_eq!(server.count_rows("wrap_returns").await, 4);
    let platform = server.token(&server.platform).await;
    let status = server
        .get(&platform, &format!("/v1/operations/eod/{}", plus(d1, 1)))
        .await;
    let steps = status.ok(200)["steps"].as_array().unwrap().clone();
    let returns = steps.iter().find(|s| s["step"] == "returns").unwrap();
    assert_eq!(returns["status"], "done");
    assert_eq!(returns["detail"]["wraps"], 1);
    server.stop().await;
}

on_each_backend!(returns_are_isolated, returns_are_isolated);
async fn returns_are_isolated(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let (w, _) = book(&server, &m).await;
    let path = format!("/v1/wraps/{w}/returns");
    // The manager of the wrap's strategy and the platform see it.
    server.get(&m.manager, &path).await.ok(200);
    let platform = server.token(&server.platform).await;
    server.get(&platform, &path).await.ok(200);
    // Another distributor and another manager: 404, like a wrap that does not exist.
    let other = market(&server, "Other", 3).await;
    let missing = server.get(&other.bank, &path).await;
    missing.problem(404);
    server.get(&other.manager, &path).await.problem(404);
    server
        .get(&m.bank, &format!("/v1/wraps/{}/returns", Uuid::now_v7()))
        .await
        .problem(404);
    server.stop().await;
}

on_each_backend!(bad_ranges_are_refused, bad_ranges_are_refused);
async fn bad_ranges_are_refused(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-002", 3).await;
    let w = open_wrap(&server, &m, c).await;
    for (query, field) in [
        ("from=2026-13-01", "from"),
        ("to=yesterday", "to"),
        ("from=2026-11-20&to=2026-11-19", "to"),
        ("from=2016-01-01&to=2026-11-19", "to"),
        ("since=2026-11-19", "since"),
    ] {
        let r = server
            .get(&m.bank, &format!("/v1/wraps/{w}/returns?{query}"))
            .await;
        let p = r.problem(400);
        assert_eq!(p["errors"][0]["field"], field, "{query}: {p}");
    }
    // A bad id is a 400 too, and a wrap with no returns yet answers an empty range.
    server
        .get(&m.bank, "/v1/wraps/not-a-uuid/returns")
        .await
        .problem(400);
    let body = server
        .get(&m.bank, &format!("/v1/wraps/{w}/returns"))
        .await
        .ok(200)
        .clone();
    assert_eq!(body["days"], 0);
    server.stop().await;
}
