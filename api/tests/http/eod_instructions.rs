//! External execution on both databases: a distributor whose venue is `external` gets
//! instructions instead of fills, its day waits in `awaiting_fills`, its account system
//! reports partial, idempotent fills, and the re-run allocates them to the wraps, worked
//! out by hand; a simulated distributor on the same date fills as before.
//!
//! The dates are the fixed past week of `eod_trading.rs` (Monday 2026-10-05 on).

use chrono::NaiveDate;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Res, TestServer};
use crate::eod::{rows, run_days, wrapd};
use crate::eod_trading::{bal, book_named, buy, funded_wrap, instrument, orders, prices, step};
use crate::on_each_backend;

const A: &str = "JP90C000TRA1";

fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, 5 + n).unwrap()
}

/// Rows that a refused report must leave alone.
async fn written(server: &TestServer) -> (i64, i64, i64, i64) {
    (
        server.count_rows("trade_fills").await,
        server.count_rows("instruction_fills").await,
        server.count_rows("instructions").await,
        server.audit_count().await,
    )
}

async fn report(server: &TestServer, token: &str, id: Uuid, body: Value) -> Res {
    server
        .post(token, &format!("/v1/instructions/{id}/fills"), Some(body))
        .await
}

fn step_status<'a>(status: &'a Value, name: &str) -> &'a Value {
    &status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap()["status"]
}

