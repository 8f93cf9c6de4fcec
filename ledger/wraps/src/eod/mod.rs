//! End of day: the daily run over every tenant's books, one date at a time.
//!
//! The run for a date is a fixed sequence of steps ([`STEPS`]): `plans` (due contribution
//! and withdrawal plans, [`plans`]), the trading steps `rebalance` (decisions and orders per
//! wrap, [`rebalance`]), `netting`, `execution` and `allocation` (per distributor and
//! instrument: crossed internally, the net sent to a [`trading::Venue`], fills allocated to
//! the wraps and pending movements paid out, [`trading`]; they do nothing on a day that is
//! not a business day of the calendar), `valuation` (a snapshot per wrap, [`valuation`]),
//! `accrual` (the day's management fee, [`fees`]), `billing` (period-end collection, split,
//! performance and platform fees, [`billing`]), `returns` (the daily time-weighted return per
//! wrap, [`returns`]), `goals` (the probability of reaching each wrap's goal, [`goals`]) and
//! `checks` (trial balance, reconciliation, no negative balance, [`checks`]).
//!
//! Invariants, and the tests (`api/tests/http/eod.rs`) that try to break them:
//! * **dates run strictly in order, with no gaps**: the first date ever is free; after it
//!   only the day after the last finished date, or the date that started and did not finish
//!   ([`expected_date`]). Tried by `three_days_and_the_date_rules` and
//!   `the_command_runs_days_in_order`;
//! * **a finished date runs once**: running it again changes nothing and says so. Tried by
//!   `three_days_and_the_date_rules`;
//! * **a step is all or nothing**: each step writes its effects and its checkpoint row
//!   (`eod_steps`) in one transaction, so a crash leaves the step not done and a re-run
//!   redoes it from a clean state; entries the run makes carry deterministic idempotency
//!   keys (`plan:{plan_id}:{date}`), so even a replayed entry is found, not repeated. Tried
//!   by `crash_and_resume_matches_an_uninterrupted_run` (`wrapd eod` aborted inside each
//!   step, just before its commit, through the `WRAP_EOD_ABORT_IN_STEP` fault hook);
//! * **a day whose checks fail does not finish**: the failing step is recorded `failed` with
//!   the reason, the date stays unfinished (its prices stay replaceable) and the command
//!   exits non-zero. Tried by `failing_checks_stop_the_day`;
//! * **a finished date's prices are frozen**: the date is marked `running` in `eod_runs`
//!   (its own transaction) before any step reads prices, and `finished` at the end (the
//!   price upload refuses finished dates). Tried by `three_days_and_the_date_rules` and
//!   `snapshots_value_wraps_at_the_days_prices`;
//! * **no price of the date is stored unused**: a price uploaded after valuation read the
//!   prices (counted in `eod_runs.price_revision`, never judged by clocks) makes the finishing
//!   transaction redo valuation and the checks ([`run_date`]). Tried by
//!   `a_price_arriving_after_valuation_is_used` and
//!   `a_price_committed_after_valuation_is_used_whatever_its_clock`;
//! * **a day with external execution waits for its fills**: when a distributor's venue is
//!   external ([`instructions`]), the execution step sends its blocks out as instructions,
//!   commits them with its checkpoint row in state `awaiting_fills`, and the run of the date
//!   stops there (the day is `awaiting_fills`; `wrapd eod` exits with
//!   exit status 3 (`api/src/eod_cli.rs`); the API refuses to start it again while instructions are
//!   open). Later dates wait too, as the date is still unfinished. Once every instruction of
//!   the date is complete, running the date again redoes the execution step (which sends
//!   nothing twice) and goes on with allocation. Tried by
//!   `api/tests/http/eod_instructions.rs::an_external_distributor_waits_for_its_fills`;
//! * **no request changes the books under a step**: each step's transaction first takes
//!   every book's lock in the platform's one lock order (`ledger/src/store/work.rs`), which
//!   the API's writes take in the same order; a request waits for the step (or the step for
//!   it) and then sees its result. Tried by `api/tests/http/concurrency.rs`;
//! * **one runner at a time, across processes**: a run is claimed in the database
//!   ([`claim`]: a lock released by the holder's death, and a fencing token that every write
//!   transaction of the run checks first), so replicas and `wrapd eod` processes started
//!   together do each date's work once; a second claimer answers 409 (or waits, with
//!   `wrapd eod --wait`). Tried by `api/tests/http/eod_claim.rs`. Within a process
//!   [`RunLock`] refuses a second run before touching the database.

