//! End to end through the approver's console: the real `assent-console` (hosting its relay) in
//! a tmux session driven with `send-keys` and read with `capture-pane`, the real shim run as
//! the unprivileged test user, and the real setuid elevator in the sandbox.
//!
//! Every wait polls the screen (or the process) against a deadline; nothing sleeps a fixed time
//! to let something happen.

use std::time::{Duration, Instant};

use assent_tests::console::ConsoleWorld;
use assent_tests::tmux::WAIT;

#[test]
fn console_drives_the_whole_flow() {
    let world = ConsoleWorld::new();
    let tmux = &world.tmux;

    // a → the command runs as root and its output reaches the agent.
    let run = world.request("e2e approve", "60s", &["id", "-u"]);
    let screen = world.wait_ready("id -u");
    eprintln!("--- Pending view with a real request ---\n{screen}");
    assert!(
        screen.contains("assent-agent (uid "),
        "requester shown:\n{screen}"
    );
    assert!(
        screen.contains("runs as root"),
        "risk flag shown:\n{screen}"
    );
    assert!(
        screen.contains("★ first seen"),
        "first-seen mark shown:\n{screen}"
    );
    tmux.keys(&["a"]);
    let out = run.wait();
    out.assert_success();
    assert_eq!(out.stdout.trim(), "0", "ran as root: {out}");

    // d + note → the agent sees who denied it and why, exit 77.
    let run = world.request("e2e deny", "60s", &["echo", "deny-me"]);
    world.wait_ready("echo deny-me");
    tmux.keys(&["d"]);
    tmux.wait_for("the deny prompt", |s| s.contains("Note (optional):"));
    tmux.type_text("not now");
    tmux.wait_for("the typed note", |s| s.contains("Note (optional): not now"));
    tmux.keys(&["Enter"]);
    let out = run.wait();
    out.assert_code(77);
    assert!(out.stderr.contains("denied by alice: not now"), "{out}");

    // t → timed 15m; a second identical run needs no prompt.
    let run = world.request("e2e timed", "60s", &["id", "-un"]);
    world.wait_ready("id -un");
    tmux.keys(&["t"]);
    tmux.wait_for("timed 15m to be chosen", |s| {
        s.contains("approve as timed 15m")
    });
    tmux.keys(&["a"]);
    let out = run.wait();
    out.assert_success();
    assert_eq!(out.stdout.trim(), "root", "{out}");
    // Nobody presses anything now: if this asked, it would time out with 75.
    let again = world
        .request("e2e timed again", "20s", &["id", "-un"])
        .wait();
    again.assert_success();
    assert_eq!(again.stdout.trim(), "root", "{again}");
    assert!(
        tmux.capture().contains(" Pending 0 "),
        "the reuse must not prompt"
    );

    // Revoke it in Grants; the third run asks again, shows up, and is refused.
    tmux.keys(&["Tab", "Tab"]);
    tmux.wait_for("the grant in Grants", |s| {
        s.contains("Grants (1 live)") && s.contains("id -un")
    });
    tmux.keys(&["r"]);
    tmux.wait_for("the revocation", |s| s.contains("REVOKED"));
    // The console publishes the status listing it on its own, and a run may use the status
    // the shim kept from a moment ago: ask again only once the agent's side knows.
    world.wait_grant_state("revoked");
    tmux.keys(&["Tab"]);
    let run = world.request("e2e after revoke", "60s", &["id", "-un"]);
    world.wait_ready("id -un");
    tmux.keys(&["d"]);
    tmux.wait_for("the deny prompt", |s| s.contains("Note (optional):"));
    tmux.keys(&["Enter"]);
    let out = run.wait();
    out.assert_code(77);

    // A request that expires while shown disappears; the agent gets 75.
    let run = world.request("e2e expire", "6s", &["echo", "expire-me"]);
    world.wait_pending("echo expire-me");
    tmux.wait_for("the expired request to go", |s| {
        !s.contains("Pending 1/1")
            && !s
                .lines()
                .any(|l| l.contains("▶") && l.contains("expire-me"))
    });
    let out = run.wait();
    out.assert_code(75);
    eprintln!("--- expired request, agent side ---\n{out}");

    // Quit never signs; a restarted console still has its History.
    tmux.keys(&["q"]);
    let deadline = Instant::now() + WAIT;
    while !tmux.pane_dead() {
        assert!(Instant::now() < deadline, "the console did not quit on q");
        std::thread::sleep(Duration::from_millis(50));
    }
    world.start_console();
    tmux.keys(&["Tab"]);
    let history = tmux.wait_for("History after a restart", |s| s.contains("History ("));
    for expected in ["id -u", "echo deny-me", "not now", "timed 15m"] {
        assert!(
            history.contains(expected),
            "History lost {expected:?}:\n{history}"
        );
    }
    tmux.keys(&["Tab"]);
    let grants = tmux.wait_for("Grants after a restart", |s| s.contains("Grants ("));
    assert!(
        grants.contains("REVOKED"),
        "the revocation survives a restart:\n{grants}"
    );
    tmux.keys(&["q"]);
}
