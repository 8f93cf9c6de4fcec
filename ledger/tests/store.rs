//! The store suite: every rule of the books, tried against real databases. Each test runs
//! unchanged on SQLite and, when `WRAP_TEST_POSTGRES_URL` is set, on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, Utc};
use common::{Book, day, dec};
use ledger::{
    AsOf, Asset, EntryStatus, HoldCommit, HoldState, HoldTerms, LedgerError, MAX_BATCH, NewPosting,
    Reversal, Side,
};
use sea_orm::ConnectionTrait;

/// Everything observable about a tenant's books, to prove a refusal changed nothing.
async fn snapshot(
    book: &Book,
    accounts: &[uuid::Uuid],
) -> (Vec<ledger::Balance>, u64, Vec<ledger::TrialBalanceLine>) {
    let mut balances = Vec::new();
    for a in accounts {
        balances.push(book.ledger.account(book.tenant, *a).await.unwrap().balance);
    }
    let chain = book.ledger.verify_chain(book.tenant).await.unwrap();
    assert!(chain.first_break.is_none(), "{chain:?}");
    (
        balances,
        chain.entries_checked,
        book.ledger.trial_balance(Some(book.tenant)).await.unwrap(),
    )
}

#[tokio::test]
async fn extreme_values_round_trip_exactly() {
    on_each_backend!(|ledger, _db| {
        let book = Book::new(&ledger).await;
        ledger
            .create_asset(&Asset::instrument("FINE8", 8, "JPY", 1))
            .await
            .unwrap();
        let world = book.account("world:jpy", "JPY", Side::Credit, false).await;
        let cash = book.account("cash", "JPY", Side::Debit, true).await;
        let w8 = book
            .account("world:fine", "FINE8", Side::Credit, false)
            .await;
        let u8 = book.account("units", "FINE8", Side::Debit, false).await;
        let big = "999999999999999";
        let e = ledger
            .post_entry(book.transfer("big", world, cash, "JPY", big))
            .await
            .unwrap();
        assert_eq!(e.entry.postings[0].amount, dec(big));
        let e = ledger
            .post_entry(book.transfer("tiny", w8, u8, "FINE8", "0.00000001"))
            .await
            .unwrap();
        assert_eq!(e.entry.postings[1].amount, dec("0.00000001"));
        // Read back through every path.
        assert_eq!(book.posted(cash).await, dec(big));
        assert_eq!(book.posted(u8).await, dec("0.00000001"));
        let read = ledger.entry(book.tenant, e.entry.id).await.unwrap();
        assert_eq!(read, e.entry);
        let past = ledger
            .balance(book.tenant, cash, AsOf::EffectiveDate(day(30)))
            .await
            .unwrap();
        assert_eq!(past.posted, dec(big));
        let max = ledger
            .post_entry(book.transfer("max8", w8, u8, "FINE8", "92233720368.54775806"))
            .await
            .unwrap();
        assert_eq!(max.entry.postings[0].amount, dec("92233720368.54775806"));
        assert_eq!(book.posted(u8).await, dec("92233720368.54775807"));
        // One more smallest unit would overflow the counter: refused, nothing written.
        let err = ledger
            .post_entry(book.transfer("over", w8, u8, "FINE8", "0.00000001"))
            .await
            .unwrap_err();
        // Both accounts' counters are full; the first posting's (the credit) is named.
        assert!(
            matches!(&err, LedgerError::Overflow { account_id, .. } if *account_id == w8),
            "{err}"
        );
        assert!(err.to_string().contains(&w8.to_string()), "{err}");
        assert_eq!(book.posted(u8).await, dec("92233720368.54775807"));
    });
}

