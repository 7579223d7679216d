//! Wall-clock time as the protocol counts it (unix seconds) and as the audit log writes it
//! (RFC 3339, UTC, whole seconds). Written by hand to keep the dependency tree small.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; 0 if the clock is set before 1970.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DDTHH:MM:SSZ` for unix seconds `secs`.
pub fn rfc3339_utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Proleptic Gregorian date of the day `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, restricted to non-negative day numbers).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so that leap days fall at the end of each year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1, 0..=365
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Days since the epoch counted the slow, obvious way.
    fn days_by_counting(year: u64, month: u64, day: u64) -> u64 {
        let leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let mut days = 0;
        for y in 1970..year {
            days += if leap(y) { 366 } else { 365 };
        }
        let lengths = [
            31,
            if leap(year) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        days += lengths[..(month as usize - 1)].iter().sum::<u64>();
        days + day - 1
    }

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_763_770_000), "2025-11-22T00:06:40Z");
        assert_eq!(
            rfc3339_utc(951_782_400),
            "2000-02-29T00:00:00Z",
            "2000 is a leap year"
        );
        assert_eq!(rfc3339_utc(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(
            rfc3339_utc(4_107_542_400),
            "2100-03-01T00:00:00Z",
            "2100 is not"
        );
        assert_eq!(rfc3339_utc(1_709_164_800), "2024-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_735_689_599), "2024-12-31T23:59:59Z");
        assert_eq!(rfc3339_utc(1_735_689_600), "2025-01-01T00:00:00Z");
    }

    #[test]
    fn every_day_boundary_from_1970_to_2401_agrees_with_counting() {
        let mut expected_days = 0;
        for year in 1970..2401 {
            for month in 1..=12 {
                for day in 1..=31 {
                    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
                    let len = match month {
                        2 if leap => 29,
                        2 => 28,
                        4 | 6 | 9 | 11 => 30,
                        _ => 31,
                    };
                    if day > len {
                        continue;
                    }
                    assert_eq!(civil_from_days(expected_days), (year, month, day));
                    expected_days += 1;
                }
            }
        }
        assert_eq!(
            days_by_counting(2400, 2, 29) + 1,
            days_by_counting(2400, 3, 1)
        );
        assert_eq!(
            rfc3339_utc(days_by_counting(2400, 2, 29) * 86_400 + 86_399),
            "2400-02-29T23:59:59Z"
        );
    }
}
