//! Snapshots of every view and state, at 80×24 and 120×40, with a fixed clock and seeded keys.

use assent_console::app::{App, Mode, NotifyState, RelayState, View};
use assent_console::log::Entry;
use assent_console::risk::Risk;
use assent_console::sign::{self, Choice};
use assent_console::testing::{self, NOW};
use assent_console::update::{Event, RelayEvent, update};
use assent_console::views;
use assent_protocol::{Grant, Request, Verdict};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

fn render(app: &App, w: u16, h: u16) -> TestBackend {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| views::draw(f, app)).unwrap();
    terminal.backend().clone()
}

fn snap(name: &str, app: &App) {
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), render(app, w, h));
    }
}

fn new_app() -> App {
    let mut app = App::new(
        "alice",
        testing::approver_key().public().fingerprint().as_str(),
        "ws://127.0.0.1:7447",
        NOW,
    );
    app.relay = RelayState::Connected {
        url: "ws://127.0.0.1:7447".into(),
        embedded: true,
    };
    app
}

fn key(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

/// A request from agent key 1 arrives; unless `first_seen`, that key was approved before.
fn add(app: &mut App, request: Request, n: u32, first_seen: bool, risks: Vec<Risk>) {
    let signed = testing::signed(request, n, 1);
    if !first_seen {
        app.memory
            .approved("openclaw", signed.signer.fingerprint().as_str());
    }
    update(
        app,
        Event::Relay(RelayEvent::Request {
            request: Box::new(signed),
            risks,
        }),
    );
    later(app);
}

/// A second later: keys act on what arrived.
fn later(app: &mut App) {
    let ms = app.clock_ms + 1000;
    update(app, Event::Clock { ms });
}

/// One ordinary request from an agent the approver has decided for before.
fn one_request() -> App {
    let mut app = new_app();
    add(
        &mut app,
        testing::request(
            "apt-get upgrade -y",
            &[("DEBIAN_FRONTEND", "noninteractive")],
        ),
        1,
        false,
        vec![Risk::RunAsRoot],
    );
    app
}

#[test]
fn empty_queue() {
    snap("empty_queue", &new_app());
}

#[test]
fn one_request_view() {
    snap("one_request", &one_request());
}

#[test]
fn many_requests_scrolled() {
    let mut app = new_app();
    for i in 0..50 {
        let mut r = testing::request(&format!("systemctl restart service-{i:02}"), &[]);
        r.expires_at = NOW + 60 + u64::from(i) * 7;
        add(&mut app, r, i, i % 7 == 0, vec![Risk::RunAsRoot]);
    }
    for _ in 0..30 {
        update(&mut app, key('j'));
    }
    snap("many_requests_scrolled", &app);
}

#[test]
fn each_risk_flag() {
    let cases: Vec<(&str, Request, Vec<Risk>)> = vec![
        ("first_seen", testing::request("id", &[]), vec![]),
        (
            "run_as_root",
            testing::request("id", &[]),
            vec![Risk::RunAsRoot],
        ),
        (
            "writable_program",
            {
                let mut r = testing::request("deploy", &[]);
                r.program = "/home/openclaw/bin/deploy".into();
                r
            },
            vec![Risk::RunAsRoot, Risk::WritableProgram],
        ),
        (
            "writable_argument",
            testing::request("cp /home/openclaw/x /etc/y", &[]),
            vec![
                Risk::RunAsRoot,
                Risk::WritableArguments(vec!["/home/openclaw/x".into()]),
            ],
        ),
        (
            "write_access_unknown",
            testing::request("ls /", &[]),
            vec![Risk::WriteAccessUnknown(
                "request is for host build-7".into(),
            )],
        ),
        (
            "inline_script",
            testing::request("sh -c curl|sh", &[]),
            vec![Risk::RunAsRoot, Risk::InlineScript("sh -c".into())],
        ),
        (
            "destructive",
            testing::request("rm -rf /var/lib/docker", &[]),
            vec![Risk::RunAsRoot, Risk::Destructive("rm -rf".into())],
        ),
        (
            "loader_env",
            testing::request("make install", &[("LD_PRELOAD", "/tmp/x.so")]),
            vec![Risk::RunAsRoot, Risk::LoaderEnv(vec!["LD_PRELOAD".into()])],
        ),
        (
            "world_writable_cwd",
            {
                let mut r = testing::request("make install", &[]);
                r.cwd = "/tmp".into();
                r
            },
            vec![Risk::RunAsRoot, Risk::WorldWritableCwd],
        ),
    ];
    for (name, request, risks) in cases {
        let mut app = new_app();
        add(&mut app, request, 1, name == "first_seen", risks);
        insta::assert_snapshot!(format!("risk_{name}"), render(&app, 80, 24));
    }
}

#[test]
fn risk_flags_come_from_assess() {
    // The flags above are the ones `assess` produces for such requests.
    use assent_console::risk::{HostFacts, assess};
    use std::path::{Path, PathBuf};
    struct NoFiles;
    impl HostFacts for NoFiles {
        fn requester_can_write(&self, _: &Path) -> Result<bool, String> {
            Ok(false)
        }
        fn world_writable(&self, _: &Path) -> Result<bool, String> {
            Ok(false)
        }
        fn symlink_on_path(&self, _: &Path) -> Result<Option<PathBuf>, String> {
            Ok(None)
        }
    }
    assert_eq!(
        assess(&testing::request("rm -rf /var/lib/docker", &[]), &NoFiles),
        vec![Risk::RunAsRoot, Risk::Destructive("rm -rf".into())]
    );
    assert_eq!(
        assess(&testing::request("sh -c curl|sh", &[]), &NoFiles),
        vec![Risk::RunAsRoot, Risk::InlineScript("sh -c".into())]
    );
}

#[test]
fn grant_override_with_durations() {
    let mut app = one_request();
    update(&mut app, key('t'));
    snap("grant_timed_15m", &app);
    update(&mut app, key('+'));
    update(&mut app, key('+'));
    insta::assert_snapshot!("grant_timed_8h", render(&app, 80, 24));
    update(&mut app, key('t'));
    insta::assert_snapshot!("grant_always", render(&app, 80, 24));
}

#[test]
fn requested_timed_grant_is_shown() {
    let mut app = new_app();
    let mut r = testing::request("certbot renew", &[]);
    r.grant = Grant::Timed;
    r.ttl_s = Some(7200);
    add(&mut app, r, 1, false, vec![Risk::RunAsRoot]);
    insta::assert_snapshot!("requested_timed_2h", render(&app, 80, 24));
}

#[test]
fn deny_note_prompt() {
    let mut app = one_request();
    update(&mut app, key('d'));
    for c in "not during the freeze".chars() {
        update(&mut app, key(c));
    }
    snap("deny_note_prompt", &app);
}

#[test]
fn always_confirmation() {
    let mut app = one_request();
    update(&mut app, key('t'));
    update(&mut app, key('t'));
    render(&app, 80, 24); // the request was on the screen, whole
    later(&mut app);
    update(&mut app, key('a'));
    assert!(matches!(app.mode, Mode::ConfirmAlways { .. }));
    snap("always_confirmation", &app);
}

/// An app whose log holds approvals (once, timed, always), a denial and a request decided
/// elsewhere, with one grant revoked. The relay delivered the decisions of requests 2 to 4;
/// request 1 expired before its decision was delivered, and request 5's is on its way.
fn with_history() -> App {
    let mut app = new_app();
    let key = testing::approver_key();
    let mut decide = |n: u32, argv: &str, choice: Choice, at: u64| {
        let mut request = testing::request(argv, &[]);
        request.created_at = at - 20;
        request.expires_at = at + 280;
        if n == 5 {
            request.expires_at = NOW + 280;
        }
        let request = testing::signed(request, n, 1);
        let request_id = request.payload.id;
        let decision = sign::seal_decision(
            &key,
            &sign::decision(&request, &choice, "alice", testing::CONSOLE, at, 120),
        );
        let entry = Entry::Decided {
            request,
            decision: decision.clone(),
        };
        app.apply_entry(&entry);
        if (2..=4).contains(&n) {
            app.apply_entry(&Entry::Delivered {
                at: at + 1,
                request_id,
                decision_sha256: decision.sha256,
            });
        }
        decision.sha256
    };
    decide(
        1,
        "apt-get upgrade",
        Choice::approve(Grant::Once, None),
        NOW - 3600,
    );
    decide(
        2,
        "systemctl restart nginx",
        Choice::approve(Grant::Timed, Some(8 * 3600)),
        NOW - 1800,
    );
    let always = decide(
        3,
        "journalctl -u nginx",
        Choice::approve(Grant::Always, None),
        NOW - 900,
    );
    decide(4, "rm -rf /", Choice::deny(Some("no".into())), NOW - 600);
    decide(
        5,
        "docker system prune -af",
        Choice::approve(Grant::Timed, Some(3600)),
        NOW - 300,
    );
    app.apply_entry(&Entry::Revoked {
        at: NOW - 60,
        decision_sha256: always,
    });
    app.apply_entry(&Entry::DecidedElsewhere {
        at: NOW - 30,
        request: testing::signed(testing::request("reboot", &[]), 6, 1),
        approver: "bob".into(),
        verdict: Verdict::Deny,
    });
    app
}

#[test]
fn history_view() {
    let mut app = with_history();
    app.view = View::History;
    snap("history", &app);
}

#[test]
fn empty_history_and_grants() {
    let mut app = new_app();
    app.view = View::History;
    insta::assert_snapshot!("history_empty", render(&app, 80, 24));
    app.view = View::Grants;
    insta::assert_snapshot!("grants_empty", render(&app, 80, 24));
}

#[test]
fn grants_view() {
    let mut app = with_history();
    app.view = View::Grants;
    update(&mut app, key('j'));
    snap("grants", &app);
}

#[test]
fn help_view() {
    let mut app = one_request();
    update(&mut app, key('?'));
    snap("help", &app);
}

#[test]
fn relay_disconnected() {
    let mut app = one_request();
    app.relay = RelayState::Disconnected {
        url: "wss://relay.example:7447".into(),
        error: "cannot connect to the relay: connection refused".into(),
        retry_in_s: 4,
    };
    snap("relay_disconnected", &app);
    app.relay = RelayState::Connecting {
        url: "wss://relay.example:7447".into(),
        attempt: 3,
    };
    insta::assert_snapshot!("relay_connecting", render(&app, 80, 24));
}

#[test]
fn relay_errors_are_shown_whole() {
    let mut app = one_request();
    app.relay = RelayState::Misconfigured {
        url: "wss://relay.example:7447".into(),
        error: "cannot use the relay: the certificate of wss://relay.example:7447 is not signed by a CA this host trusts (invalid peer certificate: UnknownIssuer); set relay_ca (in agent.toml or console.toml) or ASSENT_RELAY_CA to the PEM file of the CA that signed it".into(),
    };
    snap("relay_misconfigured", &app);
    let text = text_of(&render(&app, 80, 24));
    for part in ["UnknownIssuer", "ASSENT_RELAY_CA", "the CA that signed it"] {
        assert!(text.contains(part), "{part} is on screen:\n{text}");
    }
    app.relay = RelayState::Misconfigured {
        url: "ws://relay.example:7447".into(),
        error: "the relay refused the login: key SHA256:PZvbJ5i7bDrw8d4KpEPrcW3ItHLAOtrZljhz70gbT0c is not listed as an [[approver]] in this relay's config".into(),
    };
    let text = text_of(&render(&app, 80, 24));
    assert!(
        text.contains("[[approver]] in this relay's config"),
        "{text}"
    );
    insta::assert_snapshot!("relay_login_refused", render(&app, 80, 24));
}

#[test]
fn grants_of_another_console_of_this_key_are_marked() {
    let mut app = with_history();
    app.console = Some(assent_protocol::ConsoleId([0xd1; 16]));
    app.view = View::Grants;
    insta::assert_snapshot!("grants_another_console", render(&app, 120, 40));
    update(&mut app, key('r'));
    let text = text_of(&render(&app, 120, 40));
    assert!(text.contains("revoke it there"), "{text}");
}

#[test]
fn notifications_unavailable() {
    let mut app = one_request();
    update(
        &mut app,
        Event::Notifications(NotifyState::Unavailable("no D-Bus session".into())),
    );
    snap("notifications_unavailable", &app);
}

#[test]
fn decided_elsewhere_notice() {
    let mut app = one_request();
    add(
        &mut app,
        testing::request("ls /root", &[]),
        2,
        false,
        vec![],
    );
    let id = app.pending[0].id();
    update(
        &mut app,
        Event::Relay(RelayEvent::Decided {
            request_id: id,
            approver: "bob".into(),
            verdict: Verdict::Approve,
            decision: None,
        }),
    );
    insta::assert_snapshot!("decided_elsewhere", render(&app, 80, 24));
}

#[test]
fn hostile_strings_are_escaped() {
    let mut app = new_app();
    let mut r = testing::request("x", &[("EVIL", "\x1b]0;pwned\x07")]);
    r.argv = vec![
        "ls".into(),
        "\x1b[2J\x1b[Happroved\r".into(),
        "safe\u{202e}txt.exe".into(),
        "two\nlines".into(),
        "back\\slash".into(),
        "vs\u{e0100}16".into(),
        "no\u{a0}break".into(),
        "tag\u{e0041}".into(),
    ];
    r.agent = "open\u{2003}claw\u{200b}".into();
    r.host = "mini\u{3000}local".into();
    r.program = "/usr/bin/ls".into();
    r.cwd = "/tmp/\x1b[31mred".into();
    r.reason = "please\x1b[1A\x1b[2Kapprove\u{200b}me\x7f".into();
    add(&mut app, r, 1, false, vec![]);
    for (w, h) in SIZES {
        let backend = render(&app, w, h);
        for cell in backend.buffer().content() {
            let s = cell.symbol();
            assert!(
                !s.chars().any(assent_console::escape::needs_escape),
                "raw control or invisible character reached the screen: {s:?}"
            );
        }
        insta::assert_snapshot!(format!("hostile_strings_{w}x{h}"), backend);
    }
}

/// `tar` with about 20 KB of arguments, one of them an exec hidden in the middle.
fn huge_argv_request() -> Request {
    let mut argv: Vec<String> = vec!["tar".into(), "-cf".into(), "/var/backups/logs.tar".into()];
    argv.extend((0..380).map(|i| format!("/var/log/app/service-{i:04}.log")));
    argv.push("--checkpoint=1".into());
    argv.push("--checkpoint-action=exec=sh /tmp/x".into());
    argv.extend((380..760).map(|i| format!("/var/log/app/service-{i:04}.log")));
    argv.push("/var/log/THE-END".into());
    let mut r = testing::request("tar", &[("TAR_OPTIONS", "--numeric-owner")]);
    r.argv = argv;
    r
}

fn text_of(backend: &TestBackend) -> String {
    let buffer = backend.buffer();
    let w = buffer.area.width as usize;
    buffer
        .content()
        .chunks(w)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>() + "\n")
        .collect()
}

