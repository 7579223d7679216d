//! The approver's console end to end: the real `assent-console` (hosting its relay on a free
//! port) in a private tmux server, the real sandbox with the setuid elevator, and the real
//! shim run as the unprivileged test user — or, for requests no honest shim would send, an
//! [`Agent`] that signs them itself and talks to the relay directly.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use assent_protocol::{Decision, Envelope, PrivateKey, RequestId, Role, Signed};
use assent_relay_client::{Client, Event};

use crate::relay_process::RelayProcess;
use crate::sandbox::{ElevatorConfig, Running, Sandbox};
use crate::scratch::ScratchDir;
use crate::tmux::{Tmux, WAIT};

/// What the console's detail title says while `a` and `d` wait for a request that just
/// came under the cursor.
pub const GUARD_TITLE: &str = "just came under the cursor";

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
    /// `ws://127.0.0.1:PORT`, the console's embedded relay (or the standalone one).
    pub relay: String,
    /// The standalone relay process the console connects to, if it hosts none.
    pub relay_process: Option<RelayProcess>,
    pub home: ScratchDir,
}

impl ConsoleWorld {
    pub fn new() -> ConsoleWorld {
        Self::with_size(crate::tmux::WIDTH, crate::tmux::HEIGHT)
    }

    /// As [`ConsoleWorld::new`], with the console's pane `width` × `height`.
    pub fn with_size(width: u16, height: u16) -> ConsoleWorld {
        Self::build(width, height, false)
    }

    /// As [`ConsoleWorld::new`], with a real standalone `assent-relay` process on loopback
    /// (listing alice as its approver) that the console connects to with `--relay`.
    pub fn with_standalone_relay() -> ConsoleWorld {
        Self::build(crate::tmux::WIDTH, crate::tmux::HEIGHT, true)
    }

