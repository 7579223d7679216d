//! Every bound the relay keeps, and the token buckets that enforce rates.
//!
//! All of these are configurable in the `[limits]` table of the relay config; the defaults
//! suit one approver and a handful of agents.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The relay's bounds. Every field is optional in TOML; the defaults are shown by `Default`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest WebSocket frame or message accepted from a client, in bytes.
    pub max_frame_bytes: usize,
    /// Time from TCP accept to a verified login (TLS and WebSocket handshakes included).
    pub login_timeout_s: u64,
    /// Undecided requests one agent key may have queued at once.
    pub max_pending_per_agent: usize,
    /// Requests (undecided, or decided and kept for a reconnecting shim) held in total.
    pub max_pending_total: usize,
    /// Submissions one agent key may make per minute (re-submissions count too).
    pub requests_per_agent_per_minute: u32,
    /// Messages one connection may send per second, sustained (twice that in a burst).
    pub messages_per_connection_per_second: u32,
    /// Open connections, logged in or not.
    pub max_connections: usize,
    /// How often the relay pings an idle connection.
    pub ping_interval_s: u64,
    /// A connection that sends nothing (not even a pong) for this long is closed.
    pub idle_timeout_s: u64,
    /// A request is dropped after this long even if its `expires_at` is later.
    pub max_request_lifetime_s: u64,
    /// How long a request id stays remembered after its request was dropped, so that no
    /// other request can take it meanwhile.
    pub remember_ids_s: u64,
    /// Request ids remembered at once: those of held requests and of dropped ones still
    /// within `remember_ids_s`. When full, requests with new ids are refused; no id is
    /// forgotten early.
    pub max_remembered_ids: usize,
    /// The same, per agent key, so that one key cannot use up the whole table.
    pub max_remembered_ids_per_agent: usize,
    /// Messages waiting to be written to one connection; a client that lets more pile up
    /// is too slow and is cut off.
    pub outbound_queue: usize,
    /// Longest time one write (a frame, or a batch of up to 64 queued frames) may take
    /// before the connection is given up.
    pub write_timeout_s: u64,
    /// How long after a revoked grant's `until` a console's statuses must keep listing the
    /// revocation; a status that drops it earlier is refused.
    pub revocation_grace_s: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 64 * 1024,
            login_timeout_s: 5,
            max_pending_per_agent: 16,
            max_pending_total: 10_000,
            requests_per_agent_per_minute: 120,
            messages_per_connection_per_second: 100,
            max_connections: 16_384,
            ping_interval_s: 20,
            idle_timeout_s: 60,
            max_request_lifetime_s: 3600,
            remember_ids_s: 86_400,
            max_remembered_ids: 100_000,
            max_remembered_ids_per_agent: 5_000,
            outbound_queue: 1024,
            write_timeout_s: 10,
            revocation_grace_s: 3600,
        }
    }
}

impl Limits {
    /// Every limit must be positive, and the idle timeout must leave room for a ping.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_frame_bytes", self.max_frame_bytes as u64),
            ("login_timeout_s", self.login_timeout_s),
            ("max_pending_per_agent", self.max_pending_per_agent as u64),
            ("max_pending_total", self.max_pending_total as u64),
            (
                "requests_per_agent_per_minute",
                u64::from(self.requests_per_agent_per_minute),
            ),
            (
                "messages_per_connection_per_second",
                u64::from(self.messages_per_connection_per_second),
            ),
            ("max_connections", self.max_connections as u64),
            ("ping_interval_s", self.ping_interval_s),
            ("idle_timeout_s", self.idle_timeout_s),
            ("max_request_lifetime_s", self.max_request_lifetime_s),
            ("remember_ids_s", self.remember_ids_s),
            ("max_remembered_ids", self.max_remembered_ids as u64),
            (
                "max_remembered_ids_per_agent",
                self.max_remembered_ids_per_agent as u64,
            ),
            ("outbound_queue", self.outbound_queue as u64),
            ("write_timeout_s", self.write_timeout_s),
            ("revocation_grace_s", self.revocation_grace_s),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("limits.{name} must be greater than 0"));
        }
        if self.max_frame_bytes < 4096 {
            return Err("limits.max_frame_bytes must be at least 4096".into());
        }
        if self.idle_timeout_s <= self.ping_interval_s {
            return Err("limits.idle_timeout_s must be longer than limits.ping_interval_s".into());
        }
        Ok(())
    }

    pub fn login_timeout(&self) -> Duration {
        Duration::from_secs(self.login_timeout_s)
    }

    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.ping_interval_s)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_s)
    }

    pub fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout_s)
    }

    /// The bucket for one agent key's submissions.
    pub fn request_bucket(&self, now: Instant) -> TokenBucket {
        let per_minute = f64::from(self.requests_per_agent_per_minute);
        TokenBucket::new(per_minute, per_minute / 60.0, now)
    }

    /// The bucket for one connection's messages.
    pub fn message_bucket(&self, now: Instant) -> TokenBucket {
        let per_second = f64::from(self.messages_per_connection_per_second);
        TokenBucket::new(per_second * 2.0, per_second, now)
    }
}

