//! Zengin files end to end (issue 25, item 8): bank accounts, the direct-debit request for a
//! collection date written byte for byte as a hand-built sample (built here from
//! /work/shared/ZENGIN.md's layout, not by the platform's encoder), the bank's result file
//! read back (collected → a deposit; failed → the reason, per plan and per request), a
//! re-read that changes nothing, each malformed file refused by line and field with nothing
//! applied, and isolation per endpoint. On both databases.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestServer;
use crate::customers::{assert_books_balance, make_customer};
use crate::eod::run_days;
use crate::on_each_backend;
use crate::wraps::{Market, market, open_wrap};

/// The collection date: the simulated clock's first day, a 10th (plans fall due on it).
const DAY: &str = "2031-04-10";

fn pad(field: &[u8], width: usize) -> Vec<u8> {
    assert!(field.len() <= width);
    let mut v = field.to_vec();
    v.resize(width, b' ');
    v
}

/// ｶ)ｻｸﾗﾗｯﾌﾟ in Shift_JIS: half-width katakana are the single bytes 0xA1–0xDF.
const COLLECTOR_NAME: &[u8] = &[0xB6, b')', 0xBB, 0xB8, 0xD7, 0xD7, 0xAF, 0xCC, 0xDF];
/// ﾔﾏﾀﾞ ﾀﾛｳ.
const YAMADA: &[u8] = &[0xD4, 0xCF, 0xC0, 0xDE, b' ', 0xC0, 0xDB, 0xB3];
/// ｽｽﾞｷ ﾊﾅｺ.
const SUZUKI: &[u8] = &[0xBD, 0xBD, 0xDE, 0xB7, b' ', 0xCA, 0xC5, 0xBA];

/// The sample file, field by field from the layout: collector 1234567890 at bank 0005 branch
/// 001 普通 1234567, debit date 0410; debit 1: bank 0009 branch 123 普通 7654321 ﾔﾏﾀﾞ ﾀﾛｳ
/// ¥30,000, first debit; debit 2: bank 0005 branch 045 当座 0001234 ｽｽﾞｷ ﾊﾅｺ ¥50,000, first
/// debit. `results` are the two result codes (b'0' in a request); `figures` the trailer's
/// collected count and amount, failed count and amount (36 digits).
fn sample(results: [u8; 2], figures: &str) -> Vec<u8> {
    let mut header = b"1".to_vec();
    header.extend(b"91");
    header.extend(b"0");
    header.extend(b"1234567890");
    header.extend(pad(COLLECTOR_NAME, 40));
    header.extend(b"0410");
    header.extend(b"0005");
    header.extend(pad(b"", 15));
    header.extend(b"001");
    header.extend(pad(b"", 15));
    header.extend(b"1");
    header.extend(b"1234567");
    header.extend(pad(b"", 17));
    let data = |bank: &[u8],
                branch: &[u8],
                kind: u8,
                number: &[u8],
                name: &[u8],
                amount: &[u8],
                seq: &[u8],
                result: u8| {
        let mut d = b"2".to_vec();
        d.extend(bank);
        d.extend(pad(b"", 15));
        d.extend(branch);
        d.extend(pad(b"", 15));
        d.extend(pad(b"", 4));
        d.push(kind);
        d.extend(number);
        d.extend(pad(name, 30));
        d.extend(amount);
        d.extend(b"1");
        d.extend(seq);
        d.push(result);
        d.extend(pad(b"", 8));
        d
    };
    let one = data(
        b"0009",
        b"123",
        b'1',
        b"7654321",
        YAMADA,
        b"0000030000",
        b"00000000000000000001",
        results[0],
    );
    let two = data(
        b"0005",
        b"045",
        b'2',
        b"0001234",
        SUZUKI,
        b"0000050000",
        b"00000000000000000002",
        results[1],
    );
    let mut trailer = b"8".to_vec();
    trailer.extend(b"000002");
    trailer.extend(b"000000080000");
    assert_eq!(figures.len(), 36);
    trailer.extend(figures.as_bytes());
    trailer.extend(pad(b"", 65));
    let end = pad(b"9", 120);
    let mut out = Vec::new();
    for record in [header, one, two, trailer, end] {
        assert_eq!(record.len(), 120);
        out.extend(record);
        out.extend(b"\r\n");
    }
    out
}