pub mod billing;
pub mod checks;
pub mod claim;
pub mod fees;
pub mod goals;
pub mod instructions;
pub mod plans;
pub mod prices;
pub mod rebalance;
pub mod returns;
pub mod trading;
pub mod valuation;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Days, NaiveDate, Utc};
use ledger::{Ledger, LedgerError};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use ledger::sql::{Params, exec, from_micros, get, micros, query};
use tenants::audit::{Change, record_raw};

/// The steps built so far, in the order they run.
pub const STEPS: [&str; 11] = [
    "plans",
    "rebalance",
    "netting",
    "execution",
    "allocation",
    "valuation",
    "accrual",
    "billing",
    "returns",
    "goals",
    "checks",
];

/// When the `goals` step recomputes the goals' probabilities (`[goals] recompute`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoalCadence {
    /// Every date.
    #[default]
    Daily,
    /// The last date of each month only; other dates skip the step with that reason.
    MonthEnd,
}

/// Most dates one request or command may run (ten years of calendar days).
pub const MAX_DATES: u64 = 3_660;

/// Why end of day refused or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EodError {
    /// The date is not the next one to run.
    #[error(
        "end of day runs dates in order with no gaps: the next date to run is {expected}, not {date}"
    )]
    OutOfOrder {
        date: NaiveDate,
        expected: NaiveDate,
    },
    /// Another run is in progress, in this process or another ([`claim`]).
    #[error("an end-of-day run is in progress")]
    InProgress,
    /// Another runner claimed end of day after this one did: this run stops before writing.
    #[error("another end-of-day runner took over the run; this one stopped before writing")]
    ClaimLost,
    /// The SQLite lock file of the claim could not be opened or locked.
    #[error("end-of-day lock file {0}")]
    LockFile(String),
    /// A bad argument, naming the field.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The day's checks failed: the date is not finished.
    #[error("end of day for {date} stopped: {reason}")]
    ChecksFailed { date: NaiveDate, reason: String },
    /// The date waits for fills of its instructions: running it again now would change
    /// nothing.
    #[error(
        "end of day for {date} is awaiting fills: {open} instruction(s) still open \
         (GET /v1/instructions?date={date}&status=awaiting_fills); it continues when they are \
         complete, and later dates wait for it"
    )]
    AwaitingFills { date: NaiveDate, open: u64 },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Who runs end of day, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub tenant_id: Uuid,
    pub client_id: String,
    pub request_id: String,
}

/// Told what the run is doing (a progress bar on a terminal, log lines otherwise).
pub trait Progress: Send + Sync {
    /// `step` of `date` starts (`index` of [`STEPS`]).
    fn step_started(&self, date: NaiveDate, step: &str, index: usize);
    /// `date` is done (or was already).
    fn date_done(&self, outcome: &DayOutcome);
}

/// No progress reporting (the HTTP API's background run logs instead).
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn step_started(&self, date: NaiveDate, step: &str, _index: usize) {
        tracing::info!(%date, step, "eod.step");
    }

    fn date_done(&self, outcome: &DayOutcome) {
        tracing::info!(
            date = %outcome.date,
            already = outcome.already_finished,
            awaiting_fills = ?outcome.awaiting_fills,
            "eod.date_done"
        );
    }
}

/// What one step did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepOutcome {
    pub step: String,
    /// True when an earlier, interrupted run had already done it.
    pub done_earlier: bool,
    pub elapsed_ms: i64,
    /// The step's counts.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// What running one date did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DayOutcome {
    pub date: NaiveDate,
    /// True when the date had finished before: nothing was changed.
    pub already_finished: bool,
    /// Set when the date stopped to wait for fills: the instructions still open. The date
    /// is not finished; run it again when they are complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awaiting_fills: Option<u64>,
    pub steps: Vec<StepOutcome>,
}

// ---------------------------------------------------------------------------------------
// One run at a time

/// One run at a time per service (or command): the HTTP server keeps one in its app data,
/// the command line its own. Also tells the status which step runs now, and carries what
/// the run is configured with: the trading calendar and the venue block orders go to.
#[derive(Debug)]
pub struct RunLock {
    running: AtomicBool,
    current: Mutex<Option<(NaiveDate, &'static str)>>,
    calendar: ledger::calendar::Calendar,
    venue: Arc<dyn trading::Venue>,
    /// True: goals at month ends only ([`GoalCadence::MonthEnd`]).
    goals_month_end: AtomicBool,
    /// The SQLite database's lock file of the cross-process claim ([`claim::sqlite_lock_file`]).
    lock_file: Mutex<Option<std::path::PathBuf>>,
    /// What "today" is: end of day refuses later dates on a real clock ([`crate::clock`]).
    clock: Mutex<crate::clock::Clock>,
}

impl RunLock {
    /// A free lock, with the built-in Tokyo calendar and the simulated venue.
    pub fn new() -> Arc<Self> {
        Self::with(
            ledger::calendar::Calendar::japan(),
            Arc::new(trading::SimulatedVenue),
        )
    }

