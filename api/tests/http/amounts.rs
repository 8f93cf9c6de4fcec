//! Amounts on the wire (DESIGN §4: decimal strings): a JSON number, a malformed string or more
//! digits than can be held is refused naming the field, and no single amount passes the
//! configured bound (`[limits]`), so one request cannot overflow the books' sums.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Res, TestServer};
use crate::customers::{assert_books_balance, counts, deposit, make_customer};
use crate::on_each_backend;

/// Asserts a 422 naming `field` whose message contains `says`.
#[track_caller]
fn refused(r: &Res, field: &str, says: &str) {
    let p = r.problem(422);
    assert_eq!(p["errors"][0]["field"], field, "{}", r.text);
    let message = p["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{says:?} not in {}", r.text);
}

async fn deposit_of(server: &TestServer, token: &str, customer: Uuid, amount: Value) -> Res {
    server
        .post_idem(
            token,
            &format!("/v1/customers/{customer}/deposits"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": amount }),
        )
        .await
}

async fn amounts_are_strict_decimal_strings(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let (_, bank) = server.tenant_with_token("distributor", "Bank").await;
    let id = make_customer(&server, &bank, "C-001", 3).await;
    deposit(&server, &bank, id, "5000").await;
    let before = counts(&server).await;

    // JSON numbers pass through f64 in serde_json (9007199254740993 would arrive as …992):
    // refused, whatever their value, naming the field and saying what to send.
    for number in [
        json!(1000),
        json!(9_007_199_254_740_993.0_f64),
        json!(-1),
        json!(0.5),
    ] {
        let r = deposit_of(&server, &bank, id, number.clone()).await;
        refused(&r, "amount", "amounts are decimal strings such as \"1000\"");
    }
    // Text that is not a plain decimal, or has more digits than can be held exactly.
    for text in [
        "1e3", "1_000", "+100", " 100", "100 ", "1,000", ".5", "0x10", "",
    ] {
        let r = deposit_of(&server, &bank, id, json!(text)).await;
        refused(&r, "amount", "is not a decimal string");
    }
    let r = deposit_of(&server, &bank, id, json!("1.0000000000000000000000000001")).await;
    refused(&r, "amount", "more than 28 significant digits");

    // The bound: 10^15 minor units of JPY by default. i64::MAX used to be accepted, and then
    // the platform's trial balance failed (500) for ever.
    let r = deposit_of(&server, &bank, id, json!("9223372036854775807")).await;
    refused(
        &r,
        "amount",
        "largest single amount the platform accepts, 1000000000000000 JPY",
    );
    let r = deposit_of(&server, &bank, id, json!("1000000000000001")).await;
    refused(&r, "amount", "1000000000000000 JPY");
    let r = deposit_of(&server, &bank, id, json!("99999999999999999999")).await;
    refused(&r, "amount", "1000000000000000 JPY");
    let r = server
        .post_idem(
            &bank,
            &format!("/v1/customers/{id}/withdrawals"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": "9223372036854775807" }),
        )
        .await;
    refused(&r, "amount", "1000000000000000 JPY");
    assert_eq!(counts(&server).await, before, "a refusal writes nothing");

    // The bound itself is accepted, and the books still sum.
    let r = deposit_of(&server, &bank, id, json!("1000000000000000")).await;
    assert_eq!(r.ok(201)["amount"], "1000000000000000");
    assert_books_balance(&server).await;
    let platform = server.token(&server.platform).await;
    let tb = server.get(&platform, "/v1/ledger/trial-balance").await;
    let jpy = tb.ok(200)["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["asset"] == "JPY")
        .cloned()
        .unwrap();
    assert_eq!(jpy["difference"], "0", "{jpy}");
    server.stop().await;
}
on_each_backend!(
    amounts_are_strict_decimal_strings_on,
    amounts_are_strict_decimal_strings
);

/// The same rule on a body that is not a movement, with `Option` and list fields: a number is
/// refused naming its path.
async fn every_decimal_field_refuses_numbers(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let (_, bank) = server.tenant_with_token("distributor", "Bank").await;
    let good = json!({
        "initial_amount": "1000000",
        "monthly_contribution": "30000",
        "years": 10,
        "gross_annual_return": "0.05",
        "fee_rates": ["0.011", "0.0055"],
        "tax_rate": "0.10",
    });
    let r = server
        .post(&bank, "/v1/projections/fee-impact", Some(good.clone()))
        .await;
    r.ok(200);
    for (key, value, field) in [
        ("initial_amount", json!(1_000_000), "initial_amount"),
        ("monthly_contribution", json!(30000), "monthly_contribution"),
        ("gross_annual_return", json!(0.05), "gross_annual_return"),
        ("fee_rates", json!(["0.011", 0.0055]), "fee_rates[1]"),
        ("tax_rate", json!(0.1), "tax_rate"),
    ] {
        let mut body = good.clone();
        body[key] = value;
        let r = server
            .post(&bank, "/v1/projections/fee-impact", Some(body))
            .await;
        refused(&r, field, "amounts are decimal strings");
    }
    let mut body = good.clone();
    body["gross_annual_return"] = json!("5e-2");
    let r = server
        .post(&bank, "/v1/projections/fee-impact", Some(body))
        .await;
    refused(&r, "gross_annual_return", "is not a decimal string");
    server.stop().await;
}
on_each_backend!(
    every_decimal_field_refuses_numbers_on,
    every_decimal_field_refuses_numbers
);

/// Every movement into or out of a wrap goes through the same check: a number is refused, and
/// so is an amount above the bound (contribution, withdrawal, switch, plan, goal).
async fn wrap_amounts_are_checked_alike(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = crate::wraps::market(&server, "Bank", 3).await;
    let bank = &m.bank;
    let c = make_customer(&server, bank, "C-001", 3).await;
    deposit(&server, bank, c, "100000").await;
    let wrap = crate::wraps::open_wrap(&server, &m, c).await;
    let other = crate::wraps::open_wrap(&server, &m, c).await;
    let before = counts(&server).await;
    let post = |path: String, body: Value| {
        let server = &server;
        async move {
            server
                .post_idem(bank, &path, &Uuid::now_v7().to_string(), body)
                .await
        }
    };
    let over = "1000000000000001";
    let bound = "1000000000000000 JPY";
    for (path, body, field, says) in [
        (
            format!("/v1/wraps/{wrap}/contributions"),
            json!({ "amount": 1000 }),
            "amount",
            "amounts are decimal strings",
        ),
        (
            format!("/v1/wraps/{wrap}/contributions"),
            json!({ "amount": over }),
            "amount",
            bound,
        ),
        (
            format!("/v1/wraps/{wrap}/withdrawals"),
            json!({ "amount": 5.5 }),
            "amount",
            "amounts are decimal strings",
        ),
        (
            format!("/v1/wraps/{wrap}/withdrawals"),
            json!({ "amount": over }),
            "amount",
            bound,
        ),
        (
            format!("/v1/wraps/{wrap}/switches"),
            json!({ "to_wrap_id": other, "amount": "+5" }),
            "amount",
            "is not a decimal string",
        ),
        (
            format!("/v1/wraps/{wrap}/plans"),
            json!({ "kind": "contribution", "amount": over, "day_of_month": 27 }),
            "amount",
            bound,
        ),
        (
            format!("/v1/wraps/{wrap}/plans"),
            json!({ "kind": "withdrawal", "percentage": 0.04, "day_of_month": 27 }),
            "percentage",
            "amounts are decimal strings",
        ),
    ] {
        let r = post(path.clone(), body.clone()).await;
        assert_eq!(r.status.as_u16(), 422, "{path} {body}: {}", r.text);
        refused(&r, field, says);
    }
    let r = server
        .post(
            bank,
            &format!("/v1/customers/{c}/wraps"),
            Some(json!({
                "agreement_id": m.agreement_id,
                "goal": { "name": "House", "target_amount": over, "target_date": "2040-01-01" },
            })),
        )
        .await;
    refused(&r, "goal/target_amount", bound);
    let r = server
        .post(
            bank,
            &format!("/v1/customers/{c}/wraps"),
            Some(json!({
                "agreement_id": m.agreement_id,
                "goal": { "name": "House", "target_amount": 1e7, "target_date": "2040-01-01" },
            })),
        )
        .await;
    refused(&r, "goal.target_amount", "amounts are decimal strings");
    assert_eq!(counts(&server).await, before, "a refusal writes nothing");
    server.stop().await;
}
on_each_backend!(
    wrap_amounts_are_checked_alike_on,
    wrap_amounts_are_checked_alike
);
