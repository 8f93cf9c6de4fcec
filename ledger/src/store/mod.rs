//! Persistence of the books with sea-orm, on SQLite (embedded default) or PostgreSQL.
//!
//! [`Ledger`] is the handle the rest of the platform uses. Writes go to one writer task per
//! process, which combines the requests waiting at that moment into one database transaction
//! (group commit, as TigerBeetle does): one fsync and one lock round for many entries, and a
//! hot account updated once per transaction instead of once per entry. Each request is still
//! judged on its own: a refused request does not affect the others in its group, and a batch
//! is all or nothing. [`Ledger::post_batch_in`] joins a caller's transaction instead, for
//! workflows that must commit ledger entries together with their own rows.
//!
//! Amounts are stored as BIGINT counts of minor units (exact on both backends: sea-orm would
//! bind a `Decimal` as a float on SQLite), times as BIGINT microseconds since the epoch.

pub mod accounts_bulk;
pub mod market;
mod read;
pub mod reconciliation;
pub(crate) mod sql;
mod work;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbErr,
    SqlErr, SqliteTransactionMode, SqlxSqliteConnector, TransactionOptions, TransactionTrait,
    Value,
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

pub use read::{
    ACCOUNT_COLS, AsOf, BalanceReport, EntryPage, MAX_PAGE, TrialBalanceLine, account_by_code,
    account_from_row,
};
/// Placeholders for raw SQL on both backends, shared by every store and workflow.
pub use sql::{Params, for_update, param};

use crate::account::{Account, NewAccount};
use crate::asset::{Asset, AssetKind};
use crate::chain::EntryRecord;
use crate::entry::{
    Entry, HoldCommit, HoldState, MAX_BATCH, NewEntry, Operation, Outcome, Posted, Posting,
    Reversal,
};
use crate::error::LedgerError;
use work::{Draft, Work};

/// Most operations the writer puts in one transaction (a batch larger than this still goes
/// through whole, alone).
const MAX_GROUP_OPS: usize = 10_000;
/// Times the writer yields to other tasks before collecting a group.
const GATHER_YIELDS: usize = 2;
/// Requests that may wait for the writer before callers are slowed down.
const QUEUE_DEPTH: usize = 4_096;

/// The file of an SQLite URL (`None` for in-memory databases and other backends).
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || path.starts_with("file::memory:") {
        return None;
    }
    Some(std::path::PathBuf::from(
        path.strip_prefix("file:").unwrap_or(path),
    ))
}

/// Takes `tenant_id`'s book lock in the caller's write transaction: the first lock of the
/// platform's lock order (store/work.rs). Nothing on SQLite (its write transaction is
/// exclusive already).
pub async fn lock_book<C: ConnectionTrait>(db: &C, tenant_id: Uuid) -> Result<(), LedgerError> {
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        read::lock_book(db, tenant_id).await?;
    }
    Ok(())
}

/// Takes every tenant's book lock, in `tenant_id` order (store/work.rs): an end-of-day step
/// that reads and writes many books at once holds them all for its transaction, so no request
/// changes a balance or a wrap under it. Nothing on SQLite.
pub async fn lock_all_books<C: ConnectionTrait>(db: &C) -> Result<(), LedgerError> {
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        // The ORDER BY is the lock order: it must stay. One lock statement per tenant, so that
        // on Citus each reaches one shard (a `FOR UPDATE` over several is refused there); a
        // book created after the list was read has no rows a step could touch yet.
        let rows = sql::query(
            db,
            "SELECT tenant_id FROM ledger_books ORDER BY tenant_id".to_owned(),
            vec![],
        )
        .await?;
        for row in rows {
            read::lock_book(db, sql::get::<Uuid>(&row, 0)?).await?;
        }
    }
    Ok(())
}

/// How long a PostgreSQL request waits for a pooled connection before it fails (a 503).
pub const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a connection pool: `sqlite:` URLs get WAL, a busy timeout and foreign keys; anything
/// else is handed to sea-orm (PostgreSQL). No statement timeout: [`connect_with`] sets one.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, None).await
}

