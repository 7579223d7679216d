//! `assent mcp` end to end, driven by an MCP client we did not write: the reference Python SDK
//! (`mcp` on PyPI), in `tests/mcp/client.py`. The client plays the agent's harness: it runs as
//! the unprivileged `assent-agent` test user, starts `assent mcp` over stdio, and calls its
//! tools. Every call goes through a real `assent-relay` on loopback, a scripted approver logged
//! in to it, and the setuid `assent-elevate` in the sandbox.
//!
//! The Python with the SDK is `$ASSENT_MCP_PYTHON`, else `/opt/assent-ci/mcp-venv/bin/python3`
//! (what `.ci/run` makes). It must be readable by the agent user, so not under /root.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assent_protocol::{Envelope, Grant, PrivateKey, Status};
use assent_tests::agent_flow::AgentFlow;
use assent_tests::approver::{Choice, Policy, ScriptedApprover};
use assent_tests::sandbox::{Outcome, Running};
use serde_json::{Value, json};

/// How long any wait in these tests may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);
const DEFAULT_PYTHON: &str = "/opt/assent-ci/mcp-venv/bin/python3";

/// The Python that has the MCP SDK; a clear failure (never a skip) when there is none.
fn python() -> PathBuf {
    let python = std::env::var_os("ASSENT_MCP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_PYTHON.into());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} cannot import the MCP SDK: run `python3 -m venv /opt/assent-ci/mcp-venv && /opt/assent-ci/mcp-venv/bin/pip install mcp` (or set ASSENT_MCP_PYTHON)",
        python.display()
    );
    python
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The whole set-up, and the Python client to drive it.
struct Flow {
    flow: AgentFlow,
    python: PathBuf,
    scenarios: usize,
}

impl std::ops::Deref for Flow {
    type Target = AgentFlow;
    fn deref(&self) -> &AgentFlow {
        &self.flow
    }
}

impl Flow {
    fn new(policy: Policy) -> Flow {
        let python = python();
        let flow = AgentFlow::new(policy);
        fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp/client.py"),
            flow.sb.root().join("client.py"),
        )
        .expect("copy client.py");
        Flow {
            flow,
            python,
            scenarios: 0,
        }
    }

    /// Start the Python client as the agent user on `calls`; `trace` names a file for the
    /// JSON-RPC messages.
    fn client(&mut self, calls: Value, trace: Option<&Path>) -> Running {
        self.scenarios += 1;
        let env: serde_json::Map<String, Value> = self
            .xdg()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        let scenario = json!({
            "server": {
                "command": self.assent(),
                "args": ["mcp"],
                "env": env,
                "cwd": self.sb.work_dir(),
            },
            "calls": calls,
            "trace": trace,
        });
        let file = self
            .sb
            .root()
            .join(format!("scenario-{}.json", self.scenarios));
        fs::write(&file, scenario.to_string()).unwrap();
        self.sb
            .run_as_agent(&self.python)
            .arg(self.sb.root().join("client.py"))
            .arg(file)
            .timeout(Duration::from_secs(120))
            .spawn()
    }

    /// Run `calls` to the end; the client's printed lines.
    fn session(&mut self, calls: Value) -> Vec<Value> {
        lines(&self.client(calls, None).wait())
    }
}

/// The JSON lines the client printed; it must have ended well.
fn lines(out: &Outcome) -> Vec<Value> {
    out.assert_success();
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}; {out}")))
        .collect()
}

/// The structured result of call `n`.
fn result(lines: &[Value], n: u64) -> &Value {
    let line = lines
        .iter()
        .find(|l| l["call"] == n)
        .unwrap_or_else(|| panic!("no line for call {n}: {lines:?}"));
    assert_eq!(line["is_error"], false, "{line}");
    &line["result"]
}

fn run_privileged(arguments: Value) -> Value {
    json!({"tool": "run_privileged", "arguments": arguments})
}

fn approve(grant: Grant) -> Policy {
    Some(Choice::approve().grant(grant))
}

// ---------------------------------------------------------------------------------------------

