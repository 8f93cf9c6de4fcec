//! Reports: what the platform tells its parties about the wraps, read from what end of day
//! stored and from the books. Nothing here writes.
//!
//! * [`aum`]: assets under management as of a date, grouped, and over a range of dates;
//! * [`fee_split`]: the fees collected over a period per agreement, split into the channel's,
//!   the manager's and the platform's shares, reconciled with the ledger to the minor unit;
//! * [`invoices`]: the platform's monthly fees to distributors;
//! * [`statements`]: a wrap's or a customer's statement over a period (values, flows, fees,
//!   gains at average cost, the time-weighted return, and the check that they add up).
//!
//! This module never names actix, a URL, an HTTP status or the API's `Problem`: it takes
//! parsed inputs (a [`Viewer`], a [`Period`], a [`aum::GroupBy`]) and answers typed figures
//! or a [`ReportError`], which `api/src/problem.rs` maps to the same problem responses the
//! handlers (`api/src/routes/reports.rs`, `api/src/routes/statements.rs`) always gave.
//!
//! Guarantees, each stated at the top of the module that enforces it:
//! * **isolation**: a distributor sees its own book, a manager the wraps on its strategies,
//!   the platform every wrap; the scope is a condition of each query, never a filter after it
//!   ([`Viewer`]). Tried by `api/tests/http/reports.rs`, `api/tests/http/isolation.rs` and
//!   `api/tests/http/statements.rs::statements_are_isolated`;
//! * **AUM is struck by end of day** and never moves afterwards ([`aum`]);
//! * **the fee split reconciles with the books to the minor unit** ([`fee_split`]). Tried
//!   over a simulated year by `api/tests/http/eod_year.rs`;
//! * **a statement adds up**: closing − opening = flows − fees + investment gain
//!   ([`statements`]). Tried by `api/tests/http/statements.rs`.

use std::collections::HashMap;

use chrono::NaiveDate;
use ledger::sql::{Params, get, query};
use ledger::{Ledger, LedgerError};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use tenants::{Principal, TenantKind};
use uuid::Uuid;

use crate::eod::EodError;

pub mod aum;
pub mod fee_split;
pub mod invoices;
pub mod statements;

/// Most dates in one report's period.
pub const MAX_PERIOD_DAYS: i64 = 366;

/// Why a report cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The period ends before it starts.
    #[error("{to} is before from {from}")]
    ToBeforeFrom { from: NaiveDate, to: NaiveDate },
    /// The period covers more than [`MAX_PERIOD_DAYS`] dates.
    #[error("at most {max} dates per report")]
    PeriodTooLong { max: i64 },
    /// AUM was asked for the last finished date, and end of day never finished one.
    #[error("no end of day has finished yet: AUM is struck at end of day")]
    NoEndOfDayFinished,
    /// AUM was asked for a date whose end of day has not finished.
    #[error("end of day for {date} has not finished: AUM is struck at end of day")]
    AumNotStruck { date: NaiveDate },
    /// A statement's last date has no finished end of day.
    #[error(
        "end of day for {to} (the statement's `to`) has not finished: a statement closes on an \
         end-of-day value"
    )]
    StatementNotClosed { to: NaiveDate },
    /// A sum the database gave back is not an integer.
    #[error("sum {0}")]
    Corrupt(String),
    #[error(transparent)]
    Eod(#[from] EodError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Who is reading, which decides what a report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// A distributor: the wraps of its own book.
    Distributor(Uuid),
    /// A manager: the wraps on its strategies, whichever distributor sells them.
    Manager(Uuid),
    /// The platform operator: every wrap.
    Platform,
}

impl From<&Principal> for Viewer {
    fn from(p: &Principal) -> Self {
        match p.tenant_kind {
            TenantKind::Distributor => Self::Distributor(p.tenant_id),
            TenantKind::Manager => Self::Manager(p.tenant_id),
            TenantKind::Platform => Self::Platform,
        }
    }
}

