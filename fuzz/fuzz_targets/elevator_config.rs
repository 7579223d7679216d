//! The elevator's configuration parser (SPEC §5, `elevator.toml`): `Config::parse` on
//! arbitrary text.
//!
//! Nothing may panic (a panic in the setuid elevator aborts it). An accepted configuration
//! must hold what the parser promises (at least one approver and one requester, no duplicate
//! names or keys, non-empty `run_as`, sane settings and limits); a rejected one must give exactly one
//! line naming the file.
#![no_main]

use std::path::Path;

use assent_common::elevator_config::{Limit, LimitValue};
use assent_elevate::config::{Config, MAX_CLOCK_SKEW_S};
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "/etc/assent/elevator.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, Path::new(ORIGIN)) {
        Ok(config) => accepted(&config),
        Err(e) => {
            assert!(
                e.starts_with(ORIGIN),
                "the error does not name the file: {e:?}"
            );
            assert!(
                !e.contains(['\n', '\r']),
                "the error is not one line: {e:?}"
            );
        }
    }
});

fn accepted(config: &Config) {
    assert!(!config.approvers.is_empty());
    assert!(!config.requesters.is_empty());
    for (i, a) in config.approvers.iter().enumerate() {
        assert!(valid_name(&a.name), "approver name {:?}", a.name);
        for b in &config.approvers[..i] {
            assert_ne!(a.name, b.name, "duplicate approver name accepted");
            assert_ne!(a.key, b.key, "duplicate approver key accepted");
        }
        assert_eq!(config.approver_by_key(&a.key), Some(a));
    }
    for (i, r) in config.requesters.iter().enumerate() {
        assert!(valid_name(&r.user), "requester {:?}", r.user);
        assert!(!r.run_as.is_empty(), "empty run_as accepted");
        assert!(
            r.run_as.iter().all(|t| valid_name(t)),
            "run_as {:?}",
            r.run_as
        );
        for q in &config.requesters[..i] {
            assert_ne!(r.user, q.user, "duplicate requester accepted");
        }
        assert_eq!(config.requester(&r.user), Some(r));
    }
    let s = &config.settings;
    assert!(s.once_window_s >= 1 && s.max_ttl_s >= 1 && s.status_max_age_s >= 1);
    assert!(s.clock_skew_s <= MAX_CLOCK_SKEW_S);
    assert!(!s.secure_path.is_empty() && s.secure_path.len() <= 4096);
    assert!(s.secure_path.split(':').all(|d| d.starts_with('/')));
    for (limit, pair) in &s.limits.0 {
        assert!(pair.soft <= pair.hard, "{limit}: soft above hard accepted");
        assert!(
            *limit != Limit::Nofile || pair.hard != LimitValue::Unlimited,
            "an unlimited nofile accepted"
        );
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 256 && !name.chars().any(char::is_control)
}
