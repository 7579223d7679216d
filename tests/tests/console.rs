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

/// Every process below `pid` (its children, theirs, …).
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The field after the `(comm)`, which may hold spaces and parentheses itself.
        let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            parents.push((child, ppid));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// Send `signal` (`STOP`, `CONT`) to every process of a running command.
fn signal_all(pid: u32, signal: &str) {
    let mut pids = descendants(pid);
    pids.push(pid);
    for p in pids {
        let _ = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &p.to_string()])
            .status();
    }
}

/// A waiting shim stopped by `signal` withdraws its request, and the console takes it off
/// the screen, with a notice, as soon as the relay says so.
fn a_stopped_shim_leaves_the_console(signal: &str, code: i32) {
    let world = ConsoleWorld::new();
    let tmux = &world.tmux;
    let run = world.request("withdraw me", "60s", &["echo", "withdraw-me"]);
    world.wait_ready("echo withdraw-me");
    // The sandbox execs its way down to the shim, so this pid is the shim's.
    let sent = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &run.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let screen = tmux.wait_for("the withdrawn request to leave the console", |s| {
        s.contains(" Pending 0 ") && s.contains("withdrawn by its agent")
    });
    assert!(
        !screen.contains("▶"),
        "nothing is left to select:\n{screen}"
    );
    run.wait().assert_code(code);
}

#[test]
fn ctrl_c_on_a_waiting_shim_takes_its_request_off_the_console() {
    a_stopped_shim_leaves_the_console("INT", 130);
}

#[test]
fn sigterm_on_a_waiting_shim_takes_its_request_off_the_console() {
    a_stopped_shim_leaves_the_console("TERM", 143);
}

#[test]
fn an_approval_made_while_the_relay_is_down_is_delivered_once() {
    let mut world = ConsoleWorld::with_standalone_relay();
    let tmux = &world.tmux;
    let marker = world.sandbox.marker("delivered");
    let marker_text = marker.display().to_string();
    let run = world.request(
        "outage",
        "120s",
        &["/bin/sh", "-c", &format!("echo ran >> {marker_text}")],
    );
    world.wait_ready("echo ran");

    // The relay goes down; the shim is held back, so the console comes back first.
    world.relay_process.as_mut().unwrap().kill();
    tmux.wait_for("the console to see the relay gone", |s| {
        s.contains("relay DISCONNECTED")
    });
    signal_all(run.pid(), "STOP");
    tmux.keys(&["a"]);
    tmux.wait_for("the approval", |s| s.contains(" Pending 0 "));
    world.relay_process.as_mut().unwrap().start_again();
    world.wait_connected();
    // The relay, restarted, has never heard of the request: the console keeps its decision.
    let screen = tmux.wait_for("the relay's refusal", |s| {
        s.contains("not delivered yet, kept and sent again")
    });
    eprintln!("--- the console back before the shim ---\n{screen}");
    tmux.keys(&["Tab"]);
    let history = tmux.wait_for("History", |s| s.contains("History (1)"));
    assert!(
        history.contains("approved, not yet delivered"),
        "History says the decision has not reached the agent:\n{history}"
    );

    // The shim comes back, submits its request again, and gets the kept decision.
    signal_all(run.pid(), "CONT");
    let out = run.wait();
    out.assert_success();
    let ran = std::fs::read_to_string(&marker).unwrap_or_default();
    assert_eq!(ran, "ran\n", "the command ran exactly once");
    let history = tmux.wait_for("History to show it delivered", |s| {
        s.contains("History (1)") && s.contains("approved") && !s.contains("not yet delivered")
    });
    eprintln!("--- delivered ---\n{history}");
    let execs = world
        .sandbox
        .audit_lines()
        .iter()
        .filter(|l| l.event() == "exec")
        .count();
    assert_eq!(execs, 1, "{}", world.sandbox.audit_text());
}

