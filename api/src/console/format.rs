//! How the console writes numbers, money and dates, in Japanese and English.
//!
//! Money is formatted from its exact `Decimal`, digit by digit: never through a float, so the
//! screen shows the books' amount to the last yen.

use chrono::{DateTime, Datelike as _, FixedOffset, NaiveDate, Offset as _, TimeZone as _, Utc};
use rust_decimal::Decimal;

use super::Lang;

/// `1234567` → `1,234,567`; the fraction, if any, is kept as it is.
pub fn grouped(amount: Decimal) -> String {
    let text = amount.abs().to_string();
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i.to_owned(), Some(f.to_owned())),
        None => (text, None),
    };
    let digits: Vec<char> = int.chars().collect();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 4);
    if amount.is_sign_negative() && !amount.is_zero() {
        out.push('-');
    }
    for (i, c) in digits.iter().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(*c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(&f);
    }
    out
}

/// Money as its users expect: yen as `¥1,234,567`, anything else as `1,234.56 USD`.
pub fn money(currency: &str, amount: Decimal) -> String {
    if currency == "JPY" {
        let g = grouped(amount);
        match g.strip_prefix('-') {
            Some(rest) => format!("-¥{rest}"),
            None => format!("¥{g}"),
        }
    } else {
        format!("{} {currency}", grouped(amount))
    }
}

/// A probability as a percentage to one decimal, rounded half away from zero:
/// `0.4567` → `45.7%`.
pub fn percent(p: Decimal) -> String {
    let pct = (p * Decimal::ONE_HUNDRED)
        .round_dp_with_strategy(1, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    format!("{pct:.1}%")
}

/// `2026年12月7日` in Japanese, `7 Dec 2026` in English.
pub fn date(lang: Lang, d: NaiveDate) -> String {
    match lang {
        Lang::Ja => format!("{}年{}月{}日", d.year(), d.month(), d.day()),
        Lang::En => d.format("%-d %b %Y").to_string(),
    }
}

/// Japan Standard Time: the business runs on Tokyo time (UTC+9, no daylight saving).
fn jst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).unwrap_or(Utc.fix())
}

/// A moment in Tokyo time: `2026年12月7日 21:03:04` / `7 Dec 2026 21:03:04 JST`.
pub fn moment(lang: Lang, t: DateTime<Utc>) -> String {
    let local = jst().from_utc_datetime(&t.naive_utc());
    let day = date(lang, local.date_naive());
    match lang {
        Lang::Ja => format!("{day} {}", local.format("%H:%M:%S")),
        Lang::En => format!("{day} {} JST", local.format("%H:%M:%S")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr as _;

    #[test]
    fn yen_is_grouped_without_decimals() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(money("JPY", d("1234567")), "¥1,234,567");
        assert_eq!(money("JPY", d("0")), "¥0");
        assert_eq!(money("JPY", d("999")), "¥999");
        assert_eq!(money("JPY", d("1000")), "¥1,000");
        assert_eq!(money("JPY", d("-1234")), "-¥1,234");
        assert_eq!(money("USD", d("1234.50")), "1,234.50 USD");
        assert_eq!(money("JPY", d("999999999999999")), "¥999,999,999,999,999");
    }

    #[test]
    fn probabilities_as_percentages() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(percent(d("0.4567")), "45.7%");
        assert_eq!(percent(d("0.12345")), "12.3%");
        assert_eq!(percent(d("0.12350")), "12.4%");
        assert_eq!(percent(d("1")), "100.0%");
        assert_eq!(percent(d("0")), "0.0%");
    }

    #[test]
    fn dates_in_both_languages() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        assert_eq!(date(Lang::Ja, d), "2026年12月7日");
        assert_eq!(date(Lang::En, d), "7 Dec 2026");
        let t = DateTime::from_timestamp(1_796_646_184, 0).unwrap(); // 2026-12-07 12:23:04 UTC
        assert_eq!(moment(Lang::Ja, t), "2026年12月7日 21:23:04");
    }
}
