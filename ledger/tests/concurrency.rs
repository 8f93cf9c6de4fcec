//! Concurrency: 16 tasks x 500 transfers among 10 accounts, through two independent ledger
//! handles (two writers, two connection pools: as two server processes would be), one of the
//! accounts no-negative and funded for only part of the transfers out of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::{Book, dec};
use ledger::{Ledger, LedgerError, Side};
use rust_decimal::Decimal;
use uuid::Uuid;

const TASKS: usize = 16;
const TRANSFERS: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transfers_never_overdraw() {
    for backend in common::backends() {
        let tdb = common::fresh(backend).await;
        let first = Ledger::new(tdb.db.clone());
        // A second writer with its own connection pool on the same database: another "process".
        let second = Ledger::new(common::reconnect(&tdb).await);
        let book = Book::new(&first).await;
        let world = book.account("world", "JPY", Side::Credit, false).await;
        let mut accounts = Vec::new();
        for i in 0..10 {
            // Account 0 may not go negative; it is funded for 100 transfers of 10 out of it.
            accounts.push(
                book.account(&format!("acc:{i}"), "JPY", Side::Debit, i == 0)
                    .await,
            );
        }
        first
            .post_entry(book.transfer("fund", world, accounts[0], "JPY", "1000"))
            .await
            .unwrap();

        let mut handles = Vec::new();
        for task in 0..TASKS {
            let ledger = if task % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            let accounts = accounts.clone();
            let tenant = book.tenant;
            handles.push(tokio::spawn(async move {
                let mut accepted: Vec<(Uuid, Uuid, Decimal)> = Vec::new();
                let mut refused = 0_usize;
                for j in 0..TRANSFERS {
                    let seed = task * TRANSFERS + j;
                    // Every fourth transfer leaves account 0; nothing ever pays into it.
                    let from = if j % 4 == 0 { 0 } else { 1 + seed % 9 };
                    let to = 1 + (seed * 7 + 3) % 9;
                    let to = if to == from { 1 + to % 9 } else { to };
                    let amount = if from == 0 {
                        Decimal::from(10)
                    } else {
                        Decimal::from(1 + seed % 50)
                    };
                    let entry = ledger::NewEntry {
                        tenant_id: tenant,
                        idempotency_key: format!("t{task}:{j}"),
                        kind: "transfer".into(),
                        effective_date: common::day(5),
                        description: String::new(),
                        metadata: serde_json::json!({}),
                        postings: vec![
                            ledger::NewPosting::credit(accounts[from], "JPY", amount),
                            ledger::NewPosting::debit(accounts[to], "JPY", amount),
                        ],
                        hold: None,
                    };
                    match ledger.post_entry(entry).await {
                        Ok(_) => accepted.push((accounts[from], accounts[to], amount)),
                        Err(LedgerError::WouldGoNegative { account_id, .. })
                            if account_id == accounts[0] =>
                        {
                            refused += 1
                        }
                        Err(e) => panic!("unexpected refusal: {e}"),
                    }
                }
                (accepted, refused)
            }));
        }
        let mut expected: HashMap<Uuid, Decimal> = HashMap::new();
        expected.insert(accounts[0], dec("1000"));
        let (mut out_of_zero, mut refused_total, mut accepted_total) = (0, 0, 0);
        for h in handles {
            let (accepted, refused) = h.await.unwrap();
            refused_total += refused;
            accepted_total += accepted.len();
            for (from, to, amount) in accepted {
                if from == accounts[0] {
                    out_of_zero += 1;
                }
                *expected.entry(from).or_default() -= amount;
                *expected.entry(to).or_default() += amount;
            }
        }
        // 2,000 attempts out of account 0, funds for exactly 100 of them.
        assert_eq!(out_of_zero, 100, "on {backend}");
        assert_eq!(refused_total, TASKS * TRANSFERS / 4 - 100, "on {backend}");
        assert_eq!(accepted_total + refused_total, TASKS * TRANSFERS);
        for a in &accounts {
            assert_eq!(
                book.posted(*a).await,
                expected.get(a).copied().unwrap_or_default(),
                "on {backend}"
            );
        }
        assert_eq!(book.posted(accounts[0]).await, Decimal::ZERO);
        let tb = first.trial_balance(Some(book.tenant)).await.unwrap();
        assert!(tb.iter().all(|l| l.difference.is_zero()), "{tb:?}");
        let chain = first.verify_chain(book.tenant).await.unwrap();
        assert_eq!(
            (chain.entries_checked as usize, chain.first_break),
            (accepted_total + 1, None)
        );
    }
}
