//! Statements (`GET /v1/wraps/{id}/statement`, `GET /v1/customers/{id}/statement`) on both
//! databases: a week of end of day worked out by hand (a contribution mid-period, price
//! moves, a sale for a withdrawal, daily fee accruals with their carries), every figure
//! asserted; the CSV parsed back to the same numbers; the customer's totals as the sums of
//! its wraps; isolation; bad requests.
//!
//! Every money movement is made by end of day (contribution and withdrawal plans), so each
//! is dated on the simulated date it happens (the API dates its own movements with today's
//! real date). The dates are a week in 2031 (Monday 10 to Friday 14 March, all business days;
//! no month end, so billing collects nothing).

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestServer;
use crate::customers::{deposit, make_customer};
use crate::eod::{rows, run_days};
use crate::on_each_backend;

const FUND: &str = "JP90C000STM1";

fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2031, 3, n).unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// A JSON decimal string as a Decimal.
fn num(v: &Value) -> Decimal {
    dec(v
        .as_str()
        .unwrap_or_else(|| panic!("not a decimal string: {v}")))
}

struct Book {
    bank: String,
    manager: String,
    agreement_id: Uuid,
}

/// A distributor and a manager; one fund (quote per 10,000 units); a strategy 90 % in it and
/// 10 % cash with a drift band of 0.5 (so nothing here rebalances on drift); an agreement
/// with a flat fee of 3.65 % a year (so a day's fee is NAV ÷ 10,000 before tax) and the
/// default 10 % tax, billed monthly.
async fn book(server: &TestServer) -> Book {
    let platform = server.token(&server.platform).await;
    server
        .post(
            &platform,
            "/v1/instruments",
            Some(json!({
                "code": FUND,
                "name": "Statement Fund",
                "kind": "investment_trust",
                "currency": "JPY",
                "unit_scale": 0,
                "quote_unit": 10000,
                "min_order_amount": "100",
                // Settles on the trade date: the worked example pays the withdrawal the
                // day its units are sold (settlement is tried in eod_trading.rs).
                "settlement_days": 0,
            })),
        )
        .await
        .ok(201);
    let (_, bank) = server.tenant_with_token("distributor", "Bank").await;
    let (manager_id, manager) = server.tenant_with_token("manager", "Bank AM").await;
    let r = server
        .post(
            &manager,
            "/v1/strategies",
            Some(json!({
                "code": "STM",
                "name": "Statement, balanced",
                "base_currency": "JPY",
                "risk_level": 3,
                "expected_return_annual": "0.04",
                "volatility_annual": "0.10",
                "drift_band_kind": "absolute",
                "drift_band": "0.5",
                "min_initial_investment": "10000",
            })),
        )
        .await;
    let strategy_id: Uuid = r.ok(201)["id"].as_str().unwrap().parse().unwrap();
    server
        .post(
            &manager,
            &format!("/v1/strategies/{strategy_id}/versions"),
            Some(json!({
                "effective_date": "2020-01-01",
                "cash_weight": "0.1",
                "weights": [{ "instrument": FUND, "weight": "0.9" }],
            })),
        )
        .await
        .ok(201);
    let r = server
        .post(
            &bank,
            "/v1/agreements",
            Some(json!({
                "manager_tenant_id": manager_id,
                "strategy_id": strategy_id,
                "terms": {
                    "effective_date": "2020-01-01",
                    "management_fee": { "kind": "flat", "rate_annual": "0.0365" },
                    "split": { "channel": "0.5", "manager": "0.4", "platform": "0.1" },
                    "billing_period": "monthly",
                },
            })),
        )
        .await;
    let agreement_id: Uuid = r.ok(201)["id"].as_str().unwrap().parse().unwrap();
    server
        .post(
            &manager,
            &format!("/v1/agreements/{agreement_id}/accept"),
            None,
        )
        .await
        .ok(200);
    Book {
        bank,
        manager,
        agreement_id,
    }
}

async fn open_wrap(server: &TestServer, b: &Book, customer: Uuid) -> Uuid {
    let r = server
        .post(
            &b.bank,
            &format!("/v1/customers/{customer}/wraps"),
            Some(json!({ "agreement_id": b.agreement_id })),
        )
        .await;
    r.ok(201)["id"].as_str().unwrap().parse().unwrap()
}

