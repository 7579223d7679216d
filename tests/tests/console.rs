//! End to end through the approver's console: the real `assent-console` (hosting its relay) in
//! a tmux session driven with `send-keys` and read with `capture-pane`, the real shim run as
//! the unprivileged test user, and the real setuid elevator in the sandbox.
//!
//! Every wait polls the screen (or the process) against a deadline; nothing sleeps a fixed time
//! to let something happen.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use assent_tests::sandbox::{ElevatorConfig, Outcome, Running, Sandbox};
use assent_tests::scratch::ScratchDir;

const WAIT: Duration = Duration::from_secs(30);
const WIDTH: u16 = 120;
const HEIGHT: u16 = 40;

/// A private tmux server with one session running the console.
struct Tmux {
    socket: String,
    config: PathBuf,
}

impl Tmux {
    fn new(scratch: &Path) -> Tmux {
        let config = scratch.join("tmux.conf");
        // Keep the pane after the console exits, so an exit can be seen and read.
        std::fs::write(&config, "set -g remain-on-exit on\n").unwrap();
        Tmux {
            socket: format!("assent-e2e-{}", std::process::id()),
            config,
        }
    }

    fn tmux(&self) -> Command {
        let mut cmd = Command::new("tmux");
        // UTF-8 whatever the caller's locale: the screen is matched on characters like ▶.
        cmd.arg("-u").env("LC_ALL", "C.UTF-8");
        cmd.arg("-L").arg(&self.socket).arg("-f").arg(&self.config);
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self
            .tmux()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run tmux (install it): {e}"));
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Start `argv` in a new detached WIDTH×HEIGHT session (replacing a dead pane).
    fn start(&self, argv: &[String]) {
        let (w, h) = (WIDTH.to_string(), HEIGHT.to_string());
        let mut args: Vec<&str> = if self.has_session() {
            vec!["respawn-pane", "-k", "-t", "console"]
        } else {
            vec!["new-session", "-d", "-s", "console", "-x", &w, "-y", &h]
        };
        args.extend(argv.iter().map(String::as_str));
        self.run(&args);
    }

    fn has_session(&self) -> bool {
        self.tmux()
            .args(["has-session", "-t", "console"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn capture(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "console"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "console"];
        args.extend(keys);
        self.run(&args);
    }

    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "console", "-l", text]);
    }

    fn pane_dead(&self) -> bool {
        self.run(&["display-message", "-p", "-t", "console", "#{pane_dead}"])
            .trim()
            == "1"
    }

