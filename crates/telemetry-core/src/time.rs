//! Calendar dates from the system clock, without a date library.
//!
//! Payloads carry days, never finer timestamps; local files may carry UTC seconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC calendar day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day {
    /// Year.
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
    /// Day of month, 1–31.
    pub day: u32,
}

impl Day {
    /// Today in UTC.
    pub fn today() -> Self {
        Self::from_unix_seconds(unix_seconds(SystemTime::now()))
    }

    /// The day containing `seconds` since the Unix epoch.
    pub fn from_unix_seconds(seconds: i64) -> Self {
        // Howard Hinnant's civil_from_days.
        let z = seconds.div_euclid(86_400) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self { year, month, day }
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Seconds since the Unix epoch (negative before it).
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for `t`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = unix_seconds(t);
    let day = Day::from_unix_seconds(secs);
    let rem = secs.rem_euclid(86_400);
    format!(
        "{day}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(Day::from_unix_seconds(0).to_string(), "1970-01-01");
        assert_eq!(
            Day::from_unix_seconds(951_782_400).to_string(),
            "2000-02-29"
        );
        assert_eq!(
            Day::from_unix_seconds(1_795_305_599).to_string(),
            "2026-11-21"
        );
        assert_eq!(Day::from_unix_seconds(-1).to_string(), "1969-12-31");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + std::time::Duration::from_secs(86_399)),
            "1970-01-01T23:59:59Z"
        );
    }
}