on_each_backend!(
    an_external_distributor_waits_for_its_fills,
    an_external_distributor_waits_for_its_fills
);
async fn an_external_distributor_waits_for_its_fills(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let platform = server.token(&server.platform).await;
    instrument(&server, A, "100").await;
    // Bank X executes through its own account system; Bank S stays on the simulated venue.
    let x = book_named(&server, "Bank X", &[(A, "1")], "0", "0").await;
    let s = book_named(&server, "Bank S", &[(A, "1")], "0", "0").await;
    let mut wraps = Vec::new();
    for (i, amount) in ["30000", "20000", "10000"].iter().enumerate() {
        let (_, w) = funded_wrap(&server, &x, &format!("X-{i}"), amount, Some(amount)).await;
        wraps.push(w);
    }
    let (_, ws) = funded_wrap(&server, &s, "S-1", "10000", Some("10000")).await;
    let (manager_id, manager) = server.tenant_with_token("manager", "Other AM").await;

    // The venue setting: simulated by default, set by the platform only.
    let venue_path = format!("/v1/tenants/{}/execution-venue", x.bank_id);
    let v = server.get(&x.bank, &venue_path).await;
    assert_eq!(v.ok(200)["venue"], "simulated", "{}", v.text);
    assert!(v.body.get("set_at").is_none());
    let audit = server.audit_count().await;
    server
        .put(&x.bank, &venue_path, json!({ "venue": "external" }))
        .await
        .problem(403);
    let r = server
        .put(&platform, &venue_path, json!({ "venue": "nyse" }))
        .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "venue", "{}", r.text);
    server
        .put(
            &platform,
            &venue_path,
            json!({ "venue": "external", "extra": 1 }),
        )
        .await
        .problem(422);
    server
        .put(
            &platform,
            &format!("/v1/tenants/{manager_id}/execution-venue"),
            json!({ "venue": "external" }),
        )
        .await
        .problem(404);
    server.get(&s.bank, &venue_path).await.problem(404);
    assert_eq!(server.audit_count().await, audit, "refusals wrote nothing");
    assert_eq!(server.count_rows("execution_venues").await, 0);
    let r = server
        .put(&platform, &venue_path, json!({ "venue": "external" }))
        .await;
    assert_eq!(r.ok(200)["venue"], "external", "{}", r.text);
    assert_eq!(
        server.get(&x.bank, &venue_path).await.ok(200)["venue"],
        "external"
    );

    // Day 0: every wrap invests its cash in A at 13,000 per 10,000 units.
    prices(&server, day(0), &[(A, "13000")]).await;
    let st = run_days(&server, day(0), day(0)).await;
    assert_eq!(st["status"], "awaiting_fills", "{st}");
    assert_eq!(st["awaiting_fills"], 1, "{st}");
    assert_eq!(step_status(&st, "execution"), "awaiting_fills", "{st}");
    assert_eq!(step_status(&st, "allocation"), "pending", "{st}");
    // Bank S's block filled as ever: 10,000 × 10,000 ÷ 13,000 = 7,692.3 → 7,692 units,
    // costing 7,692 × 1.3 = 9,999.6 → 10,000.
    let exec = step(&st, "execution");
    assert_eq!(
        (
            &exec["instructions"],
            &exec["awaiting_fills"],
            &exec["filled"],
            &exec["fills"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(1)),
        "{st}"
    );
    let f = rows(
        &server,
        "SELECT units, amount, venue FROM trade_fills WHERE tenant_id = ?",
        vec![s.bank_id.into()],
    )
    .await;
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].try_get_by_index::<i64>(0).unwrap(), 7_692);
    assert_eq!(f[0].try_get_by_index::<i64>(1).unwrap(), 10_000);
    assert_eq!(f[0].try_get_by_index::<String>(2).unwrap(), "simulated");
    let r = rows(
        &server,
        "SELECT status, venue FROM block_orders WHERE tenant_id = ?",
        vec![x.bank_id.into()],
    )
    .await;
    assert_eq!(r[0].try_get_by_index::<String>(0).unwrap(), "open");
    assert_eq!(r[0].try_get_by_index::<String>(1).unwrap(), "external");

    // Nothing moves on: neither this date again nor a later one, through the API or the
    // command (which says so and exits 3).
    for date in [day(0), day(1)] {
        let r = server
            .post(
                &platform,
                "/v1/operations/eod",
                Some(json!({ "date": date })),
            )
            .await;
        let p = r.problem(409);
        assert!(
            p["type"].as_str().unwrap().ends_with("awaiting-fills"),
            "{p}"
        );
        assert!(p["detail"].as_str().unwrap().contains("2026-10-05"), "{p}");
    }
    let out = wrapd(&server.url, &["eod", "--date", &day(0).to_string()]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("awaiting fills") && !err.contains("wrapd: error"),
        "{err}"
    );

    // The instruction, as Bank X's account system polls it.
    let r = server
        .get(&x.bank, "/v1/instructions?status=awaiting_fills")
        .await;
    let items = r.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{}", r.text);
    let ins = &items[0];
    let id: Uuid = ins["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(ins["instrument"], A);
    assert_eq!(ins["side"], "buy");
    // 30,000 + 20,000 + 10,000 ordered, nothing crossed: the block buys for 60,000.
    assert_eq!(ins["amount"], "60000");
    assert_eq!(ins["units"], Value::Null);
    assert_eq!(ins["price"], "13000");
    assert_eq!(ins["quote_unit"], 10_000);
    assert_eq!(ins["business_date"], "2026-10-05");
    assert_eq!(
        (&ins["filled_units"], &ins["filled_amount"]),
        (&json!("0"), &json!("0"))
    );
    assert_eq!(ins["status"], "awaiting_fills");
    for (query, n) in [
        ("?date=2026-10-05&status=awaiting_fills", 1),
        ("?status=filled", 0),
        ("?date=2026-10-06", 0),
        ("?limit=1", 1),
    ] {
        let r = server
            .get(&x.bank, &format!("/v1/instructions{query}"))
            .await;
        assert_eq!(r.ok(200)["items"].as_array().unwrap().len(), n, "{query}");
    }
    for query in ["?status=open", "?date=monday", "?limit=0", "?colour=red"] {
        server
            .get(&x.bank, &format!("/v1/instructions{query}"))
            .await
            .problem(400);
    }
    server
        .get(
            &x.bank,
            &format!("/v1/instructions?tenant_id={}", s.bank_id),
        )
        .await
        .problem(400);
    // The platform sees every distributor's; Bank S has none, and cannot see Bank X's; a
    // manager has none.
    let all = server.get(&platform, "/v1/instructions").await;
    assert_eq!(all.ok(200)["items"].as_array().unwrap().len(), 1);
    let none = server
        .get(
            &platform,
            &format!("/v1/instructions?tenant_id={}", s.bank_id),
        )
        .await;
    assert_eq!(none.ok(200)["items"].as_array().unwrap().len(), 0);
    let r = server.get(&s.bank, "/v1/instructions").await;
    assert_eq!(r.ok(200)["items"].as_array().unwrap().len(), 0);
    server
        .get(&s.bank, &format!("/v1/instructions/{id}"))
        .await
        .problem(404);
    server.get(&manager, "/v1/instructions").await.problem(403);
    server
        .get(&manager, &format!("/v1/instructions/{id}"))
        .await
        .problem(404);
    server
        .get(&x.bank, &format!("/v1/instructions/{}", Uuid::now_v7()))
        .await
        .problem(404);
    let one = server.get(&x.bank, &format!("/v1/instructions/{id}")).await;
    assert_eq!(one.ok(200)["reports"], json!([]), "{}", one.text);

    // Who may report: Bank X's writers only.
    let fill1 = json!({ "fill_id": "F-1", "units": "11538", "amount": "15000" });
    let viewer = server.token_for_role(x.bank_id, "viewer").await;
    let before = written(&server).await;
    report(&server, &viewer, id, fill1.clone())
        .await
        .problem(403);
    report(&server, &platform, id, fill1.clone())
        .await
        .problem(403);
    report(&server, &manager, id, fill1.clone())
        .await
        .problem(403);
    report(&server, &s.bank, id, fill1.clone())
        .await
        .problem(404);
    assert_eq!(written(&server).await, before);

    // Bad reports are refused whole, naming the field.
    for (body, field) in [
        (
            json!({ "fill_id": "F-9", "units": "1.5", "amount": "2" }),
            "units",
        ),
        (
            json!({ "fill_id": "F-9", "units": "1", "amount": "-5" }),
            "amount",
        ),
        (
            json!({ "fill_id": "F-9", "units": "1", "amount": "0.5" }),
            "amount",
        ),
        (
            json!({ "fill_id": "", "units": "1", "amount": "2" }),
            "fill_id",
        ),
        (
            json!({ "fill_id": "F 9", "units": "1", "amount": "2" }),
            "fill_id",
        ),
        (
            json!({ "fill_id": "F-9", "units": "0", "amount": "0" }),
            "units",
        ),
        (
            json!({ "fill_id": "F-9", "units": "5", "amount": "0" }),
            "amount",
        ),
        (
            json!({ "fill_id": "F-9", "units": "abc", "amount": "2" }),
            "units",
        ),
        (
            json!({ "fill_id": "F-9", "units": "1", "amount": "2", "price": "1" }),
            "price",
        ),
    ] {
        let r = report(&server, &x.bank, id, body.clone()).await;
        assert_eq!(
            r.problem(422)["errors"][0]["field"],
            field,
            "{body}: {}",
            r.text
        );
    }
    assert_eq!(written(&server).await, before);

    // Two partial fills. The first: 11,538 units for 15,000 (11,538 × 1.3 = 14,999.4).
    let r = report(&server, &x.bank, id, fill1.clone()).await;
    let first = r.ok(201).clone();
    assert_eq!(r.headers["location"], format!("/v1/instructions/{id}"));
    assert_eq!(first["fill"]["fill_id"], "F-1");
    assert_eq!(first["fill"]["final"], false);
    assert_eq!(first["instruction"]["filled_units"], "11538");
    assert_eq!(first["instruction"]["filled_amount"], "15000");
    assert_eq!(first["instruction"]["fills"], 1);
    assert_eq!(first["instruction"]["status"], "awaiting_fills");
    let after_first = written(&server).await;
    assert_eq!(
        after_first,
        (before.0 + 1, before.1 + 1, before.2, before.3 + 1)
    );

    // The same report again (a retry): the first answer, nothing written.
    let r = report(&server, &x.bank, id, fill1.clone()).await;
    assert_eq!(r.ok(201), &first);
    assert_eq!(r.headers["idempotent-replayed"], "true");
    assert_eq!(written(&server).await, after_first);
    // The same fill id with other figures: 409, nothing written.
    let r = report(
        &server,
        &x.bank,
        id,
        json!({ "fill_id": "F-1", "units": "11537", "amount": "15000" }),
    )
    .await;
    r.problem(409);
    assert_eq!(written(&server).await, after_first);

    // More than asked: 15,000 paid so far, 45,001 more would pay 60,001 > 60,000.
    let r = report(
        &server,
        &x.bank,
        id,
        json!({ "fill_id": "F-X", "units": "34616", "amount": "45001" }),
    )
    .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "amount", "{}", r.text);
    assert_eq!(written(&server).await, after_first);

    // The second: 11,538 units for 14,999. Together 23,076 units for 29,999.
    let r = report(
        &server,
        &x.bank,
        id,
        json!({ "fill_id": "F-2", "units": "11538", "amount": "14999" }),
    )
    .await;
    let second = r.ok(201);
    assert_eq!(second["instruction"]["filled_units"], "23076");
    assert_eq!(second["instruction"]["filled_amount"], "29999");
    assert_eq!(second["instruction"]["status"], "awaiting_fills");
    let st = server
        .get(&platform, &format!("/v1/operations/eod/{}", day(0)))
        .await;
    assert_eq!(st.ok(200)["awaiting_fills"], 1, "{}", st.text);

    // No more will come: the closing report completes it, partly filled (the 60,000 would
    // have bought 60,000 ÷ 1.3 = 46,153 units; 23,076 came).
    let r = report(
        &server,
        &x.bank,
        id,
        json!({ "fill_id": "F-END", "final": true }),
    )
    .await;
    let closed = r.ok(201);
    assert_eq!(closed["fill"]["units"], "0");
    assert_eq!(closed["instruction"]["status"], "partially_filled");
    assert!(closed["instruction"]["completed_at"].is_string());
    assert_eq!(closed["instruction"]["fills"], 2);
    // Closed: a new fill is refused; a replay still gets its first answer.
    let done = written(&server).await;
    let r = report(
        &server,
        &x.bank,
        id,
        json!({ "fill_id": "F-3", "units": "1", "amount": "2" }),
    )
    .await;
    r.problem(409);
    let r = report(&server, &x.bank, id, fill1.clone()).await;
    assert_eq!(r.ok(201), &first);
    assert_eq!(written(&server).await, done);
    let one = server.get(&x.bank, &format!("/v1/instructions/{id}")).await;
    let one = one.ok(200);
    let ids: Vec<&str> = one["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fill_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["F-1", "F-2", "F-END"], "{one}");
    let st = server
        .get(&platform, &format!("/v1/operations/eod/{}", day(0)))
        .await;
    let st = st.ok(200);
    assert_eq!(st["status"], "awaiting_fills", "{st}");
    assert_eq!(st["awaiting_fills"], 0, "{st}");

    // Run again: the day goes on from allocation and finishes.
    let st = run_days(&server, day(0), day(0)).await;
    assert_eq!(st["status"], "finished", "{st}");
    let exec = step(&st, "execution");
    assert_eq!(exec["awaiting_fills"], 0, "{st}");
    assert_eq!(exec["partially_filled"], 1, "{st}");
    assert_eq!(exec["filled"], 1, "{st}");
    assert_eq!(exec["fills"], 3, "{st}");
    // Allocation of the two fills together, as one pool: 29,999 yen by largest remainder,
    // 3 : 2 : 1 → 14,999.5, 9,999.67, 4,999.83; the floors make 29,997 and the 2 left go to
    // .83 and .67: 14,999, 10,000, 5,000. Units each at the day's price: 14,999 ÷ 1.3 =
    // 11,537.7 → 11,537; 10,000 ÷ 1.3 = 7,692.3 → 7,692; 5,000 ÷ 1.3 = 3,846.2 → 3,846.
    // Together 23,075 of the 23,076 bought: 1 unit is residue.
    let t = x.bank_id;
    let expect = [(14_999, 11_537), (10_000, 7_692), (5_000, 3_846)];
    let funded = [30_000, 20_000, 10_000];
    for ((w, (paid, units)), funded) in wraps.iter().zip(expect).zip(funded) {
        assert_eq!(bal(&server, t, &format!("wrap:{w}:units:{A}")).await, units);
        assert_eq!(
            bal(&server, t, &format!("wrap:{w}:cash")).await,
            funded - paid
        );
        assert_eq!(
            orders(&server, *w, day(0)).await,
            vec![buy(A, funded, "partially_filled")]
        );
    }
    // Units: 11,537 + 7,692 + 3,846 + 1 (residue) = 23,076 = what the fills bought.
    assert_eq!(bal(&server, t, &format!("residual:{A}")).await, 1);
    assert_eq!(bal(&server, t, &format!("omnibus:{A}")).await, 23_076);
    // Cash: 14,999 + 10,000 + 5,000 = 29,999 = what the fills paid, so the omnibus holds
    // 60,000 − 29,999 = 30,001 = 15,001 + 10,000 + 5,000 left in the wraps.
    assert_eq!(bal(&server, t, "omnibus:JPY").await, 30_001);
    assert_eq!(step(&st, "allocation")["residual"][A], 1, "{st}");
    // Bank S, untouched by the wait: its wrap holds what its block bought.
    assert_eq!(
        bal(&server, s.bank_id, &format!("wrap:{ws}:units:{A}")).await,
        7_692
    );
    assert_eq!(bal(&server, s.bank_id, &format!("wrap:{ws}:cash")).await, 0);
    assert_eq!(
        orders(&server, ws, day(0)).await,
        vec![buy(A, 10_000, "filled")]
    );
    let r = server.get(&platform, "/v1/ledger/reconciliation").await;
    assert!(r.ok(200)["reconciled"].as_bool().unwrap(), "{}", r.text);

    // The next date is free again (Bank X back on the simulated venue, so the day finishes
    // whatever it trades).
    server
        .put(&platform, &venue_path, json!({ "venue": "simulated" }))
        .await
        .ok(200);
    prices(&server, day(1), &[(A, "13000")]).await;
    let st = run_days(&server, day(1), day(1)).await;
    assert_eq!(st["status"], "finished", "{st}");
    assert_eq!(
        server.count_rows("instructions").await,
        1,
        "no instruction for a simulated day"
    );
    server.stop().await;
}