    /// A free lock for runs on `calendar` (`[calendar]` of the settings) through `venue`.
    pub fn with(calendar: ledger::calendar::Calendar, venue: Arc<dyn trading::Venue>) -> Arc<Self> {
        Arc::new(Self {
            running: AtomicBool::new(false),
            current: Mutex::new(None),
            calendar,
            venue,
            goals_month_end: AtomicBool::new(false),
            lock_file: Mutex::new(None),
            clock: Mutex::new(crate::clock::Clock::Real),
        })
    }

    /// Sets the business clock runs are checked against (`[clock]`).
    pub fn set_clock(&self, clock: crate::clock::Clock) {
        if let Ok(mut c) = self.clock.lock() {
            *c = clock;
        }
    }

    /// The business clock runs are checked against.
    pub fn clock(&self) -> crate::clock::Clock {
        self.clock.lock().map(|c| *c).unwrap_or_default()
    }

    /// Names the database the runs write to, so that a SQLite file gets its lock file
    /// ([`claim`]); other URLs change nothing.
    pub fn set_database_url(&self, url: &str) {
        if let Ok(mut f) = self.lock_file.lock() {
            *f = claim::sqlite_lock_file(url);
        }
    }

    /// Sets when the `goals` step recomputes (from `[goals] recompute`).
    pub fn set_goal_cadence(&self, cadence: GoalCadence) {
        self.goals_month_end
            .store(cadence == GoalCadence::MonthEnd, Ordering::Release);
    }

    /// When the `goals` step recomputes.
    pub fn goal_cadence(&self) -> GoalCadence {
        if self.goals_month_end.load(Ordering::Acquire) {
            GoalCadence::MonthEnd
        } else {
            GoalCadence::Daily
        }
    }

    /// The date and step running now.
    pub fn current(&self) -> Option<(NaiveDate, &'static str)> {
        self.current.lock().ok().and_then(|c| *c)
    }
}

/// Held while a run is in progress: the process's [`RunLock`] and the database claim
/// ([`claim::Claim`]); both are released on drop.
#[derive(Debug)]
pub struct RunGuard {
    lock: Arc<RunLock>,
    /// Taken by [`RunGuard::release`].
    claim: Option<claim::Claim>,
}

impl RunGuard {
    /// The guard, or [`EodError::InProgress`] when another run holds `lock` or the claim in
    /// `db` (another process).
    pub async fn acquire(lock: &Arc<RunLock>, db: &DatabaseConnection) -> Result<Self, EodError> {
        lock.running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .map_err(|_| EodError::InProgress)?;
        // From here the flag is ours: a failed claim must give it back.
        let lock_file = lock.lock_file.lock().ok().and_then(|f| f.clone());
        let holder = format!(
            "{}:{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned()),
            std::process::id()
        );
        match claim::Claim::acquire(db, lock_file.as_deref(), &holder).await {
            Ok(claim) => Ok(Self {
                lock: Arc::clone(lock),
                claim: Some(claim),
            }),
            Err(e) => {
                lock.running.store(false, Ordering::Release);
                Err(e)
            }
        }
    }

    /// Checks first in every write transaction of the run ([`claim::Claim::fence`]).
    pub async fn fence(&self, txn: &DatabaseTransaction) -> Result<(), EodError> {
        match &self.claim {
            Some(claim) => claim.fence(txn).await,
            None => Err(EodError::ClaimLost),
        }
    }

    /// Releases the claim at once (a guard merely dropped releases it too, as soon as its
    /// connection goes back to the pool).
    pub async fn release(mut self) {
        if let Some(claim) = self.claim.take() {
            claim.release().await;
        }
    }

    /// [`RunGuard::acquire`], waiting up to `wait` while another run holds it (polling every
    /// half second); [`EodError::InProgress`] after that.
    pub async fn acquire_within(
        lock: &Arc<RunLock>,
        db: &DatabaseConnection,
        wait: std::time::Duration,
    ) -> Result<Self, EodError> {
        let deadline = Instant::now() + wait;
        loop {
            match Self::acquire(lock, db).await {
                Err(EodError::InProgress) if Instant::now() < deadline => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    tokio::time::sleep(left.min(std::time::Duration::from_millis(500))).await;
                }
                other => return other,
            }
        }
    }