#[test]
fn a_scripted_approval_shows_in_history_and_grants_once_and_can_be_revoked() {
    let world = ConsoleWorld::new();
    let tmux = &world.tmux;
    let run = world.request("scripted", "60s", &["id", "-un"]);
    world.wait_pending("id -un");
    let listed = world.scripted(&["list"]);
    assert!(listed.status.success(), "{listed:?}");
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let reference = listed
        .lines()
        .find(|l| l.contains("id -un"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("list: {listed}"))
        .to_string();
    let approved = world.scripted(&["approve", &reference, "--grant", "timed:15m"]);
    assert!(approved.status.success(), "{approved:?}");
    let out = run.wait();
    out.assert_success();
    assert_eq!(out.stdout.trim(), "root", "{out}");

    // The running console shows it as this key's decision: once, with its window.
    tmux.wait_for("the request to go", |s| s.contains(" Pending 0 "));
    tmux.keys(&["Tab"]);
    let history = tmux.wait_for("History", |s| s.contains("History (1)"));
    eprintln!("--- scripted approval in History ---\n{history}");
    assert!(history.contains("approved"), "{history}");
    assert!(history.contains("timed 15m"), "{history}");
    assert!(!history.contains("timed 0s"), "{history}");
    tmux.keys(&["Tab"]);
    tmux.wait_for("the grant in Grants", |s| {
        s.contains("Grants (1 live)") && s.contains("id -un")
    });
    tmux.keys(&["r"]);
    tmux.wait_for("the revocation", |s| s.contains("REVOKED"));
    world.wait_grant_state("revoked");
    // Revoked: the next run asks again.
    let run = world.request("after revoke", "60s", &["id", "-un"]);
    tmux.keys(&["Tab"]);
    world.wait_ready("id -un");
    tmux.keys(&["d"]);
    tmux.wait_for("the deny prompt", |s| s.contains("Note (optional):"));
    tmux.keys(&["Enter"]);
    run.wait().assert_code(77);

    // After a restart: each decision once.
    world.restart_console();
    tmux.keys(&["Tab"]);
    let history = tmux.wait_for("History after a restart", |s| s.contains("History ("));
    eprintln!("--- History after a restart ---\n{history}");
    assert!(history.contains("History (2)"), "{history}");
    assert_eq!(
        history.matches(&reference).count(),
        1,
        "the scripted approval once:\n{history}"
    );
    tmux.keys(&["Tab"]);
    let grants = tmux.wait_for("Grants after a restart", |s| s.contains("Grants ("));
    assert!(grants.contains("REVOKED"), "{grants}");
}

/// `assent-console keygen --name NAME` in `home`; returns the public key line.
fn console_keygen(home: &std::path::Path, name: &str) -> String {
    let out = std::process::Command::new(assent_tests::built_binary("assent-console"))
        .args(["keygen", "--name", name])
        .env_clear()
        .envs(console_env_pairs(home))
        .output()
        .unwrap();
    assert!(out.status.success(), "keygen: {out:?}");
    std::fs::read_to_string(home.join("config/assent/approver.key.pub"))
        .unwrap()
        .trim()
        .to_string()
}

fn console_env_pairs(home: &std::path::Path) -> Vec<(String, String)> {
    assent_tests::console::console_env(home)
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// `assent-console --relay URL list` on the files in `home`, with `env` added.
fn scripted_list(home: &std::path::Path, url: &str, env: &[(&str, &str)]) -> std::process::Output {
    let started = Instant::now();
    let out = std::process::Command::new(assent_tests::built_binary("assent-console"))
        .args(["--relay", url, "--name", "alice", "list"])
        .env_clear()
        .envs(console_env_pairs(home))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    eprintln!(
        "list --relay {url}: exit {:?} after {:.2} s: {}",
        out.status.code(),
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    out
}

/// Exit 78 with one line on stderr that contains every one of `fix`.
fn assert_config_error(out: &std::process::Output, fix: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    for part in fix {
        assert!(stderr.contains(part), "{part:?} in {stderr}");
    }
}

#[test]
fn scripted_commands_exit_78_naming_the_fix_for_relay_set_up_errors() {
    use assent_tests::pki::PrivateCa;
    use assent_tests::relay_process::RelayProcess;
    use assent_tests::scratch::ScratchDir;

    let dir = ScratchDir::new("console-tls");
    let home = dir.join("alice");
    let public = console_keygen(&home, "alice");
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!("[[approver]]\nname = \"alice\"\nkey = {public:?}\n"),
    )
    .unwrap();
    let ca = PrivateCa::new(dir.path(), "ca");
    let leaf = ca.leaf("relay", &["DNS:localhost"]);
    let relay = RelayProcess::start_tls(&config, &dir.join("relay.log"), "127.0.0.1:0", &leaf);
    let url = relay.url_with_host("localhost");
    let ca_file = ca.cert().display().to_string();

    // A CA this host does not trust.
    let out = scripted_list(&home, &url, &[]);
    assert_config_error(
        &out,
        &[
            "not signed by a CA this host trusts",
            "relay_ca",
            "ASSENT_RELAY_CA",
        ],
    );
    // Trusted, but the certificate does not name the host connected to.
    let out = scripted_list(
        &home,
        &relay.url_with_host("127.0.0.1"),
        &[("ASSENT_RELAY_CA", &ca_file)],
    );
    assert_config_error(&out, &["not valid for the name 127.0.0.1"]);
    // ws:// to the TLS port.
    let plain = url.replacen("wss://", "ws://", 1);
    let out = scripted_list(&home, &plain, &[]);
    assert_config_error(&out, &[&format!("use {url}")]);

    // relay_ca in console.toml is trusted.
    std::fs::write(
        home.join("config/assent/console.toml"),
        format!("name = \"alice\"\nrelay_ca = {ca_file:?}\n"),
    )
    .unwrap();
    let out = scripted_list(&home, &url, &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "no pending requests"
    );

    // The console itself says it whole, once, and does not retry.
    std::fs::write(
        home.join("config/assent/console.toml"),
        "name = \"alice\"\n",
    )
    .unwrap();
    let tmux = assent_tests::tmux::Tmux::with_size(dir.path(), 80, 24);
    let mut argv = vec!["env".to_string()];
    argv.extend(assent_tests::console::console_env(&home));
    argv.extend([
        assent_tests::built_binary("assent-console")
            .display()
            .to_string(),
        "--relay".into(),
        url.clone(),
        "--no-notify".into(),
    ]);
    tmux.start(&argv);
    let screen = tmux.wait_for("the configuration error", |s| {
        s.contains("not retrying") && s.contains("ASSENT_RELAY_CA")
    });
    eprintln!("--- an untrusted relay, at 80x24 ---\n{screen}");
    for part in ["UnknownIssuer", "relay_ca", "signed it"] {
        assert!(screen.contains(part), "{part:?} on screen:\n{screen}");
    }
    assert!(!screen.contains("retry in"), "{screen}");
    assert!(!screen.contains("connecting to"), "{screen}");

    // A key the relay does not list as an approver.
    let bob = dir.join("bob");
    console_keygen(&bob, "bob");
    let out = scripted_list(&bob, &url, &[("ASSENT_RELAY_CA", &ca_file)]);
    assert_config_error(&out, &["not listed as an [[approver]]"]);
}
