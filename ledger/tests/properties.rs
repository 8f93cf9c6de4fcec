//! Property test of the books: random sequences of operations, valid and invalid. After every
//! operation the trial balance nets to zero per asset, no no-negative account is below zero,
//! every balance counter equals the sum of its postings, and a refused operation changed
//! nothing. Each case runs in a fresh tenant of one database per backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::Book;
use ledger::{Balance, HoldCommit, HoldTerms, Ledger, NewEntry, NewPosting, Reversal, Side};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, Statement, Value};
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Op {
    Transfer { from: usize, to: usize, amount: i64 },
    Hold { from: usize, to: usize, amount: i64 },
    Commit { hold: usize, part: bool },
    Void { hold: usize },
    Reverse { entry: usize },
    Replay { entry: usize },
    Conflict { entry: usize },
    Batch(Vec<(usize, usize, i64)>),
    Unbalanced { from: usize, to: usize, amount: i64 },
    WrongAsset { from: usize, amount: i64 },
}

/// Accounts: 0 world (JPY, credit normal, unrestricted), 1-4 no-negative JPY cash, 5-6
/// unrestricted JPY, 7 USD world, 8 no-negative USD.
const JPY_ACCOUNTS: usize = 7;

fn op() -> impl Strategy<Value = Op> {
    let acc = 0..JPY_ACCOUNTS;
    let amount = -5_i64..400;
    prop_oneof![
        4 => (acc.clone(), acc.clone(), amount.clone()).prop_map(|(from, to, amount)| Op::Transfer { from, to, amount }),
        2 => (acc.clone(), acc.clone(), amount.clone()).prop_map(|(from, to, amount)| Op::Hold { from, to, amount }),
        2 => (0..8_usize, any::<bool>()).prop_map(|(hold, part)| Op::Commit { hold, part }),
        1 => (0..8_usize).prop_map(|hold| Op::Void { hold }),
        1 => (0..16_usize).prop_map(|entry| Op::Reverse { entry }),
        1 => (0..16_usize).prop_map(|entry| Op::Replay { entry }),
        1 => (0..16_usize).prop_map(|entry| Op::Conflict { entry }),
        1 => prop::collection::vec((acc.clone(), acc.clone(), amount.clone()), 1..6).prop_map(Op::Batch),
        1 => (acc.clone(), acc.clone(), 1_i64..100).prop_map(|(from, to, amount)| Op::Unbalanced { from, to, amount }),
        1 => (acc, 1_i64..100).prop_map(|(from, amount)| Op::WrongAsset { from, amount }),
    ]
}

struct Case {
    book: Book,
    accounts: Vec<Uuid>,
    no_negative: Vec<bool>,
    entries: Vec<NewEntry>,
    posted_ids: Vec<Uuid>,
    holds: Vec<Uuid>,
    counter: usize,
}

impl Case {
    async fn new(ledger: &Ledger) -> Self {
        let book = Book::new(ledger).await;
        let mut accounts = Vec::new();
        let mut no_negative = Vec::new();
        let specs = [
            ("world", "JPY", Side::Credit, false),
            ("cash1", "JPY", Side::Debit, true),
            ("cash2", "JPY", Side::Debit, true),
            ("cash3", "JPY", Side::Debit, true),
            ("cash4", "JPY", Side::Debit, true),
            ("free1", "JPY", Side::Debit, false),
            ("free2", "JPY", Side::Debit, false),
            ("world-usd", "USD", Side::Credit, false),
            ("cash-usd", "USD", Side::Debit, true),
        ];
        for (code, asset, side, nn) in specs {
            accounts.push(book.account(code, asset, side, nn).await);
            no_negative.push(nn);
        }
        Self {
            book,
            accounts,
            no_negative,
            entries: Vec::new(),
            posted_ids: Vec::new(),
            holds: Vec::new(),
            counter: 0,
        }
    }

    fn key(&mut self) -> String {
        self.counter += 1;
        format!("k{}", self.counter)
    }

    fn transfer(&mut self, from: usize, to: usize, amount: i64) -> NewEntry {
        let key = self.key();
        self.book.transfer(
            &key,
            self.accounts[from],
            self.accounts[to],
            "JPY",
            &amount.to_string(),
        )
    }