    /// Marks `date` as being run from now on, before the first step starts: its status is
    /// `running`, not what an earlier attempt left (a failed step about to be redone).
    pub fn starting(&self, date: NaiveDate) {
        self.set_current(Some((date, "starting")));
    }

    fn set_current(&self, v: Option<(NaiveDate, &'static str)>) {
        if let Ok(mut c) = self.lock.current.lock() {
            *c = v;
        }
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.set_current(None);
        self.lock.running.store(false, Ordering::Release);
    }
}

// ---------------------------------------------------------------------------------------
// Date rules

/// The date end of day must run next: a date that started and did not finish (a crash or a
/// failed check), else the day after the last finished date; `None` before the first run.
pub async fn expected_date<C: ConnectionTrait>(db: &C) -> Result<Option<NaiveDate>, EodError> {
    let running = "SELECT MIN(business_date) FROM eod_runs WHERE status = 'running'";
    if let Some(d) = date_of(db, running).await? {
        return Ok(Some(d));
    }
    let finished = "SELECT MAX(business_date) FROM eod_runs WHERE status = 'finished'";
    Ok(date_of(db, finished)
        .await?
        .and_then(|d| d.checked_add_days(Days::new(1))))
}

/// The latest date end of day has started (finished or not; `None` before the first run):
/// what `/metrics` reports the steps of.
pub async fn latest_date<C: ConnectionTrait>(db: &C) -> Result<Option<NaiveDate>, EodError> {
    date_of(db, "SELECT MAX(business_date) FROM eod_runs").await
}

/// The one date a query of one row and one column gives (`None` for no row or NULL).
pub(crate) async fn date_of<C: ConnectionTrait>(
    db: &C,
    sql: &str,
) -> Result<Option<NaiveDate>, EodError> {
    Ok(query(db, sql.to_owned(), vec![])
        .await?
        .first()
        .map(|r| get::<Option<NaiveDate>>(r, 0))
        .transpose()?
        .flatten())
}

/// The dates from `from` to `to` (inclusive), checked: `to` not before `from`, none that has
/// not happened yet by `clock` ([`crate::clock::Clock::check_not_future`]), at most
/// [`MAX_DATES`], and the first unfinished one is the next date to run.
pub async fn check_range<C: ConnectionTrait>(
    db: &C,
    clock: &crate::clock::Clock,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<NaiveDate>, EodError> {
    clock.check_not_future("date", from)?;
    clock.check_not_future("to", to)?;
    if to < from {
        return Err(EodError::Invalid {
            field: "to",
            message: format!("{to} is before date {from}"),
        });
    }
    let days = u64::try_from((to - from).num_days()).unwrap_or(u64::MAX);
    if days >= MAX_DATES {
        return Err(EodError::Invalid {
            field: "to",
            message: format!("at most {MAX_DATES} dates per run"),
        });
    }
    let dates: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
    let finished = prices::finished_dates(db, &dates).await?;
    if let Some(first) = dates.iter().find(|d| !finished.contains(d))
        && let Some(expected) = expected_date(db).await?
    {
        // The next date waits for fills: say so, rather than run it for nothing (or, for a
        // later date, rather than only name the date it waits for).
        if *first >= expected
            && let Some(open) = awaiting_fills(db, expected).await?
            && open > 0
        {
            return Err(EodError::AwaitingFills {
                date: expected,
                open,
            });
        }
        if *first != expected {
            return Err(EodError::OutOfOrder {
                date: *first,
                expected,
            });
        }
    }
    Ok(dates)
}

/// When the execution step of `date` stopped to wait for fills: the instructions of the date
/// still open (zero: the date can go on).
pub async fn awaiting_fills<C: ConnectionTrait>(
    db: &C,
    date: NaiveDate,
) -> Result<Option<u64>, EodError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT COUNT(*) FROM eod_steps WHERE business_date = {} AND step = 'execution' \
         AND status = 'awaiting_fills'",
        pa.push(date)
    );
    let waiting = query(db, q, pa.values)
        .await?
        .first()
        .map(|r| get::<i64>(r, 0))
        .transpose()?
        .unwrap_or(0)
        > 0;
    if !waiting {
        return Ok(None);
    }
    Ok(Some(instructions::open_count(db, date).await?))
}