/// Every view, prompt and notice that quotes a request escapes it.
#[test]
fn hostile_strings_are_escaped_in_every_view() {
    let raw = |backend: &TestBackend| {
        backend
            .buffer()
            .content()
            .iter()
            .flat_map(|c| c.symbol().chars().collect::<Vec<_>>())
            .find(|c| assent_console::escape::needs_escape(*c))
    };
    let hostile = "x\u{e0100}\u{a0}\u{202e}\u{200b}\u{3164}\u{ad}\u{2028}\x1b[2J";
    // Names may not hold control characters; everything else may.
    let name = hostile.trim_end_matches("\x1b[2J");
    let mut r = testing::request("ls", &[("K", hostile)]);
    r.agent = format!("agent{name}");
    r.host = format!("host{name}");
    r.user = format!("user{name}");
    r.run_as = format!("root{name}");
    r.program = format!("/usr/bin/{hostile}");
    r.argv = vec![hostile.into(), hostile.into()];
    r.cwd = format!("/tmp/{hostile}");
    r.reason = hostile.into();
    r.grant = Grant::Timed;
    r.ttl_s = Some(3600);
    let mut app = new_app();
    app.approver_fingerprint = testing::approver_key().public().fingerprint().to_string();
    add(
        &mut app,
        r.clone(),
        1,
        true,
        vec![
            Risk::WillBeRefused(hostile.into()),
            Risk::Destructive(hostile.into()),
        ],
    );
    let mut screens = vec![render(&app, 80, 24), render(&app, 120, 40)];
    update(&mut app, key('f'));
    screens.push(render(&app, 80, 24));
    update(
        &mut app,
        Event::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)),
    );
    update(&mut app, key('d'));
    screens.push(render(&app, 80, 24));
    update(
        &mut app,
        Event::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)),
    );
    update(&mut app, key('t')); // asked timed: now always
    update(&mut app, key('a'));
    assert!(
        matches!(app.mode, Mode::ConfirmAlways { .. }),
        "{:?}",
        app.mode
    );
    screens.push(render(&app, 80, 24)); // the always confirmation
    let actions = update(&mut app, key('y'));
    screens.push(render(&app, 80, 24)); // the notice
    let assent_console::update::Action::SignDecision { request, choice } = &actions[0] else {
        panic!("{actions:?}")
    };
    let decision = sign::seal_decision(
        &testing::approver_key(),
        &sign::decision(request, choice, "alice", testing::CONSOLE, NOW, 120),
    );
    app.apply_entry(&Entry::Decided {
        request: (**request).clone(),
        decision,
    });
    app.view = View::History;
    screens.push(render(&app, 80, 24));
    screens.push(render(&app, 120, 40));
    app.view = View::Grants;
    screens.push(render(&app, 80, 24));
    screens.push(render(&app, 120, 40));
    for (i, screen) in screens.iter().enumerate() {
        assert_eq!(raw(screen), None, "screen {i}:\n{}", text_of(screen));
    }
}

