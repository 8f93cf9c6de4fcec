//! Requests that move money fired while end of day runs (the platform's one lock order,
//! `ledger/src/store/work.rs`): closes, withdrawals, switches and contributions race the
//! plans, trading and billing steps. Whatever the interleaving, no request fails with a
//! server error (a deadlock would surface as one), no money stays in a closed wrap, the
//! books balance, every acknowledged contribution is in the books exactly once, and the days
//! finish (their checks reconcile the virtual layer with the omnibus).

use chrono::{Datelike, NaiveDate};
use futures::future::join_all;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Res, TestServer};
use crate::customers::{deposit, make_customer};
use crate::eod::{FUND, first_business_day, plus, rows, start, wait};
use crate::on_each_backend;
use crate::wraps::{Market, market, open_wrap};

/// Customers in the book, each with two wraps.
const CUSTOMERS: usize = 10;

/// One request of a round, by customer `i`.
async fn fire(server: &TestServer, m: &Market, round: usize, i: usize, a: Uuid, b: Uuid) -> Res {
    let key = Uuid::now_v7().to_string();
    let (path, body) = match (round + i) % 5 {
        0 => (format!("/v1/wraps/{a}/close"), json!({})),
        1 => (
            format!("/v1/wraps/{a}/contributions"),
            json!({ "amount": "10000" }),
        ),
        2 => (
            format!("/v1/wraps/{b}/withdrawals"),
            json!({ "amount": "5000" }),
        ),
        3 => (
            format!("/v1/wraps/{b}/switches"),
            json!({ "to_wrap_id": a, "amount": "3000" }),
        ),
        _ => (format!("/v1/wraps/{b}/close"), json!({})),
    };
    server.post_idem(&m.bank, &path, &key, body).await
}

on_each_backend!(
    money_moved_during_end_of_day_stays_whole,
    money_moved_during_end_of_day_stays_whole
);
async fn money_moved_during_end_of_day_stays_whole(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let d1 = first_business_day();
    let mut wraps = Vec::new();
    for i in 0..CUSTOMERS {
        let c = make_customer(&server, &m.bank, &format!("C-{i}"), 3).await;
        deposit(&server, &m.bank, c, "1000000").await;
        let (a, b) = (
            open_wrap(&server, &m, c).await,
            open_wrap(&server, &m, c).await,
        );
        for w in [a, b] {
            server
                .post_idem(
                    &m.bank,
                    &format!("/v1/wraps/{w}/contributions"),
                    &Uuid::now_v7().to_string(),
                    json!({ "amount": "200000" }),
                )
                .await
                .ok(201);
        }
        // Due on the first day: the plans step credits `a` while requests close it.
        server
            .post(
                &m.bank,
                &format!("/v1/wraps/{a}/plans"),
                Some(json!({ "kind": "contribution", "amount": "30000",
                             "day_of_month": d1.day(), "start_date": d1 })),
            )
            .await
            .ok(201);
        wraps.push((a, b));
    }
    let platform = server.token(&server.platform).await;
    let dates: Vec<NaiveDate> = (0..4).map(|n| plus(d1, n)).collect();
    let prices: Vec<Value> = dates
        .iter()
        .map(|d| json!({ "instrument": FUND, "date": d, "price": "10000" }))
        .collect();
    server
        .post(&platform, "/v1/prices", Some(json!({ "prices": prices })))
        .await
        .ok(200);

    let mut acknowledged = Vec::new();
    for (round, date) in dates.iter().enumerate() {
        // The day starts, and every customer's request goes out at the same moment.
        let started = start(&server, &platform, json!({ "date": date }));
        let requests = wraps
            .iter()
            .enumerate()
            .map(|(i, (a, b))| fire(&server, &m, round, i, *a, *b));
        let (started, answers) = futures::join!(started, join_all(requests));
        started.ok(202);
        for answer in answers {
            // Refusals are fine (the wrap is closing, the cash is short); a server error
            // (a deadlock, a batch the ledger refused) is not.
            assert!(
                matches!(answer.status.as_u16(), 200 | 201 | 202 | 409 | 422),
                "{} {}",
                answer.status,
                answer.text
            );
            if answer.status.as_u16() == 201
                && let Some(entry) = answer.body["entry_id"].as_str()
            {
                acknowledged.push(entry.parse::<Uuid>().unwrap());
            }
        }
        let s = wait(&server, *date).await;
        assert_eq!(s["status"], "finished", "{s}");
    }

    // Every acknowledged contribution or switch is in the books, once.
    for entry in &acknowledged {
        let found = rows(
            &server,
            "SELECT COUNT(*) FROM ledger_entries WHERE id = ?",
            vec![(*entry).into()],
        )
        .await;
        assert_eq!(found[0].try_get_by_index::<i64>(0).unwrap(), 1, "{entry}");
    }
    // The books balance.
    let tb = server.get(&platform, "/v1/ledger/trial-balance").await;
    let tb = tb.ok(200);
    assert!(
        tb.to_string().contains("\"balanced\":true")
            && !tb.to_string().contains("\"balanced\":false"),
        "{tb}"
    );
    // No money, and no fee owed, in a closed wrap.
    let closed: Vec<Uuid> = rows(
        &server,
        "SELECT id FROM wraps WHERE status = 'closed'",
        vec![],
    )
    .await
    .iter()
    .map(|r| r.try_get_by_index::<Uuid>(0).unwrap())
    .collect();
    assert!(!closed.is_empty(), "some closes completed");
    for id in &closed {
        let held = rows(
            &server,
            "SELECT code, debits_posted - credits_posted FROM ledger_accounts \
             WHERE code LIKE ? AND debits_posted <> credits_posted",
            vec![format!("wrap:{id}:%").into()],
        )
        .await;
        assert!(
            held.is_empty(),
            "closed wrap {id} still holds {:?}",
            held.iter()
                .map(|r| r.try_get_by_index::<String>(0).unwrap())
                .collect::<Vec<_>>()
        );
    }
    let owed = wraps::eod::fees::owed_by(&server.db, m.bank_id, &closed)
        .await
        .unwrap();
    assert!(owed.is_empty(), "fees owed by closed wraps: {owed:?}");
    server.stop().await;
}
