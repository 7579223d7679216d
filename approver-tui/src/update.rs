//! The pure heart of the console: `update(&mut App, Event) -> Vec<Action>`.
//!
//! No I/O happens here. Key presses, relay events, clock ticks and log entries come in as
//! [`Event`]s; what must happen in the world (sign and send a decision, publish a status, ring
//! the bell) goes out as [`Action`]s for the edge to carry out. Nothing is ever signed except as
//! the direct result of an approving or denying keystroke, on the request that keystroke was
//! about: the selection follows a request, never a position, and a request that came under
//! the cursor by itself is not approved or denied by a key pressed within a second of it.

use assent_protocol::{
    Decision, Envelope, Grant, Request, RequestId, Revocations, Sha256Digest, Signed, Verdict,
};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::app::{
    App, DURATIONS_S, FullView, MAX_PENDING, Mode, NOTICE_S, NotifyState, PendingItem, RelayState,
    STATUS_EVERY_S, View,
};
use crate::escape;
use crate::keys::{self, Command, PromptCommand, Scope};
use crate::log::Entry;
use crate::memory::Shown;
use crate::risk::Risk;
use crate::sign::Choice;

/// The longest deny note, in characters.
pub const MAX_NOTE: usize = 500;
/// Cells of a command in a notice or a notification.
const NOTICE_COMMAND: usize = 60;
const NOTIFY_COMMAND: usize = 200;

#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    /// The clock, once a second.
    Tick {
        now: u64,
    },
    /// A monotonic clock in milliseconds, given before the events it dates.
    Clock {
        ms: u64,
    },
    Resize {
        width: u16,
        height: u16,
    },
    Relay(RelayEvent),
    /// An entry was written to the decision log.
    Logged(Box<Entry>),
    Notifications(NotifyState),
    /// Something failed at the edge that the approver must know about.
    Failure(String),
    /// SIGTERM or SIGHUP: quit as `q` does (nothing is signed).
    Shutdown,
}

