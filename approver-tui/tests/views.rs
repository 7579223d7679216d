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

fn add(app: &mut App, request: Request, n: u32, first_seen: bool, risks: Vec<Risk>) {
    let signed = testing::signed(request, n, 1);
    update(
        app,
        Event::Relay(RelayEvent::Request {
            request: Box::new(signed),
            first_seen,
            risks,
        }),
    );
}

/// One ordinary request from an agent the approver has decided for before.
fn one_request() -> App {
    let mut app = new_app();
    app.known_agents
        .insert(testing::agent_key(1).public().fingerprint().to_string());
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
                Risk::WritableArgument("/home/openclaw/x".into()),
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
        if name != "first_seen" {
            app.known_agents
                .insert(testing::agent_key(1).public().fingerprint().to_string());
        }
        add(&mut app, request, 1, false, risks);
        insta::assert_snapshot!(format!("risk_{name}"), render(&app, 80, 24));
    }
}

#[test]
fn risk_flags_come_from_assess() {
    // The flags above are the ones `assess` produces for such requests.
    use assent_console::risk::{FileFacts, assess};
    struct NoFiles;
    impl FileFacts for NoFiles {
        fn requester_can_write(&self, _: &std::path::Path) -> Result<bool, String> {
            Ok(false)
        }
        fn world_writable(&self, _: &std::path::Path) -> Result<bool, String> {
            Ok(false)
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
    update(&mut app, key('a'));
    assert!(matches!(app.mode, Mode::ConfirmAlways { .. }));
    snap("always_confirmation", &app);
}

/// An app whose log holds approvals (once, timed, always), a denial and a request decided
/// elsewhere, with one grant revoked.
fn with_history() -> App {
    let mut app = new_app();
    let key = testing::approver_key();
    let mut decide = |n: u32, argv: &str, choice: Choice, at: u64| {
        let request = testing::signed(testing::request(argv, &[]), n, 1);
        let decision =
            sign::seal_decision(&key, &sign::decision(&request, &choice, "alice", at, 120));
        let entry = Entry::Decided {
            request,
            decision: decision.clone(),
        };
        app.apply_entry(&entry);
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
    ];
    r.program = "/usr/bin/ls".into();
    r.cwd = "/tmp/\x1b[31mred".into();
    r.reason = "please\x1b[1A\x1b[2Kapprove\u{200b}me\x7f".into();
    add(&mut app, r, 1, false, vec![]);
    for (w, h) in SIZES {
        let backend = render(&app, w, h);
        for cell in backend.buffer().content() {
            let s = cell.symbol();
            assert!(
                !s.chars()
                    .any(|c| c.is_control() || c == '\u{202e}' || c == '\u{200b}'),
                "raw control character reached the screen: {s:?}"
            );
        }
        insta::assert_snapshot!(format!("hostile_strings_{w}x{h}"), backend);
    }
}

#[test]
fn long_argv_end_is_never_hidden() {
    let mut app = new_app();
    let mut argv: Vec<String> = vec!["rsync".into(), "-a".into()];
    argv.extend((0..200).map(|i| format!("/srv/data/part-{i:03}")));
    argv.push("/mnt/backup/THE-END".into());
    let mut r = testing::request("rsync", &[]);
    r.argv = argv;
    add(&mut app, r, 1, false, vec![Risk::RunAsRoot]);
    let text = render(&app, 120, 40).to_string();
    assert!(
        text.contains("THE-END"),
        "the end of argv must stay visible:\n{text}"
    );
    assert!(
        text.contains("chars left out"),
        "the elision must be said:\n{text}"
    );
    insta::assert_snapshot!("long_argv_120x40", text);
    insta::assert_snapshot!("long_argv_80x24", render(&app, 80, 24));
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