#[test]
fn a_huge_argv_keeps_the_pinned_fields_on_screen() {
    let mut app = new_app();
    let r = huge_argv_request();
    let bytes: usize = r.argv.iter().map(|a| a.len() + 1).sum();
    assert!(bytes > 20_000, "{bytes} bytes of argv");
    add(&mut app, r, 1, false, vec![Risk::RunAsRoot]);
    for (w, h) in [(80, 24), (60, 20)] {
        let backend = render(&app, w, h);
        let text = text_of(&backend);
        for label in [
            "Agent", "Key", "Run", "Program", "Cwd", "Env", "Grant", "Expires",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("│{label}"))),
                "{label} is not on screen at {w}x{h}:\n{text}"
            );
        }
        assert!(text.contains("approve as once"), "{text}");
        assert!(
            text.contains("▼ f Enter: full view — not shown: "),
            "the cut is said:\n{text}"
        );
        assert!(text.contains("Argv +"), "{text}");

        // Argv wraps between arguments: every argument row starts a whole argument or is
        // marked as carrying one on.
        for line in text
            .lines()
            .filter(|l| l.contains("/var/log/app/") && !l.contains('▶'))
        {
            let value = line.chars().skip(10).collect::<String>();
            let marked = line.chars().nth(8) == Some('↪');
            assert!(
                marked || value.starts_with("/var/log/app/service-") || value.starts_with("tar "),
                "a row starts inside an argument without a mark: {line}"
            );
        }
        insta::assert_snapshot!(format!("huge_argv_{w}x{h}"), backend);
        assert!(
            !app.pending[0].shown_in_full.get(),
            "a cut detail does not count as shown"
        );
    }
    // Every size below 80x24 that still draws keeps the pinned fields reachable: `f` shows
    // them all (see the full view test); `a` goes there first.
    later(&mut app);
    update(&mut app, key('a'));
    assert!(matches!(app.mode, Mode::Full(_)), "{:?}", app.mode);
}

