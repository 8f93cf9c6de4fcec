//! The business date (DOMAIN.md section 7, docs/DOMAIN.md "The business date").
//!
//! Rules, each one function here, used by the API and by end of day alike:
//! * **the open business date** ([`open_date`]) is the day after the last date whose end of
//!   day has started (a booking made during or after D's run belongs to D + 1), or the clock's
//!   today before end of day has ever run. It moves only with end of day, as a bank's business
//!   date does: while end of day is behind (an outage), bookings go to the first date still to
//!   run. Money moved through the API (deposits, withdrawals, contributions, a close's
//!   payback) is booked on it, so a contribution made after D's run is a flow of D + 1 and
//!   never lands in a closed day;
//! * **end of day never runs a date that has not happened** in the platform's time zone
//!   ([`Clock::check_not_future`]): `wrapd eod --date 2030-01-01` is refused;
//! * **a simulated clock** ([`Clock::Simulated`], `[clock] simulated_start` or
//!   `--simulated-start`) is for demos, benchmarks and tests that run a year in a minute: its
//!   today is the configured start until end of day runs, then the day after the last date run
//!   (end of day advances it), and end of day may run any date in order. It is off by default,
//!   logged as a warning when on, and refused when the configured environment is `production`.
//!
//! Tried by `api/tests/http/business_date.rs`.

use chrono::{Days, NaiveDate, Utc};
use sea_orm::ConnectionTrait;

use crate::eod::EodError;

/// What "today" is for the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// The date in the platform's time zone (Asia/Tokyo).
    #[default]
    Real,
    /// Dates follow end of day from `start` (demos, benchmarks, tests).
    Simulated { start: NaiveDate },
}

impl Clock {
    /// Today by this clock, before end of day's progress is taken into account: the date in
    /// Tokyo, or the simulation's start.
    pub fn today(&self) -> NaiveDate {
        match self {
            Self::Real => ledger::calendar::business_date(Utc::now()),
            Self::Simulated { start } => *start,
        }
    }

    /// Whether this is a simulated clock.
    pub fn is_simulated(&self) -> bool {
        matches!(self, Self::Simulated { .. })
    }

    /// Refuses, naming `field`, an end-of-day date that has not happened yet (a real clock
    /// only: a simulated clock is advanced by end of day itself).
    pub fn check_not_future(&self, field: &'static str, date: NaiveDate) -> Result<(), EodError> {
        if let Self::Real = self {
            let today = self.today();
            if date > today {
                return Err(EodError::Invalid {
                    field,
                    message: format!(
                        "{date} has not happened yet: today is {today} in Asia/Tokyo, and end of \
                         day runs only dates that have ended or are ending"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The last date whose end of day has started (running, awaiting fills or finished).
pub async fn last_started<C: ConnectionTrait>(db: &C) -> Result<Option<NaiveDate>, EodError> {
    crate::eod::date_of(db, "SELECT MAX(business_date) FROM eod_runs").await
}

/// The open business date: the day after the last date end of day started, or the clock's
/// today before end of day has ever run (module doc).
pub async fn open_date<C: ConnectionTrait>(db: &C, clock: &Clock) -> Result<NaiveDate, EodError> {
    Ok(match last_started(db).await? {
        Some(last) => last.checked_add_days(Days::new(1)).unwrap_or(last),
        None => clock.today(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_clock_refuses_tomorrow_and_a_simulated_one_does_not() {
        let real = Clock::Real;
        let today = real.today();
        assert!(real.check_not_future("date", today).is_ok());
        let tomorrow = today.checked_add_days(Days::new(1)).unwrap();
        let err = real
            .check_not_future("date", tomorrow)
            .unwrap_err()
            .to_string();
        assert!(err.contains("has not happened yet"), "{err}");
        let simulated = Clock::Simulated { start: today };
        assert!(simulated.check_not_future("date", tomorrow).is_ok());
        assert_eq!(simulated.today(), today);
    }
}
