//! Tests of `/v1/ledger/reconciliation`: the virtual layer against the omnibus, and custodian
//! statements against the books.
//!
//! Books are made through the ledger itself (the customers and wraps endpoints come later),
//! with the fixed account codes: `customer:{id}:cash:JPY`, `wrap:{id}:cash`,
//! `wrap:{id}:units:{F}` (credit-normal) and `omnibus:{ASSET}` (debit-normal).

use chrono::NaiveDate;
use ledger::{Ledger, NewAccount, NewEntry, NewPosting, Side};
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Res, TestServer};
use crate::instruments::make_fund;
use crate::on_each_backend;

on_each_backend!(reconciliation_is_scoped, reconciliation_is_scoped);
on_each_backend!(break_report_finds_breaks, break_report_finds_breaks);
on_each_backend!(statement_rows_are_each_named, statement_rows_are_each_named);

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

struct Book {
    ledger: Ledger,
    tenant: Uuid,
    ids: std::collections::HashMap<String, Uuid>,
}

impl Book {
    async fn open(ledger: &Ledger, tenant: Uuid, accounts: &[(&str, &str, Side)]) -> Self {
        let mut ids = std::collections::HashMap::new();
        for (code, asset, side) in accounts {
            // A distributor opens with its `omnibus:JPY` account; the others are new.
            if let Some(a) = ledger.account_by_code(tenant, code).await.unwrap() {
                ids.insert((*code).to_owned(), a.id);
                continue;
            }
            let a = ledger
                .create_account(&NewAccount {
                    tenant_id: tenant,
                    code: (*code).to_owned(),
                    asset: (*asset).to_owned(),
                    normal_side: *side,
                    no_negative: false,
                    metadata: json!({}),
                })
                .await
                .unwrap();
            ids.insert((*code).to_owned(), a.id);
        }
        Self {
            ledger: ledger.clone(),
            tenant,
            ids,
        }
    }

    /// Posts one entry: (debit account, credit account, asset, amount) legs.
    async fn post(&self, key: &str, date: &str, legs: &[(&str, &str, &str, i64)]) {
        self.post_as(key, date, legs, None).await;
    }

    /// Posts one entry, or a hold (pending) with `hold`.
    async fn post_as(
        &self,
        key: &str,
        date: &str,
        legs: &[(&str, &str, &str, i64)],
        hold: Option<ledger::HoldTerms>,
    ) {
        let mut postings = Vec::new();
        for (debit, credit, asset, amount) in legs {
            postings.push(NewPosting::debit(
                self.ids[*debit],
                asset,
                Decimal::from(*amount),
            ));
            postings.push(NewPosting::credit(
                self.ids[*credit],
                asset,
                Decimal::from(*amount),
            ));
        }
        self.ledger
            .post_entry(NewEntry {
                tenant_id: self.tenant,
                idempotency_key: key.to_owned(),
                kind: "test".to_owned(),
                effective_date: day(date),
                description: key.to_owned(),
                metadata: json!({}),
                postings,
                hold,
            })
            .await
            .unwrap();
    }
}

struct World {
    s: TestServer,
    a_book: Book,
    a_cash: String,
    root: String,
    a: Uuid,
    a_token: String,
    b: Uuid,
    b_token: String,
    m_token: String,
    b_book: Book,
}