/// [`connect`], with PostgreSQL's `statement_timeout` set on every connection of the pool
/// (sent in the startup packet, so a connection never runs a statement without it): a
/// statement running longer is cancelled by the server, its transaction aborted and rolled
/// back. SQLite has no such setting; its waits are bounded by the 30 s busy timeout.
pub async fn connect_with(
    url: &str,
    statement_timeout: Option<Duration>,
) -> Result<DatabaseConnection, DbErr> {
    if url.starts_with("sqlite:") {
        use sea_orm::sqlx::ConnectOptions as _;
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| DbErr::Conn(sea_orm::RuntimeErr::Internal(e.to_string())))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed entry survives a power cut, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            // 16 MiB of page cache per connection (the default is 2 MiB), so the hot part of
            // the books' indexes stays in memory; 8 connections bound it to 128 MiB.
            .pragma("cache_size", "-16384")
            // Reads through a shared memory map (up to 256 MiB of the file) rather than a
            // read() and a copy per page: end of day touches a page per wrap in each of its
            // tables, far more than the page cache holds; the map is the OS page cache itself,
            // shared by every connection. Writes still go through the WAL as before. Not
            // more: every mapped page the process touches counts in its resident memory, and
            // with 1 GiB an end of day of 100,000 wraps peaked at 3.4 GiB against its 2 GiB
            // budget; with 256 MiB it peaks at 1.8 GiB and runs 10-15 % slower
            // (docs/BENCHMARKS.md, "Before: goals in batches, …, mimalloc").
            .pragma("mmap_size", "268435456")
            // Statement journals (savepoints) in memory, not in temporary files.
            .pragma("temp_store", "memory")
            // Checkpoint the WAL into the database every 65,536 pages (256 MiB) instead of
            // every 1,000: end of day rewrites a page per wrap in each of several tables
            // every step, and copying them back after each step cost a fifth of a year's
            // demo (110.5 s → 88.7 s for 1,000 wraps, docs/BENCHMARKS.md). A page rewritten
            // many times between checkpoints is copied once. The file is cut back to 64 MiB
            // after a checkpoint, so the disk it holds stays bounded.
            .pragma("wal_autocheckpoint", "65536")
            .pragma("journal_size_limit", "67108864")
            .disable_statement_logging();
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .map_err(|e| DbErr::Conn(sea_orm::RuntimeErr::Internal(e.to_string())))?;
        Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
    } else {
        let mut opts = ConnectOptions::new(url);
        // A request waits at most PG_ACQUIRE_TIMEOUT for a connection: while the server is
        // down the pool retries a refused connection until then, and sqlx's default (30 s) kept
        // each request hanging that long before its 503 (api/src/problem.rs); the readiness
        // probe and clients retrying with their Idempotency-Key do better with a prompt answer.
        opts.max_connections(16)
            .acquire_timeout(PG_ACQUIRE_TIMEOUT)
            .sqlx_logging(false);
        if let Some(limit) = statement_timeout {
            let ms = limit.as_millis().to_string();
            opts.map_sqlx_postgres_opts(move |o| o.options([("statement_timeout", ms.as_str())]));
        }
        Database::connect(opts).await
    }
}

/// Begins a write transaction: `BEGIN IMMEDIATE` on SQLite (take the single write lock up
/// front, so concurrent writers wait in the busy timeout instead of failing on upgrade).
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}

