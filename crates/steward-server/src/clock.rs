//! Time, injected: the server asks a `Clock`, tests pass a fixed one.

use chrono::{DateTime, SecondsFormat, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The stored form: RFC 3339, UTC, microseconds, `Z`. Fixed width, so text order is time order.
pub fn format(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Accepts any RFC 3339 time (or a bare date, meaning its midnight UTC) and normalises it.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

#[cfg(test)]
mod tests {
    #[test]
    fn stored_times_are_fixed_width_utc() {
        let time = super::parse("2026-11-27T09:30:00+01:00").unwrap();
        assert_eq!(super::format(time), "2026-11-27T08:30:00.000000Z");
        assert_eq!(
            super::format(super::parse("2027-01-31").unwrap()),
            "2027-01-31T00:00:00.000000Z"
        );
        assert!(super::parse("yesterday").is_none());
    }
}
