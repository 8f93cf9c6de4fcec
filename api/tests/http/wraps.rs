//! Wraps (virtual sub-accounts) and their money movements, through HTTP on both databases;
//! and the property test of the books under random money movements.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestServer;
use crate::customers::{assert_books_balance, counts, deposit, make_customer};
use crate::on_each_backend;

/// A distributor with an active agreement with a manager on a strategy of `risk` level.
pub struct Market {
    pub bank_id: Uuid,
    pub bank: String,
    pub manager_id: Uuid,
    pub manager: String,
    pub strategy_id: Uuid,
    pub agreement_id: Uuid,
}

/// Registers `code` as a JPY investment trust (10,000-unit quote), as the platform does.
pub async fn seed_instrument(server: &TestServer, code: &str) {
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
                "min_order_amount": "100",
            })),
        )
        .await;
    // Several strategies share the fund: the second registration finds it taken.
    assert!(matches!(r.status.as_u16(), 201 | 409), "{}", r.text);
}

/// A manager's strategy of `risk` with a one-fund model.
pub async fn make_strategy(server: &TestServer, manager: &str, code: &str, risk: u8) -> Uuid {
    seed_instrument(server, "JP90C000AAA1").await;
    let r = server
        .post(
            manager,
            "/v1/strategies",
            Some(json!({
                "code": code,
                "name": format!("Strategy {code}"),
                "base_currency": "JPY",
                "risk_level": risk,
                "expected_return_annual": "0.04",
                "volatility_annual": "0.10",
                "drift_band_kind": "absolute",
                "drift_band": "0.05",
                "min_initial_investment": "10000",
            })),
        )
        .await;
    let id: Uuid = r.ok(201)["id"].as_str().unwrap().parse().unwrap();
    let r = server
        .post(
            manager,
            &format!("/v1/strategies/{id}/versions"),
            Some(json!({
                "effective_date": "2020-01-01",
                "cash_weight": "0.02",
                "weights": [{ "instrument": "JP90C000AAA1", "weight": "0.98" }],
            })),
        )
        .await;
    r.ok(201);
    id
}

/// The distributor `bank` proposes an agreement on `strategy_id`; the manager accepts it
/// unless `accept` is false.
pub async fn make_agreement(
    server: &TestServer,
    bank: &str,
    manager: &str,
    manager_id: Uuid,
    strategy_id: Uuid,
    accept: bool,
) -> Uuid {
    let r = server
        .post(
            bank,
            "/v1/agreements",
            Some(json!({
                "manager_tenant_id": manager_id,
                "strategy_id": strategy_id,
                "terms": {
                    "effective_date": "2020-01-01",
                    "management_fee": { "kind": "flat", "rate_annual": "0.011" },
                    "split": { "channel": "0.5", "manager": "0.4", "platform": "0.1" },
                    "billing_period": "monthly",
                },
            })),
        )
        .await;
    let id: Uuid = r.ok(201)["id"].as_str().unwrap().parse().unwrap();
    if accept {
        server
            .post(manager, &format!("/v1/agreements/{id}/accept"), None)
            .await
            .ok(200);
    }
    id
}

pub async fn market(server: &TestServer, bank_name: &str, risk: u8) -> Market {
    let (bank_id, bank) = server.tenant_with_token("distributor", bank_name).await;
    let (manager_id, manager) = server
        .tenant_with_token("manager", &format!("{bank_name} AM"))
        .await;
    let strategy_id = make_strategy(server, &manager, "BAL", risk).await;
    let agreement_id = make_agreement(server, &bank, &manager, manager_id, strategy_id, true).await;
    Market {
        bank_id,
        bank,
        manager_id,
        manager,
        strategy_id,
        agreement_id,
    }
}

pub async fn open_wrap(server: &TestServer, m: &Market, customer: Uuid) -> Uuid {
    let r = server
        .post(
            &m.bank,
            &format!("/v1/customers/{customer}/wraps"),
            Some(json!({ "agreement_id": m.agreement_id })),
        )
        .await;
    r.ok(201)["id"].as_str().unwrap().parse().unwrap()
}

async fn post_money(
    server: &TestServer,
    token: &str,
    path: &str,
    body: Value,
) -> crate::common::Res {
    server
        .post_idem(token, path, &Uuid::now_v7().to_string(), body)
        .await
}