/// What the relay link reports, already verified where there is something to verify.
#[derive(Debug, Clone)]
pub enum RelayEvent {
    State(RelayState),
    /// A request whose signature verified, with the risk flags that need host facts.
    Request {
        request: Box<Signed<Request>>,
        risks: Vec<Risk>,
    },
    /// A request that failed verification and was dropped.
    Invalid {
        reason: String,
    },
    Decided {
        request_id: RequestId,
        approver: String,
        verdict: Verdict,
        /// The winning decision, when its signature verified.
        decision: Option<Box<Signed<Decision>>>,
    },
    /// The decision with this digest reached the agent.
    Delivered {
        request_id: RequestId,
        decision_sha256: Sha256Digest,
    },
    Expired {
        request_id: RequestId,
    },
    /// The request's agent took it back.
    Withdrawn {
        request_id: RequestId,
    },
    Refused {
        request_id: Option<RequestId>,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Build, sign, log and send a decision for this request.
    SignDecision {
        request: Box<Signed<Request>>,
        choice: Choice,
    },
    /// Record a revocation in the decision log (then a status follows).
    Revoke {
        decision_sha256: Sha256Digest,
    },
    /// Record a decision signed with this key elsewhere (by `assent-console approve`, or by
    /// another console of this key).
    RecordOwnDecision {
        request: Box<Signed<Request>>,
        decision: Box<Signed<Decision>>,
    },
    /// Send these signed decisions (again): the relay had not delivered them.
    Resend(Vec<Envelope>),
    /// Record that the relay delivered a decision.
    RecordDelivered {
        request_id: RequestId,
        decision_sha256: Sha256Digest,
    },
    /// Record a request decided by another approver.
    RecordDecidedElsewhere {
        request: Box<Signed<Request>>,
        approver: String,
        verdict: Verdict,
    },
    /// Remember that this request was shown, so its id and reference keep naming its bytes.
    RememberShown(Shown),
    /// Sign and publish a status listing these revoked grants.
    PublishStatus {
        revoked: Revocations,
    },
    /// Ring the terminal bell.
    Bell,
    /// Best-effort desktop notification.
    Notify {
        summary: String,
        body: String,
    },
    Quit,
}

pub fn update(app: &mut App, event: Event) -> Vec<Action> {
    match event {
        Event::Key(key) if key.kind == KeyEventKind::Press => on_key(app, key),
        Event::Key(_) => Vec::new(),
        Event::Tick { now } => on_tick(app, now),
        Event::Clock { ms } => {
            app.clock_ms = app.clock_ms.max(ms);
            Vec::new()
        }
        Event::Resize { .. } => Vec::new(),
        Event::Relay(ev) => on_relay(app, ev),
        Event::Logged(entry) => on_logged(app, *entry),
        Event::Notifications(state) => {
            if let NotifyState::Unavailable(why) = &state {
                if app.notifications != state {
                    app.set_warning(format!("notifications unavailable: {why}"));
                }
            }
            app.notifications = state;
            Vec::new()
        }
        Event::Failure(text) => {
            app.set_warning(text);
            Vec::new()
        }
        Event::Shutdown => vec![Action::Quit],
    }
}

fn on_key(app: &mut App, key: KeyEvent) -> Vec<Action> {
    // Ctrl-C quits from anywhere, prompts included ('q' there is text).
    if key.modifiers.contains(KeyModifiers::CONTROL) && keys::command(&key) == Some(Command::Quit) {
        return vec![Action::Quit];
    }
    match app.mode.clone() {
        Mode::DenyNote { request_id, note } => on_deny_prompt_key(app, request_id, note, key),
        Mode::ConfirmAlways { request_id } => {
            app.mode = Mode::Normal;
            match keys::prompt_command(Scope::ConfirmAlways, &key) {
                Some(PromptCommand::Confirm) => match app.index_of(request_id) {
                    Some(i) => sign(app, i, Choice::approve(Grant::Always, None)),
                    None => Vec::new(),
                },
                _ => {
                    app.set_notice("approve always: cancelled, nothing signed");
                    Vec::new()
                }
            }
        }
        Mode::Help => match keys::command(&key) {
            Some(Command::Help | Command::Close) => {
                app.mode = Mode::Normal;
                Vec::new()
            }
            Some(Command::Quit) => vec![Action::Quit],
            _ => Vec::new(),
        },
        Mode::Full(full) => match keys::full_view_command(&key) {
            Some(command) => on_full_view_command(app, full, command),
            None => Vec::new(),
        },
        Mode::Normal => match keys::command(&key) {
            Some(command) => on_command(app, command),
            None => Vec::new(),
        },
    }
}

fn on_deny_prompt_key(
    app: &mut App,
    request_id: RequestId,
    mut note: String,
    key: KeyEvent,
) -> Vec<Action> {
    match keys::prompt_command(Scope::DenyPrompt, &key) {
        Some(PromptCommand::Send) => {
            app.mode = Mode::Normal;
            match app.index_of(request_id) {
                Some(i) => sign(app, i, Choice::deny(Some(note))),
                None => Vec::new(),
            }
        }
        Some(PromptCommand::Cancel) => {
            app.mode = Mode::Normal;
            app.set_notice("deny: cancelled, nothing signed");
            Vec::new()
        }
        Some(PromptCommand::Backspace) => {
            note.pop();
            app.mode = Mode::DenyNote { request_id, note };
            Vec::new()
        }
        Some(PromptCommand::Confirm) | None => {
            if let KeyCode::Char(c) = key.code {
                let plain = !key
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
                if plain && !escape::needs_escape(c) && note.chars().count() < MAX_NOTE {
                    note.push(c);
                }
            }
            app.mode = Mode::DenyNote { request_id, note };
            Vec::new()
        }
    }
}

fn on_command(app: &mut App, command: Command) -> Vec<Action> {
    match command {
        Command::Quit => vec![Action::Quit],
        Command::Help => {
            app.mode = Mode::Help;
            Vec::new()
        }
        Command::Close => Vec::new(),
        Command::NextView => {
            app.view = app.view.next();
            Vec::new()
        }
        Command::Up => move_by(app, -1),
        Command::Down => move_by(app, 1),
        Command::PageUp => move_by(app, -10),
        Command::PageDown => move_by(app, 10),
        Command::Top => move_by(app, isize::MIN / 2),
        Command::Bottom => move_by(app, isize::MAX / 2),
        Command::Approve
        | Command::Deny
        | Command::CycleGrant
        | Command::Longer
        | Command::Shorter
        | Command::Full
            if app.view != View::Pending =>
        {
            Vec::new()
        }
        Command::Full => {
            if let Some(id) = app.selected {
                app.mode = Mode::Full(FullView::new(id));
            }
            Vec::new()
        }
        Command::Approve => {
            let Some(item) = app.selected_item() else {
                return Vec::new();
            };
            let id = item.id();
            if guarded(app, "approve") {
                return Vec::new();
            }
            if !app.item(id).is_some_and(|i| i.shown_in_full.get()) {
                // Not all of it has been on screen: show all of it first.
                app.mode = Mode::Full(FullView::new(id));
                app.set_warning(format!(
                    "not all of this request fitted on the screen: here is all of it; {} approves once its end was shown",
                    keys::keys_for(Scope::FullView, &[Command::Approve])
                ));
                return Vec::new();
            }
            approve(app, id)
        }
        Command::Deny => {
            if let Some(id) = app.selected {
                if !guarded(app, "deny") {
                    app.mode = Mode::DenyNote {
                        request_id: id,
                        note: String::new(),
                    };
                }
            }
            Vec::new()
        }
        Command::CycleGrant => {
            if let Some(id) = app.selected {
                cycle_grant(app, id);
            }
            Vec::new()
        }
        Command::Longer | Command::Shorter => {
            if let Some(id) = app.selected {
                step_grant(app, id, command == Command::Longer);
            }
            Vec::new()
        }
        Command::Revoke => {
            if app.view != View::Grants {
                return Vec::new();
            }
            let Some(i) = app.grants_selected_index() else {
                return Vec::new();
            };
            let Some(grant) = app.live_grants().nth(i) else {
                return Vec::new();
            };
            if grant.revoked_at.is_some() {
                app.set_notice("already revoked");
                return Vec::new();
            }
            if let Some(mine) = app.console.filter(|mine| *mine != grant.console) {
                // Only the approving console's statuses vouch for a grant: a revocation in
                // this console's statuses would change nothing.
                app.set_warning(format!(
                    "grant {} was approved on your console {}, not this one ({}): revoke it there",
                    grant.reference,
                    grant.console.short(),
                    mine.short()
                ));
                return Vec::new();
            }
            vec![Action::Revoke {
                decision_sha256: grant.decision_sha256,
            }]
        }
    }
}

/// Whether the selected request came under the cursor by itself too recently for `what`
/// (and if so, say so).
fn guarded(app: &mut App, what: &str) -> bool {
    let left = app.guard_left_ms();
    if left == 0 {
        return false;
    }
    app.set_warning(format!(
        "{what} ignored: this request came under the cursor {} ms ago — read it first",
        crate::app::GUARD_MS - left
    ));
    true
}

fn on_full_view_command(app: &mut App, mut full: FullView, command: Command) -> Vec<Action> {
    let id = full.request_id;
    let Some(item) = app.item(id) else {
        app.mode = Mode::Normal;
        return Vec::new();
    };
    let extent = full.extent.get();
    let (total, page) = (extent.total, extent.page);
    let last_top = total.saturating_sub(page.max(1));
    let mut scroll = |delta: isize| {
        full.top = full.top.saturating_add_signed(delta).min(last_top);
        Mode::Full(full.clone())
    };
    let page = page.max(1) as isize;
    match command {
        Command::Quit => return vec![Action::Quit],
        Command::Help => app.mode = Mode::Help,
        Command::Close | Command::Full => app.mode = Mode::Normal,
        Command::NextView => {
            app.mode = Mode::Normal;
            app.view = app.view.next();
        }
        Command::Up => app.mode = scroll(-1),
        Command::Down => app.mode = scroll(1),
        Command::PageUp => app.mode = scroll(-(page - 1).max(1)),
        Command::PageDown => app.mode = scroll((page - 1).max(1)),
        Command::Top => app.mode = scroll(isize::MIN / 2),
        Command::Bottom => app.mode = scroll(isize::MAX / 2),
        Command::Approve => {
            if !item.shown_in_full.get() {
                app.set_warning(format!(
                    "approve: not yet — {} of {total} lines read; read on to the end ({}) first",
                    extent.seen,
                    keys::keys_for(Scope::Global, &[Command::Down, Command::PageDown])
                ));
                return Vec::new();
            }
            app.mode = Mode::Normal;
            return approve(app, id);
        }
        Command::Deny => {
            app.mode = Mode::DenyNote {
                request_id: id,
                note: String::new(),
            };
        }
        Command::CycleGrant => cycle_grant(app, id),
        Command::Longer | Command::Shorter => step_grant(app, id, command == Command::Longer),
        Command::Revoke => {}
    }
    Vec::new()
}

/// Approve request `id` with the grant chosen for it (`always` asks first).
fn approve(app: &mut App, id: RequestId) -> Vec<Action> {
    let Some(i) = app.index_of(id) else {
        return Vec::new();
    };
    match app.pending[i].grant {
        Grant::Always => {
            app.mode = Mode::ConfirmAlways { request_id: id };
            Vec::new()
        }
        grant => {
            let choice = Choice::approve(grant, Some(app.pending[i].ttl_s));
            sign(app, i, choice)
        }
    }
}

fn cycle_grant(app: &mut App, id: RequestId) {
    if let Some(i) = app.index_of(id) {
        let item = &mut app.pending[i];
        item.grant = match item.grant {
            Grant::Once => Grant::Timed,
            Grant::Timed => Grant::Always,
            Grant::Always => Grant::Once,
        };
    }
}

fn step_grant(app: &mut App, id: RequestId, longer: bool) {
    let Some(i) = app.index_of(id) else {
        return;
    };
    let item = &mut app.pending[i];
    if item.grant == Grant::Timed {
        item.ttl_s = step_duration(item.ttl_s, longer);
    } else {
        let keys = keys::keys_for(Scope::Pending, &[Command::CycleGrant]);
        app.set_notice(format!(
            "+/- set a timed grant's duration: press {keys} for timed first"
        ));
    }
}

/// The next preset duration up or down from `current`.
pub fn step_duration(current: u64, longer: bool) -> u64 {
    if longer {
        DURATIONS_S
            .iter()
            .copied()
            .find(|&d| d > current)
            .unwrap_or(DURATIONS_S[DURATIONS_S.len() - 1])
    } else {
        DURATIONS_S
            .iter()
            .rev()
            .copied()
            .find(|&d| d < current)
            .unwrap_or(DURATIONS_S[0])
    }
}

fn step(index: Option<usize>, len: usize, delta: isize) -> Option<usize> {
    if len == 0 {
        return None;
    }
    let from = index.unwrap_or(if delta < 0 { len } else { 0 });
    Some(from.saturating_add_signed(delta).min(len - 1))
}

fn move_by(app: &mut App, delta: isize) -> Vec<Action> {
    match app.view {
        View::Pending => {
            let to = step(app.selected_index(), app.pending.len(), delta);
            // Moved by the approver: no guard.
            app.selected = to.map(|i| app.pending[i].id());
            app.selected_by_itself_at = None;
        }
        View::History => {
            // Shown newest first: down is older.
            let len = app.history.len();
            let shown = app.history_selected_index().map(|i| len - 1 - i);
            app.history_selected = step(shown, len, delta).map(|d| len - 1 - d);
        }
        View::Grants => {
            let to = step(
                app.grants_selected_index(),
                app.live_grants().count(),
                delta,
            );
            app.grants_selected =
                to.and_then(|i| app.live_grants().nth(i).map(|g| g.decision_sha256));
        }
    }
    Vec::new()
}

/// Take a pending item out, with what a notice should add about the cursor. When it was the
/// selected one, the cursor goes to its neighbour (the next, else the previous), guarded, and
/// the notice names it.
fn remove(app: &mut App, index: usize) -> (PendingItem, String) {
    let item = app.pending.remove(index);
    let mut moved = String::new();
    if app.selected == Some(item.id()) {
        let next = index.min(app.pending.len().saturating_sub(1));
        app.selected = app.pending.get(next).map(PendingItem::id);
        app.selected_by_itself_at = app.selected.map(|_| app.clock_ms);
        if let Some(now) = app.selected_item() {
            moved = format!(" · cursor now on {}", now.reference);
        }
    }
    // A prompt or full view about a request that is gone closes; nothing is signed.
    let gone = item.id();
    let about_it = match &app.mode {
        Mode::DenyNote { request_id, .. } | Mode::ConfirmAlways { request_id } => {
            *request_id == gone
        }
        Mode::Full(full) => full.request_id == gone,
        Mode::Normal | Mode::Help => false,
    };
    if about_it {
        app.mode = Mode::Normal;
    }
    (item, moved)
}

/// Take request `index` out and sign `choice` for it.
fn sign(app: &mut App, index: usize, choice: Choice) -> Vec<Action> {
    let (item, moved) = remove(app, index);
    app.decided.insert(item.id());
    let what = choice.describe();
    app.set_notice(format!(
        "{what} {}: {} ({}){moved}",
        item.reference,
        item.summary.fit(NOTICE_COMMAND),
        escape::visible(&item.request.payload.agent),
    ));
    vec![Action::SignDecision {
        request: Box::new(item.request),
        choice,
    }]
}

fn on_tick(app: &mut App, now: u64) -> Vec<Action> {
    app.now = now;
    let mut actions = Vec::new();
    // Requests past their deadline can no longer be decided; drop them even if the relay's
    // `Expired` is late (or the relay is unreachable).
    let expired: Vec<RequestId> = app
        .pending
        .iter()
        .filter(|p| p.request.payload.expires_at <= now)
        .map(PendingItem::id)
        .collect();
    for id in expired {
        expire(app, id);
    }
    // No agent can use a decision after its request expired.
    app.undelivered.retain(|_, u| u.expires_at > now);
    if app.notice.as_ref().is_some_and(|n| n.at + NOTICE_S <= now) {
        app.notice = None;
    }
    let connected = matches!(app.relay, RelayState::Connected { .. });
    if connected && app.last_status_at.is_none_or(|t| t + STATUS_EVERY_S <= now) {
        actions.push(publish_status(app));
    }
    actions
}

fn publish_status(app: &mut App) -> Action {
    app.last_status_at = Some(app.now);
    Action::PublishStatus {
        revoked: app.revocations(),
    }
}

fn expire(app: &mut App, id: RequestId) {
    if let Some(i) = app.index_of(id) {
        let (item, moved) = remove(app, i);
        app.set_notice(format!(
            "expired {}: {} ({}){moved}",
            item.reference,
            item.summary.fit(NOTICE_COMMAND),
            escape::visible(&item.request.payload.agent)
        ));
    }
}

fn on_relay(app: &mut App, event: RelayEvent) -> Vec<Action> {
    match event {
        RelayEvent::State(state) => on_relay_state(app, state),
        RelayEvent::Request { request, risks } => on_request(app, *request, risks),
        RelayEvent::Invalid { reason } => {
            app.set_warning(format!(
                "dropped an invalid request: {}",
                escape::visible(&reason)
            ));
            Vec::new()
        }
        RelayEvent::Decided {
            request_id,
            approver,
            verdict,
            decision,
        } => on_decided(app, request_id, approver, verdict, decision),
        RelayEvent::Delivered {
            request_id,
            decision_sha256,
        } => {
            // Decided with this key (its log entry may still be on its way: the relay sends
            // `decided` and `delivered` back to back), and not recorded as delivered yet.
            let ours = app.decided.contains(&request_id)
                && app
                    .undelivered
                    .get(&request_id)
                    .is_none_or(|u| u.decision_sha256 == decision_sha256);
            if ours && !app.delivered.contains(&decision_sha256) {
                vec![Action::RecordDelivered {
                    request_id,
                    decision_sha256,
                }]
            } else {
                Vec::new()
            }
        }
        RelayEvent::Withdrawn { request_id } => {
            if let Some(i) = app.index_of(request_id) {
                let (item, moved) = remove(app, i);
                app.set_notice(format!(
                    "withdrawn by its agent {}: {} ({}){moved}",
                    item.reference,
                    item.summary.fit(NOTICE_COMMAND),
                    escape::visible(&item.request.payload.agent)
                ));
            }
            Vec::new()
        }
        RelayEvent::Expired { request_id } => {
            expire(app, request_id);
            Vec::new()
        }
        RelayEvent::Refused { request_id, reason } => on_refused(app, request_id, reason),
    }
}

/// The link to the relay came up or went down. Once connected: a fresh status at once, and
/// every decision not yet delivered.
fn on_relay_state(app: &mut App, state: RelayState) -> Vec<Action> {
    let now_connected = matches!(state, RelayState::Connected { .. });
    app.relay = state;
    if now_connected {
        // A fresh status at once: shims need one for reusable grants. And every
        // decision not yet delivered, in case the relay lost it or never had it.
        let mut actions = vec![publish_status(app)];
        let resend = app.to_resend();
        if !resend.is_empty() {
            actions.push(Action::Resend(resend));
        }
        actions
    } else {
        Vec::new()
    }
}

/// A request was decided (by this key on another console or by a scripted approve, or by
/// another approver): it leaves Pending, and this key's decision goes into the log.
fn on_decided(
    app: &mut App,
    request_id: RequestId,
    approver: String,
    verdict: Verdict,
    decision: Option<Box<Signed<Decision>>>,
) -> Vec<Action> {
    if app.decided.contains(&request_id) {
        return Vec::new(); // our own decision echoed back
    }
    let Some(i) = app.index_of(request_id) else {
        return Vec::new();
    };
    let (item, moved) = remove(app, i);
    let own = decision.filter(|d| {
        d.signer.fingerprint().as_str() == app.approver_fingerprint
            && d.payload.request_id == request_id
            && d.payload.request_sha256 == item.request.sha256
    });
    if let Some(decision) = own {
        app.decided.insert(request_id);
        let elsewhere = match app.console {
            Some(mine) if mine != decision.payload.console => {
                format!(
                    "on your console {}",
                    short_console(decision.payload.console)
                )
            }
            _ => "with assent-console".to_string(),
        };
        app.set_notice(format!(
            "{} {} {elsewhere}: {}{moved}",
            crate::sign::Choice::of(&decision.payload).describe(),
            item.reference,
            item.summary.fit(NOTICE_COMMAND)
        ));
        return vec![Action::RecordOwnDecision {
            request: Box::new(item.request),
            decision,
        }];
    }
    app.set_notice(format!(
        "decided by {} {}: {}{moved}",
        escape::visible(&approver),
        item.reference,
        item.summary.fit(NOTICE_COMMAND)
    ));
    vec![Action::RecordDecidedElsewhere {
        request: Box::new(item.request),
        approver,
        verdict,
    }]
}

/// The relay refused something this console sent.
fn on_refused(app: &mut App, request_id: Option<RequestId>, reason: String) -> Vec<Action> {
    if let Some(waiting) = request_id.and_then(|id| app.undelivered.get(&id)) {
        // Kept: sent again when the relay announces the request again (its agent
        // re-submits it after a relay restart), until it expires.
        let reference = waiting.reference.clone();
        app.set_warning(format!(
                "decision for {reference} not delivered yet, kept and sent again when the request is back: the relay said: {}",
                escape::visible(&reason)
            ));
        return Vec::new();
    }
    let what = request_id.map(|id| format!(" for {}", &id.to_hex()[..8]));
    app.set_warning(format!(
        "relay refused{}: {}",
        what.unwrap_or_default(),
        escape::visible(&reason)
    ));
    Vec::new()
}

/// The start of a console id, as the console shows it.
pub fn short_console(console: assent_protocol::ConsoleId) -> String {
    console.short()
}

fn on_request(app: &mut App, request: Signed<Request>, risks: Vec<Risk>) -> Vec<Action> {
    let id = request.payload.id;
    // Every request pending or decided here was remembered when it arrived, so this also
    // catches an id reused while the first request is still on screen.
    if let Some(why) = app.memory.conflict(id, &request.sha256) {
        app.set_warning(format!(
            "refused a request from {}: {why}",
            escape::visible(&request.payload.agent)
        ));
        return Vec::new();
    }
    if let Some(waiting) = app.undelivered.get(&id) {
        // Decided here and not yet delivered: the agent is back (after a relay restart, say)
        // and the relay announces the request again. Send the same decision again.
        if waiting.expires_at > app.now {
            return vec![Action::Resend(vec![waiting.decision.clone()])];
        }
        return Vec::new();
    }
    if app.decided.contains(&id) || app.index_of(id).is_some() {
        return Vec::new(); // the same bytes again: re-sent after a reconnect
    }
    if request.payload.expires_at <= app.now {
        return Vec::new();
    }
    if app.pending.len() >= MAX_PENDING {
        app.set_warning(format!(
            "refused a request from {}: {MAX_PENDING} requests are already waiting",
            escape::visible(&request.payload.agent)
        ));
        return Vec::new();
    }
    let remember = (!app.memory.shown(&request.sha256)).then(|| Shown::of(&request));
    app.memory.saw(id, request.sha256);
    let flags = app.memory.agent_flags(&request);
    let item = PendingItem::new(request, flags, risks);
    let r = &item.request.payload;
    let summary = format!(
        "assent: {} asks to run as {}",
        escape::visible(&r.agent),
        escape::visible(&r.run_as)
    );
    let body = format!("{} {}", item.reference, item.summary.fit(NOTIFY_COMMAND));
    if app.selected.is_none() {
        // Into an empty list: it came under the cursor by itself.
        app.selected = Some(id);
        app.selected_by_itself_at = Some(app.clock_ms);
    }
    app.pending.push(item);
    let mut actions: Vec<Action> = remember.map(Action::RememberShown).into_iter().collect();
    actions.extend([Action::Bell, Action::Notify { summary, body }]);
    actions
}

fn on_logged(app: &mut App, entry: Entry) -> Vec<Action> {
    app.apply_entry(&entry);
    match entry {
        Entry::Revoked { .. } => {
            app.set_notice("revoked; status published");
            vec![publish_status(app)]
        }

        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, NOW};
    use assent_protocol::Envelope;

    fn key(c: char) -> Event {
        Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }
    fn code(code: KeyCode) -> Event {
        Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn arrive(app: &mut App, request: Signed<Request>) -> Vec<Action> {
        update(
            app,
            Event::Relay(RelayEvent::Request {
                request: Box::new(request),
                risks: vec![],
            }),
        )
    }

    /// `n` requests, a second later, each drawn whole on the screen.
    fn app_with(n: u32) -> App {
        let mut app = App::new("alice", "SHA256:me", "ws://127.0.0.1:7447", NOW);
        for i in 0..n {
            let req = testing::signed(testing::request(&format!("cmd{i} --flag"), &[]), i, 1);
            arrive(&mut app, req);
        }
        settle(&mut app);
        app
    }

    /// Let the guard pass and mark every request as drawn whole (as the detail does).
    fn settle(app: &mut App) {
        let ms = app.clock_ms + crate::app::GUARD_MS;
        update(app, Event::Clock { ms });
        for item in &app.pending {
            item.shown_in_full.set(true);
        }
    }

    fn at(app: &App, i: usize) -> Option<RequestId> {
        app.pending.get(i).map(PendingItem::id)
    }

    fn signs(actions: &[Action]) -> Vec<&Choice> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::SignDecision { choice, .. } => Some(choice),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn new_request_rings_and_notifies_and_is_flagged_first_seen() {
        let mut app = app_with(0);
        let req = testing::signed(testing::request("ls", &[]), 1, 1);
        let actions = update(
            &mut app,
            Event::Relay(RelayEvent::Request {
                request: Box::new(req.clone()),
                risks: vec![Risk::RunAsRoot],
            }),
        );
        assert!(actions.contains(&Action::Bell));
        assert!(actions.contains(&Action::RememberShown(Shown::of(&req))));
        assert!(actions.iter().any(|a| matches!(a, Action::Notify { .. })));
        assert_eq!(app.pending.len(), 1);
        assert_eq!(
            app.pending[0].risks,
            vec![Risk::FirstSeenAgent, Risk::RunAsRoot]
        );
        // The same request again (relay reconnect) changes nothing and does not ring.
        assert!(arrive(&mut app, req).is_empty());
        assert_eq!(app.pending.len(), 1);
    }

    #[test]
    fn agents_approved_in_the_log_are_not_first_seen() {
        let mut app = app_with(0);
        let req = testing::signed(testing::request("ls", &[]), 1, 1);
        app.memory
            .approved("openclaw", req.signer.fingerprint().as_str());
        arrive(&mut app, req);
        assert!(!app.pending[0].first_seen());
        assert!(app.pending[0].risks.is_empty());
    }

    #[test]
    fn notifications_name_the_program_and_escape_the_agent() {
        let mut app = app_with(0);
        let mut r = testing::request("systemctl restart nginx", &[]);
        r.program = "/usr/bin/bash".into();
        r.agent = "open\u{202e}claw".into();
        let actions = arrive(&mut app, testing::signed(r, 1, 1));
        let Some(Action::Notify { summary, body }) =
            actions.iter().find(|a| matches!(a, Action::Notify { .. }))
        else {
            panic!("{actions:?}")
        };
        assert_eq!(summary, "assent: open\\u{202e}claw asks to run as root");
        assert!(
            body.ends_with(" [/usr/bin/bash] systemctl restart nginx"),
            "{body}"
        );
        assert!(body.starts_with(&app.pending[0].reference), "{body}");
    }

    #[test]
    fn j_k_and_arrows_move_within_bounds() {
        let mut app = app_with(3);
        assert_eq!(app.selected, at(&app, 0));
        update(&mut app, key('k'));
        assert_eq!(app.selected, at(&app, 0));
        update(&mut app, key('j'));
        update(&mut app, code(KeyCode::Down));
        update(&mut app, key('j'));
        assert_eq!(app.selected, at(&app, 2));
        update(&mut app, code(KeyCode::Up));
        assert_eq!(app.selected, at(&app, 1));
        update(&mut app, code(KeyCode::End));
        assert_eq!(app.selected, at(&app, 2));
        update(&mut app, code(KeyCode::Home));
        assert_eq!(app.selected, at(&app, 0));
    }

    #[test]
    fn a_approves_once_with_the_selected_request() {
        let mut app = app_with(2);
        update(&mut app, key('j'));
        let want = app.pending[1].request.clone();
        let actions = update(&mut app, key('a'));
        match &actions[..] {
            [Action::SignDecision { request, choice }] => {
                assert_eq!(**request, want);
                assert_eq!(*choice, Choice::approve(Grant::Once, None));
            }
            other => panic!("expected one signature, got {other:?}"),
        }
        assert_eq!(app.pending.len(), 1);
        assert_eq!(app.selected, at(&app, 0));
        assert!(app.decided.contains(&want.payload.id));
    }

    #[test]
    fn the_selection_follows_its_request_not_a_position() {
        let mut app = app_with(3);
        update(&mut app, key('j'));
        let chosen = app.selected;
        assert_eq!(chosen, at(&app, 1));
        // Requests arriving, expiring before it and being decided elsewhere leave it alone.
        arrive(
            &mut app,
            testing::signed(testing::request("late", &[]), 9, 1),
        );
        let (before, after) = (at(&app, 0).unwrap(), at(&app, 2).unwrap());
        update(
            &mut app,
            Event::Relay(RelayEvent::Expired { request_id: before }),
        );
        update(
            &mut app,
            Event::Relay(RelayEvent::Decided {
                request_id: after,
                approver: "bob".into(),
                verdict: Verdict::Approve,
                decision: None,
            }),
        );
        assert_eq!(app.selected, chosen);
        assert_eq!(app.selected_by_itself_at, None);
        assert_eq!(app.guard_left_ms(), 0);
    }

    #[test]
    fn a_request_that_slides_under_the_cursor_is_guarded() {
        let mut app = app_with(2);
        let second = at(&app, 1);
        // The selected request expires; its neighbour comes under the cursor by itself.
        let first = at(&app, 0).unwrap();
        update(
            &mut app,
            Event::Relay(RelayEvent::Expired { request_id: first }),
        );
        assert_eq!(app.selected, second);
        assert!(
            app.notice.as_ref().unwrap().text.contains("cursor now on"),
            "the move is said: {:?}",
            app.notice
        );
        assert!(signs(&update(&mut app, key('a'))).is_empty());
        assert!(
            app.notice
                .as_ref()
                .unwrap()
                .text
                .contains("came under the cursor"),
            "{:?}",
            app.notice
        );
        assert!(update(&mut app, key('d')).is_empty());
        assert_eq!(app.mode, Mode::Normal, "d waits too");
        let ms = app.clock_ms + crate::app::GUARD_MS;
        update(&mut app, Event::Clock { ms });
        assert_eq!(signs(&update(&mut app, key('a'))).len(), 1);
    }

    #[test]
    fn a_new_request_in_an_empty_list_is_not_approved_at_once() {
        // The attack: the approver is about to press a on an expiring request; it expires,
        // and the agent's next request (here: reusing the same id) lands in its place.
        let mut app = app_with(1);
        let before = app.pending[0].request.clone();
        update(
            &mut app,
            Event::Tick {
                now: before.payload.expires_at,
            },
        );
        assert!(app.pending.is_empty());
        let mut other = testing::request("bash -c evil", &[]);
        other.expires_at = before.payload.expires_at + 300;
        other.created_at = before.payload.expires_at;
        arrive(&mut app, testing::signed(other, 0, 1));
        assert!(app.pending.is_empty(), "a reused id is refused");
        assert!(
            app.notice.as_ref().unwrap().text.contains("already used"),
            "{:?}",
            app.notice
        );
        let mut fresh = testing::request("bash -c evil", &[]);
        fresh.expires_at = before.payload.expires_at + 300;
        arrive(&mut app, testing::signed(fresh, 7, 1));
        app.pending[0].shown_in_full.set(true);
        let actions = update(&mut app, key('a'));
        assert!(
            signs(&actions).is_empty(),
            "pressed as it arrived: {actions:?}"
        );
        let ms = app.clock_ms + 999;
        update(&mut app, Event::Clock { ms });
        assert!(signs(&update(&mut app, key('a'))).is_empty(), "999 ms");
        update(&mut app, Event::Clock { ms: ms + 1 });
        assert_eq!(signs(&update(&mut app, key('a'))).len(), 1, "after 1 s");
    }

    #[test]
    fn a_request_not_shown_whole_opens_the_full_view_first() {
        let mut app = app_with(1);
        app.pending[0].shown_in_full.set(false);
        let id = app.pending[0].id();
        assert!(signs(&update(&mut app, key('a'))).is_empty());
        let Mode::Full(full) = &app.mode else {
            panic!("{:?}", app.mode)
        };
        assert_eq!(full.request_id, id);
        // The full view was drawn: 40 lines, 10 a page, 10 read.
        let extent = crate::app::Extent {
            total: 40,
            page: 10,
            seen: 10,
            width: 80,
        };
        full.extent.set(extent);
        assert!(
            signs(&update(&mut app, key('a'))).is_empty(),
            "not read yet"
        );
        assert!(matches!(app.mode, Mode::Full(_)));
        assert!(app.notice.as_ref().unwrap().text.contains("10 of 40"));
        update(&mut app, key('j'));
        let Mode::Full(full) = &app.mode else {
            panic!()
        };
        assert_eq!(full.top, 1, "j scrolls");
        update(&mut app, key('G'));
        let Mode::Full(full) = &app.mode else {
            panic!()
        };
        assert_eq!(full.top, 30, "G goes to the last page");
        // Once the view has shown every line, a approves.
        app.pending[0].shown_in_full.set(true);
        let actions = update(&mut app, key('a'));
        assert_eq!(signs(&actions).len(), 1);
        assert_eq!(app.mode, Mode::Normal);
        assert!(app.pending.is_empty());
    }

    #[test]
    fn the_full_view_closes_when_its_request_goes() {
        let mut app = app_with(1);
        update(&mut app, key('f'));
        assert!(matches!(app.mode, Mode::Full(_)));
        update(&mut app, code(KeyCode::Esc));
        assert_eq!(app.mode, Mode::Normal);
        update(&mut app, code(KeyCode::Enter));
        let id = app.pending[0].id();
        update(
            &mut app,
            Event::Relay(RelayEvent::Expired { request_id: id }),
        );
        assert_eq!(app.mode, Mode::Normal);
    }

    #[test]
    fn a_reused_id_or_reference_is_refused_with_a_warning() {
        let mut app = app_with(1);
        let first = app.pending[0].request.clone();
        let reused = testing::signed(testing::request("bash -c evil", &[]), 0, 1);
        assert_eq!(reused.payload.id, first.payload.id);
        assert!(arrive(&mut app, reused.clone()).is_empty());
        assert_eq!(app.pending.len(), 1);
        assert_eq!(app.pending[0].request, first);
        assert!(app.notice.as_ref().unwrap().warn);
        // Also once the first one is decided, and after a restart (from the log).
        let mut restarted = App::new("alice", "SHA256:me", "ws://x", NOW);
        restarted.memory.saw(first.payload.id, first.sha256);
        assert!(arrive(&mut restarted, reused).is_empty());
        assert!(restarted.pending.is_empty());
    }

    #[test]
    fn the_pending_list_is_bounded() {
        let mut app = app_with(0);
        for i in 0..crate::app::MAX_PENDING as u32 + 3 {
            let mut r = testing::request("true", &[]);
            r.reason = format!("{i}");
            arrive(&mut app, testing::signed(r, i, 1));
        }
        assert_eq!(app.pending.len(), crate::app::MAX_PENDING);
        assert!(
            app.notice
                .as_ref()
                .unwrap()
                .text
                .contains("already waiting")
        );
    }

    #[test]
    fn a_with_nothing_pending_does_nothing() {
        let mut app = app_with(0);
        assert!(update(&mut app, key('a')).is_empty());
        assert!(update(&mut app, key('d')).is_empty());
        assert_eq!(app.mode, Mode::Normal);
    }

    #[test]
    fn t_cycles_and_plus_minus_only_in_timed() {
        let mut app = app_with(1);
        assert_eq!(app.pending[0].grant, Grant::Once);
        assert!(update(&mut app, key('+')).is_empty());
        assert_eq!(app.pending[0].ttl_s, 900, "+ does nothing for once");
        update(&mut app, key('t'));
        assert_eq!(app.pending[0].grant, Grant::Timed);
        update(&mut app, key('+'));
        assert_eq!(app.pending[0].ttl_s, 3600);
        update(&mut app, key('+'));
        update(&mut app, key('+'));
        update(&mut app, key('+'));
        assert_eq!(app.pending[0].ttl_s, 86400, "capped at 24h");
        for _ in 0..6 {
            update(&mut app, key('-'));
        }
        assert_eq!(app.pending[0].ttl_s, 300, "floored at 5m");
        update(&mut app, key('+'));
        let actions = update(&mut app, key('a'));
        assert_eq!(
            signs(&actions),
            vec![&Choice::approve(Grant::Timed, Some(900))]
        );

        let mut app = app_with(1);
        update(&mut app, key('t'));
        update(&mut app, key('t'));
        assert_eq!(app.pending[0].grant, Grant::Always);
        update(&mut app, key('-'));
        assert_eq!(app.pending[0].ttl_s, 900, "- does nothing for always");
        update(&mut app, key('t'));
        assert_eq!(app.pending[0].grant, Grant::Once);
    }

    #[test]
    fn durations_step_through_presets() {
        assert_eq!(step_duration(900, true), 3600);
        assert_eq!(step_duration(900, false), 300);
        assert_eq!(step_duration(7200, true), 28800, "from a requested 2h");
        assert_eq!(step_duration(7200, false), 3600);
    }

    #[test]
    fn always_needs_y() {
        let mut app = app_with(1);
        update(&mut app, key('t'));
        update(&mut app, key('t'));
        let actions = update(&mut app, key('a'));
        assert!(actions.is_empty(), "always asks first");
        assert!(matches!(app.mode, Mode::ConfirmAlways { .. }));
        assert!(
            update(&mut app, key('n')).is_empty(),
            "any other key cancels"
        );
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.pending.len(), 1);
        for other in [code(KeyCode::Enter), key('Y'), key('a'), code(KeyCode::Esc)] {
            update(&mut app, key('a'));
            assert!(signs(&update(&mut app, other)).is_empty());
            assert_eq!(app.mode, Mode::Normal);
        }
        update(&mut app, key('a'));
        let actions = update(&mut app, key('y'));
        assert_eq!(signs(&actions), vec![&Choice::approve(Grant::Always, None)]);
        assert!(app.pending.is_empty());
    }

    #[test]
    fn deny_takes_a_note_and_esc_cancels() {
        let mut app = app_with(1);
        update(&mut app, key('d'));
        assert!(matches!(app.mode, Mode::DenyNote { .. }));
        for c in "not nowq".chars() {
            assert!(
                update(&mut app, key(c)).is_empty(),
                "typing never signs, not even q"
            );
        }
        update(&mut app, code(KeyCode::Backspace));
        assert!(update(&mut app, code(KeyCode::Esc)).is_empty());
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.pending.len(), 1, "Esc cancels");

        update(&mut app, key('d'));
        for c in "freeze".chars() {
            update(&mut app, key(c));
        }
        let actions = update(&mut app, code(KeyCode::Enter));
        assert_eq!(signs(&actions), vec![&Choice::deny(Some("freeze".into()))]);
        assert!(app.pending.is_empty());
    }