const REQUEST_FIGURES: &str = "000000000000000000000000000000000000";
/// Debit 1 collected (¥30,000), debit 2 failed (¥50,000).
const RESULT_FIGURES: &str = "000001000000030000000001000000050000";

/// Byte offsets in the sample (each record 120 bytes + CR LF).
fn at(line: usize, column: usize) -> usize {
    (line - 1) * 122 + column
}

struct Book {
    m: Market,
    customers: [Uuid; 3],
    wraps: [Uuid; 3],
    plans: [String; 3],
}

async fn set_account(
    server: &TestServer,
    token: &str,
    customer: Uuid,
    body: Value,
) -> crate::common::Res {
    server
        .put(
            token,
            &format!("/v1/customers/{customer}/bank-account"),
            body,
        )
        .await
}

/// Three customers with a ¥30,000, a ¥50,000 and a ¥20,000 monthly plan due on the 10th; the
/// first two with bank accounts (given in full-width katakana), the third without.
async fn book(server: &TestServer) -> Book {
    let m = market(server, "Sakura", 3).await;
    let mut customers = [Uuid::nil(); 3];
    let mut wraps = [Uuid::nil(); 3];
    let mut plans: [String; 3] = Default::default();
    for (i, amount) in ["30000", "50000", "20000"].iter().enumerate() {
        customers[i] = make_customer(server, &m.bank, &format!("C-{i}"), 3).await;
        wraps[i] = open_wrap(server, &m, customers[i]).await;
        let r = server
            .post(
                &m.bank,
                &format!("/v1/wraps/{}/plans", wraps[i]),
                Some(json!({ "kind": "contribution", "amount": amount, "day_of_month": 10, "start_date": DAY })),
            )
            .await;
        plans[i] = r.ok(201)["id"].as_str().unwrap().to_owned();
    }
    let r = set_account(
        server,
        &m.bank,
        customers[0],
        json!({"bank_code": "0009", "branch_code": "123", "account_type": 1,
               "account_number": "7654321", "holder_name": "ヤマダ　タロウ"}),
    )
    .await;
    assert_eq!(r.ok(200)["holder_name"], "ﾔﾏﾀﾞ ﾀﾛｳ", "{}", r.text);
    let r = set_account(
        server,
        &m.bank,
        customers[1],
        json!({"bank_code": "0005", "branch_code": "045", "account_type": 2,
               "account_number": "0001234", "holder_name": "すずき はなこ"}),
    )
    .await;
    assert_eq!(r.ok(200)["holder_name"], "ｽｽﾞｷ ﾊﾅｺ", "{}", r.text);
    Book {
        m,
        customers,
        wraps,
        plans,
    }
}

fn request_body() -> Value {
    json!({
        "collection_date": DAY,
        "collector": {
            "code": "1234567890", "name": "カ)サクララップ", "bank_code": "0005",
            "branch_code": "001", "account_type": 1, "account_number": "1234567"
        }
    })
}

async fn upload(
    server: &TestServer,
    token: &str,
    request: &str,
    bytes: Vec<u8>,
) -> crate::common::Res {
    server
        .send(
            Method::POST,
            Some(token),
            &format!("/v1/zengin/debit-requests/{request}/results"),
            &[],
            Some(("application/octet-stream", bytes)),
        )
        .await
}

async fn cash(server: &TestServer, token: &str, customer: Uuid) -> String {
    let r = server
        .get(token, &format!("/v1/customers/{customer}"))
        .await;
    r.ok(200)["cash"][0]["balance"].as_str().unwrap().to_owned()
}