#[test]
fn the_full_view_scrolls_through_everything() {
    let mut app = new_app();
    add(
        &mut app,
        huge_argv_request(),
        1,
        false,
        vec![Risk::RunAsRoot],
    );
    later(&mut app);
    update(&mut app, key('f'));
    let top = render(&app, 80, 24);
    let top_text = text_of(&top);
    assert!(top_text.contains("full view, lines 1–"), "{top_text}");
    assert!(
        top_text.contains("Grant") && top_text.contains("Expires"),
        "{top_text}"
    );
    insta::assert_snapshot!("full_view_top_80x24", top);
    // The middle, read page by page: the hidden exec is there, whole or marked as cut.
    let mut middle = String::new();
    for _ in 0..200 {
        update(
            &mut app,
            Event::Key(KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE)),
        );
        let backend = render(&app, 80, 24);
        let text = text_of(&backend);
        if text.contains("--checkpoint-action") && middle.is_empty() {
            middle = text.clone();
            insta::assert_snapshot!("full_view_middle_80x24", backend);
        }
        if text.contains("all ") && text.contains("lines shown") {
            break;
        }
    }
    assert!(
        middle.contains("'--checkpoint-action=exec=sh /tmp/x'"),
        "{middle}"
    );
    let end = render(&app, 80, 24);
    let end_text = text_of(&end);
    assert!(end_text.contains("/var/log/THE-END"), "{end_text}");
    assert!(end_text.contains("Reason"), "{end_text}");
    insta::assert_snapshot!("full_view_end_80x24", end);
    assert!(app.pending[0].shown_in_full.get());
    // Read to the end: a approves.
    let actions = update(&mut app, key('a'));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, assent_console::update::Action::SignDecision { .. })),
        "{actions:?}"
    );
}

