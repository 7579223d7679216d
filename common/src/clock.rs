//! The wall clock as every payload states time: whole seconds since the Unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix seconds. A clock set before 1970 reads as 0, which every deadline check
/// treats as long ago rather than as a panic.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