on_each_backend!(
    a_request_and_its_result_round_trip,
    a_request_and_its_result_round_trip
);
async fn a_request_and_its_result_round_trip(backend: &'static str) {
    let server = TestServer::start_on(backend, DAY).await;
    let b = book(&server).await;
    let bank = &b.m.bank;

    let r = server
        .post(bank, "/v1/zengin/debit-requests", Some(request_body()))
        .await;
    let created = r.ok(201).clone();
    assert_eq!(created["records"], 2, "{created}");
    assert_eq!(created["total_amount"], "80000");
    assert_eq!(created["status"], "requested");
    // The third customer has no bank account: left out, with the reason.
    assert_eq!(created["skipped"].as_array().unwrap().len(), 1, "{created}");
    assert_eq!(created["skipped"][0]["plan_id"], b.plans[2].as_str());
    assert!(
        created["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no bank account")
    );
    let id = created["id"].as_str().unwrap().to_owned();

    // The file, byte for byte, twice.
    let path = format!("/v1/zengin/debit-requests/{id}/file");
    let (status, headers, bytes) = server.get_bytes(bank, &path).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(bytes, sample([b'0', b'0'], REQUEST_FIGURES));
    assert_eq!(server.get_bytes(bank, &path).await.2, bytes);

    // One request per date.
    server
        .post(bank, "/v1/zengin/debit-requests", Some(request_body()))
        .await
        .problem(409);

    // The bank's answer: the first collected, the second short of funds.
    let entries = server.count_rows("ledger_entries").await;
    let result = sample([b'0', b'1'], RESULT_FIGURES);
    let r = upload(&server, bank, &id, result.clone()).await;
    let applied = r.ok(200);
    assert_eq!(applied["applied"], 2, "{applied}");
    assert_eq!(applied["unchanged"], 0);
    assert_eq!(applied["request"]["status"], "resulted");
    assert_eq!(applied["request"]["collected_count"], 1);
    assert_eq!(applied["request"]["collected_amount"], "30000");
    assert_eq!(applied["request"]["failed_count"], 1);
    assert_eq!(applied["request"]["failed_amount"], "50000");
    // One deposit: the collected debit, into the first customer's cash.
    assert_eq!(server.count_rows("ledger_entries").await, entries + 1);
    assert_eq!(cash(&server, bank, b.customers[0]).await, "30000");
    assert_eq!(cash(&server, bank, b.customers[1]).await, "0");

    // Per plan.
    let debits = |i: usize| {
        let (server, bank, w, p) = (&server, bank.clone(), b.wraps[i], b.plans[i].clone());
        async move {
            let r = server
                .get(&bank, &format!("/v1/wraps/{w}/plans/{p}/debits"))
                .await;
            r.ok(200)["items"].clone()
        }
    };
    let one = debits(0).await;
    assert_eq!(one[0]["status"], "collected", "{one}");
    assert_eq!(one[0]["result_code"], 0);
    assert_eq!(one[0]["settled_date"], DAY);
    assert!(one[0]["entry_id"].is_string());
    let two = debits(1).await;
    assert_eq!(two[0]["status"], "failed", "{two}");
    assert_eq!(two[0]["result"], "insufficient_funds");
    assert!(two[0]["reason"].as_str().unwrap().contains("資金不足"));
    assert!(two[0].get("entry_id").is_none());
    assert_eq!(debits(2).await, json!([]));

    // The same file again: nothing changes.
    let r = upload(&server, bank, &id, result).await;
    assert_eq!(r.ok(200)["applied"], 0, "{}", r.text);
    assert_eq!(r.body["unchanged"], 2);
    assert_eq!(server.count_rows("ledger_entries").await, entries + 1);
    assert_eq!(cash(&server, bank, b.customers[0]).await, "30000");

    // Another answer for a debit already recorded is refused whole.
    let r = upload(
        &server,
        bank,
        &id,
        sample([b'0', b'0'], "000002000000080000000000000000000000"),
    )
    .await;
    let p = r.problem(409);
    assert_eq!(p["errors"][0]["field"], "line 3: result_code", "{p}");
    assert_eq!(cash(&server, bank, b.customers[1]).await, "0");

    // Head office's list.
    let r = server.get(bank, "/v1/zengin/debit-requests").await;
    let list = r.ok(200);
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert_eq!(list["items"][0]["failed_count"], 1);

    // End of day of the 10th: the collected money pays its plan; the failed one is skipped.
    let date = DAY.parse().unwrap();
    let s = run_days(&server, date, date).await;
    assert_eq!(s["status"], "finished", "{s}");
    let runs = |i: usize| {
        let (server, bank, w, p) = (&server, bank.clone(), b.wraps[i], b.plans[i].clone());
        async move {
            let r = server
                .get(&bank, &format!("/v1/wraps/{w}/plans/{p}/runs"))
                .await;
            r.ok(200)["items"][0]["status"].clone()
        }
    };
    assert_eq!(runs(0).await, "executed");
    assert_eq!(runs(1).await, "skipped");
    assert_books_balance(&server).await;
    server.stop().await;
}

