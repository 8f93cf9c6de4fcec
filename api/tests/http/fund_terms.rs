//! Japanese investment trusts' terms and each holder's cost (issue 25), on both databases,
//! worked by hand: a redemption levy (信託財産留保額) deducted from two wraps' sales, the
//! books reconciled to the yen; the individual cost (個別元本) after two buys at different
//! prices and a sale, with the realised gain; isolation; bad input refused by field with
//! nothing written.
//!
//! Dates: Monday 2026-10-05 (day 0) to Wednesday 2026-10-07 (day 2), business days. The fund
//! settles T+0 and the wrap fee is 0, so no fee or reserve enters the figures.

use chrono::NaiveDate;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Res, TestServer};
use crate::customers::assert_books_balance;
use crate::eod::{rows, run_days};
use crate::eod_trading::{bal, book_named, funded_wrap, instrument, prices, step};
use crate::on_each_backend;

const A: &str = "JP90C000LVY1";

fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, 5 + n).unwrap()
}

async fn run_day(server: &TestServer, date: NaiveDate) -> Value {
    let s = run_days(server, date, date).await;
    assert_eq!(s["status"], "finished", "{s}");
    s
}

async fn count(server: &TestServer, table: &str) -> i64 {
    rows(server, &format!("SELECT COUNT(*) FROM {table}"), vec![]).await[0]
        .try_get_by_index::<i64>(0)
        .unwrap()
}

#[track_caller]
fn refused(r: &Res, field: &str) {
    let p = r.problem(422);
    assert!(
        p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == field),
        "{field} not named in {}",
        r.text
    );
}

fn line<'a>(report: &'a Value, asset: &str) -> &'a Value {
    report["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["asset"] == asset)
        .unwrap()
}

