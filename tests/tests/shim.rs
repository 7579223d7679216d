//! The agent's shim end to end (SPEC §3, §8, §10): a real `assent-relay` process on loopback,
//! a scripted approver logged in to it, and `assent` run as the unprivileged `assent-agent`
//! test user inside the setuid sandbox, so every approved command really goes through the
//! setuid `assent-elevate`.
//!
//! The approver here is a plain relay client with a policy (approve with a grant type, deny
//! with a note, or stay silent); it signs real decisions and statuses with an approver key made
//! by `ssh-keygen`, and records every request it was shown.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assent_protocol::{Envelope, Grant, PrivateKey, Request, Role, Sha256Digest, Status};
use assent_relay_client::{Client, Event};
use assent_tests::agent_flow::AgentFlow;
use assent_tests::approver::{BackgroundApprover, Choice, Policy};
use assent_tests::keys::KeyPair;
use assent_tests::pki::PrivateCa;
use assent_tests::relay_process::RelayProcess;
use assent_tests::sandbox::{ElevatorConfig, Outcome, Run, Sandbox};
use assent_tests::scratch::ScratchDir;
use assent_tests::users::TestUser;
use assent_tests::{built_binary, now};

/// How long any wait in these tests may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// The scripted approver (`assent_tests::approver`) on a thread of its own, deciding every
// request it is shown with the current policy and reconnecting when the relay restarts.

fn approve(grant: Grant) -> Policy {
    Some(Choice::approve().grant(grant))
}

fn deny(note: Option<&str>) -> Policy {
    Some(Choice {
        note: note.map(str::to_owned),
        ..Choice::deny("")
    })
}

const SILENT: Policy = None;

type Approver = BackgroundApprover;

/// What these tests ask of the background approver beyond the library's.
trait ApproverExt {
    /// Sign a status issued at `issued_at` (possibly in the past) revoking `revoked`; it is
    /// published now and again on every reconnect. Returns once the relay serves it.
    fn publish_status(&self, issued_at: u64, revoked: Vec<Sha256Digest>);
    fn wait_requests(&self, n: usize) -> Vec<Request>;
}

impl ApproverExt for Approver {
    fn publish_status(&self, issued_at: u64, revoked: Vec<Sha256Digest>) {
        let status = Envelope::seal(
            self.key(),
            &Status {
                v: Default::default(),
                kind: Default::default(),
                approver: "alice".into(),
                console: assent_tests::grants::TEST_CONSOLE,
                issued_at,
                revoked: revoked
                    .into_iter()
                    .map(|decision_sha256| assent_protocol::Revocation {
                        decision_sha256,
                        until: None,
                    })
                    .collect(),
            },
        );
        self.set_status(status.clone());
        wait_for("the relay to serve the published status", || {
            fetch_statuses(self.url(), self.key()).contains(&status)
        });
    }

    fn wait_requests(&self, n: usize) -> Vec<Request> {
        wait_for(&format!("the approver to see {n} request(s)"), || {
            self.requests().len() >= n
        });
        self.requests()
    }
}

/// The statuses the relay holds, as any client sees them.
fn fetch_statuses(url: &str, key: &PrivateKey) -> Vec<Envelope> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let Ok(mut client) = Client::connect(url, key, Role::Agent).await else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if client.request_statuses().await.is_ok() {
            while let Ok(Ok(event)) =
                tokio::time::timeout(Duration::from_secs(2), client.next_event()).await
            {
                if let Event::Statuses { statuses } = event {
                    out = statuses;
                    break;
                }
            }
        }
        client.close().await;
        out
    })
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// The whole set-up: sandbox + relay + approver + an agent with a key.

/// The shared agent-side set-up, with this file's helpers on top.
struct Flow(AgentFlow);

impl std::ops::Deref for Flow {
    type Target = AgentFlow;
    fn deref(&self) -> &AgentFlow {
        &self.0
    }
}

impl std::ops::DerefMut for Flow {
    fn deref_mut(&mut self) -> &mut AgentFlow {
        &mut self.0
    }
}

impl Flow {
    fn new(policy: Policy) -> Flow {
        Self::with_settings(policy, |config| config)
    }

    /// A flow whose `elevator.toml` also has the settings `settings` adds.
    fn with_settings(
        policy: Policy,
        settings: impl FnOnce(ElevatorConfig) -> ElevatorConfig,
    ) -> Flow {
        Flow(AgentFlow::with_settings(policy, settings))
    }

    fn config_dir(&self) -> PathBuf {
        self.sb.agent_dir().join("config/assent")
    }

    /// Restart the relay admitting listed agents only, and listing none: the agent's login
    /// is refused.
    fn admit_listed_agents_only(&mut self) {
        fs::write(
            self.relay.config(),
            format!(
                "[[approver]]\nname = \"alice\"\nkey = {:?}\n[agents]\npolicy = \"allowlist\"\n",
                self.alice.public_line
            ),
        )
        .unwrap();
        self.relay.restart();
    }

    fn write_agent_toml(&self, text: &str) {
        let path = self.config_dir().join("agent.toml");
        fs::write(&path, text).unwrap();
        std::os::unix::fs::chown(&path, Some(self.agent.uid), Some(self.agent.gid)).unwrap();
    }

    /// `assent run [OPTIONS] -- COMMAND…`
    fn run(&self, options: &[&str], command: &[&str]) -> Run<'_> {
        self.shim().arg("run").args(options).arg("--").args(command)
    }

    fn marker(&self, name: &str) -> PathBuf {
        self.sb.marker(name)
    }
}

/// `assent` (installed in the sandbox's bin dir) as the agent user, with its XDG directories
/// in the sandbox.
fn agent_shim(sb: &Sandbox) -> Run<'_> {
    sb.run_as_agent(sb.bin_dir().join("assent"))
        .env("XDG_CONFIG_HOME", sb.agent_dir().join("config"))
        .env("XDG_STATE_HOME", sb.agent_dir().join("state"))
}

/// A command that appends a line to a root-owned marker file and prints its uid.
fn mark(path: &Path) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!("echo ran >> '{}' && id -u", path.display()),
    ]
}

fn lines_in(path: &Path) -> usize {
    fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn stderr_has(outcome: &Outcome, needle: &str) {
    assert!(
        outcome.stderr.contains(needle),
        "expected stderr to contain {needle:?}; got {outcome}"
    );
}

// ---------------------------------------------------------------------------------------------

#[test]
fn approved_once_runs_as_root_and_passes_the_exit_status_through() {
    let flow = Flow::new(approve(Grant::Once));
    let out = flow
        .run(&["--reason", "check the uid"], &["id", "-u"])
        .run();
    out.assert_success();
    assert_eq!(out.stdout, "0\n", "{out}");
    stderr_has(&out, "assent: approved by alice (once)");
    for line in out.stderr_lines() {
        assert!(line.starts_with("assent: "), "{out}");
    }
    let shown = flow.approver.requests();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].reason, "check the uid");
    assert_eq!(shown[0].user, "assent-agent");
    assert_eq!(shown[0].run_as, "root");
    assert_eq!(shown[0].argv, ["id", "-u"]);
    assert_eq!(
        Path::new(&shown[0].program),
        fs::canonicalize("/usr/bin/id").unwrap()
    );
    assert_eq!(Path::new(&shown[0].cwd), flow.sb.work_dir());

    let out = flow.run(&[], &["sh", "-c", "exit 3"]).run();
    out.assert_code(3);
    assert_eq!(
        flow.approver.requests().len(),
        2,
        "a once grant is never reused"
    );

    // An extra variable asked for reaches the command.
    let out = flow
        .run(
            &["--env", "GREETING=hello there"],
            &["sh", "-c", "echo \"$GREETING\""],
        )
        .run();
    out.assert_success();
    assert_eq!(out.stdout, "hello there\n");
    assert_eq!(
        flow.approver.requests()[2].env.iter().collect::<Vec<_>>(),
        [("GREETING", "hello there")]
    );

    let audit = flow.sb.audit_attempts();
    assert_eq!(audit.len(), 3, "{}", flow.sb.audit_text());
    assert!(audit.iter().all(|l| l.event() == "exec"));
}

#[test]
fn the_shim_names_the_request_by_the_reference_the_approver_sees() {
    let flow = Flow::new(approve(Grant::Once));
    let out = flow.run(&[], &["id", "-u"]).run();
    out.assert_success();
    let decided = flow.approver.decisions();
    assert_eq!(decided.len(), 1);
    let reference = decided[0].request.sha256.reference();
    assert_eq!(reference.len(), 12);
    assert!(decided[0].request.sha256.to_hex().starts_with(&reference));
    stderr_has(
        &out,
        &format!("assent: waiting for approval of request {reference} (expires in "),
    );
    // The id is not what people are shown.
    assert!(
        !out.stderr.contains(&decided[0].request.payload.id.to_hex()),
        "{out}"
    );
}

