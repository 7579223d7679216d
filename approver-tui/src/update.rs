//! The pure heart of the console: `update(&mut App, Event) -> Vec<Action>`.
//!
//! No I/O happens here. Key presses, relay events, clock ticks and log entries come in as
//! [`Event`]s; what must happen in the world (sign and send a decision, publish a status, ring
//! the bell) goes out as [`Action`]s for the edge to carry out. Nothing is ever signed except as
//! the direct result of an approving or denying keystroke.

use assent_protocol::{Grant, Request, RequestId, Sha256Digest, Signed, Verdict};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::app::{
    App, DURATIONS_S, Mode, NOTICE_S, NotifyState, PendingItem, RelayState, STATUS_EVERY_S, View,
};
use crate::escape;
use crate::keys::{self, Command, PromptCommand, Scope};
use crate::log::Entry;
use crate::risk::Risk;
use crate::sign::Choice;

/// The longest deny note, in characters.
pub const MAX_NOTE: usize = 500;

#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    /// The clock, once a second.
    Tick {
        now: u64,
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
    /// A request whose signature verified, with the risk flags that need file-system facts.
    Request {
        request: Box<Signed<Request>>,
        first_seen: bool,
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
    },
    Expired {
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
    /// Record a request decided by another console.
    RecordDecidedElsewhere {
        request: Box<Signed<Request>>,
        approver: String,
        verdict: Verdict,
    },
    /// Sign and publish a status listing these revoked grants.
    PublishStatus {
        revoked: Vec<Sha256Digest>,
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
                    Some(i) => {
                        let item = remove(app, i);
                        sign(app, item, Choice::approve(Grant::Always, None))
                    }
                    None => Vec::new(),
                },
                _ => {
                    app.set_notice("approve always: cancelled, nothing signed");
                    Vec::new()
                }
            }
        }
        Mode::Help => match keys::command(&key) {
            Some(Command::Help) => {
                app.mode = Mode::Normal;
                Vec::new()
            }
            Some(Command::Quit) => vec![Action::Quit],
            _ if key.code == KeyCode::Esc => {
                app.mode = Mode::Normal;
                Vec::new()
            }
            _ => Vec::new(),
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
                Some(i) => {
                    let item = remove(app, i);
                    sign(app, item, Choice::deny(Some(note)))
                }
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
            if app.view != View::Pending =>
        {
            Vec::new()
        }
        Command::Approve => {
            let Some(item) = app.selected_item() else {
                return Vec::new();
            };
            match item.grant {
                Grant::Always => {
                    app.mode = Mode::ConfirmAlways {
                        request_id: item.id(),
                    };
                    Vec::new()
                }
                grant => {
                    let choice = Choice::approve(grant, Some(item.ttl_s));
                    let item = remove(app, app.selected);
                    sign(app, item, choice)
                }
            }
        }
        Command::Deny => {
            if let Some(item) = app.selected_item() {
                app.mode = Mode::DenyNote {
                    request_id: item.id(),
                    note: String::new(),
                };
            }
            Vec::new()
        }
        Command::CycleGrant => {
            if let Some(item) = app.selected_item_mut() {
                item.grant = match item.grant {
                    Grant::Once => Grant::Timed,
                    Grant::Timed => Grant::Always,
                    Grant::Always => Grant::Once,
                };
            }
            Vec::new()
        }
        Command::Longer | Command::Shorter => {
            let longer = command == Command::Longer;
            if let Some(item) = app.selected_item_mut() {
                if item.grant == Grant::Timed {
                    item.ttl_s = step_duration(item.ttl_s, longer);
                } else {
                    app.set_notice("+/- set a timed grant's duration: press t for timed first");
                }
            }
            Vec::new()
        }
        Command::Revoke => {
            if app.view != View::Grants {
                return Vec::new();
            }
            let Some(grant) = app.live_grants().nth(app.grants_selected) else {
                return Vec::new();
            };
            if grant.revoked_at.is_some() {
                app.set_notice("already revoked");
                return Vec::new();
            }
            vec![Action::Revoke {
                decision_sha256: grant.decision_sha256,
            }]
        }
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

fn move_by(app: &mut App, delta: isize) -> Vec<Action> {
    let (len, selected) = match app.view {
        View::Pending => (app.pending.len(), &mut app.selected),
        View::History => (app.history.len(), &mut app.history_selected),
        View::Grants => (app.live_grants().count(), &mut app.grants_selected),
    };
    *selected = if len == 0 {
        0
    } else {
        selected.saturating_add_signed(delta).min(len - 1)
    };
    Vec::new()
}

/// Take a pending item out, keeping the selection on a neighbour.
fn remove(app: &mut App, index: usize) -> PendingItem {
    let item = app.pending.remove(index);
    if index < app.selected || app.selected >= app.pending.len() {
        app.selected = app.selected.saturating_sub(1);
    }
    // A prompt about a request that is gone closes; nothing is signed.
    let gone = item.id();
    if matches!(&app.mode, Mode::DenyNote { request_id, .. } | Mode::ConfirmAlways { request_id } if *request_id == gone)
    {
        app.mode = Mode::Normal;
    }
    item
}

fn sign(app: &mut App, item: PendingItem, choice: Choice) -> Vec<Action> {
    app.decided.insert(item.id());
    let what = choice.describe();
    let command = escape::shell_join(&item.request.payload.argv);
    app.set_notice(format!(
        "{what}: {} ({})",
        escape::truncate(&command, 60),
        item.request.payload.agent
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
        revoked: app.revoked_digests(),
    }
}

fn expire(app: &mut App, id: RequestId) {
    if let Some(i) = app.index_of(id) {
        let item = remove(app, i);
        app.set_notice(format!(
            "expired: {} ({})",
            escape::truncate(&escape::shell_join(&item.request.payload.argv), 60),
            item.request.payload.agent
        ));
    }
}

fn on_relay(app: &mut App, event: RelayEvent) -> Vec<Action> {
    match event {
        RelayEvent::State(state) => {
            let now_connected = matches!(state, RelayState::Connected { .. });
            app.relay = state;
            if now_connected {
                // A fresh status at once: shims need one for reusable grants.
                vec![publish_status(app)]
            } else {
                Vec::new()
            }
        }
        RelayEvent::Request {
            request,
            first_seen,
            risks,
        } => {
            let id = request.payload.id;
            if app.decided.contains(&id) || app.index_of(id).is_some() {
                return Vec::new(); // re-sent after a reconnect
            }
            if request.payload.expires_at <= app.now {
                return Vec::new();
            }
            let unknown_key = !app
                .known_agents
                .contains(request.signer.fingerprint().as_str());
            let item = PendingItem::new(*request, first_seen || unknown_key, risks);
            let r = &item.request.payload;
            let summary = format!("assent: {} asks to run as {}", r.agent, r.run_as);
            let body = escape::truncate(&escape::shell_join(&r.argv), 200).into_owned();
            app.pending.push(item);
            vec![Action::Bell, Action::Notify { summary, body }]
        }
        RelayEvent::Invalid { reason } => {
            app.set_warning(format!("dropped an invalid request: {reason}"));
            Vec::new()
        }
        RelayEvent::Decided {
            request_id,
            approver,
            verdict,
        } => {
            if app.decided.contains(&request_id) {
                return Vec::new(); // our own decision echoed back
            }
            let Some(i) = app.index_of(request_id) else {
                return Vec::new();
            };
            let item = remove(app, i);
            app.set_notice(format!("decided by {}", escape::visible(&approver)));
            vec![Action::RecordDecidedElsewhere {
                request: Box::new(item.request),
                approver,
                verdict,
            }]
        }
        RelayEvent::Expired { request_id } => {
            expire(app, request_id);
            Vec::new()
        }
        RelayEvent::Refused { request_id, reason } => {
            let what = request_id.map(|id| format!(" for {}", &id.to_hex()[..8]));
            app.set_warning(format!(
                "relay refused{}: {}",
                what.unwrap_or_default(),
                escape::visible(&reason)
            ));
            Vec::new()
        }
    }
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

    fn app_with(n: u32) -> App {
        let mut app = App::new("alice", "SHA256:me", "ws://127.0.0.1:7447", NOW);
        for i in 0..n {
            let req = testing::signed(testing::request(&format!("cmd{i} --flag"), &[]), i, 1);
            update(
                &mut app,
                Event::Relay(RelayEvent::Request {
                    request: Box::new(req),
                    first_seen: false,
                    risks: vec![],
                }),
            );
        }
        app
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
                first_seen: false,
                risks: vec![Risk::RunAsRoot],
            }),
        );
        assert!(actions.contains(&Action::Bell));
        assert!(actions.iter().any(|a| matches!(a, Action::Notify { .. })));
        assert_eq!(app.pending.len(), 1);
        assert_eq!(
            app.pending[0].risks,
            vec![Risk::FirstSeenAgent, Risk::RunAsRoot]
        );
        // The same request again (relay reconnect) changes nothing and does not ring.
        let again = update(
            &mut app,
            Event::Relay(RelayEvent::Request {
                request: Box::new(req),
                first_seen: true,
                risks: vec![],
            }),
        );
        assert!(again.is_empty());
        assert_eq!(app.pending.len(), 1);
    }

    #[test]
    fn known_agents_are_not_first_seen() {
        let mut app = app_with(0);
        let req = testing::signed(testing::request("ls", &[]), 1, 1);
        app.known_agents
            .insert(req.signer.fingerprint().to_string());
        update(
            &mut app,
            Event::Relay(RelayEvent::Request {
                request: Box::new(req),
                first_seen: false,
                risks: vec![],
            }),
        );
        assert!(!app.pending[0].first_seen);
        assert!(app.pending[0].risks.is_empty());
    }

    #[test]
    fn j_k_and_arrows_move_within_bounds() {
        let mut app = app_with(3);
        assert_eq!(app.selected, 0);
        update(&mut app, key('k'));
        assert_eq!(app.selected, 0);
        update(&mut app, key('j'));
        update(&mut app, code(KeyCode::Down));
        update(&mut app, key('j'));
        assert_eq!(app.selected, 2);
        update(&mut app, code(KeyCode::Up));
        assert_eq!(app.selected, 1);
        update(&mut app, code(KeyCode::End));
        assert_eq!(app.selected, 2);
        update(&mut app, code(KeyCode::Home));
        assert_eq!(app.selected, 0);
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
        assert_eq!(app.selected, 0);
        assert!(app.decided.contains(&want.payload.id));
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
        let d = crate::sign::decision(request, choice, "alice", app.now, 120);
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
                revoked: vec![d.sha256]
            }]
        );
        assert!(update(&mut app, key('r')).is_empty(), "already revoked");
    }

    #[test]
    fn decided_elsewhere_and_expired_remove_with_notice() {
        let mut app = app_with(3);
        let id0 = app.pending[0].id();
        let id1 = app.pending[1].id();
        update(&mut app, key('j'));
        update(&mut app, key('j'));
        let actions = update(
            &mut app,
            Event::Relay(RelayEvent::Decided {
                request_id: id0,
                approver: "bob".into(),
                verdict: Verdict::Approve,
            }),
        );
        assert!(
            matches!(&actions[..], [Action::RecordDecidedElsewhere { approver, .. }] if approver == "bob")
        );
        assert_eq!(app.notice.as_ref().unwrap().text, "decided by bob");
        assert_eq!(app.selected, 1, "selection stays on the same request");
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
        assert_eq!(actions, vec![Action::PublishStatus { revoked: vec![] }]);
        assert!(update(&mut app, Event::Tick { now: NOW + 29 }).is_empty());
        assert_eq!(
            update(&mut app, Event::Tick { now: NOW + 30 }),
            vec![Action::PublishStatus { revoked: vec![] }]
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
