//! End of day's `goals` step, `GET /v1/wraps/{id}/goal`'s end-of-day figure and
//! `GET /v1/wraps/{id}/goal/history`, on both databases: a figure for each wrap with a goal
//! and none for the others, equal to the on-request answer with the default parameters, a
//! passed target skipped with its reason, a re-run that changes nothing, the history's ranges,
//! bad dates and isolation.

use chrono::{Datelike, Days, Months, NaiveDate, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestServer;
use crate::customers::{deposit, make_customer};
use crate::eod::{rows, run_days};
use crate::on_each_backend;
use crate::wraps::{Market, market};

/// The business date of Tokyo now: end of day runs it, so the on-request answer (which
/// counts months from today) and the end-of-day figure start from the same month.
fn today() -> NaiveDate {
    api::money::today(Utc::now())
}

/// The first of the month five years after `d`.
fn five_years_after(d: NaiveDate) -> NaiveDate {
    d.checked_add_months(Months::new(60))
        .unwrap()
        .with_day(1)
        .unwrap()
}

/// Opens a wrap (with `goal` if given) and contributes `amount` to it.
async fn wrap_with(
    server: &TestServer,
    m: &Market,
    customer: Uuid,
    goal: Option<Value>,
    amount: &str,
) -> Uuid {
    let mut body = json!({ "agreement_id": m.agreement_id });
    if let Some(g) = goal {
        body["goal"] = g;
    }
    let r = server
        .post(
            &m.bank,
            &format!("/v1/customers/{customer}/wraps"),
            Some(body),
        )
        .await;
    let w: Uuid = r.ok(201)["id"].as_str().unwrap().parse().unwrap();
    server
        .post_idem(
            &m.bank,
            &format!("/v1/wraps/{w}/contributions"),
            &Uuid::now_v7().to_string(),
            json!({ "amount": amount }),
        )
        .await
        .ok(201);
    w
}

/// The stored rows of `wrap_goal_results`, as text, in key order.
async fn stored(server: &TestServer) -> Vec<(String, String, String, String, i64, i32, String)> {
    rows(
        server,
        "SELECT wrap_id, business_date, probability, standard_error, nav, months, seed \
         FROM wrap_goal_results ORDER BY tenant_id, wrap_id, business_date",
        vec![],
    )
    .await
    .iter()
    .map(|r| {
        (
            r.try_get_by_index::<Uuid>(0).unwrap().to_string(),
            r.try_get_by_index::<NaiveDate>(1).unwrap().to_string(),
            r.try_get_by_index::<String>(2).unwrap(),
            r.try_get_by_index::<String>(3).unwrap(),
            r.try_get_by_index::<i64>(4).unwrap(),
            r.try_get_by_index::<i32>(5).unwrap(),
            r.try_get_by_index::<String>(6).unwrap(),
        )
    })
    .collect()
}

/// The default seed of the wraps of `strategy`: the halves of its id folded (hi XOR lo).
fn strategy_seed(strategy: Uuid) -> u64 {
    let (hi, lo) = strategy.as_u64_pair();
    hi ^ lo
}

on_each_backend!(end_of_day_stores_each_goal, end_of_day_stores_each_goal);
async fn end_of_day_stores_each_goal(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-1", 3).await;
    deposit(&server, &m.bank, c, "3000000").await;
    let d = today();
    let target = five_years_after(d);
    let goal =
        |amount: &str| json!({ "name": "House", "target_amount": amount, "target_date": target });
    // No prices are uploaded: nothing trades and each wrap's NAV is its cash, which is also
    // what the live valuation of the on-request answer reads.
    let with_goal = wrap_with(&server, &m, c, Some(goal("1200000")), "1000000").await;
    let without = wrap_with(&server, &m, c, None, "100000").await;
    let passed = wrap_with(&server, &m, c, Some(goal("500000")), "200000").await;
    // A goal set long ago whose date has gone by (the API refuses to set one): written
    // directly, as an old row would be.
    rows(
        &server,
        "UPDATE wraps SET goal_target_date = ? WHERE id = ?",
        vec![(d - Months::new(2)).into(), passed.into()],
    )
    .await;

    // Before any end of day: no figure yet.
    let path = format!("/v1/wraps/{with_goal}/goal");
    let r = server.get(&m.bank, &path).await;
    assert!(r.ok(200)["end_of_day"].is_null(), "{}", r.text);

    let s = run_days(&server, d, d).await;
    assert_eq!(s["status"], "finished", "{s}");
    let step = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["step"] == "goals")
        .unwrap();
    let detail = &step["detail"];
    assert_eq!(detail["wraps_with_goal"], 2, "{detail}");
    assert_eq!(detail["computed"], 1, "{detail}");
    assert_eq!(
        detail["skipped"],
        json!({ "target_date_passed": 1 }),
        "{detail}"
    );
    assert_eq!(detail["paths"], 10000, "{detail}");
    assert_eq!(detail["strategies"], 1, "{detail}");

    // One figure, for the wrap with a live goal; none for the others.
    let before = stored(&server).await;
    assert_eq!(before.len(), 1, "{before:?}");
    let (wrap, date, probability, standard_error, nav, months, seed) = before[0].clone();
    assert_eq!(wrap, with_goal.to_string());
    assert_eq!(date, d.to_string());
    assert_eq!(nav, 1_000_000);
    assert_eq!(seed, strategy_seed(m.strategy_id).to_string());
    let _ = without;

    // The on-request answer with the default parameters starts from the same value, month,
    // plans, strategy, fee and seed, so it is the same figure, and it quotes it.
    let r = server.get(&m.bank, &path).await;
    let g = r.ok(200);
    assert_eq!(g["current_value"], "1000000");
    assert_eq!(g["as_of"], d.to_string());
    assert_eq!(g["months"], i64::from(months));
    assert_eq!(g["seed"], strategy_seed(m.strategy_id).to_string());
    assert_eq!(g["probability"], probability.as_str());
    assert_eq!(g["standard_error"], standard_error.as_str());
    assert_eq!(
        g["end_of_day"],
        json!({ "date": d, "probability": probability, "standard_error": standard_error })
    );
    // √(p(1 − p) / 10,000), rounded to 4 places.
    let p: f64 = probability.parse().unwrap();
    let se: f64 = standard_error.parse().unwrap();
    assert!(
        (se - (p * (1.0 - p) / 10_000.0).sqrt()).abs() <= 0.00005,
        "{p} {se}"
    );
    // Another seed is another estimate: not the stored one (its fan differs).
    let other = server.get(&m.bank, &format!("{path}?seed=7")).await;
    assert_ne!(other.ok(200)["fan"], g["fan"]);

    // The history gives the same figure with its inputs.
    let h = server.get(&m.bank, &format!("{path}/history")).await;
    let h = h.ok(200);
    assert_eq!(h["currency"], "JPY");
    let days = h["days"].as_array().unwrap();
    assert_eq!(days.len(), 1, "{h}");
    assert_eq!(days[0]["date"], d.to_string());
    assert_eq!(days[0]["probability"], probability.as_str());
    assert_eq!(days[0]["current_value"], "1000000");
    assert_eq!(days[0]["target_amount"], "1200000");
    assert_eq!(days[0]["target_date"], target.to_string());
    // The agreement's 1.1 % with 10 % tax: 0.011 × 1.1 = 0.0121.
    assert_eq!(days[0]["fee_rate_annual"], "0.0121");
    assert_eq!(days[0]["paths"], 10000);
    assert_eq!(days[0]["seed"], strategy_seed(m.strategy_id).to_string());
    assert_eq!(days[0]["plans_counted"], 0);
    // The median value at the target date is the fan chart's last p50.
    let fan = g["fan"].as_array().unwrap();
    assert_eq!(days[0]["median_value"], fan.last().unwrap()["p50"]);
    // The wraps without a live goal have no history.
    for w in [without, passed] {
        let h = server
            .get(&m.bank, &format!("/v1/wraps/{w}/goal/history"))
            .await;
        assert_eq!(h.ok(200)["days"], json!([]));
    }

    // Running the finished date again changes nothing.
    let platform = server.token(&server.platform).await;
    let r = server
        .post(&platform, "/v1/operations/eod", Some(json!({ "date": d })))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let s = crate::eod::wait(&server, d).await;
    assert_eq!(s["status"], "finished");
    assert_eq!(stored(&server).await, before);
    server.stop().await;
}

