//! One write transaction: load what a group of jobs touches, run each job's rules on the
//! locked state, write every accepted job's rows at once, commit.
//!
//! **Locks (PostgreSQL).** Every write to a tenant's books (entries, postings, balances, an
//! account's flags) is made while holding that tenant's *book* row (`ledger_books`, the head of
//! its hash chain) `FOR UPDATE`. A transaction that writes several tenants locks their books in
//! `ORDER BY tenant_id`, and takes no other row lock, so two writers wait for each other instead
//! of deadlocking (one statement per tenant, in that order: the loop below must keep it). Under READ COMMITTED each later statement reads a
//! snapshot taken after the lock was granted, so the balances it reads include every earlier
//! writer's commit: there are no lost updates, and the rules run on the latest state. (Locking
//! each account row as well would add nothing but a WAL record per account; `close_account`
//! takes the same book lock.) On SQLite the write transaction is `BEGIN IMMEDIATE`: one writer.
//!
//! **The platform's one lock order** (every crate, the API and end of day alike):
//! 1. books (`ledger_books` rows), in `tenant_id` order: [`super::lock_book`] for one tenant,
//!    [`super::lock_all_books`] for end of day's steps, the ledger's own writes for theirs;
//! 2. then rows of a tenant's business tables (`customers`, `wraps`, …), which are only ever
//!    locked after their tenant's book: `wraps::customers::store::wrap(…, for_update)` and
//!    `customer_for_update` take the book first;
//! 3. last, a tenant's `event_cursors` row, taken when the transaction records its events
//!    (`wraps::events::record`, in `tenant_id` order when it records several tenants'): every
//!    writer records its events after its last other lock, so the cursor's holder never waits
//!    for a book or a business row.
//!
//! So an API request that locks a wrap and posts (a close, a withdrawal) and an end-of-day
//! step that posts and updates wraps wait for each other instead of deadlocking, and whatever
//! either reads after its locks includes everything the other committed. Tried by
//! `api/tests/http/concurrency.rs`.
//!
//! **Atomicity per job.** A job (one operation, or an atomic batch) is validated against a
//! scratch overlay of the group's state; only when all of its operations pass is the overlay
//! merged. A refused job therefore leaves no trace, and the others in the group proceed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DbBackend, Value};
use uuid::Uuid;

use super::sql::{self, MAX_PARAMS, get, param, value_rows};
use crate::account::{Balance, Side};
use crate::asset::{Amount, Asset};
use crate::chain::{Canon, EntryRecord, PostingRecord};
use crate::entry::{
    EntryStatus, HoldCommit, HoldState, NewEntry, NewPosting, Operation, Reversal, check_key,
    check_kind,
};
use crate::error::LedgerError;
use crate::rules::{self, AccountView, Change, Line};

/// What a job produced before replays are read back.
#[derive(Debug)]
pub(crate) enum Draft {
    /// A new entry, written by this transaction.
    Written(Box<EntryRecord>),
    /// An earlier entry with the same key and request.
    Replay(Uuid, Uuid),
    /// A hold released without an entry.
    Released {
        hold_id: Uuid,
        state: HoldState,
        already: bool,
    },
}

#[derive(Debug, Clone)]
struct KeyHit {
    entry_id: Uuid,
    request_hash: String,
}

#[derive(Debug)]
struct Target {
    record: EntryRecord,
    hold_state: HoldState,
    reversed_by: Option<Uuid>,
}

#[derive(Debug)]
struct Resolution {
    tenant_id: Uuid,
    hold_id: Uuid,
    state: HoldState,
    commit_entry_id: Option<Uuid>,
}

/// The changes one job would make, kept apart until the whole job has passed.
#[derive(Debug, Default)]
struct Scratch {
    balances: HashMap<Uuid, Balance>,
    books: HashMap<Uuid, (i64, String)>,
    keys: HashMap<(Uuid, String), KeyHit>,
    holds: HashMap<Uuid, HoldState>,
    reversed: HashMap<Uuid, Uuid>,
    entries: Vec<EntryRecord>,
    resolutions: Vec<Resolution>,
}

/// The state of one write transaction.
#[derive(Debug)]
pub(crate) struct Work {
    now_us: i64,
    assets: HashMap<String, Asset>,
    books: HashMap<Uuid, (i64, String)>,
    accounts: HashMap<Uuid, AccountView>,
    keys: HashMap<(Uuid, String), KeyHit>,
    targets: HashMap<Uuid, Target>,
    dirty: BTreeSet<Uuid>,
    entries: Vec<EntryRecord>,
    resolutions: Vec<Resolution>,
}

