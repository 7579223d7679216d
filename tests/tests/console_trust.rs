//! The approver sees what runs, end to end (SPEC §13.1): the real `assent-console` in tmux,
//! with requests signed by an agent that talks to the relay itself, as a hostile agent can.
//! Each test runs an attack that worked against v1.
//!
//! Every wait polls the screen against a deadline; nothing sleeps to let something happen.

use std::time::{Duration, Instant};

use assent_protocol::Verdict;
use assent_tests::console::ConsoleWorld;
use assent_tests::grants::RequestBuilder;
use assent_tests::users::TestUser;

/// A request from the agent test user, run in the sandbox's work directory.
fn request(world: &ConsoleWorld, program: &str, argv: &[&str]) -> RequestBuilder {
    RequestBuilder::new(program, argv)
        .requester(&TestUser::agent())
        .agent("e2e-signed")
        .cwd(world.sandbox.work_dir())
}

fn selected_row(screen: &str) -> &str {
    screen
        .lines()
        .find(|l| l.contains('▶'))
        .unwrap_or_else(|| panic!("no selected row:\n{screen}"))
}

/// Deny the one pending request showing `command` with d, Enter.
fn deny(world: &ConsoleWorld, command: &str) {
    world.wait_ready(command);
    world.tmux.keys(&["d"]);
    world
        .tmux
        .wait_for("the deny prompt", |s| s.contains("Note (optional):"));
    world.tmux.keys(&["Enter"]);
    world
        .tmux
        .wait_for("the denial", |s| s.contains(" Pending 0 "));
}

#[test]
fn a_program_argv0_does_not_name_is_shown_and_flagged() {
    let world = ConsoleWorld::new();
    let mut agent = world.agent(1);
    // v1 showed only argv: `systemctl restart nginx`, while bash ran the agent's `restart`.
    let signed =
        request(&world, "/usr/bin/bash", &["systemctl", "restart", "nginx"]).sign(agent.key());
    agent.submit(&signed.envelope);
    let screen = world.wait_pending("systemctl restart nginx");
    eprintln!("--- argv0 differs ---\n{screen}");
    let row = selected_row(&screen);
    assert!(
        row.contains("[/usr/bin/bash] systemctl restart nginx"),
        "the row names the program:\n{screen}"
    );
    assert!(row.contains("argv0-differs"), "{screen}");
    assert!(screen.contains("│Program  /usr/bin/bash"), "{screen}");
    assert!(
        screen.contains("argv0-differs: runs /usr/bin/bash, which argv[0] systemctl does not"),
        "{screen}"
    );
    // The reference is the start of the signed bytes' digest, not the agent's id.
    let reference = &signed.sha256.to_hex()[..12];
    assert!(screen.contains(&format!("Request {reference}")), "{screen}");
    deny(&world, "systemctl restart nginx");
    // History names the program too.
    world.tmux.keys(&["Tab"]);
    let history = world
        .tmux
        .wait_for("History", |s| s.contains("History (1)"));
    assert!(
        history.contains(&format!("{reference} denied")),
        "{history}"
    );
    assert!(history.contains("[/usr/bin/bash] systemctl"), "{history}");
}