/// Each counter fits in i64, but all the accounts of an asset together do not: the trial
/// balance and the reconciliation sums stay exact (SQLite's SUM of integers used to fail
/// with "integer overflow" here, and the trial balance answered 500).
#[tokio::test]
async fn trial_balance_sums_beyond_64_bits() {
    on_each_backend!(|ledger, db| {
        let book = Book::new(&ledger).await;
        let near_max = "6000000000000000000"; // 6e18: two of them pass i64::MAX (9.2e18)
        for name in ["a", "b"] {
            let bank = book
                .account(&format!("omnibus:JPY:{name}"), "JPY", Side::Credit, false)
                .await;
            let customer = book
                .account(
                    &format!("customer:{name}:cash:JPY"),
                    "JPY",
                    Side::Debit,
                    false,
                )
                .await;
            ledger
                .post_entry(book.transfer(name, bank, customer, "JPY", near_max))
                .await
                .unwrap();
        }
        let lines = ledger.trial_balance(Some(book.tenant)).await.unwrap();
        let jpy = lines.iter().find(|l| l.asset == "JPY").unwrap();
        assert_eq!(jpy.debits, dec("12000000000000000000"));
        assert_eq!(jpy.credits, dec("12000000000000000000"));
        assert_eq!(jpy.difference, dec("0"));
        let platform = ledger.trial_balance(None).await.unwrap();
        assert!(
            platform
                .iter()
                .any(|l| l.asset == "JPY" && l.debits == jpy.debits)
        );
        let sums = ledger::store::reconciliation::holdings(&db.db, Some(book.tenant), None)
            .await
            .unwrap();
        let customers = sums
            .iter()
            .find(|h| h.group == ledger::store::reconciliation::Group::Customer)
            .unwrap();
        assert_eq!(customers.debits_posted, 12_000_000_000_000_000_000_i128);
        let later = (Utc::now() + Duration::days(30)).date_naive();
        let as_of = ledger::store::reconciliation::holdings(&db.db, Some(book.tenant), Some(later))
            .await
            .unwrap();
        assert_eq!(as_of, sums);
    });
}

#[tokio::test]
async fn rejections_write_nothing() {
    on_each_backend!(|ledger, _db| {
        let book = Book::new(&ledger).await;
        let world = book.account("world", "JPY", Side::Credit, false).await;
        let cash = book.account("cash", "JPY", Side::Debit, true).await;
        let other = book.account("other", "JPY", Side::Debit, true).await;
        let usd = book.account("usd", "USD", Side::Debit, false).await;
        let spare = book.account("spare", "JPY", Side::Debit, false).await;
        ledger
            .post_entry(book.transfer("fund", world, cash, "JPY", "1000"))
            .await
            .unwrap();
        let all = [world, cash, other, usd];
        let before = snapshot(&book, &all).await;

        let cases: Vec<(&str, ledger::NewEntry, &str)> = vec![
            (
                "unbalanced",
                book.entry(
                    "u",
                    vec![
                        NewPosting::credit(cash, "JPY", dec("10")),
                        NewPosting::debit(other, "JPY", dec("9")),
                    ],
                ),
                "does not balance in JPY: debits 9, credits 10 (difference -1)",
            ),
            (
                "overdraw",
                book.transfer("o", cash, other, "JPY", "1001"),
                "would go negative: available 1000 JPY, after this entry -1",
            ),
            (
                "too precise",
                book.transfer("p", cash, other, "JPY", "1.5"),
                "1 decimal places; the asset allows 0",
            ),
            (
                "zero",
                book.transfer("z", cash, other, "JPY", "0"),
                "amount must be greater than zero",
            ),
            (
                "asset mismatch",
                book.transfer("m", cash, usd, "JPY", "1"),
                "holds USD, not JPY",
            ),
            (
                "unknown account",
                book.transfer("x", cash, uuid::Uuid::now_v7(), "JPY", "1"),
                "not found",
            ),
            (
                "one posting",
                book.entry("one", vec![NewPosting::debit(cash, "JPY", dec("1"))]),
                "at least two postings",
            ),
            (
                "bad kind",
                {
                    let mut e = book.transfer("k", world, cash, "JPY", "1");
                    e.kind = "Bad Kind".into();
                    e
                },
                "entry kind",
            ),
            (
                "empty key",
                book.transfer("", world, cash, "JPY", "1"),
                "idempotency key",
            ),
            (
                "metadata not object",
                {
                    let mut e = book.transfer("md", world, cash, "JPY", "1");
                    e.metadata = serde_json::json!(3);
                    e
                },
                "metadata",
            ),
        ];
        for (name, entry, expected) in cases {
            let err = ledger.post_entry(entry).await.expect_err(name).to_string();
            assert!(err.contains(expected), "{name}: {err}");
            assert_eq!(
                snapshot(&book, &all).await,
                before,
                "{name} changed the books"
            );
        }
        // A closed account refuses postings.
        ledger.close_account(book.tenant, spare).await.unwrap();
        let err = ledger
            .post_entry(book.transfer("c", world, spare, "JPY", "1"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, LedgerError::AccountClosed(id) if id == spare),
            "{err}"
        );
        // An account with a balance cannot be closed.
        assert!(matches!(
            ledger.close_account(book.tenant, cash).await,
            Err(LedgerError::CannotClose { .. })
        ));
        assert_eq!(snapshot(&book, &all).await, before);
    });
}