/// A plan that runs once, on `on` (end of day books it dated that day).
async fn plan_once(
    server: &TestServer,
    b: &Book,
    wrap: Uuid,
    kind: &str,
    amount: &str,
    on: NaiveDate,
) {
    server
        .post(
            &b.bank,
            &format!("/v1/wraps/{wrap}/plans"),
            Some(json!({
                "kind": kind,
                "amount": amount,
                "day_of_month": on.format("%d").to_string().parse::<i32>().unwrap(),
                "start_date": on,
                "end_date": on,
            })),
        )
        .await
        .ok(201);
}

/// The wrap's filled allocations: (date, side, units, amount), in date order.
async fn trades(server: &TestServer, wrap: Uuid) -> Vec<(NaiveDate, String, i64, i64)> {
    rows(
        server,
        "SELECT a.business_date, o.side, a.units, a.amount FROM trade_allocations a \
         JOIN trade_orders o ON o.tenant_id = a.tenant_id AND o.id = a.order_id \
         WHERE a.wrap_id = ? AND a.status IN ('filled', 'partially_filled') \
         ORDER BY a.business_date",
        vec![wrap.into()],
    )
    .await
    .iter()
    .map(|r| {
        (
            r.try_get_by_index(0).unwrap(),
            r.try_get_by_index(1).unwrap(),
            r.try_get_by_index(2).unwrap(),
            r.try_get_by_index(3).unwrap(),
        )
    })
    .collect()
}

async fn nav(server: &TestServer, wrap: Uuid, date: NaiveDate) -> i64 {
    let r = rows(
        server,
        "SELECT nav FROM wrap_snapshots WHERE wrap_id = ? AND business_date = ?",
        vec![wrap.into(), date.into()],
    )
    .await;
    r[0].try_get_by_index(0).unwrap()
}

/// Parses a statement CSV into header → value maps, one per line.
fn parse_csv(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

/// The money columns of the CSV and where the same figure is in the JSON.
const CSV_FIGURES: &[(&str, &[&str])] = &[
    ("opening_value", &["opening_value"]),
    ("contributions", &["contributions"]),
    ("withdrawals", &["withdrawals"]),
    ("management_fee", &["fees", "management_fee"]),
    ("performance_fee", &["fees", "performance_fee"]),
    ("tax", &["fees", "tax"]),
    ("fees", &["fees", "total"]),
    ("realised_gain", &["realised_gain"]),
    ("unrealised_gain_change", &["unrealised_gain_change"]),
    ("unexplained", &["check", "unexplained"]),
    ("investment_gain", &["investment_gain"]),
    ("closing_value", &["closing_value"]),
    ("fees_collected", &["fees_collected", "total"]),
];

fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| &v[*k])
}

fn assert_csv_matches(line: &std::collections::HashMap<String, String>, json: &Value) {
    for (col, path) in CSV_FIGURES {
        assert_eq!(
            dec(&line[*col]),
            num(at(json, path)),
            "CSV column {col} against the JSON"
        );
    }
}

async fn statement(server: &TestServer, token: &str, path: &str) -> Value {
    server.get(token, path).await.ok(200).clone()
}

// ---------------------------------------------------------------------------------------