#[test]
fn jumping_to_the_end_is_not_reading_it() {
    let mut app = new_app();
    add(&mut app, huge_argv_request(), 1, false, vec![]);
    later(&mut app);
    update(&mut app, key('f'));
    render(&app, 80, 24);
    update(&mut app, key('G'));
    let text = text_of(&render(&app, 80, 24));
    assert!(text.contains("/var/log/THE-END"), "{text}");
    assert!(
        !app.pending[0].shown_in_full.get(),
        "the middle was skipped"
    );
    assert!(update(&mut app, key('a')).is_empty());
    assert!(matches!(app.mode, Mode::Full(_)));
}

#[test]
fn argv0_that_does_not_name_the_program_shows_the_program() {
    let mut app = new_app();
    let mut r = testing::request("systemctl restart nginx", &[]);
    r.program = "/usr/bin/bash".into();
    add(
        &mut app,
        r,
        1,
        false,
        vec![
            Risk::Argv0Differs {
                argv0: "systemctl".into(),
                program: "/usr/bin/bash".into(),
            },
            Risk::RunAsRoot,
        ],
    );
    let text = text_of(&render(&app, 80, 24));
    let row = text.lines().find(|l| l.contains('▶')).unwrap();
    assert!(row.contains("[/usr/bin/bash] systemctl"), "{row}");
    assert!(row.contains("argv0-differs"), "{row}");
    assert!(text.contains("│Program  /usr/bin/bash"), "{text}");
    snap("argv0_differs", &app);
}