#[test]
fn the_request_names_the_real_directory_not_the_symlink_it_was_reached_by() {
    let flow = Flow::new(approve(Grant::Once));
    let agent = &flow.agent;
    let real = flow.sb.agent_dir().join("real-project");
    let link = flow.sb.agent_dir().join("project");
    fs::create_dir(&real).unwrap();
    std::os::unix::fs::chown(&real, Some(agent.uid), Some(agent.gid)).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = flow.run(&[], &["pwd"]).cwd(&link).run();
    out.assert_success();
    let real = fs::canonicalize(&real).unwrap();
    let shown = flow.approver.requests();
    assert_eq!(Path::new(&shown[0].cwd), real, "{out}");
    assert_eq!(out.stdout.trim_end(), real.to_str().unwrap(), "{out}");
}

#[test]
fn programs_under_dev_or_proc_are_refused_before_any_request() {
    let flow = Flow::new(approve(Grant::Once));
    let marker = flow.marker("pseudo");
    // The agent's own script, which an approval of "/dev/stdin" would run as root.
    let script = flow.sb.agent_dir().join("payload.sh");
    fs::write(
        &script,
        format!("#!/bin/sh\necho ran >> '{}'\n", marker.display()),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let agent = &flow.agent;
    std::os::unix::fs::chown(&script, Some(agent.uid), Some(agent.gid)).unwrap();

    let assent = flow.sb.bin_dir().join("assent");
    let redirected = |program: &str| {
        // `assent run -- PROGRAM < payload.sh`, from a shell as the agent would type it.
        flow.sb
            .run_as_agent("/bin/sh")
            .env("XDG_CONFIG_HOME", flow.sb.agent_dir().join("config"))
            .env("XDG_STATE_HOME", flow.sb.agent_dir().join("state"))
            .args(["-c", "exec \"$0\" run -- \"$1\" < \"$2\""])
            .arg(&assent)
            .arg(program)
            .arg(&script)
            .run()
    };
    let outcomes = [
        ("/dev/stdin", "/dev", redirected("/dev/stdin")),
        ("/proc/self/fd/0", "/proc", redirected("/proc/self/fd/0")),
        (
            "/dev/fd/3",
            "/dev",
            flow.run(&[], &["/dev/fd/3"]).fd(3, &script).run(),
        ),
        (
            "/proc/self/fd/3",
            "/proc",
            flow.run(&[], &["/proc/self/fd/3"]).fd(3, &script).run(),
        ),
    ];
    for (program, tree, out) in outcomes {
        out.assert_code(64);
        let lines = out.stderr_lines();
        assert_eq!(lines.len(), 1, "{program}: one line: {out}");
        assert!(
            lines[0].starts_with(&format!("assent: {program}: refusing "))
                && lines[0].contains(&format!("is under {tree}"))
                && lines[0].ends_with("give the path of the program file itself"),
            "{program}: {out}"
        );
    }
    assert!(
        flow.approver.requests().is_empty(),
        "a request reached the relay"
    );
    assert!(flow.sb.audit_lines().is_empty());
    assert!(!marker.exists());
}

#[test]
fn a_decision_from_a_key_the_elevator_does_not_list_is_ignored_and_never_cached() {
    let mut flow = Flow::new(SILENT);
    // The relay's operator lists a key of their own under alice's name; the elevator lists
    // only alice's real key. Such a relay delivers that key's decisions as alice's.
    let mallory = KeyPair::generate(&flow.sb.keys_dir(), "mallory");
    fs::write(
        flow.relay.config(),
        format!(
            "[[approver]]\nname = \"alice\"\nkey = {:?}\n",
            mallory.public_line
        ),
    )
    .unwrap();
    flow.relay.restart();
    let fake = Approver::start(
        flow.relay.url(),
        &mallory.private_path,
        approve(Grant::Always),
    );
    fake.publish_status(now(), vec![]);
    let marker = flow.marker("mallory");
    let cmd = mark(&marker);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();

    let out = flow
        .run(&["--grant", "always", "--timeout", "3s"], &cmd)
        .run();
    out.assert_code(75);
    stderr_has(
        &out,
        "assent: ignoring a decision the elevator would refuse: it is signed by ",
    );
    stderr_has(
        &out,
        "which is not an [[approver]] in /etc/assent/elevator.toml",
    );
    assert!(!out.stderr.contains("approved by"), "{out}");
    assert_eq!(fake.decisions().len(), 1, "the fake approver did approve");
    assert!(
        flow.sb.audit_lines().is_empty(),
        "the elevator was never called"
    );
    assert!(!marker.exists());
    let listed = flow.shim().args(["grants", "--json"]).run();
    listed.assert_success();
    assert_eq!(listed.stdout.trim(), "", "nothing was cached: {listed}");
}

#[test]
fn denial_names_the_approver_and_the_note() {
    let flow = Flow::new(deny(Some("not during the freeze")));
    let marker = flow.marker("denied");
    let out = flow
        .run(
            &[],
            &mark(&marker).iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .run();
    out.assert_code(77);
    stderr_has(&out, "assent: denied by alice: not during the freeze\n");
    assert!(!marker.exists(), "nothing ran");

    flow.approver.set_policy(deny(None));
    let out = flow.run(&[], &["id"]).run();
    out.assert_code(77);
    assert_eq!(
        out.stderr_lines().last(),
        Some(&"assent: denied by alice"),
        "{out}"
    );
    assert!(
        flow.sb.audit_lines().is_empty(),
        "the elevator was never called"
    );
}

#[test]
fn no_decision_before_the_timeout_exits_75() {
    let flow = Flow::new(SILENT);
    let marker = flow.marker("timeout");
    let started = Instant::now();
    let out = flow
        .run(
            &["--timeout", "2s"],
            &mark(&marker).iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .run();
    out.assert_code(75);
    stderr_has(&out, "assent: no decision on request ");
    stderr_has(&out, " within 2s; nothing ran");
    // Not a terminal: one line when the wait starts.
    stderr_has(&out, "assent: waiting for approval of ");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "gave up promptly"
    );
    assert_eq!(flow.approver.requests().len(), 1);
    assert!(!marker.exists());
}

#[test]
fn an_unreachable_relay_exits_75_naming_it() {
    let flow = Flow::new(approve(Grant::Once));
    // A port nobody listens on: bind one, then let it go.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("ws://{free}");
    let out = flow
        .run(&["--timeout", "2s", "--relay", &url], &["id"])
        .run();
    out.assert_code(75);
    stderr_has(&out, &format!("relay {url} unreachable"));
    assert_eq!(
        out.stderr_lines()
            .last()
            .map(|l| l.starts_with("assent: relay ")),
        Some(true),
        "{out}"
    );
    assert!(flow.approver.requests().is_empty());
}

#[test]
fn a_timed_grant_is_reused_until_revoked() {
    let flow = Flow::new(approve(Grant::Timed));
    flow.approver.publish_status(now(), vec![]);
    let cmd = ["id", "-u"];

    let first = flow.run(&["--grant", "timed:1h"], &cmd).run();
    first.assert_success();
    assert_eq!(first.stdout, "0\n");
    let second = flow.run(&["--grant", "timed:1h"], &cmd).run();
    second.assert_success();
    assert_eq!(second.stdout, "0\n");
    assert_eq!(second.stderr, "", "a cached grant runs silently");
    assert_eq!(flow.approver.requests().len(), 1, "two runs, one prompt");

    let listed = flow.shim().args(["grants", "--json"]).run();
    listed.assert_success();
    let grant: serde_json::Value = serde_json::from_str(listed.stdout.trim()).unwrap();
    assert_eq!(grant["grant"], "timed");
    assert_eq!(grant["approver"], "alice");
    assert_eq!(grant["argv"], serde_json::json!(["id", "-u"]));
    assert_eq!(grant["host"], assent_tests::hostname());
    assert_eq!(grant["host_id"], flow.sb.host_id().to_hex());
    let text = flow.shim().arg("grants").run();
    assert!(
        text.stdout.contains(&format!(
            "\n  host     {} (host id {})\n",
            assent_tests::hostname(),
            flow.sb.host_id().short()
        )),
        "{text}"
    );

    // The approver revokes it. A run within KEPT_FRESH_S (10 s) of the shim's last look at the
    // relay may still use the status it kept; the next one after that says why and asks anew.
    let asked_relay = Instant::now();
    let decision = flow.approver.decisions()[0].decision_sha256;
    flow.approver.publish_status(now() + 1, vec![decision]);
    flow.approver.set_policy(approve(Grant::Once));
    wait_for("the kept status to need a relay round trip", || {
        asked_relay.elapsed() > Duration::from_secs(11)
    });
    let third = flow.run(&["--grant", "timed:1h"], &cmd).run();
    third.assert_success();
    stderr_has(
        &third,
        "assent: cached grant not usable: revoked by alice\n",
    );
    assert_eq!(flow.approver.requests().len(), 2, "asked anew");
    let listed = flow.shim().args(["grants", "--json"]).run();
    assert_eq!(listed.stdout.trim(), "", "the revoked grant was dropped");

    let audit = flow.sb.audit_lines();
    assert_eq!(audit.iter().filter(|l| l.event() == "exec").count(), 3);
}

#[test]
fn an_always_grant_with_a_stale_status_is_not_used_and_stays_cached() {
    let flow = Flow::new(approve(Grant::Always));
    // The approver's only status is ten minutes old.
    flow.approver.publish_status(now() - 600, vec![]);
    let marker = flow.marker("stale");
    let cmd = mark(&marker);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();

    let first = flow.run(&["--grant", "always"], &cmd).run();
    first.assert_code(75);
    stderr_has(&first, "approved by alice (always), but status is stale");
    stderr_has(
        &first,
        "; the cached always grant from alice stays, and runs without asking once the console that approved it publishes a fresh status\n",
    );
    assert!(!marker.exists(), "nothing ran");

    // The grant was cached; the next run does not use it and asks anew, and keeps it.
    flow.approver.set_policy(deny(Some("stale")));
    let second = flow.run(&["--grant", "always"], &cmd).run();
    second.assert_code(77);
    stderr_has(
        &second,
        "assent: the cached always grant from alice is waiting for a fresh status (status is stale: ",
    );
    stderr_has(&second, "it stays cached and is used as soon as one comes");
    assert_eq!(flow.approver.requests().len(), 2);
    assert!(!marker.exists());
    assert!(flow.sb.audit_lines().is_empty());
    assert_eq!(
        grant_states(&flow),
        ["waiting"],
        "a denial of the new request revokes nothing"
    );
}

/// The state `assent grants --json` gives each cached grant.
fn grant_states(flow: &Flow) -> Vec<String> {
    let listed = flow.shim().args(["grants", "--json"]).run();
    listed.assert_success();
    listed
        .stdout
        .lines()
        .map(|l| {
            let grant: serde_json::Value = serde_json::from_str(l).unwrap();
            grant["state"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// The requests pending at the relay, as a console that logs in now is shown them.
fn pending_requests(flow: &Flow) -> Vec<Request> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut console = Client::connect(&flow.relay.url(), flow.approver.key(), Role::Approver)
            .await
            .expect("a second console logs in");
        console.request_statuses().await.unwrap();
        let mut pending = Vec::new();
        loop {
            let event = tokio::time::timeout(PATIENCE, console.next_event())
                .await
                .expect("the relay answers")
                .expect("the connection stays");
            match event {
                Event::Request { envelope, .. } => {
                    pending.push(envelope.open::<Request>().unwrap().payload)
                }
                Event::Statuses { .. } => break,
                _ => {}
            }
        }
        console.close().await;
        pending
    })
}

/// Elevator setting for the grant-loss tests: a status is stale after this many seconds.
const STATUS_MAX_AGE_S: u64 = 6;

/// A flow whose statuses go stale after [`STATUS_MAX_AGE_S`], with one timed grant for the
/// command that appends to its marker `name`, used once; that marker and the time the status
/// was issued.
fn flow_with_a_timed_grant(name: &str) -> (Flow, PathBuf, u64) {
    let flow = Flow::with_settings(approve(Grant::Timed), |c| {
        c.status_max_age_s(STATUS_MAX_AGE_S)
    });
    let marker = flow.marker(name);
    let issued = now();
    flow.approver.publish_status(issued, vec![]);
    let cmd = mark(&marker);
    let first = flow
        .run(
            &["--grant", "timed:1h"],
            &cmd.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .run();
    first.assert_success();
    assert_eq!(lines_in(&marker), 1);
    assert_eq!(grant_states(&flow), ["live"]);
    (flow, marker, issued)
}

/// Until every status issued at `issued` is stale.
fn wait_until_stale(issued: u64) {
    wait_for("the status to go stale", || {
        now() > issued + STATUS_MAX_AGE_S
    });
}

#[test]
fn a_timed_grant_outlives_a_restarted_relay_and_runs_once_a_fresh_status_comes() {
    let (mut flow, marker, issued) = flow_with_a_timed_grant("grant-loss");
    let cmd = mark(&marker);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();

    // The standalone relay restarts and nobody has published a status to it since; the
    // status the shim kept has gone stale meanwhile.
    flow.approver.stop_publishing();
    flow.relay.restart();
    wait_until_stale(issued);
    flow.approver.set_policy(SILENT);
    let waiting = flow
        .run(&["--timeout", "3s", "--grant", "timed:1h"], &cmd)
        .run();
    waiting.assert_code(75);
    stderr_has(
        &waiting,
        "assent: the cached timed grant from alice is waiting for a fresh status (status is stale: the latest from the console of alice that approved it is ",
    );
    stderr_has(
        &waiting,
        "; the cached timed grant from alice stays, and runs without asking once the console that approved it publishes a fresh status\n",
    );
    assert_eq!(lines_in(&marker), 1, "nothing ran");
    assert_eq!(
        flow.approver.wait_requests(2).len(),
        2,
        "the human was asked anew"
    );
    assert_eq!(grant_states(&flow), ["waiting"], "the grant was kept");
    let text = flow.shim().arg("grants").run();
    assert!(
        text.stdout
            .contains("\n  state    waiting for a fresh status: status is stale: "),
        "{text}"
    );

    // The console publishes again: the grant is live, and runs with no prompt.
    flow.approver.publish_status(now(), vec![]);
    assert_eq!(grant_states(&flow), ["live"]);
    let again = flow.run(&["--grant", "timed:1h"], &cmd).run();
    again.assert_success();
    assert_eq!(again.stdout, "0\n");
    assert_eq!(again.stderr, "", "a cached grant runs silently");
    assert_eq!(lines_in(&marker), 2);
    assert_eq!(flow.approver.requests().len(), 2, "no new prompt");
}

#[test]
fn a_waiting_run_uses_the_cached_grant_once_the_console_is_back_and_withdraws_its_request() {
    let (flow, marker, issued) = flow_with_a_timed_grant("console-back");
    let cmd = mark(&marker);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();

    // The console is gone for longer than status_max_age_s: its last status goes stale.
    flow.approver.stop_publishing();
    flow.approver.set_policy(SILENT);
    wait_until_stale(issued);
    let running = flow
        .run(&["--timeout", "60s", "--grant", "timed:1h"], &cmd)
        .spawn();
    let asked = flow.approver.wait_requests(2).pop().unwrap();
    assert_eq!(pending_requests(&flow), [asked]);

    // It comes back and publishes: the waiting shim sees it, withdraws, and runs.
    flow.approver.publish_status(now(), vec![]);
    let out = running.wait();
    out.assert_success();
    assert_eq!(out.stdout, "0\n");
    stderr_has(&out, "is waiting for a fresh status (status is stale: ");
    stderr_has(
        &out,
        "assent: a fresh status came from the console of alice that approved the cached grant; withdrew request ",
    );
    assert_eq!(lines_in(&marker), 2);
    assert_eq!(
        flow.approver.decisions().len(),
        1,
        "nobody answered the new request"
    );
    wait_for("the relay to drop the withdrawn request", || {
        pending_requests(&flow).is_empty()
    });
    assert_eq!(grant_states(&flow), ["live"]);
}

#[test]
fn the_shim_rides_out_a_relay_restart() {
    let mut flow = Flow::new(SILENT);
    let marker = flow.marker("restart");
    let cmd = mark(&marker);
    let running = flow
        .run(
            &["--timeout", "60s"],
            &cmd.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .spawn();
    let first = flow.approver.wait_requests(1)[0].id;

    flow.relay.restart();
    flow.approver.set_policy(approve(Grant::Once));
    let out = running.wait();
    out.assert_success();
    assert_eq!(out.stdout, "0\n");
    stderr_has(&out, "reconnect");
    let requests = flow.approver.requests();
    assert_eq!(requests.len(), 1, "the same request id was re-sent");
    assert_eq!(requests[0].id, first);
    assert_eq!(lines_in(&marker), 1, "exactly one exec");
    assert_eq!(flow.sb.audit_attempts().len(), 1);
}

/// A waiting shim stopped by `signal` exits 128 + its number, withdraws its request (the
/// relay no longer holds it, so no console shows it), and approving afterwards runs nothing.
fn stopping_the_wait_withdraws_the_request(signal: &str, code: i32, said: &str) {
    let flow = Flow::new(SILENT);
    let marker = flow.marker("interrupt");
    let cmd = mark(&marker);
    let running = flow
        .run(
            &["--timeout", "60s"],
            &cmd.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .spawn();
    flow.approver.wait_requests(1);
    assert_eq!(pending_requests(&flow).len(), 1);
    // The sandbox execs its way down to the shim, so this pid is the shim's.
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &running.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = running.wait();
    out.assert_code(code);
    assert!(
        out.stderr_lines().last().is_some_and(|l| l
            .starts_with(&format!("assent: {said}; withdrew request "))
            && l.ends_with("; nothing ran")),
        "{out}"
    );
    assert!(
        pending_requests(&flow).is_empty(),
        "the relay dropped the withdrawn request"
    );
    assert!(flow.relay.log_text().contains("withdrawn"), "{out}");
    // Approving afterwards changes nothing.
    flow.approver.set_policy(approve(Grant::Once));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!marker.exists());
}

#[test]
fn interrupting_the_wait_exits_130_and_withdraws_the_request() {
    stopping_the_wait_withdraws_the_request("INT", 130, "interrupted (SIGINT)");
}

#[test]
fn terminating_the_wait_exits_143_and_withdraws_the_request() {
    stopping_the_wait_withdraws_the_request("TERM", 143, "terminated (SIGTERM)");
}

#[test]
fn hanging_up_on_the_wait_exits_129_and_withdraws_the_request() {
    stopping_the_wait_withdraws_the_request("HUP", 129, "hung up (SIGHUP)");
}

#[test]
fn sudo_entry_goes_through_the_whole_flow() {
    let flow = Flow::new(approve(Grant::Once));
    // `sudo` is found on PATH as the symlink in the sandbox's bin dir, so argv[0] is "sudo".
    let out = flow
        .sb
        .run_as_agent("sudo")
        .env("XDG_CONFIG_HOME", flow.sb.agent_dir().join("config"))
        .env("XDG_STATE_HOME", flow.sb.agent_dir().join("state"))
        .env("ASSENT_REASON", "habit")
        .args(["-u", "root", "id", "-u"])
        .run();
    out.assert_success();
    assert_eq!(out.stdout, "0\n", "{out}");
    let shown = flow.approver.requests();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].reason, "habit");
    assert_eq!(shown[0].argv, ["id", "-u"]);

    let refused = flow
        .sb
        .run_as_agent("sudo")
        .env("XDG_CONFIG_HOME", flow.sb.agent_dir().join("config"))
        .args(["-i"])
        .run();
    refused.assert_code(64);
    stderr_has(
        &refused,
        "assent: sudo option -i is not supported by assent's sudo entry",
    );
    assert_eq!(flow.approver.requests().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Pre-flight: what no approval can fix stops the run before anyone is asked.

/// A run refused before any request: exit 78, one line that names `needles`, and the approver
/// was shown nothing.
fn assert_refused_before_asking(flow: &Flow, out: &Outcome, needles: &[&str]) {
    out.assert_code(78);
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "one line: {out}");
    for needle in needles {
        assert!(lines[0].contains(needle), "{needle:?} in {out}");
    }
    assert!(lines[0].ends_with("; no request was sent"), "{out}");
    assert!(
        flow.approver.requests().is_empty(),
        "no request reached the approver"
    );
    assert!(pending_requests(flow).is_empty());
}

/// `sudo` as the agent, through the symlink on PATH, with the agent's XDG directories.
fn agent_sudo(flow: &Flow) -> Run<'_> {
    flow.sb
        .run_as_agent("sudo")
        .env("XDG_CONFIG_HOME", flow.sb.agent_dir().join("config"))
        .env("XDG_STATE_HOME", flow.sb.agent_dir().join("state"))
}

#[test]
fn under_no_new_privs_the_run_stops_before_asking_and_names_the_mcp_route() {
    let flow = Flow::new(approve(Grant::Once));
    for through in [
        vec![
            flow.sb.bin_dir().join("assent").display().to_string(),
            "run".into(),
            "--".into(),
        ],
        vec!["sudo".to_owned()],
    ] {
        let out = flow
            .sb
            .run_as_agent("setpriv")
            .env("XDG_CONFIG_HOME", flow.sb.agent_dir().join("config"))
            .env("XDG_STATE_HOME", flow.sb.agent_dir().join("state"))
            .arg("--no-new-privs")
            .arg("--")
            .args(&through)
            .args(["id", "-u"])
            .run();
        assert_refused_before_asking(
            &flow,
            &out,
            &["no_new_privs", "`assent mcp`", "outside the sandbox"],
        );
        assert!(!out.stderr.contains("chmod"), "{out}");
    }
    // Status says which route works here.
    let out = flow
        .sb
        .run_as_agent("setpriv")
        .env("XDG_CONFIG_HOME", flow.sb.agent_dir().join("config"))
        .env("XDG_STATE_HOME", flow.sb.agent_dir().join("state"))
        .args(["--no-new-privs", "--"])
        .arg(flow.sb.bin_dir().join("assent"))
        .arg("status")
        .run();
    out.assert_code(78);
    assert!(
        out.stdout.contains("PROBLEM  route      MCP only: "),
        "{out}"
    );
    let out = flow.shim().arg("status").run();
    out.assert_success();
    assert!(
        out.stdout
            .contains("ok       route      the `sudo` entry and `assent run` work from here"),
        "{out}"
    );
}

#[test]
fn a_caller_who_is_not_a_requester_is_stopped_before_asking() {
    let flow = Flow::new(approve(Grant::Once));
    flow.sb.write_config(
        &ElevatorConfig::new()
            .approver("alice", &flow.alice.public_line)
            .requester("nobody", &["root"]),
    );
    let out = flow.run(&[], &["id", "-u"]).run();
    assert_refused_before_asking(
        &flow,
        &out,
        &[
            &format!(
                "user {} is not a [[requester]] in /etc/assent/elevator.toml",
                flow.agent.name
            ),
            "fix: as root, add a [[requester]] block",
        ],
    );
}

#[test]
fn a_run_as_that_is_not_allowed_is_stopped_before_asking() {
    let flow = Flow::new(approve(Grant::Once));
    let other = TestUser::other();
    let out = agent_sudo(&flow)
        .args(["-u", &other.name, "id", "-u"])
        .run();
    assert_refused_before_asking(
        &flow,
        &out,
        &[
            &format!(
                "{} may not run commands as {:?}",
                flow.agent.name, other.name
            ),
            "run_as in /etc/assent/elevator.toml allows root",
        ],
    );
}

#[test]
fn a_directory_the_target_cannot_enter_is_stopped_before_asking() {
    let flow = Flow::new(approve(Grant::Once));
    let other = TestUser::other();
    flow.sb.write_config(
        &ElevatorConfig::new()
            .approver("alice", &flow.alice.public_line)
            .requester(&flow.agent.name, &["root", &other.name]),
    );
    // The agent's own private directory: it may enter, the other user may not.
    let private = flow.sb.agent_dir().join("private");
    fs::create_dir(&private).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&private, Some(flow.agent.uid), Some(flow.agent.gid)).unwrap();
    let out = agent_sudo(&flow)
        .cwd(&private)
        .args(["-u", &other.name, "id", "-u"])
        .run();
    assert_refused_before_asking(
        &flow,
        &out,
        &[
            &format!("{} cannot enter {}", other.name, private.display()),
            "mode 0700",
            "fix: cd to a directory",
        ],
    );
    // Root may enter it: the same command as root is asked for, and runs.
    let out = agent_sudo(&flow).cwd(&private).args(["id", "-u"]).run();
    out.assert_success();
    assert_eq!(out.stdout, "0\n");
}

#[test]
fn an_elevator_config_the_elevator_would_refuse_stops_the_run_and_fails_status() {
    let flow = Flow::new(approve(Grant::Once));
    let good = fs::read_to_string(flow.sb.config_path()).unwrap();
    assert!(good.contains("run_as"));
    // A typo the elevator's parser refuses.
    flow.sb.write_config_text(&good.replace("run_as", "run-as"));
    let status = flow.shim().arg("status").run();
    status.assert_code(78);
    let line = status_line(&status, "requester");
    assert!(line.starts_with("PROBLEM "), "{status}");
    assert!(line.contains("run-as"), "{status}");
    assert!(
        status
            .stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("not ready"),
        "{status}"
    );
    let out = flow.run(&[], &["id"]).run();
    assert_refused_before_asking(
        &flow,
        &out,
        &["run-as", "the elevator refuses every request"],
    );

    // Mode 0666: the elevator refuses it, and so does status.
    flow.sb.write_config_text(&good);
    fs::set_permissions(flow.sb.config_path(), fs::Permissions::from_mode(0o666)).unwrap();
    let status = flow.shim().arg("status").run();
    status.assert_code(78);
    assert!(
        status_line(&status, "requester").contains(
            "/etc/assent/elevator.toml is writable by group or others (mode 0666); run: chmod go-w /etc/assent/elevator.toml"
        ),
        "{status}"
    );
    let out = flow.run(&[], &["id"]).run();
    assert_refused_before_asking(&flow, &out, &["writable by group or others"]);

    // Fixed: ready, and the run is asked for.
    fs::set_permissions(flow.sb.config_path(), fs::Permissions::from_mode(0o644)).unwrap();
    flow.shim().arg("status").run().assert_success();
    flow.run(&[], &["id", "-u"]).run().assert_success();
}

// ---------------------------------------------------------------------------------------------
// The sudo forms agents use.

#[test]
fn sudo_n_never_asks_and_runs_on_a_cached_grant() {
    let flow = Flow::new(approve(Grant::Timed));
    flow.approver.publish_status(now(), vec![]);
    let out = agent_sudo(&flow).args(["-n", "id", "-u"]).run();
    out.assert_code(1);
    assert_eq!(
        out.stderr,
        "assent: approval required; run without -n to ask the approver\n"
    );
    assert!(flow.approver.requests().is_empty(), "nobody was asked");

    // A timed grant for the same command, then -n runs on it, silently.
    flow.run(&["--grant", "timed:1h"], &["id", "-u"])
        .run()
        .assert_success();
    assert_eq!(flow.approver.requests().len(), 1);
    let out = agent_sudo(&flow).args(["-n", "id", "-u"]).run();
    out.assert_success();
    assert_eq!(out.stdout, "0\n");
    assert_eq!(out.stderr, "", "a cached grant runs silently");
    assert_eq!(flow.approver.requests().len(), 1, "still one prompt");

    // -l lists it; -k, -K and -v do nothing and succeed.
    let listed = agent_sudo(&flow).arg("-l").run();
    listed.assert_success();
    assert!(
        listed.stdout.contains("may run these without asking"),
        "{listed}"
    );
    assert!(listed.stdout.contains("\nid -u\n"), "{listed}");
    assert!(listed.stdout.contains("  state    live"), "{listed}");
    for option in ["-k", "-K", "-v"] {
        let out = agent_sudo(&flow).arg(option).run();
        out.assert_success();
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str()),
            ("", ""),
            "{option}"
        );
    }
    // -k with a command runs it as usual.
    let out = agent_sudo(&flow).args(["-k", "-n", "id", "-u"]).run();
    out.assert_success();
    assert_eq!(flow.approver.requests().len(), 1);
    // Other options name what to do instead.
    let out = agent_sudo(&flow).args(["-E", "id"]).run();
    out.assert_code(64);
    stderr_has(&out, "sudo NAME=VALUE COMMAND");
}