async fn wrap_lifecycle(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let bank = &m.bank;
    let c = make_customer(&server, bank, "C-001", 3).await;
    deposit(&server, bank, c, "1000000").await;

    let r = server
        .post(
            bank,
            &format!("/v1/customers/{c}/wraps"),
            Some(json!({
                "agreement_id": m.agreement_id,
                "name": "Retirement",
                "goal": { "name": "Retire at 65", "target_amount": "20000000", "target_date": "2045-04-01" },
            })),
        )
        .await;
    let wrap = r.ok(201).clone();
    assert_eq!(wrap["status"], "open");
    assert_eq!(wrap["strategy_id"], m.strategy_id.to_string());
    assert_eq!(wrap["goal"]["target_amount"], "20000000");
    let w: Uuid = wrap["id"].as_str().unwrap().parse().unwrap();

    // Contributions: below the strategy's minimum initial investment, then a good one, then
    // below the agreement's minimum, then beyond the customer's cash.
    let path = format!("/v1/wraps/{w}/contributions");
    let before = counts(&server).await;
    let r = post_money(&server, bank, &path, json!({ "amount": "5000" })).await;
    assert!(
        r.problem(422)["detail"]
            .as_str()
            .unwrap()
            .contains("minimum initial investment")
    );
    assert_eq!(counts(&server).await, before);
    let r = post_money(&server, bank, &path, json!({ "amount": "300000" })).await;
    let b = r.ok(201);
    assert_eq!(b["wrap_status"], "active");
    assert_eq!(b["wrap_cash"], "300000");
    assert_eq!(b["customer_cash_available"], "700000");
    let before = counts(&server).await;
    let r = post_money(&server, bank, &path, json!({ "amount": "999" })).await;
    assert!(
        r.problem(422)["detail"]
            .as_str()
            .unwrap()
            .contains("minimum contribution of 1000")
    );
    let r = post_money(&server, bank, &path, json!({ "amount": "700001" })).await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "amount");
    let r = post_money(&server, bank, &path, json!({ "amount": "1.5" })).await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "amount");
    assert_eq!(
        counts(&server).await,
        before,
        "refused contributions wrote nothing"
    );

    // The customer's overview: cash, the wrap at its value, the total.
    let view = server.get(bank, &format!("/v1/customers/{c}")).await;
    let v = view.ok(200);
    assert_eq!(v["cash"][0]["balance"], "700000");
    assert_eq!(v["wraps"][0]["value"], "300000");
    assert_eq!(v["wraps"][0]["goal"]["name"], "Retire at 65");
    assert_eq!(v["total_value"][0]["amount"], "1000000");

    // A withdrawal is recorded as pending; what is left to withdraw shrinks.
    let r = post_money(
        &server,
        bank,
        &format!("/v1/wraps/{w}/withdrawals"),
        json!({ "amount": "100000" }),
    )
    .await;
    let mv = r.ok(202);
    assert_eq!(mv["status"], "pending");
    assert_eq!(mv["kind"], "withdrawal");
    let before = counts(&server).await;
    let r = post_money(
        &server,
        bank,
        &format!("/v1/wraps/{w}/withdrawals"),
        json!({ "amount": "200001" }),
    )
    .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "amount");
    let r = post_money(
        &server,
        bank,
        &format!("/v1/wraps/{w}/withdrawals"),
        json!({ "amount": "1", "all": true }),
    )
    .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "all");
    let r = post_money(
        &server,
        bank,
        &format!("/v1/wraps/{w}/withdrawals"),
        json!({}),
    )
    .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "amount");
    assert_eq!(counts(&server).await, before);
    let r = server.get(bank, &format!("/v1/wraps/{w}")).await;
    let view = r.ok(200);
    assert_eq!(view["valuation"]["value"], "300000");
    assert_eq!(view["available_to_withdraw"], "200000");
    assert_eq!(view["pending"].as_array().unwrap().len(), 1);

    // A switch into a second wrap of the same customer; not into itself or someone else's.
    let w2 = open_wrap(&server, &m, c).await;
    let other_customer = make_customer(&server, bank, "C-002", 3).await;
    let w3 = open_wrap(&server, &m, other_customer).await;
    let switches = format!("/v1/wraps/{w}/switches");
    let before = counts(&server).await;
    for to in [w, w3, Uuid::now_v7()] {
        let r = post_money(
            &server,
            bank,
            &switches,
            json!({ "to_wrap_id": to, "amount": "1000" }),
        )
        .await;
        assert_eq!(r.problem(422)["errors"][0]["field"], "to_wrap_id", "{to}");
    }
    assert_eq!(counts(&server).await, before);
    let r = post_money(
        &server,
        bank,
        &switches,
        json!({ "to_wrap_id": w2, "amount": "50000" }),
    )
    .await;
    assert_eq!(r.ok(202)["destination_wrap_id"], w2.to_string());

    // Plans.
    let plans = format!("/v1/wraps/{w}/plans");
    let r = server
        .post(
            bank,
            &plans,
            Some(json!({ "kind": "contribution", "amount": "30000", "day_of_month": 27 })),
        )
        .await;
    let plan = r.ok(201).clone();
    assert_eq!(plan["frequency"], "monthly");
    let before = counts(&server).await;
    for (body, field) in [
        (
            json!({ "kind": "contribution", "amount": "500", "day_of_month": 27 }),
            "amount",
        ),
        (
            json!({ "kind": "contribution", "amount": "30000", "day_of_month": 31 }),
            "day_of_month",
        ),
        (
            json!({ "kind": "withdrawal", "percentage": "1.5", "day_of_month": 1 }),
            "percentage",
        ),
        (json!({ "kind": "withdrawal", "day_of_month": 1 }), "amount"),
        (
            json!({ "kind": "contribution", "amount": "30000", "day_of_month": 1, "start_date": "2001-01-01" }),
            "start_date",
        ),
    ] {
        let r = server.post(bank, &plans, Some(body.clone())).await;
        assert_eq!(r.problem(422)["errors"][0]["field"], field, "{body}");
    }
    assert_eq!(counts(&server).await, before);
    server
        .post(bank, &plans, Some(json!({ "kind": "withdrawal", "percentage": "0.04", "frequency": "yearly", "day_of_month": 1 })))
        .await
        .ok(201);
    let r = server.get(bank, &plans).await;
    assert_eq!(r.ok(200).as_array().unwrap().len(), 2);
    let cancel = format!("{plans}/{}/cancel", plan["id"].as_str().unwrap());
    assert_eq!(
        server.post(bank, &cancel, None).await.ok(200)["status"],
        "cancelled"
    );
    server.post(bank, &cancel, None).await.problem(404);

    // Close: a wrap holding only cash closes at once and pays its cash back.
    let r = post_money(&server, bank, &format!("/v1/wraps/{w3}/close"), json!({})).await;
    let closed = r.ok(200);
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["paid_back"], "0");
    // The first wrap has pending movements: it becomes closing and takes no more money.
    let r = post_money(&server, bank, &format!("/v1/wraps/{w}/close"), json!({})).await;
    assert_eq!(r.ok(200)["status"], "closing");
    let before = counts(&server).await;
    let r = post_money(&server, bank, &path, json!({ "amount": "1000" })).await;
    r.problem(409);
    let r = post_money(&server, bank, &format!("/v1/wraps/{w}/close"), json!({})).await;
    r.problem(409);
    assert_eq!(counts(&server).await, before);
    let r = server
        .get(bank, &format!("/v1/customers/{c}/wraps?status=closing"))
        .await;
    assert_eq!(r.ok(200)["items"].as_array().unwrap().len(), 1);
    assert_books_balance(&server).await;
    server.stop().await;
}
on_each_backend!(wrap_lifecycle_works, wrap_lifecycle);

