//! The approver's console end to end: the real `assent-console` (hosting its relay on a free
//! port) in a private tmux server, the real sandbox with the setuid elevator, and the real
//! shim run as the unprivileged test user.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use crate::sandbox::{ElevatorConfig, Running, Sandbox};
use crate::scratch::ScratchDir;
use crate::tmux::Tmux;

/// A TCP port on loopback that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The console's files live in `home`; returns the env assignments for it.
pub fn console_env(home: &Path) -> Vec<String> {
    vec![
        format!("HOME={}", home.display()),
        format!("XDG_CONFIG_HOME={}", home.join("config").display()),
        format!("XDG_STATE_HOME={}", home.join("state").display()),
        "LANG=C.UTF-8".into(),
    ]
}

/// Everything one scenario needs: an approver `alice` whose key the console made, listed in
/// the sandbox's elevator.toml with the agent test user as a requester (run_as root).
pub struct ConsoleWorld {
    pub sandbox: Sandbox,
    pub tmux: Tmux,
    pub console_argv: Vec<String>,
    /// `ws://127.0.0.1:PORT`, the console's embedded relay.
    pub relay: String,
    pub home: ScratchDir,
}

impl ConsoleWorld {
    pub fn new() -> ConsoleWorld {
        crate::require_root();
        let home = ScratchDir::new("console-home");
        let console = crate::built_binary("assent-console");
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
        sandbox.install_bin("assent", &crate::built_binary("assent"), 0o755);
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
        let world = ConsoleWorld {
            sandbox,
            tmux,
            console_argv,
            relay,
            home,
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

    pub fn start_console(&self) {
        self.tmux.start(&self.console_argv);
        let relay = self.relay.clone();
        self.tmux.wait_for("the console to host its relay", |s| {
            s.contains(&format!("relay {relay} (embedded)"))
        });
    }

    /// `assent` as the agent test user, with its files in the sandbox's agent dir.
    pub fn shim(&self) -> crate::sandbox::Run<'_> {
        let agent = self.sandbox.agent_dir();
        self.sandbox
            .run_as_agent(self.sandbox.bin_dir().join("assent"))
            .env("XDG_CONFIG_HOME", agent.join("config"))
            .env("XDG_STATE_HOME", agent.join("state"))
            .env("ASSENT_RELAY", &self.relay)
    }

    /// Start `assent run --reason REASON --timeout T -- ARGV` as the agent.
    pub fn request(&self, reason: &str, timeout: &str, argv: &[&str]) -> Running {
        self.shim()
            .args(["run", "--reason", reason, "--timeout", timeout, "--"])
            .args(argv)
            .spawn()
    }

    /// Wait until the Pending list holds exactly one request showing `command`.
    pub fn wait_pending(&self, command: &str) -> String {
        self.tmux
            .wait_for(&format!("{command:?} to be pending"), |s| {
                s.contains("Pending 1/1")
                    && s.lines().any(|l| l.contains("▶") && l.contains(command))
            })
    }
}

impl Default for ConsoleWorld {
    fn default() -> Self {
        Self::new()
    }
}