on_each_backend!(
    statement_matches_the_hand_computation,
    statement_matches_the_hand_computation
);
async fn statement_matches_the_hand_computation(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let b = book(&server).await;
    let c = make_customer(&server, &b.bank, "C-001", 3).await;
    deposit(&server, &b.bank, c, "2000000").await;
    let w1 = open_wrap(&server, &b, c).await;
    let w2 = open_wrap(&server, &b, c).await;
    plan_once(&server, &b, w1, "contribution", "1000000", day(10)).await;
    plan_once(&server, &b, w2, "contribution", "200000", day(11)).await;
    plan_once(&server, &b, w1, "contribution", "500000", day(12)).await;
    plan_once(&server, &b, w1, "withdrawal", "300000", day(13)).await;
    let platform = server.token(&server.platform).await;
    let prices: Vec<Value> = [
        (10, "10000"),
        (11, "10000"),
        (12, "11000"),
        (13, "12000"),
        (14, "11500"),
    ]
    .iter()
    .map(|(d, p)| json!({ "instrument": FUND, "date": day(*d), "price": p }))
    .collect();
    server
        .post(&platform, "/v1/prices", Some(json!({ "prices": prices })))
        .await
        .ok(200);
    let s = run_days(&server, day(10), day(14)).await;
    assert_eq!(s["status"], "finished", "{s}");

    // The trades, by hand (rebalance keeps cash at 10 % of NAV; the simulated venue fills at
    // the day's price, units rounded down, cost rounded up; sales paid rounded down):
    // * 10th, wrap 1: NAV 1,000,000, cash target 100,000: buys 900,000 at 10,000 → 900,000
    //   units for 900,000.
    // * 11th, wrap 2: 200,000, target 20,000: 180,000 units for 180,000.
    // * 12th, wrap 1: cash 100,000 + 500,000; NAV 600,000 + 900,000 × 1.1 = 1,590,000;
    //   target 159,000: buys 441,000 at 11,000 → ⌊441,000 ÷ 1.1⌋ = 400,909 units costing
    //   ⌈400,909 × 1.1⌉ = ⌈440,999.9⌉ = 441,000.
    // * 13th, wrap 1: 300,000 asked; units 1,300,909 worth ⌊× 1.2⌋ = 1,561,090, NAV
    //   1,720,090; what is left, 1,420,090, keeps a fee reserve of ⌈1,420,090 × 0.0365 × 1.1
    //   × 45 ÷ 365⌉ = ⌈7,029.44…⌉ = 7,030; need 300,000 + 7,030 − 159,000 = 148,030: sells
    //   ⌈148,030 ÷ 1.2⌉ = 123,359 units, paid ⌊148,030.8⌋ = 148,030.
    assert_eq!(
        trades(&server, w1).await,
        vec![
            (day(10), "buy".to_owned(), 900_000, 900_000),
            (day(12), "buy".to_owned(), 400_909, 441_000),
            (day(13), "sell".to_owned(), 123_359, 148_030),
        ]
    );
    assert_eq!(
        trades(&server, w2).await,
        vec![(day(11), "buy".to_owned(), 180_000, 180_000)]
    );

    // Wrap 1 day by day. NAV = cash + ⌊units × price ÷ 10,000⌋ − fees owed; the day's fee
    // accrual (after valuation) is (carry + NAV × 0.0365) ÷ 365 rounded down, the rest
    // carried ×365; tax likewise on a tenth of the annual fee.
    // 10th: cash 100,000 + 900,000 = 1,000,000. Fee 36,500 ÷ 365 = 100, tax 10. Owed 110.
    // 11th: 1,000,000 − 110 = 999,890. Annual 36,495.985: fee ⌊÷ 365⌋ = 99, carry
    //       36,495.985 − 36,135 = 360.985; tax 3,649.5985 → 9, carry 364.5985. Owed 218.
    // 12th: cash 159,000 + ⌊1,300,909 × 1.1⌋ = 1,430,999 − 218 = 1,589,781. Annual
    //       58,027.0065 + 360.985 = 58,387.9915 → 159, carry 352.9915; tax 5,802.70065 +
    //       364.5985 = 6,167.29915 → 16, carry 327.29915. Owed 393.
    // 13th: cash 159,000 + 148,030 − 300,000 = 7,030; units 1,177,550 × 1.2 = 1,413,060;
    //       NAV 7,030 + 1,413,060 − 393 = 1,419,697. Annual 51,818.9405 + 352.9915 =
    //       52,171.932 → 142; tax 5,181.89405 + 327.29915 = 5,509.1932 → 15. Owed 550.
    // 14th: ⌊1,177,550 × 1.15⌋ = ⌊1,354,182.5⌋ = 1,354,182; NAV 7,030 + 1,354,182 − 550
    //       = 1,360,662.
    for (d, v) in [
        (10, 1_000_000),
        (11, 999_890),
        (12, 1_589_781),
        (13, 1_419_697),
        (14, 1_360_662),
    ] {
        assert_eq!(nav(&server, w1, day(d)).await, v, "wrap 1 NAV on the {d}th");
    }

    // The statement of wrap 1 for 11–14 March.
    let path = format!("/v1/wraps/{w1}/statement?from={}&to={}", day(11), day(14));
    let s1 = statement(&server, &b.bank, &path).await;
    assert_eq!(s1["wrap_id"], w1.to_string());
    assert_eq!(s1["customer_id"], c.to_string());
    assert_eq!(s1["currency"], "JPY");
    assert_eq!(s1["opening_date"], "2031-03-10");
    // Opening: the NAV at the end of the 10th; closing: at the end of the 14th.
    assert_eq!(num(&s1["opening_value"]), dec("1000000"));
    assert_eq!(num(&s1["closing_value"]), dec("1360662"));
    assert_eq!(num(&s1["contributions"]), dec("500000"));
    assert_eq!(num(&s1["withdrawals"]), dec("300000"));
    // Fees: the accruals of the 10th to the 13th, which the NAVs of the 11th to the 14th
    // deducted: 100 + 99 + 159 + 142 = 500, tax 10 + 9 + 16 + 15 = 50.
    assert_eq!(s1["fees_accrued_from"], "2031-03-10");
    assert_eq!(s1["fees_accrued_to"], "2031-03-13");
    assert_eq!(num(&s1["fees"]["management_fee"]), dec("500"));
    assert_eq!(num(&s1["fees"]["performance_fee"]), dec("0"));
    assert_eq!(num(&s1["fees"]["tax"]), dec("50"));
    assert_eq!(num(&s1["fees"]["total"]), dec("550"));
    // No month end in the period: nothing collected.
    assert_eq!(num(&s1["fees_collected"]["total"]), dec("0"));
    // Average cost: 900,000 + 441,000 = 1,341,000 for 1,300,909 units. The sale of 123,359
    // releases 1,341,000 × 123,359 ÷ 1,300,909 = 127,160.638… → 127,161; realised 148,030 −
    // 127,161 = 20,869; 1,341,000 − 127,161 = 1,213,839 carried.
    assert_eq!(num(&s1["realised_gain"]), dec("20869"));
    // Unrealised at the open: 900,000 units worth 900,000, cost 900,000: 0. At the close:
    // 1,354,182 − 1,213,839 = 140,343.
    assert_eq!(num(&s1["unrealised_gain_opening"]), dec("0"));
    assert_eq!(num(&s1["unrealised_gain_closing"]), dec("140343"));
    assert_eq!(num(&s1["unrealised_gain_change"]), dec("140343"));
    // The check: 1,360,662 − 1,000,000 = 360,662 = 500,000 − 300,000 − 550 + (20,869 +
    // 140,343 = 161,212).
    assert_eq!(num(&s1["investment_gain"]), dec("161212"));
    assert_eq!(num(&s1["check"]["value_change"]), dec("360662"));
    assert_eq!(num(&s1["check"]["flows_fees_and_gain"]), dec("360662"));
    assert_eq!(num(&s1["check"]["unexplained"]), dec("0"));
    assert_eq!(s1["check"]["balanced"], true);
    // The half yen valuation dropped at the close, and the holding line (exact).
    assert_eq!(num(&s1["valuation_rounding"]), dec("0.5"));
    let h = s1["holdings"].as_array().unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["instrument"], FUND);
    assert_eq!(num(&h[0]["units"]), dec("1177550"));
    assert_eq!(num(&h[0]["price"]), dec("11500"));
    assert_eq!(h[0]["price_date"], "2031-03-14");
    assert_eq!(num(&h[0]["value"]), dec("1354182.5"));
    assert_eq!(num(&h[0]["cost"]), dec("1213839"));
    assert_eq!(num(&h[0]["unrealised_gain"]), dec("140343.5"));
    // Time-weighted, flows at the end of the day (they trade at the day's price):
    //   11th 999,890 ÷ 1,000,000 − 1 = −0.00011
    //   12th (1,589,781 − 500,000) ÷ 999,890 − 1 = 0.08990088909780…  (the fund +10 %,
    //        the wrap 90 % in it)
    //   13th (1,419,697 + 300,000) ÷ 1,589,781 − 1 = 0.08171943179595…  (+9.1 %)
    //   14th 1,360,662 ÷ 1,419,697 − 1 = −0.04158281661509…             (−4.2 %)
    // chained: (1 − 0.00011)(1.08990…)(1.08171…)(0.95841…) − 1 = 0.1298179095 (10 places).
    let twr = num(&s1["time_weighted_return"]);
    assert_eq!(twr, dec("0.1298179095"));
    // … and the same figure as the returns endpoint over the same range.
    let r = server
        .get(
            &b.bank,
            &format!("/v1/wraps/{w1}/returns?from={}&to={}", day(11), day(14)),
        )
        .await;
    assert_eq!(
        num(&r.ok(200)["time_weighted"]["cumulative"]),
        twr,
        "the statement's TWR is the returns endpoint's"
    );

    // CSV: the same numbers, by `format` and by `Accept`.
    let text = server
        .send(
            reqwest::Method::GET,
            Some(&b.bank),
            &format!("{path}&format=csv"),
            &[],
            None,
        )
        .await;
    assert_eq!(text.status.as_u16(), 200, "{}", text.text);
    assert!(
        text.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"),
    );
    let lines = parse_csv(&text.text);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["line"], "wrap");
    assert_eq!(lines[0]["wrap_id"], w1.to_string());
    assert_csv_matches(&lines[0], &s1);
    assert_eq!(dec(&lines[0]["time_weighted_return"]), twr);
    assert_eq!(lines[0]["balanced"], "true");
    let accept = server
        .send(
            reqwest::Method::GET,
            Some(&b.bank),
            &path,
            &[("accept", "text/csv")],
            None,
        )
        .await;
    assert_eq!(
        accept.text, text.text,
        "Accept: text/csv gives the same CSV"
    );

    // Wrap 2 (a first contribution inside the period): opening 0 (its NAV on the 10th,
    // before any money); 11th 200,000 (fee 20, tax 2); 12th 20,000 + 198,000 − 22 =
    // 217,978 (annual 7,956.197 → 21, carry 291.197; tax 795.6197 → 2, carry 65.6197);
    // 13th 20,000 + 216,000 − 45 = 235,955 (8,612.3575 + 291.197 → 24; 861.23575 +
    // 65.6197 → 2); 14th 20,000 + 207,000 − 71 = 226,929. Fees 20 + 21 + 24 = 65, tax 6;
    // unrealised 207,000 − 180,000 = 27,000; 226,929 − 0 = 200,000 − 71 + 27,000.
    let s2 = statement(
        &server,
        &b.bank,
        &format!("/v1/wraps/{w2}/statement?from={}&to={}", day(11), day(14)),
    )
    .await;
    for (field, v) in [
        ("opening_value", "0"),
        ("closing_value", "226929"),
        ("contributions", "200000"),
        ("withdrawals", "0"),
        ("realised_gain", "0"),
        ("unrealised_gain_change", "27000"),
        ("investment_gain", "27000"),
    ] {
        assert_eq!(num(&s2[field]), dec(v), "wrap 2 {field}");
    }
    assert_eq!(num(&s2["fees"]["management_fee"]), dec("65"));
    assert_eq!(num(&s2["fees"]["tax"]), dec("6"));
    assert_eq!(s2["check"]["balanced"], true);

    // The customer's statement: both wraps, and totals that are their sums.
    let cpath = format!(
        "/v1/customers/{c}/statement?from={}&to={}",
        day(11),
        day(14)
    );
    let cs = statement(&server, &b.bank, &cpath).await;
    let wraps = cs["wraps"].as_array().unwrap();
    assert_eq!(wraps.len(), 2);
    let find = |id: Uuid| {
        wraps
            .iter()
            .find(|w| w["wrap_id"] == id.to_string())
            .unwrap()
    };
    assert_eq!(
        find(w1),
        &s1,
        "the customer's wrap 1 is the wrap's own statement"
    );
    assert_eq!(find(w2), &s2);
    let totals = cs["totals"].as_array().unwrap();
    assert_eq!(totals.len(), 1);
    let t = &totals[0];
    assert_eq!(t["currency"], "JPY");
    assert_eq!(t["wraps"], 2);
    for (_, path) in CSV_FIGURES {
        assert_eq!(
            num(at(t, path)),
            num(at(&s1, path)) + num(at(&s2, path)),
            "total {path:?} is the sum of the wraps"
        );
    }
    // By hand: 1,000,000 + 0 opening; 1,360,662 + 226,929 = 1,587,591 closing.
    assert_eq!(num(&t["opening_value"]), dec("1000000"));
    assert_eq!(num(&t["closing_value"]), dec("1587591"));
    assert_eq!(num(&t["fees"]["total"]), dec("621"));
    assert_eq!(t["check"]["balanced"], true);
    assert!(t.get("time_weighted_return").is_none(), "no total return");
    // Its CSV: a line per wrap, then the total, each the JSON's numbers.
    let text = server
        .send(
            reqwest::Method::GET,
            Some(&b.bank),
            &format!("{cpath}&format=csv"),
            &[],
            None,
        )
        .await;
    let lines = parse_csv(&text.text);
    assert_eq!(lines.len(), 3);
    for line in &lines[..2] {
        assert_eq!(line["line"], "wrap");
        let id: Uuid = line["wrap_id"].parse().unwrap();
        assert_csv_matches(line, find(id));
    }
    assert_eq!(lines[2]["line"], "total");
    assert_csv_matches(&lines[2], t);

    // The whole week from the wrap's first day: opened from nothing.
    let all = statement(
        &server,
        &b.bank,
        &format!("/v1/wraps/{w1}/statement?from={}&to={}", day(10), day(14)),
    )
    .await;
    // 1,360,662 = 0 + 1,500,000 − 300,000 − (fees of the 9th… 13th: the same 550) +
    // 161,212 (the 10th's trade was at the day's price: no gain of its own).
    assert_eq!(num(&all["opening_value"]), dec("0"));
    assert_eq!(num(&all["contributions"]), dec("1500000"));
    assert_eq!(num(&all["fees"]["total"]), dec("550"));
    assert_eq!(num(&all["investment_gain"]), dec("161212"));
    assert_eq!(all["check"]["balanced"], true);

    // The manager of the strategy sees the wrap's statement, without the customer.
    let m = statement(&server, &b.manager, &path).await;
    assert!(m.get("customer_id").is_none(), "{m}");
    assert_eq!(m["closing_value"], s1["closing_value"]);
    server.stop().await;
}

