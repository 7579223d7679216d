//! The console's state: plain data, changed only by [`crate::update::update`], read by the views.

use std::cell::Cell;
use std::collections::{BTreeMap, HashSet};

use assent_protocol::{
    ConsoleId, Decision, Envelope, Grant, Request, RequestId, Revocation, Revocations,
    Sha256Digest, Signed, Verdict,
};

use crate::command::Summary;
use crate::log::Entry;
use crate::memory::Memory;
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
/// A request that came under the cursor by itself cannot be approved or denied this soon.
pub const GUARD_MS: u64 = 1000;
/// The most requests kept pending; more are refused with a warning (the relay bounds them
/// too, but a relay is not trusted to).
pub const MAX_PENDING: usize = 20_000;

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
    /// Everything one request binds, scrollable.
    Full(FullView),
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

/// The full view of one request, and how far it has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullView {
    pub request_id: RequestId,
    /// First line shown.
    pub top: usize,
    /// As the last frame drew it.
    pub extent: Cell<Extent>,
}

/// The full view's size and progress, written by the view each frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extent {
    /// Lines in all.
    pub total: usize,
    /// Lines on one page.
    pub page: usize,
    /// Lines read from the top without a gap.
    pub seen: usize,
    /// The width they were wrapped to (a new width makes new lines: reading starts over).
    pub width: usize,
}

impl FullView {
    pub fn new(request_id: RequestId) -> FullView {
        FullView {
            request_id,
            top: 0,
            extent: Cell::new(Extent::default()),
        }
    }
}

/// A verified request waiting for a decision, with the approver's current choice.
#[derive(Debug, Clone)]
pub struct PendingItem {
    pub request: Signed<Request>,
    pub fingerprint: String,
    /// What the approver reads and types: the start of the request's SHA-256.
    pub reference: String,
    /// The one-line command, with the program when argv[0] does not name it.
    pub summary: Summary,
    pub risks: Vec<Risk>,
    /// The grant type that approving would sign.
    pub grant: Grant,
    /// The duration for a timed grant.
    pub ttl_s: u64,
    /// Set by the views once every field of the request has been on screen whole (in the
    /// detail, or read to the end in the full view). Until then `a` opens the full view.
    pub shown_in_full: Cell<bool>,
}

impl PendingItem {
    /// `risks` from [`crate::risk::assess`], `agent_flags` from [`Memory::agent_flags`].
    pub fn new(request: Signed<Request>, agent_flags: Vec<Risk>, risks: Vec<Risk>) -> PendingItem {
        let grant = request.payload.grant;
        let ttl_s = request
            .payload
            .ttl_s
            .unwrap_or(DEFAULT_TIMED_S)
            .clamp(1, DURATIONS_S[DURATIONS_S.len() - 1]);
        let mut all = agent_flags;
        all.extend(risks);
        PendingItem {
            fingerprint: request.signer.fingerprint().to_string(),
            reference: request.sha256.reference(),
            summary: Summary::of(&request.payload),
            request,
            risks: all,
            grant,
            ttl_s,
            shown_in_full: Cell::new(false),
        }
    }

    pub fn id(&self) -> RequestId {
        self.request.payload.id
    }

    pub fn first_seen(&self) -> bool {
        self.risks.contains(&Risk::FirstSeenAgent)
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
    /// The relay cannot be used as configured (its certificate is not trusted or names
    /// another host, the scheme is wrong, the login was refused): not retried.
    Misconfigured {
        url: String,
        error: String,
    },
}

impl RelayState {
    /// The error to show in full, if there is one.
    pub fn error(&self) -> Option<&str> {
        match self {
            RelayState::Disconnected { error, .. } | RelayState::Misconfigured { error, .. } => {
                Some(error)
            }
            RelayState::Connecting { .. } | RelayState::Connected { .. } => None,
        }
    }
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

/// Whether a decision reached the agent that asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Signed with this key and kept: sent again after every reconnect and whenever the
    /// request is announced again, until the relay says it was delivered or the request
    /// expires.
    Waiting,
    /// The relay said it reached the agent.
    Delivered,
    /// Another approver's decision: not this console's to deliver.
    NotOurs,
}

/// A decision signed with this key that the relay has not yet delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    pub decision: Envelope,
    pub decision_sha256: Sha256Digest,
    pub reference: String,
    /// The request's `expires_at`: after it, no agent can use the decision.
    pub expires_at: u64,
}

