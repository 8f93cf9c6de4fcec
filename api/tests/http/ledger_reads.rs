//! Ledger reads through the API: balances now and as of the past, entries paged with a
//! cursor, one entry, the trial balance. Amounts are exact decimal strings.

use chrono::NaiveDate;
use ledger::{Ledger, NewEntry, NewPosting};
use rust_decimal::Decimal;
use serde_json::json;

use crate::common::TestServer;
use crate::isolation::seed_books;
use crate::on_each_backend;

on_each_backend!(
    balances_entries_and_trial_balance,
    balances_entries_and_trial_balance
);

async fn balances_entries_and_trial_balance(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    let bank = s.make_tenant(&root, "distributor", "Bank L").await;
    let viewer = s.make_client(&root, bank, "viewer").await;
    let token = s.token(&viewer).await;
    let ledger = Ledger::new(s.db.clone());
    let (cash, wrap, first) = seed_books(&ledger, bank, 1_000_000).await;
    // Four more deposits dated 21 to 24 November.
    for day in 21..=24 {
        ledger
            .post_entry(NewEntry {
                tenant_id: bank,
                idempotency_key: format!("dep-{day}"),
                kind: "deposit".into(),
                effective_date: NaiveDate::from_ymd_opt(2026, 11, day).unwrap(),
                description: format!("deposit {day}"),
                metadata: json!({}),
                postings: vec![
                    NewPosting::debit(cash, "JPY", Decimal::from(1000)),
                    NewPosting::credit(wrap, "JPY", Decimal::from(1000)),
                ],
                hold: None,
            })
            .await
            .unwrap();
    }

    let now = s.get(&token, &format!("/v1/ledger/accounts/{cash}")).await;
    let body = now.ok(200);
    assert_eq!(body["code"], "bank:cash");
    assert_eq!(body["asset"], "JPY");
    assert_eq!(body["tenant_id"], bank.to_string());
    assert_eq!(body["balance"]["posted"], "1004000");
    assert_eq!(body["balance"]["available"], "1004000");
    assert_eq!(body["balance"]["as_of"], "now");
    let past = s
        .get(
            &token,
            &format!("/v1/ledger/accounts/{cash}?as_of=2026-11-22"),
        )
        .await;
    assert_eq!(past.ok(200)["balance"]["posted"], "1002000");
    assert_eq!(
        past.body["balance"]["as_of"]["effective_date"],
        "2026-11-22"
    );
    let before = s
        .get(
            &token,
            &format!("/v1/ledger/accounts/{wrap}?as_of=2020-01-01T00:00:00Z"),
        )
        .await;
    assert_eq!(before.ok(200)["balance"]["posted"], "0");

    // Entries in booking order, two at a time.
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/ledger/entries?account_id={cash}&limit=2&cursor={c}"),
            None => format!("/v1/ledger/entries?account_id={cash}&limit=2"),
        };
        let page = s.get(&token, &path).await;
        let body = page.ok(200);
        for e in body["items"].as_array().unwrap() {
            keys.push(e["idempotency_key"].as_str().unwrap().to_owned());
            assert_eq!(e["postings"].as_array().unwrap().len(), 2);
        }
        match body.get("next_cursor").and_then(|c| c.as_str()) {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        keys,
        [
            format!("deposit-{bank}"),
            "dep-21".into(),
            "dep-22".into(),
            "dep-23".into(),
            "dep-24".into()
        ]
    );
    let one = s.get(&token, &format!("/v1/ledger/entries/{first}")).await;
    let body = one.ok(200);
    assert_eq!(body["postings"][0]["amount"], "1000000");
    assert_eq!(body["postings"][0]["side"], "debit");
    let r = s
        .get(
            &token,
            &format!("/v1/ledger/entries?account_id={cash}&limit=501"),
        )
        .await;
    assert_eq!(r.problem(400)["errors"][0]["field"], "limit");

    // The platform's trial balance: whole platform, and one tenant; both balance.
    let tb = s.get(&root, "/v1/ledger/trial-balance").await;
    let body = tb.ok(200);
    assert_eq!(body["balanced"], true);
    assert_eq!(body["lines"][0]["asset"], "JPY");
    assert_eq!(body["lines"][0]["debits"], "1004000");
    assert_eq!(body["lines"][0]["credits"], "1004000");
    let tb = s
        .get(&root, &format!("/v1/ledger/trial-balance?tenant_id={bank}"))
        .await;
    assert_eq!(tb.ok(200)["tenant_id"], bank.to_string());
    // The distributor's fee income and omnibus accounts, opened with it, and the two seeded ones.
    assert_eq!(tb.body["lines"][0]["accounts"], 4);

    // The account list, in creation order, two at a time.
    let first_page = s.get(&token, "/v1/ledger/accounts?limit=2").await;
    let body = first_page.ok(200).clone();
    let codes: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["fee-income:channel", "omnibus:JPY"]);
    let cursor = body["next_cursor"].as_str().unwrap();
    let rest = s
        .get(
            &token,
            &format!("/v1/ledger/accounts?limit=2&cursor={cursor}"),
        )
        .await;
    let rest = rest.ok(200);
    assert_eq!(rest["items"][0]["code"], "bank:cash");
    assert_eq!(rest["items"][1]["code"], "customer:wraps");
    assert_eq!(rest["items"][1]["id"], wrap.to_string());
    assert!(rest.get("next_cursor").is_none());
    s.stop().await;
}