on_each_backend!(statements_are_isolated, statements_are_isolated);
async fn statements_are_isolated(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let b = book(&server).await;
    let c = make_customer(&server, &b.bank, "C-001", 3).await;
    deposit(&server, &b.bank, c, "100000").await;
    let w = open_wrap(&server, &b, c).await;
    run_days(&server, day(10), day(10)).await;
    let q = format!("from={}&to={}", day(10), day(10));
    let (_, other) = server.tenant_with_token("distributor", "Other Bank").await;
    let (_, stranger) = server.tenant_with_token("manager", "Other AM").await;
    for token in [&other, &stranger] {
        let r = server
            .get(token, &format!("/v1/wraps/{w}/statement?{q}"))
            .await;
        r.problem(404);
        let r = server
            .get(token, &format!("/v1/customers/{c}/statement?{q}"))
            .await;
        r.problem(404);
        // A foreign id with a bad query is still just not found.
        let r = server
            .get(token, &format!("/v1/wraps/{w}/statement?from=nope"))
            .await;
        r.problem(404);
    }
    // A missing id answers the same.
    let r = server
        .get(
            &b.bank,
            &format!("/v1/wraps/{}/statement?{q}", Uuid::now_v7()),
        )
        .await;
    r.problem(404);
    // The platform sees the wrap; only the distributor sees the customer.
    let platform = server.token(&server.platform).await;
    let s = server
        .get(&platform, &format!("/v1/wraps/{w}/statement?{q}"))
        .await;
    assert_eq!(s.ok(200)["wrap_id"], w.to_string());
    server
        .get(&platform, &format!("/v1/customers/{c}/statement?{q}"))
        .await
        .problem(404);
    server.stop().await;
}