on_each_backend!(goal_history_is_scoped, goal_history_is_scoped);
async fn goal_history_is_scoped(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-1", 3).await;
    deposit(&server, &m.bank, c, "1000000").await;
    let d1 = today();
    let d2 = d1 + Days::new(1);
    let goal =
        json!({ "name": "School", "target_amount": "900000", "target_date": five_years_after(d1) });
    let w = wrap_with(&server, &m, c, Some(goal), "600000").await;
    let s = run_days(&server, d1, d2).await;
    assert_eq!(s["status"], "finished", "{s}");
    let path = format!("/v1/wraps/{w}/goal/history");
    let dates = |v: &Value| -> Vec<String> {
        v["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["date"].as_str().unwrap().to_owned())
            .collect()
    };

    // Both dates, oldest first; each end of the range narrows it.
    let all = server.get(&m.bank, &path).await;
    assert_eq!(dates(all.ok(200)), [d1.to_string(), d2.to_string()]);
    let r = server.get(&m.bank, &format!("{path}?from={d2}")).await;
    assert_eq!(dates(r.ok(200)), [d2.to_string()]);
    let r = server.get(&m.bank, &format!("{path}?to={d1}")).await;
    assert_eq!(dates(r.ok(200)), [d1.to_string()]);
    let r = server
        .get(&m.bank, &format!("{path}?from={d1}&to={d1}"))
        .await;
    assert_eq!(dates(r.ok(200)), [d1.to_string()]);
    let later = d2 + Days::new(30);
    let r = server.get(&m.bank, &format!("{path}?from={later}")).await;
    assert_eq!(r.ok(200)["days"], json!([]));
    // The on-request answer quotes the newest figure.
    let g = server.get(&m.bank, &format!("/v1/wraps/{w}/goal")).await;
    assert_eq!(g.ok(200)["end_of_day"]["date"], d2.to_string());

    // The manager of the strategy and the platform see it; another distributor and another
    // manager get 404, as for a wrap that does not exist.
    let by_manager = server.get(&m.manager, &path).await;
    assert_eq!(by_manager.ok(200), all.ok(200));
    let platform = server.token(&server.platform).await;
    server.get(&platform, &path).await.ok(200);
    let other = market(&server, "Other", 3).await;
    let p = server.get(&other.bank, &path).await;
    p.problem(404);
    server.get(&other.manager, &path).await.problem(404);
    let missing = server
        .get(
            &m.bank,
            &format!("/v1/wraps/{}/goal/history", Uuid::now_v7()),
        )
        .await;
    assert_eq!(missing.problem(404)["type"], p.problem(404)["type"]);

    // Bad parameters name themselves; a bad id is refused.
    let far = d1 + Days::new(3_660);
    for (q, field) in [
        ("from=2026-13-01".to_owned(), "from"),
        ("to=yesterday".to_owned(), "to"),
        (format!("from={d2}&to={d1}"), "to"),
        (format!("from={d1}&to={far}"), "to"),
        ("colour=red".to_owned(), "colour"),
    ] {
        let r = server.get(&m.bank, &format!("{path}?{q}")).await;
        assert_eq!(
            r.problem(400)["errors"][0]["field"],
            field,
            "{q}: {}",
            r.text
        );
    }
    let r = server
        .get(&m.bank, "/v1/wraps/not-a-uuid/goal/history")
        .await;
    assert!(r.status.is_client_error(), "{}", r.text);
    server.stop().await;
}

on_each_backend!(
    goals_can_wait_for_the_month_end,
    goals_can_wait_for_the_month_end
);
/// With `[goals] recompute = "month_end"` the step computes nothing on other dates (and says
/// why), then every goal on the month's last date.
async fn goals_can_wait_for_the_month_end(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-1", 3).await;
    deposit(&server, &m.bank, c, "3000000").await;
    // The last two dates of next month: the first is not a month end, the second is.
    let today = today();
    let first = today
        .checked_add_months(Months::new(1))
        .unwrap()
        .with_day(1)
        .unwrap();
    let last = first.checked_add_months(Months::new(1)).unwrap() - Days::new(1);
    let before_last = last - Days::new(1);
    let goal = json!({ "name": "House", "target_amount": "1200000",
                       "target_date": five_years_after(today) });
    wrap_with(&server, &m, c, Some(goal), "1000000").await;

    let lock = wraps::eod::RunLock::new();
    lock.set_goal_cadence(wraps::eod::GoalCadence::MonthEnd);
    assert_eq!(lock.goal_cadence(), wraps::eod::GoalCadence::MonthEnd);
    let out = crate::eod::run_with(&server, &lock, before_last, last).await;
    let goals = |i: usize| {
        out[i]
            .steps
            .iter()
            .find(|s| s.step == "goals")
            .unwrap()
            .detail
            .clone()
    };
    assert_eq!(goals(0)["computed"], 0, "{}", goals(0));
    assert!(
        goals(0)["reason"].as_str().unwrap().contains("month ends"),
        "{}",
        goals(0)
    );
    assert_eq!(goals(1)["computed"], 1, "{}", goals(1));
    let stored = stored(&server).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].1, last.to_string());
    server.stop().await;
}