#[test]
fn quiet_leaves_stderr_to_the_command() {
    let flow = Flow::new(approve(Grant::Once));
    let out = agent_sudo(&flow)
        .env("ASSENT_QUIET", "1")
        .args(["sh", "-c", "echo to-stderr >&2"])
        .run();
    out.assert_success();
    assert_eq!(out.stderr, "to-stderr\n", "no assent: lines");
    flow.write_agent_toml(&format!("relay = {:?}\nquiet = true\n", flow.relay.url()));
    let out = flow.run(&[], &["id", "-u"]).run();
    out.assert_success();
    assert_eq!(out.stderr, "");
    // Failures still say why.
    flow.approver.set_policy(deny(Some("not now")));
    let out = flow.run(&[], &["id", "-u"]).run();
    out.assert_code(77);
    assert_eq!(out.stderr, "assent: denied by alice: not now\n");
}

#[test]
fn an_unreachable_relay_is_given_up_after_connect_timeout() {
    let flow = Flow::new(approve(Grant::Once));
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("ws://{free}");
    flow.write_agent_toml(&format!("relay = {url:?}\nconnect_timeout = \"1s\"\n"));
    let started = Instant::now();
    let out = flow.run(&["--timeout", "5m"], &["id"]).run();
    out.assert_code(75);
    let last = out.stderr_lines().last().copied().unwrap_or_default();
    assert!(
        last.starts_with(&format!("assent: relay {url} unreachable for 1s (")),
        "{out}"
    );
    assert!(last.contains("fix: start `assent-console`"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "gave up long before the 5m timeout"
    );
}

/// Every request names this install's host id; without one the shim cannot ask, and says how
/// to make one. The request it then sends names the id the elevator reads.
#[test]
fn a_missing_or_malformed_host_id_exits_78_with_the_fix() {
    let flow = Flow::new(approve(Grant::Once));
    fs::remove_file(flow.sb.host_id_path()).unwrap();
    let out = flow.run(&[], &["id", "-u"]).run();
    out.assert_code(78);
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].starts_with(
            "assent: /etc/assent/host-id does not exist, so this host has no host id; make one as root: (umask 022; printf"
        ),
        "{out}"
    );
    let status = flow.shim().arg("status").run();
    status.assert_code(78);
    assert!(
        status_line(&status, "host id")
            .starts_with("MISSING  host id    /etc/assent/host-id does not exist"),
        "{status}"
    );

    flow.sb.write_host_id_text("3F2A\n");
    let out = flow.run(&[], &["id", "-u"]).run();
    out.assert_code(78);
    stderr_has(&out, "/etc/assent/host-id does not hold a host id");
    assert!(flow.approver.requests().is_empty(), "nothing was asked");

    let id = assent_protocol::HostId([0x42; 16]);
    flow.sb.write_host_id(id);
    let ran = flow.run(&[], &["id", "-u"]).run();
    ran.assert_success();
    assert_eq!(flow.approver.requests()[0].host_id, id);
}