/// Bank A: a customer deposits 1,000,000 (18th), puts 300,000 in a wrap (19th), the wrap buys
/// 195,000 units of F1 for 200,000 (20th). Bank B: a deposit of 500,000 (18th). Both reconcile.
async fn world(backend: &'static str) -> World {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    make_fund(&s, &root, "F1").await;
    let (a, a_token) = s.tenant_with_token("distributor", "Bank A").await;
    let (b, b_token) = s.tenant_with_token("distributor", "Bank B").await;
    let (_, m_token) = s.tenant_with_token("manager", "Manager M").await;
    let ledger = Ledger::new(s.db.clone());
    let (c, w) = (Uuid::now_v7(), Uuid::now_v7());
    let cash = format!("customer:{c}:cash:JPY");
    let wcash = format!("wrap:{w}:cash");
    let units = format!("wrap:{w}:units:F1");
    let a_book = Book::open(
        &ledger,
        a,
        &[
            (&cash, "JPY", Side::Credit),
            (&wcash, "JPY", Side::Credit),
            (&units, "F1", Side::Credit),
            ("omnibus:JPY", "JPY", Side::Debit),
            ("omnibus:F1", "F1", Side::Debit),
        ],
    )
    .await;
    a_book
        .post(
            "dep",
            "2026-11-18",
            &[("omnibus:JPY", &cash, "JPY", 1_000_000)],
        )
        .await;
    a_book
        .post("contrib", "2026-11-19", &[(&cash, &wcash, "JPY", 300_000)])
        .await;
    a_book
        .post(
            "buy",
            "2026-11-20",
            &[
                (&wcash, "omnibus:JPY", "JPY", 200_000),
                ("omnibus:F1", &units, "F1", 195_000),
            ],
        )
        .await;
    let bc = format!("customer:{}:cash:JPY", Uuid::now_v7());
    let b_book = Book::open(
        &ledger,
        b,
        &[
            (&bc, "JPY", Side::Credit),
            ("omnibus:JPY", "JPY", Side::Debit),
            ("suspense:JPY", "JPY", Side::Debit),
            ("customer:B-extra:cash:JPY", "JPY", Side::Credit),
        ],
    )
    .await;
    b_book
        .post("dep", "2026-11-18", &[("omnibus:JPY", &bc, "JPY", 500_000)])
        .await;
    World {
        s,
        a_book,
        a_cash: cash,
        root,
        a,
        a_token,
        b,
        b_token,
        m_token,
        b_book,
    }
}

fn line<'a>(report: &'a Value, asset: &str) -> &'a Value {
    report["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["asset"] == asset)
        .unwrap_or_else(|| panic!("no {asset} in {report}"))
}

fn tenant(report: &Value, id: Uuid) -> &Value {
    report["distributors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant_id"] == id.to_string())
        .unwrap_or_else(|| panic!("no {id} in {report}"))
}

