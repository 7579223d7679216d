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

use assent_tests::agent_flow::AgentFlow;
use assent_tests::approver::Choice;
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
    let flow = AgentFlow::new(Some(Choice::approve()));
    let script = flow.sb.root().join("bench.py");
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp/bench.py"),
        &script,
    )
    .expect("copy bench.py");

    let out = flow
        .as_agent(&python)
        .arg(&script)
        .arg(flow.assent())
        .arg(cli.runs.to_string())
        .timeout(Duration::from_secs(60 + 10 * u64::from(cli.runs)))
        .run();
    drop(flow);
    print!("{}", out.stdout);
    if out.success() {
        ExitCode::SUCCESS
    } else {
        eprint!("{}", out.stderr);
        ExitCode::FAILURE
    }
}