on_each_backend!(
    bad_statement_requests_are_refused,
    bad_statement_requests_are_refused
);
async fn bad_statement_requests_are_refused(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let b = book(&server).await;
    let c = make_customer(&server, &b.bank, "C-001", 3).await;
    let w = open_wrap(&server, &b, c).await;
    run_days(&server, day(10), day(11)).await;
    for base in [
        format!("/v1/wraps/{w}/statement"),
        format!("/v1/customers/{c}/statement"),
    ] {
        for (query, field) in [
            ("to=2031-03-11", "from"),
            ("from=2031-03-10", "to"),
            ("from=2031-13-01&to=2031-03-11", "from"),
            ("from=2031-03-10&to=11-03-2031", "to"),
            ("from=2031-03-11&to=2031-03-10", "to"),
            ("from=2030-01-01&to=2031-03-11", "to"),
            ("from=2031-03-10&to=2031-03-11&format=xml", "format"),
            ("from=2031-03-10&to=2031-03-11&colour=red", "colour"),
        ] {
            let r = server.get(&b.bank, &format!("{base}?{query}")).await;
            let p = r.problem(400);
            assert_eq!(p["errors"][0]["field"], field, "{base}?{query}: {p}");
        }
        // The 12th has no finished end of day: nothing to close on.
        let r = server
            .get(&b.bank, &format!("{base}?from=2031-03-10&to=2031-03-12"))
            .await;
        let p = r.problem(409);
        assert!(p["detail"].as_str().unwrap().contains("2031-03-12"), "{p}");
        let r = server.get(&b.bank, &format!("{base}/x")).await;
        r.problem(404);
    }
    server.stop().await;
}