#[test]
fn a_missing_key_exits_78_naming_the_file() {
    let flow = Flow::new(approve(Grant::Once));
    let key = flow.config_dir().join("agent.key");
    fs::remove_file(&key).unwrap();
    let out = flow.run(&[], &["id"]).run();
    out.assert_code(78);
    assert_eq!(
        out.stderr_lines(),
        [format!(
            "assent: no agent key at {}; create one with `assent keygen`",
            key.display()
        )
        .as_str()]
    );
    assert!(flow.approver.requests().is_empty());
    // The key file stays private.
    let made = flow.shim().arg("keygen").run();
    made.assert_success();
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn status_reports_the_key_the_relay_and_the_setuid_elevator() {
    let flow = Flow::new(SILENT);
    let out = flow.shim().arg("status").run();
    out.assert_success();
    let key = fs::read_to_string(flow.config_dir().join("agent.key.pub")).unwrap();
    let fingerprint = assent_protocol::PublicKey::parse(&key)
        .unwrap()
        .fingerprint();
    for needle in [
        format!(
            "ok       key        {} {fingerprint}",
            flow.config_dir().join("agent.key").display()
        ),
        format!(
            "ok       relay      {} (from agent.toml): reachable, logged in",
            flow.relay.url()
        ),
        format!(
            "ok       elevator   {} (setuid root)",
            flow.sb.elevator_path().display()
        ),
        format!(
            "ok       requester  {} is a [[requester]] in /etc/assent/elevator.toml (run_as: root)",
            flow.agent.name
        ),
        "ok       approvers  1 listed in /etc/assent/elevator.toml: alice".to_owned(),
        "(from /etc/assent/elevator.toml)".to_owned(),
    ] {
        assert!(out.stdout.contains(&needle), "{needle:?} in {out}");
    }
    assert!(!out.stdout.contains("MISSING"), "{out}");
    assert!(!out.stdout.contains("PROBLEM"), "{out}");
    assert_eq!(
        out.stdout.lines().last(),
        Some("ready: `assent run` has everything it needs"),
        "{out}"
    );

    // With the relay gone, status says so, with the fix, and exits 75.
    let mut flow = flow;
    flow.relay.kill();
    let url = flow.relay.url();
    let started = Instant::now();
    let out = flow.shim().arg("status").run();
    out.assert_code(75);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "status is quick"
    );
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("PROBLEM  relay      "))
        .unwrap_or_else(|| panic!("no relay PROBLEM line in {out}"));
    assert!(
        line.starts_with(&format!(
            "PROBLEM  relay      {url} (from agent.toml): NOT reachable: "
        )),
        "{line}"
    );
    assert!(
        line.contains("fix: start `assent-console`") && line.contains("`assent-relay`"),
        "{line}"
    );
    assert!(line.contains("ASSENT_RELAY"), "{line}");
    assert_eq!(
        out.stdout.lines().filter(|l| !l.starts_with("ok ")).count(),
        2,
        "only the relay line and the summary: {out}"
    );
    assert!(
        out.stdout
            .lines()
            .last()
            .unwrap()
            .contains("only the relay is unreachable"),
        "{out}"
    );
}