// ---------------------------------------------------------------------------------------
// The run

/// Runs end of day for every date from `from` to `to`, in order; a finished date is
/// reported and left alone. Stops at the first date that fails, and after a date that waits
/// for fills (its outcome says so).
pub async fn run(
    db: &DatabaseConnection,
    ledger: &Ledger,
    from: NaiveDate,
    to: NaiveDate,
    actor: &Actor,
    guard: &RunGuard,
    progress: &dyn Progress,
) -> Result<Vec<DayOutcome>, EodError> {
    let dates = check_range(db, &guard.lock.clock(), from, to).await?;
    let mut out = Vec::with_capacity(dates.len());
    for date in dates {
        let outcome = run_date(db, ledger, date, actor, guard, progress).await?;
        progress.date_done(&outcome);
        let waiting = outcome.awaiting_fills.is_some();
        out.push(outcome);
        if waiting {
            break;
        }
    }
    Ok(out)
}

/// Runs (or resumes) end of day for `date`.
pub async fn run_date(
    db: &DatabaseConnection,
    ledger: &Ledger,
    date: NaiveDate,
    actor: &Actor,
    guard: &RunGuard,
    progress: &dyn Progress,
) -> Result<DayOutcome, EodError> {
    if prices::eod_finished(db, date).await? {
        return Ok(DayOutcome {
            date,
            already_finished: true,
            awaiting_fills: None,
            steps: Vec::new(),
        });
    }
    if let Some(expected) = expected_date(db).await?
        && expected != date
    {
        return Err(EodError::OutOfOrder { date, expected });
    }
    // Mark the date running before any step reads its prices, in a transaction of its own
    // (see ledger::store::market: the price upload checks this row).
    let txn = ledger::begin_write(db).await?;
    guard.fence(&txn).await?;
    let now = Utc::now();
    let mut pa = Params::new(txn.get_database_backend());
    let q = format!(
        "INSERT INTO eod_runs (business_date, status, started_at, finished_at) \
         VALUES ({}, 'running', {}, NULL) ON CONFLICT (business_date) DO NOTHING",
        pa.push(date),
        pa.push(micros(now))
    );
    if exec(&txn, q, pa.values).await? == 1 {
        audit(&txn, actor, "eod.started", date, json!({}), now).await?;
    }
    txn.commit().await?;

    // A price of `date` uploaded after valuation read the prices would be stored unused:
    // the finishing transaction checks for one and, if so, redoes valuation and what follows
    // (a bounded number of times). Steps after valuation must therefore be redoable.
    for _round in 0..MAX_REVALUATIONS {
        let (steps, awaiting) = run_steps(db, ledger, date, actor, guard, progress).await?;
        if awaiting.is_some() {
            return Ok(DayOutcome {
                date,
                already_finished: false,
                awaiting_fills: awaiting,
                steps,
            });
        }
        let txn = ledger::begin_write(db).await?;
        guard.fence(&txn).await?;
        if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
            // Waits for uploads in flight and holds new ones until this transaction ends, so
            // the check below sees every price that can still land before `finished`.
            txn.execute_unprepared("LOCK TABLE instrument_prices IN SHARE MODE")
                .await?;
        }
        if prices_changed_since_valuation(&txn, date).await? {
            let b = txn.get_database_backend();
            let mut pa = Params::new(b);
            let q = format!(
                "DELETE FROM wrap_snapshots WHERE business_date = {}",
                pa.push(date)
            );
            exec(&txn, q, pa.values).await?;
            // Valuation and the steps after it that only read it are redone (each replaces
            // its own rows). Accrual and billing are not: they posted the day's fees, which
            // stand (the day's fee was struck on the NAV valuation first gave).
            let mut pa = Params::new(b);
            let on = pa.push(date);
            let redo: Vec<&str> = STEPS
                .iter()
                .copied()
                .skip_while(|s| *s != "valuation")
                .filter(|s| !matches!(*s, "accrual" | "billing"))
                .collect();
            let q = format!(
                "DELETE FROM eod_steps WHERE business_date = {on} AND step IN {}",
                pa.list(&redo)
            );
            exec(&txn, q, pa.values).await?;
            txn.commit().await?;
            tracing::info!(%date, "eod.revalue: a price of the date arrived after valuation");
            continue;
        }
        let now = Utc::now();
        let mut pa = Params::new(txn.get_database_backend());
        let q = format!(
            "UPDATE eod_runs SET status = 'finished', finished_at = {} \
             WHERE business_date = {} AND status = 'running'",
            pa.push(micros(now)),
            pa.push(date)
        );
        exec(&txn, q, pa.values).await?;
        let counts: serde_json::Map<String, serde_json::Value> = steps
            .iter()
            .map(|s| (s.step.clone(), s.detail.clone()))
            .collect();
        audit(
            &txn,
            actor,
            "eod.finished",
            date,
            serde_json::Value::Object(counts.clone()),
            now,
        )
        .await?;
        // Last: the events' cursor locks come after every other lock (crate::events).
        crate::events::record_for_every_tenant(
            &txn,
            crate::events::types::EOD_DATE_FINISHED,
            format!("eod:{date}"),
            Some(date),
            json!({ "business_date": date, "steps": counts }),
            json!({ "business_date": date }),
            now,
        )
        .await?;
        txn.commit().await?;
        return Ok(DayOutcome {
            date,
            already_finished: false,
            awaiting_fills: None,
            steps,
        });
    }
    Err(EodError::Invalid {
        field: "date",
        message: format!("the prices of {date} kept changing during end of day; run it again"),
    })
}