on_each_backend!(
    a_levy_and_the_cost_basis_worked_by_hand,
    a_levy_and_the_cost_basis_worked_by_hand
);
async fn a_levy_and_the_cost_basis_worked_by_hand(backend: &'static str) {
    let server = TestServer::start_on(backend, &day(0).to_string()).await;
    let platform = server.token(&server.platform).await;
    instrument(&server, A, "100").await;
    let b = book_named(&server, "Bank", &[(A, "1")], "0", "0").await;
    let t = b.bank_id;
    let (c1, w1) = funded_wrap(&server, &b, "C-1", "200000", Some("100000")).await;
    let (c2, w2) = funded_wrap(&server, &b, "C-2", "50000", Some("50000")).await;

    // Day 0 at ¥10,000 per 10,000 units: W1 buys 100,000 units for ¥100,000, W2 50,000 for
    // ¥50,000.
    prices(&server, day(0), &[(A, "10000")]).await;
    run_day(&server, day(0)).await;
    // Day 1 at ¥12,345: W1's second contribution of ¥50,000 buys floor(50,000 × 10,000 ÷
    // 12,345) = 40,502 units, which cost ceil(40,502 × 1.2345) = ceil(49,999.719) = ¥50,000.
    server
        .post_idem(
            &b.bank,
            &format!("/v1/wraps/{w1}/contributions"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": "50000" }),
        )
        .await
        .ok(201);
    prices(&server, day(1), &[(A, "12345")]).await;
    run_day(&server, day(1)).await;
    assert_eq!(
        bal(&server, t, &format!("wrap:{w1}:units:{A}")).await,
        140_502
    );
    assert_eq!(bal(&server, t, &format!("wrap:{w1}:cash")).await, 0);

    // W1's cost: 100,000 units at ¥10,000, then (100,000 × 10,000 + 50,000 × 10,000) ÷
    // 140,502 = 10,676.0046… → ¥10,677 per 10,000 units (rounded up).
    let r = server
        .get(&b.bank, &format!("/v1/customers/{c1}/cost-basis"))
        .await;
    let h = &r.ok(200)["holdings"][0];
    assert_eq!(h["instrument"], A, "{}", r.text);
    assert_eq!(h["units"], "140502");
    assert_eq!(h["cost_per_quote"], "10677");
    assert_eq!(h["quote_unit"], 10_000);
    // floor(140,502 × 10,677 ÷ 10,000) = floor(150,013.9854) = 150,013.
    assert_eq!(h["cost"], "150013");
    assert_eq!(h["realised_gain"], "0");

    // The levy: 0.3 % from day 2 (the open date; day 1 has run, so it is refused).
    let path = format!("/v1/instruments/{A}/fund-terms");
    let levy = |date: NaiveDate, rate: &str| json!({ "term": "redemption_levy", "effective_date": date, "rate": rate });
    let r = server
        .post(&platform, &path, Some(levy(day(2), "0.003")))
        .await;
    let set = r.ok(201);
    assert_eq!(set["rate"], "0.003", "{}", r.text);
    assert_eq!(set["term"], "redemption_levy");
    let r = server.get(&b.bank, &path).await;
    assert_eq!(
        r.ok(200)["terms"].as_array().unwrap().len(),
        1,
        "{}",
        r.text
    );

    // Day 2 at ¥13,000: W1 withdraws ¥30,000, W2 closes.
    prices(&server, day(2), &[(A, "13000")]).await;
    server
        .post_idem(
            &b.bank,
            &format!("/v1/wraps/{w1}/withdrawals"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": "30000" }),
        )
        .await
        .ok(202);
    server
        .post_idem(
            &b.bank,
            &format!("/v1/wraps/{w2}/close"),
            &Uuid::now_v7().to_string(),
            json!({}),
        )
        .await
        .ok(200);
    let s = run_day(&server, day(2)).await;
    // W1 must raise ¥30,000 after the levy: a sale worth ¥30,090 leaves 30,090 −
    // floor(90.27) = 30,000 (¥30,089 would leave 29,999), so it sells ceil(30,090 × 10,000 ÷
    // 13,000) = ceil(23,146.15) = 23,147 units. W2 sells all 50,000.
    // One block of 73,147 units fills for floor(73,147 × 1.3) = ¥95,091. Each wrap's value:
    // floor(23,147 × 1.3) = floor(30,091.1) = 30,091 and 50,000 × 1.3 = 65,000 (together
    // 95,091: no residue). Levies: floor(30,091 × 0.003) = floor(90.273) = 90 and
    // floor(65,000 × 0.003) = 195. Proceeds: 30,001 and 64,805.
    let alloc = step(&s, "allocation");
    assert_eq!(alloc["redemption_levy"], json!({ "JPY": 285 }), "{s}");
    assert_eq!(alloc["residual"], json!({}), "{s}");
    assert_eq!(alloc["cost_basis"]["sales"], 2, "{s}");
    let r = rows(
        &server,
        "SELECT units, amount, levy FROM trade_allocations WHERE wrap_id = ? AND business_date = ?",
        vec![w1.into(), day(2).into()],
    )
    .await;
    let got: (i64, i64, i64) = (
        r[0].try_get_by_index(0).unwrap(),
        r[0].try_get_by_index(1).unwrap(),
        r[0].try_get_by_index(2).unwrap(),
    );
    assert_eq!(got, (23_147, 30_001, 90));
    // W1 pays ¥30,000 and keeps ¥1; W2 pays its ¥64,805 and closes.
    assert_eq!(
        bal(&server, t, &format!("customer:{c1}:cash:JPY")).await,
        80_000
    );
    assert_eq!(bal(&server, t, &format!("wrap:{w1}:cash")).await, 1);
    assert_eq!(
        bal(&server, t, &format!("wrap:{w1}:units:{A}")).await,
        117_355
    );
    assert_eq!(
        bal(&server, t, &format!("customer:{c2}:cash:JPY")).await,
        64_805
    );
    assert_eq!(bal(&server, t, &format!("wrap:{w2}:cash")).await, 0);
    // The omnibus received the proceeds net of the levy: 250,000 deposited − 200,000 bought
    // + 30,001 + 64,805 = 144,806 = 80,000 + 1 + 64,805, to the yen.
    assert_eq!(bal(&server, t, "omnibus:JPY").await, 144_806);
    assert_eq!(bal(&server, t, &format!("omnibus:{A}")).await, 117_355);
    let r = server.get(&b.bank, "/v1/ledger/reconciliation").await;
    let rec = r.ok(200);
    assert_eq!(rec["reconciled"], true, "{rec}");
    assert_eq!(line(rec, "JPY")["omnibus"], "144806");
    assert_eq!(line(rec, "JPY")["difference"], "0");
    assert_eq!(line(rec, A)["difference"], "0");
    assert_books_balance(&server).await;

    // The sale's gain: cost 23,147 × 10,677 ÷ 10,000 = 24,714.0519 → ¥24,714; gain
    // 30,001 − 24,714 = ¥5,287. The cost per 10,000 units stays ¥10,677.
    let r = server
        .get(&b.bank, &format!("/v1/wraps/{w1}/cost-basis"))
        .await;
    let body = r.ok(200);
    let h = &body["holdings"][0];
    assert_eq!(h["units"], "117355", "{}", r.text);
    assert_eq!(h["cost_per_quote"], "10677");
    // floor(117,355 × 10,677 ÷ 10,000) = floor(125,299.9335) = 125,299.
    assert_eq!(h["cost"], "125299");
    assert_eq!(h["realised_gain"], "5287");
    let sale = &body["sales"][0];
    assert_eq!(sale["units"], "23147");
    assert_eq!(sale["proceeds"], "30001");
    assert_eq!(sale["levy"], "90");
    assert_eq!(sale["cost"], "24714");
    assert_eq!(sale["gain"], "5287");
    assert_eq!(sale["date"], day(2).to_string());
    // C-2: 50,000 units at ¥10,000 sold for ¥64,805: cost ¥50,000, gain ¥14,805; nothing
    // left, so its cost is reset.
    let r = server
        .get(&b.bank, &format!("/v1/customers/{c2}/cost-basis"))
        .await;
    let body = r.ok(200);
    assert_eq!(body["holdings"][0]["units"], "0", "{}", r.text);
    assert_eq!(body["holdings"][0]["realised_gain"], "14805");
    assert_eq!(body["sales"][0]["cost"], "50000");
    assert_eq!(body["sales"][0]["gain"], "14805");
    assert_eq!(body["sales"][0]["levy"], "195");
    assert_eq!(count(&server, "realised_gains").await, 2);

    // Running the finished date again changes nothing.
    let before = (
        count(&server, "realised_gains").await,
        bal(&server, t, "omnibus:JPY").await,
    );
    run_day(&server, day(2)).await;
    assert_eq!(
        (
            count(&server, "realised_gains").await,
            bal(&server, t, "omnibus:JPY").await
        ),
        before
    );
    server.stop().await;
}

on_each_backend!(cost_basis_is_isolated, cost_basis_is_isolated);
async fn cost_basis_is_isolated(backend: &'static str) {
    let server = TestServer::start_on(backend, &day(0).to_string()).await;
    instrument(&server, A, "100").await;
    let b = book_named(&server, "Bank", &[(A, "1")], "0", "0").await;
    let (c1, w1) = funded_wrap(&server, &b, "C-1", "100000", Some("100000")).await;
    prices(&server, day(0), &[(A, "10000")]).await;
    run_day(&server, day(0)).await;
    let r = server
        .get(&b.bank, &format!("/v1/wraps/{w1}/cost-basis"))
        .await;
    assert_eq!(
        r.ok(200)["holdings"][0]["cost_per_quote"],
        "10000",
        "{}",
        r.text
    );
    // Another distributor, a missing id: the same 404.
    let (_, other) = server.tenant_with_token("distributor", "Other").await;
    for path in [
        format!("/v1/wraps/{w1}/cost-basis"),
        format!("/v1/customers/{c1}/cost-basis"),
        format!("/v1/wraps/{}/cost-basis", Uuid::now_v7()),
        format!("/v1/customers/{}/cost-basis", Uuid::now_v7()),
    ] {
        let r = server.get(&other, &path).await;
        assert_eq!(r.problem(404)["title"], "Not Found", "{path}: {}", r.text);
    }
    // A customer is its distributor's only: the platform gets 404 too.
    let platform = server.token(&server.platform).await;
    let r = server
        .get(&platform, &format!("/v1/customers/{c1}/cost-basis"))
        .await;
    r.problem(404);
    server.stop().await;
}

on_each_backend!(
    bad_fund_terms_are_refused_by_field,
    bad_fund_terms_are_refused_by_field
);
async fn bad_fund_terms_are_refused_by_field(backend: &'static str) {
    let server = TestServer::start_on(backend, &day(0).to_string()).await;
    instrument(&server, A, "100").await;
    let platform = server.token(&server.platform).await;
    let path = format!("/v1/instruments/{A}/fund-terms");
    let body = |term: &str, date: &str, rate: &str| json!({ "term": term, "effective_date": date, "rate": rate });
    for (bad, field) in [
        (body("redemption_levy", "2026-10-06", "1.5"), "rate"),
        (body("redemption_levy", "2026-10-06", "-0.001"), "rate"),
        (body("redemption_levy", "2026-10-06", "0.0000001"), "rate"),
        (body("redemption_levy", "2026-10-06", "abc"), "rate"),
        (body("expense_ratio", "2026-10-06", "0.06"), "rate"),
        (body("exit_fee", "2026-10-06", "0.003"), "term"),
        (
            body("redemption_levy", "2026-13-01", "0.003"),
            "effective_date",
        ),
    ] {
        let r = server.post(&platform, &path, Some(bad.clone())).await;
        refused(&r, field);
    }
    // A date whose end of day has started.
    prices(&server, day(0), &[(A, "10000")]).await;
    run_day(&server, day(0)).await;
    let r = server
        .post(
            &platform,
            &path,
            Some(body("redemption_levy", "2026-10-05", "0.003")),
        )
        .await;
    refused(&r, "effective_date");
    // A distributor may not set it; an unknown instrument is 404.
    let (_, bank) = server.tenant_with_token("distributor", "Bank").await;
    let r = server
        .post(
            &bank,
            &path,
            Some(body("redemption_levy", "2026-10-06", "0.003")),
        )
        .await;
    r.problem(403);
    let r = server
        .post(
            &platform,
            "/v1/instruments/NOPE/fund-terms",
            Some(body("redemption_levy", "2026-10-06", "0.003")),
        )
        .await;
    r.problem(404);
    assert_eq!(
        count(&server, "fund_terms").await,
        0,
        "a refusal writes nothing"
    );
    // No audit record of a refused change.
    let n = rows(
        &server,
        "SELECT COUNT(*) FROM audit_log WHERE action = 'instrument.fund_term'",
        vec![],
    )
    .await[0]
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert_eq!(n, 0);
    // A good one, then the same date again replaces it.
    for rate in ["0.003", "0.002"] {
        let r = server
            .post(
                &platform,
                &path,
                Some(body("redemption_levy", "2026-10-06", rate)),
            )
            .await;
        assert_eq!(r.ok(201)["rate"], rate, "{}", r.text);
    }
    let r = server.get(&platform, &path).await;
    let terms = r.ok(200)["terms"].clone();
    assert_eq!(terms.as_array().unwrap().len(), 1, "{terms}");
    assert_eq!(terms[0]["rate"], "0.002");
    server.stop().await;
}

on_each_backend!(
    total_cost_is_shown_and_projected,
    total_cost_is_shown_and_projected
);
async fn total_cost_is_shown_and_projected(backend: &'static str) {
    const B: &str = "JP90C000LVY2";
    let server = TestServer::start_on(backend, &day(0).to_string()).await;
    let platform = server.token(&server.platform).await;
    instrument(&server, A, "100").await;
    instrument(&server, B, "100").await;
    // A model of 60 % A, 30 % B, 10 % cash; a flat fee of 1.1 % (tax 10 %).
    let b = book_named(&server, "Bank", &[(A, "0.6"), (B, "0.3")], "0.1", "0.011").await;
    for (code, rate) in [(A, "0.002"), (B, "0.0055")] {
        let r = server
            .post(
                &platform,
                &format!("/v1/instruments/{code}/fund-terms"),
                Some(json!({ "term": "expense_ratio", "effective_date": day(0), "rate": rate })),
            )
            .await;
        r.ok(201);
    }
    let r = server.get(&b.bank, "/v1/agreements").await;
    let agreement = r.ok(200)["items"][0].clone();
    let (agreement_id, strategy_id) = (
        agreement["id"].as_str().unwrap().to_owned(),
        agreement["strategy_id"].as_str().unwrap().to_owned(),
    );
    // 0.6 × 0.2 % + 0.3 × 0.55 % = 0.12 % + 0.165 % = 0.285 %.
    let r = server
        .get(
            &b.bank,
            &format!("/v1/strategies/{strategy_id}/versions/current"),
        )
        .await;
    let v = r.ok(200);
    assert_eq!(v["expense_ratio"], "0.00285", "{}", r.text);
    assert_eq!(v["weights"].as_array().unwrap().len(), 2, "{}", r.text);
    // The projection of the agreement: 1.1 % × 1.1 + 0.285 % = 1.495 % expected; over a
    // year without growth the costs taken are 1.495 % of the average value.
    let r = server
        .post(
            &b.bank,
            "/v1/projections/fee-impact",
            Some(json!({
                "initial_amount": "1000000",
                "years": 1,
                "gross_annual_return": "0",
                "agreement_id": agreement_id,
            })),
        )
        .await;
    let s = &r.ok(200)["scenarios"][0];
    assert_eq!(s["fund_expense_ratio"], "0.00285", "{}", r.text);
    assert_eq!(s["expected_total_cost"], "0.014950", "{}", r.text);
    assert_eq!(s["total_expense_ratio"], "0.014950", "{}", r.text);
    assert_ne!(s["fund_costs_paid"], "0");
    // A bad ratio in the request is named.
    let r = server
        .post(
            &b.bank,
            "/v1/projections/fee-impact",
            Some(json!({
                "initial_amount": "1000000",
                "years": 1,
                "gross_annual_return": "0",
                "fee_rates": ["0.011"],
                "fund_expense_ratio": "1.5",
            })),
        )
        .await;
    refused(&r, "fund_expense_ratio");
    server.stop().await;
}
