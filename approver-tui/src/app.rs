//! The console's state: plain data, changed only by [`crate::update::update`], read by the views.

use std::cell::Cell;
use std::collections::HashSet;

use assent_protocol::{Grant, Request, RequestId, Sha256Digest, Signed, Verdict};

use crate::escape;
use crate::log::Entry;
use crate::risk::Risk;

/// The timed-grant durations `+`/`-` step through.
pub const DURATIONS_S: [u64; 5] = [5 * 60, 15 * 60, 3600, 8 * 3600, 24 * 3600];
/// A timed grant's duration when the request did not ask for one.
pub const DEFAULT_TIMED_S: u64 = 15 * 60;
/// How long a `once` approval may be used (the elevator's default `once_window_s`).
pub const ONCE_WINDOW_S: u64 = 120;
/// How often a fresh status is published (SPEC §4.6).
pub const STATUS_EVERY_S: u64 = 30;
/// How long a notice stays in the message line.
pub const NOTICE_S: u64 = 15;
/// Revoked timed grants stay in the status this long after they ended, to cover clock skew.
pub const REVOKED_KEEP_S: u64 = 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Pending,
    History,
    Grants,
}

impl View {
    pub const ALL: [View; 3] = [View::Pending, View::History, View::Grants];

    pub fn next(self) -> View {
        match self {
            View::Pending => View::History,
            View::History => View::Grants,
            View::Grants => View::Pending,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            View::Pending => "Pending",
            View::History => "History",
            View::Grants => "Grants",
        }
    }
}

/// What the keyboard is talking to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Help,
    /// Typing an optional note for a denial.
    DenyNote {
        request_id: RequestId,
        note: String,
    },
    /// Approving `always` waits for `y`.
    ConfirmAlways {
        request_id: RequestId,
    },
}

/// A verified request waiting for a decision, with the approver's current choice.
#[derive(Debug, Clone)]
pub struct PendingItem {
    pub request: Signed<Request>,
    pub fingerprint: String,
    pub first_seen: bool,
    pub risks: Vec<Risk>,
    /// The grant type that approving would sign.
    pub grant: Grant,
    /// The duration for a timed grant.
    pub ttl_s: u64,
}

impl PendingItem {
    pub fn new(request: Signed<Request>, first_seen: bool, mut risks: Vec<Risk>) -> PendingItem {
        if first_seen && !risks.contains(&Risk::FirstSeenAgent) {
            risks.insert(0, Risk::FirstSeenAgent);
        }
        let grant = request.payload.grant;
        let ttl_s = request
            .payload
            .ttl_s
            .unwrap_or(DEFAULT_TIMED_S)
            .clamp(1, DURATIONS_S[DURATIONS_S.len() - 1]);
        PendingItem {
            fingerprint: request.signer.fingerprint().to_string(),
            request,
            first_seen,
            risks,
            grant,
            ttl_s,
        }
    }

    pub fn id(&self) -> RequestId {
        self.request.payload.id
    }
}

/// Connection to the relay, as the status bar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayState {
    Connecting {
        url: String,
        attempt: u32,
    },
    Connected {
        url: String,
        embedded: bool,
    },
    Disconnected {
        url: String,
        error: String,
        retry_in_s: u64,
    },
}

/// Desktop notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyState {
    /// Not tried yet, or working.
    Available,
    /// Turned off by configuration.
    Disabled,
    /// Tried and failed; said once, not tried again.
    Unavailable(String),
}

/// A one-line message for the approver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub at: u64,
    pub warn: bool,
}

/// One decided request, as History shows it.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub at: u64,
    pub request_id: RequestId,
    pub agent: String,
    pub host: String,
    pub run_as: String,
    /// argv, shell-quoted and escaped for display.
    pub command: String,
    pub verdict: Verdict,
    pub grant: Grant,
    pub window_s: Option<u64>,
    pub approver: String,
    pub note: Option<String>,
    /// Decided by another console, not this one.
    pub elsewhere: bool,
}

/// A reusable grant this approver signed, as the Grants view shows it.
#[derive(Debug, Clone)]
pub struct GrantRow {
    pub decision_sha256: Sha256Digest,
    pub request_id: RequestId,
    pub agent: String,
    pub host: String,
    pub run_as: String,
    pub command: String,
    pub grant: Grant,
    pub decided_at: u64,
    pub not_after: Option<u64>,
    pub revoked_at: Option<u64>,
}

impl GrantRow {
    /// Still usable (or, when revoked, still worth listing in the status).
    pub fn is_live(&self, now: u64) -> bool {
        self.not_after.is_none_or(|end| end > now)
    }
}

/// The whole console state.
#[derive(Debug)]
pub struct App {
    pub now: u64,
    pub view: View,
    pub mode: Mode,
    pub approver_name: String,
    pub approver_fingerprint: String,
    pub once_window_s: u64,
    pub pending: Vec<PendingItem>,
    pub selected: usize,
    /// Oldest first; shown newest first.
    pub history: Vec<HistoryRow>,
    pub history_selected: usize,
    /// Every reusable grant this approver key signed, oldest first.
    pub grants: Vec<GrantRow>,
    /// Index into [`App::live_grants`].
    pub grants_selected: usize,
    /// Fingerprints of agent keys whose requests this approver has decided before.
    pub known_agents: HashSet<String>,
    /// Requests decided here (so a relay re-sending them after a reconnect changes nothing).
    pub decided: HashSet<RequestId>,
    pub relay: RelayState,
    pub notifications: NotifyState,
    pub notice: Option<Notice>,
    pub last_status_at: Option<u64>,
    /// Colours on (off for `NO_COLOR`).
    pub color: bool,
    /// Scroll positions remembered between frames by the views.
    pub scroll: [Cell<usize>; 3],
}