async fn reconciliation_is_scoped(backend: &'static str) {
    let w = world(backend).await;
    let s = &w.s;
    let path = "/v1/ledger/reconciliation";

    // Distributor A sees its own book only.
    let r = s.get(&w.a_token, path).await;
    let a = r.ok(200).clone();
    assert_eq!(a["reconciled"], true, "{a}");
    assert!(a.get("distributors").is_none());
    let jpy = line(&a, "JPY");
    assert_eq!(jpy["customers"], "700000");
    assert_eq!(jpy["wraps"], "100000");
    assert_eq!(jpy["virtual_total"], "800000");
    assert_eq!(jpy["omnibus"], "800000");
    assert_eq!(jpy["difference"], "0");
    assert_eq!(jpy["pending"]["virtual_total"], "0");
    let f1 = line(&a, "F1");
    assert_eq!(f1["wraps"], "195000");
    assert_eq!(f1["omnibus"], "195000");
    assert_eq!(f1["reconciled"], true);
    // As of a past date: before the buy.
    let past = s.get(&w.a_token, &format!("{path}?as_of=2026-11-19")).await;
    let past = past.ok(200).clone();
    assert_eq!(past["as_of"], "2026-11-19");
    assert_eq!(line(&past, "JPY")["wraps"], "300000");
    assert_eq!(line(&past, "JPY")["omnibus"], "1000000");
    assert!(
        past["assets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["asset"] != "F1")
    );
    let before = s.get(&w.a_token, &format!("{path}?as_of=2026-11-01")).await;
    assert_eq!(before.ok(200)["assets"], json!([]));

    // A withdrawal on hold: shown as pending on both sides, posted balances unchanged.
    w.a_book
        .post_as(
            "withdrawal-hold",
            "2026-11-20",
            &[(&w.a_cash, "omnibus:JPY", "JPY", 50_000)],
            Some(ledger::HoldTerms { expires_at: None }),
        )
        .await;
    let r = s.get(&w.a_token, path).await;
    let held = r.ok(200).clone();
    let jpy = line(&held, "JPY");
    assert_eq!(jpy["customers"], "700000");
    assert_eq!(jpy["omnibus"], "800000");
    assert_eq!(jpy["reconciled"], true);
    assert_eq!(
        jpy["pending"],
        json!({"customers": "-50000", "wraps": "0", "partners": "0", "virtual_total": "-50000", "omnibus": "-50000"})
    );
    let r = s.get(&w.a_token, &format!("{path}?as_of=2026-11-20")).await;
    assert_eq!(line(r.ok(200), "JPY")["pending"]["virtual_total"], "0");

    // B sees only B; a viewer of B too.
    let b_viewer = s.token_for_role(w.b, "viewer").await;
    for token in [&w.b_token, &b_viewer] {
        let r = s.get(token, path).await;
        let b = r.ok(200);
        assert_eq!(b["assets"].as_array().unwrap().len(), 1);
        assert_eq!(line(b, "JPY")["omnibus"], "500000");
    }

    // The platform sees both, with the breakdown.
    let r = s.get(&w.root, path).await;
    let all = r.ok(200).clone();
    assert_eq!(all["reconciled"], true);
    assert_eq!(line(&all, "JPY")["omnibus"], "1300000");
    assert_eq!(line(&all, "JPY")["virtual_total"], "1300000");
    assert_eq!(all["distributors"].as_array().unwrap().len(), 2);
    assert_eq!(line(tenant(&all, w.a), "F1")["wraps"], "195000");

    // A deliberate break in B: a customer credited without money reaching the omnibus.
    w.b_book
        .post(
            "oops",
            "2026-11-20",
            &[("suspense:JPY", "customer:B-extra:cash:JPY", "JPY", 1_000)],
        )
        .await;
    let r = s.get(&w.b_token, path).await;
    let b = r.ok(200).clone();
    assert_eq!(b["reconciled"], false);
    assert_eq!(line(&b, "JPY")["difference"], "1000");
    assert_eq!(line(&b, "JPY")["customers"], "501000");
    let r = s.get(&w.root, path).await;
    let all = r.ok(200).clone();
    assert_eq!(all["reconciled"], false);
    assert_eq!(line(&all, "JPY")["reconciled"], false);
    assert_eq!(line(&all, "F1")["reconciled"], true);
    assert_eq!(tenant(&all, w.a)["reconciled"], true);
    assert_eq!(tenant(&all, w.b)["reconciled"], false);
    // A is untouched by B's break.
    assert_eq!(s.get(&w.a_token, path).await.ok(200)["reconciled"], true);
    // Before the break's date, B still reconciles.
    let r = s.get(&w.b_token, &format!("{path}?as_of=2026-11-19")).await;
    assert_eq!(r.ok(200)["reconciled"], true);

    // A manager holds no customer money: 403. Bad parameters: 400 naming them.
    s.get(&w.m_token, path).await.problem(403);
    for (q, field) in [("as_of=2026-02-30", "as_of"), ("date=2026-11-20", "date")] {
        let r = s.get(&w.root, &format!("{path}?{q}")).await;
        assert_eq!(r.problem(400)["errors"][0]["field"], field);
    }
    s.post(&w.root, path, Some(json!({}))).await.problem(405);
    w.s.stop().await;
}

const STATEMENTS: &str = "/v1/ledger/reconciliation/custodian-statements";

async fn csv_statement(s: &TestServer, token: &str, query: &str, text: &str) -> Res {
    s.send(
        Method::POST,
        Some(token),
        &format!("{STATEMENTS}{query}"),
        &[],
        Some(("text/csv", text.as_bytes().to_vec())),
    )
    .await
}

async fn statement_counts(s: &TestServer) -> [i64; 3] {
    [
        s.count_rows("custodian_statements").await,
        s.count_rows("custodian_positions").await,
        s.audit_count().await,
    ]
}

fn fields(r: &Res) -> Vec<String> {
    r.body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn break_report_finds_breaks(backend: &'static str) {
    let w = world(backend).await;
    let s = &w.s;
    // A clean statement as of the 20th: JPY 800,000 (A) + 500,000 (B), F1 195,000.
    let r = s
        .post(
            &w.root,
            STATEMENTS,
            Some(json!({
                "as_of": "2026-11-20",
                "source": "Trust Bank custody",
                "positions": [
                    {"asset": "JPY", "quantity": "1300000"},
                    {"asset": "F1", "quantity": "195000"},
                ],
            })),
        )
        .await;
    let clean = r.ok(201).clone();
    assert_eq!(clean["position_count"], 2);
    assert_eq!(clean["positions"][0]["asset"], "F1");
    let clean_id = clean["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        format!("{STATEMENTS}/{clean_id}")
    );
    let report = s
        .get(&w.root, &format!("{STATEMENTS}/{clean_id}/breaks"))
        .await;
    let report = report.ok(200).clone();
    assert_eq!(report["clean"], true, "{report}");
    assert_eq!(
        report["totals"],
        json!({"assets": 2, "matching": 2, "breaks": 0})
    );
    assert_eq!(report["breaks"], json!([]));

    // A CSV statement with a break: JPY short by 1,000 and F1 missing (counts as 0).
    let r = csv_statement(
        s,
        &w.root,
        "?as_of=2026-11-20&source=bank%20file",
        "asset,quantity\nJPY,1299000\n",
    )
    .await;
    let broken_id = r.ok(201)["id"].as_str().unwrap().to_owned();
    let report = s
        .get(&w.root, &format!("{STATEMENTS}/{broken_id}/breaks"))
        .await;
    let report = report.ok(200).clone();
    assert_eq!(report["clean"], false);
    assert_eq!(
        report["totals"],
        json!({"assets": 2, "matching": 0, "breaks": 2})
    );
    let breaks = report["breaks"].as_array().unwrap();
    assert_eq!(
        breaks[0],
        json!({"asset": "F1", "custodian": "0", "books": "195000", "difference": "-195000", "breaks": true})
    );
    assert_eq!(
        breaks[1],
        json!({"asset": "JPY", "custodian": "1299000", "books": "1300000", "difference": "-1000", "breaks": true})
    );
    // The broken statement, and it alone, is the platform's reconciliation.break event.
    let events = s.get(&w.root, "/v1/events").await;
    let found: Vec<&Value> = events.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "reconciliation.break")
        .collect();
    assert_eq!(found.len(), 1, "{}", events.text);
    assert_eq!(found[0]["payload"]["statement_id"], broken_id.as_str());
    assert_eq!(found[0]["business_date"], "2026-11-20");
    assert_eq!(
        found[0]["payload"]["breaks"][1],
        json!({"asset": "JPY", "custodian": "1299000", "books": "1300000", "difference": "-1000"})
    );

    // As of the 19th the books held no F1 yet: a statement listing F1 at 0 is clean there.
    let r = s
        .post(
            &w.root,
            STATEMENTS,
            Some(json!({
                "as_of": "2026-11-19", "source": "custody",
                "positions": [{"asset": "JPY", "quantity": "1500000"}, {"asset": "F1", "quantity": "0"}],
            })),
        )
        .await;
    let early = r.ok(201)["id"].as_str().unwrap().to_owned();
    let report = s
        .get(&w.root, &format!("{STATEMENTS}/{early}/breaks"))
        .await;
    assert_eq!(report.ok(200)["clean"], true, "{}", report.text);

    // Lists, newest first, paged.
    let r = s.get(&w.root, &format!("{STATEMENTS}?limit=2")).await;
    let page = r.ok(200).clone();
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [early.as_str(), broken_id.as_str()]);
    assert!(page["items"][0].get("positions").is_none());
    let next = page["next_cursor"].as_str().unwrap();
    let r = s
        .get(&w.root, &format!("{STATEMENTS}?limit=2&cursor={next}"))
        .await;
    assert_eq!(r.ok(200)["items"][0]["id"], clean_id);
    let one = s.get(&w.root, &format!("{STATEMENTS}/{clean_id}")).await;
    assert_eq!(one.ok(200)["positions"][1]["quantity"], "1300000");

    // Unknown and malformed ids.
    let missing = Uuid::now_v7();
    for suffix in ["", "/breaks"] {
        s.get(&w.root, &format!("{STATEMENTS}/{missing}{suffix}"))
            .await
            .problem(404);
        let r = s.get(&w.root, &format!("{STATEMENTS}/nope{suffix}")).await;
        assert_eq!(r.problem(400)["errors"][0]["field"], "id");
    }

    // Only the platform reads statements; only platform writers upload them.
    let viewer = s.token_for_role(s.platform.tenant_id, "viewer").await;
    s.get(&viewer, &format!("{STATEMENTS}/{clean_id}/breaks"))
        .await
        .ok(200);
    let before = statement_counts(s).await;
    for token in [&w.a_token, &w.b_token, &w.m_token] {
        for path in [
            STATEMENTS.to_owned(),
            format!("{STATEMENTS}/{clean_id}"),
            format!("{STATEMENTS}/{clean_id}/breaks"),
            format!("{STATEMENTS}/{missing}"),
        ] {
            s.get(token, &path).await.problem(403);
        }
    }
    for token in [&w.a_token, &w.m_token, &viewer] {
        s.post(
            token,
            STATEMENTS,
            Some(json!({"as_of": "2026-11-20", "source": "x", "positions": [{"asset": "JPY", "quantity": "1"}]})),
        )
        .await
        .problem(403);
        csv_statement(
            s,
            token,
            "?as_of=2026-11-20&source=x",
            "asset,quantity\nJPY,1\n",
        )
        .await
        .problem(403);
    }
    assert_eq!(statement_counts(s).await, before);
    let _ = w.a;
    w.s.stop().await;
}