    #[test]
    fn deny_note_refuses_control_characters() {
        let mut app = app_with(1);
        update(&mut app, key('d'));
        update(&mut app, key('\u{1b}'));
        update(
            &mut app,
            Event::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)),
        );
        update(&mut app, key('x'));
        assert_eq!(
            app.mode,
            Mode::DenyNote {
                request_id: app.pending[0].id(),
                note: "x".into()
            }
        );
    }

    #[test]
    fn deny_without_note() {
        let mut app = app_with(1);
        update(&mut app, key('d'));
        let actions = update(&mut app, code(KeyCode::Enter));
        assert_eq!(signs(&actions), vec![&Choice::deny(None)]);
    }

    #[test]
    fn quit_never_signs() {
        for setup in [vec![], vec![key('t')], vec![key('?')]] {
            let mut app = app_with(2);
            for ev in setup {
                update(&mut app, ev);
            }
            let actions = update(&mut app, key('q'));
            assert_eq!(actions, vec![Action::Quit]);
        }
        let mut app = app_with(1);
        let actions = update(
            &mut app,
            Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        );
        assert_eq!(actions, vec![Action::Quit]);
        assert_eq!(app.pending.len(), 1);
    }

    #[test]
    fn tab_cycles_views_and_pending_keys_do_nothing_elsewhere() {
        let mut app = app_with(1);
        update(&mut app, code(KeyCode::Tab));
        assert_eq!(app.view, View::History);
        assert!(update(&mut app, key('a')).is_empty());
        assert!(update(&mut app, key('d')).is_empty());
        update(&mut app, key('t'));
        assert_eq!(app.pending[0].grant, Grant::Once);
        update(&mut app, code(KeyCode::Tab));
        assert_eq!(app.view, View::Grants);
        update(&mut app, code(KeyCode::Tab));
        assert_eq!(app.view, View::Pending);
    }

    #[test]
    fn help_opens_and_closes() {
        let mut app = app_with(1);
        update(&mut app, key('?'));
        assert_eq!(app.mode, Mode::Help);
        assert!(
            update(&mut app, key('a')).is_empty(),
            "keys under help do nothing"
        );
        update(&mut app, key('?'));
        assert_eq!(app.mode, Mode::Normal);
        update(&mut app, key('?'));
        update(&mut app, code(KeyCode::Esc));
        assert_eq!(app.mode, Mode::Normal);
    }

    fn approve_timed_and_log(app: &mut App) -> Signed<assent_protocol::Decision> {
        update(app, key('t'));
        let actions = update(app, key('a'));
        let Action::SignDecision { request, choice } = &actions[0] else {
            panic!()
        };
        let key = testing::approver_key();
        let d = crate::sign::decision(
            request,
            choice,
            "alice",
            crate::testing::CONSOLE,
            app.now,
            120,
        );
        let d = Envelope::seal(&key, &d).open().unwrap();
        update(
            app,
            Event::Logged(Box::new(Entry::Decided {
                request: (**request).clone(),
                decision: d.clone(),
            })),
        );
        d
    }

    #[test]
    fn revoke_in_grants_publishes_status() {
        let mut app = app_with(1);
        app.approver_fingerprint = testing::approver_key().public().fingerprint().to_string();
        let d = approve_timed_and_log(&mut app);
        assert_eq!(app.history.len(), 1);
        assert_eq!(app.live_grants().count(), 1);
        assert!(update(&mut app, key('r')).is_empty(), "r only in Grants");
        update(&mut app, code(KeyCode::Tab));
        update(&mut app, code(KeyCode::Tab));
        let actions = update(&mut app, key('r'));
        assert_eq!(
            actions,
            vec![Action::Revoke {
                decision_sha256: d.sha256
            }]
        );
        let actions = update(
            &mut app,
            Event::Logged(Box::new(Entry::Revoked {
                at: NOW,
                decision_sha256: d.sha256,
            })),
        );
        assert_eq!(
            actions,
            vec![Action::PublishStatus {
                revoked: [assent_protocol::Revocation {
                    decision_sha256: d.sha256,
                    until: d.payload.not_after,
                }]
                .into_iter()
                .collect()
            }]
        );
        assert!(update(&mut app, key('r')).is_empty(), "already revoked");
    }

    fn resent(actions: &[Action]) -> Vec<Envelope> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Resend(d) => Some(d.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn a_decision_is_kept_and_resent_until_delivered() {
        let mut app = app_with(1);
        app.approver_fingerprint = testing::approver_key().public().fingerprint().to_string();
        let request = app.pending[0].request.clone();
        let d = approve_timed_and_log(&mut app);
        let row = |app: &App| app.history[0].delivery_note(app.now);
        assert_eq!(row(&app), Some("not yet delivered"));

        // The relay (restarted) does not hold the request yet: the decision is kept.
        update(
            &mut app,
            Event::Relay(RelayEvent::Refused {
                request_id: Some(request.payload.id),
                reason: "no request 0dadebc92ef5 (id x) is pending here: it expired, or this relay never had it".into(),
            }),
        );
        assert!(app.undelivered.contains_key(&request.payload.id));
        let notice = &app.notice.as_ref().unwrap().text;
        assert!(
            notice.contains("not delivered yet, kept and sent again"),
            "{notice}"
        );
        assert!(notice.contains("is pending here: it expired, or this relay never had it"));

        // Any reconnect sends it again, with a fresh status.
        let actions = update(
            &mut app,
            Event::Relay(RelayEvent::State(RelayState::Connected {
                url: "ws://relay".into(),
                embedded: false,
            })),
        );
        assert!(matches!(actions[0], Action::PublishStatus { .. }));
        assert_eq!(resent(&actions), vec![d.envelope.clone()]);

        // The agent comes back and the relay announces the request again: sent again, not
        // shown again.
        let actions = arrive(&mut app, request.clone());
        assert_eq!(resent(&actions), vec![d.envelope.clone()]);
        assert!(app.pending.is_empty());

        // Delivered: recorded, then no longer re-sent.
        let actions = update(
            &mut app,
            Event::Relay(RelayEvent::Delivered {
                request_id: request.payload.id,
                decision_sha256: d.sha256,
            }),
        );
        assert_eq!(
            actions,
            vec![Action::RecordDelivered {
                request_id: request.payload.id,
                decision_sha256: d.sha256
            }]
        );
        update(
            &mut app,
            Event::Logged(Box::new(Entry::Delivered {
                at: NOW,
                request_id: request.payload.id,
                decision_sha256: d.sha256,
            })),
        );
        assert_eq!(row(&app), None);
        assert!(resent(&arrive(&mut app, request)).is_empty());
        assert!(app.pending.is_empty());
    }

    #[test]
    fn an_undelivered_decision_is_dropped_when_its_request_expires() {
        let mut app = app_with(1);
        app.approver_fingerprint = testing::approver_key().public().fingerprint().to_string();
        let expires = app.pending[0].request.payload.expires_at;
        approve_timed_and_log(&mut app);
        update(&mut app, Event::Tick { now: expires });
        assert!(app.undelivered.is_empty());
        assert_eq!(
            app.history[0].delivery_note(app.now),
            Some("never delivered")
        );
        let actions = update(
            &mut app,
            Event::Relay(RelayEvent::State(RelayState::Connected {
                url: "ws://relay".into(),
                embedded: false,
            })),
        );
        assert!(resent(&actions).is_empty());
    }

    #[test]
    fn a_decision_signed_elsewhere_with_this_key_is_recorded_as_this_keys() {
        let mut app = app_with(1);
        let approver = testing::approver_key();
        app.approver_fingerprint = approver.public().fingerprint().to_string();
        app.console = Some(testing::CONSOLE);
        let request = app.pending[0].request.clone();
        // `assent-console approve` on this console's files: the same console id.
        let d = crate::sign::decision(
            &request,
            &Choice::approve(Grant::Timed, Some(900)),
            "alice",
            testing::CONSOLE,
            NOW,
            120,
        );
        let d = Envelope::seal(&approver, &d).open::<Decision>().unwrap();
        let actions = update(
            &mut app,
            Event::Relay(RelayEvent::Decided {
                request_id: request.payload.id,
                approver: "alice".into(),
                verdict: Verdict::Approve,
                decision: Some(Box::new(d.clone())),
            }),
        );
        let [Action::RecordOwnDecision { decision, .. }] = &actions[..] else {
            panic!("{actions:?}")
        };
        assert_eq!(decision.sha256, d.sha256);
        let notice = &app.notice.as_ref().unwrap().text;
        assert!(notice.starts_with("approved timed 15m"), "{notice}");
        // The relay says it was delivered before the log entry is back.
        let delivered = update(
            &mut app,
            Event::Relay(RelayEvent::Delivered {
                request_id: request.payload.id,
                decision_sha256: d.sha256,
            }),
        );
        assert_eq!(
            delivered,
            vec![Action::RecordDelivered {
                request_id: request.payload.id,
                decision_sha256: d.sha256
            }]
        );
        let entry = Entry::Decided {
            request: request.clone(),
            decision: d.clone(),
        };
        update(&mut app, Event::Logged(Box::new(entry.clone())));
        update(
            &mut app,
            Event::Logged(Box::new(Entry::Delivered {
                at: NOW,
                request_id: request.payload.id,
                decision_sha256: d.sha256,
            })),
        );
        // The scripted approve logged it too: History shows it once, delivered.
        update(&mut app, Event::Logged(Box::new(entry)));
        assert_eq!(app.history.len(), 1);
        assert!(!app.history[0].elsewhere);
        assert_eq!(app.history[0].delivery_note(app.now), None);
        assert!(app.undelivered.is_empty());
        assert_eq!(app.live_grants().count(), 1);
        // And it can be revoked here.
        update(&mut app, code(KeyCode::Tab));
        update(&mut app, code(KeyCode::Tab));
        assert_eq!(
            update(&mut app, key('r')),
            vec![Action::Revoke {
                decision_sha256: d.sha256
            }]
        );
    }

    #[test]
    fn a_grant_of_another_console_of_this_key_is_shown_but_revoked_there() {
        let mut app = app_with(1);
        let approver = testing::approver_key();
        app.approver_fingerprint = approver.public().fingerprint().to_string();
        app.console = Some(testing::CONSOLE);
        let request = app.pending[0].request.clone();
        let other = assent_protocol::ConsoleId([0xd1; 16]);
        let d = crate::sign::decision(
            &request,
            &Choice::approve(Grant::Always, None),
            "alice",
            other,
            NOW,
            120,
        );
        let d = Envelope::seal(&approver, &d).open::<Decision>().unwrap();
        update(
            &mut app,
            Event::Relay(RelayEvent::Decided {
                request_id: request.payload.id,
                approver: "alice".into(),
                verdict: Verdict::Approve,
                decision: Some(Box::new(d.clone())),
            }),
        );
        assert!(
            app.notice
                .as_ref()
                .unwrap()
                .text
                .contains("on your console d1d1d1d1")
        );
        update(
            &mut app,
            Event::Logged(Box::new(Entry::Decided {
                request,
                decision: d,
            })),
        );
        assert_eq!(app.live_grants().count(), 1);
        update(&mut app, code(KeyCode::Tab));
        update(&mut app, code(KeyCode::Tab));
        assert!(update(&mut app, key('r')).is_empty());
        let notice = &app.notice.as_ref().unwrap().text;
        assert!(notice.contains("revoke it there"), "{notice}");
    }

    #[test]
    fn an_old_log_with_a_decision_recorded_twice_shows_it_once() {
        // Before a console recognised its own key's decisions, a scripted approval was logged
        // by `approve` as a decision and by the running console as decided elsewhere.
        let mut app = app_with(0);
        let approver = testing::approver_key();
        app.approver_fingerprint = approver.public().fingerprint().to_string();
        let request = testing::signed(testing::request("id -un", &[]), 9, 1);
        let d = crate::sign::decision(
            &request,
            &Choice::approve(Grant::Timed, Some(900)),
            "alice",
            testing::CONSOLE,
            NOW,
            120,
        );
        let d = Envelope::seal(&approver, &d).open::<Decision>().unwrap();
        app.apply_entry(&Entry::DecidedElsewhere {
            at: NOW,
            request: request.clone(),
            approver: "alice".into(),
            verdict: Verdict::Approve,
        });
        app.apply_entry(&Entry::Decided {
            request: request.clone(),
            decision: d.clone(),
        });
        app.apply_entry(&Entry::DecidedElsewhere {
            at: NOW,
            request,
            approver: "alice".into(),
            verdict: Verdict::Approve,
        });
        assert_eq!(app.history.len(), 1);
        assert_eq!(app.history[0].decision_sha256, Some(d.sha256));
    }

    #[test]
    fn a_withdrawn_request_goes_with_a_notice() {
        let mut app = app_with(1);
        let id = app.pending[0].id();
        update(
            &mut app,
            Event::Relay(RelayEvent::Withdrawn { request_id: id }),
        );
        assert!(app.pending.is_empty());
        let notice = &app.notice.as_ref().unwrap().text;
        assert!(notice.starts_with("withdrawn by its agent"), "{notice}");
    }

    #[test]
    fn r_revokes_the_grant_under_the_cursor_even_when_another_ends() {
        let mut app = app_with(0);
        app.approver_fingerprint = testing::approver_key().public().fingerprint().to_string();
        let approver = testing::approver_key();
        let mut digests = Vec::new();
        for (n, ttl) in [(1u32, 600u64), (2, 7200)] {
            let request = testing::signed(testing::request(&format!("cmd{n}"), &[]), n, 1);
            let choice = Choice::approve(Grant::Timed, Some(ttl));
            let d = crate::sign::decision(
                &request,
                &choice,
                "alice",
                crate::testing::CONSOLE,
                NOW,
                120,
            );
            let d = Envelope::seal(&approver, &d).open().unwrap();
            digests.push(d.sha256);
            app.apply_entry(&Entry::Decided {
                request,
                decision: d,
            });
        }
        app.view = View::Grants;
        update(&mut app, code(KeyCode::Down));
        assert_eq!(app.grants_selected, Some(digests[1]));
        // The first grant ends; the selected one stays selected and is the one revoked.
        update(&mut app, Event::Tick { now: NOW + 601 });
        assert_eq!(
            update(&mut app, key('r')),
            vec![Action::Revoke {
                decision_sha256: digests[1]
            }]
        );
    }

    #[test]
    fn decided_elsewhere_and_expired_remove_with_notice() {
        let mut app = app_with(3);
        let id0 = app.pending[0].id();
        let id1 = app.pending[1].id();
        let id2 = app.pending[2].id();
        update(&mut app, key('j'));
        update(&mut app, key('j'));
        let actions = update(
            &mut app,
            Event::Relay(RelayEvent::Decided {
                request_id: id0,
                approver: "bob".into(),
                verdict: Verdict::Approve,
                decision: None,
            }),
        );
        assert!(
            matches!(&actions[..], [Action::RecordDecidedElsewhere { approver, .. }] if approver == "bob")
        );
        assert!(
            app.notice
                .as_ref()
                .unwrap()
                .text
                .starts_with("decided by bob "),
            "{:?}",
            app.notice
        );
        assert_eq!(
            app.selected,
            Some(id2),
            "selection stays on the same request"
        );
        update(
            &mut app,
            Event::Relay(RelayEvent::Expired { request_id: id1 }),
        );
        assert_eq!(app.pending.len(), 1);
        assert!(app.notice.as_ref().unwrap().text.starts_with("expired"));
    }

    #[test]
    fn prompt_closes_when_its_request_is_decided_elsewhere() {
        let mut app = app_with(1);
        let id = app.pending[0].id();
        update(&mut app, key('d'));
        update(
            &mut app,
            Event::Relay(RelayEvent::Decided {
                request_id: id,
                approver: "bob".into(),
                verdict: Verdict::Deny,
                decision: None,
            }),
        );
        assert_eq!(app.mode, Mode::Normal);
        assert!(signs(&update(&mut app, code(KeyCode::Enter))).is_empty());
    }

    #[test]
    fn ticks_expire_and_publish_status_every_30s() {
        let mut app = app_with(1);
        let actions = update(
            &mut app,
            Event::Relay(RelayEvent::State(RelayState::Connected {
                url: "ws://x".into(),
                embedded: true,
            })),
        );
        let nothing = || Action::PublishStatus {
            revoked: Revocations::new(),
        };
        assert_eq!(actions, vec![nothing()]);
        assert!(update(&mut app, Event::Tick { now: NOW + 29 }).is_empty());
        assert_eq!(
            update(&mut app, Event::Tick { now: NOW + 30 }),
            vec![nothing()]
        );
        let expires = app.pending[0].request.payload.expires_at;
        update(&mut app, Event::Tick { now: expires });
        assert!(app.pending.is_empty());
    }

    #[test]
    fn notifications_unavailable_is_said_once() {
        let mut app = app_with(0);
        update(
            &mut app,
            Event::Notifications(NotifyState::Unavailable("no D-Bus".into())),
        );
        assert!(
            app.notice
                .as_ref()
                .unwrap()
                .text
                .contains("notifications unavailable")
        );
        app.notice = None;
        update(
            &mut app,
            Event::Notifications(NotifyState::Unavailable("no D-Bus".into())),
        );
        assert!(app.notice.is_none());
    }

    #[test]
    fn key_release_events_are_ignored() {
        let mut app = app_with(1);
        let mut ev = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        ev.kind = KeyEventKind::Release;
        assert!(update(&mut app, Event::Key(ev)).is_empty());
    }
}