#[test]
fn an_approved_call_runs_as_root_and_says_so_while_it_waits() {
    // Nobody answers at first, so the wait is seen; then alice approves by hand.
    let mut flow = Flow::new(None);
    let trace = flow.sb.marker("session.jsonl");
    let client = flow.client(
        json!([run_privileged(json!({
            "argv": ["id", "-u"],
            "reason": "check which user the tool runs commands as",
        }))]),
        Some(&trace),
    );
    wait_for("a progress notification saying the call waits", || {
        fs::read_to_string(&trace).is_ok_and(|t| t.contains("waiting for approval of request"))
    });
    let key =
        PrivateKey::from_openssh(&fs::read_to_string(&flow.alice.private_path).unwrap()).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut alice = ScriptedApprover::connect(&flow.relay.url(), key, "alice")
                .await
                .expect("alice logs in");
            let (request, first) = alice.next_request().await.expect("the request is shown");
            alice
                .decide(request, first, &Choice::approve())
                .await
                .expect("the decision is sent");
        });
    let out = client.wait();
    let lines = lines(&out);
    let names: Vec<&str> = lines[0]["tools"]
        .as_array()
        .expect("tools/list first")
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["list_grants", "run_privileged"]);
    let got = result(&lines, 0);
    assert_eq!(got["outcome"], "ran", "{got}");
    assert_eq!(got["exit_code"], 0, "{got}");
    assert_eq!(got["stdout"], "0\n", "{got}");
    assert_eq!(got["approver"], "alice", "{got}");
    assert_eq!(got["truncated"], false, "{got}");
    let progress = lines[1]["progress"].as_array().unwrap();
    assert!(
        progress.iter().any(|m| m
            .as_str()
            .unwrap()
            .starts_with("waiting for approval of request ")
            && m.as_str().unwrap().ends_with(" left")),
        "{progress:?}"
    );
    let trace = fs::read_to_string(&trace).unwrap();
    assert!(trace.contains("\"notifications/progress\""), "{trace}");
    // The whole session, for whoever reads the test's output.
    println!("{trace}");
}

#[test]
fn a_denial_comes_back_with_the_humans_note_word_for_word() {
    let note = "Not on this box: use the staging host, and say why it needs root.";
    let mut flow = Flow::new(Some(Choice::deny(note)));
    let marker = flow.sb.marker("denied");
    let lines = flow.session(json!([run_privileged(json!({
        "argv": ["sh", "-c", format!("touch {}", marker.display())],
        "reason": "try a denied command",
    }))]));
    let got = result(&lines, 0);
    assert_eq!(got["outcome"], "denied", "{got}");
    assert_eq!(got["note"], note, "{got}");
    assert_eq!(got["approver"], "alice", "{got}");
    assert!(got.get("exit_code").is_none(), "{got}");
    assert!(!marker.exists(), "nothing ran");
}

#[test]
fn nobody_deciding_in_time_is_timed_out() {
    let mut flow = Flow::new(None);
    let lines = flow.session(json!([run_privileged(json!({
        "argv": ["id", "-u"],
        "reason": "nobody will answer",
        "timeout_s": 2,
    }))]));
    let got = result(&lines, 0);
    assert_eq!(got["outcome"], "timed_out", "{got}");
    assert!(
        got["stderr"].as_str().unwrap().contains("assent: "),
        "{got}"
    );
}

#[test]
fn output_past_64_kib_is_cut_and_marked_truncated() {
    let mut flow = Flow::new(approve(Grant::Once));
    let lines = flow.session(json!([run_privileged(json!({
        "argv": ["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; head -c 70000 /dev/zero | tr '\\0' y >&2"],
        "reason": "print more than the bound",
    }))]));
    let got = result(&lines, 0);
    assert_eq!(got["outcome"], "ran", "{got:.200}");
    assert_eq!(got["truncated"], true);
    let stdout = got["stdout"].as_str().unwrap();
    assert_eq!(stdout.len(), 64 * 1024);
    assert!(stdout.bytes().all(|b| b == b'x'));
    let stderr = got["stderr"].as_str().unwrap();
    assert_eq!(stderr.len(), 64 * 1024);
    assert!(stderr.ends_with('y'));
}

