//! `assent-mcp-bench [--runs N]`: how much time a `run_privileged` call through `assent mcp`
//! adds over `assent run`, with an approver that answers at once (never shipped).
//!
//! Sets up what the end-to-end tests use (the setuid elevator in a private mount namespace, a
//! real relay on loopback, a scripted approver approving every request `once`, the agent's key
//! and agent.toml), then runs `tests/mcp/bench.py` as the `assent-agent` user. That script
//! times `assent run -- /bin/true` and `run_privileged {argv: ["/bin/true"]}` from one process,
//! each asking for a fresh approval every time, and prints both and their difference.
//!
//! Needs root, the built `assent`, `assent-elevate` and `assent-relay` (debug builds unless run
//! from a release build), and the Python MCP SDK (`$ASSENT_MCP_PYTHON`, else
//! `/opt/assent-ci/mcp-venv/bin/python3`).
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use assent_tests::approver::{BackgroundApprover, Choice};
use assent_tests::built_binary;
use assent_tests::keys::KeyPair;
use assent_tests::relay_process::RelayProcess;
use assent_tests::sandbox::{ElevatorConfig, Sandbox};
use assent_tests::users::TestUser;
use clap::Parser;

/// Time `run_privileged` through `assent mcp` against `assent run`.
#[derive(Parser, Debug)]
#[command(name = "assent-mcp-bench")]
struct Cli {
    /// Calls measured each way.
    #[arg(long, default_value_t = 30)]
    runs: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let python = std::env::var_os("ASSENT_MCP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/opt/assent-ci/mcp-venv/bin/python3".into());
    let sb = Sandbox::new();
    let alice = KeyPair::generate(&sb.keys_dir(), "alice");
    let agent = TestUser::agent();
    sb.write_config(
        &ElevatorConfig::new()
            .approver("alice", &alice.public_line)
            .requester(&agent.name, &["root"]),
    );
    let assent = sb.install_bin("assent", &built_binary("assent"), 0o755);
    let script = sb.root().join("bench.py");
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp/bench.py"),
        &script,
    )
    .expect("copy bench.py");
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
    let approver =
        BackgroundApprover::start(relay.url(), &alice.private_path, Some(Choice::approve()));
    let as_agent = |program: &Path| {
        sb.run_as_agent(program)
            .env("XDG_CONFIG_HOME", sb.agent_dir().join("config"))
            .env("XDG_STATE_HOME", sb.agent_dir().join("state"))
    };
    as_agent(&assent).arg("keygen").run().assert_success();
    let toml = sb.agent_dir().join("config/assent/agent.toml");
    fs::write(&toml, format!("relay = {:?}\n", relay.url())).expect("write agent.toml");
    std::os::unix::fs::chown(&toml, Some(agent.uid), Some(agent.gid)).expect("chown agent.toml");

    let out = as_agent(&python)
        .arg(&script)
        .arg(&assent)
        .arg(cli.runs.to_string())
        .timeout(Duration::from_secs(60 + 10 * u64::from(cli.runs)))
        .run();
    drop(approver);
    print!("{}", out.stdout);
    if out.success() {
        ExitCode::SUCCESS
    } else {
        eprint!("{}", out.stderr);
        ExitCode::FAILURE
    }
}