/// Rounds of valuation per run before giving up on prices that keep arriving.
const MAX_REVALUATIONS: usize = 3;

/// Whether a price of `date` was uploaded after the valuation step read the prices: the
/// uploads counted on the date differ from the count valuation read
/// (migration `m20261207_000019_price_revisions`).
async fn prices_changed_since_valuation(
    txn: &DatabaseTransaction,
    date: NaiveDate,
) -> Result<bool, EodError> {
    let mut pa = Params::new(txn.get_database_backend());
    let q = format!(
        "SELECT COUNT(*) FROM eod_runs WHERE business_date = {} \
         AND price_revision <> valued_revision",
        pa.push(date)
    );
    let rows = query(txn, q, pa.values).await?;
    Ok(rows
        .first()
        .map(|r| get::<i64>(r, 0))
        .transpose()?
        .unwrap_or(0)
        > 0)
}

/// Runs the steps of `date` not done yet, in order; stops after an execution step that
/// awaits fills (and returns how many instructions are open).
async fn run_steps(
    db: &DatabaseConnection,
    ledger: &Ledger,
    date: NaiveDate,
    actor: &Actor,
    guard: &RunGuard,
    progress: &dyn Progress,
) -> Result<(Vec<StepOutcome>, Option<u64>), EodError> {
    let done = step_rows(db, date).await?;
    let mut steps = Vec::with_capacity(STEPS.len());
    for (index, step) in STEPS.iter().enumerate() {
        if let Some(row) = done.iter().find(|r| r.step == *step && r.status == "done") {
            steps.push(StepOutcome {
                step: (*step).to_owned(),
                done_earlier: true,
                elapsed_ms: row.elapsed_ms(),
                detail: row.detail.clone(),
            });
            continue;
        }
        guard.set_current(Some((date, step)));
        progress.step_started(date, step, index);
        let started = Utc::now();
        let clock = Instant::now();
        let txn = ledger::begin_write(db).await?;
        guard.fence(&txn).await?;
        // Every book, in the platform's lock order (ledger/src/store/work.rs), before the step
        // reads anything: a step reads and writes many books and wraps at once, and no request
        // may change a balance, a wrap or a plan under it (a close paid out from balances read
        // before a contribution landed, a withdrawal making a batch refuse).
        ledger::store::lock_all_books(&txn).await?;
        let (calendar, venue) = (&guard.lock.calendar, guard.lock.venue.as_ref());
        let mut awaiting = 0;
        let result = match *step {
            "plans" => plans::run(&txn, ledger, date).await,
            "rebalance" => rebalance::run(&txn, date, calendar).await,
            "netting" => trading::run_netting(&txn, date, calendar).await,
            "execution" => trading::run_execution(&txn, date, calendar, venue)
                .await
                .map(|e| {
                    awaiting = e.awaiting;
                    e.detail
                }),
            "allocation" => trading::run_allocation(&txn, ledger, date, calendar).await,
            "valuation" => valuation::run(&txn, date).await,
            "accrual" => fees::run(&txn, ledger, date).await,
            "billing" => billing::run(&txn, ledger, date, calendar).await,
            "returns" => returns::run(&txn, date).await,
            "goals" => goals::run(&txn, date, guard.lock.goal_cadence()).await,
            _ => checks::run(&txn, ledger, date).await,
        };
        let detail = match result {
            Ok(detail) => detail,
            // Another runner holds the run: it is not this one's to record anything.
            Err(e @ (EodError::ClaimLost | EodError::InProgress)) => {
                guard.set_current(None);
                return Err(e);
            }
            // Any other failure (failed checks, a refused entry, a database error): the step
            // is recorded `failed` with the reason in a transaction of its own, so the status
            // endpoint shows the failure rather than a step forever `pending`, and the date
            // stays unfinished (re-run it once the cause is fixed).
            Err(e) => {
                drop(txn);
                guard.set_current(None);
                record_failure(db, guard, actor, date, step, started, &e).await;
                return Err(e);
            }
        };
        // Instructions out and not all complete: the step's effects (what went to the
        // simulated venue, the instructions) commit with a checkpoint that is not `done`, so
        // the date resumes here.
        let status = if awaiting > 0 {
            "awaiting_fills"
        } else {
            "done"
        };
        write_step(&txn, date, step, status, started, Utc::now(), &detail).await?;
        if awaiting > 0 {
            audit(
                &txn,
                actor,
                "eod.awaiting_fills",
                date,
                json!({ "step": step, "open": awaiting }),
                Utc::now(),
            )
            .await?;
        }
        crash_point(step);
        txn.commit().await?;
        steps.push(StepOutcome {
            step: (*step).to_owned(),
            done_earlier: false,
            elapsed_ms: i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX),
            detail,
        });
        if awaiting > 0 {
            guard.set_current(None);
            return Ok((steps, Some(awaiting)));
        }
    }
    guard.set_current(None);
    Ok((steps, None))
}