/// One decided request, as History shows it.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub at: u64,
    pub request_id: RequestId,
    pub reference: String,
    pub agent: String,
    pub host: String,
    pub run_as: String,
    pub command: Summary,
    pub verdict: Verdict,
    pub grant: Grant,
    pub window_s: Option<u64>,
    pub approver: String,
    pub note: Option<String>,
    /// Decided by another approver, not with this key.
    pub elsewhere: bool,
    /// The decision's digest, when it was signed with this key.
    pub decision_sha256: Option<Sha256Digest>,
    /// The request's `expires_at`.
    pub expires_at: u64,
    pub delivery: Delivery,
}

impl HistoryRow {
    /// What to say about delivery: nothing once delivered (or not ours to deliver).
    pub fn delivery_note(&self, now: u64) -> Option<&'static str> {
        match self.delivery {
            Delivery::Waiting if self.expires_at > now => Some("not yet delivered"),
            Delivery::Waiting => Some("never delivered"),
            Delivery::Delivered | Delivery::NotOurs => None,
        }
    }
}

/// A reusable grant this approver signed, as the Grants view shows it.
#[derive(Debug, Clone)]
pub struct GrantRow {
    pub decision_sha256: Sha256Digest,
    pub request_id: RequestId,
    pub reference: String,
    pub agent: String,
    pub host: String,
    pub run_as: String,
    pub command: Summary,
    pub grant: Grant,
    pub decided_at: u64,
    pub not_after: Option<u64>,
    pub revoked_at: Option<u64>,
    /// The console that signed the decision: only its statuses vouch for the grant.
    pub console: ConsoleId,
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
    /// A monotonic clock in milliseconds, for the guard on requests under the cursor.
    pub clock_ms: u64,
    pub view: View,
    pub mode: Mode,
    pub approver_name: String,
    pub approver_fingerprint: String,
    pub once_window_s: u64,
    /// In arrival order.
    pub pending: Vec<PendingItem>,
    /// The request under the cursor, by id: requests arriving or leaving never slide another
    /// one under it.
    pub selected: Option<RequestId>,
    /// When the selected request came under the cursor without the approver moving it there
    /// (it arrived in an empty list, or its neighbour left): `a` and `d` wait [`GUARD_MS`].
    pub selected_by_itself_at: Option<u64>,
    /// Oldest first; shown newest first.
    pub history: Vec<HistoryRow>,
    /// Index into `history` (oldest first), so new entries do not move it.
    pub history_selected: Option<usize>,
    /// Every reusable grant this approver key signed, oldest first.
    pub grants: Vec<GrantRow>,
    /// The selected grant, by its decision's digest.
    pub grants_selected: Option<Sha256Digest>,
    /// Agent keys approved, and the bytes every id and reference named.
    pub memory: Memory,
    /// Requests decided here (so a relay re-sending them after a reconnect changes nothing).
    pub decided: HashSet<RequestId>,
    /// Decisions signed with this key that the relay has not yet delivered, by request.
    pub undelivered: BTreeMap<RequestId, Undelivered>,
    /// Decisions the relay said it delivered.
    pub delivered: HashSet<Sha256Digest>,
    /// This console's id (`None`: every grant of this key counts as its own).
    pub console: Option<ConsoleId>,
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
            clock_ms: 0,
            view: View::Pending,
            mode: Mode::Normal,
            approver_name: approver_name.to_string(),
            approver_fingerprint: approver_fingerprint.to_string(),
            once_window_s: ONCE_WINDOW_S,
            pending: Vec::new(),
            selected: None,
            selected_by_itself_at: None,
            history: Vec::new(),
            history_selected: None,
            grants: Vec::new(),
            grants_selected: None,
            memory: Memory::new(approver_fingerprint),
            decided: HashSet::new(),
            undelivered: BTreeMap::new(),
            delivered: HashSet::new(),
            console: None,
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