impl Viewer {
    /// The scope as a condition on `wraps w` / `<per-wrap table> s`, its parameter pushed.
    fn wraps_condition(self, pa: &mut Params) -> String {
        match self {
            Self::Distributor(me) => format!("s.tenant_id = {}", pa.push(me)),
            Self::Manager(me) => format!("w.manager_tenant_id = {}", pa.push(me)),
            Self::Platform => "1 = 1".to_owned(),
        }
    }
}

/// A report's dates, `from` to `to` inclusive: `to` not before `from`, at most
/// [`MAX_PERIOD_DAYS`] dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    pub fn try_new(from: NaiveDate, to: NaiveDate) -> Result<Self, ReportError> {
        if to < from {
            return Err(ReportError::ToBeforeFrom { from, to });
        }
        if (to - from).num_days() >= MAX_PERIOD_DAYS {
            return Err(ReportError::PeriodTooLong {
                max: MAX_PERIOD_DAYS,
            });
        }
        Ok(Self { from, to })
    }
}

/// The reports, read through the API's pool and the books' asset cache.
#[derive(Debug, Clone, Copy)]
pub struct Reports<'a> {
    db: &'a DatabaseConnection,
    ledger: &'a Ledger,
}

impl<'a> Reports<'a> {
    pub fn new(db: &'a DatabaseConnection, ledger: &'a Ledger) -> Self {
        Self { db, ledger }
    }

    /// The minor-unit scale of `currency`.
    async fn scale(&self, currency: &str) -> Result<u32, ReportError> {
        Ok(self.ledger.asset(currency).await?.scale)
    }
}

/// Minor-unit scales of currencies, one lookup each.
#[derive(Default)]
struct Scales(HashMap<String, u32>);

impl Scales {
    /// The scale of `currency`, remembered.
    async fn of(&mut self, reports: &Reports<'_>, currency: &str) -> Result<u32, ReportError> {
        if let Some(s) = self.0.get(currency) {
            return Ok(*s);
        }
        let s = reports.scale(currency).await?;
        self.0.insert(currency.to_owned(), s);
        Ok(s)
    }

    /// The scale of a currency already looked up (0 if it was not).
    fn known(&self, currency: &str) -> u32 {
        self.0.get(currency).copied().unwrap_or(0)
    }
}

/// An exact sum taken in SQL as text (PostgreSQL widens SUM(bigint) to numeric; NULL when no
/// row matched).
fn sum_at(row: &sea_orm::QueryResult, idx: usize) -> Result<i128, ReportError> {
    let s: Option<String> = get(row, idx)?;
    let s = s.unwrap_or_else(|| "0".to_owned());
    s.parse::<i128>().map_err(|_| ReportError::Corrupt(s))
}

/// The finished end-of-day dates in `from..=to`.
async fn finished_between<C: ConnectionTrait>(
    db: &C,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<NaiveDate>, ReportError> {
    let mut pa = Params::new(db.get_database_backend());
    let q = format!(
        "SELECT business_date FROM eod_runs WHERE status = 'finished' \
         AND business_date >= {} AND business_date <= {} ORDER BY business_date",
        pa.push(from),
        pa.push(to)
    );
    query(db, q, pa.values)
        .await?
        .iter()
        .map(|r| get::<NaiveDate>(r, 0).map_err(ReportError::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_period_is_ordered_and_bounded() {
        assert!(Period::try_new(d("2027-01-01"), d("2027-01-01")).is_ok());
        assert!(Period::try_new(d("2027-01-01"), d("2028-01-01")).is_ok());
        let e = Period::try_new(d("2027-01-02"), d("2027-01-01")).unwrap_err();
        assert_eq!(e.to_string(), "2027-01-01 is before from 2027-01-02");
        let e = Period::try_new(d("2027-01-01"), d("2028-01-02")).unwrap_err();
        assert_eq!(e.to_string(), "at most 366 dates per report");
    }
}