#[tokio::test]
async fn cross_tenant_postings_are_refused() {
    on_each_backend!(|ledger, _db| {
        let a = Book::new(&ledger).await;
        let b = Book::new(&ledger).await;
        let a_world = a.account("world", "JPY", Side::Credit, false).await;
        let a_cash = a.account("cash", "JPY", Side::Debit, false).await;
        let b_cash = b.account("cash", "JPY", Side::Debit, false).await;
        // Tenant A cannot post to B's account: it answers exactly like an unknown account.
        let err = ledger
            .post_entry(a.transfer("x", a_world, b_cash, "JPY", "5"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, LedgerError::AccountNotFound(id) if id == b_cash),
            "{err}"
        );
        // Nor read it, nor its entries.
        assert!(matches!(
            ledger.account(a.tenant, b_cash).await,
            Err(LedgerError::AccountNotFound(_))
        ));
        assert!(matches!(
            ledger.balance(a.tenant, b_cash, AsOf::Now).await,
            Err(LedgerError::AccountNotFound(_))
        ));
        assert!(matches!(
            ledger.account_entries(a.tenant, b_cash, None, 10).await,
            Err(LedgerError::AccountNotFound(_))
        ));
        let posted = ledger
            .post_entry(a.transfer("ok", a_world, a_cash, "JPY", "5"))
            .await
            .unwrap();
        assert!(matches!(
            ledger.entry(b.tenant, posted.entry.id).await,
            Err(LedgerError::EntryNotFound(_))
        ));
        // B cannot reverse A's entry.
        let err = ledger
            .reverse(Reversal {
                tenant_id: b.tenant,
                entry_id: posted.entry.id,
                idempotency_key: "r".into(),
                effective_date: day(3),
                description: String::new(),
            })
            .await
            .unwrap_err();
        assert!(matches!(err, LedgerError::EntryNotFound(_)), "{err}");
        // The same account code may exist in both tenants.
        assert_eq!(
            ledger
                .account_by_code(b.tenant, "cash")
                .await
                .unwrap()
                .map(|a| a.id),
            Some(b_cash)
        );
        let err = ledger
            .create_account(&ledger::NewAccount {
                tenant_id: a.tenant,
                code: "cash".into(),
                asset: "JPY".into(),
                normal_side: Side::Debit,
                no_negative: false,
                metadata: serde_json::json!({}),
            })
            .await
            .unwrap_err();
        assert!(matches!(err, LedgerError::AccountCodeTaken(_)), "{err}");
        // The schema refuses a posting row pointing at another tenant's account.
        let backend = _db.db.get_database_backend();
        let sql = match backend {
            sea_orm::DbBackend::Postgres => {
                "INSERT INTO ledger_postings (tenant_id, entry_id, idx, account_id, seq, asset_code, side, amount, pending, effective_date, booked_at) VALUES ($1, $2, 9, $3, 1, 'JPY', 'debit', 1, false, '2026-11-02', 0)"
            }
            _ => {
                "INSERT INTO ledger_postings (tenant_id, entry_id, idx, account_id, seq, asset_code, side, amount, pending, effective_date, booked_at) VALUES (?, ?, 9, ?, 1, 'JPY', 'debit', 1, false, '2026-11-02', 0)"
            }
        };
        let res = _db
            .db
            .execute_raw(sea_orm::Statement::from_sql_and_values(
                backend,
                sql,
                [a.tenant.into(), posted.entry.id.into(), b_cash.into()],
            ))
            .await;
        assert!(
            res.is_err(),
            "a posting to another tenant's account was stored"
        );
    });
}

#[tokio::test]
async fn idempotent_replay_and_conflict() {
    on_each_backend!(|ledger, _db| {
        let book = Book::new(&ledger).await;
        let world = book.account("world", "JPY", Side::Credit, false).await;
        let cash = book.account("cash", "JPY", Side::Debit, true).await;
        let first = ledger
            .post_entry(book.transfer("dep-1", world, cash, "JPY", "500"))
            .await
            .unwrap();
        assert!(!first.replayed);
        let again = ledger
            .post_entry(book.transfer("dep-1", world, cash, "JPY", "500"))
            .await
            .unwrap();
        assert!(again.replayed);
        assert_eq!(again.entry, first.entry);
        assert_eq!(book.posted(cash).await, dec("500"));
        // Same amount written differently ("500.0") is the same request.
        let same = ledger
            .post_entry(book.transfer("dep-1", world, cash, "JPY", "500.0"))
            .await
            .unwrap();
        assert!(same.replayed);
        // Same key, different content: a conflict naming the first entry, nothing written.
        let err = ledger
            .post_entry(book.transfer("dep-1", world, cash, "JPY", "501"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, LedgerError::IdempotencyConflict { entry_id, .. } if entry_id == first.entry.id),
            "{err}"
        );
        assert_eq!(book.posted(cash).await, dec("500"));
        // Concurrent retries of one request write it once.
        let tries =
            (0..16).map(|_| ledger.post_entry(book.transfer("dep-2", world, cash, "JPY", "7")));
        let results = futures::future::join_all(tries).await;
        let written = results
            .iter()
            .filter(|r| matches!(r, Ok(p) if !p.replayed))
            .count();
        assert_eq!(written, 1);
        assert!(results.iter().all(|r| r.is_ok()));
        assert_eq!(book.posted(cash).await, dec("507"));
        // The metrics counter counts writes, not replays or refusals: dep-1 and dep-2.
        assert_eq!(ledger.entries_written(), 2);
        // A replay of a request that would now be refused still answers the original.
        let drain = ledger
            .post_entry(book.transfer("drain", cash, world, "JPY", "507"))
            .await
            .unwrap();
        assert!(!drain.replayed);
        assert!(
            ledger
                .post_entry(book.transfer("drain", cash, world, "JPY", "507"))
                .await
                .unwrap()
                .replayed
        );
    });
}