    /// Position of the selected request in `pending`.
    pub fn selected_index(&self) -> Option<usize> {
        self.selected.and_then(|id| self.index_of(id))
    }

    pub fn selected_item(&self) -> Option<&PendingItem> {
        self.selected_index().map(|i| &self.pending[i])
    }

    pub fn selected_item_mut(&mut self) -> Option<&mut PendingItem> {
        self.selected_index().map(|i| &mut self.pending[i])
    }

    pub fn index_of(&self, id: RequestId) -> Option<usize> {
        self.pending.iter().position(|p| p.id() == id)
    }

    pub fn item(&self, id: RequestId) -> Option<&PendingItem> {
        self.index_of(id).map(|i| &self.pending[i])
    }

    /// Milliseconds left before `a` or `d` act on the selected request (0: they act now).
    pub fn guard_left_ms(&self) -> u64 {
        self.selected_by_itself_at
            .map_or(0, |at| (at + GUARD_MS).saturating_sub(self.clock_ms))
    }

    /// Grants still within their window (revoked ones included, marked), oldest first.
    pub fn live_grants(&self) -> impl Iterator<Item = &GrantRow> {
        self.grants.iter().filter(|g| g.is_live(self.now))
    }

    /// Position of the selected grant among the live ones (the first when none is chosen).
    pub fn grants_selected_index(&self) -> Option<usize> {
        let mut live = self.live_grants();
        match self.grants_selected {
            Some(sha) => live.position(|g| g.decision_sha256 == sha),
            None => live.next().map(|_| 0),
        }
    }

    /// Position in `history` (oldest first) of the selected row (the newest when none is).
    pub fn history_selected_index(&self) -> Option<usize> {
        self.history_selected
            .filter(|&i| i < self.history.len())
            .or_else(|| self.history.len().checked_sub(1))
    }