on_each_backend!(
    a_falling_probability_is_an_event,
    a_falling_probability_is_an_event
);
/// A wrap whose goal probability falls sharply between two dates gets a
/// `goal.probability.dropped` event for its distributor (not its manager); a wrap whose figure
/// holds gets none; the console's follow-up queue shows it to head office, not to an adviser
/// of another branch.
async fn a_falling_probability_is_an_event(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let m = market(&server, "Bank", 3).await;
    let c = make_customer(&server, &m.bank, "C-1", 3).await;
    deposit(&server, &m.bank, c, "3000000").await;
    let d = today();
    let target = five_years_after(d);
    let goal =
        |amount: &str| json!({ "name": "House", "target_amount": amount, "target_date": target });
    let falling = wrap_with(&server, &m, c, Some(goal("1000000")), "1000000").await;
    let steady = wrap_with(&server, &m, c, Some(goal("1000000")), "1000000").await;
    assert_eq!(run_days(&server, d, d).await["status"], "finished");
    let first = stored(&server).await;
    assert_eq!(first.len(), 2, "{first:?}");
    // The goal raised tenfold (written directly, as a changed goal would be): tomorrow's
    // figure falls to about nothing.
    rows(
        &server,
        "UPDATE wraps SET goal_target_amount = goal_target_amount * 10 WHERE id = ?",
        vec![falling.into()],
    )
    .await;
    let next = d.checked_add_days(Days::new(1)).unwrap();
    let s = run_days(&server, next, next).await;
    assert_eq!(s["status"], "finished", "{s}");
    let step = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["step"] == "goals")
        .unwrap();
    assert_eq!(step["detail"]["dropped"], 1, "{step}");

    let events = server.get(&m.bank, "/v1/events").await;
    let drops: Vec<&Value> = events.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "goal.probability.dropped")
        .collect();
    assert_eq!(drops.len(), 1, "{}", events.text);
    let payload = &drops[0]["payload"];
    assert_eq!(payload["wrap_id"], falling.to_string(), "{payload}");
    assert_eq!(drops[0]["object_id"], format!("wrap:{falling}"));
    assert_eq!(drops[0]["business_date"], next.to_string());
    assert_eq!(payload["previous_date"], d.to_string(), "{payload}");
    let before: f64 = payload["previous_probability"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let now: f64 = payload["probability"].as_str().unwrap().parse().unwrap();
    assert!(before - now >= 0.10, "{payload}");
    assert!(
        !events.text.contains(&steady.to_string()),
        "{}",
        events.text
    );
    let manager = server.get(&m.manager, "/v1/events").await;
    assert!(
        !manager.text.contains("goal.probability.dropped"),
        "{}",
        manager.text
    );

    // Head office's follow-up queue shows the customer, by the same rule; an adviser of a
    // branch the customer is not in sees nobody.
    let branch = server
        .post(
            &m.bank,
            "/v1/branches",
            Some(json!({ "code": "009", "name": "Elsewhere" })),
        )
        .await;
    let branch = branch.ok(201)["id"].as_str().unwrap().to_owned();
    for (email, role, branch_id) in [
        ("head@bank.example", "head_office", None),
        ("adviser@bank.example", "adviser", Some(branch)),
    ] {
        let mut body = json!({ "name": email, "email": email, "role": role, "access": "read",
                               "password": crate::console::PASSWORD });
        if let Some(b) = branch_id {
            body["branch_id"] = json!(b);
        }
        server.post(&m.bank, "/v1/users", Some(body)).await.ok(201);
    }
    let tenant_name = server
        .get(&m.bank, &format!("/v1/tenants/{}", m.bank_id))
        .await;
    let tenant_name = tenant_name.ok(200)["name"].as_str().unwrap().to_owned();
    let mut head = crate::console::Browser::new(&server);
    head.sign_in(&tenant_name, "head@bank.example", crate::console::PASSWORD)
        .await
        .redirects_to("/console/home");
    let queue = head.get("/console/follow-up").await;
    assert_eq!(queue.status, reqwest::StatusCode::OK, "{}", queue.text);
    assert!(
        queue.text.contains(&format!("/console/customers/{c}")),
        "{}",
        queue.text
    );
    assert!(queue.text.contains("C-1"), "{}", queue.text);
    let mut adviser = crate::console::Browser::new(&server);
    adviser
        .sign_in(
            &tenant_name,
            "adviser@bank.example",
            crate::console::PASSWORD,
        )
        .await
        .redirects_to("/console/home");
    let queue = adviser.get("/console/follow-up").await;
    assert_eq!(queue.status, reqwest::StatusCode::OK, "{}", queue.text);
    assert!(!queue.text.contains("C-1"), "{}", queue.text);
    server.stop().await;
}