async fn statement_rows_are_each_named(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    make_fund(&s, &root, "F1").await;
    let before = statement_counts(&s).await;

    let r = s
        .post(
            &root,
            STATEMENTS,
            Some(json!({
                "as_of": "2026-11-20",
                "source": "custody",
                "positions": [
                    {"asset": "JPY", "quantity": "100"},
                    {"asset": "EUR", "quantity": "100"},
                    {"asset": "F1", "quantity": "-1"},
                    {"asset": "JPY", "quantity": "5"},
                    {"asset": "F1", "quantity": "1.5"},
                    {"asset": "F1", "quantity": 7},
                ],
            })),
        )
        .await;
    r.problem(422);
    assert_eq!(
        fields(&r),
        [
            "positions/1/asset",
            "positions/2/quantity",
            "positions/3/asset",
            "positions/4/quantity",
            "positions/4/asset",
            "positions/5/quantity",
        ],
        "{}",
        r.text
    );
    assert_eq!(statement_counts(&s).await, before);

    // The header fields.
    let rows = json!([{"asset": "JPY", "quantity": "1"}]);
    for (body, field) in [
        (json!({"source": "x", "positions": rows}), "as_of"),
        (
            json!({"as_of": "2026-13-01", "source": "x", "positions": rows}),
            "as_of",
        ),
        (
            json!({"as_of": 20261120, "source": "x", "positions": rows}),
            "as_of",
        ),
        (json!({"as_of": "2026-11-20", "positions": rows}), "source"),
        (
            json!({"as_of": "2026-11-20", "source": " ", "positions": rows}),
            "source",
        ),
        (
            json!({"as_of": "2026-11-20", "source": "x", "positions": rows, "bank": "y"}),
            "bank",
        ),
        (
            json!({"as_of": "2026-11-20", "source": "x", "positions": []}),
            "positions",
        ),
        (json!({"as_of": "2026-11-20", "source": "x"}), "positions"),
    ] {
        let r = s.post(&root, STATEMENTS, Some(body.clone())).await;
        r.problem(422);
        assert_eq!(fields(&r), [field], "{body}: {}", r.text);
    }
    // CSV: every bad row named; as_of and source are required parameters.
    let r = csv_statement(
        &s,
        &root,
        "?as_of=2026-11-20&source=file",
        "asset,quantity\nJPY,10\nXXX,1\nF1,0.1\nJPY,1\nF1\n",
    )
    .await;
    r.problem(422);
    assert_eq!(
        fields(&r),
        ["row 3: asset", "row 4: quantity", "row 5: asset", "row 6"],
        "{}",
        r.text
    );
    for (query, field) in [
        ("?source=file", "as_of"),
        ("?as_of=2026-11-20", "source"),
        ("?as_of=yesterday&source=file", "as_of"),
        ("?as_of=2026-11-20&source=", "source"),
        ("?as_of=2026-11-20&source=f&x=1", "x"),
    ] {
        let r = csv_statement(&s, &root, query, "asset,quantity\nJPY,1\n").await;
        assert_eq!(r.problem(400)["errors"][0]["field"], field, "{query}");
    }
    // JSON with the header in the query is refused rather than half-read.
    let r = s
        .post(
            &root,
            &format!("{STATEMENTS}?as_of=2026-11-20"),
            Some(json!({"as_of": "2026-11-20", "source": "x", "positions": rows})),
        )
        .await;
    r.problem(400);
    let r = s
        .send(
            Method::POST,
            Some(&root),
            STATEMENTS,
            &[],
            Some(("application/xml", b"<x/>".to_vec())),
        )
        .await;
    r.problem(415);
    assert_eq!(statement_counts(&s).await, before);

    // A good CSV upload stores exactly.
    let r = csv_statement(
        &s,
        &root,
        "?as_of=2026-11-20&source=file",
        "quantity,asset\n9223372036854775807,JPY\n12,F1\n",
    )
    .await;
    let b = r.ok(201);
    assert_eq!(b["positions"][1]["quantity"], "9223372036854775807");
    assert_eq!(statement_counts(&s).await[0], before[0] + 1);
    assert_eq!(statement_counts(&s).await[1], before[1] + 2);
    s.stop().await;
}