on_each_backend!(
    malformed_result_files_apply_nothing,
    malformed_result_files_apply_nothing
);
async fn malformed_result_files_apply_nothing(backend: &'static str) {
    let server = TestServer::start_on(backend, DAY).await;
    let b = book(&server).await;
    let bank = &b.m.bank;
    let r = server
        .post(bank, "/v1/zengin/debit-requests", Some(request_body()))
        .await;
    let id = r.ok(201)["id"].as_str().unwrap().to_owned();
    let good = sample([b'0', b'1'], RESULT_FIGURES);
    let with = |changes: &[(usize, &[u8])]| {
        let mut bytes = good.clone();
        for (offset, new) in changes {
            bytes[*offset..*offset + new.len()].copy_from_slice(new);
        }
        bytes
    };
    let mut short = good.clone();
    short.remove(at(2, 60));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a record one byte short", short, "line 2: record"),
        (
            "a data record where the trailer stands",
            with(&[(at(4, 0), b"2")]),
            "line 4: amount",
        ),
        (
            "record type 3",
            with(&[(at(4, 0), b"3")]),
            "line 4: record_type",
        ),
        (
            "an unknown result code",
            with(&[(at(2, 111), b"5")]),
            "line 2: result_code",
        ),
        (
            "a total that disagrees",
            with(&[(at(4, 7), b"000000080001")]),
            "line 4: total_amount",
        ),
        (
            "collected figures that disagree",
            with(&[(at(4, 19), b"000002")]),
            "line 4: collected_count",
        ),
        (
            "an unknown customer number",
            with(&[(at(3, 91), b"00000000000000000009")]),
            "line 3: customer_number",
        ),
        (
            "another account",
            with(&[(at(2, 43), b"7654320")]),
            "line 2: account_number",
        ),
        (
            "another collector",
            with(&[(at(1, 4), b"1234567899")]),
            "line 1: collector_code",
        ),
        (
            "letters in an amount",
            with(&[(at(3, 80), b"00000X0000")]),
            "line 3: amount",
        ),
        (
            "another kind of file",
            with(&[(at(1, 1), b"21")]),
            "line 1: kind",
        ),
    ];
    let entries = server.count_rows("ledger_entries").await;
    for (what, bytes, field) in cases {
        let r = upload(&server, bank, &id, bytes).await;
        let p = r.problem(422);
        assert_eq!(p["errors"][0]["field"], field, "{what}: {p}");
        assert!(
            p["detail"]
                .as_str()
                .unwrap()
                .contains("nothing was applied"),
            "{p}"
        );
        assert_eq!(server.count_rows("ledger_entries").await, entries, "{what}");
    }
    let r = server
        .get(bank, &format!("/v1/zengin/debit-requests/{id}"))
        .await;
    let v = r.ok(200);
    assert_eq!(v["status"], "requested", "{v}");
    assert!(
        v["debits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "requested")
    );
    assert_eq!(cash(&server, bank, b.customers[0]).await, "0");
    // Not a file at all.
    let r = server
        .send(
            Method::POST,
            Some(bank),
            &format!("/v1/zengin/debit-requests/{id}/results"),
            &[],
            Some(("application/json", b"{}".to_vec())),
        )
        .await;
    r.problem(415);
    server.stop().await;
}