    /// Poll the screen until `ok` holds; panic with the last screen after WAIT.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        let mut pause = Duration::from_millis(20);
        loop {
            let screen = self.capture();
            if ok(&screen) {
                return screen;
            }
            if Instant::now() >= deadline {
                panic!("timed out waiting for {what}; the console shows:\n{screen}");
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The console's files live in `home`; returns the env assignments for it.
fn console_env(home: &Path) -> Vec<String> {
    vec![
        format!("HOME={}", home.display()),
        format!("XDG_CONFIG_HOME={}", home.join("config").display()),
        format!("XDG_STATE_HOME={}", home.join("state").display()),
        "LANG=C.UTF-8".into(),
    ]
}

/// Poll a running shim until it exits, with a deadline.
fn finish(run: Running) -> Outcome {
    run.wait()
}

/// Everything one scenario needs.
struct World {
    sandbox: Sandbox,
    tmux: Tmux,
    console_argv: Vec<String>,
    relay: String,
    _home: ScratchDir,
}

impl World {
    fn new() -> World {
        assent_tests::require_root();
        let home = ScratchDir::new("console-home");
        let console = assent_tests::built_binary("assent-console");
        // The approver's key, made by the console itself.
        let out = Command::new(&console)
            .args(["keygen", "--name", "alice"])
            .env_clear()
            .envs(
                console_env(home.path())
                    .iter()
                    .map(|kv| kv.split_once('=').unwrap()),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let public = std::fs::read_to_string(home.join("config/assent/approver.key.pub")).unwrap();

        let sandbox = Sandbox::with_config(
            &ElevatorConfig::new()
                .approver("alice", public.trim())
                .requester("assent-agent", &["root"]),
        );
        sandbox.install_bin("assent", &assent_tests::built_binary("assent"), 0o755);
        let port = free_port();
        let relay = format!("ws://127.0.0.1:{port}");

        let mut console_argv = vec!["env".to_string()];
        console_argv.extend(console_env(home.path()));
        console_argv.push(console.display().to_string());
        console_argv.extend([
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--no-notify".into(),
            "--name".into(),
            "alice".into(),
        ]);

        let tmux = Tmux::new(home.path());
        let world = World {
            sandbox,
            tmux,
            console_argv,
            relay,
            _home: home,
        };
        world.start_console();

        // The agent's key, made by the shim as the agent.
        world
            .shim()
            .args(["keygen", "--name", "e2e-agent"])
            .run()
            .assert_success();
        world
    }

    fn start_console(&self) {
        self.tmux.start(&self.console_argv);
        let relay = self.relay.clone();
        self.tmux.wait_for("the console to host its relay", |s| {
            s.contains(&format!("relay {relay} (embedded)"))
        });
    }

    /// `assent` as the agent test user, with its files in the sandbox's agent dir.
    fn shim(&self) -> assent_tests::sandbox::Run<'_> {
        let agent = self.sandbox.agent_dir();
        self.sandbox
            .run_as_agent(self.sandbox.bin_dir().join("assent"))
            .env("XDG_CONFIG_HOME", agent.join("config"))
            .env("XDG_STATE_HOME", agent.join("state"))
            .env("ASSENT_RELAY", &self.relay)
    }

    /// Start `assent run --reason REASON --timeout T -- ARGV` as the agent.
    fn request(&self, reason: &str, timeout: &str, argv: &[&str]) -> Running {
        self.shim()
            .args(["run", "--reason", reason, "--timeout", timeout, "--"])
            .args(argv)
            .spawn()
    }

    /// Wait until the Pending list holds exactly one request showing `command`.
    fn wait_pending(&self, command: &str) -> String {
        self.tmux
            .wait_for(&format!("{command:?} to be pending"), |s| {
                s.contains("Pending 1/1")
                    && s.lines().any(|l| l.contains("▶") && l.contains(command))
            })
    }
}

#[test]
fn console_drives_the_whole_flow() {
    let world = World::new();
    let tmux = &world.tmux;

    // a → the command runs as root and its output reaches the agent.
    let run = world.request("e2e approve", "60s", &["id", "-u"]);
    let screen = world.wait_pending("id -u");
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
    let out = finish(run);
    out.assert_success();
    assert_eq!(out.stdout.trim(), "0", "ran as root: {out}");

    // d + note → the agent sees who denied it and why, exit 77.
    let run = world.request("e2e deny", "60s", &["echo", "deny-me"]);
    world.wait_pending("echo deny-me");
    tmux.keys(&["d"]);
    tmux.wait_for("the deny prompt", |s| s.contains("Note (optional):"));
    tmux.type_text("not now");
    tmux.wait_for("the typed note", |s| s.contains("Note (optional): not now"));
    tmux.keys(&["Enter"]);
    let out = finish(run);
    out.assert_code(77);
    assert!(out.stderr.contains("denied by alice: not now"), "{out}");

    // t → timed 15m; a second identical run needs no prompt.
    let run = world.request("e2e timed", "60s", &["id", "-un"]);
    world.wait_pending("id -un");
    tmux.keys(&["t"]);
    tmux.wait_for("timed 15m to be chosen", |s| {
        s.contains("approve as timed 15m")
    });
    tmux.keys(&["a"]);
    let out = finish(run);
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
    tmux.keys(&["Tab"]);
    let run = world.request("e2e after revoke", "60s", &["id", "-un"]);
    world.wait_pending("id -un");
    tmux.keys(&["d"]);
    tmux.wait_for("the deny prompt", |s| s.contains("Note (optional):"));
    tmux.keys(&["Enter"]);
    let out = finish(run);
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
    let out = finish(run);
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