#[test]
fn a_huge_argv_at_80x24_keeps_grant_and_expires_and_a_opens_the_full_view_first() {
    let world = ConsoleWorld::with_size(80, 24);
    let mut agent = world.agent(2);
    let mut argv: Vec<String> = vec!["tar".into(), "-cf".into(), "/tmp/logs.tar".into()];
    argv.extend((0..350).map(|i| format!("/var/log/app/service-{i:04}.log")));
    argv.push("--checkpoint=1".into());
    argv.push("--checkpoint-action=exec=sh /tmp/x".into());
    argv.extend((350..700).map(|i| format!("/var/log/app/service-{i:04}.log")));
    let bytes: usize = argv.iter().map(|a| a.len() + 1).sum();
    assert!(bytes > 20_000, "{bytes}");
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let signed = request(&world, "/usr/bin/tar", &argv).sign(agent.key());
    agent.submit(&signed.envelope);

    let screen = world.wait_ready("tar -cf /tmp/logs.tar");
    eprintln!("--- 20 KB argv at 80x24 ---\n{screen}");
    for label in ["Program", "Run", "Cwd", "Env", "Grant", "Expires"] {
        assert!(
            screen.lines().any(|l| l.starts_with(&format!("│{label}"))),
            "{label} is not on screen:\n{screen}"
        );
    }
    assert!(screen.contains("approve as once"), "{screen}");
    assert!(
        screen.contains("f Enter: full view — not shown: Argv +"),
        "{screen}"
    );

    // v1 signed here. Now a shows all of it first.
    world.tmux.keys(&["a"]);
    let full = world
        .tmux
        .wait_for("the full view", |s| s.contains("full view, lines 1–"));
    assert!(full.contains("Grant") && full.contains("Expires"), "{full}");
    world.tmux.keys(&["a"]);
    world.tmux.wait_for("a refused until it is read", |s| {
        s.contains("approve: not yet")
    });

    // Read it page by page; the exec hidden in the middle goes by.
    let mut saw_exec = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let screen = world.tmux.capture();
        saw_exec |= screen.contains("'--checkpoint-action=exec=sh /tmp/x'");
        if screen.contains("lines shown; a approves") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "could not page to the end:\n{screen}"
        );
        let title = |s: &str| s.lines().nth(1).unwrap_or("").to_string();
        let before = title(&screen);
        world.tmux.keys(&["PgDn"]);
        world.tmux.wait_for("the next page", |s| title(s) != before);
    }
    assert!(saw_exec, "the hidden exec was on a page");
    world.tmux.keys(&["a"]);
    let decision = agent.decision(signed.payload.id);
    assert_eq!(decision.payload.verdict, Verdict::Approve);
    assert_eq!(decision.payload.request_sha256, signed.sha256);
}

#[test]
fn a_request_landing_under_the_cursor_is_not_approved_by_an_immediate_a() {
    // The console's guard: a and d wait this long after a request came under the cursor.
    const GUARD: Duration = Duration::from_millis(1000);
    let world = ConsoleWorld::new();
    let mut agent = world.agent(3);
    for attempt in 0..8 {
        let command = format!("echo landing-{attempt}");
        let signed = request(
            &world,
            "/usr/bin/echo",
            &["echo", &format!("landing-{attempt}")],
        )
        .sign(agent.key());
        // The guard starts when the console shows the request, which is after this: time
        // measured from here overstates how long the request has been on screen.
        let submitted = Instant::now();
        agent.submit(&signed.envelope);
        world.wait_pending(&command);
        // The approver's a, just as the request appears under the cursor (if this machine
        // took too long to show it, the try proves nothing: clear it and try again).
        if submitted.elapsed() >= GUARD / 2 {
            deny(&world, &command);
            continue;
        }
        // `?` after `a`: once help is up, `a` has been handled.
        world.tmux.keys(&["a", "?"]);
        let screen = world
            .tmux
            .wait_for("help after a", |s| s.contains("Keys —"));
        if submitted.elapsed() >= GUARD {
            // The a may have come after the guard: this try proves nothing either way.
            world.tmux.keys(&["?"]);
            let screen = world
                .tmux
                .wait_for("help to close", |s| !s.contains("Keys —"));
            if screen.contains(" Pending 0 ") {
                agent.decision(signed.payload.id);
            } else {
                deny(&world, &command);
            }
            continue;
        }
        eprintln!("--- a pressed as the request landed ---\n{screen}");
        assert!(
            screen.contains(" Pending 1 "),
            "the immediate a approved the request:\n{screen}"
        );
        assert!(
            screen.contains("approve ignored: this request came under the cursor"),
            "the status line says why:\n{screen}"
        );
        world.tmux.keys(&["?"]);
        // A second later the same key acts, on the same request.
        world.wait_ready(&command);
        world.tmux.keys(&["a"]);
        let decision = agent.decision(signed.payload.id);
        assert_eq!(decision.payload.verdict, Verdict::Approve);
        assert_eq!(decision.payload.request_sha256, signed.sha256);
        return;
    }
    panic!("the console never showed a request and took a key within a second of its arrival");
}