on_each_backend!(bank_accounts_are_checked, bank_accounts_are_checked);
async fn bank_accounts_are_checked(backend: &'static str) {
    let server = TestServer::start_on(backend, DAY).await;
    let m = market(&server, "Sakura", 3).await;
    let c = make_customer(&server, &m.bank, "C-1", 3).await;
    let good = json!({"bank_code": "0009", "branch_code": "123", "account_type": 1,
                      "account_number": "7654321", "holder_name": "ヤマダ タロウ"});
    let cases = [
        ("holder_name", json!("山田太郎")),
        ("holder_name", json!("yamada")),
        ("holder_name", json!("ア".repeat(31))),
        ("bank_code", json!("09")),
        ("branch_code", json!("12a")),
        ("account_type", json!(4)),
        ("account_number", json!("765432")),
    ];
    for (field, value) in cases {
        let mut body = good.clone();
        body[field] = value;
        let r = set_account(&server, &m.bank, c, body).await;
        assert_eq!(r.problem(422)["errors"][0]["field"], field, "{}", r.text);
    }
    assert_eq!(server.count_rows("customer_bank_accounts").await, 0);
    server
        .get(&m.bank, &format!("/v1/customers/{c}/bank-account"))
        .await
        .problem(404);
    set_account(&server, &m.bank, c, good).await.ok(200);
    let r = server
        .get(&m.bank, &format!("/v1/customers/{c}/bank-account"))
        .await;
    assert_eq!(r.ok(200)["holder_name"], "ﾔﾏﾀﾞ ﾀﾛｳ");
    assert_eq!(r.body["account_number"], "7654321");
    // A viewer reads but does not write.
    let viewer = server.token_for_role(m.bank_id, "viewer").await;
    server
        .get(&viewer, &format!("/v1/customers/{c}/bank-account"))
        .await
        .ok(200);
    set_account(&server, &viewer, c, json!({}))
        .await
        .problem(403);
    server.stop().await;
}

on_each_backend!(zengin_is_isolated, zengin_is_isolated);
async fn zengin_is_isolated(backend: &'static str) {
    let server = TestServer::start_on(backend, DAY).await;
    let b = book(&server).await;
    let bank = &b.m.bank;
    let r = server
        .post(bank, "/v1/zengin/debit-requests", Some(request_body()))
        .await;
    let id = r.ok(201)["id"].as_str().unwrap().to_owned();
    let (_, other) = server.tenant_with_token("distributor", "Other Bank").await;
    let (c, w, p) = (b.customers[0], b.wraps[0], &b.plans[0]);

    // Another distributor: every id of the first is missing.
    for path in [
        format!("/v1/customers/{c}/bank-account"),
        format!("/v1/zengin/debit-requests/{id}"),
        format!("/v1/zengin/debit-requests/{id}/file"),
        format!("/v1/wraps/{w}/plans/{p}/debits"),
    ] {
        server.get(&other, &path).await.problem(404);
    }
    set_account(
        &server,
        &other,
        c,
        json!({"bank_code": "0001", "branch_code": "001", "account_type": 1,
               "account_number": "1111111", "holder_name": "ｱ"}),
    )
    .await
    .problem(404);
    upload(
        &server,
        &other,
        &id,
        sample([b'0', b'0'], "000002000000080000000000000000000000"),
    )
    .await
    .problem(404);
    let r = server.get(&other, "/v1/zengin/debit-requests").await;
    assert_eq!(r.ok(200)["items"], json!([]));
    // Its own request for the same date is its own (no plans: refused by field).
    let r = server
        .post(&other, "/v1/zengin/debit-requests", Some(request_body()))
        .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "collection_date");

    // The manager of the strategy sees the wrap, never its customer's bank account.
    for path in [
        format!("/v1/zengin/debit-requests/{id}"),
        format!("/v1/wraps/{w}/plans/{p}/debits"),
        format!("/v1/customers/{c}/bank-account"),
    ] {
        server.get(&b.m.manager, &path).await.problem(404);
    }
    server
        .get(&b.m.manager, "/v1/zengin/debit-requests")
        .await
        .problem(403);
    // Nothing of the first distributor changed.
    let r = server
        .get(bank, &format!("/v1/customers/{c}/bank-account"))
        .await;
    assert_eq!(r.ok(200)["account_number"], "7654321");
    assert_eq!(cash(&server, bank, c).await, "0");
    server.stop().await;
}