impl Work {
    /// Locks and loads everything `ops` may touch.
    pub(crate) async fn load<C: ConnectionTrait>(
        db: &C,
        ops: &[&Operation],
        cache: &super::AssetCache,
    ) -> Result<Self, LedgerError> {
        let backend = db.get_database_backend();
        let now_us = sql::micros(Utc::now());
        let mut tenants: BTreeSet<Uuid> = BTreeSet::new();
        let mut keys: BTreeMap<Uuid, BTreeSet<&str>> = BTreeMap::new();
        let mut target_ids: BTreeMap<Uuid, BTreeSet<Uuid>> = BTreeMap::new();
        let mut account_ids: BTreeMap<Uuid, BTreeSet<Uuid>> = BTreeMap::new();
        for op in ops {
            let t = op.tenant_id();
            tenants.insert(t);
            match op {
                Operation::Post(e) => {
                    keys.entry(t).or_default().insert(&e.idempotency_key);
                    account_ids
                        .entry(t)
                        .or_default()
                        .extend(e.postings.iter().map(|p| p.account_id));
                }
                Operation::Reverse(r) => {
                    keys.entry(t).or_default().insert(&r.idempotency_key);
                    target_ids.entry(t).or_default().insert(r.entry_id);
                }
                Operation::CommitHold(c) => {
                    keys.entry(t).or_default().insert(&c.idempotency_key);
                    target_ids.entry(t).or_default().insert(c.hold_id);
                    if let Some(ps) = &c.postings {
                        account_ids
                            .entry(t)
                            .or_default()
                            .extend(ps.iter().map(|p| p.account_id));
                    }
                }
                Operation::VoidHold { hold_id, .. } | Operation::ExpireHold { hold_id, .. } => {
                    target_ids.entry(t).or_default().insert(*hold_id);
                }
            }
        }

        // The only lock: the books, in tenant order (see the module docs; a BTreeSet of Uuid
        // iterates in PostgreSQL's uuid order, byte by byte). One statement per tenant: on
        // Citus each then reaches the one shard holding that tenant, and Citus refuses a
        // `FOR UPDATE` spanning shards (deploy/SCALING.md). A group holds few tenants.
        let mut books = HashMap::new();
        for tenant in &tenants {
            let sql = format!(
                "SELECT tenant_id, seq, hash FROM ledger_books WHERE tenant_id = {}{}",
                param(backend, 1),
                sql::for_update(backend)
            );
            for row in sql::query(db, sql, vec![(*tenant).into()]).await? {
                books.insert(
                    get::<Uuid>(&row, 0)?,
                    (get::<i64>(&row, 1)?, get::<String>(&row, 2)?),
                );
            }
        }

        // Entries referred to (reversal and hold targets): immutable rows, no lock needed; their
        // resolution and reversal state is protected by the book lock and unique indexes.
        let mut targets = HashMap::new();
        for (tenant, ids) in &target_ids {
            let ids: Vec<Uuid> = ids.iter().copied().collect();
            let records = sql::load_entries(db, *tenant, &ids).await?;
            let mut holds: HashMap<Uuid, HoldState> = HashMap::new();
            let mut reversed: HashMap<Uuid, Uuid> = HashMap::new();
            for chunk in ids.chunks(MAX_PARAMS / 2) {
                let (list, ids_values) = sql::member_of(backend, chunk, 2);
                let mut values: Vec<Value> = vec![(*tenant).into()];
                values.extend(ids_values);
                let q = format!(
                    "SELECT hold_entry_id, status FROM ledger_hold_resolutions WHERE tenant_id = {} AND hold_entry_id {list}",
                    param(backend, 1)
                );
                for row in sql::query(db, q, values.clone()).await? {
                    let state: String = get(&row, 1)?;
                    let state = HoldState::parse(&state).ok_or_else(|| {
                        LedgerError::Corrupt(format!("unknown hold state {state:?}"))
                    })?;
                    holds.insert(get(&row, 0)?, state);
                }
                let q = format!(
                    "SELECT reverses_entry_id, id FROM ledger_entries WHERE tenant_id = {} AND reverses_entry_id {list}",
                    param(backend, 1)
                );
                for row in sql::query(db, q, values).await? {
                    reversed.insert(get(&row, 0)?, get(&row, 1)?);
                }
            }
            for record in records {
                let acc = account_ids.entry(*tenant).or_default();
                acc.extend(record.postings.iter().map(|p| p.account_id));
                let hold_state = match record.status {
                    EntryStatus::Pending => {
                        holds.get(&record.id).copied().unwrap_or(HoldState::Pending)
                    }
                    EntryStatus::Posted => HoldState::Committed,
                };
                let reversed_by = reversed.get(&record.id).copied();
                targets.insert(
                    record.id,
                    Target {
                        record,
                        hold_state,
                        reversed_by,
                    },
                );
            }
        }

        // The accounts touched: guarded by their tenant's book lock, taken above.
        let mut rows = Vec::new();
        for (tenant, ids) in &account_ids {
            let ids: Vec<Uuid> = ids.iter().copied().collect();
            for chunk in ids.chunks(MAX_PARAMS / 2) {
                let (member, ids_values) = sql::member_of(backend, chunk, 2);
                let mut values: Vec<Value> = vec![(*tenant).into()];
                values.extend(ids_values);
                let q = format!(
                    "SELECT id, code, asset_code, normal_side, no_negative, closed, debits_posted, credits_posted, \
                     debits_pending, credits_pending FROM ledger_accounts WHERE tenant_id = {} AND id {member}",
                    param(backend, 1)
                );
                rows.extend(
                    sql::query(db, q, values)
                        .await?
                        .into_iter()
                        .map(|r| (*tenant, r)),
                );
            }
        }
        let codes: BTreeSet<String> = rows
            .iter()
            .map(|(_, r)| get::<String>(r, 2))
            .collect::<Result<_, _>>()?;
        let assets = cache.resolve(db, codes).await?;
        let mut accounts = HashMap::with_capacity(rows.len());
        for (tenant, row) in rows {
            let asset: String = get(&row, 2)?;
            let side_name: String = get(&row, 3)?;
            let scale = assets
                .get(&asset)
                .map(|a| a.scale)
                .ok_or_else(|| LedgerError::Corrupt(format!("account asset {asset} not found")))?;
            let view = AccountView {
                id: get(&row, 0)?,
                tenant_id: tenant,
                code: get(&row, 1)?,
                asset,
                scale,
                normal_side: sql::side(&side_name)?,
                no_negative: get(&row, 4)?,
                closed: get(&row, 5)?,
                balance: Balance {
                    debits_posted: get(&row, 6)?,
                    credits_posted: get(&row, 7)?,
                    debits_pending: get(&row, 8)?,
                    credits_pending: get(&row, 9)?,
                },
            };
            accounts.insert(view.id, view);
        }

        // Idempotency keys already used.
        let mut key_hits = HashMap::new();
        for (tenant, ks) in &keys {
            let ks: Vec<String> = ks.iter().map(|k| (*k).to_owned()).collect();
            for chunk in ks.chunks(MAX_PARAMS / 2) {
                let (member, keys_values) = sql::member_of(backend, chunk, 2);
                let mut values: Vec<Value> = vec![(*tenant).into()];
                values.extend(keys_values);
                let q = format!(
                    "SELECT idempotency_key, id, request_hash FROM ledger_entries WHERE tenant_id = {} AND idempotency_key {member}",
                    param(backend, 1)
                );
                for row in sql::query(db, q, values).await? {
                    key_hits.insert(
                        (*tenant, get::<String>(&row, 0)?),
                        KeyHit {
                            entry_id: get(&row, 1)?,
                            request_hash: get(&row, 2)?,
                        },
                    );
                }
            }
        }

        Ok(Self {
            now_us,
            assets,
            books,
            accounts,
            keys: key_hits,
            targets,
            dirty: BTreeSet::new(),
            entries: Vec::new(),
            resolutions: Vec::new(),
        })
    }