#[test]
fn status_names_a_missing_requester_and_approver_and_a_refused_login() {
    let mut flow = Flow::new(SILENT);
    // The elevator lists another requester; the relay admits listed agents only, and lists none.
    flow.sb.write_config(
        &ElevatorConfig::new()
            .approver("alice", &flow.alice.public_line)
            .requester("nobody", &["root"]),
    );
    flow.admit_listed_agents_only();
    let out = flow.shim().arg("status").run();
    out.assert_code(78);
    let user = &flow.agent.name;
    for needle in [
        format!(
            "MISSING  requester  {user} is not a [[requester]] in /etc/assent/elevator.toml, so the elevator refuses it; fix: as root, add a [[requester]] block (user = \"{user}\", run_as = [\"root\"])"
        ),
        format!(
            "PROBLEM  relay      {} (from agent.toml): reachable, but it refused this key's login",
            flow.relay.url()
        ),
    ] {
        assert!(out.stdout.contains(&needle), "{needle:?} in {out}");
    }
    // With no approver the elevator refuses its whole configuration, and so does status.
    flow.sb.write_config_text(&format!(
        "[[requester]]\nuser = \"{user}\"\nrun_as = [\"root\"]\n"
    ));
    let out = flow.shim().arg("status").run();
    out.assert_code(78);
    for needle in [
        "PROBLEM  requester  /etc/assent/elevator.toml: no [[approver]] is listed; add one with name and key, so the elevator refuses everything",
        "UNKNOWN  approvers  cannot tell until the elevator accepts /etc/assent/elevator.toml",
    ] {
        assert!(out.stdout.contains(needle), "{needle:?} in {out}");
    }
    let relay_line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("PROBLEM  relay"))
        .unwrap();
    assert!(relay_line.contains("[[agent]]"), "{relay_line}");

    // Without an elevator config at all, both lines say it does not exist.
    fs::remove_file(flow.sb.config_path()).unwrap();
    let out = flow.shim().arg("status").run();
    out.assert_code(78);
    assert!(
        out.stdout.contains(
            "MISSING  requester  /etc/assent/elevator.toml does not exist, so the elevator refuses everything"
        ),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("MISSING  approvers  none: /etc/assent/elevator.toml does not exist"),
        "{out}"
    );
}

