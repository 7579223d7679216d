//! Durations as people type them and read them: `90s`, `5m`, `1h`, `8h`, `1d`, and sums
//! such as `1h30m`. The shim's `--grant timed:…` and `--timeout`, the console's `--grant` and
//! its screens, and the test approver all read and write them here, so one spelling means the
//! same everywhere.

/// Parse a positive duration into seconds. Every number needs a unit (`s`, `m`, `h`, `d`).
pub fn parse(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a duration; write it like 90s, 5m, 1h, 8h or 1d");
    if text.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = match rest[digits..].chars().next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            _ => return Err(bad()),
        };
        total = number
            .checked_mul(unit)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(|| format!("{text:?} is too long a duration"))?;
        rest = &rest[digits + 1..];
    }
    if total == 0 {
        return Err(format!("{text:?} is zero; a duration must be at least 1s"));
    }
    Ok(total)
}

/// Seconds written back in the same notation, largest units first: 300 → `5m`, 90 → `1m30s`.
/// A day is written `24h`, as the console offers it; days appear only beyond one (`1d1h`).
pub fn format(mut secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, name) in [(86_400, 'd'), (3600, 'h'), (60, 'm'), (1, 's')] {
        if secs >= unit && !(unit == 86_400 && secs <= 86_400) {
            out.push_str(&(secs / unit).to_string());
            out.push(name);
            secs %= unit;
        }
    }
    out
}

/// A countdown for a screen: `4:05`, `1:02:03`.
pub fn countdown(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse("90s"), Ok(90));
        assert_eq!(parse("5m"), Ok(300));
        assert_eq!(parse("1h"), Ok(3600));
        assert_eq!(parse("8h"), Ok(8 * 3600));
        assert_eq!(parse("1d"), Ok(86_400));
    }

    #[test]
    fn parses_sums() {
        assert_eq!(parse("1h30m"), Ok(5400));
        assert_eq!(parse("1d2h3m4s"), Ok(86_400 + 7200 + 180 + 4));
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for bad in [
            "", "5", "m", "5x", "5 m", " 5m", "5m ", "-5m", "5M", "1.5h", "5mm", "h5", "५m",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains("90s, 5m"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn refuses_zero_and_overflow() {
        assert!(parse("0s").unwrap_err().contains("at least 1s"));
        assert!(parse("0m0s").unwrap_err().contains("at least 1s"));
        assert!(parse("99999999999999999999s").is_err());
        assert!(
            parse("18446744073709551615d")
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn formats_largest_units_first() {
        assert_eq!(format(300), "5m");
        assert_eq!(format(90), "1m30s");
        assert_eq!(format(3600), "1h");
        assert_eq!(format(86_400), "24h");
        assert_eq!(format(86_400 + 60), "1d1m");
        assert_eq!(format(2 * 86_400), "2d");
        assert_eq!(format(1), "1s");
        assert_eq!(format(0), "0s");
    }

    #[test]
    fn countdowns_show_hours_only_when_needed() {
        assert_eq!(countdown(0), "0:00");
        assert_eq!(countdown(245), "4:05");
        assert_eq!(countdown(3723), "1:02:03");
    }

    #[test]
    fn format_round_trips() {
        for secs in [1, 59, 60, 61, 3599, 3600, 86_399, 86_400, 1_000_000] {
            assert_eq!(parse(&format(secs)), Ok(secs));
        }
    }
}