#[tokio::test]
async fn reversal_mirrors_and_refuses_a_second() {
    on_each_backend!(|ledger, _db| {
        let book = Book::new(&ledger).await;
        let world = book.account("world", "JPY", Side::Credit, false).await;
        let cash = book.account("cash", "JPY", Side::Debit, true).await;
        let fee = book.account("fee", "JPY", Side::Credit, false).await;
        ledger
            .post_entry(book.transfer("fund", world, cash, "JPY", "1000"))
            .await
            .unwrap();
        let charged = ledger
            .post_entry(book.transfer("fee", cash, fee, "JPY", "300"))
            .await
            .unwrap();
        let rev = |key: &str| Reversal {
            tenant_id: book.tenant,
            entry_id: charged.entry.id,
            idempotency_key: key.into(),
            effective_date: day(3),
            description: "charged in error".into(),
        };
        let r = ledger.reverse(rev("rev-1")).await.unwrap();
        assert_eq!(r.entry.reverses_entry_id, Some(charged.entry.id));
        assert_eq!(r.entry.kind, charged.entry.kind);
        for (orig, mirror) in charged.entry.postings.iter().zip(&r.entry.postings) {
            assert_eq!(
                (orig.account_id, orig.amount, orig.side.opposite()),
                (mirror.account_id, mirror.amount, mirror.side)
            );
        }
        assert_eq!(book.posted(cash).await, dec("1000"));
        assert_eq!(book.posted(fee).await, dec("0"));
        // Replaying the same reversal request answers the same entry; a second reversal is refused.
        assert!(ledger.reverse(rev("rev-1")).await.unwrap().replayed);
        let err = ledger.reverse(rev("rev-2")).await.unwrap_err();
        assert!(
            matches!(err, LedgerError::AlreadyReversed { reversal_id, .. } if reversal_id == r.entry.id),
            "{err}"
        );
        // A reversal that would overdraw a no-negative account is refused like any entry.
        let fund = ledger
            .post_entry(book.transfer("fund-2", world, cash, "JPY", "50"))
            .await
            .unwrap();
        ledger
            .post_entry(book.transfer("spend", cash, world, "JPY", "1050"))
            .await
            .unwrap();
        let err = ledger
            .reverse(Reversal {
                entry_id: fund.entry.id,
                ..rev("rev-fund")
            })
            .await
            .unwrap_err();
        assert!(matches!(err, LedgerError::WouldGoNegative { .. }), "{err}");
        // Unknown entries are not found.
        let err = ledger
            .reverse(Reversal {
                entry_id: uuid::Uuid::now_v7(),
                ..rev("rev-x")
            })
            .await
            .unwrap_err();
        assert!(matches!(err, LedgerError::EntryNotFound(_)), "{err}");
    });
}