/// Registers an asset inside the caller's write transaction (so it commits or rolls back with
/// the caller's other rows, as an instrument's does). Creating an identical asset again returns
/// it; a different one with the same code is refused. Not cached until read after commit: a
/// rolled-back asset must not linger in a process's cache.
pub async fn create_asset_in(
    txn: &DatabaseTransaction,
    asset: &Asset,
) -> Result<Asset, LedgerError> {
    asset.validate()?;
    let backend = txn.get_database_backend();
    if let Some(existing) = read::load_assets(txn, std::slice::from_ref(&asset.code))
        .await?
        .pop()
    {
        return if &existing == asset {
            Ok(existing)
        } else {
            Err(LedgerError::AssetConflict(asset.code.clone()))
        };
    }
    let (kind, price_currency, quote_unit) = match &asset.kind {
        AssetKind::Currency => ("currency", None, None),
        AssetKind::Instrument {
            price_currency,
            quote_unit,
        } => {
            let currency = read::load_assets(txn, std::slice::from_ref(price_currency))
                .await?
                .pop();
            if !matches!(
                currency,
                Some(Asset {
                    kind: AssetKind::Currency,
                    ..
                })
            ) {
                return Err(LedgerError::UnknownAsset(price_currency.clone()));
            }
            (
                "instrument",
                Some(price_currency.clone()),
                Some(*quote_unit),
            )
        }
    };
    let q = format!(
        "INSERT INTO ledger_assets (code, kind, scale, price_currency, quote_unit, created_at) VALUES {}",
        sql::value_rows(backend, 1, 6, 1)
    );
    let values: Vec<Value> = vec![
        asset.code.clone().into(),
        kind.into(),
        (asset.scale as i32).into(),
        price_currency.into(),
        quote_unit.into(),
        sql::micros(Utc::now()).into(),
    ];
    sql::exec(txn, q, values).await?;
    Ok(asset.clone())
}

#[derive(Debug)]
struct Job {
    ops: Vec<Operation>,
    batch: bool,
    reply: oneshot::Sender<Result<Vec<Outcome>, LedgerError>>,
}

/// Assets are immutable once created, so every process may cache them.
#[derive(Debug, Default)]
pub(crate) struct AssetCache(RwLock<HashMap<String, Asset>>);

impl AssetCache {
    fn get(&self, code: &str) -> Option<Asset> {
        self.0.read().ok().and_then(|m| m.get(code).cloned())
    }

    fn insert(&self, asset: Asset) {
        if let Ok(mut m) = self.0.write() {
            m.insert(asset.code.clone(), asset);
        }
    }

    /// The assets named, from the cache or else the database.
    pub(crate) async fn resolve<C: ConnectionTrait>(
        &self,
        db: &C,
        codes: impl IntoIterator<Item = String>,
    ) -> Result<HashMap<String, Asset>, LedgerError> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for code in codes {
            match self.get(&code) {
                Some(a) => {
                    found.insert(code, a);
                }
                None => missing.push(code),
            }
        }
        if !missing.is_empty() {
            for a in read::load_assets(db, &missing).await? {
                self.insert(a.clone());
                found.insert(a.code.clone(), a);
            }
        }
        Ok(found)
    }
}

/// The books: a cheap, cloneable handle.
#[derive(Debug, Clone)]
pub struct Ledger {
    db: DatabaseConnection,
    assets: Arc<AssetCache>,
    writer: mpsc::Sender<Job>,
    /// Entries written (replays not counted) by this handle and its clones, for metrics.
    written: Arc<AtomicU64>,
}

impl Ledger {
    /// A ledger over `db` (schema already migrated). Spawns the writer task on the current
    /// tokio runtime; it stops when the last handle is dropped.
    pub fn new(db: DatabaseConnection) -> Self {
        let assets = Arc::new(AssetCache::default());
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let written = Arc::new(AtomicU64::new(0));
        tokio::spawn(writer_loop(
            db.clone(),
            Arc::clone(&assets),
            rx,
            Arc::clone(&written),
        ));
        Self {
            db,
            assets,
            writer: tx,
            written,
        }
    }

    /// How many entries this handle has written since it started, through its writer or in a
    /// caller's transaction ([`Ledger::post_batch_in`]: deposits, withdrawals, contributions,
    /// end of day); an idempotent replay writes nothing and is not counted. A process-local
    /// counter, for metrics.
    pub fn entries_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// The database connection the ledger uses.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Registers an asset. Creating an identical asset again returns it; a different one with
    /// the same code is refused.
    pub async fn create_asset(&self, asset: &Asset) -> Result<Asset, LedgerError> {
        let txn = begin_write(&self.db).await?;
        let created = create_asset_in(&txn, asset).await?;
        txn.commit().await?;
        self.assets.insert(created.clone());
        Ok(created)
    }