#[test]
fn first_seen_survives_a_restart_and_a_denial_does_not_clear_it() {
    let world = ConsoleWorld::new();
    let mut agent = world.agent(4);
    let ask = |agent: &mut assent_tests::console::Agent, word: &str| {
        let signed = request(&world, "/usr/bin/echo", &["echo", word]).sign(agent.key());
        agent.submit(&signed.envelope);
        (signed, world.wait_ready(&format!("echo {word}")))
    };

    let (_, screen) = ask(&mut agent, "one");
    assert!(screen.contains("★ first seen"), "{screen}");
    deny(&world, "echo one");
    let (_, screen) = ask(&mut agent, "two");
    assert!(
        screen.contains("★ first seen"),
        "a denial must not clear first-seen:\n{screen}"
    );
    assert!(selected_row(&screen).contains("new-key"), "{screen}");

    world.restart_console();
    let mut agent = world.agent(4);
    let (three, screen) = ask(&mut agent, "three");
    assert!(
        screen.contains("★ first seen"),
        "still first-seen after a restart:\n{screen}"
    );
    world.tmux.keys(&["a"]);
    assert_eq!(
        agent.decision(three.payload.id).payload.verdict,
        Verdict::Approve
    );

    world.restart_console();
    let mut agent = world.agent(4);
    let (_, screen) = ask(&mut agent, "four");
    assert!(
        !screen.contains("★ first seen") && !selected_row(&screen).contains("new-key"),
        "approved before a restart: known after it:\n{screen}"
    );
    // Another key calling itself by the same name is flagged.
    deny(&world, "echo four");
    let mut impostor = world.agent(5);
    let (_, screen) = ask(&mut impostor, "five");
    assert!(selected_row(&screen).contains("name-new-key"), "{screen}");
    assert!(
        screen.contains("e2e-signed has been approved with another key"),
        "{screen}"
    );
}

#[test]
fn requests_the_elevator_would_refuse_are_flagged() {
    let world = ConsoleWorld::new();
    let mut agent = world.agent(6);
    // assent-other is not a [[requester]] in the sandbox's elevator.toml.
    let signed = RequestBuilder::new("/usr/bin/echo", &["echo", "other"])
        .requester(&TestUser::other())
        .agent("e2e-signed")
        .cwd(world.sandbox.work_dir())
        .sign(agent.key());
    agent.submit(&signed.envelope);
    let screen = world.wait_pending("echo other");
    assert!(selected_row(&screen).contains("refused"), "{screen}");
    assert!(
        screen.contains("will be refused here: assent-other is not a [[requester]] in"),
        "{screen}"
    );
    deny(&world, "echo other");

    // assent-agent may become root only.
    let signed = request(&world, "/usr/bin/echo", &["echo", "daemon"])
        .run_as("daemon")
        .sign(agent.key());
    agent.submit(&signed.envelope);
    let screen = world.wait_pending("echo daemon");
    assert!(
        screen.contains("will be refused here: assent-agent may not run as daemon"),
        "{screen}"
    );
    deny(&world, "echo daemon");

    // A listed requester, root, a program in the secure path: nothing to refuse.
    let signed = request(&world, "/usr/bin/echo", &["echo", "fine"]).sign(agent.key());
    agent.submit(&signed.envelope);
    let screen = world.wait_pending("echo fine");
    assert!(!screen.contains("will be refused"), "{screen}");
}

#[test]
fn an_id_reused_after_a_restart_for_other_bytes_is_refused() {
    let world = ConsoleWorld::new();
    let mut agent = world.agent(7);
    let shown = request(&world, "/usr/bin/apt-get", &["apt-get", "update"]).sign(agent.key());
    agent.submit(&shown.envelope);
    world.wait_pending("apt-get update");

    // The console restarts (its relay forgets everything); the agent sends other bytes under
    // the id the approver was shown.
    world.restart_console();
    let mut agent = world.agent(7);
    let reused = request(&world, "/usr/bin/bash", &["bash", "-c", "id"])
        .id(shown.payload.id)
        .sign(agent.key());
    agent.submit(&reused.envelope);
    let screen = world.tmux.wait_for("the refusal", |s| {
        s.contains("refused a request from e2e-signed: its id")
    });
    eprintln!("--- reused id ---\n{screen}");
    assert!(screen.contains(" Pending 0 "), "{screen}");
}