/// Records `step` of `date` as failed with `error` as the reason (and an `eod.failed` audit
/// row). Best effort: when even that cannot be written (the database is down), the log has it
/// and the caller returns the error as it is.
async fn record_failure(
    db: &DatabaseConnection,
    guard: &RunGuard,
    actor: &Actor,
    date: NaiveDate,
    step: &str,
    started: DateTime<Utc>,
    error: &EodError,
) {
    let reason = error.to_string();
    let result: Result<(), EodError> = async {
        let txn = ledger::begin_write(db).await?;
        guard.fence(&txn).await?;
        let detail = json!({ "reason": reason });
        write_step(&txn, date, step, "failed", started, Utc::now(), &detail).await?;
        let change = json!({ "step": step, "reason": reason });
        audit(&txn, actor, "eod.failed", date, change, Utc::now()).await?;
        crate::events::record_for_every_tenant(
            &txn,
            crate::events::types::EOD_DATE_FAILED,
            format!("eod:{date}"),
            Some(date),
            json!({ "business_date": date, "step": step, "reason": reason }),
            json!({ "business_date": date, "step": step }),
            Utc::now(),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::error!(%date, step, error = %e, failure = %reason, "eod.failure_not_recorded");
    }
}

/// Fault injection for the crash tests: with `WRAP_EOD_ABORT_IN_STEP=<step>` the process
/// aborts (as a `kill -9` would stop it) after the step wrote its effects and its checkpoint,
/// just before the commit. Costs one environment lookup per step.
fn crash_point(step: &str) {
    if std::env::var("WRAP_EOD_ABORT_IN_STEP").is_ok_and(|s| s == step) {
        std::process::abort();
    }
}

async fn audit(
    txn: &DatabaseTransaction,
    actor: &Actor,
    action: &'static str,
    date: NaiveDate,
    detail: serde_json::Value,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    record_raw(
        txn,
        actor.tenant_id,
        &actor.client_id,
        &actor.request_id,
        &Change {
            action,
            target_tenant_id: None,
            target_type: "eod_run",
            target_id: date.to_string(),
            detail,
        },
        at,
    )
    .await
}

/// Replaces the checkpoint row of `step` (a failed row is replaced when the step is re-run).
async fn write_step(
    txn: &DatabaseTransaction,
    date: NaiveDate,
    step: &str,
    status: &str,
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
    detail: &serde_json::Value,
) -> Result<(), DbErr> {
    let b = txn.get_database_backend();
    let mut pa = Params::new(b);
    let q = format!(
        "DELETE FROM eod_steps WHERE business_date = {} AND step = {}",
        pa.push(date),
        pa.push(step.to_owned())
    );
    exec(txn, q, pa.values).await?;
    let mut pa = Params::new(b);
    let row = pa.row(vec![
        date.into(),
        step.to_owned().into(),
        status.to_owned().into(),
        micros(started).into(),
        micros(finished.max(started)).into(),
        detail.to_string().into(),
    ]);
    let q = format!(
        "INSERT INTO eod_steps (business_date, step, status, started_at, finished_at, detail) VALUES {row}"
    );
    exec(txn, q, pa.values).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Status

struct StepRow {
    step: String,
    status: String,
    started_at: i64,
    finished_at: i64,
    detail: serde_json::Value,
}

impl StepRow {
    fn elapsed_ms(&self) -> i64 {
        (self.finished_at - self.started_at) / 1_000
    }
}

async fn step_rows<C: ConnectionTrait>(db: &C, date: NaiveDate) -> Result<Vec<StepRow>, EodError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT step, status, started_at, finished_at, detail FROM eod_steps WHERE business_date = {}",
        pa.push(date)
    );
    let mut out = Vec::new();
    for r in query(db, q, pa.values).await? {
        let detail: String = get(&r, 4)?;
        out.push(StepRow {
            step: get(&r, 0)?,
            status: get(&r, 1)?,
            started_at: get(&r, 2)?,
            finished_at: get(&r, 3)?,
            detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
        });
    }
    Ok(out)
}