/// POSTs `body` and returns the status and the raw bytes (a file is Shift_JIS).
async fn post_for_bytes(
    server: &TestServer,
    token: &str,
    path: &str,
    body: Value,
) -> (u16, Vec<u8>) {
    let r = server
        .http
        .post(format!("{}{path}", server.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

on_each_backend!(
    payouts_are_written_as_a_transfer_file,
    payouts_are_written_as_a_transfer_file
);
async fn payouts_are_written_as_a_transfer_file(backend: &'static str) {
    let server = TestServer::start_on(backend, DAY).await;
    let m = market(&server, "Sakura", 3).await;
    let c = make_customer(&server, &m.bank, "C-1", 3).await;
    set_account(
        &server,
        &m.bank,
        c,
        json!({"bank_code": "0009", "branch_code": "123", "account_type": 1,
               "account_number": "7654321", "holder_name": "ヤマダ タロウ"}),
    )
    .await
    .ok(200);
    crate::customers::deposit(&server, &m.bank, c, "100000").await;
    let withdraw = |customer: Uuid, amount: &'static str| {
        let (server, bank) = (&server, m.bank.clone());
        async move {
            server
                .post_idem(
                    &bank,
                    &format!("/v1/customers/{customer}/withdrawals"),
                    &Uuid::now_v7().to_string(),
                    json!({ "amount": amount }),
                )
                .await
                .ok(201)
                .clone()
        }
    };
    withdraw(c, "40000").await;
    let body = json!({
        "transfer_date": DAY,
        "sender": {"code": "1234567890", "name": "サクラ", "bank_code": "0005",
                   "branch_code": "001", "account_type": 1, "account_number": "1234567"}
    });
    // By hand from the 総合振込 layout: sender ｻｸﾗ, 0410, one telegraphic transfer of ¥40,000.
    let mut header = b"1210".to_vec();
    header.extend(b"1234567890");
    header.extend(pad(&[0xBB, 0xB8, 0xD7], 40));
    header.extend(b"0410");
    header.extend(b"0005");
    header.extend(pad(b"", 15));
    header.extend(b"001");
    header.extend(pad(b"", 15));
    header.extend(b"11234567");
    header.extend(pad(b"", 17));
    let mut data = b"20009".to_vec();
    data.extend(pad(b"", 15));
    data.extend(b"123");
    data.extend(pad(b"", 15));
    data.extend(b"000017654321");
    data.extend(pad(YAMADA, 30));
    data.extend(b"0000040000");
    data.extend(b"0000000000000000000007");
    data.extend(pad(b"", 8));
    let mut trailer = b"8000001000000040000".to_vec();
    trailer.extend(pad(b"", 101));
    let mut expected = Vec::new();
    for record in [header, data, trailer, pad(b"9", 120)] {
        assert_eq!(record.len(), 120);
        expected.extend(record);
        expected.extend(b"\r\n");
    }
    let (status, bytes) =
        post_for_bytes(&server, &m.bank, "/v1/zengin/transfers", body.clone()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(bytes, expected);

    // Another distributor has no payouts of its own that day.
    let (_, other) = server.tenant_with_token("distributor", "Other Bank").await;
    let r = server
        .post(&other, "/v1/zengin/transfers", Some(body.clone()))
        .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "transfer_date");

    // A payout to a customer without a bank account cannot be transferred.
    let c2 = make_customer(&server, &m.bank, "C-2", 3).await;
    crate::customers::deposit(&server, &m.bank, c2, "5000").await;
    withdraw(c2, "1000").await;
    let r = server
        .post(&m.bank, "/v1/zengin/transfers", Some(body))
        .await;
    assert!(
        r.problem(409)["detail"]
            .as_str()
            .unwrap()
            .contains(&c2.to_string())
    );
    server.stop().await;
}