#[tokio::test]
async fn batch_is_all_or_nothing() {
    on_each_backend!(|ledger, _db| {
        let book = Book::new(&ledger).await;
        let world = book.account("world", "JPY", Side::Credit, false).await;
        let cash = book.account("cash", "JPY", Side::Debit, true).await;
        let mut batch: Vec<_> = (0..999)
            .map(|i| book.transfer(&format!("b{i}"), world, cash, "JPY", "1"))
            .collect();
        // The last one spends more than the batch brought in: the whole batch is refused.
        batch.push(book.transfer("b-spend", cash, world, "JPY", "1000"));
        let before = snapshot(&book, &[world, cash]).await;
        let err = ledger.post_batch(batch.clone()).await.unwrap_err();
        assert!(
            matches!(&err, LedgerError::BatchRejected { index: 999, source } if matches!(**source, LedgerError::WouldGoNegative { .. })),
            "{err}"
        );
        assert_eq!(snapshot(&book, &[world, cash]).await, before);
        // Fixed, it goes through whole, and entries within a batch see each other's effects.
        batch[999] = book.transfer("b-spend", cash, world, "JPY", "999");
        let posted = ledger.post_batch(batch.clone()).await.unwrap();
        assert_eq!(posted.len(), 1000);
        assert_eq!(book.posted(cash).await, dec("0"));
        // Replaying the batch writes nothing.
        assert!(
            ledger
                .post_batch(batch)
                .await
                .unwrap()
                .iter()
                .all(|p| p.replayed)
        );
        assert_eq!(
            ledger
                .verify_chain(book.tenant)
                .await
                .unwrap()
                .entries_checked,
            1000
        );
        // Over the limit.
        let huge: Vec<_> = (0..=MAX_BATCH)
            .map(|i| book.transfer(&format!("h{i}"), world, cash, "JPY", "1"))
            .collect();
        assert!(matches!(
            ledger.post_batch(huge).await,
            Err(LedgerError::BatchTooLarge { .. })
        ));
        // A batch inside the caller's transaction commits or rolls back with it.
        let txn = ledger::begin_write(ledger.db()).await.unwrap();
        ledger
            .post_batch_in(&txn, vec![book.transfer("in-1", world, cash, "JPY", "5")])
            .await
            .unwrap();
        drop(txn); // rolled back
        assert_eq!(book.posted(cash).await, dec("0"));
        let txn = ledger::begin_write(ledger.db()).await.unwrap();
        ledger
            .post_batch_in(&txn, vec![book.transfer("in-1", world, cash, "JPY", "5")])
            .await
            .unwrap();
        sea_orm::TransactionSession::commit(txn).await.unwrap();
        assert_eq!(book.posted(cash).await, dec("5"));
    });
}