    /// Runs one job: all of its operations, or (on the first refusal) none. With `batch` the
    /// refusal names the operation's position.
    pub(crate) fn run_job(
        &mut self,
        ops: &[Operation],
        batch: bool,
    ) -> Result<Vec<Draft>, LedgerError> {
        let mut scratch = Scratch::default();
        let mut drafts = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            match self.run_op(&mut scratch, op) {
                Ok(d) => drafts.push(d),
                Err(e) if batch => {
                    return Err(LedgerError::BatchRejected {
                        index,
                        source: Box::new(e),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        // The job passed: merge its scratch into the transaction's state.
        for (id, b) in scratch.balances {
            if let Some(view) = self.accounts.get_mut(&id) {
                view.balance = b;
                self.dirty.insert(id);
            }
        }
        self.books.extend(scratch.books);
        self.keys.extend(scratch.keys);
        for (id, state) in scratch.holds {
            if let Some(t) = self.targets.get_mut(&id) {
                t.hold_state = state;
            }
        }
        for (id, by) in scratch.reversed {
            if let Some(t) = self.targets.get_mut(&id) {
                t.reversed_by = Some(by);
            }
        }
        self.entries.extend(scratch.entries);
        self.resolutions.extend(scratch.resolutions);
        Ok(drafts)
    }

    fn run_op(&self, s: &mut Scratch, op: &Operation) -> Result<Draft, LedgerError> {
        match op {
            Operation::Post(e) => self.post(s, e),
            Operation::Reverse(r) => self.reverse(s, r),
            Operation::CommitHold(c) => self.commit(s, c),
            Operation::VoidHold { tenant_id, hold_id } => {
                self.release(s, *tenant_id, *hold_id, HoldState::Voided, None)
            }
            Operation::ExpireHold {
                tenant_id,
                hold_id,
                now,
            } => self.release(s, *tenant_id, *hold_id, HoldState::Expired, Some(*now)),
        }
    }

    fn view(&self, id: Uuid) -> Option<&AccountView> {
        self.accounts.get(&id)
    }

    /// Idempotency: `None` when the key is new; a replay when it was used for the same request;
    /// a conflict when it was used for another.
    fn check_replay(
        &self,
        s: &Scratch,
        tenant: Uuid,
        key: &str,
        request_hash: &str,
    ) -> Result<Option<Draft>, LedgerError> {
        let k = (tenant, key.to_owned());
        match s.keys.get(&k).or_else(|| self.keys.get(&k)) {
            None => Ok(None),
            Some(hit) if hit.request_hash == request_hash => {
                Ok(Some(Draft::Replay(tenant, hit.entry_id)))
            }
            Some(hit) => Err(LedgerError::IdempotencyConflict {
                key: key.to_owned(),
                entry_id: hit.entry_id,
            }),
        }
    }

    fn post(&self, s: &mut Scratch, e: &NewEntry) -> Result<Draft, LedgerError> {
        check_key(&e.idempotency_key)?;
        check_kind(&e.kind)?;
        check_text(&e.description)?;
        if !e.metadata.is_object() {
            return Err(LedgerError::InvalidEntry(
                "entry metadata must be a JSON object".to_owned(),
            ));
        }
        let expires_at_us = e.hold.and_then(|h| h.expires_at).map(sql::micros);
        if let Some(exp) = expires_at_us
            && exp <= self.now_us
        {
            return Err(LedgerError::InvalidEntry(
                "a hold's expiry time must be in the future".to_owned(),
            ));
        }
        let request_hash = fingerprint_post(e);
        if let Some(replay) =
            self.check_replay(s, e.tenant_id, &e.idempotency_key, &request_hash)?
        {
            return Ok(replay);
        }
        let lines = rules::validate_postings(e.tenant_id, &e.postings, |id| self.view(id))?;
        let pending = e.hold.is_some();
        let changes: Vec<Change> = lines
            .iter()
            .map(|l| {
                if pending {
                    Change::Reserve(l.account_id, l.side, l.amount)
                } else {
                    Change::Post(l.account_id, l.side, l.amount)
                }
            })
            .collect();
        self.apply(s, &changes)?;
        let record = self.append(
            s,
            e.tenant_id,
            NewRecord {
                key: &e.idempotency_key,
                request_hash,
                kind: &e.kind,
                status: if pending {
                    EntryStatus::Pending
                } else {
                    EntryStatus::Posted
                },
                effective_date: e.effective_date,
                description: &e.description,
                metadata: sql::canonical_json(&e.metadata),
                reverses: None,
                hold: None,
                expires_at_us,
                lines: &lines,
            },
        );
        Ok(Draft::Written(Box::new(record)))
    }

    fn reverse(&self, s: &mut Scratch, r: &Reversal) -> Result<Draft, LedgerError> {
        check_key(&r.idempotency_key)?;
        check_text(&r.description)?;
        let mut c = Canon::default();
        c.str("reverse")
            .uuid(r.entry_id)
            .date(r.effective_date)
            .str(&r.description);
        let request_hash = c.hex();
        if let Some(replay) =
            self.check_replay(s, r.tenant_id, &r.idempotency_key, &request_hash)?
        {
            return Ok(replay);
        }
        let target = self.target(r.tenant_id, r.entry_id)?;
        if target.record.status == EntryStatus::Pending {
            return Err(LedgerError::CannotReverseHold(r.entry_id));
        }
        if let Some(by) = s.reversed.get(&r.entry_id).copied().or(target.reversed_by) {
            return Err(LedgerError::AlreadyReversed {
                entry_id: r.entry_id,
                reversal_id: by,
            });
        }
        let mirror: Vec<NewPosting> = target
            .record
            .postings
            .iter()
            .map(|p| self.to_new_posting(p, p.side.opposite()))
            .collect::<Result<_, _>>()?;
        let lines = rules::validate_postings(r.tenant_id, &mirror, |id| self.view(id))?;
        let changes: Vec<Change> = lines
            .iter()
            .map(|l| Change::Post(l.account_id, l.side, l.amount))
            .collect();
        self.apply(s, &changes)?;
        let record = self.append(
            s,
            r.tenant_id,
            NewRecord {
                key: &r.idempotency_key,
                request_hash,
                kind: &target.record.kind,
                status: EntryStatus::Posted,
                effective_date: r.effective_date,
                description: &r.description,
                metadata: "{}".to_owned(),
                reverses: Some(r.entry_id),
                hold: None,
                expires_at_us: None,
                lines: &lines,
            },
        );
        s.reversed.insert(r.entry_id, record.id);
        Ok(Draft::Written(Box::new(record)))
    }

    fn commit(&self, s: &mut Scratch, c: &HoldCommit) -> Result<Draft, LedgerError> {
        check_key(&c.idempotency_key)?;
        let mut canon = Canon::default();
        canon.str("commit").uuid(c.hold_id).date(c.effective_date);
        match &c.postings {
            None => {
                canon.str("all");
            }
            Some(ps) => fingerprint_postings(&mut canon, ps),
        }
        let request_hash = canon.hex();
        if let Some(replay) =
            self.check_replay(s, c.tenant_id, &c.idempotency_key, &request_hash)?
        {
            return Ok(replay);
        }
        let target = self.pending_hold(s, c.tenant_id, c.hold_id)?;
        if let Some(exp) = target.record.expires_at_us
            && exp <= self.now_us
        {
            return Err(LedgerError::HoldExpired(c.hold_id));
        }
        let requested: Vec<NewPosting> = match &c.postings {
            Some(ps) => ps.clone(),
            None => target
                .record
                .postings
                .iter()
                .map(|p| self.to_new_posting(p, p.side))
                .collect::<Result<_, _>>()?,
        };
        let lines = rules::validate_postings(c.tenant_id, &requested, |id| self.view(id))?;
        let mut reserved: HashMap<(Uuid, Side), i64> = HashMap::new();
        for p in &target.record.postings {
            *reserved.entry((p.account_id, p.side)).or_default() += p.amount;
        }
        for (index, l) in lines.iter().enumerate() {
            let left = reserved.get_mut(&(l.account_id, l.side)).ok_or_else(|| {
                LedgerError::HoldExceeded {
                    index,
                    reason: format!(
                        "the hold reserves no {} on account {}",
                        l.side.as_str(),
                        l.account_id
                    ),
                }
            })?;
            if l.amount > *left {
                return Err(LedgerError::HoldExceeded {
                    index,
                    reason: format!(
                        "posts more than the hold reserves on account {}",
                        l.account_id
                    ),
                });
            }
            *left -= l.amount;
        }
        let mut changes: Vec<Change> = target
            .record
            .postings
            .iter()
            .map(|p| Change::Release(p.account_id, p.side, p.amount))
            .collect();
        changes.extend(
            lines
                .iter()
                .map(|l| Change::Post(l.account_id, l.side, l.amount)),
        );
        self.apply(s, &changes)?;
        let record = self.append(
            s,
            c.tenant_id,
            NewRecord {
                key: &c.idempotency_key,
                request_hash,
                kind: &target.record.kind,
                status: EntryStatus::Posted,
                effective_date: c.effective_date,
                description: &target.record.description,
                metadata: target.record.metadata.clone(),
                reverses: None,
                hold: Some(c.hold_id),
                expires_at_us: None,
                lines: &lines,
            },
        );
        s.holds.insert(c.hold_id, HoldState::Committed);
        s.resolutions.push(Resolution {
            tenant_id: c.tenant_id,
            hold_id: c.hold_id,
            state: HoldState::Committed,
            commit_entry_id: Some(record.id),
        });
        Ok(Draft::Written(Box::new(record)))
    }

    fn release(
        &self,
        s: &mut Scratch,
        tenant: Uuid,
        hold_id: Uuid,
        state: HoldState,
        now: Option<DateTime<Utc>>,
    ) -> Result<Draft, LedgerError> {
        let target = self.target(tenant, hold_id)?;
        let current = s.holds.get(&hold_id).copied().unwrap_or(target.hold_state);
        if target.record.status == EntryStatus::Pending && current == state {
            return Ok(Draft::Released {
                hold_id,
                state,
                already: true,
            });
        }
        let target = self.pending_hold(s, tenant, hold_id)?;
        if let Some(now) = now {
            let due = target
                .record
                .expires_at_us
                .is_some_and(|exp| exp <= sql::micros(now));
            if !due {
                return Err(LedgerError::HoldNotPending {
                    hold_id,
                    state: "pending and not yet expired".to_owned(),
                });
            }
        }
        let changes: Vec<Change> = target
            .record
            .postings
            .iter()
            .map(|p| Change::Release(p.account_id, p.side, p.amount))
            .collect();
        self.apply(s, &changes)?;
        s.holds.insert(hold_id, state);
        s.resolutions.push(Resolution {
            tenant_id: tenant,
            hold_id,
            state,
            commit_entry_id: None,
        });
        Ok(Draft::Released {
            hold_id,
            state,
            already: false,
        })
    }

    fn target(&self, tenant: Uuid, id: Uuid) -> Result<&Target, LedgerError> {
        self.targets
            .get(&id)
            .filter(|t| t.record.tenant_id == tenant)
            .ok_or(LedgerError::EntryNotFound(id))
    }

    fn pending_hold(&self, s: &Scratch, tenant: Uuid, id: Uuid) -> Result<&Target, LedgerError> {
        let target = self.target(tenant, id)?;
        let state = s.holds.get(&id).copied().unwrap_or(target.hold_state);
        if target.record.status != EntryStatus::Pending {
            return Err(LedgerError::HoldNotPending {
                hold_id: id,
                state: "a posted entry, not a hold".to_owned(),
            });
        }
        if state != HoldState::Pending {
            return Err(LedgerError::HoldNotPending {
                hold_id: id,
                state: state.as_str().to_owned(),
            });
        }
        Ok(target)
    }

    fn to_new_posting(&self, p: &PostingRecord, side: Side) -> Result<NewPosting, LedgerError> {
        let scale = self
            .assets
            .get(&p.asset)
            .map(|a| a.scale)
            .ok_or_else(|| LedgerError::Corrupt(format!("asset {} not loaded", p.asset)))?;
        Ok(NewPosting {
            account_id: p.account_id,
            asset: p.asset.clone(),
            side,
            amount: Amount::from_minor(p.amount, scale).to_decimal(),
        })
    }

    fn apply(&self, s: &mut Scratch, changes: &[Change]) -> Result<(), LedgerError> {
        let next = rules::apply_changes(
            changes,
            |id| self.view(id),
            |v| s.balances.get(&v.id).copied().unwrap_or(v.balance),
        )?;
        s.balances.extend(next);
        Ok(())
    }

    fn append(&self, s: &mut Scratch, tenant: Uuid, n: NewRecord<'_>) -> EntryRecord {
        // The book exists: accounts cannot exist without it, and every entry has accounts.
        let (seq, prev_hash) = s
            .books
            .get(&tenant)
            .or_else(|| self.books.get(&tenant))
            .cloned()
            .unwrap_or((0, crate::chain::GENESIS.to_owned()));
        let mut record = EntryRecord {
            tenant_id: tenant,
            id: Uuid::now_v7(),
            seq: seq + 1,
            idempotency_key: n.key.to_owned(),
            request_hash: n.request_hash,
            kind: n.kind.to_owned(),
            status: n.status,
            effective_date: n.effective_date,
            booked_at_us: self.now_us,
            description: n.description.to_owned(),
            metadata: n.metadata,
            reverses_entry_id: n.reverses,
            hold_entry_id: n.hold,
            expires_at_us: n.expires_at_us,
            prev_hash,
            hash: String::new(),
            postings: n
                .lines
                .iter()
                .map(|l| PostingRecord {
                    account_id: l.account_id,
                    asset: l.asset.clone(),
                    side: l.side,
                    amount: l.amount,
                })
                .collect(),
        };
        record.hash = record.compute_hash();
        s.books.insert(tenant, (record.seq, record.hash.clone()));
        s.keys.insert(
            (tenant, record.idempotency_key.clone()),
            KeyHit {
                entry_id: record.id,
                request_hash: record.request_hash.clone(),
            },
        );
        s.entries.push(record.clone());
        record
    }

    /// Writes every accepted job's rows: entries, postings, balances, book heads, then hold
    /// resolutions (which refer to commit entries).
    pub(crate) async fn flush<C: ConnectionTrait>(&self, db: &C) -> Result<(), LedgerError> {
        let backend = db.get_database_backend();
        let started = std::time::Instant::now();
        let dirty: Vec<(Uuid, Uuid, Balance)> = self
            .dirty
            .iter()
            .filter_map(|id| self.accounts.get(id))
            .map(|v| (v.tenant_id, v.id, v.balance))
            .collect();
        let mut heads: BTreeMap<Uuid, (i64, String)> = BTreeMap::new();
        for r in &self.entries {
            heads.insert(r.tenant_id, (r.seq, r.hash.clone()));
        }
        let heads: Vec<(Uuid, i64, String)> =
            heads.into_iter().map(|(t, (seq, h))| (t, seq, h)).collect();
        if backend == DbBackend::Postgres {
            self.write_postgres(db, &dirty, &heads).await?;
        } else {
            self.write_sqlite(db, &dirty, &heads).await?;
        }
        for chunk in self.resolutions.chunks(MAX_PARAMS / 5) {
            let mut values = Vec::with_capacity(chunk.len() * 5);
            for r in chunk {
                values.push(r.tenant_id.into());
                values.push(r.hold_id.into());
                values.push(r.state.as_str().into());
                values.push(r.commit_entry_id.into());
                values.push(self.now_us.into());
            }
            let q = format!(
                "INSERT INTO ledger_hold_resolutions (tenant_id, hold_entry_id, status, commit_entry_id, resolved_at) VALUES {}",
                value_rows(backend, chunk.len(), 5, 1)
            );
            sql::exec(db, q, values).await?;
        }
        tracing::trace!(
            entries = self.entries.len(),
            balances = dirty.len(),
            us = started.elapsed().as_micros() as u64,
            "ledger.flush"
        );
        Ok(())
    }

    /// SQLite: multi-row VALUES statements, chunked under its parameter limit.
    async fn write_sqlite<C: ConnectionTrait>(
        &self,
        db: &C,
        dirty: &[(Uuid, Uuid, Balance)],
        heads: &[(Uuid, i64, String)],
    ) -> Result<(), LedgerError> {
        let backend = db.get_database_backend();
        self.insert_values(db).await?;
        let mut updated = 0;
        for chunk in dirty.chunks(MAX_PARAMS / 6) {
            let mut values = Vec::with_capacity(chunk.len() * 6);
            for (tenant_id, id, b) in chunk {
                values.push((*tenant_id).into());
                values.push((*id).into());
                values.push(b.debits_posted.into());
                values.push(b.credits_posted.into());
                values.push(b.debits_pending.into());
                values.push(b.credits_pending.into());
            }
            // VALUES columns are named column1..column6.
            let q = format!(
                "UPDATE ledger_accounts SET debits_posted = v.column3, credits_posted = v.column4, \
                 debits_pending = v.column5, credits_pending = v.column6 \
                 FROM (VALUES {}) AS v WHERE ledger_accounts.tenant_id = v.column1 AND ledger_accounts.id = v.column2",
                value_rows(backend, chunk.len(), 6, 1)
            );
            updated += sql::exec(db, q, values).await?;
        }
        check_count("balances", updated, dirty.len())?;
        for (tenant, seq, hash) in heads {
            let q = "UPDATE ledger_books SET seq = ?, hash = ? WHERE tenant_id = ?".to_owned();
            sql::exec(
                db,
                q,
                vec![(*seq).into(), hash.clone().into(), (*tenant).into()],
            )
            .await?;
        }
        Ok(())
    }

    /// PostgreSQL: one statement for entries, postings, balances and book heads (data-modifying
    /// CTEs over `UNNEST` of array parameters): one round trip, one parameter per column whatever
    /// the row count, so it is planned once and reused. Arrays cannot carry NULL here, so absent
    /// links travel as the nil UUID and an absent expiry as -1, turned back into NULL by NULLIF.
    /// Foreign keys are checked at the end of the statement, when every row is in.
    async fn write_postgres<C: ConnectionTrait>(
        &self,
        db: &C,
        dirty: &[(Uuid, Uuid, Balance)],
        heads: &[(Uuid, i64, String)],
    ) -> Result<(), LedgerError> {
        let e = &self.entries;
        let p = self.posting_index();
        let at = |&(ei, pi): &(usize, usize)| (&e[ei], pi, &e[ei].postings[pi]);
        let q = format!(
            "WITH e AS (INSERT INTO ledger_entries ({entry_cols}) SELECT t, id, seq, k, rh, kind, st, ed, ba, d, md, \
                NULLIF(rev, '00000000-0000-0000-0000-000000000000'::uuid), \
                NULLIF(hold, '00000000-0000-0000-0000-000000000000'::uuid), NULLIF(exp, -1), ph, h \
                FROM UNNEST($1::uuid[], $2::uuid[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[], \
                $8::date[], $9::int8[], $10::text[], $11::text[], $12::uuid[], $13::uuid[], $14::int8[], $15::text[], \
                $16::text[]) AS u(t, id, seq, k, rh, kind, st, ed, ba, d, md, rev, hold, exp, ph, h) RETURNING 1), \
             p AS (INSERT INTO ledger_postings ({posting_cols}) SELECT * FROM UNNEST($17::uuid[], $18::uuid[], \
                $19::int4[], $20::uuid[], $21::int8[], $22::text[], $23::text[], $24::int8[], $25::bool[], $26::date[], \
                $27::int8[]) RETURNING 1), \
             a AS (UPDATE ledger_accounts AS acc SET debits_posted = v.dp, credits_posted = v.cp, \
                debits_pending = v.dpe, credits_pending = v.cpe \
                FROM UNNEST($28::uuid[], $29::uuid[], $30::int8[], $31::int8[], $32::int8[], $33::int8[]) \
                AS v(t, id, dp, cp, dpe, cpe) WHERE acc.tenant_id = v.t AND acc.id = v.id RETURNING 1), \
             b AS (UPDATE ledger_books AS bk SET seq = v.seq, hash = v.hash \
                FROM UNNEST($34::uuid[], $35::int8[], $36::text[]) AS v(t, seq, hash) WHERE bk.tenant_id = v.t RETURNING 1) \
             SELECT (SELECT COUNT(*) FROM e), (SELECT COUNT(*) FROM p), (SELECT COUNT(*) FROM a), (SELECT COUNT(*) FROM b)",
            entry_cols = sql::ENTRY_COLS,
            posting_cols = sql::POSTING_COLS,
        );
        let values: Vec<Value> = vec![
            column(e, |r| r.tenant_id),
            column(e, |r| r.id),
            column(e, |r| r.seq),
            column(e, |r| r.idempotency_key.clone()),
            column(e, |r| r.request_hash.clone()),
            column(e, |r| r.kind.clone()),
            column(e, |r| r.status.as_str().to_owned()),
            column(e, |r| r.effective_date),
            column(e, |r| r.booked_at_us),
            column(e, |r| r.description.clone()),
            column(e, |r| r.metadata.clone()),
            column(e, |r| r.reverses_entry_id.unwrap_or(Uuid::nil())),
            column(e, |r| r.hold_entry_id.unwrap_or(Uuid::nil())),
            column(e, |r| r.expires_at_us.unwrap_or(-1)),
            column(e, |r| r.prev_hash.clone()),
            column(e, |r| r.hash.clone()),
            column(&p, |x| at(x).0.tenant_id),
            column(&p, |x| at(x).0.id),
            column(&p, |x| at(x).1 as i32),
            column(&p, |x| at(x).2.account_id),
            column(&p, |x| at(x).0.seq),
            column(&p, |x| at(x).2.asset.clone()),
            column(&p, |x| at(x).2.side.as_str().to_owned()),
            column(&p, |x| at(x).2.amount),
            column(&p, |x| at(x).0.status == EntryStatus::Pending),
            column(&p, |x| at(x).0.effective_date),
            column(&p, |x| at(x).0.booked_at_us),
            column(dirty, |d| d.0),
            column(dirty, |d| d.1),
            column(dirty, |d| d.2.debits_posted),
            column(dirty, |d| d.2.credits_posted),
            column(dirty, |d| d.2.debits_pending),
            column(dirty, |d| d.2.credits_pending),
            column(heads, |h| h.0),
            column(heads, |h| h.1),
            column(heads, |h| h.2.clone()),
        ];
        let rows = sql::query(db, q, values).await?;
        let row = rows
            .first()
            .ok_or_else(|| LedgerError::Corrupt("write returned no counts".to_owned()))?;
        check_count("entries", get::<i64>(row, 0)? as u64, e.len())?;
        check_count("postings", get::<i64>(row, 1)? as u64, p.len())?;
        check_count("balances", get::<i64>(row, 2)? as u64, dirty.len())?;
        check_count("book heads", get::<i64>(row, 3)? as u64, heads.len())?;
        Ok(())
    }

    /// Entries and postings as multi-row VALUES (SQLite), chunked under its parameter limit.
    async fn insert_values<C: ConnectionTrait>(&self, db: &C) -> Result<(), LedgerError> {
        let backend = db.get_database_backend();
        for chunk in self.entries.chunks(MAX_PARAMS / sql::ENTRY_NCOLS) {
            let mut values = Vec::with_capacity(chunk.len() * sql::ENTRY_NCOLS);
            for r in chunk {
                sql::entry_values(r, &mut values);
            }
            let q = format!(
                "INSERT INTO ledger_entries ({}) VALUES {}",
                sql::ENTRY_COLS,
                value_rows(backend, chunk.len(), sql::ENTRY_NCOLS, 1)
            );
            sql::exec(db, q, values).await?;
        }
        let postings = self.posting_index();
        for chunk in postings.chunks(MAX_PARAMS / sql::POSTING_NCOLS) {
            let mut values = Vec::with_capacity(chunk.len() * sql::POSTING_NCOLS);
            for &(e, i) in chunk {
                let r = &self.entries[e];
                sql::posting_values(r, i, &r.postings[i], &mut values);
            }
            let q = format!(
                "INSERT INTO ledger_postings ({}) VALUES {}",
                sql::POSTING_COLS,
                value_rows(backend, chunk.len(), sql::POSTING_NCOLS, 1)
            );
            sql::exec(db, q, values).await?;
        }
        Ok(())
    }

    /// (entry, posting) positions of every posting to write, in order.
    fn posting_index(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (e, r) in self.entries.iter().enumerate() {
            out.extend((0..r.postings.len()).map(|i| (e, i)));
        }
        out
    }

    /// Scale of an asset loaded for this transaction.
    pub(crate) fn assets(&self) -> &HashMap<String, Asset> {
        &self.assets
    }
}

struct NewRecord<'a> {
    key: &'a str,
    request_hash: String,
    kind: &'a str,
    status: EntryStatus,
    effective_date: chrono::NaiveDate,
    description: &'a str,
    metadata: String,
    reverses: Option<Uuid>,
    hold: Option<Uuid>,
    expires_at_us: Option<i64>,
    lines: &'a [Line],
}

fn check_count(what: &str, written: u64, expected: usize) -> Result<(), LedgerError> {
    if written == expected as u64 {
        Ok(())
    } else {
        Err(LedgerError::Corrupt(format!(
            "wrote {written} {what} of {expected}"
        )))
    }
}

/// One column of rows as a PostgreSQL array parameter.
fn column<R, T>(rows: &[R], f: impl Fn(&R) -> T) -> Value
where
    T: Into<Value>,
    Vec<T>: Into<Value>,
{
    rows.iter().map(f).collect::<Vec<T>>().into()
}

fn check_text(description: &str) -> Result<(), LedgerError> {
    if description.len() > 1_000 {
        return Err(LedgerError::InvalidEntry(
            "description is longer than 1,000 bytes".to_owned(),
        ));
    }
    Ok(())
}

fn fingerprint_postings(c: &mut Canon, ps: &[NewPosting]) {
    c.i64(ps.len() as i64);
    for p in ps {
        c.uuid(p.account_id)
            .str(&p.asset)
            .str(p.side.as_str())
            .str(&p.amount.normalize().to_string());
    }
}

/// What makes two post requests "the same" for idempotency: everything the caller sent.
fn fingerprint_post(e: &NewEntry) -> String {
    let mut c = Canon::default();
    c.str("post")
        .str(&e.kind)
        .date(e.effective_date)
        .str(&e.description)
        .str(&sql::canonical_json(&e.metadata))
        .opt_i64(
            e.hold
                .map(|h| h.expires_at.map(sql::micros).unwrap_or(i64::MIN)),
        );
    fingerprint_postings(&mut c, &e.postings);
    c.hex()
}

/// Exact decimal of minor units, for converting stored postings.
pub(crate) fn decimal(minor: i64, scale: u32) -> Decimal {
    Amount::from_minor(minor, scale).to_decimal()
}