    /// The asset with this code.
    pub async fn asset(&self, code: &str) -> Result<Asset, LedgerError> {
        self.asset_in(&self.db, code).await
    }

    /// [`Ledger::asset`] read through `db` (the caller's transaction) when it is not cached: a
    /// transaction must not wait for a second connection of the pool, which requests blocked
    /// behind its locks may all hold.
    pub async fn asset_in<C: ConnectionTrait>(
        &self,
        db: &C,
        code: &str,
    ) -> Result<Asset, LedgerError> {
        self.assets
            .resolve(db, [code.to_owned()])
            .await?
            .remove(code)
            .ok_or_else(|| LedgerError::UnknownAsset(code.to_owned()))
    }

    /// Opens an account (and the tenant's book, on its first account).
    pub async fn create_account(&self, new: &NewAccount) -> Result<Account, LedgerError> {
        let txn = begin_write(&self.db).await?;
        let id = self.create_account_in(&txn, new).await?;
        txn.commit().await?;
        self.account(new.tenant_id, id).await
    }

    /// Opens an account inside the caller's write transaction (so it commits or rolls back
    /// with the caller's other changes); returns its id.
    pub async fn create_account_in(
        &self,
        txn: &DatabaseTransaction,
        new: &NewAccount,
    ) -> Result<Uuid, LedgerError> {
        new.validate()?;
        let asset = self.asset(&new.asset).await?;
        let backend = txn.get_database_backend();
        let now = Utc::now();
        let id = Uuid::now_v7();
        let metadata = sql::canonical_json(&new.metadata);
        let q = format!(
            "INSERT INTO ledger_books (tenant_id, seq, hash, created_at) VALUES {} ON CONFLICT (tenant_id) DO NOTHING",
            sql::value_rows(backend, 1, 4, 1)
        );
        sql::exec(
            txn,
            q,
            vec![
                new.tenant_id.into(),
                0_i64.into(),
                crate::chain::GENESIS.into(),
                sql::micros(now).into(),
            ],
        )
        .await?;
        let q = format!(
            "INSERT INTO ledger_accounts (tenant_id, id, code, asset_code, normal_side, no_negative, closed, metadata, \
             created_at, debits_posted, credits_posted, debits_pending, credits_pending) VALUES {}",
            sql::value_rows(backend, 1, 13, 1)
        );
        let values: Vec<Value> = vec![
            new.tenant_id.into(),
            id.into(),
            new.code.clone().into(),
            asset.code.clone().into(),
            new.normal_side.as_str().into(),
            new.no_negative.into(),
            false.into(),
            metadata.into(),
            sql::micros(now).into(),
            0_i64.into(),
            0_i64.into(),
            0_i64.into(),
            0_i64.into(),
        ];
        match sql::exec(txn, q, values).await {
            Err(LedgerError::Storage(e))
                if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
            {
                return Err(LedgerError::AccountCodeTaken(new.code.clone()));
            }
            other => other?,
        };
        Ok(id)
    }

    /// Closes an account whose balance is zero and which has no pending hold.
    pub async fn close_account(&self, tenant_id: Uuid, id: Uuid) -> Result<Account, LedgerError> {
        let backend = self.db.get_database_backend();
        let txn = begin_write(&self.db).await?;
        // The tenant's book lock guards every change to its accounts (store/work.rs).
        read::lock_book(&txn, tenant_id).await?;
        let account = read::account(&txn, tenant_id, id).await?;
        let b = account.balance;
        if b.debits_pending != 0 || b.credits_pending != 0 {
            return Err(LedgerError::CannotClose {
                account_id: id,
                reason: "it has pending holds".to_owned(),
            });
        }
        if b.posted(account.normal_side) != 0 {
            return Err(LedgerError::CannotClose {
                account_id: id,
                reason: "its balance is not zero".to_owned(),
            });
        }
        let q = format!(
            "UPDATE ledger_accounts SET closed = {} WHERE tenant_id = {} AND id = {}",
            sql::param(backend, 1),
            sql::param(backend, 2),
            sql::param(backend, 3)
        );
        sql::exec(&txn, q, vec![true.into(), tenant_id.into(), id.into()]).await?;
        txn.commit().await?;
        self.account(tenant_id, id).await
    }