async fn wrap_rules(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 4).await;
    let cautious = make_customer(&server, &m.bank, "C-001", 3).await;
    let bold = make_customer(&server, &m.bank, "C-002", 5).await;
    let before = counts(&server).await;

    // Suitability: a risk-4 strategy for a customer who tolerates 3.
    let r = server
        .post(
            &m.bank,
            &format!("/v1/customers/{cautious}/wraps"),
            Some(json!({ "agreement_id": m.agreement_id })),
        )
        .await;
    let p = r.problem(422);
    assert_eq!(p["errors"][0]["field"], "agreement_id");
    assert!(
        p["detail"].as_str().unwrap().contains("risk level is 4"),
        "{p}"
    );

    // An agreement that is only proposed, another distributor's, and none at all: alike.
    let (_, ifa) = server.tenant_with_token("distributor", "IFA").await;
    let proposed = make_agreement(
        &server,
        &m.bank,
        &m.manager,
        m.manager_id,
        make_strategy(&server, &m.manager, "GRO", 2).await,
        false,
    )
    .await;
    let theirs = make_agreement(&server, &ifa, &m.manager, m.manager_id, m.strategy_id, true).await;
    for agreement in [proposed, theirs, Uuid::now_v7()] {
        let r = server
            .post(
                &m.bank,
                &format!("/v1/customers/{bold}/wraps"),
                Some(json!({ "agreement_id": agreement })),
            )
            .await;
        assert_eq!(r.problem(422)["errors"][0]["field"], "agreement_id");
    }
    for (goal, field) in [
        (
            json!({ "name": "Car", "target_amount": "0", "target_date": "2040-01-01" }),
            "goal/target_amount",
        ),
        (
            json!({ "name": "Car", "target_amount": "100.5", "target_date": "2040-01-01" }),
            "goal/target_amount",
        ),
        (
            json!({ "name": "Car", "target_amount": "1000000", "target_date": "2001-01-01" }),
            "goal/target_date",
        ),
    ] {
        let r = server
            .post(
                &m.bank,
                &format!("/v1/customers/{bold}/wraps"),
                Some(json!({ "agreement_id": m.agreement_id, "goal": goal })),
            )
            .await;
        assert_eq!(r.problem(422)["errors"][0]["field"], field);
    }
    let after_setup = counts(&server).await;
    assert_eq!(before[1], after_setup[1], "no wrap was opened");

    // Ten open wraps, then the eleventh is refused; closing one makes room again.
    let mut wraps = Vec::new();
    for _ in 0..10 {
        wraps.push(open_wrap(&server, &m, bold).await);
    }
    let before = counts(&server).await;
    let r = server
        .post(
            &m.bank,
            &format!("/v1/customers/{bold}/wraps"),
            Some(json!({ "agreement_id": m.agreement_id })),
        )
        .await;
    assert!(
        r.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("max_open_per_customer = 10")
    );
    assert_eq!(counts(&server).await, before);
    post_money(
        &server,
        &m.bank,
        &format!("/v1/wraps/{}/close", wraps[0]),
        json!({}),
    )
    .await
    .ok(200);
    open_wrap(&server, &m, bold).await;
    server.stop().await;
}
on_each_backend!(wrap_rules_are_enforced, wrap_rules);

