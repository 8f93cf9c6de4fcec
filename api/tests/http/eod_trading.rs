//! The trading steps of end of day (rebalance, netting, execution, allocation) on both
//! databases, each worked out by hand: a first contribution invested along the model, buys
//! and sells that cancel, a partial fill split across three wraps, a withdrawal and a close,
//! an order below the minimum, drift inside and outside the band. Every day run here
//! finishes, so its `checks` step (trial balance, reconciliation, no negative balance)
//! passed after the trades.
//!
//! The dates are a fixed past week (Monday 2026-10-05 to Friday 2026-10-09, all business
//! days): the API values a wrap at the last price on or before today, so the prices of
//! those dates are the ones a withdrawal request is checked against.

use std::sync::Arc;

use chrono::NaiveDate;
use sea_orm::Value as SqlValue;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestServer;
use crate::customers::{deposit, make_customer};
use crate::eod::{rows, run_days, snapshot};
use crate::on_each_backend;

const A: &str = "JP90C000TRA1";
const B: &str = "JP90C000TRB1";

fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, 5 + n).unwrap()
}

/// A distributor, a manager, a strategy on `weights` (+ `cash_weight`) and an accepted
/// agreement with a flat `fee_rate`.
pub(crate) struct Book {
    pub(crate) bank_id: Uuid,
    pub(crate) bank: String,
    agreement_id: Uuid,
}

/// A JPY fund that settles on the trade date (T+0), so the worked examples here see each
/// trade's cash and units free at once; [`instrument_settling`] for another lag.
pub(crate) async fn instrument(server: &TestServer, code: &str, min_order: &str) {
    instrument_settling(server, code, min_order, 0).await;
}

pub(crate) async fn instrument_settling(
    server: &TestServer,
    code: &str,
    min_order: &str,
    days: u32,
) {
    let platform = server.token(&server.platform).await;
    server
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
                "min_order_amount": min_order,
                "settlement_days": days,
            })),
        )
        .await
        .ok(201);
}

async fn book(
    server: &TestServer,
    weights: &[(&str, &str)],
    cash_weight: &str,
    fee_rate: &str,
) -> Book {
    book_named(server, "Bank", weights, cash_weight, fee_rate).await
}

/// [`book`] with a distributor named `name` (and its manager `{name} AM`).
pub(crate) async fn book_named(
    server: &TestServer,
    name: &str,
    weights: &[(&str, &str)],
    cash_weight: &str,
    fee_rate: &str,
) -> Book {
    let (bank_id, bank) = server.tenant_with_token("distributor", name).await;
    let (manager_id, manager) = server
        .tenant_with_token("manager", &format!("{name} AM"))
        .await;
    let r = server
        .post(
            &manager,
            "/v1/strategies",
            Some(json!({
                "code": "TRD",
                "name": "Trading",
                "base_currency": "JPY",
                "risk_level": 3,
                "expected_return_annual": "0.04",
                "volatility_annual": "0.10",
                "drift_band_kind": "absolute",
                "drift_band": "0.05",
                "cooldown_days": 5,
                "min_initial_investment": "1000",
            })),
        )
        .await;
    let strategy_id: Uuid = r.ok(201)["id"].as_str().unwrap().parse().unwrap();
    let weights: Vec<Value> = weights
        .iter()
        .map(|(i, w)| json!({ "instrument": i, "weight": w }))
        .collect();
    server
        .post(
            &manager,
            &format!("/v1/strategies/{strategy_id}/versions"),
            Some(json!({ "effective_date": "2020-01-01", "cash_weight": cash_weight, "weights": weights })),
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
                    "management_fee": { "kind": "flat", "rate_annual": fee_rate },
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
        bank_id,
        bank,
        agreement_id,
    }
}

/// A customer with `cash` deposited and a wrap funded with `contributed` (none: left open).
pub(crate) async fn funded_wrap(
    server: &TestServer,
    b: &Book,
    customer_ref: &str,
    cash: &str,
    contributed: Option<&str>,
) -> (Uuid, Uuid) {
    let c = make_customer(server, &b.bank, customer_ref, 3).await;
    deposit(server, &b.bank, c, cash).await;
    let r = server
        .post(
            &b.bank,
            &format!("/v1/customers/{c}/wraps"),
            Some(json!({ "agreement_id": b.agreement_id })),
        )
        .await;
    let w: Uuid = r.ok(201)["id"].as_str().unwrap().parse().unwrap();
    if let Some(amount) = contributed {
        contribute(server, b, w, amount).await;
    }
    (c, w)
}

async fn contribute(server: &TestServer, b: &Book, w: Uuid, amount: &str) {
    server
        .post_idem(
            &b.bank,
            &format!("/v1/wraps/{w}/contributions"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": amount }),
        )
        .await
        .ok(201);
}

pub(crate) async fn prices(server: &TestServer, date: NaiveDate, list: &[(&str, &str)]) {
    let platform = server.token(&server.platform).await;
    let prices: Vec<Value> = list
        .iter()
        .map(|(i, p)| json!({ "instrument": i, "date": date, "price": p }))
        .collect();
    server
        .post(&platform, "/v1/prices", Some(json!({ "prices": prices })))
        .await
        .ok(200);
}

/// Runs `date` through the API; it must finish (so its checks passed). Returns the status.
async fn run_day(server: &TestServer, date: NaiveDate) -> Value {
    let s = run_days(server, date, date).await;
    assert_eq!(s["status"], "finished", "{s}");
    s
}

pub(crate) fn step<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .map(|s| &s["detail"])
        .unwrap()
}