    /// An account with its balance. Another tenant's account answers [`LedgerError::AccountNotFound`].
    pub async fn account(&self, tenant_id: Uuid, id: Uuid) -> Result<Account, LedgerError> {
        read::account(&self.db, tenant_id, id).await
    }

    /// An account by its code.
    pub async fn account_by_code(
        &self,
        tenant_id: Uuid,
        code: &str,
    ) -> Result<Option<Account>, LedgerError> {
        read::account_by_code(&self.db, tenant_id, code).await
    }

    /// Posts one entry (or places a hold, when `entry.hold` is set).
    pub async fn post_entry(&self, entry: NewEntry) -> Result<Posted, LedgerError> {
        single_entry(self.submit(vec![Operation::Post(entry)], false).await)
    }

    /// Posts up to [`MAX_BATCH`] entries atomically: all of them or, on the first refusal
    /// ([`LedgerError::BatchRejected`] names it), none.
    pub async fn post_batch(&self, entries: Vec<NewEntry>) -> Result<Vec<Posted>, LedgerError> {
        check_batch(entries.len())?;
        let outcomes = self
            .submit(entries.into_iter().map(Operation::Post).collect(), true)
            .await?;
        outcomes
            .into_iter()
            .map(|o| single_entry(Ok(vec![o])))
            .collect()
    }

    /// [`Ledger::post_batch`] inside the caller's transaction, which the caller commits. Use
    /// a write transaction from [`begin_write`].
    pub async fn post_batch_in(
        &self,
        txn: &DatabaseTransaction,
        entries: Vec<NewEntry>,
    ) -> Result<Vec<Posted>, LedgerError> {
        check_batch(entries.len())?;
        let ops: Vec<Operation> = entries.into_iter().map(Operation::Post).collect();
        let mut results = execute_in(txn, &self.assets, &[(&ops, true)]).await?;
        let result = results.pop().unwrap_or_else(|| Ok(Vec::new()));
        // Counted when written: the caller commits almost always (a movement is refused before
        // it posts, an end-of-day step fails whole), so counting after its commit would buy
        // little for a hook in every caller.
        self.written
            .fetch_add(new_entries(&result), Ordering::Relaxed);
        let outcomes = result?;
        outcomes
            .into_iter()
            .map(|o| single_entry(Ok(vec![o])))
            .collect()
    }

    /// Reverses a posted entry with its mirror image, linked to it. A second reversal is refused.
    pub async fn reverse(&self, reversal: Reversal) -> Result<Posted, LedgerError> {
        single_entry(self.submit(vec![Operation::Reverse(reversal)], false).await)
    }

    /// Posts a hold, fully or in part; the rest of it is released.
    pub async fn commit_hold(&self, commit: HoldCommit) -> Result<Posted, LedgerError> {
        single_entry(
            self.submit(vec![Operation::CommitHold(commit)], false)
                .await,
        )
    }

    /// Releases a hold without posting it. Voiding a voided hold again answers the same.
    pub async fn void_hold(
        &self,
        tenant_id: Uuid,
        hold_id: Uuid,
    ) -> Result<HoldState, LedgerError> {
        match self
            .submit(vec![Operation::VoidHold { tenant_id, hold_id }], false)
            .await?
            .pop()
        {
            Some(Outcome::Released { state, .. }) => Ok(state),
            other => Err(LedgerError::Corrupt(format!("void answered {other:?}"))),
        }
    }

