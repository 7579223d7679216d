//! The whole agent-side set-up in one value: the sandbox with the setuid elevator, `assent`
//! installed in it (with its `sudo` symlink), a real relay on loopback, a scripted approver
//! "alice" logged in to it with a policy, and the agent user's key and `agent.toml` naming that
//! relay.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assent_protocol::{Request, Role};
use assent_relay_client::{Client, Event};

use crate::approver::{BackgroundApprover, Policy};
use crate::built_binary;
use crate::keys::KeyPair;
use crate::relay_process::RelayProcess;
use crate::sandbox::{ElevatorConfig, Run, Sandbox};
use crate::users::TestUser;

/// Fields drop in order: the approver stops before its relay does.
pub struct AgentFlow {
    pub approver: BackgroundApprover,
    pub relay: RelayProcess,
    pub sb: Sandbox,
    pub agent: TestUser,
    pub alice: KeyPair,
}

impl AgentFlow {
    /// Everything set up, with alice deciding by `policy`; the agent may become root.
    pub fn new(policy: Policy) -> AgentFlow {
        Self::with_settings(policy, |config| config)
    }

    /// The same, with `elevator.toml` also holding what `settings` adds.
    pub fn with_settings(
        policy: Policy,
        settings: impl FnOnce(ElevatorConfig) -> ElevatorConfig,
    ) -> AgentFlow {
        let sb = Sandbox::new();
        let alice = KeyPair::generate(&sb.keys_dir(), "alice");
        let agent = TestUser::agent();
        sb.write_config(&settings(
            ElevatorConfig::new()
                .approver("alice", &alice.public_line)
                .requester(&agent.name, &["root"]),
        ));
        let assent = sb.install_bin("assent", &built_binary("assent"), 0o755);
        std::os::unix::fs::symlink(&assent, sb.bin_dir().join("sudo")).expect("sudo symlink");
        let relay_config = sb.root().join("relay.toml");
        fs::write(
            &relay_config,
            format!(
                "[[approver]]\nname = \"alice\"\nkey = {:?}\n",
                alice.public_line
            ),
        )
        .expect("write relay.toml");
        let relay = RelayProcess::start(&relay_config, &sb.root().join("relay.log"), "127.0.0.1:0");
        let approver = BackgroundApprover::start(relay.url(), &alice.private_path, policy);
        let flow = AgentFlow {
            approver,
            relay,
            sb,
            agent,
            alice,
        };
        flow.shim().arg("keygen").run().assert_success();
        let toml = flow.sb.agent_dir().join("config/assent/agent.toml");
        fs::write(&toml, format!("relay = {:?}\n", flow.relay.url())).expect("write agent.toml");
        std::os::unix::fs::chown(&toml, Some(flow.agent.uid), Some(flow.agent.gid))
            .expect("chown agent.toml");
        flow
    }

    /// `assent` as installed in the sandbox.
    pub fn assent(&self) -> PathBuf {
        self.sb.bin_dir().join("assent")
    }

    /// The agent's XDG directories, as `assent` finds its key and config by them.
    pub fn xdg(&self) -> [(&'static str, PathBuf); 2] {
        [
            ("XDG_CONFIG_HOME", self.sb.agent_dir().join("config")),
            ("XDG_STATE_HOME", self.sb.agent_dir().join("state")),
        ]
    }

    /// `program` as the agent user, with its XDG directories in the sandbox.
    pub fn as_agent(&self, program: impl AsRef<Path>) -> Run<'_> {
        self.xdg()
            .into_iter()
            .fold(self.sb.run_as_agent(program.as_ref()), |run, (k, v)| {
                run.env(k, v)
            })
    }

    /// `assent` as the agent user.
    pub fn shim(&self) -> Run<'_> {
        self.as_agent(self.assent())
    }

    /// The requests pending at the relay, as a console that logs in now is shown them.
    pub fn pending_requests(&self, patience: Duration) -> Vec<Request> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mut console =
                Client::connect(&self.relay.url(), self.approver.key(), Role::Approver)
                    .await
                    .expect("a second console logs in");
            console.request_statuses().await.expect("ask for statuses");
            let mut pending = Vec::new();
            loop {
                let event = tokio::time::timeout(patience, console.next_event())
                    .await
                    .expect("the relay answers")
                    .expect("the connection stays");
                match event {
                    Event::Request { envelope, .. } => pending.push(
                        envelope
                            .open::<Request>()
                            .expect("the relay serves verified requests")
                            .payload,
                    ),
                    Event::Statuses { .. } => break,
                    _ => {}
                }
            }
            console.close().await;
            pending
        })
    }
}