#[test]
fn status_cannot_tell_when_the_elevator_config_is_unreadable() {
    let flow = Flow::new(SILENT);
    fs::set_permissions(flow.sb.config_path(), fs::Permissions::from_mode(0o600)).unwrap();
    let out = flow.shim().arg("status").run();
    // The elevator (root) can still read it: nothing this user can see is missing.
    out.assert_success();
    assert!(
        out.stdout.contains(&format!(
            "UNKNOWN  requester  cannot tell whether {} is a [[requester]]: /etc/assent/elevator.toml is not readable",
            flow.agent.name
        )),
        "{out}"
    );
    assert!(
        out.stdout.contains(
            "UNKNOWN  approvers  cannot tell whether an [[approver]] is listed: /etc/assent/elevator.toml is not readable"
        ),
        "{out}"
    );
    assert!(
        out.stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("ready as far as this user can tell"),
        "{out}"
    );
}

#[test]
fn keygen_prints_the_requester_block_for_this_user() {
    // No elevator config yet: the agent is not listed, so the block to add is printed.
    let sb = Sandbox::new();
    sb.install_bin("assent", &built_binary("assent"), 0o755);
    let agent = TestUser::agent();
    let out = agent_shim(&sb).arg("keygen").run();
    out.assert_success();
    let public = fs::read_to_string(sb.agent_dir().join("config/assent/agent.key.pub")).unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], public.trim_end(), "{out}");
    assert!(lines[1].starts_with("fingerprint: SHA256:"), "{out}");
    for needle in [
        "\nNext:\n".to_owned(),
        format!(
            "/etc/assent/elevator.toml\n       [[requester]]\n       user = \"{}\"\n       run_as = [\"root\"]\n",
            agent.name
        ),
        format!(
            "       [[agent]]\n       name = \"{}\"\n       key = {:?}\n",
            agent.name,
            public.trim_end()
        ),
        "assent status\n".to_owned(),
        "assent run --reason \"first try\" -- id -u\n".to_owned(),
    ] {
        assert!(out.stdout.contains(&needle), "{needle:?} in {out}");
    }

    // Once listed (in a file the elevator accepts), keygen says so instead of printing the
    // block again.
    let alice = KeyPair::generate(&sb.keys_dir(), "alice");
    sb.write_config(
        &ElevatorConfig::new()
            .approver("alice", &alice.public_line)
            .requester(&agent.name, &["root"]),
    );
    let out = agent_shim(&sb).args(["keygen", "--force"]).run();
    out.assert_success();
    assert!(
        out.stdout.contains(&format!(
            "{} is already a [[requester]] in /etc/assent/elevator.toml (run_as: root).",
            agent.name
        )),
        "{out}"
    );
    assert!(!out.stdout.contains("[[requester]]\n"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// A relay serving wss:// with a certificate from a private CA, for localhost only.

/// A [`Flow`] whose agent talks to a second relay, over `wss://`.
struct TlsFlow {
    flow: Flow,
    relay: RelayProcess,
    ca: PrivateCa,
}

impl TlsFlow {
    fn new() -> TlsFlow {
        let flow = Flow::new(SILENT);
        let dir = flow.sb.root().join("tls");
        fs::create_dir(&dir).unwrap();
        let ca = PrivateCa::new(&dir, "ca");
        let leaf = ca.leaf("relay", &["DNS:localhost"]);
        let relay = RelayProcess::start_tls(
            flow.relay.config(),
            &flow.sb.root().join("tls-relay.log"),
            "127.0.0.1:0",
            &leaf,
        );
        TlsFlow { flow, relay, ca }
    }

    /// `agent.toml` pointing at `url`, with `extra` lines.
    fn agent_toml(&self, url: &str, extra: &str) {
        self.flow
            .write_agent_toml(&format!("relay = {url:?}\n{extra}"));
    }

    /// Lines of the relay's log that contain `needle`.
    fn logged(&self, needle: &str) -> usize {
        self.relay
            .log_text()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Wait for the relay to have logged `needle` at least once, and return how often.
    fn wait_logged(&self, needle: &str) -> usize {
        wait_for(&format!("the relay to log {needle:?}"), || {
            self.logged(needle) > 0
        });
        self.logged(needle)
    }
}

/// A run that ended with exit 78 and exactly one line, which names the fix; no retry line.
fn assert_config_line<'o>(out: &'o Outcome, needles: &[&str]) -> &'o str {
    out.assert_code(78);
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "one line, no retries: {out}");
    for needle in needles {
        assert!(lines[0].contains(needle), "{needle:?}: {out}");
    }
    lines[0]
}