#[test]
fn refusals_and_new_keys_for_known_names() {
    let mut app = new_app();
    add(
        &mut app,
        testing::request("apt-get update", &[]),
        1,
        true,
        vec![
            Risk::WillBeRefused(
                "openclaw is not a [[requester]] in /etc/assent/elevator.toml".into(),
            ),
            Risk::RunAsRoot,
        ],
    );
    let other = testing::agent_key(1).public().fingerprint().to_string();
    app.memory.approved("openclaw", "SHA256:another-key");
    let _ = other;
    add(&mut app, testing::request("id", &[]), 2, true, vec![]);
    update(&mut app, key('j'));
    insta::assert_snapshot!("name_new_key_80x24", render(&app, 80, 24));
    update(&mut app, key('k'));
    insta::assert_snapshot!("will_be_refused_80x24", render(&app, 80, 24));
}

#[test]
fn a_request_under_the_cursor_by_itself_says_keys_wait() {
    let mut app = new_app();
    let signed = testing::signed(testing::request("apt-get upgrade -y", &[]), 1, 1);
    app.memory
        .approved("openclaw", signed.signer.fingerprint().as_str());
    update(
        &mut app,
        Event::Relay(RelayEvent::Request {
            request: Box::new(signed),
            risks: vec![Risk::RunAsRoot],
        }),
    );
    let backend = render(&app, 80, 24);
    assert!(
        text_of(&backend).contains(assent_console::views::pending::GUARD_TITLE),
        "{}",
        text_of(&backend)
    );
    update(&mut app, key('a'));
    insta::assert_snapshot!("guard_80x24", render(&app, 80, 24));
    later(&mut app);
    assert!(!text_of(&render(&app, 80, 24)).contains("wait 1 s"));
}

