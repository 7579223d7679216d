//! Grants as people type them: `once`, `timed:DURATION` (e.g. `timed:15m`) or `always`.
//! The shim's `--grant`, the console's `--grant` and the test approver read them here.

use assent_protocol::Grant;

use crate::duration;

/// `once`, `timed:DURATION` or `always` → the grant and, for timed, its lifetime in seconds.
pub fn parse(text: &str) -> Result<(Grant, Option<u64>), String> {
    match text {
        "once" => Ok((Grant::Once, None)),
        "always" => Ok((Grant::Always, None)),
        "timed" => Err("grant timed needs a duration, e.g. timed:1h".into()),
        _ => match text.strip_prefix("timed:") {
            Some(d) => Ok((Grant::Timed, Some(duration::parse(d)?))),
            None => Err(format!(
                "{text:?} is not a grant; use once, timed:DURATION (e.g. timed:1h) or always"
            )),
        },
    }
}

/// The grant written back as [`parse`] reads it.
pub fn spell(grant: Grant, ttl_s: Option<u64>) -> String {
    match (grant, ttl_s) {
        (Grant::Once, _) => "once".into(),
        (Grant::Always, _) => "always".into(),
        (Grant::Timed, Some(ttl)) => format!("timed:{}", duration::format(ttl)),
        (Grant::Timed, None) => "timed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_grant() {
        assert_eq!(parse("once"), Ok((Grant::Once, None)));
        assert_eq!(parse("always"), Ok((Grant::Always, None)));
        assert_eq!(parse("timed:15m"), Ok((Grant::Timed, Some(900))));
        assert_eq!(parse("timed:1d"), Ok((Grant::Timed, Some(86_400))));
    }

    #[test]
    fn refuses_what_is_not_a_grant() {
        for bad in [
            "",
            "timed",
            "timed:",
            "timed:900",
            "Once",
            "forever",
            "timed:0s",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse("timed").unwrap_err().contains("timed:1h"));
        assert!(
            parse("forever")
                .unwrap_err()
                .contains("once, timed:DURATION")
        );
    }

    #[test]
    fn spelling_round_trips() {
        for text in ["once", "always", "timed:15m", "timed:24h", "timed:1h30m"] {
            let (grant, ttl) = parse(text).unwrap();
            assert_eq!(spell(grant, ttl), text);
        }
    }
}