/// The balance of account `code` of `tenant` on its normal side (0 when it does not exist).
pub(crate) async fn bal(server: &TestServer, tenant: Uuid, code: &str) -> i64 {
    let r = rows(
        server,
        "SELECT CASE WHEN normal_side = 'credit' THEN credits_posted - debits_posted \
         ELSE debits_posted - credits_posted END FROM ledger_accounts WHERE tenant_id = ? AND code = ?",
        vec![tenant.into(), code.into()],
    )
    .await;
    r.first()
        .map_or(0, |r| r.try_get_by_index::<i64>(0).unwrap())
}

/// (instrument, side, amount, units, status, reason) of an order.
pub(crate) type OrderRow = (
    String,
    String,
    Option<i64>,
    Option<i64>,
    String,
    Option<String>,
);

/// A wrap's orders on `date`.
pub(crate) async fn orders(server: &TestServer, wrap: Uuid, date: NaiveDate) -> Vec<OrderRow> {
    rows(
        server,
        "SELECT instrument, side, amount, units, status, reason FROM trade_orders \
         WHERE wrap_id = ? AND business_date = ? ORDER BY instrument, side",
        vec![wrap.into(), date.into()],
    )
    .await
    .iter()
    .map(|r| {
        (
            r.try_get_by_index(0).unwrap(),
            r.try_get_by_index(1).unwrap(),
            r.try_get_by_index(2).unwrap(),
            r.try_get_by_index(3).unwrap(),
            r.try_get_by_index(4).unwrap(),
            r.try_get_by_index(5).unwrap(),
        )
    })
    .collect()
}

async fn trigger(server: &TestServer, wrap: Uuid, date: NaiveDate) -> Option<String> {
    rows(
        server,
        "SELECT trigger FROM rebalance_decisions WHERE wrap_id = ? AND business_date = ?",
        vec![wrap.into(), date.into()],
    )
    .await
    .first()
    .map(|r| r.try_get_by_index::<String>(0).unwrap())
}

async fn count(server: &TestServer, sql: &str, values: Vec<SqlValue>) -> i64 {
    rows(server, sql, values).await[0]
        .try_get_by_index::<i64>(0)
        .unwrap()
}

pub(crate) fn buy(instrument: &str, amount: i64, status: &str) -> OrderRow {
    (
        instrument.into(),
        "buy".into(),
        Some(amount),
        None,
        status.into(),
        None,
    )
}

fn sell(instrument: &str, units: i64, status: &str) -> OrderRow {
    (
        instrument.into(),
        "sell".into(),
        None,
        Some(units),
        status.into(),
        None,
    )
}

// ---------------------------------------------------------------------------------------