async fn wraps_isolated(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let (_, ifa) = server.tenant_with_token("distributor", "IFA").await;
    let (_, other_manager) = server.tenant_with_token("manager", "Other AM").await;
    let platform = server.token(&server.platform).await;
    let c = make_customer(&server, &m.bank, "C-001", 3).await;
    deposit(&server, &m.bank, c, "100000").await;
    let w = open_wrap(&server, &m, c).await;
    post_money(
        &server,
        &m.bank,
        &format!("/v1/wraps/{w}/contributions"),
        json!({ "amount": "50000" }),
    )
    .await
    .ok(201);
    let missing = Uuid::now_v7();
    let before = counts(&server).await;

    for token in [&ifa, &other_manager] {
        let theirs = server.get(token, &format!("/v1/wraps/{w}")).await;
        let none = server.get(token, &format!("/v1/wraps/{missing}")).await;
        assert_eq!(theirs.problem(404)["title"], none.problem(404)["title"]);
        for (path, body) in [
            (
                format!("/v1/wraps/{w}/contributions"),
                json!({ "amount": "1000" }),
            ),
            (
                format!("/v1/wraps/{w}/withdrawals"),
                json!({ "amount": "1000" }),
            ),
            (format!("/v1/wraps/{w}/close"), json!({})),
        ] {
            post_money(&server, token, &path, body).await.problem(404);
        }
        for what in ["plans", "movements"] {
            server
                .get(token, &format!("/v1/wraps/{w}/{what}"))
                .await
                .problem(404);
        }
        let list = server.get(token, "/v1/wraps").await;
        assert_eq!(list.ok(200)["items"], json!([]));
    }
    // The manager of the strategy sees the wrap but not whose it is, and changes nothing.
    let r = server.get(&m.manager, &format!("/v1/wraps/{w}")).await;
    let view = r.ok(200);
    assert_eq!(view["wrap"]["id"], w.to_string());
    assert!(view["wrap"].get("customer_id").is_none(), "{view}");
    assert_eq!(view["valuation"]["cash"], "50000");
    let list = server
        .get(
            &m.manager,
            &format!("/v1/wraps?strategy_id={}", m.strategy_id),
        )
        .await;
    let items = list.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert!(items[0].get("customer_id").is_none());
    post_money(
        &server,
        &m.manager,
        &format!("/v1/wraps/{w}/contributions"),
        json!({ "amount": "1000" }),
    )
    .await
    .problem(403);
    // The platform reads, and may not move customers' money either.
    server
        .get(&platform, &format!("/v1/wraps/{w}"))
        .await
        .ok(200);
    post_money(
        &server,
        &platform,
        &format!("/v1/wraps/{w}/close"),
        json!({}),
    )
    .await
    .problem(403);
    // A viewer of the bank reads and does not write.
    let viewer = server.token_for_role(m.bank_id, "viewer").await;
    server.get(&viewer, &format!("/v1/wraps/{w}")).await.ok(200);
    post_money(
        &server,
        &viewer,
        &format!("/v1/wraps/{w}/withdrawals"),
        json!({ "amount": "1000" }),
    )
    .await
    .problem(403);
    assert_eq!(counts(&server).await, before);
    server.stop().await;
}
on_each_backend!(wraps_are_isolated, wraps_isolated);

