//! Fees through end of day, on both databases: daily accrual (exact, carried), billing at
//! period end with the split, tax, tiers, a wrap short of cash, the performance fee's
//! high-water mark and its crystallisation when a wrap is liquidated, and the platform's
//! monthly invoice. Every figure is worked out by hand in
//! the comments; every day runs the `checks` step (trial balance, reconciliation with the
//! payables counted), so a day that did not reconcile would not finish.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestServer;
use crate::customers::{deposit, make_customer};
use crate::eod::{account, rows, run_days, snapshot};
use crate::on_each_backend;
use crate::wraps::{Market, market};

/// Funds whose minimum order (¥1,000,000,000) no wrap here reaches: the trading steps
/// (rebalance) skip every order in them, so these tests see fees alone.
const FUND: &str = "JP90C000CCC3";
const FUND_B: &str = "JP90C000DDD4";

/// Registers `code` as a JPY investment trust that the trading steps never trade here.
async fn seed_untradable(server: &TestServer, code: &str) {
    let platform = server.token(&server.platform).await;
    let r = server
        .post(
            &platform,
            "/v1/instruments",
            Some(json!({
                "code": code,
                "name": format!("Fund {code}"),
                "kind": "investment_trust",
                "currency": "JPY",
                "unit_scale": 0,
                "quote_unit": 10000,
                "min_order_amount": "1000000000",
            })),
        )
        .await;
    assert!(matches!(r.status.as_u16(), 201 | 409), "{}", r.text);
}

/// A strategy of the market's manager holding the two untradable funds (45 % each, 10 %
/// cash).
async fn untradable_strategy(server: &TestServer, m: &Market, code: &str) -> Uuid {
    strategy_of(server, m, code, "0.1", &[(FUND, "0.45"), (FUND_B, "0.45")]).await
}