#[tokio::test]
async fn hold_lifecycle() {
    on_each_backend!(|ledger, _db| {
        let book = Book::new(&ledger).await;
        let world = book.account("world", "JPY", Side::Credit, false).await;
        let cash = book.account("cash", "JPY", Side::Debit, true).await;
        let shop = book.account("shop", "JPY", Side::Debit, false).await;
        ledger
            .post_entry(book.transfer("fund", world, cash, "JPY", "1000"))
            .await
            .unwrap();
        let hold = |key: &str, amount: &str, expires: Option<chrono::DateTime<Utc>>| {
            let mut e = book.transfer(key, cash, shop, "JPY", amount);
            e.hold = Some(HoldTerms {
                expires_at: expires,
            });
            e
        };
        // A hold reserves: posted unchanged, available reduced.
        let h1 = ledger
            .post_entry(hold("h1", "600", None))
            .await
            .unwrap()
            .entry;
        assert_eq!(h1.status, EntryStatus::Pending);
        assert_eq!(book.posted(cash).await, dec("1000"));
        assert_eq!(book.available(cash).await, dec("400"));
        // Holds count against no-negative accounts.
        let err = ledger
            .post_entry(book.transfer("spend", cash, world, "JPY", "401"))
            .await
            .unwrap_err();
        assert!(matches!(err, LedgerError::WouldGoNegative { .. }), "{err}");
        assert!(matches!(
            ledger.post_entry(hold("h-too-much", "401", None)).await,
            Err(LedgerError::WouldGoNegative { .. })
        ));
        // Partial commit beyond the hold is refused; within it posts and releases the rest.
        let commit = |key: &str, hold_id, postings| HoldCommit {
            tenant_id: book.tenant,
            hold_id,
            idempotency_key: key.into(),
            effective_date: day(4),
            postings,
        };
        let over = vec![
            NewPosting::credit(cash, "JPY", dec("601")),
            NewPosting::debit(shop, "JPY", dec("601")),
        ];
        assert!(matches!(
            ledger
                .commit_hold(commit("c-over", h1.id, Some(over)))
                .await,
            Err(LedgerError::HoldExceeded { .. })
        ));
        let wrong_side = vec![
            NewPosting::debit(cash, "JPY", dec("1")),
            NewPosting::credit(shop, "JPY", dec("1")),
        ];
        assert!(matches!(
            ledger
                .commit_hold(commit("c-side", h1.id, Some(wrong_side)))
                .await,
            Err(LedgerError::HoldExceeded { .. })
        ));
        let part = vec![
            NewPosting::credit(cash, "JPY", dec("250")),
            NewPosting::debit(shop, "JPY", dec("250")),
        ];
        let c = ledger
            .commit_hold(commit("c1", h1.id, Some(part.clone())))
            .await
            .unwrap();
        assert_eq!(c.entry.hold_entry_id, Some(h1.id));
        assert_eq!(book.posted(cash).await, dec("750"));
        assert_eq!(book.available(cash).await, dec("750"));
        assert_eq!(book.posted(shop).await, dec("250"));
        // Committing again: the same request replays, another is refused; voiding is refused.
        assert!(
            ledger
                .commit_hold(commit("c1", h1.id, Some(part)))
                .await
                .unwrap()
                .replayed
        );
        assert!(matches!(
            ledger.commit_hold(commit("c2", h1.id, None)).await,
            Err(LedgerError::HoldNotPending { .. })
        ));
        assert!(matches!(
            ledger.void_hold(book.tenant, h1.id).await,
            Err(LedgerError::HoldNotPending { .. })
        ));
        // A hold cannot be reversed; a posted entry cannot be committed.
        let h2 = ledger
            .post_entry(hold("h2", "100", None))
            .await
            .unwrap()
            .entry;
        let err = ledger
            .reverse(Reversal {
                tenant_id: book.tenant,
                entry_id: h2.id,
                idempotency_key: "rv".into(),
                effective_date: day(4),
                description: String::new(),
            })
            .await;
        assert!(matches!(err, Err(LedgerError::CannotReverseHold(_))));
        assert!(matches!(
            ledger
                .commit_hold(commit("c-posted", c.entry.id, None))
                .await,
            Err(LedgerError::HoldNotPending { .. })
        ));
        // Void releases; voiding twice answers the same; committing after is refused.
        assert_eq!(book.available(cash).await, dec("650"));
        assert_eq!(
            ledger.void_hold(book.tenant, h2.id).await.unwrap(),
            HoldState::Voided
        );
        assert_eq!(
            ledger.void_hold(book.tenant, h2.id).await.unwrap(),
            HoldState::Voided
        );
        assert_eq!(book.available(cash).await, dec("750"));
        assert!(matches!(
            ledger.commit_hold(commit("c3", h2.id, None)).await,
            Err(LedgerError::HoldNotPending { .. })
        ));
        // Full commit.
        let h3 = ledger
            .post_entry(hold("h3", "50", None))
            .await
            .unwrap()
            .entry;
        ledger.commit_hold(commit("c4", h3.id, None)).await.unwrap();
        assert_eq!(book.posted(cash).await, dec("700"));
        // Expiry: a hold in the past is refused; one that expires is released by the sweep
        // and can no longer be committed.
        assert!(
            ledger
                .post_entry(hold("h-past", "1", Some(Utc::now() - Duration::seconds(1))))
                .await
                .is_err()
        );
        let h4 = ledger
            .post_entry(hold(
                "h4",
                "70",
                Some(Utc::now() + Duration::milliseconds(300)),
            ))
            .await
            .unwrap()
            .entry;
        assert_eq!(book.available(cash).await, dec("630"));
        assert_eq!(ledger.expire_holds(Utc::now()).await.unwrap(), 0);
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        assert!(matches!(
            ledger.commit_hold(commit("c5", h4.id, None)).await,
            Err(LedgerError::HoldExpired(_))
        ));
        assert_eq!(ledger.expire_holds(Utc::now()).await.unwrap(), 1);
        assert_eq!(ledger.expire_holds(Utc::now()).await.unwrap(), 0);
        assert_eq!(book.available(cash).await, dec("700"));
        let b = ledger.account(book.tenant, cash).await.unwrap().balance;
        assert_eq!((b.debits_pending, b.credits_pending), (0, 0));
    });
}

