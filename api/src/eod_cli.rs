//! `wrapd eod --date D [--to D2]`: runs end of day from the command line, with a progress
//! bar when stderr is a terminal and log lines otherwise. Exits 0 when every date finished,
//! [`EXIT_AWAITING_FILLS`] (3) when a date stopped to wait for the fills of external
//! instructions (not a failure: run it again once they are in), and 1 when a date is
//! refused or stops (a failed check), after printing why.

use std::io::IsTerminal;

use chrono::NaiveDate;
use indicatif::{ProgressBar, ProgressStyle};
use uuid::Uuid;

use crate::cli::EodArgs;
use crate::error::Error;
use crate::settings::Settings;
use wraps::eod::{Actor, DayOutcome, Progress, Quiet, RunGuard, RunLock, STEPS};

/// Exit status of `wrapd eod` when a date waits for fills.
pub const EXIT_AWAITING_FILLS: u8 = 3;

/// Exit status of `wrapd eod` when another process holds end of day (and `--wait` ran out).
pub const EXIT_BUSY: u8 = 4;

/// A progress bar over every step of every date.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn step_started(&self, date: NaiveDate, step: &str, index: usize) {
        self.0.set_message(format!("{date} {step}"));
        if index > 0 {
            self.0.inc(1);
        }
    }

    fn date_done(&self, _outcome: &DayOutcome) {
        // Bring the bar to the end of this date whatever was skipped.
        let done_dates = self.0.position() / STEPS.len() as u64 + 1;
        self.0.set_position(done_dates * STEPS.len() as u64);
    }
}

/// One line per date for the operator.
pub fn line(o: &DayOutcome) -> String {
    if o.already_finished {
        return format!("{}: already finished; nothing changed", o.date);
    }
    let head = match o.awaiting_fills {
        Some(open) => format!(
            "awaiting fills ({open} instruction(s) open at /v1/instructions?date={}; run the \
             date again when they are complete)",
            o.date
        ),
        None => "finished".to_owned(),
    };
    let steps: Vec<String> = o
        .steps
        .iter()
        .map(|s| {
            format!(
                "{} {}{} ({} ms)",
                s.step,
                s.detail,
                if s.done_earlier {
                    " [done earlier]"
                } else {
                    ""
                },
                s.elapsed_ms
            )
        })
        .collect();
    format!("{}: {head}: {}", o.date, steps.join(", "))
}

/// Runs every date from `from` to `to` with a progress bar when stderr is a terminal (log
/// lines otherwise): the command's run, shared with `wrapd demo`.
pub async fn run_dates(
    db: &sea_orm::DatabaseConnection,
    ledger: &ledger::Ledger,
    from: NaiveDate,
    to: NaiveDate,
    actor: &Actor,
    guard: &RunGuard,
) -> Result<Vec<DayOutcome>, wraps::eod::EodError> {
    if !std::io::stderr().is_terminal() {
        return wraps::eod::run(db, ledger, from, to, actor, guard, &Quiet).await;
    }
    let total = ((to - from).num_days().max(0) as u64 + 1) * STEPS.len() as u64;
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {msg} (eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let bar = Bar(bar);
    let r = wraps::eod::run(db, ledger, from, to, actor, guard, &bar).await;
    bar.0.finish_and_clear();
    r
}

/// The run's guard, waiting up to `wait_secs` while another process holds end of day.
async fn claim(
    lock: &std::sync::Arc<RunLock>,
    db: &sea_orm::DatabaseConnection,
    wait_secs: u64,
) -> Result<RunGuard, Error> {
    if wait_secs > 0 {
        tracing::info!(
            wait_secs,
            "eod.claim: waiting if another process runs end of day"
        );
    }
    match RunGuard::acquire_within(lock, db, std::time::Duration::from_secs(wait_secs)).await {
        Ok(guard) => Ok(guard),
        Err(wraps::eod::EodError::InProgress) => Err(Error::EodBusy(format!(
            "another process is running end of day on this database{}; \
             run again later or pass --wait SECONDS",
            if wait_secs > 0 {
                format!(" (waited {wait_secs} s)")
            } else {
                String::new()
            }
        ))),
        Err(e) => Err(Error::Other(e.to_string())),
    }
}

/// Runs the command.
pub async fn run(settings: &Settings, args: &EodArgs) -> Result<(), Error> {
    // A bad holiday list stops here rather than in the middle of a night.
    let calendar = settings.calendar.calendar()?;
    let db = crate::db::connect_with(
        &settings.database.url,
        settings.database.statement_timeout(),
    )
    .await?;
    crate::db::prepare(&db, &settings.database).await?;
    let ledger = ledger::Ledger::new(db.clone());
    let rows = ledger::sql::query(
        &db,
        "SELECT id FROM tenants WHERE kind = 'platform'".to_owned(),
        vec![],
    )
    .await?;
    let platform = rows
        .first()
        .map(|r| ledger::sql::get::<Uuid>(r, 0))
        .transpose()?
        .unwrap_or_else(Uuid::nil);
    let actor = Actor {
        tenant_id: platform,
        client_id: "wrapd-cli".to_owned(),
        request_id: format!("cli:{}", Uuid::now_v7()),
    };
    let to = args.to.unwrap_or(args.date);
    let lock = RunLock::with(
        calendar,
        std::sync::Arc::new(wraps::eod::trading::SimulatedVenue),
    );
    lock.set_goal_cadence(settings.goals.recompute);
    lock.set_database_url(&settings.database.url);
    lock.set_clock(settings.clock()?);
    let guard = claim(&lock, &db, args.wait).await?;
    let result = run_dates(&db, &ledger, args.date, to, &actor, &guard).await;
    guard.release().await;
    match result {
        Ok(outcomes) => {
            for o in &outcomes {
                println!("{}", line(o));
            }
            match outcomes.last() {
                Some(o) if o.awaiting_fills.is_some() => Err(Error::AwaitingFills(format!(
                    "end of day for {} is awaiting fills; later dates wait for it",
                    o.date
                ))),
                _ => Ok(()),
            }
        }
        Err(e @ wraps::eod::EodError::AwaitingFills { .. }) => {
            Err(Error::AwaitingFills(e.to_string()))
        }
        Err(e) => Err(Error::Other(e.to_string())),
    }
}