on_each_backend!(
    a_first_contribution_is_invested_along_the_model,
    a_first_contribution_is_invested_along_the_model
);
async fn a_first_contribution_is_invested_along_the_model(backend: &'static str) {
    // The first date run is the Sunday before day 0: the money is booked on it.
    let server = TestServer::start_on(backend, "2026-10-04").await;
    instrument(&server, A, "100").await;
    instrument(&server, B, "100").await;
    let b = book(&server, &[(A, "0.6"), (B, "0.38")], "0.02", "0.011").await;
    let (_, w) = funded_wrap(&server, &b, "C-1", "1000000", Some("1000000")).await;

    // A Sunday first: the trading steps do nothing and say why.
    let sunday = NaiveDate::from_ymd_opt(2026, 10, 4).unwrap();
    let s = run_day(&server, sunday).await;
    for name in ["rebalance", "netting", "execution", "allocation"] {
        assert_eq!(step(&s, name)["reason"], "not a business day", "{s}");
    }
    assert_eq!(server.count_rows("trade_orders").await, 0);

    prices(&server, day(0), &[(A, "12345"), (B, "9700")]).await;
    let s = run_day(&server, day(0)).await;
    // NAV 1,000,000. Reserve for fees: 1.1 % × 1,000,000 × 1.1 (tax) × 45 ÷ 365
    // = 544,500 ÷ 365 = 1,491.78 → 1,492. Cash target max(2 % × 1,000,000, 1,492) = 20,000.
    // Targets: A 0.6 × 980,000 ÷ 0.98 = 600,000; B 0.38 × 980,000 ÷ 0.98 = 380,000; the
    // cash above its target, 980,000, covers both exactly.
    assert_eq!(trigger(&server, w, day(0)).await.as_deref(), Some("cash"));
    let r = rows(
        &server,
        "SELECT nav, cash, cash_reserve, model_version FROM rebalance_decisions WHERE wrap_id = ?",
        vec![w.into()],
    )
    .await;
    let g = |i| r[0].try_get_by_index::<i64>(i).unwrap();
    assert_eq!((g(0), g(1), g(2)), (1_000_000, 1_000_000, 1_492));
    assert_eq!(
        orders(&server, w, day(0)).await,
        vec![buy(A, 600_000, "filled"), buy(B, 380_000, "filled")]
    );
    assert_eq!(step(&s, "rebalance")["orders"], 2, "{s}");
    assert_eq!(step(&s, "netting")["block_orders"], 2, "{s}");
    assert_eq!(step(&s, "execution")["filled"], 2, "{s}");
    // A: 600,000 × 10,000 ÷ 12,345 = 486,026.73 → 486,026 units, costing
    // 486,026 × 1.2345 = 599,999.097 → 600,000 (rounded up; never above the amount).
    // B: 380,000 × 10,000 ÷ 9,700 = 391,752.58 → 391,752 units, costing
    // 391,752 × 0.97 = 379,999.44 → 380,000.
    let t = b.bank_id;
    assert_eq!(
        bal(&server, t, &format!("wrap:{w}:units:{A}")).await,
        486_026
    );
    assert_eq!(
        bal(&server, t, &format!("wrap:{w}:units:{B}")).await,
        391_752
    );
    assert_eq!(bal(&server, t, &format!("wrap:{w}:cash")).await, 20_000);
    assert_eq!(bal(&server, t, &format!("omnibus:{A}")).await, 486_026);
    assert_eq!(bal(&server, t, &format!("omnibus:{B}")).await, 391_752);
    assert_eq!(bal(&server, t, "omnibus:JPY").await, 20_000);
    // One ledger entry for the distributor's trades of the day (a chunk of wraps), with a
    // key that names the book, the date and the chunk: the wrap's three postings and one
    // omnibus posting per asset.
    let n = count(
        &server,
        "SELECT COUNT(*) FROM ledger_postings p JOIN ledger_entries e \
         ON e.tenant_id = p.tenant_id AND e.id = p.entry_id \
         WHERE e.idempotency_key = ? AND e.kind = 'trade'",
        vec![format!("trade:{t}:{}:0", day(0)).into()],
    )
    .await;
    assert_eq!(n, 6);
    // The snapshot values the holdings: 599,999.097 + 379,999.44 = 979,998.537 → 979,998;
    // the NAV is net of the day's fee accrued and not paid: 999,998 × 1.1 % ÷ 365 =
    // 30.136… → ¥30 posted, tax 10 % of it 3.0136… → ¥3 (the fractions carried), so
    // 20,000 + 979,998 − 33 = 999,965.
    let snap = rows(
        &server,
        "SELECT cash, units_value, nav FROM wrap_snapshots WHERE wrap_id = ? AND business_date = ?",
        vec![w.into(), day(0).into()],
    )
    .await;
    let g = |i| snap[0].try_get_by_index::<i64>(i).unwrap();
    assert_eq!((g(0), g(1), g(2)), (20_000, 979_998, 999_965));

    // The next day nothing triggers: the cash is at its target (2 % of 999,998 = 19,999.96
    // → 20,000) and the weights are on the model (A 599,999 ÷ 999,998 = 0.6000).
    prices(&server, day(1), &[(A, "12345"), (B, "9700")]).await;
    let s = run_day(&server, day(1)).await;
    assert_eq!(step(&s, "rebalance")["wraps"], 0, "{s}");
    assert_eq!(trigger(&server, w, day(1)).await, None);
    server.stop().await;
}