// ---------------------------------------------------------------------------------------
// The property test: random money movements keep the books balanced and reconciled.

#[derive(Debug, Clone)]
enum Op {
    Deposit { customer: usize, amount: u32 },
    Withdraw { customer: usize, amount: u32 },
    Contribute { wrap: usize, amount: u32 },
    WrapWithdraw { wrap: usize, amount: u32 },
    Switch { from: usize, to: usize, amount: u32 },
    Close { wrap: usize },
    Replay,
}

fn op() -> impl Strategy<Value = Op> {
    // Amounts straddle the balances, so many operations are refused and must change nothing.
    let amount = prop_oneof![1u32..2_000, 5_000u32..400_000, Just(0u32)];
    prop_oneof![
        3 => (0..2usize, amount.clone()).prop_map(|(customer, amount)| Op::Deposit { customer, amount }),
        2 => (0..2usize, amount.clone()).prop_map(|(customer, amount)| Op::Withdraw { customer, amount }),
        3 => (0..4usize, amount.clone()).prop_map(|(wrap, amount)| Op::Contribute { wrap, amount }),
        1 => (0..4usize, amount.clone()).prop_map(|(wrap, amount)| Op::WrapWithdraw { wrap, amount }),
        1 => (0..4usize, 0..4usize, amount).prop_map(|(from, to, amount)| Op::Switch { from, to, amount }),
        1 => (0..4usize).prop_map(|wrap| Op::Close { wrap }),
        1 => Just(Op::Replay),
    ]
}

/// Customer cash per customer and wrap cash per wrap, as the books report them.
async fn cash(
    server: &TestServer,
    token: &str,
    customers: &[Uuid],
    wraps: &[Uuid],
) -> (Vec<String>, Vec<String>) {
    let mut c = Vec::new();
    for id in customers {
        let v = server.get(token, &format!("/v1/customers/{id}")).await;
        c.push(v.ok(200)["cash"][0]["balance"].as_str().unwrap().to_owned());
    }
    let mut w = Vec::new();
    for id in wraps {
        let v = server.get(token, &format!("/v1/wraps/{id}")).await;
        w.push(v.ok(200)["valuation"]["cash"].as_str().unwrap().to_owned());
    }
    (c, w)
}