    /// What the status lists as revoked: every revoked grant that could still be presented,
    /// each until its own end (`not_after`; for ever for an always grant).
    pub fn revocations(&self) -> Revocations {
        self.grants
            .iter()
            .filter(|g| g.revoked_at.is_some())
            .filter(|g| {
                g.not_after
                    .is_none_or(|end| end.saturating_add(REVOKED_KEEP_S) > self.now)
            })
            .map(|g| Revocation {
                decision_sha256: g.decision_sha256,
                until: g.not_after,
            })
            .collect()
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

    /// Fold one decision-log entry into History, Grants and the memory of agents and ids.
    pub fn apply_entry(&mut self, entry: &Entry) {
        self.memory.learn(entry);
        match entry {
            Entry::Decided { request, decision } => self.apply_decided(request, decision),
            Entry::DecidedElsewhere {
                at,
                request,
                approver,
                verdict,
            } => self.apply_decided_elsewhere(*at, request, approver, *verdict),
            Entry::Revoked {
                at,
                decision_sha256,
            } => self.apply_revoked(*at, decision_sha256),
            Entry::Delivered {
                request_id,
                decision_sha256,
                ..
            } => self.apply_delivered(request_id, decision_sha256),
        }
    }

    /// This key's decision: into History once, waiting for delivery until the relay says it
    /// was delivered, and into Grants when it approved a reusable grant.
    fn apply_decided(&mut self, request: &Signed<Request>, decision: &Signed<Decision>) {
        let r = &request.payload;
        let d = &decision.payload;
        if self
            .history
            .iter()
            .any(|h| h.decision_sha256 == Some(decision.sha256))
        {
            return; // the same decision logged twice (here and by a scripted approve)
        }
        // Recorded as decided elsewhere before it was known to be this key's.
        self.history
            .retain(|h| !(h.elsewhere && h.request_id == r.id));
        self.decided.insert(r.id);
        let delivered = self.delivered.contains(&decision.sha256);
        if !delivered {
            self.undelivered.insert(
                r.id,
                Undelivered {
                    decision: decision.envelope.clone(),
                    decision_sha256: decision.sha256,
                    reference: request.sha256.reference(),
                    expires_at: r.expires_at,
                },
            );
        }
        self.history.push(HistoryRow {
            at: d.decided_at,
            request_id: r.id,
            reference: request.sha256.reference(),
            agent: r.agent.clone(),
            host: r.host.clone(),
            run_as: r.run_as.clone(),
            command: Summary::of(r),
            verdict: d.verdict,
            grant: d.grant,
            window_s: d.window_s(),
            approver: d.approver.clone(),
            note: d.note.clone(),
            elsewhere: false,
            decision_sha256: Some(decision.sha256),
            expires_at: r.expires_at,
            delivery: if delivered {
                Delivery::Delivered
            } else {
                Delivery::Waiting
            },
        });
        let mine = decision.signer.fingerprint().as_str() == self.approver_fingerprint;
        if mine && d.verdict == Verdict::Approve {
            // The key is known now: requests from it still waiting lose the flag.
            let fingerprint = request.signer.fingerprint();
            for item in self
                .pending
                .iter_mut()
                .filter(|p| p.fingerprint == fingerprint.as_str())
            {
                let flags = self.memory.agent_flags(&item.request);
                item.risks.retain(|k| {
                    !matches!(k, Risk::FirstSeenAgent | Risk::NameNewKey(_)) || flags.contains(k)
                });
            }
        }
        if mine && d.verdict == Verdict::Approve && d.grant.is_reusable() {
            self.grants.push(GrantRow {
                decision_sha256: decision.sha256,
                request_id: r.id,
                reference: request.sha256.reference(),
                agent: r.agent.clone(),
                host: r.host.clone(),
                run_as: r.run_as.clone(),
                command: Summary::of(r),
                grant: d.grant,
                decided_at: d.decided_at,
                not_after: d.not_after,
                revoked_at: None,
                console: d.console,
            });
        }
    }

    /// Another key's decision, as the relay reported it: into History unless this key's
    /// decision of the same request is there.
    fn apply_decided_elsewhere(
        &mut self,
        at: u64,
        request: &Signed<Request>,
        approver: &str,
        verdict: Verdict,
    ) {
        let r = &request.payload;
        if self.history.iter().any(|h| h.request_id == r.id) {
            return; // already in History, as this key's decision
        }
        self.history.push(HistoryRow {
            at,
            request_id: r.id,
            reference: request.sha256.reference(),
            agent: r.agent.clone(),
            host: r.host.clone(),
            run_as: r.run_as.clone(),
            command: Summary::of(r),
            verdict,
            grant: r.grant,
            window_s: None,
            approver: approver.to_owned(),
            note: None,
            elsewhere: true,
            decision_sha256: None,
            expires_at: r.expires_at,
            delivery: Delivery::NotOurs,
        });
    }

    fn apply_revoked(&mut self, at: u64, decision_sha256: &Sha256Digest) {
        for g in self
            .grants
            .iter_mut()
            .filter(|g| g.decision_sha256 == *decision_sha256)
        {
            g.revoked_at.get_or_insert(at);
        }
    }

    fn apply_delivered(&mut self, request_id: &RequestId, decision_sha256: &Sha256Digest) {
        self.delivered.insert(*decision_sha256);
        if self
            .undelivered
            .get(request_id)
            .is_some_and(|u| u.decision_sha256 == *decision_sha256)
        {
            self.undelivered.remove(request_id);
        }
        for h in self
            .history
            .iter_mut()
            .filter(|h| h.decision_sha256 == Some(*decision_sha256))
        {
            h.delivery = Delivery::Delivered;
        }
    }

    /// Decisions to send again: every undelivered one whose request has not expired.
    pub fn to_resend(&self) -> Vec<Envelope> {
        self.undelivered
            .values()
            .filter(|u| u.expires_at > self.now)
            .map(|u| u.decision.clone())
            .collect()
    }
}