/// One step of a date.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepStatus {
    pub step: String,
    /// `pending`, `running`, `done`, `failed`, or `awaiting_fills` (execution: instructions
    /// are out at the distributors' account systems).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<i64>,
    /// Counts (done) or the reason (failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

/// End of day of one date.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DayStatus {
    pub date: NaiveDate,
    /// `not_started`, `running`, `failed` (a step failed; re-run the date),
    /// `awaiting_fills` (instructions are out; re-run the date when `awaiting_fills` is 0) or
    /// `finished`.
    pub status: String,
    /// While the date awaits fills: its instructions still open
    /// (`GET /v1/instructions?date=…&status=awaiting_fills`). Zero: the date can go on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awaiting_fills: Option<u64>,
    /// The next date end of day will accept (absent before the first run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_date: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Every step built so far, in run order.
    pub steps: Vec<StepStatus>,
}

/// The status of `date` and each of its steps.
pub async fn status<C: ConnectionTrait>(
    db: &C,
    lock: &RunLock,
    date: NaiveDate,
) -> Result<DayStatus, EodError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT status, started_at, finished_at FROM eod_runs WHERE business_date = {}",
        pa.push(date)
    );
    let run = query(db, q, pa.values).await?;
    let run = match run.first() {
        Some(r) => Some((
            get::<String>(r, 0)?,
            get::<i64>(r, 1)?,
            get::<Option<i64>>(r, 2)?,
        )),
        None => None,
    };
    let rows = step_rows(db, date).await?;
    let now_running = lock.current().filter(|(d, _)| *d == date).map(|(_, s)| s);
    let steps: Vec<StepStatus> = STEPS
        .iter()
        .map(|step| match rows.iter().find(|r| r.step == *step) {
            Some(r) if !(r.status != "done" && now_running == Some(step)) => StepStatus {
                step: (*step).to_owned(),
                status: r.status.clone(),
                started_at: from_micros(r.started_at),
                finished_at: from_micros(r.finished_at),
                elapsed_ms: Some(r.elapsed_ms()),
                detail: Some(r.detail.clone()),
            },
            _ => StepStatus {
                step: (*step).to_owned(),
                status: if now_running == Some(step) {
                    "running"
                } else {
                    "pending"
                }
                .to_owned(),
                started_at: None,
                finished_at: None,
                elapsed_ms: None,
                detail: None,
            },
        })
        .collect();
    let failed = steps.iter().any(|s| s.status == "failed");
    let waiting = steps.iter().any(|s| s.status == "awaiting_fills");
    let status = match &run {
        None => "not_started",
        Some((s, _, _)) if s == "finished" => "finished",
        // A run in progress redoes what failed: it is running, not failed.
        Some(_) if failed && now_running.is_none() => "failed",
        Some(_) if waiting => "awaiting_fills",
        Some(_) => "running",
    };
    let awaiting_fills = if waiting {
        Some(instructions::open_count(db, date).await?)
    } else {
        None
    };
    Ok(DayStatus {
        date,
        status: status.to_owned(),
        awaiting_fills,
        next_date: expected_date(db).await?,
        started_at: run.as_ref().and_then(|r| from_micros(r.1)),
        finished_at: run.as_ref().and_then(|r| r.2).and_then(from_micros),
        steps,
    })
}

/// Data the books hold that breaks a rule the code relies on (a sum not kept, a row that
/// cannot be read): the day stops with this error and nothing of the step is written.
pub(crate) fn corrupt(what: String) -> EodError {
    EodError::Ledger(ledger::LedgerError::Corrupt(what))
}