/// A strategy of the market's manager on `weights` and `cash_weight`: no calendar rebalance,
/// an absolute drift band of 5 %.
async fn strategy_of(
    server: &TestServer,
    m: &Market,
    code: &str,
    cash_weight: &str,
    weights: &[(&str, &str)],
) -> Uuid {
    let weights: Vec<Value> = weights
        .iter()
        .map(|(i, w)| json!({ "instrument": i, "weight": w }))
        .collect();
    let r = server
        .post(
            &m.manager,
            "/v1/strategies",
            Some(json!({
                "code": code,
                "name": format!("Strategy {code}"),
                "base_currency": "JPY",
                "risk_level": 3,
                "expected_return_annual": "0.04",
                "volatility_annual": "0.10",
                "drift_band_kind": "absolute",
                "drift_band": "0.05",
                "min_initial_investment": "10000",
            })),
        )
        .await;
    let id: Uuid = r.ok(201)["id"].as_str().unwrap().parse().unwrap();
    server
        .post(
            &m.manager,
            &format!("/v1/strategies/{id}/versions"),
            Some(json!({
                "effective_date": "2020-01-01",
                "cash_weight": cash_weight,
                "weights": weights,
            })),
        )
        .await
        .ok(201);
    id
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// A new strategy of the market's manager, offered to its bank under `terms` (accepted).
async fn agreement_with(server: &TestServer, m: &Market, code: &str, terms: Value) -> Uuid {
    seed_untradable(server, FUND).await;
    seed_untradable(server, FUND_B).await;
    let strategy = untradable_strategy(server, m, code).await;
    agreement_on(server, m, strategy, terms).await
}

/// `strategy` offered to the market's bank under `terms` (accepted).
async fn agreement_on(server: &TestServer, m: &Market, strategy: Uuid, terms: Value) -> Uuid {
    let mut terms = terms;
    terms["effective_date"] = json!("2020-01-01");
    let r = server
        .post(
            &m.bank,
            "/v1/agreements",
            Some(json!({
                "manager_tenant_id": m.manager_id,
                "strategy_id": strategy,
                "terms": terms,
            })),
        )
        .await;
    let id: Uuid = r.ok(201)["id"].as_str().unwrap().parse().unwrap();
    server
        .post(&m.manager, &format!("/v1/agreements/{id}/accept"), None)
        .await
        .ok(200);
    id
}

/// Terms with no management fee and a 20 % performance fee crystallised as `crystallisation`
/// says (tax 10 %, the JPY default; its split 0.2 / 0.7 / 0.1), billed quarterly.
fn performance_terms(crystallisation: &str) -> Value {
    json!({
        "management_fee": { "kind": "flat", "rate_annual": "0" },
        "split": { "channel": "0.5", "manager": "0.4", "platform": "0.1" },
        "performance_fee": {
            "rate": "0.2", "high_water_mark": true, "crystallisation": crystallisation,
            "split": { "channel": "0.2", "manager": "0.7", "platform": "0.1" },
        },
        "billing_period": "quarterly",
    })
}

/// The standard terms (as `wraps::market`'s): flat 1.1 %, tax 10 % (the JPY default), split
/// 0.5 / 0.4 / 0.1, billed monthly; on the untradable strategy.
async fn standard_agreement(server: &TestServer, m: &Market) -> Uuid {
    agreement_with(
        server,
        m,
        "STD",
        json!({
            "management_fee": { "kind": "flat", "rate_annual": "0.011" },
            "split": { "channel": "0.5", "manager": "0.4", "platform": "0.1" },
            "billing_period": "monthly",
        }),
    )
    .await
}

async fn wrap_on(server: &TestServer, m: &Market, customer: Uuid, agreement: Uuid) -> Uuid {
    let r = server
        .post(
            &m.bank,
            &format!("/v1/customers/{customer}/wraps"),
            Some(json!({ "agreement_id": agreement })),
        )
        .await;
    r.ok(201)["id"].as_str().unwrap().parse().unwrap()
}

async fn contribute(server: &TestServer, m: &Market, wrap: Uuid, amount: &str) {
    server
        .post_idem(
            &m.bank,
            &format!("/v1/wraps/{wrap}/contributions"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": amount }),
        )
        .await
        .ok(201);
}

/// The signed balance (on its normal side) of the bank's account `code`; 0 when it does not
/// exist.
async fn balance(server: &TestServer, tenant: Uuid, code: &str) -> i64 {
    let r = rows(
        server,
        "SELECT CASE WHEN normal_side = 'credit' THEN credits_posted - debits_posted \
         ELSE debits_posted - credits_posted END FROM ledger_accounts \
         WHERE tenant_id = ? AND code = ?",
        vec![tenant.into(), code.to_owned().into()],
    )
    .await;
    r.first()
        .map_or(0, |r| r.try_get_by_index::<i64>(0).unwrap())
}

/// Posts what the trading steps or a dated contribution would: an entry of `kind` on `date`.
async fn post(
    books: &ledger::Ledger,
    tenant: Uuid,
    kind: &str,
    date: NaiveDate,
    postings: Vec<ledger::NewPosting>,
) {
    books
        .post_entry(ledger::NewEntry {
            tenant_id: tenant,
            idempotency_key: Uuid::now_v7().to_string(),
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

/// A contribution dated `date` (the API dates contributions today): customer cash → wrap.
async fn dated_contribution(
    server: &TestServer,
    books: &ledger::Ledger,
    tenant: Uuid,
    customer: Uuid,
    wrap: Uuid,
    date: NaiveDate,
    amount: &str,
) {
    let from = account(
        books,
        tenant,
        format!("customer:{customer}:cash:JPY"),
        ledger::Side::Credit,
        "JPY",
    )
    .await;
    let to = account(
        books,
        tenant,
        format!("wrap:{wrap}:cash"),
        ledger::Side::Credit,
        "JPY",
    )
    .await;
    let _ = server;
    post(
        books,
        tenant,
        "contribution",
        date,
        vec![
            ledger::NewPosting::debit(from.id, "JPY", dec(amount)),
            ledger::NewPosting::credit(to.id, "JPY", dec(amount)),
        ],
    )
    .await;
}

/// A buy as the trading steps book it: `yen` of the wrap's cash for `units` of `fund`.
async fn buy(books: &ledger::Ledger, tenant: Uuid, wrap: Uuid, fund: &str, yen: &str, units: &str) {
    let a = |code: String, side, asset: &'static str| account(books, tenant, code, side, asset);
    let cash = a(format!("wrap:{wrap}:cash"), ledger::Side::Credit, "JPY").await;
    let omnibus = a("omnibus:JPY".into(), ledger::Side::Debit, "JPY").await;
    let held = account(
        books,
        tenant,
        format!("wrap:{wrap}:units:{fund}"),
        ledger::Side::Credit,
        fund,
    )
    .await;
    let omnibus_units = account(
        books,
        tenant,
        format!("omnibus:{fund}"),
        ledger::Side::Debit,
        fund,
    )
    .await;
    post(
        books,
        tenant,
        "trade",
        day("2020-01-01"),
        vec![
            ledger::NewPosting::debit(cash.id, "JPY", dec(yen)),
            ledger::NewPosting::credit(omnibus.id, "JPY", dec(yen)),
            ledger::NewPosting::debit(omnibus_units.id, fund, dec(units)),
            ledger::NewPosting::credit(held.id, fund, dec(units)),
        ],
    )
    .await;
}

async fn prices(server: &TestServer, prices: Value) {
    let platform = server.token(&server.platform).await;
    server
        .post(&platform, "/v1/prices", Some(json!({ "prices": prices })))
        .await
        .ok(200);
}

/// `SELECT cols FROM table WHERE wrap_id = ? AND business_date = ?` as i64s (one row).
async fn row_of(server: &TestServer, sql: &str, wrap: Uuid, date: NaiveDate) -> Vec<i64> {
    let r = rows(server, sql, vec![wrap.into(), date.into()]).await;
    assert_eq!(r.len(), 1, "{sql} for {wrap} on {date}");
    let n = sql.split(" FROM ").next().unwrap().matches(',').count() + 1;
    (0..n)
        .map(|i| r[0].try_get_by_index::<i64>(i).unwrap())
        .collect()
}

/// The wrap's fee state: fee and tax owed, and the parts of them not posted to the ledger yet.
async fn owed_and_unposted(server: &TestServer, wrap: Uuid) -> [i64; 4] {
    let r = rows(
        server,
        "SELECT fee_owed, tax_owed, fee_unposted, tax_unposted FROM wrap_fee_state WHERE wrap_id = ?",
        vec![wrap.into()],
    )
    .await;
    std::array::from_fn(|i| r[0].try_get_by_index::<i64>(i).unwrap())
}

async fn finished(s: &Value) {
    assert_eq!(s["status"], "finished", "{s}");
    for step in s["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "done", "{step}");
    }
}

// ---------------------------------------------------------------------------------------

on_each_backend!(a_month_of_accrual_is_exact, a_month_of_accrual_is_exact);
async fn a_month_of_accrual_is_exact(backend: &'static str) {
    let server = TestServer::start(backend).await;
    // The standard terms: flat 1.1 %, tax 10 % (the JPY default), split 0.5 / 0.4 / 0.1,
    // billed monthly.
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-001", 3).await;
    deposit(&server, &m.bank, c, "1500000").await;
    let standard = standard_agreement(&server, &m).await;
    let w = wrap_on(&server, &m, c, standard).await;
    contribute(&server, &m, w, "1000000").await;
    let books = ledger::Ledger::new(server.db.clone());

    // 1–15 April: the wrap holds ¥1,000,000 in cash.
    let s = run_days(&server, day("2031-04-01"), day("2031-04-15")).await;
    finished(&s).await;
    // Day one, by hand: NAV 1,000,000 (nothing owed yet); 1,000,000 × 0.011 = 11,000 a year;
    // 11,000 ÷ 365 = 30.1369… → ¥30 posted, 11,000 − 30 × 365 = 50 carried (as 50/365 yen).
    // Tax: 1,100 a year ÷ 365 = 3.0136… → ¥3, 1,100 − 1,095 = 5 carried.
    let sql = "SELECT nav, fee_posted, tax_posted FROM fee_accruals WHERE wrap_id = ? AND business_date = ?";
    assert_eq!(
        row_of(&server, sql, w, day("2031-04-01")).await,
        [1_000_000, 30, 3]
    );
    let r = rows(
        &server,
        "SELECT annual_fee, fee_carry_x365, tax_carry_x365 FROM fee_accruals WHERE wrap_id = ? AND business_date = ?",
        vec![w.into(), day("2031-04-01").into()],
    )
    .await;
    let text = |i| dec(&r[0].try_get_by_index::<String>(i).unwrap());
    assert_eq!(
        (text(0), text(1), text(2)),
        (dec("11000"), dec("50"), dec("5"))
    );
    // Day two: NAV = 1,000,000 − 33 owed = 999,967 (valuation deducts fee and tax owed).
    // 999,967 × 0.011 = 10,999.637 a year; 50 + 10,999.637 = 11,049.637 = 30 × 365 + 99.637.
    assert_eq!(
        row_of(&server, sql, w, day("2031-04-02")).await,
        [999_967, 30, 3]
    );
    let (cash, units, nav, ..) = snapshot(&server, w, day("2031-04-02")).await;
    assert_eq!((cash, units, nav), (1_000_000, 0, 999_967));
    // Day eight: the carry passes a yen: ¥31.
    assert_eq!(
        row_of(&server, sql, w, day("2031-04-08")).await,
        [999_769, 31, 3]
    );
    // Mid-month the accrual is owed (the fee state; the NAV deducts it) but not posted yet:
    // the ledger gets it at the month end, in one entry.
    let owed = owed_and_unposted(&server, w).await;
    let accrued: Vec<i64> = rows(
        &server,
        "SELECT CAST(SUM(fee_posted) AS BIGINT), CAST(SUM(tax_posted) AS BIGINT) FROM fee_accruals WHERE wrap_id = ?",
        vec![w.into()],
    )
    .await
    .iter()
    .flat_map(|r| (0..2).map(|i| r.try_get_by_index::<i64>(i).unwrap()))
    .collect();
    assert_eq!(owed, [accrued[0], accrued[1], accrued[0], accrued[1]]);
    assert_eq!(
        balance(&server, m.bank_id, &format!("accrued:wrap:{w}")).await,
        0
    );

    // A contribution of ¥500,000 on 16 April.
    dated_contribution(
        &server,
        &books,
        m.bank_id,
        c,
        w,
        day("2031-04-16"),
        "500000",
    )
    .await;
    let s = run_days(&server, day("2031-04-16"), day("2031-04-30")).await;
    finished(&s).await;
    // 16 April: 1,500,000 − 496 owed (15 days of 30–31 + 3) = 1,499,504; fee ¥46, tax ¥4.
    assert_eq!(
        row_of(&server, sql, w, day("2031-04-16")).await,
        [1_499_504, 46, 4]
    );
    assert_eq!(snapshot(&server, w, day("2031-04-16")).await.3, 500_000);

    // The month: Σ NAV × 0.011 over the 30 days = 412,322.548 (the annual fees, listed in
    // fee_accruals); ÷ 365 = 1,129.6508… yen of fee. Posted: 1,129 = floor, with
    // 412,322.548 − 1,129 × 365 = 237.548 still carried (237.548 / 365 = ¥0.6508).
    // Tax: 41,232.2548 ÷ 365 = 112.965… → 112 posted, 352.2548 carried.
    let sums = rows(
        &server,
        "SELECT CAST(SUM(fee_posted) AS BIGINT), CAST(SUM(tax_posted) AS BIGINT), COUNT(*) FROM fee_accruals WHERE wrap_id = ?",
        vec![w.into()],
    )
    .await;
    let g = |i| sums[0].try_get_by_index::<i64>(i).unwrap();
    assert_eq!((g(0), g(1), g(2)), (1129, 112, 30));
    let annual: Vec<Decimal> = rows(
        &server,
        "SELECT annual_fee FROM fee_accruals WHERE wrap_id = ?",
        vec![w.into()],
    )
    .await
    .iter()
    .map(|r| dec(&r.try_get_by_index::<String>(0).unwrap()))
    .collect();
    assert_eq!(annual.iter().sum::<Decimal>(), dec("412322.548"));
    let st = rows(
        &server,
        "SELECT fee_carry_x365, tax_carry_x365, fee_owed, tax_owed FROM wrap_fee_state WHERE wrap_id = ?",
        vec![w.into()],
    )
    .await;
    assert_eq!(
        dec(&st[0].try_get_by_index::<String>(0).unwrap()),
        dec("237.548")
    );
    assert_eq!(
        dec(&st[0].try_get_by_index::<String>(1).unwrap()),
        dec("352.2548")
    );
    // Collected on 30 April (month end): all 1,129 + 112; nothing owed, the carry remains.
    assert_eq!(
        (
            st[0].try_get_by_index::<i64>(2).unwrap(),
            st[0].try_get_by_index::<i64>(3).unwrap()
        ),
        (0, 0)
    );
    // Split of 1,129 by 0.5 / 0.4 / 0.1: 564.5, 451.6, 112.9 → floors 564 + 451 + 112 =
    // 1,127; the two units left go to the largest remainders, platform (.9) and manager (.6).
    let sql = "SELECT fee_due, tax_due, fee_collected, tax_collected, channel, manager, platform, uncollected \
               FROM fee_collections WHERE wrap_id = ? AND business_date = ?";
    assert_eq!(
        row_of(&server, sql, w, day("2031-04-30")).await,
        [1129, 112, 1129, 112, 564, 452, 113, 0]
    );
    // The books: the wrap paid 1,241; the payables hold it; the accruals are cleared. The
    // month's accrual reached the ledger in one entry, on the month end.
    assert_eq!(
        balance(&server, m.bank_id, &format!("wrap:{w}:cash")).await,
        1_500_000 - 1241
    );
    let entries = rows(
        &server,
        "SELECT effective_date FROM ledger_entries WHERE tenant_id = ? AND kind = 'fee_accrual'",
        vec![m.bank_id.into()],
    )
    .await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].try_get_by_index::<NaiveDate>(0).unwrap(),
        day("2031-04-30")
    );
    assert_eq!(
        balance(&server, m.bank_id, &format!("accrued:wrap:{w}")).await,
        0
    );
    assert_eq!(balance(&server, m.bank_id, "accrued:fees:JPY").await, 0);
    assert_eq!(balance(&server, m.bank_id, "accrued:tax:JPY").await, 0);
    assert_eq!(balance(&server, m.bank_id, "payable:tax:JPY").await, 112);
    assert_eq!(
        balance(
            &server,
            m.bank_id,
            &format!("payable:channel:{}:JPY", m.bank_id)
        )
        .await,
        564
    );
    assert_eq!(
        balance(
            &server,
            m.bank_id,
            &format!("payable:manager:{}:JPY", m.manager_id)
        )
        .await,
        452
    );
    assert_eq!(
        balance(&server, m.bank_id, "payable:platform:JPY").await,
        113
    );
    // The reconciliation counts the payables with the wraps: unchanged by billing.
    let r = server.get(&m.bank, "/v1/ledger/reconciliation").await;
    let body = r.ok(200).to_string();
    assert!(body.contains("\"partners\":\"1241\""), "{body}");
    // 1 May: nothing owed, so NAV = cash again.
    let s = run_days(&server, day("2031-05-01"), day("2031-05-01")).await;
    finished(&s).await;
    assert_eq!(
        snapshot(&server, w, day("2031-05-01")).await.2,
        1_500_000 - 1241
    );
    server.stop().await;
}

on_each_backend!(uneven_split_and_tiers, uneven_split_and_tiers);
async fn uneven_split_and_tiers(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let tiered = agreement_with(
        &server,
        &m,
        "TIER",
        json!({
            "management_fee": { "kind": "tiered", "tiers": [
                { "up_to": "1000000", "rate_annual": "0.02" },
                { "up_to": null, "rate_annual": "0.01" },
            ] },
            "consumption_tax_rate": "0.08",
            "split": { "channel": "0.3333333333", "manager": "0.3333333333", "platform": "0.3333333334" },
            "billing_period": "monthly",
        }),
    )
    .await;
    let c = make_customer(&server, &m.bank, "C-001", 3).await;
    deposit(&server, &m.bank, c, "3000000").await;
    let w = wrap_on(&server, &m, c, tiered).await;
    contribute(&server, &m, w, "3000000").await;
    // The platform's monthly fee for the bank.
    let platform = server.token(&server.platform).await;
    server
        .put(
            &platform,
            &format!("/v1/tenants/{}/platform-fee", m.bank_id),
            json!({ "amount": "50000", "currency": "JPY", "effective_date": "2031-01-01" }),
        )
        .await
        .ok(200);

    // 31 January, a month end.
    let s = run_days(&server, day("2031-01-31"), day("2031-01-31")).await;
    finished(&s).await;
    // Blended: 2 % of the first 1,000,000 + 1 % of the other 2,000,000 = 20,000 + 20,000 =
    // 40,000 a year (not 1 % of all 3,000,000 = 30,000, nor 2 % = 60,000).
    // 40,000 ÷ 365 = 109.589… → ¥109 (39,785), 215 carried. Tax 8 %: 3,200 ÷ 365 = 8.767…
    // → ¥8 (2,920), 280 carried.
    let sql = "SELECT nav, fee_posted, tax_posted FROM fee_accruals WHERE wrap_id = ? AND business_date = ?";
    assert_eq!(
        row_of(&server, sql, w, day("2031-01-31")).await,
        [3_000_000, 109, 8]
    );
    // Split of 109 by thirds (0.3333333333, 0.3333333333, 0.3333333334): 36.3333333297,
    // 36.3333333297, 36.3333333406 → 36 each = 108; the unit left goes to the largest
    // remainder, the platform's: 36 + 36 + 37 = 109 exactly.
    let sql = "SELECT fee_due, tax_due, fee_collected, tax_collected, channel, manager, platform, uncollected \
               FROM fee_collections WHERE wrap_id = ? AND business_date = ?";
    assert_eq!(
        row_of(&server, sql, w, day("2031-01-31")).await,
        [109, 8, 109, 8, 36, 36, 37, 0]
    );
    assert_eq!(
        balance(&server, m.bank_id, &format!("wrap:{w}:cash")).await,
        3_000_000 - 117
    );
    assert_eq!(balance(&server, m.bank_id, "payable:tax:JPY").await, 8);
    assert_eq!(
        balance(&server, m.bank_id, "payable:platform:JPY").await,
        37
    );
    // The platform fee: one invoice for January, at the fee in effect.
    let inv = rows(
        &server,
        "SELECT amount, currency FROM platform_invoices WHERE tenant_id = ? AND period_end = ?",
        vec![m.bank_id.into(), day("2031-01-31").into()],
    )
    .await;
    assert_eq!(inv.len(), 1);
    assert_eq!(inv[0].try_get_by_index::<i64>(0).unwrap(), 50_000);
    // 1 February is no period end: accrued, not collected, no invoice.
    let s = run_days(&server, day("2031-02-01"), day("2031-02-01")).await;
    finished(&s).await;
    assert_eq!(server.count_rows("fee_collections").await, 1);
    assert_eq!(server.count_rows("platform_invoices").await, 1);
    server.stop().await;
}

on_each_backend!(cash_short_at_billing, cash_short_at_billing);
async fn cash_short_at_billing(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-001", 3).await;
    deposit(&server, &m.bank, c, "1001000").await;
    let standard = standard_agreement(&server, &m).await;
    let w = wrap_on(&server, &m, c, standard).await;
    contribute(&server, &m, w, "1000000").await;
    let books = ledger::Ledger::new(server.db.clone());
    // Invested but ¥20: 999,980 units at 10,000 per 10,000 units = ¥999,980.
    buy(&books, m.bank_id, w, FUND, "999980", "999980").await;
    prices(
        &server,
        json!([{ "instrument": FUND, "date": "2031-01-31", "price": "10000" }]),
    )
    .await;

    let s = run_days(&server, day("2031-01-31"), day("2031-01-31")).await;
    finished(&s).await;
    // NAV 20 + 999,980 = 1,000,000 → fee ¥30 and tax ¥3 (as in the month above); due 33 at
    // the month end, cash 20: tax 3 first, then 17 of the fee; 13 uncollected.
    // Split of 17: 8.5, 6.8, 1.7 → 8 + 6 + 1 = 15; two left: manager (.8), platform (.7).
    let sql = "SELECT fee_due, tax_due, fee_collected, tax_collected, channel, manager, platform, uncollected \
               FROM fee_collections WHERE wrap_id = ? AND business_date = ?";
    assert_eq!(
        row_of(&server, sql, w, day("2031-01-31")).await,
        [30, 3, 17, 3, 8, 7, 2, 13]
    );
    assert_eq!(
        balance(&server, m.bank_id, &format!("wrap:{w}:cash")).await,
        0
    );
    assert_eq!(
        balance(&server, m.bank_id, &format!("accrued:wrap:{w}")).await,
        13
    );

    // Cash arrives on 1 February (the rebalance step would sell units for it).
    dated_contribution(&server, &books, m.bank_id, c, w, day("2031-02-01"), "1000").await;
    let s = run_days(&server, day("2031-02-01"), day("2031-02-01")).await;
    finished(&s).await;
    // NAV = 1,000 + 999,980 − 13 still owed = 1,000,967. The arrears (fee 13) are collected
    // although 1 February is no period end: 6.5, 5.2, 1.3 → 6 + 5 + 1 = 12; one left, to the
    // largest remainder, the channel's (.5).
    let (cash, units, nav, ..) = snapshot(&server, w, day("2031-02-01")).await;
    assert_eq!((cash, units, nav), (1000, 999_980, 1_000_967));
    assert_eq!(
        row_of(&server, sql, w, day("2031-02-01")).await,
        [13, 0, 13, 0, 7, 5, 1, 0]
    );
    // The day's own accrual (1,000,967 × 0.011 = 11,010.637; + 50 carried = 11,060.637 → ¥30;
    // tax 1,101.0637 + 5 = 1,106.0637 → ¥3) stays owed until the February period end.
    let sql = "SELECT nav, fee_posted, tax_posted FROM fee_accruals WHERE wrap_id = ? AND business_date = ?";
    assert_eq!(
        row_of(&server, sql, w, day("2031-02-01")).await,
        [1_000_967, 30, 3]
    );
    assert_eq!(
        balance(&server, m.bank_id, &format!("wrap:{w}:cash")).await,
        1000 - 13
    );
    assert_eq!(
        balance(&server, m.bank_id, &format!("accrued:wrap:{w}")).await,
        33
    );
    server.stop().await;
}

on_each_backend!(
    high_water_mark_through_a_loss_and_a_recovery,
    high_water_mark_through_a_loss_and_a_recovery
);
async fn high_water_mark_through_a_loss_and_a_recovery(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    // No management fee, so the NAVs are the holdings; 20 % performance fee, tax 10 %.
    let perf = agreement_with(&server, &m, "PERF", performance_terms("yearly")).await;
    let c = make_customer(&server, &m.bank, "C-001", 3).await;
    deposit(&server, &m.bank, c, "2100000").await;
    let a = wrap_on(&server, &m, c, perf).await;
    let b = wrap_on(&server, &m, c, perf).await;
    contribute(&server, &m, a, "1000000").await;
    contribute(&server, &m, b, "1000000").await;
    let books = ledger::Ledger::new(server.db.clone());
    // Each: ¥100,000 cash and 900,000 units at 10,000 (¥900,000). A holds fund A, B fund B.
    buy(&books, m.bank_id, a, FUND, "900000", "900000").await;
    buy(&books, m.bank_id, b, FUND_B, "900000", "900000").await;
    prices(
        &server,
        json!([
            { "instrument": FUND, "date": "2031-12-31", "price": "10000" },
            { "instrument": FUND_B, "date": "2031-12-31", "price": "10000" },
            // A year later both lost 20 %.
            { "instrument": FUND, "date": "2032-12-31", "price": "8000" },
            { "instrument": FUND_B, "date": "2032-12-31", "price": "8000" },
            // Another year: A recovers part of it, B all and more.
            { "instrument": FUND, "date": "2033-12-31", "price": "9000" },
            { "instrument": FUND_B, "date": "2033-12-31", "price": "11000" },
        ]),
    )
    .await;
    let sql = "SELECT nav, hwm, hwm_flows, gain, fee, tax, new_hwm FROM performance_fees \
               WHERE wrap_id = ? AND business_date = ?";

    // 31 December 2031, the first day: the mark starts at the NAV, 1,000,000; no gain.
    let s = run_days(&server, day("2031-12-31"), day("2032-12-31")).await;
    finished(&s).await;
    for w in [a, b] {
        assert_eq!(
            row_of(&server, sql, w, day("2031-12-31")).await,
            [1_000_000, 1_000_000, 0, 0, 0, 0, 1_000_000]
        );
        // 2032: 100,000 + 900,000 × 0.8 = 820,000: a loss, no fee, the mark stays.
        assert_eq!(
            row_of(&server, sql, w, day("2032-12-31")).await,
            [820_000, 1_000_000, 0, -180_000, 0, 0, 1_000_000]
        );
    }
    // B gets ¥100,000 more in June 2033: the mark is adjusted by it (not a gain).
    run_days(&server, day("2033-01-01"), day("2033-06-14")).await;
    dated_contribution(
        &server,
        &books,
        m.bank_id,
        c,
        b,
        day("2033-06-15"),
        "100000",
    )
    .await;
    let s = run_days(&server, day("2033-06-15"), day("2033-12-31")).await;
    finished(&s).await;
    // A: 100,000 + 900,000 × 0.9 = 910,000: up 90,000 on the year, still 90,000 below the
    // mark: no fee until the loss is recovered.
    assert_eq!(
        row_of(&server, sql, a, day("2033-12-31")).await,
        [910_000, 1_000_000, 0, -90_000, 0, 0, 1_000_000]
    );
    // B: 200,000 + 900,000 × 1.1 = 1,190,000; mark 1,000,000 + 100,000 contributed =
    // 1,100,000; gain 90,000 (not the 270,000 gained on the year's low): fee 20 % = 18,000,
    // tax 1,800; the new mark is the NAV after them: 1,190,000 − 19,800 = 1,170,200.
    assert_eq!(
        row_of(&server, sql, b, day("2033-12-31")).await,
        [
            1_190_000, 1_000_000, 100_000, 90_000, 18_000, 1_800, 1_170_200
        ]
    );
    // Collected from B's cash with the performance split 0.2 / 0.7 / 0.1: 3,600, 12,600, 1,800.
    let sql = "SELECT fee_due, tax_due, fee_collected, tax_collected, channel, manager, platform, uncollected \
               FROM fee_collections WHERE wrap_id = ? AND business_date = ? AND kind = 'performance'";
    assert_eq!(
        row_of(&server, sql, b, day("2033-12-31")).await,
        [18_000, 1_800, 18_000, 1_800, 3_600, 12_600, 1_800, 0]
    );
    assert_eq!(
        balance(&server, m.bank_id, &format!("wrap:{b}:cash")).await,
        200_000 - 19_800
    );
    assert_eq!(balance(&server, m.bank_id, "payable:tax:JPY").await, 1_800);
    assert_eq!(server.count_rows("performance_fees").await, 6);
    server.stop().await;
}

on_each_backend!(
    a_liquidation_crystallises_the_performance_fee,
    a_liquidation_crystallises_the_performance_fee
);
async fn a_liquidation_crystallises_the_performance_fee(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    // One agreement crystallises yearly, the other only at a close.
    let yearly = agreement_with(&server, &m, "PERFY", performance_terms("yearly")).await;
    let at_close = agreement_with(&server, &m, "PERFC", performance_terms("at_close")).await;
    let c = make_customer(&server, &m.bank, "C-001", 3).await;
    deposit(&server, &m.bank, c, "4000000").await;
    // A (yearly) and B (at close) will be closed; C (yearly) will have everything withdrawn
    // and stay open; D (yearly) will have everything withdrawn on a 31 December.
    let a = wrap_on(&server, &m, c, yearly).await;
    let b = wrap_on(&server, &m, c, at_close).await;
    let cw = wrap_on(&server, &m, c, yearly).await;
    let dw = wrap_on(&server, &m, c, yearly).await;
    let books = ledger::Ledger::new(server.db.clone());
    for w in [a, b, cw, dw] {
        contribute(&server, &m, w, "1000000").await;
        // ¥100,000 cash and 900,000 units at 10,000 (¥900,000).
        buy(&books, m.bank_id, w, FUND, "900000", "900000").await;
    }
    prices(
        &server,
        json!([
            { "instrument": FUND, "date": "2031-12-30", "price": "10000" },
            { "instrument": FUND, "date": "2031-12-31", "price": "11000" },
            { "instrument": FUND, "date": "2032-03-02", "price": "12000" },
            { "instrument": FUND, "date": "2032-12-30", "price": "12000" },
        ]),
    )
    .await;
    let perf_sql = "SELECT nav, hwm, hwm_flows, gain, fee, tax, new_hwm FROM performance_fees \
               WHERE wrap_id = ? AND business_date = ?";
    let collected_sql = "SELECT fee_due, tax_due, fee_collected, tax_collected, channel, manager, \
               platform, uncollected FROM fee_collections \
               WHERE wrap_id = ? AND business_date = ? AND kind = 'performance'";
    let s = run_days(&server, day("2031-12-30"), day("2032-03-01")).await;
    finished(&s).await;
    // 31 December: 100,000 + 900,000 × 1.1 = 1,090,000 against the mark of 1,000,000 set on
    // the first day. Yearly: gain 90,000, fee 18,000, tax 1,800, collected from the cash;
    // the mark moves to 1,070,200. At close: nothing on 31 December.
    for w in [a, cw, dw] {
        assert_eq!(
            row_of(&server, perf_sql, w, day("2031-12-31")).await,
            [1_090_000, 1_000_000, 0, 90_000, 18_000, 1_800, 1_070_200]
        );
    }
    let evaluations = "SELECT fee FROM performance_fees WHERE wrap_id = ?";
    assert!(rows(&server, evaluations, vec![b.into()]).await.is_empty());

    for (w, path, body) in [
        (a, "close", json!({})),
        (b, "close", json!({})),
        (cw, "withdrawals", json!({ "all": true })),
    ] {
        let r = server
            .post_idem(
                &m.bank,
                &format!("/v1/wraps/{w}/{path}"),
                &Uuid::now_v7().to_string(),
                body,
            )
            .await;
        assert!(r.status.is_success(), "{}", r.text);
    }
    // 2 March: every unit is sold at 12,000 (900,000 × 1.2 = 1,080,000); the fund settles
    // T+1, so the money is paid out on 3 March, and the fee crystallises then.
    let s = run_days(&server, day("2032-03-02"), day("2032-03-03")).await;
    finished(&s).await;
    // A and C: 80,200 + 1,080,000 = 1,160,200 against the mark of 1,070,200: gain 90,000,
    // fee 18,000, tax 1,800; 1,140,400 paid out. B: 100,000 + 1,080,000 = 1,180,000
    // against 1,000,000: gain 180,000, fee 36,000, tax 3,600; 1,140,400 paid out too: the
    // same fee in all, crystallised once or twice.
    for w in [a, cw] {
        assert_eq!(
            row_of(&server, perf_sql, w, day("2032-03-03")).await,
            [1_160_200, 1_070_200, 0, 90_000, 18_000, 1_800, 1_140_400]
        );
        assert_eq!(
            row_of(&server, collected_sql, w, day("2032-03-03")).await,
            [18_000, 1_800, 18_000, 1_800, 3_600, 12_600, 1_800, 0]
        );
    }
    assert_eq!(
        row_of(&server, perf_sql, b, day("2032-03-03")).await,
        [1_180_000, 1_000_000, 0, 180_000, 36_000, 3_600, 1_140_400]
    );
    assert_eq!(
        row_of(&server, collected_sql, b, day("2032-03-03")).await,
        [36_000, 3_600, 36_000, 3_600, 7_200, 25_200, 3_600, 0]
    );
    assert_eq!(
        balance(&server, m.bank_id, &format!("customer:{c}:cash:JPY")).await,
        3 * 1_140_400
    );
    for w in [a, b, cw] {
        for code in [format!("wrap:{w}:cash"), format!("accrued:wrap:{w}")] {
            assert_eq!(balance(&server, m.bank_id, &code).await, 0, "{code}");
        }
    }
    // Tax: 1,800 three times on 31 December, then 1,800 + 3,600 + 1,800.
    assert_eq!(balance(&server, m.bank_id, "payable:tax:JPY").await, 12_600);
    // C stays open and empty. Its value that day is nil (the fee is not left in it): the
    // day's return is the fee, 1,140,400 ÷ 1,160,200 − 1.
    let sql = "SELECT nav, withdrawals FROM wrap_snapshots WHERE wrap_id = ? AND business_date = ?";
    assert_eq!(
        row_of(&server, sql, cw, day("2032-03-03")).await,
        [0, 1_140_400]
    );
    for (w, status, kind) in [
        (a, "closed", "close"),
        (b, "closed", "close"),
        (cw, "active", "withdrawal"),
    ] {
        let r = server.get(&m.bank, &format!("/v1/wraps/{w}")).await;
        assert_eq!(r.ok(200)["wrap"]["status"], status, "{}", r.text);
        // The customer sees what was paid, after the fee, and when.
        let r = server
            .get(&m.bank, &format!("/v1/wraps/{w}/movements"))
            .await;
        let list = r.ok(200);
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        assert_eq!(list[0]["kind"], kind);
        assert_eq!(list[0]["status"], "fulfilled");
        assert!(list[0].get("amount").is_none(), "{list}");
        assert_eq!(list[0]["paid"], "1140400");
        assert_eq!(list[0]["paid_on"], "2032-03-03");
    }
    // Its next 31 December finds no gain: the mark moved to what was paid out, and the
    // payout is a flow (mark 1,140,400, flows −1,140,400).
    let s = run_days(&server, day("2032-03-04"), day("2032-12-29")).await;
    finished(&s).await;
    // D: everything withdrawn, sold on 30 December and paid on 31 December (T+1), the
    // yearly date: it crystallises once, at the payout, like A (one row: a second would
    // break the key and stop the day).
    let r = server
        .post_idem(
            &m.bank,
            &format!("/v1/wraps/{dw}/withdrawals"),
            &Uuid::now_v7().to_string(),
            json!({ "all": true }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let s = run_days(&server, day("2032-12-30"), day("2032-12-31")).await;
    finished(&s).await;
    assert_eq!(
        row_of(&server, perf_sql, cw, day("2032-12-31")).await,
        [0, 1_140_400, -1_140_400, 0, 0, 0, 0]
    );
    assert_eq!(
        row_of(&server, perf_sql, dw, day("2032-12-31")).await,
        [1_160_200, 1_070_200, 0, 90_000, 18_000, 1_800, 1_140_400]
    );
    assert_eq!(
        balance(&server, m.bank_id, &format!("customer:{c}:cash:JPY")).await,
        4 * 1_140_400
    );
    server.stop().await;
}

/// A customer of the market's bank with a wrap on the standard terms holding 1,000,000 in
/// cash: the untradable funds are never bought, so its NAV is the cash less the fees owed.
async fn cash_wrap(server: &TestServer) -> (Market, Uuid, Uuid) {
    let m = market(server, "Bank", 3).await;
    let c = make_customer(server, &m.bank, "C-001", 3).await;
    deposit(server, &m.bank, c, "1000000").await;
    let standard = standard_agreement(server, &m).await;
    let w = wrap_on(server, &m, c, standard).await;
    contribute(server, &m, w, "1000000").await;
    (m, c, w)
}

on_each_backend!(
    a_close_pays_its_fees_before_the_customer,
    a_close_pays_its_fees_before_the_customer
);
async fn a_close_pays_its_fees_before_the_customer(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let (m, c, w) = cash_wrap(&server).await;
    let s = run_days(&server, day("2031-01-06"), day("2031-01-08")).await;
    finished(&s).await;
    // Three days at 1.1 % and tax 10 % (worked in `a_month_of_accrual_is_exact`'s terms):
    // NAV 1,000,000: 11,000 ÷ 365 → 30, carry 50; tax 1,100 ÷ 365 → 3, carry 5.
    // NAV 999,967: 10,999.637 + 50 → 30, carry 99.637; 1,099.9637 + 5 → 3, carry 9.9637.
    // NAV 999,934: 10,999.274 + 99.637 → 30, carry 148.911; 1,099.9274 + 9.9637 → 3.
    // Owed: 90 fee + 9 tax, not due before the month end, and so not posted yet (the ledger
    // gets it at the month end, or once something is due: the close below).
    assert_eq!(owed_and_unposted(&server, w).await, [90, 9, 90, 9]);
    assert_eq!(
        balance(&server, m.bank_id, &format!("accrued:wrap:{w}")).await,
        0
    );
    let r = server
        .post_idem(
            &m.bank,
            &format!("/v1/wraps/{w}/close"),
            &Uuid::now_v7().to_string(),
            json!({}),
        )
        .await;
    assert_eq!(r.ok(200)["status"], "closing", "{}", r.text);
    let s = run_days(&server, day("2031-01-09"), day("2031-01-09")).await;
    finished(&s).await;
    // The customer gets the cash less the 99 owed; billing collects the 99 the same date
    // although it is no period end: tax 9, fee 90 split 45 / 36 / 9.
    assert_eq!(
        balance(&server, m.bank_id, &format!("customer:{c}:cash:JPY")).await,
        1_000_000 - 99
    );
    let sql = "SELECT fee_due, tax_due, fee_collected, tax_collected, channel, manager, platform, uncollected \
               FROM fee_collections WHERE wrap_id = ? AND business_date = ?";
    assert_eq!(
        row_of(&server, sql, w, day("2031-01-09")).await,
        [90, 9, 90, 9, 45, 36, 9, 0]
    );
    for code in [format!("wrap:{w}:cash"), format!("accrued:wrap:{w}")] {
        assert_eq!(balance(&server, m.bank_id, &code).await, 0, "{code}");
    }
    assert_eq!(balance(&server, m.bank_id, "payable:tax:JPY").await, 9);
    // The 99 reached the ledger on the close's date, before billing collected it.
    let posted = rows(
        &server,
        "SELECT e.effective_date, p.amount FROM ledger_postings p JOIN ledger_entries e \
         ON e.tenant_id = p.tenant_id AND e.id = p.entry_id JOIN ledger_accounts a \
         ON a.tenant_id = p.tenant_id AND a.id = p.account_id \
         WHERE e.kind = 'fee_accrual' AND a.code = ?",
        vec![format!("accrued:wrap:{w}").into()],
    )
    .await;
    assert_eq!(posted.len(), 1);
    assert_eq!(
        (
            posted[0].try_get_by_index::<NaiveDate>(0).unwrap(),
            posted[0].try_get_by_index::<i64>(1).unwrap()
        ),
        (day("2031-01-09"), 99)
    );
    let r = server.get(&m.bank, &format!("/v1/wraps/{w}")).await;
    assert_eq!(r.ok(200)["wrap"]["status"], "closed", "{}", r.text);
    // Nothing is accrued on the closing date, and nothing is left to bill afterwards.
    assert_eq!(
        rows(
            &server,
            "SELECT nav FROM fee_accruals WHERE wrap_id = ? AND business_date >= ?",
            vec![w.into(), day("2031-01-09").into()],
        )
        .await
        .len(),
        0
    );
    let s = run_days(&server, day("2031-01-10"), day("2031-01-31")).await;
    finished(&s).await;
    assert_eq!(
        rows(
            &server,
            "SELECT fee_collected FROM fee_collections WHERE wrap_id = ? AND business_date > ?",
            vec![w.into(), day("2031-01-09").into()],
        )
        .await
        .len(),
        0
    );
    server.stop().await;
}

on_each_backend!(
    a_percentage_withdrawal_plan_takes_its_share_of_the_nav,
    a_percentage_withdrawal_plan_takes_its_share_of_the_nav
);
async fn a_percentage_withdrawal_plan_takes_its_share_of_the_nav(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let (m, c, w) = cash_wrap(&server).await;
    server
        .post(
            &m.bank,
            &format!("/v1/wraps/{w}/plans"),
            Some(json!({
                "kind": "withdrawal", "percentage": "0.1", "day_of_month": 9,
                "start_date": "2031-01-09",
            })),
        )
        .await
        .ok(201);
    // Three days of fees owed, 99 (as in `a_close_pays_its_fees_before_the_customer`).
    let s = run_days(&server, day("2031-01-06"), day("2031-01-09")).await;
    finished(&s).await;
    // On the 9th the NAV is 1,000,000 − 99 = 999,901: 10 % is 99,990.1 → 99,990, not the
    // 100,000 of the value before fees; it is paid the same date from the cash, the 99 owed
    // kept back.
    let r = rows(
        &server,
        "SELECT amount FROM plan_runs WHERE run_date = ?",
        vec![day("2031-01-09").into()],
    )
    .await;
    assert_eq!(r[0].try_get_by_index::<i64>(0).unwrap(), 99_990);
    assert_eq!(
        balance(&server, m.bank_id, &format!("customer:{c}:cash:JPY")).await,
        99_990
    );
    server.stop().await;
}

on_each_backend!(
    the_wrap_and_its_customer_show_the_nav,
    the_wrap_and_its_customer_show_the_nav
);
async fn the_wrap_and_its_customer_show_the_nav(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-001", 3).await;
    deposit(&server, &m.bank, c, "1500000").await;
    let standard = standard_agreement(&server, &m).await;
    let w = wrap_on(&server, &m, c, standard).await;
    contribute(&server, &m, w, "1000000").await;
    let s = run_days(&server, day("2031-04-01"), day("2031-04-02")).await;
    finished(&s).await;
    // Two days of fee and tax owed (¥33 a day: a_month_of_accrual_is_exact), not paid yet.
    let [fee, tax, ..] = owed_and_unposted(&server, w).await;
    let owed = fee + tax;
    assert_eq!(owed, 66);
    // The wrap's value is its NAV: cash less what it owes, as end of day values it; so are
    // what may be withdrawn and the customer's total (cash 500,000 + the wrap).
    let view = server.get(&m.bank, &format!("/v1/wraps/{w}")).await;
    let view = view.ok(200);
    assert_eq!(view["valuation"]["fees_owed"], "66", "{view}");
    assert_eq!(view["valuation"]["value"], "999934", "{view}");
    assert_eq!(view["available_to_withdraw"], "999934", "{view}");
    let customer = server.get(&m.bank, &format!("/v1/customers/{c}")).await;
    let customer = customer.ok(200);
    assert_eq!(customer["wraps"][0]["value"], "999934", "{customer}");
    assert_eq!(
        customer["total_value"],
        json!([{ "currency": "JPY", "amount": "1499934" }]),
        "{customer}"
    );
    server.stop().await;
}

/// The billing step's detail of end of day `date` (`GET /v1/operations/eod/{date}`).
async fn billing_detail(server: &TestServer, date: NaiveDate) -> Value {
    let platform = server.token(&server.platform).await;
    let r = server
        .get(&platform, &format!("/v1/operations/eod/{date}"))
        .await;
    crate::eod_trading::step(r.ok(200), "billing").clone()
}

/// What the wrap's fee state says is due now: fee, tax and performance fee and its tax.
async fn due_now(server: &TestServer, wrap: Uuid) -> i64 {
    let r = rows(
        server,
        "SELECT fee_due + tax_due + perf_due + perf_tax_due FROM wrap_fee_state WHERE wrap_id = ?",
        vec![wrap.into()],
    )
    .await;
    r[0].try_get_by_index::<i64>(0).unwrap()
}

/// A fund traded here (minimum order ¥100) whose trades settle two business days later.
const TRADED: &str = "JP90C000FEE1";

on_each_backend!(
    fees_due_sell_units_without_a_rebalance,
    fees_due_sell_units_without_a_rebalance
);
/// A wrap fully invested (the model is all in one fund, no cash weight) on a strategy with no
/// calendar rebalance and a band of 5 % that 1.1 % a year of fees never crosses: only the
/// first fee reserve is cash. Once it is spent, the fees due at a month end are raised by
/// the next business day's sale, which settles two business days later, when billing
/// collects it: after each of three month ends plus that lag nothing is due, the
/// `fee_collections` rows of the month end and the days after it collect all that was due,
/// and the units were sold by the `fees` trigger alone (no drift, no calendar rebalance).
async fn fees_due_sell_units_without_a_rebalance(backend: &'static str) {
    let server = TestServer::start(backend).await;
    crate::eod_trading::instrument_settling(&server, TRADED, "100", 2).await;
    let b = crate::eod_trading::book_named(&server, "Bank", &[(TRADED, "1")], "0", "0.011").await;
    let (_, w) =
        crate::eod_trading::funded_wrap(&server, &b, "C-001", "1000000", Some("1000000")).await;
    let cal = ledger::calendar::Calendar::japan();
    let d1 = crate::eod::first_business_day();
    crate::eod_trading::prices(&server, d1, &[(TRADED, "10000")]).await;
    let month_ends: Vec<NaiveDate> = d1
        .iter_days()
        .filter(|d| d.succ_opt().unwrap().month() != d.month())
        .take(3)
        .collect();
    let mut from = d1;
    let mut short_at_a_month_end = false;
    for end in month_ends {
        // The first business day after the month end sells; its proceeds settle two
        // business days later.
        let sold_on = cal.next_business_day(end).unwrap();
        let settled = cal.add_business_days(sold_on, 2).unwrap();
        let s = run_days(&server, from, settled).await;
        finished(&s).await;
        assert_eq!(due_now(&server, w).await, 0, "due after {settled}");
        assert_eq!(billing_detail(&server, settled).await["uncollected"], 0);
        // What became due at the month end was collected by the settlement date, and the
        // last row says nothing is left.
        let collections = rows(
            &server,
            "SELECT business_date, fee_due + tax_due, fee_collected + tax_collected, uncollected \
             FROM fee_collections WHERE wrap_id = ? AND kind = 'management' \
             AND business_date >= ? AND business_date <= ? ORDER BY business_date",
            vec![w.into(), end.into(), settled.into()],
        )
        .await;
        let col = |i: usize, n: usize| collections[i].try_get_by_index::<i64>(n).unwrap();
        assert_eq!(
            collections[0].try_get_by_index::<NaiveDate>(0).unwrap(),
            end
        );
        let due_at_end = col(0, 1);
        assert!(due_at_end > 0, "fees due at {end}");
        let collected: i64 = (0..collections.len()).map(|i| col(i, 2)).sum();
        assert_eq!(collected, due_at_end, "collected from {end} to {settled}");
        assert_eq!(col(collections.len() - 1, 3), 0);
        if col(0, 3) > 0 {
            short_at_a_month_end = true;
            // The cash was short: units were sold for it on the next business day.
            let sells = orders(&server, w, sold_on).await;
            assert!(
                sells
                    .iter()
                    .any(|o| o.1 == "sell" && o.4 == "filled" && o.3.unwrap() > 0),
                "{sells:?}"
            );
            assert_eq!(
                decision_trigger(&server, w, sold_on).await.as_deref(),
                Some("fees")
            );
        }
        from = settled.succ_opt().unwrap();
    }
    assert!(short_at_a_month_end, "the reserve never ran out");
    // Only the first investment (`cash`) and the fee sales traded: neither drift nor the
    // calendar did.
    let others = rows(
        &server,
        "SELECT trigger FROM rebalance_decisions WHERE wrap_id = ? AND trigger NOT IN ('cash', 'fees')",
        vec![w.into()],
    )
    .await;
    assert_eq!(others.len(), 0);
    // Everything posted as owed has been collected.
    assert_eq!(
        balance(&server, b.bank_id, &format!("accrued:wrap:{w}")).await,
        0
    );
    server.stop().await;
}

async fn orders(
    server: &TestServer,
    wrap: Uuid,
    date: NaiveDate,
) -> Vec<crate::eod_trading::OrderRow> {
    crate::eod_trading::orders(server, wrap, date).await
}

async fn decision_trigger(server: &TestServer, wrap: Uuid, date: NaiveDate) -> Option<String> {
    rows(
        server,
        "SELECT trigger FROM rebalance_decisions WHERE wrap_id = ? AND business_date = ?",
        vec![wrap.into(), date.into()],
    )
    .await
    .first()
    .map(|r| r.try_get_by_index::<String>(0).unwrap())
}

on_each_backend!(
    billing_reports_what_it_could_not_collect,
    billing_reports_what_it_could_not_collect
);
/// A wrap invested along its model in the untradable funds (half each, no cash weight) but
/// ¥20: the fees due at the month end are more than its cash, and the sales that would raise
/// the rest are below the funds' minimum order, so they are skipped. Billing's detail reports
/// what is due and not collected on every day after, weekends included, not only on the
/// period end; `fee_collections` keeps its rows for the days something was collected (and
/// the period end).
async fn billing_reports_what_it_could_not_collect(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-001", 3).await;
    deposit(&server, &m.bank, c, "1001000").await;
    seed_untradable(&server, FUND).await;
    seed_untradable(&server, FUND_B).await;
    let strategy = strategy_of(&server, &m, "HALF", "0", &[(FUND, "0.5"), (FUND_B, "0.5")]).await;
    let agreement = agreement_on(
        &server,
        &m,
        strategy,
        json!({
            "management_fee": { "kind": "flat", "rate_annual": "0.011" },
            "split": { "channel": "0.5", "manager": "0.4", "platform": "0.1" },
            "billing_period": "monthly",
        }),
    )
    .await;
    let w = wrap_on(&server, &m, c, agreement).await;
    contribute(&server, &m, w, "1000000").await;
    let books = ledger::Ledger::new(server.db.clone());
    buy(&books, m.bank_id, w, FUND, "499990", "499990").await;
    buy(&books, m.bank_id, w, FUND_B, "499990", "499990").await;
    prices(
        &server,
        json!([
            { "instrument": FUND, "date": "2031-01-31", "price": "10000" },
            { "instrument": FUND_B, "date": "2031-01-31", "price": "10000" },
        ]),
    )
    .await;

    // Friday 31 January 2031, a month end; then the weekend and Monday 3 February.
    let s = run_days(&server, day("2031-01-31"), day("2031-02-03")).await;
    finished(&s).await;
    // As in `cash_short_at_billing`: NAV 1,000,000, due 30 + 3 at the month end, cash 20
    // pays the tax and 17 of the fee; 13 is not collected.
    let sql = "SELECT fee_due, tax_due, fee_collected, tax_collected, uncollected \
               FROM fee_collections WHERE wrap_id = ? AND business_date = ?";
    assert_eq!(
        row_of(&server, sql, w, day("2031-01-31")).await,
        [30, 3, 17, 3, 13]
    );
    assert_eq!(
        billing_detail(&server, day("2031-01-31")).await["uncollected"],
        13
    );
    // Monday's rebalance sells for the 13 due and the next collection's reserve (the
    // agreement's 1.1 % and tax on the NAV less what is due, 999,967, for 45 days:
    // 1,491.73 → 1,492): 1,505 by the holdings' values, 752.5 each rounded up to 753 units,
    // each below the funds' minimum order of ¥1,000,000,000 and so skipped.
    assert_eq!(
        decision_trigger(&server, w, day("2031-02-03"))
            .await
            .as_deref(),
        Some("fees")
    );
    let sells = orders(&server, w, day("2031-02-03")).await;
    assert_eq!(sells.len(), 2, "{sells:?}");
    for o in &sells {
        assert_eq!(
            (o.1.as_str(), o.3, o.4.as_str()),
            ("sell", Some(753), "skipped")
        );
        assert!(o.5.as_deref().unwrap().contains("minimum order"), "{o:?}");
    }
    // Every day after the month end billing says so; no row is written when nothing was
    // collected.
    for d in ["2031-02-01", "2031-02-02", "2031-02-03"] {
        assert_eq!(
            billing_detail(&server, day(d)).await["uncollected"],
            13,
            "{d}"
        );
        assert_eq!(
            rows(
                &server,
                "SELECT uncollected FROM fee_collections WHERE wrap_id = ? AND business_date = ?",
                vec![w.into(), day(d).into()],
            )
            .await
            .len(),
            0
        );
    }
    assert_eq!(due_now(&server, w).await, 13);
    server.stop().await;
}