on_each_backend!(
    the_platform_closes_an_instruction_that_never_completes,
    the_platform_closes_an_instruction_that_never_completes
);
async fn the_platform_closes_an_instruction_that_never_completes(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let platform = server.token(&server.platform).await;
    instrument(&server, A, "100").await;
    let x = book_named(&server, "Bank X", &[(A, "1")], "0", "0").await;
    let (_, w) = funded_wrap(&server, &x, "X-0", "30000", Some("30000")).await;
    server
        .put(
            &platform,
            &format!("/v1/tenants/{}/execution-venue", x.bank_id),
            json!({ "venue": "external" }),
        )
        .await
        .ok(200);
    prices(&server, day(0), &[(A, "13000")]).await;
    assert_eq!(
        run_days(&server, day(0), day(0)).await["status"],
        "awaiting_fills"
    );
    let list = server.get(&x.bank, "/v1/instructions").await;
    let id: Uuid = list.ok(200)["items"][0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // The account system reports part of it (5,000 units for 6,500), then goes silent.
    report(
        &server,
        &x.bank,
        id,
        json!({ "fill_id": "F-1", "units": "5000", "amount": "6500" }),
    )
    .await
    .ok(201);

    // Refusals change nothing: the distributor itself, no reason, an empty one, an unknown
    // field, an unknown instruction.
    let before = written(&server).await;
    let path = format!("/v1/instructions/{id}/close");
    let why = json!({ "reason": "account system retired the order, ticket OPS-1" });
    server
        .post(&x.bank, &path, Some(why.clone()))
        .await
        .problem(403);
    for (body, field) in [
        // A missing field is named in the message; the body as a whole is what is wrong.
        (json!({}), "body"),
        (json!({ "reason": "  " }), "reason"),
        (json!({ "reason": "x".repeat(501) }), "reason"),
        (json!({ "reason": "ok", "status": "filled" }), "status"),
    ] {
        let r = server.post(&platform, &path, Some(body.clone())).await;
        assert_eq!(
            r.problem(422)["errors"][0]["field"],
            field,
            "{body}: {}",
            r.text
        );
    }
    server
        .post(
            &platform,
            &format!("/v1/instructions/{}/close", Uuid::now_v7()),
            Some(why.clone()),
        )
        .await
        .problem(404);
    assert_eq!(written(&server).await, before);

    // The platform closes it: complete with what was reported, audited with the reason.
    let r = server.post(&platform, &path, Some(why.clone())).await;
    let closed = r.ok(200).clone();
    assert_eq!(closed["status"], "partially_filled", "{closed}");
    assert_eq!(closed["filled_units"], "5000");
    assert_eq!(closed["filled_amount"], "6500");
    assert!(closed["completed_at"].is_string(), "{closed}");
    let after = written(&server).await;
    assert_eq!(after, (before.0, before.1, before.2, before.3 + 1));
    let audit = rows(
        &server,
        "SELECT detail FROM audit_log WHERE action = 'instruction.close'",
        vec![],
    )
    .await;
    let detail: Value =
        serde_json::from_str(&audit[0].try_get_by_index::<String>(0).unwrap()).unwrap();
    assert_eq!(detail["reason"], why["reason"], "{detail}");
    // Closed is closed: a second close and a late fill answer 409 and write nothing.
    server
        .post(&platform, &path, Some(why.clone()))
        .await
        .problem(409);
    report(
        &server,
        &x.bank,
        id,
        json!({ "fill_id": "F-2", "units": "1", "amount": "2" }),
    )
    .await
    .problem(409);
    assert_eq!(written(&server).await, after);

    // The date goes on: the wrap gets the 5,000 units for 6,500; the rest stays cash.
    let st = run_days(&server, day(0), day(0)).await;
    assert_eq!(st["status"], "finished", "{st}");
    assert_eq!(
        bal(&server, x.bank_id, &format!("wrap:{w}:units:{A}")).await,
        5_000
    );
    assert_eq!(
        bal(&server, x.bank_id, &format!("wrap:{w}:cash")).await,
        23_500
    );
    assert_eq!(
        orders(&server, w, day(0)).await,
        vec![buy(A, 30_000, "partially_filled")]
    );
    server.stop().await;
}