#[test]
fn list_grants_shows_a_timed_approval() {
    let mut flow = Flow::new(approve(Grant::Timed));
    // A timed grant is used only with a fresh status of the console that gave it.
    flow.approver.set_status(Envelope::seal(
        flow.approver.key(),
        &Status {
            v: Default::default(),
            kind: Default::default(),
            approver: "alice".into(),
            console: assent_tests::grants::TEST_CONSOLE,
            issued_at: assent_tests::now(),
            revoked: Default::default(),
        },
    ));
    let lines = flow.session(json!([
        run_privileged(json!({
            "argv": ["id", "-u"],
            "reason": "check the uid, and keep the grant for an hour",
            "grant": "timed:1h",
        })),
        {"tool": "list_grants", "arguments": {}},
    ]));
    assert_eq!(result(&lines, 0)["outcome"], "ran");
    let grants = result(&lines, 1)["grants"].as_array().unwrap().clone();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0]["state"], "live");
    assert_eq!(grants[0]["grant"], "timed");
    assert_eq!(grants[0]["argv"], json!(["id", "-u"]));
    assert_eq!(grants[0]["approver"], "alice");
    let left = grants[0]["remaining_s"].as_u64().unwrap();
    assert!(left > 3500 && left <= 3600, "{left}");
}

#[test]
fn cancelling_while_waiting_withdraws_the_request() {
    let mut flow = Flow::new(None);
    let release = flow.sb.marker("release-waiting");
    let client = flow.client(
        json!([{
            "tool": "run_privileged",
            "arguments": {"argv": ["id", "-u"], "reason": "to be cancelled", "timeout_s": 120},
            "cancel_on": "waiting for approval",
            "release": release,
        }]),
        None,
    );
    wait_for("the approver to see the request", || {
        !flow.approver.requests().is_empty()
    });
    // The session stays open until released: only the cancel can have withdrawn it.
    wait_for("the request to leave the relay", || {
        flow.pending_requests(PATIENCE).is_empty()
    });
    fs::write(&release, b"").unwrap();
    let lines = lines(&client.wait());
    assert_eq!(lines[1]["cancelled"], true, "{lines:?}");
}

#[test]
fn cancelling_while_running_stops_the_root_command() {
    let mut flow = Flow::new(approve(Grant::Once));
    let pid_file = flow.sb.marker("running-pid");
    let release = flow.sb.marker("release-running");
    let client = flow.client(
        json!([{
            "tool": "run_privileged",
            "arguments": {
                "argv": ["sh", "-c", format!("echo $$ > {}; exec sleep 300", pid_file.display())],
                "reason": "a long command, to be cancelled",
            },
            "cancel_on": "running",
            "release": release,
        }]),
        None,
    );
    let mut pid = 0u32;
    wait_for("the root command to start", || {
        fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .map(|p| pid = p)
            .is_some()
    });
    let uid = assent_tests::proc_status(pid, "Uid").expect("the command is running");
    assert_eq!(uid.split(' ').nth(1), Some("0"), "runs as root: Uid {uid}");
    wait_for("the cancelled root command to die", || {
        assent_tests::proc_status(pid, "State").is_none_or(|s| s.starts_with('Z'))
    });
    fs::write(&release, b"").unwrap();
    let lines = lines(&client.wait());
    assert_eq!(lines[1]["cancelled"], true, "{lines:?}");
}

#[test]
fn in_a_no_new_privs_sandbox_sudo_is_refused_and_the_tool_works() {
    let mut flow = Flow::new(approve(Grant::Once));
    // The agent's shell, sandboxed the way Codex and Claude Code do it.
    let shell = flow
        .as_agent("setpriv")
        .args(["--no-new-privs", "sudo", "id", "-u"])
        .run();
    shell.assert_code(78);
    assert!(shell.stderr.contains("no_new_privs"), "{shell}");
    assert!(
        flow.approver.requests().is_empty(),
        "refused before any human was asked"
    );
    // The harness itself has no no_new_privs, and starts the MCP server.
    let lines = flow.session(json!([run_privileged(json!({
        "argv": ["id", "-u"],
        "reason": "the route that works from a sandbox",
    }))]));
    let got = result(&lines, 0);
    assert_eq!(got["outcome"], "ran", "{got}");
    assert_eq!(got["stdout"], "0\n", "{got}");
}