#[test]
fn tls_trust_name_and_scheme_errors_exit_78_at_once_with_the_fix() {
    let tls = TlsFlow::new();
    let port = tls.relay.addr().port();
    let handshakes = "TLS handshake failed";

    // The CA is not trusted.
    tls.agent_toml(&format!("wss://localhost:{port}"), "");
    let out = tls.flow.run(&["--timeout", "60s"], &["id"]).run();
    assert_config_line(
        &out,
        &[
            "not signed by a CA this host trusts",
            "relay_ca",
            "ASSENT_RELAY_CA",
        ],
    );
    assert_eq!(tls.wait_logged(handshakes), 1, "the shim tried once");
    // `assent status` says what it is, with the same fix, and not "start the console".
    let status = tls.flow.shim().arg("status").run();
    status.assert_code(78);
    let line = status
        .stdout
        .lines()
        .find(|l| l.starts_with("PROBLEM  relay"))
        .unwrap_or_else(|| panic!("no relay PROBLEM line: {status}"));
    assert!(
        line.contains("not signed by a CA this host trusts"),
        "{line}"
    );
    assert!(line.contains("relay_ca"), "{line}");
    assert!(!line.contains("assent-console"), "{line}");
    wait_for("the status probe's handshake", || {
        tls.logged(handshakes) >= 2
    });
    assert_eq!(tls.logged(handshakes), 2, "status tried once");

    // Trusted, but the certificate is for localhost, not for 127.0.0.1.
    let ca = format!("relay_ca = {:?}\n", tls.ca.cert().display().to_string());
    tls.agent_toml(&format!("wss://127.0.0.1:{port}"), &ca);
    let out = tls.flow.run(&["--timeout", "60s"], &["id"]).run();
    assert_config_line(&out, &["not valid for the name 127.0.0.1"]);
    wait_for("the next handshake", || tls.logged(handshakes) >= 3);
    assert_eq!(tls.logged(handshakes), 3, "the shim tried once more");

    // Plain ws:// to the TLS port.
    tls.agent_toml(&format!("ws://127.0.0.1:{port}"), &ca);
    let out = tls.flow.run(&["--timeout", "60s"], &["id"]).run();
    assert_config_line(&out, &[&format!("use wss://127.0.0.1:{port}")]);
    wait_for("the next handshake", || tls.logged(handshakes) >= 4);
    assert_eq!(tls.logged(handshakes), 4, "the shim tried once more");

    // A CA file that is not there.
    tls.agent_toml(
        &format!("wss://localhost:{port}"),
        "relay_ca = \"/nonexistent/assent-ca.pem\"\n",
    );
    let out = tls.flow.run(&["--timeout", "60s"], &["id"]).run();
    assert_config_line(&out, &["/nonexistent/assent-ca.pem", "relay_ca"]);
    assert!(tls.flow.sb.audit_lines().is_empty());
}

#[test]
fn a_trusted_private_ca_carries_the_whole_flow_over_wss() {
    let tls = TlsFlow::new();
    let url = tls.relay.url_with_host("localhost");
    let approver = Command::new(built_binary("assent-test-approver"))
        .args(["--relay", &url, "--name", "alice", "--count", "2", "--key"])
        .arg(&tls.flow.alice.private_path)
        .arg("--ca")
        .arg(tls.ca.cert())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut approver = KillOnDrop(approver);
    // From agent.toml, as a list.
    tls.agent_toml(
        &url,
        &format!("relay_ca = [{:?}]\n", tls.ca.cert().display().to_string()),
    );
    let out = tls.flow.run(&[], &["id", "-u"]).run();
    out.assert_success();
    assert_eq!(out.stdout, "0\n", "{out}");
    // From ASSENT_RELAY_CA, which replaces relay_ca.
    tls.agent_toml(&url, "relay_ca = \"/nonexistent/assent-ca.pem\"\n");
    let out = tls
        .flow
        .run(&[], &["id", "-u"])
        .env("ASSENT_RELAY_CA", tls.ca.cert())
        .run();
    out.assert_success();
    assert!(approver.0.wait().unwrap().success());
}

/// Kills the child process when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_refused_login_exits_78_after_one_try() {
    let mut flow = Flow::new(SILENT);
    flow.admit_listed_agents_only();
    let refusals = || {
        flow.relay
            .log_text()
            .lines()
            .filter(|l| l.contains("login refused"))
            .count()
    };
    let before = refusals();
    let out = flow.run(&["--timeout", "60s"], &["id"]).run();
    assert_config_line(
        &out,
        &[
            "refused this agent's key",
            "[[agent]]",
            "not listed as an [[agent]]",
        ],
    );
    assert_eq!(refusals(), before + 1, "one login, no retry: {out}");
}

// ---------------------------------------------------------------------------------------------
// `assent` run directly, as whoever runs the tests, with its own XDG directories.

/// A scratch home for `assent`, whose relay URL points where nothing listens.
struct Plain {
    dir: ScratchDir,
    relay: String,
}

impl Plain {
    fn new() -> Plain {
        // A port nobody listens on: bind it, note it, let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        Plain {
            dir: ScratchDir::new("shim-plain"),
            relay: format!("ws://127.0.0.1:{port}"),
        }
    }

    fn config_dir(&self) -> PathBuf {
        self.dir.join("config/assent")
    }

    fn write_agent_toml(&self, text: &str) {
        fs::create_dir_all(self.config_dir()).unwrap();
        fs::write(self.config_dir().join("agent.toml"), text).unwrap();
    }

    /// `assent ARGS…` in this home.
    fn command(&self, args: &[&str]) -> Command {
        self.command_of(&built_binary("assent"), args)
    }

    /// `PROGRAM ARGS…` with the environment `assent` gets here.
    fn command_of(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("XDG_STATE_HOME", self.dir.join("state"))
            .env("ASSENT_RELAY", &self.relay)
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Outcome {
        outcome(self.command(args).output().expect("cannot run assent"))
    }
}

fn outcome(output: std::process::Output) -> Outcome {
    Outcome {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The line of `status` output about `what`.
fn status_line<'o>(out: &'o Outcome, what: &str) -> &'o str {
    out.stdout
        .lines()
        .find(|l| {
            l.get(9..)
                .is_some_and(|rest| rest.starts_with(&format!("{what:<10} ")))
        })
        .unwrap_or_else(|| panic!("no {what} line in {out}"))
}

#[test]
fn generate_prints_a_man_page_and_completions_from_the_command_line() {
    let plain = Plain::new();
    let out = plain.run(&["--generate", "man"]);
    out.assert_success();
    let page = &out.stdout;
    assert!(page.contains("\n.TH assent 1 "), "{out}");
    for sub in ["run", "keygen", "grants", "status"] {
        assert!(page.contains(&format!(".SS {sub}\n")), "subcommand {sub}");
    }
    for code in ["N", "64", "75", "77", "78", "130"] {
        assert!(
            page.contains(&format!(".TP\n\\fB{code}\\fR\n")),
            "exit status {code}"
        );
    }
    for needle in [
        ".SH \"EXIT STATUS\"",
        ".SH FILES",
        ".SH ENVIRONMENT",
        ".SH \"THE SUDO ENTRY\"",
        "ASSENT_RELAY",
        "ASSENT_REASON",
        "agent.toml",
        "agent.key.pub",
        "/etc/assent/elevator.toml",
        "sudo [\\-u USER] [\\-n] [\\-\\-] COMMAND...",
    ] {
        assert!(page.contains(needle), "{needle}");
    }
    for kind in ["complete-bash", "complete-zsh", "complete-fish"] {
        let out = plain.run(&["--generate", kind]);
        out.assert_success();
        assert!(!out.stdout.trim().is_empty(), "{kind}");
        assert!(out.stdout.contains("run"), "{kind}: {out}");
        assert!(out.stdout.contains("keygen"), "{kind}: {out}");
    }
    let out = plain.run(&["--generate", "pdf"]);
    out.assert_code(64);
}

#[test]
fn the_sudo_entry_refuses_generate() {
    let plain = Plain::new();
    let sudo = plain.dir.join("sudo");
    std::os::unix::fs::symlink(built_binary("assent"), &sudo).unwrap();
    // Through the symlink, as an agent would reach it.
    let out = outcome(
        plain
            .command_of(&sudo, &["--generate", "man"])
            .output()
            .unwrap(),
    );
    out.assert_code(64);
    assert!(out.stdout.is_empty(), "{out}");
    assert_eq!(
        out.stderr_lines(),
        [
            "assent: sudo option --generate is not supported by assent's sudo entry; use: sudo [-u USER] [-n] [--] COMMAND... (or sudo -l; -k, -K and -v are accepted and do nothing)"
        ]
    );
}

#[test]
fn status_without_a_key_says_it_is_missing() {
    let plain = Plain::new();
    let out = plain.run(&["status"]);
    out.assert_code(78);
    assert_eq!(
        status_line(&out, "key"),
        format!(
            "MISSING  key        no agent key at {}; create one with `assent keygen`",
            plain.config_dir().join("agent.key").display()
        )
    );
    // The relay is still tried (without a key, just whether it answers).
    assert!(
        status_line(&out, "relay").starts_with(&format!(
            "PROBLEM  relay      {} (from ASSENT_RELAY): NOT reachable",
            plain.relay
        )),
        "{out}"
    );
    assert!(out.stderr.is_empty(), "{out}");
}

#[test]
fn status_names_a_missing_elevator() {
    let plain = Plain::new();
    assert!(plain.run(&["keygen"]).success());
    // Not on PATH.
    let out = plain.run(&["status"]);
    out.assert_code(78);
    assert_eq!(
        status_line(&out, "elevator"),
        "MISSING  elevator   assent-elevate was not found on PATH; install it (setuid root) or set elevator = \"/path/to/assent-elevate\" in agent.toml"
    );
    // Named in agent.toml, but not there.
    let absent = plain.dir.join("nowhere/assent-elevate");
    plain.write_agent_toml(&format!("elevator = {:?}\n", absent.display().to_string()));
    let out = plain.run(&["status"]);
    out.assert_code(78);
    assert_eq!(
        status_line(&out, "elevator"),
        format!(
            "MISSING  elevator   the elevator {} set in agent.toml is missing or not executable; install assent-elevate there or fix the path",
            absent.display()
        )
    );
}