    /// Balances of every account and the number of entries and hold resolutions.
    async fn snapshot(&self) -> (Vec<Balance>, i64) {
        let mut out = Vec::new();
        for a in &self.accounts {
            out.push(
                self.book
                    .ledger
                    .account(self.book.tenant, *a)
                    .await
                    .unwrap()
                    .balance,
            );
        }
        let db = self.book.ledger.db();
        let backend = db.get_database_backend();
        let q = match backend {
            sea_orm::DbBackend::Postgres => {
                "SELECT (SELECT COUNT(*) FROM ledger_entries WHERE tenant_id = $1) + (SELECT COUNT(*) FROM ledger_hold_resolutions WHERE tenant_id = $1)"
            }
            _ => {
                "SELECT (SELECT COUNT(*) FROM ledger_entries WHERE tenant_id = ?1) + (SELECT COUNT(*) FROM ledger_hold_resolutions WHERE tenant_id = ?1)"
            }
        };
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                q,
                [Value::from(self.book.tenant)],
            ))
            .await
            .unwrap()
            .unwrap();
        (out, row.try_get_by_index::<i64>(0).unwrap())
    }

    /// The invariants that must hold after every operation, accepted or not.
    async fn check_invariants(&self) {
        let ledger = &self.book.ledger;
        for line in ledger.trial_balance(Some(self.book.tenant)).await.unwrap() {
            assert!(line.difference.is_zero(), "trial balance off: {line:?}");
        }
        // Sum of postings per (account, side, pending) counting only unresolved holds as pending.
        let db = ledger.db();
        let backend = db.get_database_backend();
        let p = |n: usize| {
            if backend == sea_orm::DbBackend::Postgres {
                format!("${n}")
            } else {
                "?".into()
            }
        };
        let q = format!(
            "SELECT account_id, side, pending, CAST(SUM(amount) AS TEXT) FROM ledger_postings p WHERE tenant_id = {} \
             AND (pending = {} OR NOT EXISTS (SELECT 1 FROM ledger_hold_resolutions r WHERE r.tenant_id = p.tenant_id AND r.hold_entry_id = p.entry_id)) \
             GROUP BY account_id, side, pending",
            p(1),
            p(2)
        );
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                q,
                [Value::from(self.book.tenant), Value::from(false)],
            ))
            .await
            .unwrap();
        let mut sums: HashMap<Uuid, Balance> = HashMap::new();
        for r in rows {
            let id: Uuid = r.try_get_by_index(0).unwrap();
            let side: String = r.try_get_by_index(1).unwrap();
            let pending: bool = r.try_get_by_index(2).unwrap();
            let sum: i64 = r.try_get_by_index::<String>(3).unwrap().parse().unwrap();
            let b = sums.entry(id).or_default();
            match (side.as_str(), pending) {
                ("debit", false) => b.debits_posted = sum,
                ("credit", false) => b.credits_posted = sum,
                ("debit", true) => b.debits_pending = sum,
                _ => b.credits_pending = sum,
            }
        }
        for (i, a) in self.accounts.iter().enumerate() {
            let acc = ledger.account(self.book.tenant, *a).await.unwrap();
            assert_eq!(
                acc.balance,
                sums.get(a).copied().unwrap_or_default(),
                "account {i} differs from its postings"
            );
            if self.no_negative[i] {
                assert!(
                    acc.balance.available(acc.normal_side) >= 0,
                    "no-negative account {i} below zero: {:?}",
                    acc.balance
                );
            }
        }
    }

    async fn apply(&mut self, op: &Op) -> bool {
        let ledger = self.book.ledger.clone();
        let tenant = self.book.tenant;
        match op.clone() {
            Op::Transfer { from, to, amount } => {
                let e = self.transfer(from, to, amount);
                self.record(ledger.post_entry(e.clone()).await.map(|p| p.entry.id), e)
            }
            Op::Hold { from, to, amount } => {
                let mut e = self.transfer(from, to, amount);
                e.hold = Some(HoldTerms { expires_at: None });
                match ledger.post_entry(e).await {
                    Ok(p) => {
                        self.holds.push(p.entry.id);
                        true
                    }
                    Err(_) => false,
                }
            }
            Op::Commit { hold, part } => {
                let Some(id) = self.holds.get(hold).copied() else {
                    return false;
                };
                let postings = if part {
                    let h = ledger.entry(tenant, id).await.unwrap();
                    let half = (h.postings[0].amount / Decimal::from(2)).floor();
                    Some(
                        h.postings
                            .iter()
                            .map(|p| NewPosting {
                                account_id: p.account_id,
                                asset: p.asset.clone(),
                                side: p.side,
                                amount: half,
                            })
                            .collect(),
                    )
                } else {
                    None
                };
                let key = self.key();
                let c = HoldCommit {
                    tenant_id: tenant,
                    hold_id: id,
                    idempotency_key: key,
                    effective_date: common::day(6),
                    postings,
                };
                match ledger.commit_hold(c).await {
                    Ok(p) => {
                        self.posted_ids.push(p.entry.id);
                        true
                    }
                    Err(_) => false,
                }
            }
            Op::Void { hold } => {
                let Some(id) = self.holds.get(hold).copied() else {
                    return false;
                };
                // Voiding an already voided hold answers Ok and writes nothing.
                let before = self.snapshot().await;
                let r = ledger.void_hold(tenant, id).await;
                r.is_ok() && self.snapshot().await != before
            }
            Op::Reverse { entry } => {
                let Some(id) = self.posted_ids.get(entry).copied() else {
                    return false;
                };
                let key = self.key();
                let r = Reversal {
                    tenant_id: tenant,
                    entry_id: id,
                    idempotency_key: key,
                    effective_date: common::day(7),
                    description: "oops".into(),
                };
                match ledger.reverse(r).await {
                    Ok(p) => {
                        self.posted_ids.push(p.entry.id);
                        true
                    }
                    Err(_) => false,
                }
            }
            Op::Replay { entry } => {
                let Some(e) = self.entries.get(entry).cloned() else {
                    return false;
                };
                let p = ledger.post_entry(e).await.unwrap();
                assert!(p.replayed, "a replay wrote a new entry");
                false
            }
            Op::Conflict { entry } => {
                let Some(mut e) = self.entries.get(entry).cloned() else {
                    return false;
                };
                e.description.push('!');
                assert!(matches!(
                    ledger.post_entry(e).await,
                    Err(ledger::LedgerError::IdempotencyConflict { .. })
                ));
                false
            }
            Op::Batch(items) => {
                let batch: Vec<NewEntry> = items
                    .into_iter()
                    .map(|(f, t, a)| self.transfer(f, t, a))
                    .collect();
                match ledger.post_batch(batch.clone()).await {
                    Ok(posted) => {
                        self.posted_ids.extend(posted.iter().map(|p| p.entry.id));
                        self.entries.extend(batch);
                        true
                    }
                    Err(_) => false,
                }
            }
            Op::Unbalanced { from, to, amount } => {
                let key = self.key();
                let e = self.book.entry(
                    &key,
                    vec![
                        NewPosting::credit(self.accounts[from], "JPY", Decimal::from(amount)),
                        NewPosting::debit(self.accounts[to], "JPY", Decimal::from(amount + 1)),
                    ],
                );
                assert!(ledger.post_entry(e).await.is_err());
                false
            }
            Op::WrongAsset { from, amount } => {
                let key = self.key();
                let e = self.book.entry(
                    &key,
                    vec![
                        NewPosting::credit(self.accounts[from], "JPY", Decimal::from(amount)),
                        NewPosting::debit(self.accounts[8], "JPY", Decimal::from(amount)),
                    ],
                );
                assert!(ledger.post_entry(e).await.is_err());
                false
            }
        }
    }

    fn record(&mut self, result: Result<Uuid, ledger::LedgerError>, e: NewEntry) -> bool {
        match result {
            Ok(id) => {
                self.posted_ids.push(id);
                self.entries.push(e);
                true
            }
            Err(_) => false,
        }
    }
}