on_each_backend!(buys_and_sells_cancel_exactly, buys_and_sells_cancel_exactly);
async fn buys_and_sells_cancel_exactly(backend: &'static str) {
    let server = TestServer::start_on(backend, &day(0).to_string()).await;
    instrument(&server, A, "100").await;
    // One fund, no cash weight, no fee (so no reserve): every yen is invested.
    let b = book(&server, &[(A, "1")], "0", "0").await;
    let t = b.bank_id;
    let (c1, w1) = funded_wrap(&server, &b, "C-1", "100000", Some("100000")).await;
    let (_, w2) = funded_wrap(&server, &b, "C-2", "40000", None).await;
    prices(&server, day(0), &[(A, "10000")]).await;
    run_day(&server, day(0)).await;
    // 100,000 at 1 yen a unit.
    assert_eq!(
        bal(&server, t, &format!("wrap:{w1}:units:{A}")).await,
        100_000
    );

    // W1 withdraws 40,000 while W2 gets its first 40,000; the price is 12,500.
    prices(&server, day(1), &[(A, "12500")]).await;
    let r = server
        .post_idem(
            &b.bank,
            &format!("/v1/wraps/{w1}/withdrawals"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": "40000" }),
        )
        .await;
    let movement = r.ok(202)["id"].as_str().unwrap().to_owned();
    contribute(&server, &b, w2, "40000").await;
    let omnibus_jpy = bal(&server, t, "omnibus:JPY").await;
    let s = run_day(&server, day(1)).await;
    // W1 sells 40,000 × 10,000 ÷ 12,500 = 32,000 units; W2's 40,000 buys
    // 40,000 × 10,000 ÷ 12,500 = 32,000 units: they cross exactly, at 32,000 × 1.25 = 40,000.
    assert_eq!(
        trigger(&server, w1, day(1)).await.as_deref(),
        Some("withdrawal")
    );
    assert_eq!(trigger(&server, w2, day(1)).await.as_deref(), Some("cash"));
    assert_eq!(
        orders(&server, w1, day(1)).await,
        vec![sell(A, 32_000, "filled")]
    );
    assert_eq!(
        orders(&server, w2, day(1)).await,
        vec![buy(A, 40_000, "filled")]
    );
    assert_eq!(step(&s, "netting")["block_orders"], 0, "{s}");
    assert_eq!(step(&s, "execution")["fills"], 0, "{s}");
    let n = count(
        &server,
        "SELECT COUNT(*) FROM block_orders WHERE business_date = ?",
        vec![day(1).into()],
    )
    .await;
    assert_eq!(n, 0, "nothing went out");
    let r = rows(
        &server,
        "SELECT buy_amount, sell_units, crossed_units, crossed_amount, price, net_side \
         FROM trade_netting WHERE business_date = ? AND instrument = ?",
        vec![day(1).into(), A.into()],
    )
    .await;
    let g = |i| r[0].try_get_by_index::<i64>(i).unwrap();
    assert_eq!((g(0), g(1), g(2), g(3)), (40_000, 32_000, 32_000, 40_000));
    assert_eq!(r[0].try_get_by_index::<String>(4).unwrap(), "12500");
    assert_eq!(r[0].try_get_by_index::<Option<String>>(5).unwrap(), None);
    // Units moved from W1 to W2, cash from W2 to W1 and on to the customer; the omnibus,
    // what is really held, did not move.
    assert_eq!(
        bal(&server, t, &format!("wrap:{w1}:units:{A}")).await,
        68_000
    );
    assert_eq!(
        bal(&server, t, &format!("wrap:{w2}:units:{A}")).await,
        32_000
    );
    assert_eq!(bal(&server, t, &format!("wrap:{w1}:cash")).await, 0);
    assert_eq!(bal(&server, t, &format!("wrap:{w2}:cash")).await, 0);
    assert_eq!(
        bal(&server, t, &format!("customer:{c1}:cash:JPY")).await,
        40_000
    );
    assert_eq!(bal(&server, t, &format!("omnibus:{A}")).await, 100_000);
    assert_eq!(bal(&server, t, "omnibus:JPY").await, omnibus_jpy);
    let r = server.get(&b.bank, &format!("/v1/wraps/{w1}")).await;
    assert_eq!(r.ok(200)["pending"], json!([]), "{}", r.text);
    let st = rows(
        &server,
        "SELECT status FROM wrap_movements WHERE id = ?",
        vec![movement.parse::<Uuid>().unwrap().into()],
    )
    .await;
    assert_eq!(st[0].try_get_by_index::<String>(0).unwrap(), "fulfilled");
    server.stop().await;
}

/// Fills half of every buy's amount: the units it buys at the day's price, their cost
/// rounded up (the test has no sells).
#[derive(Debug)]
struct HalfVenue;

impl wraps::eod::trading::Venue for HalfVenue {
    fn name(&self) -> &str {
        "half"
    }

    fn execute(
        &self,
        block: &wraps::eod::trading::BlockOrder,
    ) -> Result<wraps::eod::trading::Fill, String> {
        let units = block.pricing.units_for(block.amount / 2);
        Ok(wraps::eod::trading::Fill {
            units,
            amount: block.pricing.cost_of(units),
        })
    }
}

on_each_backend!(
    a_partial_fill_is_allocated_by_largest_remainder,
    a_partial_fill_is_allocated_by_largest_remainder
);
async fn a_partial_fill_is_allocated_by_largest_remainder(backend: &'static str) {
    let server = TestServer::start_on(backend, &day(0).to_string()).await;
    instrument(&server, A, "100").await;
    let b = book(&server, &[(A, "1")], "0", "0").await;
    let t = b.bank_id;
    let mut wraps = Vec::new();
    for (i, amount) in ["30000", "20000", "10000"].iter().enumerate() {
        wraps.push(
            funded_wrap(&server, &b, &format!("C-{i}"), amount, Some(amount))
                .await
                .1,
        );
    }
    prices(&server, day(0), &[(A, "13000")]).await;
    // End of day through the library, with a venue that fills half.
    let lock = wraps::eod::RunLock::with(ledger::calendar::Calendar::japan(), Arc::new(HalfVenue));
    let out = crate::eod::run_with(&server, &lock, day(0), day(0)).await;
    let detail = |name: &str| {
        out[0]
            .steps
            .iter()
            .find(|s| s.step == name)
            .unwrap()
            .detail
            .clone()
    };
    // The block buys 60,000; the venue fills 30,000 × 10,000 ÷ 13,000 = 23,076.9 → 23,076
    // units for 23,076 × 1.3 = 29,998.8 → 29,999 yen.
    assert_eq!(detail("execution")["partially_filled"], 1);
    let f = rows(
        &server,
        "SELECT units, amount, venue FROM trade_fills",
        vec![],
    )
    .await;
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].try_get_by_index::<i64>(0).unwrap(), 23_076);
    assert_eq!(f[0].try_get_by_index::<i64>(1).unwrap(), 29_999);
    assert_eq!(f[0].try_get_by_index::<String>(2).unwrap(), "half");
    // Cash by largest remainder, 3 : 2 : 1 of 29,999: 14,999.5, 9,999.67, 4,999.83; the
    // floors make 29,997, the 2 left go to .83 and .67: 14,999, 10,000, 5,000.
    // Units each at the day's price: 14,999 ÷ 1.3 = 11,537.7 → 11,537; 10,000 ÷ 1.3 =
    // 7,692.3 → 7,692; 5,000 ÷ 1.3 = 3,846.2 → 3,846. Together 23,075: 1 unit is residue.
    let expect = [(14_999, 11_537), (10_000, 7_692), (5_000, 3_846)];
    let funded = [30_000, 20_000, 10_000];
    for ((w, (paid, units)), funded) in wraps.iter().zip(expect).zip(funded) {
        assert_eq!(bal(&server, t, &format!("wrap:{w}:units:{A}")).await, units);
        assert_eq!(
            bal(&server, t, &format!("wrap:{w}:cash")).await,
            funded - paid
        );
        let o = orders(&server, *w, day(0)).await;
        assert_eq!(o[0].4, "partially_filled", "{o:?}");
        let a = rows(
            &server,
            "SELECT units, amount, status FROM trade_allocations WHERE wrap_id = ?",
            vec![(*w).into()],
        )
        .await;
        assert_eq!(a[0].try_get_by_index::<i64>(0).unwrap(), units);
        assert_eq!(a[0].try_get_by_index::<i64>(1).unwrap(), paid);
    }
    assert_eq!(bal(&server, t, &format!("residual:{A}")).await, 1);
    assert_eq!(detail("allocation")["residual"][A], 1);
    assert_eq!(bal(&server, t, &format!("omnibus:{A}")).await, 23_076);
    assert_eq!(bal(&server, t, "omnibus:JPY").await, 60_000 - 29_999);
    // The day finished: its checks found the books reconciled with the residue in them.
    assert!(detail("checks")["reconciled"].as_bool().unwrap());
    let platform = server.token(&server.platform).await;
    let r = server.get(&platform, "/v1/ledger/reconciliation").await;
    assert!(r.ok(200)["reconciled"].as_bool().unwrap(), "{}", r.text);
    server.stop().await;
}