async fn run_ops(server: &TestServer, m: &Market, ops: Vec<Op>) {
    let bank = &m.bank;
    let tag = Uuid::now_v7().simple().to_string();
    let customers = [
        make_customer(server, bank, &format!("{tag}-a"), 3).await,
        make_customer(server, bank, &format!("{tag}-b"), 3).await,
    ];
    // Two wraps per customer: wraps 0, 1 are customer 0's, 2, 3 customer 1's.
    let mut wraps = Vec::new();
    for c in customers {
        wraps.push(open_wrap(server, m, c).await);
        wraps.push(open_wrap(server, m, c).await);
    }
    let mut last: Option<(String, String, Value, crate::common::Res)> = None;
    for op in ops {
        let (path, body) = match &op {
            Op::Deposit { customer, amount } => (
                format!("/v1/customers/{}/deposits", customers[*customer]),
                json!({ "amount": amount.to_string() }),
            ),
            Op::Withdraw { customer, amount } => (
                format!("/v1/customers/{}/withdrawals", customers[*customer]),
                json!({ "amount": amount.to_string() }),
            ),
            Op::Contribute { wrap, amount } => (
                format!("/v1/wraps/{}/contributions", wraps[*wrap]),
                json!({ "amount": amount.to_string() }),
            ),
            Op::WrapWithdraw { wrap, amount } => (
                format!("/v1/wraps/{}/withdrawals", wraps[*wrap]),
                json!({ "amount": amount.to_string() }),
            ),
            Op::Switch { from, to, amount } => (
                format!("/v1/wraps/{}/switches", wraps[*from]),
                json!({ "to_wrap_id": wraps[*to], "amount": amount.to_string() }),
            ),
            Op::Close { wrap } => (format!("/v1/wraps/{}/close", wraps[*wrap]), json!({})),
            Op::Replay => match &last {
                Some((path, _, body, _)) => (path.clone(), body.clone()),
                None => continue,
            },
        };
        let before_counts = counts(server).await;
        let before_cash = cash(server, bank, &customers, &wraps).await;
        let key = match (&op, &last) {
            (Op::Replay, Some((_, key, _, _))) => key.clone(),
            _ => Uuid::now_v7().to_string(),
        };
        let r = server.post_idem(bank, &path, &key, body.clone()).await;
        assert!(r.status.as_u16() < 500, "{op:?}: {}", r.text);
        if let (Op::Replay, Some((_, _, _, first))) = (&op, &last) {
            // A retry: the first answer again, and nothing written.
            if first.status.is_success() {
                assert_eq!(r.status, first.status, "{op:?}");
                assert_eq!(r.body, first.body, "{op:?}");
            }
            assert_eq!(
                counts(server).await,
                before_counts,
                "a replay wrote something"
            );
        } else if !r.status.is_success() {
            assert_eq!(
                counts(server).await,
                before_counts,
                "{op:?} refused ({}) but wrote",
                r.text
            );
            assert_eq!(
                cash(server, bank, &customers, &wraps).await,
                before_cash,
                "{op:?}"
            );
        }
        if !matches!(op, Op::Replay) {
            last = Some((path, key, body, r));
        }
        // After every step: the books balance and the virtual layer equals the omnibus.
        assert_books_balance(server).await;
        assert_reconciled(server, bank).await;
    }
}

/// Σ customer + Σ wrap = omnibus for every asset of the distributor's book.
pub async fn assert_reconciled(server: &TestServer, token: &str) {
    let r = server.get(token, "/v1/ledger/reconciliation").await;
    let body = r.ok(200);
    for line in body["assets"].as_array().unwrap() {
        assert_eq!(line["difference"], "0", "{body}");
        assert_eq!(line["reconciled"], true, "{body}");
    }
}

async fn money_movements(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let handle = tokio::runtime::Handle::current();
    let cases = if backend == "sqlite" { 12 } else { 8 };
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: 0,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 4..20), |ops| {
        tokio::task::block_in_place(|| handle.block_on(run_ops(&server, &m, ops)));
        Ok(())
    });
    server.stop().await;
    result.unwrap();
}
on_each_backend!(money_movements_keep_the_books_reconciled, money_movements);