async fn run_case(ledger: &Ledger, ops: Vec<Op>) {
    let mut case = Case::new(ledger).await;
    // Fund the no-negative accounts a little, so that some spends pass and some do not.
    for i in 1..=4 {
        let e = case.transfer(0, i, 300);
        assert!(case.apply_entry(e).await);
    }
    let e = case.book.transfer(
        "fund-usd",
        case.accounts[7],
        case.accounts[8],
        "USD",
        "10.00",
    );
    assert!(case.apply_entry(e).await);
    for op in &ops {
        let before = case.snapshot().await;
        let changed = case.apply(op).await;
        if !changed {
            assert_eq!(
                case.snapshot().await,
                before,
                "refused {op:?} changed the books"
            );
        }
        case.check_invariants().await;
    }
    let chain = ledger.verify_chain(case.book.tenant).await.unwrap();
    assert!(chain.first_break.is_none(), "{chain:?}");
}

impl Case {
    async fn apply_entry(&mut self, e: NewEntry) -> bool {
        let r = self
            .book
            .ledger
            .post_entry(e.clone())
            .await
            .map(|p| p.entry.id);
        self.record(r, e)
    }
}

#[test]
fn random_operations_keep_the_books_sound() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for backend in common::backends() {
        let tdb = rt.block_on(common::fresh(backend));
        let ledger = {
            let _guard = rt.enter();
            Ledger::new(tdb.db.clone())
        };
        let cases = if backend == "sqlite" { 48 } else { 24 };
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&prop::collection::vec(op(), 1..30), |ops| {
                rt.block_on(run_case(&ledger, ops));
                Ok(())
            })
            .unwrap_or_else(|e| panic!("on {backend}: {e}"));
    }
}