/// A classic token bucket: holds up to `capacity` tokens, refills at `rate` per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: f64, rate: f64, now: Instant) -> Self {
        TokenBucket {
            capacity,
            rate,
            tokens: capacity,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.last = now;
    }

    /// Take one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// True when the bucket has refilled completely, so forgetting it changes nothing.
    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.capacity
    }
}

/// One token bucket per key (agent keys), forgetting buckets that have refilled so the map
/// stays as small as the set of recently active keys.
#[derive(Debug)]
pub struct RateLimiter<K> {
    buckets: HashMap<K, TokenBucket>,
    make: fn(&Limits, Instant) -> TokenBucket,
    limits: Limits,
    next_sweep: usize,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(limits: &Limits, make: fn(&Limits, Instant) -> TokenBucket) -> Self {
        RateLimiter {
            buckets: HashMap::new(),
            make,
            limits: limits.clone(),
            next_sweep: 1024,
        }
    }

    /// Charge one event to `key`; false when its bucket is empty.
    pub fn try_take(&mut self, key: &K, now: Instant) -> bool {
        if self.buckets.len() >= self.next_sweep {
            self.buckets.retain(|_, b| !b.is_full(now));
            self.next_sweep = (self.buckets.len() * 2).max(1024);
        }
        let make = self.make;
        let limits = &self.limits;
        self.buckets
            .entry(key.clone())
            .or_insert_with(|| make(limits, now))
            .try_take(now)
    }

    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    /// New limits for keys seen from now on; buckets already tracked keep theirs until they
    /// refill and are forgotten.
    pub fn set_limits(&mut self, limits: &Limits) {
        self.limits = limits.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3.0, 1.0, t0);
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0));
        assert!(!b.try_take(t0 + Duration::from_millis(500)));
        assert!(b.try_take(t0 + Duration::from_millis(1001)));
        assert!(!b.try_take(t0 + Duration::from_millis(1002)));
        // Never more than the capacity, however long it waited.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            assert!(b.try_take(later));
        }
        assert!(!b.try_take(later));
    }

    #[test]
    fn rate_limiter_is_per_key_and_forgets_refilled_buckets() {
        let limits = Limits {
            requests_per_agent_per_minute: 2,
            ..Limits::default()
        };
        let t0 = Instant::now();
        let mut r = RateLimiter::new(&limits, Limits::request_bucket);
        let (a, b) = ("a".to_owned(), "b".to_owned());
        assert!(r.try_take(&a, t0));
        assert!(r.try_take(&a, t0));
        assert!(!r.try_take(&a, t0));
        assert!(r.try_take(&b, t0));
        for i in 0..2000 {
            r.try_take(&format!("x{i}"), t0);
        }
        let later = t0 + Duration::from_secs(120);
        for i in 0..1100 {
            r.try_take(&format!("k{i}"), later);
        }
        assert!(
            r.tracked() < 2000,
            "old full buckets were kept: {}",
            r.tracked()
        );
    }

    #[test]
    fn zero_limits_are_refused() {
        let l = Limits {
            max_pending_per_agent: 0,
            ..Limits::default()
        };
        assert_eq!(
            l.validate().unwrap_err(),
            "limits.max_pending_per_agent must be greater than 0"
        );
        let l = Limits {
            idle_timeout_s: 5,
            ping_interval_s: 10,
            ..Limits::default()
        };
        assert!(l.validate().is_err());
        assert!(Limits::default().validate().is_ok());
    }
}
