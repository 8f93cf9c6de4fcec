//! Business dates and the trading calendar. Dates in the books are business dates in the
//! platform's time zone (Asia/Tokyo), never the machine's local clock (DOMAIN.md section 4,
//! "Calendar").
//!
//! Japan has kept UTC+9 all year since 1951 (no daylight saving), so a fixed offset is
//! exact for Asia/Tokyo and needs no time-zone database.
//!
//! A business day (a trading day) is a weekday that is not in the configured holiday list
//! (`[calendar] holidays` in the configuration; [`Calendar::japan`] is the built-in list of
//! Tokyo market holidays for 2026–2027). Fees accrue on every calendar day; trading and
//! settlement count business days. Invariants, each tried by a test below:
//! * Saturdays, Sundays and listed holidays are never business days
//!   (`weekends_and_holidays_are_not_business_days`);
//! * [`Calendar::next_business_day`] is strictly after its argument and a business day
//!   (`next_business_day_skips_weekends_and_holidays`);
//! * [`Calendar::add_business_days`] with 0 returns the date itself, and each step lands on a
//!   business day (`adding_business_days_counts_only_business_days`).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, Utc, Weekday};

/// Asia/Tokyo: UTC+9, all year.
pub const TOKYO_OFFSET_SECONDS: i32 = 9 * 3600;

/// The business date at instant `now`.
pub fn business_date(now: DateTime<Utc>) -> NaiveDate {
    match FixedOffset::east_opt(TOKYO_OFFSET_SECONDS) {
        Some(tokyo) => now.with_timezone(&tokyo).date_naive(),
        None => now.date_naive(),
    }
}

/// Tokyo market holidays, 2026 and 2027 (national holidays, substitute holidays, and the
/// exchange's year-end closure on 31 December and 1–3 January). Weekend dates are listed
/// when they are holidays too; they change nothing but keep the list recognisable.
pub const JAPAN_HOLIDAYS_2026_2027: &[&str] = &[
    "2026-01-01",
    "2026-01-02",
    "2026-01-03",
    "2026-01-12",
    "2026-02-11",
    "2026-02-23",
    "2026-03-20",
    "2026-04-29",
    "2026-05-03",
    "2026-05-04",
    "2026-05-05",
    "2026-05-06",
    "2026-07-20",
    "2026-08-11",
    "2026-09-21",
    "2026-09-22",
    "2026-09-23",
    "2026-10-12",
    "2026-11-03",
    "2026-11-23",
    "2026-12-31",
    "2027-01-01",
    "2027-01-02",
    "2027-01-03",
    "2027-01-11",
    "2027-02-11",
    "2027-02-23",
    "2027-03-21",
    "2027-03-22",
    "2027-04-29",
    "2027-05-03",
    "2027-05-04",
    "2027-05-05",
    "2027-07-19",
    "2027-08-11",
    "2027-09-20",
    "2027-09-23",
    "2027-10-11",
    "2027-11-03",
    "2027-11-23",
    "2027-12-31",
];

/// Most business days [`Calendar::add_business_days`] walks (a decade), so a bad argument
/// cannot loop for long.
pub const MAX_BUSINESS_DAYS: u32 = 2_600;

/// A trading calendar: weekends and a list of holidays are closed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    holidays: BTreeSet<NaiveDate>,
}

impl Calendar {
    /// A calendar closed on weekends and on `holidays`.
    pub fn new(holidays: impl IntoIterator<Item = NaiveDate>) -> Self {
        Self {
            holidays: holidays.into_iter().collect(),
        }
    }