#[tokio::test]
async fn balances_as_of_past_dates_and_times_and_pagination() {
    on_each_backend!(|ledger, _db| {
        let book = Book::new(&ledger).await;
        let world = book.account("world", "JPY", Side::Credit, false).await;
        let cash = book.account("cash", "JPY", Side::Debit, false).await;
        let mut marks = Vec::new();
        for d in 1..=5_u32 {
            let mut e = book.transfer(&format!("d{d}"), world, cash, "JPY", &(d * 100).to_string());
            e.effective_date = day(d);
            ledger.post_entry(e).await.unwrap();
            marks.push(Utc::now());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // A back-dated entry booked last.
        let mut late = book.transfer("late", world, cash, "JPY", "7");
        late.effective_date = day(2);
        ledger.post_entry(late).await.unwrap();
        let at = |as_of| ledger.balance(book.tenant, cash, as_of);
        assert_eq!(
            at(AsOf::EffectiveDate(day(2))).await.unwrap().posted,
            dec("307")
        );
        assert_eq!(
            at(AsOf::EffectiveDate(day(30))).await.unwrap().posted,
            dec("1507")
        );
        assert_eq!(
            at(AsOf::EffectiveDate(
                chrono::NaiveDate::from_ymd_opt(2026, 10, 31).unwrap()
            ))
            .await
            .unwrap()
            .posted,
            dec("0")
        );
        assert_eq!(
            at(AsOf::BookedAt(marks[1])).await.unwrap().posted,
            dec("300")
        );
        assert_eq!(
            at(AsOf::BookedAt(marks[4])).await.unwrap().posted,
            dec("1500")
        );
        assert_eq!(at(AsOf::Now).await.unwrap().posted, dec("1507"));
        let world_now = ledger.balance(book.tenant, world, AsOf::Now).await.unwrap();
        assert_eq!(
            (world_now.posted, world_now.credits),
            (dec("1507"), dec("1507"))
        );
        // Pages of two, in booking order, ending with no cursor.
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = ledger
                .account_entries(book.tenant, cash, cursor, 2)
                .await
                .unwrap();
            assert!(page.entries.len() <= 2);
            seen.extend(page.entries.iter().map(|e| e.idempotency_key.clone()));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ["d1", "d2", "d3", "d4", "d5", "late"]);
        // The trial balance nets to zero per asset.
        let tb = ledger.trial_balance(Some(book.tenant)).await.unwrap();
        assert_eq!(tb.len(), 1);
        assert_eq!(
            (tb[0].debits, tb[0].credits, tb[0].difference),
            (dec("1507"), dec("1507"), dec("0"))
        );
    });
}

#[tokio::test]
async fn journal_rows_are_immutable() {
    on_each_backend!(|ledger, tdb| {
        let book = Book::new(&ledger).await;
        let world = book.account("world", "JPY", Side::Credit, false).await;
        let cash = book.account("cash", "JPY", Side::Debit, false).await;
        ledger
            .post_entry(book.transfer("x", world, cash, "JPY", "5"))
            .await
            .unwrap();
        for sql in [
            "UPDATE ledger_entries SET description = 'edited'",
            "DELETE FROM ledger_entries",
            "UPDATE ledger_postings SET amount = 6",
            "DELETE FROM ledger_postings",
        ] {
            assert!(
                tdb.db.execute_unprepared(sql).await.is_err(),
                "{sql} was allowed"
            );
        }
        assert!(
            ledger
                .verify_chain(book.tenant)
                .await
                .unwrap()
                .first_break
                .is_none()
        );
    });
}

#[tokio::test]
async fn tampering_is_detected_at_the_first_broken_link() {
    on_each_backend!(|ledger, tdb| {
        let book = Book::new(&ledger).await;
        let world = book.account("world", "JPY", Side::Credit, false).await;
        let cash = book.account("cash", "JPY", Side::Debit, false).await;
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(
                ledger
                    .post_entry(book.transfer(&format!("t{i}"), world, cash, "JPY", "10"))
                    .await
                    .unwrap()
                    .entry
                    .id,
            );
        }
        let report = ledger.verify_chain(book.tenant).await.unwrap();
        assert_eq!((report.entries_checked, report.first_break), (5, None));
        // An attacker with database access switches the guard off and edits entry 3's amount.
        let (off, on) = match tdb.name {
            "postgres" => (
                "ALTER TABLE ledger_postings DISABLE TRIGGER ledger_postings_immutable".to_owned(),
                "ALTER TABLE ledger_postings ENABLE TRIGGER ledger_postings_immutable".to_owned(),
            ),
            _ => (
                "DROP TRIGGER ledger_postings_no_update".to_owned(),
                String::new(),
            ),
        };
        tdb.db.execute_unprepared(&off).await.unwrap();
        let hex = ids[2].simple().to_string();
        let filter = match tdb.name {
            "postgres" => format!("entry_id = '{}'", ids[2]),
            _ => format!("hex(entry_id) = upper('{hex}')"),
        };
        tdb.db
            .execute_unprepared(&format!(
                "UPDATE ledger_postings SET amount = 11 WHERE {filter}"
            ))
            .await
            .unwrap();
        if !on.is_empty() {
            tdb.db.execute_unprepared(&on).await.unwrap();
        }
        let report = ledger.verify_chain(book.tenant).await.unwrap();
        let brk = report.first_break.expect("tampering not detected");
        assert_eq!(
            (brk.seq, brk.entry_id, report.entries_checked),
            (3, Some(ids[2]), 2)
        );
        assert!(
            brk.reason.contains("does not match its hash"),
            "{}",
            brk.reason
        );
    });
}