impl App {
    pub fn new(approver_name: &str, approver_fingerprint: &str, relay_url: &str, now: u64) -> App {
        App {
            now,
            view: View::Pending,
            mode: Mode::Normal,
            approver_name: approver_name.to_string(),
            approver_fingerprint: approver_fingerprint.to_string(),
            once_window_s: ONCE_WINDOW_S,
            pending: Vec::new(),
            selected: 0,
            history: Vec::new(),
            history_selected: 0,
            grants: Vec::new(),
            grants_selected: 0,
            known_agents: HashSet::new(),
            decided: HashSet::new(),
            relay: RelayState::Connecting {
                url: relay_url.to_string(),
                attempt: 1,
            },
            notifications: NotifyState::Available,
            notice: None,
            last_status_at: None,
            color: true,
            scroll: Default::default(),
        }
    }

    pub fn selected_item(&self) -> Option<&PendingItem> {
        self.pending.get(self.selected)
    }

    pub fn selected_item_mut(&mut self) -> Option<&mut PendingItem> {
        self.pending.get_mut(self.selected)
    }

    pub fn index_of(&self, id: RequestId) -> Option<usize> {
        self.pending.iter().position(|p| p.id() == id)
    }

    /// Grants still within their window (revoked ones included, marked), oldest first.
    pub fn live_grants(&self) -> impl Iterator<Item = &GrantRow> {
        self.grants.iter().filter(|g| g.is_live(self.now))
    }

    /// What the status lists as revoked: every revoked grant that could still be presented.
    pub fn revoked_digests(&self) -> Vec<Sha256Digest> {
        let mut out: Vec<Sha256Digest> = self
            .grants
            .iter()
            .filter(|g| g.revoked_at.is_some())
            .filter(|g| {
                g.not_after
                    .is_none_or(|end| end.saturating_add(REVOKED_KEEP_S) > self.now)
            })
            .map(|g| g.decision_sha256)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    pub fn set_notice(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            at: self.now,
            warn: false,
        });
    }

    pub fn set_warning(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            at: self.now,
            warn: true,
        });
    }

    /// Fold one decision-log entry into History, Grants and the known agents.
    pub fn apply_entry(&mut self, entry: &Entry) {
        match entry {
            Entry::Decided { request, decision } => {
                let r = &request.payload;
                let d = &decision.payload;
                self.known_agents
                    .insert(request.signer.fingerprint().to_string());
                self.decided.insert(r.id);
                self.history.push(HistoryRow {
                    at: d.decided_at,
                    request_id: r.id,
                    agent: r.agent.clone(),
                    host: r.host.clone(),
                    run_as: r.run_as.clone(),
                    command: escape::shell_join(&r.argv),
                    verdict: d.verdict,
                    grant: d.grant,
                    window_s: d.window_s(),
                    approver: d.approver.clone(),
                    note: d.note.clone(),
                    elsewhere: false,
                });
                let mine = decision.signer.fingerprint().as_str() == self.approver_fingerprint;
                if mine && d.verdict == Verdict::Approve && d.grant.is_reusable() {
                    self.grants.push(GrantRow {
                        decision_sha256: decision.sha256,
                        request_id: r.id,
                        agent: r.agent.clone(),
                        host: r.host.clone(),
                        run_as: r.run_as.clone(),
                        command: escape::shell_join(&r.argv),
                        grant: d.grant,
                        decided_at: d.decided_at,
                        not_after: d.not_after,
                        revoked_at: None,
                    });
                }
            }
            Entry::DecidedElsewhere {
                at,
                request,
                approver,
                verdict,
            } => {
                let r = &request.payload;
                self.history.push(HistoryRow {
                    at: *at,
                    request_id: r.id,
                    agent: r.agent.clone(),
                    host: r.host.clone(),
                    run_as: r.run_as.clone(),
                    command: escape::shell_join(&r.argv),
                    verdict: *verdict,
                    grant: r.grant,
                    window_s: None,
                    approver: approver.clone(),
                    note: None,
                    elsewhere: true,
                });
            }
            Entry::Revoked {
                at,
                decision_sha256,
            } => {
                for g in self
                    .grants
                    .iter_mut()
                    .filter(|g| g.decision_sha256 == *decision_sha256)
                {
                    g.revoked_at.get_or_insert(*at);
                }
            }
        }
    }
}

/// Seconds since the Unix epoch, from the system clock (0 if it is before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `5m`, `15m`, `1h`, `8h`, `24h`, `90s`, `1h30m` — compact durations for the screen.
pub fn format_duration(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// A countdown: `4:05`, `1:02:03`.
pub fn format_countdown(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Parse `90s`, `15m`, `1h`, `8h`, `1d`, `1h30m` or plain seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(secs);
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().ok()?;
        number.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    if !number.is_empty() || total == 0 {
        return None;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(format_duration(300), "5m");
        assert_eq!(format_duration(86400), "24h");
        assert_eq!(format_duration(5400), "1h30m");
        assert_eq!(format_countdown(245), "4:05");
        assert_eq!(format_countdown(3723), "1:02:03");
        assert_eq!(parse_duration("15m"), Some(900));
        assert_eq!(parse_duration("1h30m"), Some(5400));
        assert_eq!(parse_duration("2d"), Some(172800));
        assert_eq!(parse_duration("45"), Some(45));
        assert_eq!(parse_duration("15x"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("15m3"), None);
    }
}