#[test]
fn status_names_an_elevator_that_is_not_setuid_root() {
    let plain = Plain::new();
    assert!(plain.run(&["keygen"]).success());
    let bin = plain.dir.join("bin");
    fs::create_dir(&bin).unwrap();
    let copy = bin.join("assent-elevate");
    fs::copy(built_binary("assent-elevate"), &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    plain.write_agent_toml(&format!("elevator = {:?}\n", copy.display().to_string()));
    let fix = format!(
        "fix: `sudo chown root:root {0} && sudo chmod 4755 {0}`",
        copy.display()
    );

    let out = plain.run(&["status"]);
    out.assert_code(78);
    assert_eq!(
        status_line(&out, "elevator"),
        format!(
            "PROBLEM  elevator   {}: not setuid, so it will refuse every request; {fix}",
            copy.display()
        )
    );

    // Setuid, but owned by someone else.
    let agent = TestUser::agent();
    std::os::unix::fs::chown(&copy, Some(agent.uid), Some(agent.gid)).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o4755)).unwrap();
    let out = plain.run(&["status"]);
    out.assert_code(78);
    assert_eq!(
        status_line(&out, "elevator"),
        format!(
            "PROBLEM  elevator   {}: owned by uid {}, not root, so it will refuse every request; {fix}",
            copy.display(),
            agent.uid
        )
    );
}

#[test]
fn a_closed_stdout_ends_grants_status_and_keygen_quietly() {
    let plain = Plain::new();
    assert!(plain.run(&["keygen"]).success());
    let expected_status = plain.run(&["status"]).code();
    for (args, code) in [
        (&["grants"][..], Some(0)),
        (&["grants", "--json"][..], Some(0)),
        (&["status"][..], expected_status),
        (&["keygen", "--force"][..], Some(0)),
    ] {
        // A pipe whose reader is already gone: the first write fails with EPIPE.
        let (reader, writer) = nix::unistd::pipe().unwrap();
        drop(reader);
        let mut cmd = plain.command(args);
        cmd.stdout(Stdio::from(writer)).stderr(Stdio::piped());
        let output = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: quietly, got {stderr}");
        assert_eq!(output.status.code(), code, "{args:?}: {stderr}");
    }
}

#[test]
fn grants_piped_into_head_exits_without_a_panic() {
    let plain = Plain::new();
    assert!(plain.run(&["keygen"]).success());
    let assent = built_binary("assent");
    let assent = assent.to_str().unwrap();
    for _ in 0..3 {
        let cmd = plain.command_of(
            Path::new("/bin/sh"),
            &[
                "-c",
                "\"$0\" grants | head -0; \"$0\" grants --json | head -0; \"$0\" status | head -0",
                assent,
            ],
        );
        let out = outcome({ cmd }.output().unwrap());
        assert!(!out.stderr.contains("panicked"), "{out}");
        assert!(out.stderr.is_empty(), "{out}");
    }
}

// ---------------------------------------------------------------------------------------------
// The agent can stop what it started: the elevator stays behind as the command's monitor,
// with the agent's real uid, and relays signals to the root command.

/// `sudo sh -c 'echo $$ > PIDFILE; exec sleep 300'` as the agent: a root command that runs
/// until it is stopped. `before` runs first with the rest as its arguments (e.g. `setsid`).
fn sudo_sleeper<'a>(flow: &'a Flow, pidfile: &Path, before: &[&str]) -> Run<'a> {
    let command = format!("echo $$ > '{}'; exec sleep 300", pidfile.display());
    let (program, first) = match before.split_first() {
        Some((program, rest)) => (*program, rest.to_vec()),
        None => ("sudo", Vec::new()),
    };
    let mut run = flow
        .sb
        .run_as_agent(program)
        .env("XDG_CONFIG_HOME", flow.sb.agent_dir().join("config"))
        .env("XDG_STATE_HOME", flow.sb.agent_dir().join("state"))
        .args(first);
    if !before.is_empty() {
        run = run.arg("sudo");
    }
    run.args(["sh", "-c", &command])
}

/// The pid the root command wrote, once it has, checked to be root's.
fn root_pid(pidfile: &Path) -> u32 {
    let mut pid = 0;
    wait_for("the root command to start", || {
        pid = fs::read_to_string(pidfile)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        pid != 0 && assent_tests::proc_status(pid, "Name").as_deref() == Some("sleep")
    });
    let uids = assent_tests::proc_status(pid, "Uid").unwrap_or_default();
    assert!(
        uids.starts_with("0 0 "),
        "the command is not root's: {uids}"
    );
    pid
}

/// Whether `pid` is still a live `sleep` (not gone, not a zombie).
fn sleeping(pid: u32) -> bool {
    assent_tests::proc_status(pid, "Name").as_deref() == Some("sleep")
        && assent_tests::proc_status(pid, "State").is_some_and(|s| !s.starts_with('Z'))
}

/// Wait (against a deadline) for the root command to be gone; if it outlives the deadline,
/// kill it as root and fail.
fn assert_gone(pid: u32, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    while sleeping(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if sleeping(pid) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("{what}: the root command (pid {pid}) was left running");
    }
}

/// The `exit` receipt that follows the last `exec` line, once the monitor has written it.
fn exit_receipt(sb: &Sandbox) -> assent_tests::sandbox::AuditLine {
    wait_for("the exit receipt", || {
        sb.audit_lines().last().is_some_and(|l| l.event() == "exit")
    });
    let lines = sb.audit_lines();
    let exec = &lines[lines.len() - 2];
    let exit = lines.last().unwrap().clone();
    assert_eq!(exec.event(), "exec", "{}", sb.audit_text());
    assert_eq!(
        exit.json["request_id"], exec.json["request_id"],
        "{}",
        exit.raw
    );
    exit
}

#[test]
fn sigterm_and_sigint_to_the_sudo_pid_stop_the_root_command() {
    let flow = Flow::new(approve(Grant::Once));
    for (name, number) in [("TERM", libc::SIGTERM), ("INT", libc::SIGINT)] {
        let pidfile = flow.marker(&format!("sleeper-{name}"));
        let running = sudo_sleeper(&flow, &pidfile, &[]).spawn();
        let sleeper = root_pid(&pidfile);
        // The sandbox execs its way down to sudo and the elevator: this pid is theirs.
        let sudo = running.pid();
        let sent = flow
            .sb
            .run_as_agent("/bin/kill")
            .args([&format!("-{name}"), &sudo.to_string()])
            .run();
        sent.assert_success();
        let out = running.wait();
        out.assert_code(128 + number);
        assert_gone(sleeper, &format!("SIG{name} to sudo"));
        let receipt = exit_receipt(&flow.sb);
        assert_eq!(receipt.json["signal"], number, "{}", receipt.raw);
        assert!(receipt.json["status"].is_null(), "{}", receipt.raw);
        assert!(receipt.json["wall_ms"].is_u64(), "{}", receipt.raw);
        assert!(receipt.json["cpu_ms"].is_u64(), "{}", receipt.raw);
    }
    flow.sb.audit_verify().assert_success();
}

/// An agent's timeout kills its whole process group. The root command is in it, but the
/// agent may not signal root's processes: only the relay reaches it.
#[test]
fn a_process_group_sigterm_leaves_no_root_process_behind() {
    let flow = Flow::new(approve(Grant::Once));
    let pidfile = flow.marker("sleeper-group");
    // A shell in a session and process group of its own (the harness's), running sudo in the
    // background; sudo's output goes elsewhere, so nothing here waits on it.
    let running = sudo_sleeper(
        &flow,
        &pidfile,
        &["setsid", "sh", "-c", "\"$@\" >/dev/null 2>&1 & wait", "sh"],
    )
    .spawn();
    let sleeper = root_pid(&pidfile);
    let group = running.pid();
    let sent = flow
        .sb
        .run_as_agent("/bin/kill")
        .args(["-TERM", "--", &format!("-{group}")])
        .run();
    sent.assert_success();
    let out = running.wait();
    assert_ne!(out.code(), Some(0), "the shell was not stopped: {out}");
    assert_gone(sleeper, "a process-group SIGTERM");
    let receipt = exit_receipt(&flow.sb);
    assert_eq!(receipt.json["signal"], libc::SIGTERM, "{}", receipt.raw);
    flow.sb.audit_verify().assert_success();
}