#[tokio::test]
async fn assets_are_immutable_and_validated() {
    on_each_backend!(|ledger, _db| {
        ledger
            .create_asset(&Asset::currency("JPY", 0))
            .await
            .unwrap();
        // The same definition again is fine; a different one is a conflict.
        ledger
            .create_asset(&Asset::currency("JPY", 0))
            .await
            .unwrap();
        assert!(matches!(
            ledger.create_asset(&Asset::currency("JPY", 2)).await,
            Err(LedgerError::AssetConflict(_))
        ));
        assert!(matches!(
            ledger
                .create_asset(&Asset::instrument("F1", 0, "EUR", 10_000))
                .await,
            Err(LedgerError::UnknownAsset(_))
        ));
        let fund = ledger
            .create_asset(&Asset::instrument("JP90C000ABC1", 0, "JPY", 10_000))
            .await
            .unwrap();
        assert_eq!(ledger.asset("JP90C000ABC1").await.unwrap(), fund);
        assert!(matches!(
            ledger.asset("NOPE").await,
            Err(LedgerError::UnknownAsset(_))
        ));
    });
}

#[tokio::test]
async fn accounts_are_opened_in_bulk_once() {
    use ledger::NewAccount;
    use ledger::store::accounts_bulk::{ensure_accounts, ensure_accounts_in};
    use uuid::Uuid;
    on_each_backend!(|ledger, _db| {
        let book = Book::new(&ledger).await;
        let other = Book {
            tenant: Uuid::now_v7(),
            ledger: ledger.clone(),
        };
        let existing = book.account("cash", "JPY", Side::Debit, true).await;
        other.account("cash", "JPY", Side::Debit, true).await;
        let new = |b: &Book, code: &str| NewAccount {
            tenant_id: b.tenant,
            code: code.into(),
            asset: "JPY".into(),
            normal_side: Side::Credit,
            no_negative: true,
            metadata: serde_json::json!({ "k": code }),
        };
        // An existing account comes back as it is; new ones are opened once, even when
        // asked for twice in the same call; each tenant gets its own.
        let txn = ledger::begin_write(ledger.db()).await.unwrap();
        let ids = ensure_accounts(
            &txn,
            &[
                new(&book, "cash"),
                new(&book, "a"),
                new(&book, "a"),
                new(&other, "a"),
            ],
        )
        .await
        .unwrap();
        sea_orm::TransactionSession::commit(txn).await.unwrap();
        assert_eq!(ids.len(), 3);
        assert_eq!(ids[&(book.tenant, "cash".to_owned())], existing);
        let a = ids[&(book.tenant, "a".to_owned())];
        assert_ne!(a, ids[&(other.tenant, "a".to_owned())]);
        let opened = ledger.account(book.tenant, a).await.unwrap();
        assert_eq!(
            (opened.code.as_str(), opened.normal_side),
            ("a", Side::Credit)
        );
        // The existing account kept its side: it was not rewritten.
        let cash = ledger.account(book.tenant, existing).await.unwrap();
        assert_eq!(cash.normal_side, Side::Debit);
        // Asking again opens nothing and answers the same ids.
        let txn = ledger::begin_write(ledger.db()).await.unwrap();
        let again = ensure_accounts_in(&txn, book.tenant, &[new(&book, "a"), new(&book, "b")])
            .await
            .unwrap();
        assert_eq!(again["a"], a);
        sea_orm::TransactionSession::commit(txn).await.unwrap();
        // An account of another tenant, or an invalid one, is refused before anything is
        // written: the valid accounts beside it are not opened either.
        let txn = ledger::begin_write(ledger.db()).await.unwrap();
        assert!(
            ensure_accounts_in(&txn, book.tenant, &[new(&book, "d"), new(&other, "e")])
                .await
                .is_err()
        );
        let mut empty_code = new(&book, "f");
        empty_code.code = String::new();
        assert!(
            ensure_accounts(&txn, &[new(&book, "g"), empty_code])
                .await
                .is_err()
        );
        sea_orm::TransactionSession::commit(txn).await.unwrap();
        let codes: Vec<String> = ledger
            .accounts(book.tenant, None, 100)
            .await
            .unwrap()
            .0
            .into_iter()
            .map(|a| a.code)
            .collect();
        assert_eq!(codes.len(), 3, "{codes:?}");
        for code in ["a", "b", "cash"] {
            assert!(codes.contains(&code.to_owned()), "{codes:?}");
        }
    });
}
