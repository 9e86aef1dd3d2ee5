//! The clock, read here (the schema crate never reads it): days for payloads, UTC seconds
//! for local files. The calendar arithmetic lives once, in [`telemetry_schema::Day`].

use std::time::{SystemTime, UNIX_EPOCH};

use telemetry_schema::Day;

/// Today in UTC. A clock outside 1970..=9999 (a broken machine) reads as 1970-01-01, which
/// only ever makes a payload's day wrong, never the decision.
pub fn today() -> Day {
    day_of(SystemTime::now())
}

/// The UTC day containing `t` (1970-01-01 when out of the representable range).
pub fn day_of(t: SystemTime) -> Day {
    Day::from_unix_seconds(unix_seconds(t))
        .or_else(|_| Day::new(1970, 1, 1))
        .expect("1970-01-01 is a valid day")
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
    let rem = unix_seconds(t).rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        day_of(t),
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_dates() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(day_of(at(0)).to_string(), "1970-01-01");
        assert_eq!(day_of(at(951_782_400)).to_string(), "2000-02-29");
        assert_eq!(day_of(at(1_795_305_599)).to_string(), "2026-11-21");
        assert_eq!(rfc3339_utc(at(86_399)), "1970-01-01T23:59:59Z");
        // Before the epoch: clamped, not a panic.
        assert_eq!(
            day_of(UNIX_EPOCH - Duration::from_secs(10)).to_string(),
            "1970-01-01"
        );
    }
}