on_each_backend!(
    a_withdrawal_sells_units_and_pays_the_customer,
    a_withdrawal_sells_units_and_pays_the_customer
);
async fn a_withdrawal_sells_units_and_pays_the_customer(backend: &'static str) {
    let server = TestServer::start_on(backend, &day(0).to_string()).await;
    instrument(&server, A, "100").await;
    let b = book(&server, &[(A, "1")], "0", "0").await;
    let t = b.bank_id;
    let (c1, w1) = funded_wrap(&server, &b, "C-1", "100000", Some("100000")).await;
    let (c2, w2) = funded_wrap(&server, &b, "C-2", "50000", Some("50000")).await;
    prices(&server, day(0), &[(A, "10000")]).await;
    run_day(&server, day(0)).await;
    assert_eq!(bal(&server, t, &format!("omnibus:{A}")).await, 150_000);

    prices(&server, day(1), &[(A, "12345")]).await;
    server
        .post_idem(
            &b.bank,
            &format!("/v1/wraps/{w1}/withdrawals"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": "30000" }),
        )
        .await
        .ok(202);
    let r = server
        .post_idem(
            &b.bank,
            &format!("/v1/wraps/{w2}/close"),
            &Uuid::now_v7().to_string(),
            json!({}),
        )
        .await;
    assert_eq!(r.ok(200)["status"], "closing");
    let s = run_day(&server, day(1)).await;
    // W1 raises 30,000: 30,000 × 10,000 ÷ 12,345 = 24,301.3 → 24,302 units (rounded up so
    // the cash is there). W2 closes: all 50,000 units.
    assert_eq!(
        trigger(&server, w1, day(1)).await.as_deref(),
        Some("withdrawal")
    );
    assert_eq!(trigger(&server, w2, day(1)).await.as_deref(), Some("close"));
    assert_eq!(
        orders(&server, w1, day(1)).await,
        vec![sell(A, 24_302, "filled")]
    );
    assert_eq!(
        orders(&server, w2, day(1)).await,
        vec![sell(A, 50_000, "filled")]
    );
    // One block sells 74,302 units for 74,302 × 1.2345 = 91,725.819 → 91,725. Each wrap's
    // units at the price: 24,302 × 1.2345 = 30,000.819 → 30,000; 50,000 × 1.2345 = 61,725.
    // Together 91,725: no residue.
    let r = rows(
        &server,
        "SELECT side, units, status FROM block_orders WHERE business_date = ?",
        vec![day(1).into()],
    )
    .await;
    assert_eq!(r[0].try_get_by_index::<String>(0).unwrap(), "sell");
    assert_eq!(r[0].try_get_by_index::<i64>(1).unwrap(), 74_302);
    assert_eq!(r[0].try_get_by_index::<String>(2).unwrap(), "filled");
    assert_eq!(step(&s, "allocation")["movements_fulfilled"], 2, "{s}");
    assert_eq!(step(&s, "allocation")["wraps_closed"], 1, "{s}");
    assert_eq!(step(&s, "allocation")["residual"], json!({}), "{s}");
    // Paid out: 30,000 to C-1 (its wrap keeps nothing in cash: 0 + 30,000 − 30,000),
    // 61,725 to C-2, whose wrap is closed.
    assert_eq!(
        bal(&server, t, &format!("customer:{c1}:cash:JPY")).await,
        30_000
    );
    assert_eq!(bal(&server, t, &format!("wrap:{w1}:cash")).await, 0);
    assert_eq!(
        bal(&server, t, &format!("wrap:{w1}:units:{A}")).await,
        75_698
    );
    assert_eq!(
        bal(&server, t, &format!("customer:{c2}:cash:JPY")).await,
        61_725
    );
    assert_eq!(bal(&server, t, &format!("wrap:{w2}:cash")).await, 0);
    assert_eq!(bal(&server, t, &format!("wrap:{w2}:units:{A}")).await, 0);
    assert_eq!(bal(&server, t, &format!("omnibus:{A}")).await, 75_698);
    assert_eq!(bal(&server, t, "omnibus:JPY").await, 91_725);
    let r = server.get(&b.bank, &format!("/v1/wraps/{w2}")).await;
    assert_eq!(r.ok(200)["wrap"]["status"], "closed", "{}", r.text);
    let kinds = rows(
        &server,
        "SELECT kind FROM ledger_entries WHERE idempotency_key LIKE 'movement:%' ORDER BY kind",
        vec![],
    )
    .await;
    let kinds: Vec<String> = kinds
        .iter()
        .map(|r| r.try_get_by_index(0).unwrap())
        .collect();
    assert_eq!(kinds, ["withdrawal", "wrap_close"]);
    // Nothing left to do the next day: the closed wrap is not looked at, W1 is on model.
    prices(&server, day(2), &[(A, "12345")]).await;
    let s = run_day(&server, day(2)).await;
    assert_eq!(step(&s, "rebalance")["wraps"], 0, "{s}");
    server.stop().await;
}

on_each_backend!(
    a_withdrawal_the_sales_fall_short_of_pays_what_they_raised,
    a_withdrawal_the_sales_fall_short_of_pays_what_they_raised
);
async fn a_withdrawal_the_sales_fall_short_of_pays_what_they_raised(backend: &'static str) {
    let server = TestServer::start_on(backend, &day(0).to_string()).await;
    instrument(&server, A, "100").await;
    let b = book(&server, &[(A, "1")], "0", "0").await;
    let t = b.bank_id;
    let (c, w) = funded_wrap(&server, &b, "C-1", "100000", Some("100000")).await;
    prices(&server, day(0), &[(A, "10000")]).await;
    run_day(&server, day(0)).await;
    // 100,000 units worth 100,000: 90,000 may be withdrawn.
    assert_eq!(
        bal(&server, t, &format!("wrap:{w}:units:{A}")).await,
        100_000
    );
    let r = server
        .post_idem(
            &b.bank,
            &format!("/v1/wraps/{w}/withdrawals"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": "90000" }),
        )
        .await;
    let asked = r.ok(202);
    assert_eq!(asked["status"], "pending");
    assert!(asked.get("paid").is_none(), "{asked}");
    // The price falls 20 % before end of day: selling every unit raises 100,000 × 0.8 =
    // 80,000, all of it paid, and the movement says so.
    prices(&server, day(1), &[(A, "8000")]).await;
    run_day(&server, day(1)).await;
    assert_eq!(bal(&server, t, &format!("wrap:{w}:units:{A}")).await, 0);
    assert_eq!(bal(&server, t, &format!("wrap:{w}:cash")).await, 0);
    assert_eq!(
        bal(&server, t, &format!("customer:{c}:cash:JPY")).await,
        80_000
    );
    let r = server
        .get(&b.bank, &format!("/v1/wraps/{w}/movements"))
        .await;
    let list = r.ok(200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], asked["id"]);
    assert_eq!(list[0]["kind"], "withdrawal");
    assert_eq!(list[0]["status"], "fulfilled");
    assert_eq!(list[0]["amount"], "90000");
    assert_eq!(list[0]["paid"], "80000");
    assert_eq!(list[0]["paid_on"], day(1).to_string());
    let r = server.get(&b.bank, &format!("/v1/wraps/{w}")).await;
    assert_eq!(r.ok(200)["pending"], json!([]), "{}", r.text);
    // A bad id is named; a missing wrap is 404.
    let r = server.get(&b.bank, "/v1/wraps/nope/movements").await;
    assert!(r.text.contains("\"id\""), "{}", r.text);
    r.problem(400);
    server
        .get(&b.bank, &format!("/v1/wraps/{}/movements", Uuid::now_v7()))
        .await
        .problem(404);
    server.stop().await;
}

on_each_backend!(
    an_order_below_the_minimum_is_skipped,
    an_order_below_the_minimum_is_skipped
);
async fn an_order_below_the_minimum_is_skipped(backend: &'static str) {
    let server = TestServer::start_on(backend, &day(0).to_string()).await;
    instrument(&server, A, "100").await;
    instrument(&server, B, "50000").await;
    let b = book(&server, &[(A, "0.5"), (B, "0.5")], "0", "0").await;
    let (_, w) = funded_wrap(&server, &b, "C-1", "60000", Some("60000")).await;
    prices(&server, day(0), &[(A, "10000"), (B, "10000")]).await;
    let s = run_day(&server, day(0)).await;
    // 60,000 split 30,000 / 30,000: B's minimum order is 50,000.
    let o = orders(&server, w, day(0)).await;
    assert_eq!(o[0], buy(A, 30_000, "filled"));
    assert_eq!(
        (o[1].1.as_str(), o[1].2, o[1].4.as_str()),
        ("buy", Some(30_000), "skipped")
    );
    assert_eq!(
        o[1].5.as_deref(),
        Some(format!("a purchase of 30000 JPY is below {B}'s minimum order of 50000 JPY").as_str())
    );
    assert_eq!(step(&s, "rebalance")["skipped"], 1, "{s}");
    assert_eq!(step(&s, "netting")["block_orders"], 1, "{s}");
    let t = b.bank_id;
    assert_eq!(bal(&server, t, &format!("wrap:{w}:cash")).await, 30_000);
    assert_eq!(
        bal(&server, t, &format!("wrap:{w}:units:{A}")).await,
        30_000
    );
    assert_eq!(bal(&server, t, &format!("wrap:{w}:units:{B}")).await, 0);
    server.stop().await;
}

on_each_backend!(
    drift_beyond_the_band_rebalances,
    drift_beyond_the_band_rebalances
);
async fn drift_beyond_the_band_rebalances(backend: &'static str) {
    let server = TestServer::start_on(backend, &day(0).to_string()).await;
    instrument(&server, A, "100").await;
    instrument(&server, B, "100").await;
    let b = book(&server, &[(A, "0.5"), (B, "0.5")], "0", "0").await;
    let t = b.bank_id;
    let (_, w) = funded_wrap(&server, &b, "C-1", "100000", Some("100000")).await;
    prices(&server, day(0), &[(A, "10000"), (B, "10000")]).await;
    run_day(&server, day(0)).await;
    assert_eq!(
        bal(&server, t, &format!("wrap:{w}:units:{A}")).await,
        50_000
    );

    // A up 8 %: 54,000 of 104,000 is 51.9 %, within 5 points of 50 %: nothing.
    prices(&server, day(1), &[(A, "10800"), (B, "10000")]).await;
    let s = run_day(&server, day(1)).await;
    assert_eq!(step(&s, "rebalance")["wraps"], 0, "{s}");
    assert_eq!(trigger(&server, w, day(1)).await, None);

    // A at 13,000: 65,000 of 115,000 is 56.5 %: beyond the band. Targets 57,500 each: A
    // sells 7,500 × 10,000 ÷ 13,000 = 5,769.2 → 5,769 units (for 5,769 × 1.3 = 7,499.7 →
    // 7,499). No cash above target today, so B is bought tomorrow with the proceeds.
    prices(&server, day(2), &[(A, "13000"), (B, "10000")]).await;
    run_day(&server, day(2)).await;
    assert_eq!(trigger(&server, w, day(2)).await.as_deref(), Some("drift"));
    assert_eq!(
        orders(&server, w, day(2)).await,
        vec![sell(A, 5_769, "filled")]
    );
    assert_eq!(bal(&server, t, &format!("wrap:{w}:cash")).await, 7_499);
    assert_eq!(
        bal(&server, t, &format!("wrap:{w}:units:{A}")).await,
        44_231
    );

    // The next day the 7,499 is invested: NAV 7,499 + 44,231 × 1.3 (57,500.3 → 57,500) +
    // 50,000 = 114,999; targets floor(57,499.5) = 57,499 each; A is not short, B is short
    // 7,499: all of it goes to B (7,499 units at 1 yen).
    prices(&server, day(3), &[(A, "13000"), (B, "10000")]).await;
    run_day(&server, day(3)).await;
    assert_eq!(trigger(&server, w, day(3)).await.as_deref(), Some("cash"));
    assert_eq!(
        orders(&server, w, day(3)).await,
        vec![buy(B, 7_499, "filled")]
    );
    assert_eq!(
        bal(&server, t, &format!("wrap:{w}:units:{B}")).await,
        57_499
    );
    assert_eq!(bal(&server, t, &format!("wrap:{w}:cash")).await, 0);

    // A falls back: 44,231 × 1.0 = 44,231 of 101,730 is 43.5 %: beyond the band, but the
    // drift rebalance was 2 days ago and the cooldown is 5 days: nothing.
    prices(&server, day(4), &[(A, "10000"), (B, "10000")]).await;
    let s = run_day(&server, day(4)).await;
    assert_eq!(step(&s, "rebalance")["wraps"], 0, "{s}");
    server.stop().await;
}

on_each_backend!(
    a_switch_moves_the_proceeds_into_the_other_wrap,
    a_switch_moves_the_proceeds_into_the_other_wrap
);
async fn a_switch_moves_the_proceeds_into_the_other_wrap(backend: &'static str) {
    let server = TestServer::start_on(backend, &day(0).to_string()).await;
    instrument(&server, A, "100").await;
    let b = book(&server, &[(A, "1")], "0", "0").await;
    let t = b.bank_id;
    let (c, w1) = funded_wrap(&server, &b, "C-1", "100000", Some("100000")).await;
    // A second wrap of the same customer, opened and never funded.
    let r = server
        .post(
            &b.bank,
            &format!("/v1/customers/{c}/wraps"),
            Some(json!({ "agreement_id": b.agreement_id })),
        )
        .await;
    let w2: Uuid = r.ok(201)["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(r.body["status"], "open", "{}", r.text);
    prices(&server, day(0), &[(A, "10000")]).await;
    run_day(&server, day(0)).await;
    assert_eq!(
        bal(&server, t, &format!("wrap:{w1}:units:{A}")).await,
        100_000
    );

    // Day 1 at 12,000 per 10,000 units: 30,000 from W1 into W2 needs 30,000 × 10,000 ÷
    // 12,000 = 25,000 units sold, exactly; the proceeds go to W2's cash, never to the
    // customer's, and W2 becomes active.
    server
        .post_idem(
            &b.bank,
            &format!("/v1/wraps/{w1}/switches"),
            &Uuid::now_v7().to_string(),
            json!({ "to_wrap_id": w2, "amount": "30000" }),
        )
        .await
        .ok(202);
    prices(&server, day(1), &[(A, "12000")]).await;
    let s = run_day(&server, day(1)).await;
    assert_eq!(
        trigger(&server, w1, day(1)).await.as_deref(),
        Some("switch")
    );
    assert_eq!(
        orders(&server, w1, day(1)).await,
        vec![sell(A, 25_000, "filled")]
    );
    assert_eq!(step(&s, "allocation")["movements_fulfilled"], 1, "{s}");
    assert_eq!(
        bal(&server, t, &format!("wrap:{w1}:units:{A}")).await,
        75_000
    );
    assert_eq!(bal(&server, t, &format!("wrap:{w1}:cash")).await, 0);
    assert_eq!(bal(&server, t, &format!("wrap:{w2}:cash")).await, 30_000);
    assert_eq!(bal(&server, t, &format!("customer:{c}:cash:JPY")).await, 0);
    let kinds = rows(
        &server,
        "SELECT kind FROM ledger_entries WHERE idempotency_key LIKE 'movement:%'",
        vec![],
    )
    .await;
    assert_eq!(kinds.len(), 1);
    assert_eq!(kinds[0].try_get_by_index::<String>(0).unwrap(), "switch");
    let r = server.get(&b.bank, &format!("/v1/wraps/{w2}")).await;
    assert_eq!(r.ok(200)["wrap"]["status"], "active", "{}", r.text);
    // The day's snapshots: a flow for each wrap, so W1's return is the market's +20 %
    // (90,000 ÷ (100,000 − 30,000 out at the start of the day) = 75,000 × 1.2 ÷ 75,000),
    // not the −10 % its NAV fell, and W2's first day is no gain from nothing.
    assert_eq!(
        snapshot(&server, w1, day(1)).await,
        (0, 90_000, 90_000, 0, 30_000, false)
    );
    assert_eq!(
        snapshot(&server, w2, day(1)).await,
        (30_000, 0, 30_000, 30_000, 0, false)
    );
    let daily = rows(
        &server,
        "SELECT daily FROM wrap_returns WHERE wrap_id = ? AND business_date = ?",
        vec![w1.into(), day(1).into()],
    )
    .await;
    let daily: rust_decimal::Decimal = daily[0]
        .try_get_by_index::<String>(0)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(daily, rust_decimal::Decimal::new(2, 1), "W1's day-1 return");

    // Day 2: W2 invests its cash along the model: 30,000 buys 25,000 units at 12,000.
    prices(&server, day(2), &[(A, "12000")]).await;
    run_day(&server, day(2)).await;
    assert_eq!(trigger(&server, w2, day(2)).await.as_deref(), Some("cash"));
    assert_eq!(
        orders(&server, w2, day(2)).await,
        vec![buy(A, 30_000, "filled")]
    );
    assert_eq!(
        bal(&server, t, &format!("wrap:{w2}:units:{A}")).await,
        25_000
    );
    assert_eq!(bal(&server, t, &format!("omnibus:{A}")).await, 100_000);
    server.stop().await;
}

on_each_backend!(proceeds_wait_for_settlement, proceeds_wait_for_settlement);
async fn proceeds_wait_for_settlement(backend: &'static str) {
    let server = TestServer::start_on(backend, &day(0).to_string()).await;
    // T+2: a trade of Monday settles on Wednesday.
    instrument_settling(&server, A, "100", 2).await;
    let b = book(&server, &[(A, "1")], "0", "0").await;
    let t = b.bank_id;
    let (c, w) = funded_wrap(&server, &b, "C-1", "100000", Some("100000")).await;
    for d in 0..5 {
        prices(
            &server,
            day(d),
            &[(A, if d == 0 { "10000" } else { "12000" })],
        )
        .await;
    }
    // Monday: 100,000 units bought, settling on Wednesday.
    run_day(&server, day(0)).await;
    assert_eq!(
        bal(&server, t, &format!("wrap:{w}:units:{A}")).await,
        100_000
    );
    server
        .post_idem(
            &b.bank,
            &format!("/v1/wraps/{w}/withdrawals"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": "30000" }),
        )
        .await
        .ok(202);

    // Tuesday: the units are the wrap's (its NAV is 100,000 × 1.2) but not settled, so none
    // is sold and the withdrawal waits instead of paying nothing.
    let s = run_day(&server, day(1)).await;
    assert_eq!(snapshot(&server, w, day(1)).await.2, 120_000);
    assert_eq!(
        trigger(&server, w, day(1)).await.as_deref(),
        Some("withdrawal")
    );
    assert!(orders(&server, w, day(1)).await.is_empty());
    assert_eq!(step(&s, "allocation")["movements_fulfilled"], 0, "{s}");
    // Wednesday: settled, 25,000 units sold for 30,000 (at 12,000), whose proceeds settle on
    // Friday: the customer is not paid yet, and Thursday sells nothing more for it.
    let s = run_day(&server, day(2)).await;
    assert_eq!(
        orders(&server, w, day(2)).await,
        vec![sell(A, 25_000, "filled")]
    );
    assert_eq!(step(&s, "allocation")["movements_fulfilled"], 0, "{s}");
    assert_eq!(bal(&server, t, &format!("wrap:{w}:cash")).await, 30_000);
    let s = run_day(&server, day(3)).await;
    assert!(orders(&server, w, day(3)).await.is_empty());
    assert_eq!(step(&s, "allocation")["movements_fulfilled"], 0, "{s}");
    assert_eq!(bal(&server, t, &format!("customer:{c}:cash:JPY")).await, 0);
    // Friday: settled, paid.
    let s = run_day(&server, day(4)).await;
    assert_eq!(step(&s, "allocation")["movements_fulfilled"], 1, "{s}");
    assert_eq!(
        bal(&server, t, &format!("customer:{c}:cash:JPY")).await,
        30_000
    );
    assert_eq!(bal(&server, t, &format!("wrap:{w}:cash")).await, 0);
    assert_eq!(
        bal(&server, t, &format!("wrap:{w}:units:{A}")).await,
        75_000
    );
    server.stop().await;
}