    /// A calendar from ISO dates (`2027-01-01`); the first one that does not parse is
    /// returned as the error.
    pub fn try_from_strs<S: AsRef<str>>(holidays: &[S]) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for h in holidays {
            let s = h.as_ref();
            let d = s
                .parse::<NaiveDate>()
                .map_err(|_| format!("holiday {s:?} is not a date (YYYY-MM-DD)"))?;
            set.insert(d);
        }
        Ok(Self { holidays: set })
    }

    /// The built-in Tokyo market holidays ([`JAPAN_HOLIDAYS_2026_2027`]).
    pub fn japan() -> Self {
        Self::new(
            JAPAN_HOLIDAYS_2026_2027
                .iter()
                .filter_map(|s| s.parse::<NaiveDate>().ok()),
        )
    }

    /// The listed holidays, in date order.
    pub fn holidays(&self) -> impl Iterator<Item = &NaiveDate> {
        self.holidays.iter()
    }

    /// Not a Saturday, a Sunday or a listed holiday.
    pub fn is_business_day(&self, d: NaiveDate) -> bool {
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&d)
    }

    /// The first business day strictly after `d` (`None` past the end of the calendar type).
    pub fn next_business_day(&self, d: NaiveDate) -> Option<NaiveDate> {
        let mut next = d.checked_add_days(Days::new(1))?;
        // At most a weekend plus a run of holidays; the bound only guards a corrupt list.
        for _ in 0..366 {
            if self.is_business_day(next) {
                return Some(next);
            }
            next = next.checked_add_days(Days::new(1))?;
        }
        None
    }

    /// `d` moved forward by `n` business days (T+n settlement); `d` itself when `n` is 0,
    /// even if `d` is not a business day. `None` when `n` exceeds [`MAX_BUSINESS_DAYS`].
    pub fn add_business_days(&self, d: NaiveDate, n: u32) -> Option<NaiveDate> {
        if n > MAX_BUSINESS_DAYS {
            return None;
        }
        let mut at = d;
        for _ in 0..n {
            at = self.next_business_day(at)?;
        }
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_business_day_turns_at_midnight_in_tokyo() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            business_date(t("2026-11-21T14:59:59Z")).to_string(),
            "2026-11-21"
        );
        assert_eq!(
            business_date(t("2026-11-21T15:00:00Z")).to_string(),
            "2026-11-22"
        );
    }

    #[test]
    fn the_built_in_list_parses_whole() {
        assert_eq!(
            Calendar::japan().holidays().count(),
            JAPAN_HOLIDAYS_2026_2027.len()
        );
        assert!(Calendar::try_from_strs(JAPAN_HOLIDAYS_2026_2027).is_ok());
        let err = Calendar::try_from_strs(&["2027-02-30"]).unwrap_err();
        assert!(err.contains("2027-02-30"), "{err}");
    }

    #[test]
    fn weekends_and_holidays_are_not_business_days() {
        let c = Calendar::japan();
        assert!(!c.is_business_day(d("2026-11-21"))); // Saturday
        assert!(!c.is_business_day(d("2026-11-22"))); // Sunday
        assert!(!c.is_business_day(d("2026-11-23"))); // Monday, Labour Thanksgiving Day
        assert!(c.is_business_day(d("2026-11-24"))); // Tuesday
        assert!(!c.is_business_day(d("2027-01-01")));
        // Without holidays only weekends are closed.
        assert!(Calendar::default().is_business_day(d("2026-11-23")));
    }

    #[test]
    fn next_business_day_skips_weekends_and_holidays() {
        let c = Calendar::japan();
        assert_eq!(c.next_business_day(d("2026-11-20")), Some(d("2026-11-24")));
        assert_eq!(c.next_business_day(d("2026-12-30")), Some(d("2027-01-04")));
        assert_eq!(c.next_business_day(d("2026-05-01")), Some(d("2026-05-07")));
        // Silver week 2026: 19–23 September closed.
        assert_eq!(c.next_business_day(d("2026-09-18")), Some(d("2026-09-24")));
        let mut at = d("2026-01-01");
        while at < d("2027-12-31") {
            let next = c.next_business_day(at).unwrap();
            assert!(next > at && c.is_business_day(next));
            at = next;
        }
    }

    #[test]
    fn adding_business_days_counts_only_business_days() {
        let c = Calendar::japan();
        assert_eq!(
            c.add_business_days(d("2026-11-21"), 0),
            Some(d("2026-11-21"))
        );
        assert_eq!(
            c.add_business_days(d("2026-11-20"), 1),
            Some(d("2026-11-24"))
        );
        assert_eq!(
            c.add_business_days(d("2026-11-20"), 3),
            Some(d("2026-11-26"))
        );
        // T+5 over the year end.
        assert_eq!(
            c.add_business_days(d("2026-12-28"), 5),
            Some(d("2027-01-06"))
        );
        assert_eq!(
            c.add_business_days(d("2026-11-20"), MAX_BUSINESS_DAYS + 1),
            None
        );
    }
}