    fn build(width: u16, height: u16, standalone: bool) -> ConsoleWorld {
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
        let (relay, relay_process, where_) = if standalone {
            let config = home.join("relay.toml");
            std::fs::write(
                &config,
                format!(
                    "[[approver]]\nname = \"alice\"\nkey = {:?}\n",
                    public.trim()
                ),
            )
            .unwrap();
            let process = RelayProcess::start(&config, &home.join("relay.log"), "127.0.0.1:0");
            let url = process.url();
            (url.clone(), Some(process), ["--relay".to_string(), url])
        } else {
            let port = free_port();
            let listen = format!("127.0.0.1:{port}");
            (
                format!("ws://{listen}"),
                None,
                ["--listen".to_string(), listen],
            )
        };

        let mut console_argv = vec!["env".to_string()];
        console_argv.extend(console_env(home.path()));
        console_argv.push(console.display().to_string());
        console_argv.extend(where_);
        console_argv.extend([
            "--no-notify".into(),
            "--name".into(),
            "alice".into(),
            // The sandbox's elevator.toml, for the "will be refused" flags.
            "--elevator-config".into(),
            sandbox.config_path().display().to_string(),
        ]);

        let tmux = Tmux::with_size(home.path(), width, height);
        let world = ConsoleWorld {
            sandbox,
            tmux,
            console_argv,
            relay,
            relay_process,
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
        self.wait_connected();
    }

    /// Wait until the status bar says the console is connected to its relay.
    pub fn wait_connected(&self) -> String {
        let relay = self.relay.clone();
        let connected = if self.relay_process.is_some() {
            format!("● relay {relay}")
        } else {
            format!("● relay {relay} (embedded)")
        };
        self.tmux
            .wait_for("the console to be connected to its relay", |s| {
                s.contains(&connected)
            })
    }

    /// `assent-console ARGS` on the console's files and relay (list, approve, deny).
    pub fn scripted(&self, args: &[&str]) -> std::process::Output {
        Command::new(crate::built_binary("assent-console"))
            .args([
                "--relay",
                &self.relay,
                "--name",
                "alice",
                "--elevator-config",
            ])
            .arg(self.sandbox.config_path())
            .args(args)
            .env_clear()
            .envs(
                console_env(self.home.path())
                    .iter()
                    .map(|kv| kv.split_once('=').unwrap()),
            )
            .output()
            .unwrap()
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

    /// Poll `assent grants --json` as the agent until one cached grant is in `state` (`live`,
    /// `revoked`, `waiting`, …). `assent grants` asks the relay for the statuses and keeps the
    /// newest, so once it says `revoked`, the agent's next run knows it too (a run spares
    /// the relay round trip for a few seconds after the last one, with the status it kept).
    pub fn wait_grant_state(&self, state: &str) -> String {
        let want = format!("\"state\":\"{state}\"");
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let out = self.shim().args(["grants", "--json"]).run();
            out.assert_success();
            if out.stdout.contains(&want) {
                return out.stdout;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no cached grant became {state}: {out}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
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

    /// As [`ConsoleWorld::wait_pending`], and until `a` and `d` act on it: the console holds
    /// them for a second after a request comes under the cursor by itself, and says so.
    pub fn wait_ready(&self, command: &str) -> String {
        self.wait_pending(command);
        self.tmux
            .wait_for(&format!("{command:?} to take keys"), |s| {
                s.contains("Pending 1/1")
                    && s.lines().any(|l| l.contains("▶") && l.contains(command))
                    && !s.contains(GUARD_TITLE)
            })
    }

    /// An agent with key number `n` (the same `n`, the same key), connected to the console's
    /// relay.
    pub fn agent(&self, n: u8) -> Agent {
        Agent::connect(
            &self.relay,
            PrivateKey::from_seed(&[n; 32], &format!("e2e-signed-{n}@test")),
        )
    }

    /// Quit the console with `q` and start it again on the same files (its relay too, so
    /// agents must connect again).
    pub fn restart_console(&self) {
        self.tmux.keys(&["q"]);
        let deadline = std::time::Instant::now() + WAIT;
        while !self.tmux.pane_dead() {
            assert!(
                std::time::Instant::now() < deadline,
                "the console did not quit on q"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.start_console();
    }
}

/// An agent that signs its own requests (any content, honest or not) and submits them to a
/// relay, as a hostile agent would without the shim.
pub struct Agent {
    runtime: tokio::runtime::Runtime,
    client: Client,
    key: PrivateKey,
}

impl Agent {
    pub fn connect(relay: &str, key: PrivateKey) -> Agent {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = runtime
            .block_on(Client::connect(relay, &key, Role::Agent))
            .unwrap_or_else(|e| panic!("cannot connect to {relay} as an agent: {e}"));
        Agent {
            runtime,
            client,
            key,
        }
    }

    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// Submit a signed request and wait until the relay queued it.
    pub fn submit(&mut self, envelope: &Envelope) {
        let id = envelope
            .open::<assent_protocol::Request>()
            .map(|r| r.payload.id)
            .ok();
        self.runtime.block_on(async {
            self.client.submit(envelope).await.unwrap();
            let wait = async {
                loop {
                    match self.client.next_event().await.unwrap() {
                        Event::Queued { request_id } if Some(request_id) == id => return,
                        Event::Refused { reason, .. } => panic!("the relay refused: {reason}"),
                        _ => {}
                    }
                }
            };
            tokio::time::timeout(WAIT, wait)
                .await
                .expect("the relay did not queue the request");
        });
    }

    /// The decision for request `id`, waiting up to [`WAIT`].
    pub fn decision(&mut self, id: RequestId) -> Signed<Decision> {
        self.runtime.block_on(async {
            let wait = async {
                loop {
                    if let Event::Decision { envelope } = self.client.next_event().await.unwrap() {
                        let decision = envelope.open::<Decision>().unwrap();
                        if decision.payload.request_id == id {
                            return decision;
                        }
                    }
                }
            };
            tokio::time::timeout(WAIT, wait)
                .await
                .expect("no decision reached the agent")
        })
    }
}

impl Default for ConsoleWorld {
    fn default() -> Self {
        Self::new()
    }
}