async fn valuation_at_last_price(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-001", 3).await;
    deposit(&server, &m.bank, c, "100000").await;
    let w = open_wrap(&server, &m, c).await;
    post_money(
        &server,
        &m.bank,
        &format!("/v1/wraps/{w}/contributions"),
        json!({ "amount": "100000" }),
    )
    .await
    .ok(201);

    // A buy as end of day books it: 50,000 yen leave the wrap (and the omnibus) for 40,000
    // units of the fund, which the wrap (and the omnibus) now hold.
    let books = ledger::Ledger::new(server.db.clone());
    let fund = "JP90C000AAA1";
    let account = |code: String, side: ledger::Side, asset: &str| ledger::NewAccount {
        tenant_id: m.bank_id,
        code,
        asset: asset.to_owned(),
        normal_side: side,
        no_negative: side == ledger::Side::Credit,
        metadata: json!({}),
    };
    let units = books
        .create_account(&account(
            format!("wrap:{w}:units:{fund}"),
            ledger::Side::Credit,
            fund,
        ))
        .await
        .unwrap();
    let omnibus_units = books
        .create_account(&account(
            format!("omnibus:{fund}"),
            ledger::Side::Debit,
            fund,
        ))
        .await
        .unwrap();
    let wrap_cash = books
        .account_by_code(m.bank_id, &format!("wrap:{w}:cash"))
        .await
        .unwrap()
        .unwrap();
    let omnibus_cash = books
        .account_by_code(m.bank_id, "omnibus:JPY")
        .await
        .unwrap()
        .unwrap();
    let d = |s: &str| s.parse::<rust_decimal::Decimal>().unwrap();
    books
        .post_entry(ledger::NewEntry {
            tenant_id: m.bank_id,
            idempotency_key: format!("buy:{w}"),
            kind: "trade".into(),
            effective_date: "2026-11-20".parse().unwrap(),
            description: "buy".into(),
            metadata: json!({}),
            postings: vec![
                ledger::NewPosting::debit(wrap_cash.id, "JPY", d("50000")),
                ledger::NewPosting::credit(omnibus_cash.id, "JPY", d("50000")),
                ledger::NewPosting::debit(omnibus_units.id, fund, d("40000")),
                ledger::NewPosting::credit(units.id, fund, d("40000")),
            ],
            hold: None,
        })
        .await
        .unwrap();

    // No price yet: the holding is shown unpriced, at zero.
    let r = server.get(&m.bank, &format!("/v1/wraps/{w}")).await;
    let v = r.ok(200)["valuation"].clone();
    assert_eq!(v["holdings"][0]["priced"], false);
    assert_eq!(v["value"], "50000");

    // Two prices: the later one (on or before today) values the units.
    let platform = server.token(&server.platform).await;
    server
        .post(
            &platform,
            "/v1/prices",
            Some(json!({ "prices": [
                { "instrument": fund, "date": "2026-11-19", "price": "12500" },
                { "instrument": fund, "date": "2026-11-20", "price": "12345" },
            ] })),
        )
        .await
        .ok(200);
    let r = server.get(&m.bank, &format!("/v1/wraps/{w}")).await;
    let view = r.ok(200);
    let h = &view["valuation"]["holdings"][0];
    assert_eq!(h["instrument"], fund);
    assert_eq!(h["units"], "40000");
    assert_eq!(h["price"], "12345");
    assert_eq!(h["price_date"], "2026-11-20");
    // 40,000 units × 12,345 yen per 10,000 units = 49,380 yen.
    assert_eq!(h["value"], "49380");
    assert_eq!(view["valuation"]["value"], "99380");
    assert_eq!(view["available_to_withdraw"], "99380");
    let r = post_money(
        &server,
        &m.bank,
        &format!("/v1/wraps/{w}/withdrawals"),
        json!({ "amount": "99381" }),
    )
    .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "amount");
    post_money(
        &server,
        &m.bank,
        &format!("/v1/wraps/{w}/withdrawals"),
        json!({ "all": true }),
    )
    .await
    .ok(202);
    let r = post_money(
        &server,
        &m.bank,
        &format!("/v1/wraps/{w}/withdrawals"),
        json!({ "amount": "1" }),
    )
    .await;
    assert!(
        r.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains("everything")
    );
    // Holding units, the wrap cannot close at once: it becomes closing.
    let r = post_money(&server, &m.bank, &format!("/v1/wraps/{w}/close"), json!({})).await;
    assert_eq!(r.ok(200)["status"], "closing");
    assert_books_balance(&server).await;
    server.stop().await;
}
on_each_backend!(valuation_uses_the_last_price, valuation_at_last_price);