#[test]
fn a_detail_under_the_help_or_a_prompt_is_not_shown() {
    let mut app = one_request();
    update(&mut app, key('?'));
    render(&app, 120, 40);
    assert!(!app.pending[0].shown_in_full.get(), "covered by the help");
    update(&mut app, key('?'));
    update(&mut app, key('d'));
    render(&app, 120, 40);
    assert!(!app.pending[0].shown_in_full.get(), "covered by the prompt");
    update(
        &mut app,
        Event::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)),
    );
    render(&app, 120, 40);
    assert!(app.pending[0].shown_in_full.get());
}

#[test]
fn a_creation_time_in_the_future_is_said() {
    let mut app = new_app();
    let mut r = testing::request("ls", &[]);
    r.created_at = NOW + 3600;
    r.expires_at = NOW + 3900;
    add(&mut app, r, 1, false, vec![]);
    let text = text_of(&render(&app, 80, 24));
    assert!(
        text.contains("(created 1:00:00 in the future: check the clocks)"),
        "{text}"
    );
}

#[test]
fn tiny_terminal_degrades() {
    let app = one_request();
    insta::assert_snapshot!("tiny_30x8", render(&app, 30, 8));
    insta::assert_snapshot!("small_60x16", render(&app, 60, 16));
}

#[test]
fn no_color_uses_no_colours() {
    let mut app = one_request();
    app.color = false;
    let backend = render(&app, 80, 24);
    for cell in backend.buffer().content() {
        assert!(
            matches!(cell.fg, Color::Reset) && matches!(cell.bg, Color::Reset),
            "NO_COLOR: cell {:?} has colour",
            cell.symbol()
        );
    }
    app.color = true;
    let coloured = render(&app, 80, 24);
    assert!(
        coloured
            .buffer()
            .content()
            .iter()
            .any(|c| c.fg != Color::Reset)
    );
}