    /// Releases every hold whose expiry time is at or before `now`; returns how many.
    pub async fn expire_holds(&self, now: DateTime<Utc>) -> Result<usize, LedgerError> {
        let due = read::due_holds(&self.db, now, MAX_GROUP_OPS).await?;
        let jobs = due.into_iter().map(|(tenant_id, hold_id)| {
            self.submit(
                vec![Operation::ExpireHold {
                    tenant_id,
                    hold_id,
                    now,
                }],
                false,
            )
        });
        let results = futures::future::join_all(jobs).await;
        let mut expired = 0;
        for r in results {
            match r {
                Ok(outcomes) => {
                    expired += outcomes
                        .iter()
                        .filter(|o| matches!(o, Outcome::Released { already: false, .. }))
                        .count()
                }
                // Committed or voided meanwhile: nothing left to expire.
                Err(LedgerError::HoldNotPending { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }

    /// Any operations, as one all-or-nothing job; with `batch`, a refusal is reported as
    /// [`LedgerError::BatchRejected`] naming the operation's position.
    pub async fn submit(
        &self,
        ops: Vec<Operation>,
        batch: bool,
    ) -> Result<Vec<Outcome>, LedgerError> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(Job { ops, batch, reply })
            .await
            .map_err(|_| LedgerError::WriterStopped)?;
        rx.await.map_err(|_| LedgerError::WriterStopped)?
    }

    /// One entry with its postings.
    pub async fn entry(&self, tenant_id: Uuid, id: Uuid) -> Result<Entry, LedgerError> {
        let record = sql::load_entries(&self.db, tenant_id, &[id])
            .await?
            .pop()
            .ok_or(LedgerError::EntryNotFound(id))?;
        let assets = self
            .assets
            .resolve(&self.db, record.postings.iter().map(|p| p.asset.clone()))
            .await?;
        to_entry(&record, &assets)
    }

    /// An account's balance now, or as of a past business date or booking time.
    pub async fn balance(
        &self,
        tenant_id: Uuid,
        account_id: Uuid,
        as_of: AsOf,
    ) -> Result<BalanceReport, LedgerError> {
        read::balance(&self.db, &self.assets, tenant_id, account_id, as_of)
            .await
            .map(|(_, report)| report)
    }

    /// The account itself and its balance (as [`Ledger::balance`]), read in one query when
    /// `as_of` is [`AsOf::Now`].
    pub async fn account_balance(
        &self,
        tenant_id: Uuid,
        account_id: Uuid,
        as_of: AsOf,
    ) -> Result<(Account, BalanceReport), LedgerError> {
        read::balance(&self.db, &self.assets, tenant_id, account_id, as_of).await
    }

    /// The tenant's accounts in creation order, `limit` at a time after `after`; returns the
    /// page and the cursor of the next one.
    pub async fn accounts(
        &self,
        tenant_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<(Vec<Account>, Option<Uuid>), LedgerError> {
        read::accounts(&self.db, tenant_id, after, limit).await
    }

    /// The entries touching an account, in booking order, `limit` at a time after `cursor`.
    pub async fn account_entries(
        &self,
        tenant_id: Uuid,
        account_id: Uuid,
        cursor: Option<i64>,
        limit: u32,
    ) -> Result<EntryPage, LedgerError> {
        read::account_entries(&self.db, &self.assets, tenant_id, account_id, cursor, limit).await
    }

    /// Debits and credits per asset over all accounts of a tenant (or of every tenant).
    pub async fn trial_balance(
        &self,
        tenant_id: Option<Uuid>,
    ) -> Result<Vec<TrialBalanceLine>, LedgerError> {
        read::trial_balance(&self.db, &self.assets, tenant_id).await
    }

    /// [`Ledger::trial_balance`] read through `db` (the caller's transaction: see
    /// [`Ledger::asset_in`]).
    pub async fn trial_balance_in<C: ConnectionTrait>(
        &self,
        db: &C,
        tenant_id: Option<Uuid>,
    ) -> Result<Vec<TrialBalanceLine>, LedgerError> {
        read::trial_balance(db, &self.assets, tenant_id).await
    }

    /// Recomputes a tenant's hash chain and names the first broken link.
    pub async fn verify_chain(
        &self,
        tenant_id: Uuid,
    ) -> Result<crate::chain::ChainReport, LedgerError> {
        read::verify_chain(&self.db, tenant_id).await
    }
}

fn check_batch(len: usize) -> Result<(), LedgerError> {
    if len > MAX_BATCH {
        return Err(LedgerError::BatchTooLarge {
            max: MAX_BATCH,
            got: len,
        });
    }
    Ok(())
}

fn single_entry(result: Result<Vec<Outcome>, LedgerError>) -> Result<Posted, LedgerError> {
    match result?.pop() {
        Some(Outcome::Entry(p)) => Ok(*p),
        other => Err(LedgerError::Corrupt(format!(
            "expected an entry, got {other:?}"
        ))),
    }
}

async fn writer_loop(
    db: DatabaseConnection,
    assets: Arc<AssetCache>,
    mut rx: mpsc::Receiver<Job>,
    written: Arc<AtomicU64>,
) {
    while let Some(first) = rx.recv().await {
        // Callers answered by the previous group are usually about to send their next request:
        // let them run before taking the queue, so the group is as large as the concurrency.
        // (A yield costs microseconds; an idle ledger is not delayed.)
        for _ in 0..GATHER_YIELDS {
            tokio::task::yield_now().await;
        }
        let mut ops = first.ops.len();
        let mut jobs = vec![first];
        while ops < MAX_GROUP_OPS {
            match rx.try_recv() {
                Ok(job) => {
                    ops += job.ops.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        run_group(&db, &assets, jobs, &written).await;
    }
}

/// Entries a job's result wrote (replays excluded).
fn new_entries(result: &Result<Vec<Outcome>, LedgerError>) -> u64 {
    result.as_ref().map_or(0, |outcomes| {
        outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Entry(p) if !p.replayed))
            .count() as u64
    })
}

async fn run_group(
    db: &DatabaseConnection,
    assets: &AssetCache,
    jobs: Vec<Job>,
    written: &AtomicU64,
) {
    let specs: Vec<(&[Operation], bool)> =
        jobs.iter().map(|j| (j.ops.as_slice(), j.batch)).collect();
    match execute(db, assets, &specs).await {
        Ok(results) => {
            for (job, result) in jobs.into_iter().zip(results) {
                written.fetch_add(new_entries(&result), Ordering::Relaxed);
                let _ = job.reply.send(result);
            }
        }
        Err(e) if jobs.len() > 1 => {
            // A storage failure (say, a key inserted by another process between our check and our
            // insert) fails the whole transaction: retry each job alone so only its own
            // failure reaches it.
            tracing::debug!(error = %e, jobs = jobs.len(), "group failed; retrying jobs one by one");
            for job in jobs {
                let result = execute(db, assets, &[(job.ops.as_slice(), job.batch)])
                    .await
                    .and_then(|mut r| r.pop().unwrap_or_else(|| Ok(Vec::new())));
                written.fetch_add(new_entries(&result), Ordering::Relaxed);
                let _ = job.reply.send(result);
            }
        }
        Err(e) => {
            // A lone job: its caller gets the failure as it is.
            if let Some(job) = jobs.into_iter().next() {
                let _ = job.reply.send(Err(e));
            }
        }
    }
}

type JobResults = Vec<Result<Vec<Outcome>, LedgerError>>;

async fn execute(
    db: &DatabaseConnection,
    assets: &AssetCache,
    jobs: &[(&[Operation], bool)],
) -> Result<JobResults, LedgerError> {
    let started = std::time::Instant::now();
    let txn = begin_write(db).await?;
    let results = execute_in(&txn, assets, jobs).await?;
    let executed = started.elapsed();
    txn.commit().await?;
    tracing::debug!(
        jobs = jobs.len(),
        execute_us = executed.as_micros() as u64,
        commit_us = (started.elapsed() - executed).as_micros() as u64,
        "ledger.group"
    );
    Ok(results)
}

/// Runs jobs inside `txn` and writes what they accepted; the caller commits.
async fn execute_in(
    txn: &DatabaseTransaction,
    assets: &AssetCache,
    jobs: &[(&[Operation], bool)],
) -> Result<JobResults, LedgerError> {
    let ops: Vec<&Operation> = jobs.iter().flat_map(|(ops, _)| ops.iter()).collect();
    let t0 = std::time::Instant::now();
    let mut work = Work::load(txn, &ops, assets).await?;
    let t1 = std::time::Instant::now();
    let drafts: Vec<Result<Vec<Draft>, LedgerError>> = jobs
        .iter()
        .map(|(ops, batch)| work.run_job(ops, *batch))
        .collect();
    let t2 = std::time::Instant::now();
    work.flush(txn).await?;
    tracing::trace!(
        load_us = (t1 - t0).as_micros() as u64,
        rules_us = (t2 - t1).as_micros() as u64,
        flush_us = t2.elapsed().as_micros() as u64,
        "ledger.execute"
    );

    // Replays: read the original entries back (inside the transaction, so in-group ones are seen).
    let mut replay_ids: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for d in drafts.iter().flatten().flatten() {
        if let Draft::Replay(tenant, id) = d {
            replay_ids.entry(*tenant).or_default().push(*id);
        }
    }
    let mut replays: HashMap<Uuid, EntryRecord> = HashMap::new();
    for (tenant, ids) in replay_ids {
        for r in sql::load_entries(txn, tenant, &ids).await? {
            replays.insert(r.id, r);
        }
    }
    let mut scales = work.assets().clone();
    let extra: Vec<String> = replays
        .values()
        .flat_map(|r| r.postings.iter())
        .map(|p| p.asset.clone())
        .collect();
    scales.extend(assets.resolve(txn, extra).await?);

    let mut results = Vec::with_capacity(drafts.len());
    for job in drafts {
        results.push(job.and_then(|ds| {
            ds.into_iter()
                .map(|d| match d {
                    Draft::Written(r) => Ok(Outcome::Entry(Box::new(Posted {
                        entry: to_entry(&r, &scales)?,
                        replayed: false,
                    }))),
                    Draft::Replay(_, id) => {
                        let r = replays.get(&id).ok_or(LedgerError::EntryNotFound(id))?;
                        Ok(Outcome::Entry(Box::new(Posted {
                            entry: to_entry(r, &scales)?,
                            replayed: true,
                        })))
                    }
                    Draft::Released {
                        hold_id,
                        state,
                        already,
                    } => Ok(Outcome::Released {
                        hold_id,
                        state,
                        already,
                    }),
                })
                .collect()
        }));
    }
    Ok(results)
}

/// A stored entry in the shape callers use (amounts as exact decimals).
pub(crate) fn to_entry(
    r: &EntryRecord,
    assets: &HashMap<String, Asset>,
) -> Result<Entry, LedgerError> {
    let postings = r
        .postings
        .iter()
        .map(|p| {
            let scale = assets
                .get(&p.asset)
                .map(|a| a.scale)
                .ok_or_else(|| LedgerError::Corrupt(format!("asset {} not loaded", p.asset)))?;
            Ok(Posting {
                account_id: p.account_id,
                asset: p.asset.clone(),
                side: p.side,
                amount: work::decimal(p.amount, scale),
            })
        })
        .collect::<Result<_, LedgerError>>()?;
    Ok(Entry {
        id: r.id,
        tenant_id: r.tenant_id,
        seq: r.seq,
        idempotency_key: r.idempotency_key.clone(),
        kind: r.kind.clone(),
        status: r.status,
        effective_date: r.effective_date,
        booked_at: sql::from_micros(r.booked_at_us)?,
        description: r.description.clone(),
        metadata: serde_json::from_str(&r.metadata)
            .map_err(|e| LedgerError::Corrupt(e.to_string()))?,
        reverses_entry_id: r.reverses_entry_id,
        hold_entry_id: r.hold_entry_id,
        expires_at: r.expires_at_us.map(sql::from_micros).transpose()?,
        prev_hash: r.prev_hash.clone(),
        hash: r.hash.clone(),
        postings,
    })
}
