//! Business dates. Dates in the books are business dates in the platform's time zone
//! (Asia/Tokyo), never the machine's local clock (DOMAIN.md section 4, "Calendar").
//!
//! Japan has kept UTC+9 all year since 1951 (no daylight saving), so a fixed offset is
//! exact for Asia/Tokyo and needs no time-zone database. Trading calendars (weekends and
//! holidays) come with end of day.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

/// Asia/Tokyo: UTC+9, all year.
pub const TOKYO_OFFSET_SECONDS: i32 = 9 * 3600;

/// The business date at instant `now`.
pub fn business_date(now: DateTime<Utc>) -> NaiveDate {
    match FixedOffset::east_opt(TOKYO_OFFSET_SECONDS) {
        Some(tokyo) => now.with_timezone(&tokyo).date_naive(),
        None => now.date_naive(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
