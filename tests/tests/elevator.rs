//! The real setuid elevator, run by a real unprivileged user (SPEC §6, §10, §11).
//!
//! Every test installs the freshly built `assent-elevate` setuid root into its own sandbox,
//! bind-mounted over the fixed paths in a private mount namespace, and runs it as the
//! `assent-agent` test user through `setpriv`. Refusals are checked three ways: the exit status
//! and the one-line `refused (CHECK)` message, the audit line, and that the command did not run
//! (its marker file is absent).

use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assent_protocol::{CommandLine, ConsoleId, Env, Grant, HostId, Namespace};
use assent_tests::grants::{
    DecisionBuilder, RequestBuilder, SignedDecision, SignedRequest, StatusBuilder, TokenBuilder,
    flip_payload_byte, flip_sig_byte, flip_token_byte, sig_len,
};
use assent_tests::keys::KeyPair;
use assent_tests::sandbox::{
    AuditLine, DEFAULT_SECURE_PATH, ElevatorConfig, Outcome, Run, Sandbox,
};
use assent_tests::users::TestUser;
use assent_tests::{now, proc_status, real_path};

/// A sandbox whose config lists approver `alice` and requester `assent-agent` → root.
struct Fx {
    sb: Sandbox,
    alice: KeyPair,
    agent_key: KeyPair,
    agent: TestUser,
}

fn fx() -> Fx {
    fx_with(|config| config)
}

fn fx_with(edit: impl FnOnce(ElevatorConfig) -> ElevatorConfig) -> Fx {
    let sb = Sandbox::new();
    let alice = KeyPair::generate(&sb.keys_dir(), "alice");
    let agent_key = KeyPair::generate(&sb.keys_dir(), "agent");
    let fx = Fx {
        sb,
        alice,
        agent_key,
        agent: TestUser::agent(),
    };
    fx.reconfigure(edit);
    fx
}

impl Fx {
    /// Rewrite the config: the standard one, edited.
    fn reconfigure(&self, edit: impl FnOnce(ElevatorConfig) -> ElevatorConfig) {
        let config = ElevatorConfig::new()
            .approver("alice", &self.alice.public_line)
            .requester(&self.agent.name, &["root"]);
        self.sb.write_config(&edit(config));
    }

    fn key(&self, name: &str) -> KeyPair {
        KeyPair::generate(&self.sb.keys_dir(), name)
    }

    /// A request from the agent test user, in the work dir, for a system program.
    fn request(&self, program: &str, argv: &[&str]) -> RequestBuilder {
        RequestBuilder::new(real_path(program), argv)
            .requester(&self.agent)
            .cwd(self.sb.work_dir())
            .agent("test-agent")
    }

    /// A request to create a marker file, and the marker: the "did it run?" command.
    fn touch(&self, name: &str) -> (RequestBuilder, PathBuf) {
        let marker = self.sb.marker(name);
        let request = self.request("/usr/bin/touch", &["touch", marker.to_str().unwrap()]);
        (request, marker)
    }

    fn sign(&self, request: RequestBuilder) -> SignedRequest {
        request.sign(&self.agent_key.private)
    }

    /// Alice approves as asked, signs, and the token carries no status.
    fn approved(&self, request: RequestBuilder) -> (SignedRequest, SignedDecision, String) {
        let request = self.sign(request);
        let decision = DecisionBuilder::approve(&request).sign(&self.alice.private);
        let token = TokenBuilder::new(&request, &decision).encode();
        (request, decision, token)
    }

    /// `assent-elevate --grant TOKEN -- PROGRAM ARGV[1..]` exactly as the request asked.
    fn elevate(&self, token: &str, request: &SignedRequest) -> Run<'_> {
        let r = &request.payload;
        self.sb.elevate(token, &r.program, &r.argv[1..])
    }

    /// The last attempt's audit line (`exec` or `refused`).
    fn last_audit(&self) -> AuditLine {
        self.sb
            .audit_attempts()
            .pop()
            .expect("the elevator wrote no audit line")
    }

    /// Refused with CHECK, nothing ran, and the last audit line records it. Returns the detail.
    fn assert_refused(&self, out: &Outcome, check: &str, marker: &Path) -> String {
        let detail = out.assert_refused(check).to_owned();
        eprintln!("refused ({check}): {detail}");
        assert_not_run(marker);
        let line = self.last_audit();
        assert_eq!(line.event(), "refused", "audit line: {}", line.raw);
        assert_eq!(line.check(), Some(check), "audit line: {}", line.raw);
        detail
    }

    /// Ran, the last attempt's audit line is an `exec` with no failed check, and the exit
    /// receipt for the same request follows it.
    fn assert_exec(&self, out: &Outcome) {
        out.assert_success();
        let line = self.last_audit();
        assert_eq!(line.event(), "exec", "audit line: {}", line.raw);
        assert!(line.json["check"].is_null(), "audit line: {}", line.raw);
        let receipt = self.sb.audit_lines().pop().expect("an audit line");
        assert_eq!(receipt.event(), "exit", "{}", self.sb.audit_text());
        assert_eq!(
            receipt.json["request_id"],
            line.json["request_id"],
            "{}",
            self.sb.audit_text()
        );
        assert_eq!(receipt.json["status"], 0, "{}", receipt.raw);
    }
}

fn assert_not_run(marker: &Path) {
    assert!(
        !marker.exists(),
        "the command ran although it was refused: {} exists",
        marker.display()
    );
}

fn env_lines(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn env_get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Copy a system program to `dest`, owned by `owner`, mode 0755.
fn copy_program(src: &str, dest: &Path, owner: &TestUser) {
    fs::copy(real_path(src), dest).unwrap();
    std::os::unix::fs::chown(dest, Some(owner.uid), Some(owner.gid)).unwrap();
    fs::set_permissions(dest, fs::Permissions::from_mode(0o755)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The approved path

#[test]
fn once_grant_runs_the_command_as_root_and_audits_exec() {
    let fx = fx();
    let (request, decision, token) = fx.approved(fx.request("/usr/bin/id", &["id", "-u"]));
    let out = fx.elevate(&token, &request).run();
    fx.assert_exec(&out);
    assert_eq!(out.stdout, "0\n", "id -u under the elevator: {out}");

    let lines = fx.sb.audit_attempts();
    assert_eq!(lines.len(), 1, "one attempt, one audit line");
    let line = &lines[0];
    assert!(line.mentions(&request.payload.id.to_hex()), "{}", line.raw);
    assert!(line.mentions(&decision.sha256.to_hex()), "{}", line.raw);
    assert!(line.mentions("/usr/bin/id"), "{}", line.raw);
    assert!(line.mentions(&fx.agent.name), "{}", line.raw);
    // Keys are named by the fingerprint OpenSSH prints, computed here by ssh-keygen itself.
    assert!(
        line.mentions(&fx.alice.ssh_keygen_fingerprint()),
        "{}",
        line.raw
    );
    assert!(
        line.mentions(&fx.agent_key.ssh_keygen_fingerprint()),
        "{}",
        line.raw
    );
    assert!(line.json.get("prev").is_some(), "{}", line.raw);
}

#[test]
fn grant_fd_reads_the_token_from_a_descriptor() {
    let fx = fx();
    let (request, _, token) = fx.approved(fx.request("/usr/bin/id", &["id", "-u"]));
    let token_file = fx.sb.root().join("token");
    fs::write(&token_file, &token).unwrap();
    let out = fx
        .sb
        .run_as_agent(fx.sb.elevator_path())
        .args(["--grant-fd", "5", "--", "/usr/bin/id", "-u"])
        .fd(5, &token_file)
        .run();
    fx.assert_exec(&out);
    assert_eq!(out.stdout, "0\n", "{out}");
    assert_eq!(request.payload.argv, ["id", "-u"]);
}

#[test]
fn run_as_another_permitted_user_becomes_that_user_completely() {
    let nobody = TestUser::lookup("nobody").expect("this system has no user nobody");
    let fx = fx();
    fx.sb.write_config(
        &ElevatorConfig::new()
            .approver("alice", &fx.alice.public_line)
            .requester(&fx.agent.name, &["root", "nobody"]),
    );
    let (request, _, token) =
        fx.approved(fx.request("/usr/bin/id", &["id"]).run_as("nobody").cwd("/"));
    let out = fx.elevate(&token, &request).cwd("/").run();
    fx.assert_exec(&out);
    // Real, effective ids and groups all belong to the target: `id` prints euid=/egid= only
    // when they differ from the real ones.
    let expected = format!("uid={}(nobody) gid={}(", nobody.uid, nobody.gid);
    assert!(out.stdout.starts_with(&expected), "{out}");
    assert!(!out.stdout.contains("euid="), "{out}");
    assert!(!out.stdout.contains("egid="), "{out}");
    assert!(!out.stdout.contains("assent-agent"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Single use

#[test]
fn replayed_once_grant_is_refused() {
    let fx = fx();
    let (request, marker) = fx.touch("replay");
    let (request, decision, token) = fx.approved(request);
    let first = fx.elevate(&token, &request).run();
    fx.assert_exec(&first);
    assert!(marker.exists(), "the approved command did not run");
    fs::remove_file(&marker).unwrap();

    let second = fx.elevate(&token, &request).run();
    fx.assert_refused(&second, "single-use", &marker);
    let lines = fx.sb.audit_attempts();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].event(), "exec");
    assert!(
        lines[1].mentions(&decision.sha256.to_hex()),
        "{}",
        lines[1].raw
    );
}

#[test]
fn sixty_four_concurrent_uses_of_one_once_grant_exec_exactly_once() {
    const RUNS: usize = 64;
    let fx = fx();
    let counter = fx.sb.marker("count");
    let counter_arg = counter.to_str().unwrap();
    let (request, _, token) = fx.approved(fx.request(
        "/bin/sh",
        &["sh", "-c", "echo ran >> \"$1\"", "sh", counter_arg],
    ));
    let barrier = std::sync::Barrier::new(RUNS);
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..RUNS)
            .map(|_| {
                s.spawn(|| {
                    let run = fx.elevate(&token, &request);
                    barrier.wait();
                    run.run()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let ran = fs::read_to_string(&counter).unwrap_or_default();
    assert_eq!(
        ran.lines().count(),
        1,
        "the command ran {} times",
        ran.lines().count()
    );
    let winners = outcomes.iter().filter(|o| o.success()).count();
    assert_eq!(winners, 1, "exactly one attempt may succeed");
    for out in outcomes.iter().filter(|o| !o.success()) {
        out.assert_refused("single-use");
    }
    let lines = fx.sb.audit_attempts();
    assert_eq!(lines.len(), RUNS, "one audit line per attempt");
    assert_eq!(lines.iter().filter(|l| l.event() == "exec").count(), 1);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.event() == "refused" && l.check() == Some("single-use"))
            .count(),
        RUNS - 1
    );
    fx.sb.audit_verify().assert_success();
}

#[test]
fn the_caller_cannot_stop_or_kill_its_elevator_while_it_spends_a_grant() {
    use nix::fcntl::{Flock, FlockArg};
    use std::time::{Duration, Instant};

    let fx = fx();
    let (request, marker) = fx.touch("unstoppable");
    let (request, _, token) = fx.approved(request);
    // Hold the ledger's lock, so the elevator waits inside check 11 where we can look at it.
    let dir = fs::File::open(fx.sb.ledger_dir()).unwrap();
    let held = Flock::lock(dir, FlockArg::LockExclusive).unwrap();
    let mut elevator = fx.elevate(&token, &request).spawn();
    let pid = elevator.pid();

    // Check 11 blocks every signal and takes the real and saved uids; wait until it has (or
    // until its lock wait would be half over). The pid is unshare's until it execs (through
    // sh, setpriv and env) the elevator, and those run as root and block signals too.
    let in_check_11 = || {
        let elevator = proc_status(pid, "Name").as_deref() == Some("assent-elevate");
        let blocked = proc_status(pid, "SigBlk")
            .and_then(|m| u64::from_str_radix(&m, 16).ok())
            .is_some_and(|m| m & (1 << (libc::SIGTERM - 1)) != 0);
        elevator && blocked && proc_status(pid, "Uid").as_deref() == Some("0 0 0 0")
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !in_check_11() && !elevator.has_exited() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let uids = proc_status(pid, "Uid");
    let stop = fx
        .sb
        .run_as_agent("/bin/kill")
        .args(["-STOP", &pid.to_string()])
        .run();
    let kill = fx
        .sb
        .run_as_agent("/bin/kill")
        .args(["-KILL", &pid.to_string()])
        .run();
    let state = proc_status(pid, "State");
    drop(held);
    let out = elevator.wait();

    assert_eq!(
        uids.as_deref(),
        Some("0 0 0 0"),
        "real, effective, saved and fs uid"
    );
    assert!(!stop.success(), "the caller stopped its elevator: {stop}");
    assert!(!kill.success(), "the caller killed its elevator: {kill}");
    assert!(
        stop.stderr.contains("not permitted"),
        "kill says why: {stop}"
    );
    assert!(
        state.as_deref().is_some_and(|s| !s.starts_with('T')),
        "the elevator was stopped: {state:?}"
    );
    fx.assert_exec(&out);
    assert!(marker.exists(), "the approved command did not run");
}

// ---------------------------------------------------------------------------------------------
// Token, signatures, approver, verdict, binding

#[test]
fn tampered_tokens_are_refused() {
    let fx = fx();
    let (request, marker) = fx.touch("tampered");
    let request = fx.sign(request);
    let decision = DecisionBuilder::approve(&request).sign(&fx.alice.private);
    let good = TokenBuilder::new(&request, &decision);
    let variants = [
        (
            "request payload",
            good.clone()
                .request_envelope(flip_payload_byte(&request.envelope, 40))
                .encode(),
        ),
        (
            "request signature",
            good.clone()
                .request_envelope(flip_sig_byte(&request.envelope, 100))
                .encode(),
        ),
        (
            "decision payload",
            good.clone()
                .decision_envelope(flip_payload_byte(&decision.envelope, 60))
                .encode(),
        ),
        (
            "decision signature, inside the Ed25519 signature",
            good.clone()
                .decision_envelope(flip_sig_byte(
                    &decision.envelope,
                    sig_len(&decision.envelope) - 8,
                ))
                .encode(),
        ),
        (
            "decision signature, inside the signer's key",
            good.clone()
                .decision_envelope(flip_sig_byte(&decision.envelope, 40))
                .encode(),
        ),
        ("token JSON", flip_token_byte(&good.encode(), 333)),
        ("garbage", "not a token".to_owned()),
    ];
    for (what, token) in variants {
        let out = fx.elevate(&token, &request).run();
        eprintln!("tampered {what}: {}", out.stderr.trim());
        fx.assert_refused(&out, "token", &marker);
    }
    // The untampered token still works afterwards: nothing above consumed it.
    fx.assert_exec(&fx.elevate(&good.encode(), &request).run());
    assert!(marker.exists());
    assert_eq!(
        fx.sb.audit_attempts().len(),
        8,
        "one audit line per attempt"
    );
}

#[test]
fn oversized_token_is_refused() {
    let fx = fx();
    let (request, marker) = fx.touch("oversized");
    let (request, _, _) = fx.approved(request);
    // Larger than any argument can be, so it goes through --grant-fd.
    let token_file = fx.sb.root().join("huge-token");
    fs::write(&token_file, "A".repeat(1024 * 1024)).unwrap();
    let r = &request.payload;
    let out = fx
        .sb
        .run_as_agent(fx.sb.elevator_path())
        .args(["--grant-fd", "5", "--"])
        .arg(&r.program)
        .args(&r.argv[1..])
        .fd(5, &token_file)
        .run();
    fx.assert_refused(&out, "token", &marker);
}

#[test]
fn decision_signed_under_another_namespace_is_refused() {
    let fx = fx();
    let (request, marker) = fx.touch("namespace");
    let request = fx.sign(request);
    let decision =
        DecisionBuilder::approve(&request).sign_under(&fx.alice.private, Namespace::Status);
    let token = TokenBuilder::new(&request, &decision).encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "token", &marker);
}

#[test]
fn request_signed_under_another_namespace_is_refused() {
    let fx = fx();
    let (request, marker) = fx.touch("request-namespace");
    let request = request.sign_under(&fx.agent_key.private, Namespace::Decision);
    let decision = DecisionBuilder::approve(&request).sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision).encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "token", &marker);
}

#[test]
fn decision_from_an_unlisted_key_is_refused() {
    let fx = fx();
    let mallory = fx.key("mallory");
    let (request, marker) = fx.touch("unknown-approver");
    let request = fx.sign(request);
    // Claims to be alice, signed by a key the config does not list.
    let decision = DecisionBuilder::approve(&request).sign(&mallory.private);
    let token = TokenBuilder::new(&request, &decision).encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "approver", &marker);
}

#[test]
fn decision_naming_another_approver_than_its_key_is_refused() {
    let fx = fx();
    let bob = fx.key("bob");
    fx.reconfigure(|c| c.approver("bob", &bob.public_line));
    let (request, marker) = fx.touch("approver-name");
    let request = fx.sign(request);
    // Alice's key, bob's name.
    let decision = DecisionBuilder::approve(&request)
        .approver("bob")
        .sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision).encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "approver", &marker);
}

#[test]
fn denied_decision_is_refused_naming_who_and_why() {
    let fx = fx();
    let (request, marker) = fx.touch("deny");
    let request = fx.sign(request);
    let decision =
        DecisionBuilder::deny(&request, Some("not during the freeze")).sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision).encode();
    let detail = fx.assert_refused(&fx.elevate(&token, &request).run(), "verdict", &marker);
    assert!(
        detail.contains("alice"),
        "the denial must name who: {detail}"
    );
    assert!(
        detail.contains("not during the freeze"),
        "the denial must carry the note: {detail}"
    );
}

#[test]
fn decision_bound_to_another_request_is_refused() {
    let fx = fx();
    let (request, marker) = fx.touch("binding");
    let request = fx.sign(request);
    // Same command, another request: a decision for one is not a decision for the other.
    let (other, _) = fx.touch("binding");
    let other = fx.sign(other);
    let decision = DecisionBuilder::approve(&other).sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision).encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "binding", &marker);

    // Right id, wrong request hash (the request was re-signed with different bytes).
    let decision = DecisionBuilder::approve(&request)
        .request_sha256(other.sha256)
        .sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision).encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "binding", &marker);
}

// ---------------------------------------------------------------------------------------------
// Host, user, run_as

#[test]
fn grant_for_another_host_is_refused() {
    let fx = fx();
    let (request, marker) = fx.touch("host");
    let (request, _, token) = fx.approved(request);
    let out = fx
        .elevate(&token, &request)
        .hostname("assent-elsewhere")
        .run();
    fx.assert_refused(&out, "host", &marker);
}

#[test]
fn grant_made_for_a_host_runs_on_that_host() {
    let fx = fx();
    let (request, marker) = fx.touch("host-ok");
    let (request, _, token) = fx.approved(request.host("assent-elsewhere"));
    let out = fx
        .elevate(&token, &request)
        .hostname("assent-elsewhere")
        .run();
    fx.assert_exec(&out);
    assert!(marker.exists());
}

/// Two machines cloned from one image share a hostname; only the host id tells them apart.
/// Each has its own ledger, so without it a once-grant would run once on each.
#[test]
fn a_once_grant_for_one_host_id_is_refused_on_a_clone_with_the_same_hostname() {
    let fx = fx();
    let here = HostId([0xa1; 16]);
    let there = HostId([0xb2; 16]);
    fx.sb.write_host_id(here);
    let clone = Sandbox::new();
    clone.write_config_text(&fs::read_to_string(fx.sb.config_path()).unwrap());
    clone.write_host_id(there);

    let (request, marker) = fx.touch("cloned-host");
    let (request, _, token) = fx.approved(request.host("hosta").host_id(here));
    let r = &request.payload;
    let out = clone
        .elevate(&token, &r.program, &r.argv[1..])
        .hostname("hosta")
        .run();
    let detail = out.assert_refused("host");
    assert_eq!(
        detail,
        format!(
            "the request is for host \"hosta\" with host id {here}; this is \"hosta\" with host id {there} (/etc/assent/host-id)"
        )
    );
    assert_not_run(&marker);
    let line = clone
        .audit_lines()
        .pop()
        .expect("the clone audits the attempt");
    assert_eq!((line.event(), line.check()), ("refused", Some("host")));

    // On the machine it was made for, it runs, once.
    fx.assert_exec(&fx.elevate(&token, &request).hostname("hosta").run());
    assert!(marker.exists());
    fs::remove_file(&marker).unwrap();
    let again = fx.elevate(&token, &request).hostname("hosta").run();
    fx.assert_refused(&again, "single-use", &marker);
}

#[test]
fn a_missing_unsafe_or_malformed_host_id_is_a_configuration_error() {
    let fx = fx();
    let (request, marker) = fx.touch("host-id-file");
    let (request, _, token) = fx.approved(request);
    let path = fx.sb.host_id_path();
    let attempt = |want: &str| {
        let out = fx.elevate(&token, &request).run();
        let detail = out.assert_config_error().to_owned();
        assert!(detail.contains(want), "{want:?} in {detail}");
        assert_not_run(&marker);
        let line = fx.last_audit();
        assert_eq!((line.event(), line.check()), ("refused", Some("setup")));
        assert!(line.mentions("host id: "), "{}", line.raw);
        detail
    };

    fs::remove_file(&path).unwrap();
    let detail = attempt("/etc/assent/host-id does not exist, so this install has no host id");
    assert!(
        detail.contains("make one as root: (umask 022; printf"),
        "{detail}"
    );
    fx.sb.check().assert_config_error();

    fx.sb.write_host_id_text("HOSTA\n");
    attempt("/etc/assent/host-id does not hold a host id (one line of 32 lowercase hex digits)");

    fx.sb.write_host_id(HostId([1; 16]));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o664)).unwrap();
    attempt("writable by group or others");

    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let agent = TestUser::agent();
    std::os::unix::fs::chown(&path, Some(agent.uid), None).unwrap();
    attempt("not root");

    // A symbolic link, even to a good file the agent cannot change.
    fs::remove_file(&path).unwrap();
    let real = fx.sb.etc_dir().join("host-id.real");
    fs::write(&real, HostId([1; 16]).to_file()).unwrap();
    std::os::unix::fs::symlink(&real, &path).unwrap();
    attempt("is a symbolic link");

    // Fixed, it runs.
    fs::remove_file(&path).unwrap();
    fx.sb.write_host_id(assent_tests::sandbox::DEFAULT_HOST_ID);
    fx.assert_exec(&fx.elevate(&token, &request).run());
}

#[test]
fn grant_used_by_another_uid_is_refused() {
    let other = TestUser::other();
    let fx = fx_with(|c| c.requester(&other.name, &["root"]));
    let (request, marker) = fx.touch("other-uid");
    let (request, _, token) = fx.approved(request);
    let r = &request.payload;
    let out = fx
        .sb
        .run_as(&other, fx.sb.elevator_path())
        .args(["--grant", &token, "--"])
        .arg(&r.program)
        .args(&r.argv[1..])
        .run();
    fx.assert_refused(&out, "user", &marker);
}

#[test]
fn request_naming_another_user_for_the_callers_uid_is_refused() {
    let other = TestUser::other();
    let fx = fx();
    let (request, marker) = fx.touch("user-name");
    let (request, _, token) = fx.approved(request.user(&other.name));
    fx.assert_refused(&fx.elevate(&token, &request).run(), "user", &marker);
}

#[test]
fn run_as_not_permitted_for_the_requester_is_refused() {
    let fx = fx();
    let (request, marker) = fx.touch("run-as");
    let (request, _, token) = fx.approved(request.run_as("nobody"));
    fx.assert_refused(&fx.elevate(&token, &request).run(), "run-as", &marker);
}

// ---------------------------------------------------------------------------------------------
// The command

#[test]
fn changed_arguments_are_refused() {
    let fx = fx();
    let (request, marker) = fx.touch("argv");
    let (request, _, token) = fx.approved(request);
    let elsewhere = fx.sb.marker("argv-changed");
    let out = fx
        .sb
        .elevate(&token, &request.payload.program, [&elsewhere])
        .run();
    fx.assert_refused(&out, "command", &elsewhere);
    assert_not_run(&marker);

    // One extra argument.
    let out = fx
        .sb
        .elevate(&token, &request.payload.program, [&marker, &elsewhere])
        .run();
    fx.assert_refused(&out, "command", &marker);
    assert_not_run(&elsewhere);

    // An argument that is not UTF-8 can never match an approved one.
    let mut bytes = marker.to_str().unwrap().as_bytes().to_vec();
    bytes.push(0xff);
    let not_utf8 = std::ffi::OsString::from_vec(bytes);
    let out = fx
        .sb
        .elevate(&token, &request.payload.program, [&not_utf8])
        .run();
    fx.assert_refused(&out, "command", &marker);

    // Refusals before the single-use check do not spend the grant.
    fx.assert_exec(&fx.elevate(&token, &request).run());
    assert!(marker.exists());
}

#[test]
fn decision_for_another_argv0_is_refused() {
    let fx = fx();
    let (request, marker) = fx.touch("argv0");
    let request = fx.sign(request);
    let r = &request.payload;
    let approved_argv = vec!["not-touch".to_owned(), r.argv[1].clone()];
    let decision = DecisionBuilder::approve(&request)
        .cmd_for(&CommandLine {
            argv: &approved_argv,
            ..r.command_line()
        })
        .sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision).encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "command", &marker);
}

#[test]
fn changed_program_path_is_refused_even_with_identical_content() {
    let fx = fx();
    let (request, marker) = fx.touch("program-path");
    let (request, _, token) = fx.approved(request);
    let twin = fx.sb.work_dir().join("touch-twin");
    copy_program("/usr/bin/touch", &twin, &TestUser::root());
    let out = fx
        .sb
        .elevate(&token, &twin, &request.payload.argv[1..])
        .run();
    fx.assert_refused(&out, "command", &marker);
}

/// Like the caller's environment, the caller's cwd carries no authority: the command runs in
/// the approved cwd wherever it was called from. (A grant for another cwd is refused below.)
#[test]
fn callers_cwd_is_ignored_and_the_approved_cwd_is_used() {
    let fx = fx();
    let approved = fx.sb.work_dir().join("approved");
    fs::create_dir(&approved).unwrap();
    let (request, _, token) = fx.approved(fx.request("/usr/bin/pwd", &["pwd"]).cwd(&approved));
    let out = fx.elevate(&token, &request).cwd(fx.sb.agent_dir()).run();
    fx.assert_exec(&out);
    assert_eq!(out.stdout.trim_end(), approved.to_str().unwrap(), "{out}");
}

#[test]
fn decision_for_another_cwd_is_refused() {
    let fx = fx();
    let (request, marker) = fx.touch("decision-cwd");
    let request = fx.sign(request);
    let decision = DecisionBuilder::approve(&request)
        .cmd_for(&CommandLine {
            cwd: "/",
            ..request.payload.command_line()
        })
        .sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision).encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "command", &marker);
}

#[test]
fn changed_env_is_refused() {
    let fx = fx();
    let (request, marker) = fx.touch("env");
    // The request (signed by the agent) asks for MODE=unsafe; the approver approved MODE=safe.
    let request = fx.sign(request.env("MODE", "unsafe"));
    let approved_env = Env([("MODE".to_owned(), "safe".to_owned())]
        .into_iter()
        .collect());
    let decision = DecisionBuilder::approve(&request)
        .cmd_for(&CommandLine {
            env: &approved_env,
            ..request.payload.command_line()
        })
        .sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision).encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "command", &marker);

    // An extra variable the approver never saw.
    let (request, marker) = fx.touch("env-extra");
    let request = fx.sign(request.env("LD_PRELOAD", "/tmp/evil.so"));
    let decision = DecisionBuilder::approve(&request)
        .cmd_for(&CommandLine {
            env: &Env::default(),
            ..request.payload.command_line()
        })
        .sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision).encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "command", &marker);
}

// ---------------------------------------------------------------------------------------------
// Time

#[test]
fn expired_once_grant_is_refused() {
    let fx = fx();
    let (request, marker) = fx.touch("expired");
    let request = fx.sign(request);
    let t = now();
    let decision = DecisionBuilder::approve(&request)
        .window(t - 400, t - 340)
        .decided_at(t - 400)
        .sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision).encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "time", &marker);
}

#[test]
fn not_yet_valid_grant_is_refused() {
    let fx = fx();
    let (request, marker) = fx.touch("not-yet");
    let request = fx.sign(request);
    let t = now();
    let decision = DecisionBuilder::approve(&request)
        .window(t + 300, t + 360)
        .sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision).encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "time", &marker);
}

#[test]
fn once_window_longer_than_configured_is_refused() {
    let fx = fx_with(|c| c.once_window_s(120));
    let (request, marker) = fx.touch("long-once");
    let request = fx.sign(request);
    let t = now();
    let decision = DecisionBuilder::approve(&request)
        .window(t, t + 600)
        .sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision).encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "time", &marker);
}

#[test]
fn timed_grant_longer_than_max_ttl_is_refused() {
    let fx = fx_with(|c| c.max_ttl_s(3600));
    let (request, marker) = fx.touch("long-timed");
    let request = fx.sign(request.timed(7200));
    let decision = DecisionBuilder::approve(&request).sign(&fx.alice.private);
    let status = StatusBuilder::new("alice").sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision)
        .status(&status)
        .encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "time", &marker);
}

// ---------------------------------------------------------------------------------------------
// Reusable grants and statuses

/// A timed (or always) grant for appending a line to a counter file, and the counter.
fn reusable(fx: &Fx, grant: Grant) -> (SignedRequest, SignedDecision, PathBuf) {
    let counter = fx.sb.marker("count");
    let counter_arg = counter.to_str().unwrap().to_owned();
    let request = fx.request(
        "/bin/sh",
        &["sh", "-c", "echo ran >> \"$1\"", "sh", &counter_arg],
    );
    let request = fx.sign(match grant {
        Grant::Timed => request.timed(600),
        other => request.grant(other),
    });
    let decision = DecisionBuilder::approve(&request).sign(&fx.alice.private);
    (request, decision, counter)
}

fn count(counter: &Path) -> usize {
    fs::read_to_string(counter)
        .unwrap_or_default()
        .lines()
        .count()
}

#[test]
fn timed_grant_with_fresh_status_runs_more_than_once() {
    let fx = fx();
    let (request, decision, counter) = reusable(&fx, Grant::Timed);
    let status = StatusBuilder::new("alice").sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision)
        .status(&status)
        .encode();
    fx.assert_exec(&fx.elevate(&token, &request).run());
    fx.assert_exec(&fx.elevate(&token, &request).run());
    assert_eq!(count(&counter), 2);
}

#[test]
fn always_grant_with_fresh_status_runs() {
    let fx = fx();
    let (request, decision, counter) = reusable(&fx, Grant::Always);
    assert_eq!(decision.payload.not_after, None);
    let status = StatusBuilder::new("alice").sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision)
        .status(&status)
        .encode();
    fx.assert_exec(&fx.elevate(&token, &request).run());
    assert_eq!(count(&counter), 1);
}

#[test]
fn timed_grant_revoked_by_status_is_refused() {
    let fx = fx();
    let (request, decision, counter) = reusable(&fx, Grant::Timed);
    let status = StatusBuilder::new("alice")
        .revoke(decision.sha256)
        .sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision)
        .status(&status)
        .encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "status", &counter);
}

/// Two consoles with one approver key: the one that approved a grant and revoked it, and one
/// that never saw it. The other console's statuses, however fresh, never vouch for the grant.
#[test]
fn a_status_from_another_console_of_the_same_key_does_not_vouch_for_a_timed_grant() {
    let fx = fx();
    let (request, decision, counter) = reusable(&fx, Grant::Timed);
    let laptop = decision.payload.console;
    let desktop = ConsoleId([0xd5; 16]);
    let run_with = |status: &assent_tests::grants::SignedStatus| {
        let token = TokenBuilder::new(&request, &decision)
            .status(status)
            .encode();
        fx.elevate(&token, &request).run()
    };

    let elsewhere = StatusBuilder::new("alice")
        .console(desktop)
        .sign(&fx.alice.private);
    let detail = fx.assert_refused(&run_with(&elsewhere), "status", &counter);
    assert!(
        detail.contains(&format!(
            "the status is from console {desktop}, not from console {laptop} that approved this grant"
        )),
        "{detail}"
    );

    // The approving console's status vouches for it; once it revokes it, nothing does.
    let fresh = StatusBuilder::new("alice").sign(&fx.alice.private);
    fx.assert_exec(&run_with(&fresh));
    let revoked = StatusBuilder::new("alice")
        .revoke_until(decision.sha256, decision.payload.not_after)
        .sign(&fx.alice.private);
    let out = run_with(&revoked);
    assert!(
        out.assert_refused("status").contains("revoked by alice"),
        "{out}"
    );
    let later = StatusBuilder::new("alice")
        .console(desktop)
        .issued_at(now() + 1)
        .sign(&fx.alice.private);
    let out = run_with(&later);
    assert!(
        out.assert_refused("status").contains("not from console"),
        "{out}"
    );
    assert_eq!(
        count(&counter),
        1,
        "it ran once, with the approving console's status"
    );
}

#[test]
fn reusable_grant_with_stale_status_is_refused() {
    let fx = fx_with(|c| c.status_max_age_s(120));
    let (request, decision, counter) = reusable(&fx, Grant::Timed);
    let status = StatusBuilder::new("alice")
        .issued_at(now() - 1000)
        .sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision)
        .status(&status)
        .encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "status", &counter);
}

#[test]
fn reusable_grant_without_status_is_refused() {
    let fx = fx();
    let (request, decision, counter) = reusable(&fx, Grant::Always);
    let token = TokenBuilder::new(&request, &decision).encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "status", &counter);
}

#[test]
fn reusable_grant_with_status_from_another_key_is_refused() {
    let fx = fx();
    let bob = fx.key("bob");
    fx.reconfigure(|c| c.approver("bob", &bob.public_line));
    let (request, decision, counter) = reusable(&fx, Grant::Timed);

    // Another listed approver's fresh status says nothing about alice's grants.
    let status = StatusBuilder::new("bob").sign(&bob.private);
    let token = TokenBuilder::new(&request, &decision)
        .status(&status)
        .encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "status", &counter);

    // An unlisted key claiming to be alice.
    let mallory = fx.key("mallory");
    let status = StatusBuilder::new("alice").sign(&mallory.private);
    let token = TokenBuilder::new(&request, &decision)
        .status(&status)
        .encode();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "status", &counter);
}

// ---------------------------------------------------------------------------------------------
// The program file

#[test]
fn program_replaced_after_approval_is_refused() {
    let fx = fx();
    let program = fx.sb.work_dir().join("tool");
    copy_program("/usr/bin/true", &program, &TestUser::root());
    let marker = fx.sb.marker("replaced");
    let request = fx.request("/usr/bin/true", &["tool"]).program(&program);
    let (request, _, token) = fx.approved(request);
    fs::write(
        &program,
        format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
    )
    .unwrap();
    let detail = fx.assert_refused(&fx.elevate(&token, &request).run(), "program", &marker);
    eprintln!("refused (program): {detail}");
}

#[test]
fn requester_writable_program_runs_when_unchanged() {
    let fx = fx();
    let program = fx.sb.agent_dir().join("id");
    copy_program("/usr/bin/id", &program, &fx.agent);
    let request = fx.request("/usr/bin/id", &["id", "-u"]).program(&program);
    let (request, _, token) = fx.approved(request);
    let out = fx.elevate(&token, &request).run();
    fx.assert_exec(&out);
    assert_eq!(out.stdout, "0\n", "{out}");
}

#[test]
fn requester_writable_program_changed_after_approval_is_refused() {
    let fx = fx();
    let program = fx.sb.agent_dir().join("tool");
    copy_program("/usr/bin/true", &program, &fx.agent);
    let marker = fx.sb.marker("writable-replaced");
    let request = fx.request("/usr/bin/true", &["tool"]).program(&program);
    let (request, _, token) = fx.approved(request);
    // The requester itself rewrites it, as it could.
    let script = format!("#!/bin/sh\ntouch '{}'\n", marker.display());
    let out = fx
        .sb
        .run_as_agent("/bin/sh")
        .args(["-c", "printf '%s' \"$1\" > \"$2\"", "sh"])
        .arg(&script)
        .arg(&program)
        .run();
    out.assert_success();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "program", &marker);
}

// Scripts: one only root can change runs by its approved path, so `$0` is that path; one the
// requester can write runs from a sealed copy of the approved bytes.

/// A fresh root-owned 0755 directory under `/var/tmp`, removed when dropped.
struct RootOnlyDir(PathBuf);

impl RootOnlyDir {
    fn new() -> RootOnlyDir {
        let path = PathBuf::from(format!(
            "/var/tmp/assent-script-{}-{}",
            std::process::id(),
            now()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        RootOnlyDir(path)
    }
}

impl Drop for RootOnlyDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Write an executable script (mode 0755) owned by `owner`.
fn write_script(path: &Path, body: &str, owner: &TestUser) {
    fs::write(path, body).unwrap();
    std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_root_owned_script_finds_its_own_directory_and_imports_its_sibling() {
    let fx = fx();
    let root = TestUser::root();
    // A directory only root can change, whoever owns the checkout the sandbox lives in:
    // below /var/tmp (root's, sticky).
    let place = RootOnlyDir::new();
    let dir = place.0.join("tool");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("sibling.txt"), "beside me\n").unwrap();
    let script = dir.join("run.sh");
    write_script(
        &script,
        "#!/bin/sh\nprintf '%s\\n' \"$0\"\ncd \"$(dirname \"$0\")\" && pwd && cat sibling.txt\n",
        &root,
    );
    let request = fx.request("/usr/bin/true", &["./run.sh"]).program(&script);
    let (request, _, token) = fx.approved(request);
    let out = fx.elevate(&token, &request).run();
    fx.assert_exec(&out);
    assert_eq!(
        out.stdout,
        format!("{}\n{}\nbeside me\n", script.display(), dir.display()),
        "{out}"
    );

    let python = real_path("/usr/bin/python3");
    fs::write(dir.join("helper.py"), "VALUE = 'imported the sibling'\n").unwrap();
    let main = dir.join("main.py");
    write_script(
        &main,
        &format!(
            "#!{}\nimport helper\nprint(helper.VALUE)\n",
            python.display()
        ),
        &root,
    );
    let request = fx.request("/usr/bin/true", &["main.py"]).program(&main);
    let (request, _, token) = fx.approved(request);
    let out = fx.elevate(&token, &request).run();
    fx.assert_exec(&out);
    assert_eq!(out.stdout, "imported the sibling\n", "{out}");
}

/// The agent's own script cannot change after approval: rewritten before the elevator opens
/// it, it is refused; once opened, what runs is a sealed copy that not even the root command
/// can write, and its `$0` names that copy, not the agent's file.
#[test]
fn an_agent_owned_script_cannot_be_swapped_after_approval() {
    let fx = fx();
    let script = fx.sb.agent_dir().join("mine.sh");
    write_script(
        &script,
        "#!/bin/sh\nprintf '%s\\n' \"$0\"\nreadlink \"/proc/$$/fd/${0##*/}\"\n\
         echo 'echo swapped' >> \"$0\" 2>/dev/null && echo wrote-the-script\nexit 0\n",
        &fx.agent,
    );
    let original = fs::read(&script).unwrap();
    let request = fx.request("/usr/bin/true", &["./mine.sh"]).program(&script);
    let (request, _, token) = fx.approved(request);
    let out = fx.elevate(&token, &request).run();
    fx.assert_exec(&out);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("/dev/fd/"), "{out}");
    assert!(lines[1].contains("memfd:assent-program"), "{out}");
    assert_eq!(lines.len(), 2, "the sealed copy was written to: {out}");
    assert_eq!(fs::read(&script).unwrap(), original);

    // Approved, then rewritten by the agent before it runs: refused, nothing runs.
    let marker = fx.sb.marker("swapped-script");
    let request = fx.request("/usr/bin/true", &["./mine.sh"]).program(&script);
    let (request, _, token) = fx.approved(request);
    let swap = format!("#!/bin/sh\ntouch '{}'\n", marker.display());
    fx.sb
        .run_as_agent("/bin/sh")
        .args(["-c", "printf '%s' \"$1\" > \"$2\"", "sh"])
        .arg(&swap)
        .arg(&script)
        .run()
        .assert_success();
    fx.assert_refused(&fx.elevate(&token, &request).run(), "program", &marker);
}

// The program path (SPEC §13.2): absolute and canonical, no symbolic link anywhere, nothing
// from /proc, /dev or /sys. The approver sees a path; no other file may run under it.

/// The agent's own script, which touches `marker` when it runs (as root, in an attack).
fn agents_script(fx: &Fx, marker: &Path) -> (PathBuf, assent_protocol::Sha256Digest) {
    let script = fx.sb.agent_dir().join("payload.sh");
    let body = format!("#!/bin/sh\ntouch '{}'\n", marker.display());
    fs::write(&script, &body).unwrap();
    std::os::unix::fs::chown(&script, Some(fx.agent.uid), Some(fx.agent.gid)).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    (script, assent_protocol::sha256(body.as_bytes()))
}

/// `/dev/stdin`, `/dev/fd/N` and `/proc/self/fd/N` name whatever the caller opened there. With
/// the agent's own script behind them, v1 ran that script as root.
#[test]
fn a_program_from_dev_or_proc_naming_the_callers_file_is_refused() {
    let fx = fx();
    let marker = fx.sb.marker("dev-stdin");
    let (script, digest) = agents_script(&fx, &marker);
    for program in ["/dev/stdin", "/dev/fd/5", "/proc/self/fd/5"] {
        let request = fx
            .request("/usr/bin/true", &["systemctl", "restart", "nginx"])
            .program_path_only(program)
            .program_sha256(digest);
        let (request, _, token) = fx.approved(request);
        let out = fx
            .sb
            .run_as_agent("/bin/sh")
            .args(["-c", "exec \"$@\" < \"$0\"", script.to_str().unwrap()])
            .arg(fx.sb.elevator_path())
            .args(["--grant", &token, "--", program])
            .args(&request.payload.argv[1..])
            .fd(5, &script)
            .run();
        let detail = fx.assert_refused(&out, "program", &marker);
        assert!(
            detail.contains("/dev") || detail.contains("/proc"),
            "{program}: {detail}"
        );
    }
}

/// A symbolic link as the program, or anywhere above it, is refused before the grant is
/// spent: the approver saw the link's name, not what it points to now.
#[test]
fn a_program_reached_through_a_symlink_is_refused() {
    let fx = fx();
    let (request, marker) = fx.touch("program-link");
    let touch = request.payload().program.clone();
    let link = fx.sb.agent_dir().join("touch");
    std::os::unix::fs::symlink(&touch, &link).unwrap();
    let bin_link = fx.sb.agent_dir().join("bin");
    std::os::unix::fs::symlink(Path::new(&touch).parent().unwrap(), &bin_link).unwrap();
    for program in [link.clone(), bin_link.join("touch")] {
        let request = request.clone().program(&program);
        let (request, _, token) = fx.approved(request);
        let detail = fx.assert_refused(&fx.elevate(&token, &request).run(), "program", &marker);
        assert!(detail.contains("is a symbolic link"), "{detail}");
    }
    // Not spent: with a real file of the same bytes under that name, the same token runs.
    let request = request.program(&link);
    let (request, _, token) = fx.approved(request);
    fx.assert_refused(&fx.elevate(&token, &request).run(), "program", &marker);
    fs::remove_file(&link).unwrap();
    copy_program(&touch, &link, &TestUser::root());
    fx.assert_exec(&fx.elevate(&token, &request).run());
    assert!(marker.exists());
}

#[test]
fn a_program_path_that_is_not_canonical_is_refused() {
    let fx = fx();
    let (request, marker) = fx.touch("program-dots");
    let touch = request.payload().program.clone();
    let (dir, name) = touch.rsplit_once('/').unwrap();
    for program in [
        format!(
            "{dir}/../{}/{name}",
            Path::new(dir).file_name().unwrap().to_str().unwrap()
        ),
        format!("{dir}/./{name}"),
        format!("{dir}//{name}"),
    ] {
        let request = request.clone().program_path_only(&program);
        let (request, _, token) = fx.approved(request);
        let detail = fx.assert_refused(&fx.elevate(&token, &request).run(), "program", &marker);
        assert!(detail.contains("not canonical"), "{program}: {detail}");
    }
}

/// The target must be able to reach the program: a file in a directory it cannot search does
/// not run as that user, whatever the file's own mode says.
#[test]
fn a_program_in_a_directory_the_target_cannot_search_is_refused() {
    let fx = fx();
    fx.sb.write_config(
        &ElevatorConfig::new()
            .approver("alice", &fx.alice.public_line)
            .requester(&fx.agent.name, &["root", "nobody"]),
    );
    let private = fx.sb.work_dir().join("private");
    fs::create_dir(&private).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    let program = private.join("id");
    copy_program("/usr/bin/id", &program, &TestUser::root());
    let request = fx
        .request("/usr/bin/id", &["id", "-u"])
        .program(&program)
        .run_as("nobody")
        .cwd("/");
    let (request, _, token) = fx.approved(request);
    let detail = fx.assert_refused(
        &fx.elevate(&token, &request).run(),
        "program",
        &fx.sb.marker("unused"),
    );
    assert!(detail.contains("cannot be entered by nobody"), "{detail}");
}

// ---------------------------------------------------------------------------------------------
// Resource limits (SPEC §13.3): the command gets PID 1's (here the sandbox's), or the
// configured ones, never the caller's.

/// `(soft, hard)` by label from a `/proc/self/limits` printed by the command.
fn printed_limit(out: &Outcome, label: &str) -> (String, String) {
    out.stdout
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(label).filter(|r| r.starts_with(' '))?;
            let mut words = rest.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .unwrap_or_else(|| panic!("no {label:?} line in {out}"))
}

fn pair(soft: &str, hard: &str) -> (String, String) {
    (soft.to_owned(), hard.to_owned())
}

/// Whether this test process may hand `CAP_SYS_RESOURCE` on (its bounding set has it), so a
/// setuid elevator it starts can raise hard limits.
fn host_has_cap_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .expect("a CapBnd line")
        .trim();
    u64::from_str_radix(hex, 16).unwrap() & (1 << CAP_SYS_RESOURCE) != 0
}

/// A root-owned file of `len` bytes and an approved `cp` of it, as root, into the work dir.
fn approved_copy(fx: &Fx, len: usize) -> (SignedRequest, String, PathBuf, Vec<u8>) {
    let source = fx.sb.work_dir().join("source.conf");
    let bytes: Vec<u8> = (0..len).map(|i| b"root ALL=(ALL) ALL\n"[i % 19]).collect();
    fs::write(&source, &bytes).unwrap();
    let dest = fx.sb.work_dir().join("copy.conf");
    let request = fx.request(
        "/usr/bin/cp",
        &["cp", source.to_str().unwrap(), dest.to_str().unwrap()],
    );
    let (request, _, token) = fx.approved(request);
    (request, token, dest, bytes)
}

/// `prlimit LIMITS -- assent-elevate --grant TOKEN -- PROGRAM ARGS…` as the agent: the agent
/// sets its own limits and calls the real setuid elevator under them.
fn elevate_under<'a>(fx: &'a Fx, limits: &[&str], token: &str, request: &SignedRequest) -> Run<'a> {
    fx.sb
        .run_as_agent("prlimit")
        .args(limits)
        .arg("--")
        .arg(fx.sb.elevator_path())
        .args(["--grant", token, "--"])
        .arg(&request.payload.program)
        .args(&request.payload.argv[1..])
}

/// The attack: a file size limit the agent set made an approved root `cp` stop at a byte the
/// agent chose, leaving a truncated root-owned file. The copy must complete.
#[test]
fn an_approved_copy_completes_whatever_file_size_limit_the_agent_set() {
    let fx = fx();
    let (request, token, dest, bytes) = approved_copy(&fx, 256 * 1024);
    let out = elevate_under(&fx, &["--fsize=4096:unlimited"], &token, &request).run();
    fx.assert_exec(&out);
    assert_eq!(
        fs::read(&dest).unwrap().len(),
        bytes.len(),
        "the copy was cut short"
    );
    assert_eq!(fs::read(&dest).unwrap(), bytes);
}

/// The same with the hard limit lowered too. With `CAP_SYS_RESOURCE` the elevator lifts it and
/// the copy completes; without it, nothing is written or run and the grant is not spent.
#[test]
fn a_hard_file_size_limit_is_lifted_or_refused_before_the_grant_is_spent() {
    let fx = fx();
    let (request, token, dest, bytes) = approved_copy(&fx, 256 * 1024);
    let hard = ["--fsize=4096:4096"];

    let out = elevate_under(&fx, &hard, &token, &request)
        .without_cap_sys_resource()
        .run();
    let detail = out.assert_refused("limits");
    assert!(
        detail.contains("hard file size limit (fsize) is 4096"),
        "{detail}"
    );
    assert!(detail.contains("CAP_SYS_RESOURCE"), "{detail}");
    assert!(!dest.exists(), "the copy ran");
    assert!(
        fx.sb.audit_text().is_empty(),
        "nothing is written under the caller's limit"
    );

    // As this host is: the capability lifts the limit; without it, the same refusal.
    let out = elevate_under(&fx, &hard, &token, &request).run();
    if host_has_cap_sys_resource() {
        fx.assert_exec(&out);
        assert_eq!(fs::read(&dest).unwrap(), bytes);
    } else {
        out.assert_refused("limits");
        // Not spent: without the limit, the same token runs.
        fx.assert_exec(&fx.elevate(&token, &request).run());
        assert_eq!(fs::read(&dest).unwrap(), bytes);
    }
    fx.sb.audit_verify().assert_success();
}

/// Open files and CPU time the same way: the command sees PID 1's limits, not the ones the
/// caller lowered (soft limits here, which the elevator raises without any capability).
#[test]
fn the_command_gets_pid_1s_limits_not_the_callers() {
    let fx = fx();
    let (_, nofile_hard) = fx.sb.root_limit("Max open files");
    fx.sb.set_root_limit("Max open files", "777", &nofile_hard);
    fx.sb
        .set_root_limit("Max cpu time", "unlimited", "unlimited");
    fx.sb.set_root_limit("Max core file size", "0", "unlimited");
    let (request, _, token) =
        fx.approved(fx.request("/usr/bin/cat", &["cat", "/proc/self/limits"]));
    let out = elevate_under(
        &fx,
        &[
            "--nofile=100:",
            "--cpu=50:",
            "--core=4096:",
            "--stack=1048576:",
        ],
        &token,
        &request,
    )
    .run();
    fx.assert_exec(&out);
    assert_eq!(
        printed_limit(&out, "Max open files"),
        pair("777", &nofile_hard)
    );
    assert_eq!(
        printed_limit(&out, "Max cpu time"),
        pair("unlimited", "unlimited")
    );
    assert_eq!(
        printed_limit(&out, "Max core file size"),
        pair("0", "unlimited")
    );
    let (stack, stack_hard) = fx.sb.root_limit("Max stack size");
    assert_eq!(printed_limit(&out, "Max stack size"), (stack, stack_hard));
}

/// Where the caller's hard limit is below the soft limit commands get and the elevator cannot
/// raise it (no `CAP_SYS_RESOURCE`, as in containers), the attempt is refused before the grant
/// is spent, naming the limit and the fix.
#[test]
fn a_hard_limit_below_pid_1s_is_refused_before_the_grant_is_spent() {
    let fx = fx();
    let (request, _, token) =
        fx.approved(fx.request("/usr/bin/cat", &["cat", "/proc/self/limits"]));
    let out = elevate_under(&fx, &["--nofile=100:100"], &token, &request)
        .without_cap_sys_resource()
        .run();
    let detail = fx.assert_refused(&out, "limits", &fx.sb.marker("unused"));
    let (soft, _) = fx.sb.root_limit("Max open files");
    assert!(
        detail.contains(&format!(
            "the caller's hard nofile limit is 100, below the {soft} (files)"
        )),
        "{detail}"
    );
    assert!(
        detail.contains("[settings.limits]"),
        "the fix is named: {detail}"
    );
    let out = fx.elevate(&token, &request).run();
    fx.assert_exec(&out);
    assert_eq!(printed_limit(&out, "Max open files").0, soft);
}

#[test]
fn configured_limits_replace_pid_1s() {
    let fx = fx_with(|config| {
        config
            .limit("nofile", "[1234, 2048]")
            .limit("fsize", "1048576")
            .limit("core", "[0, \"unlimited\"]")
    });
    let (request, _, token) =
        fx.approved(fx.request("/usr/bin/cat", &["cat", "/proc/self/limits"]));
    let out = elevate_under(&fx, &["--nofile=100:", "--core=0:0"], &token, &request).run();
    fx.assert_exec(&out);
    assert_eq!(printed_limit(&out, "Max open files"), pair("1234", "2048"));
    assert_eq!(
        printed_limit(&out, "Max file size"),
        pair("1048576", "1048576")
    );
    // The caller lowered its hard core limit to 0. The configured soft limit, 0, still fits
    // under it, so the command gets that, with the caller's hard limit where the elevator
    // cannot raise it.
    let hard = if host_has_cap_sys_resource() {
        "unlimited"
    } else {
        "0"
    };
    assert_eq!(printed_limit(&out, "Max core file size"), pair("0", hard));
    let (stack, stack_hard) = fx.sb.root_limit("Max stack size");
    assert_eq!(
        printed_limit(&out, "Max stack size"),
        (stack, stack_hard),
        "the rest: PID 1's"
    );
}

/// A CPU limit counts the time the process used before it exec'd. Burning CPU first and then
/// calling the elevator would cut a command with a finite CPU limit short: refused.
#[test]
fn cpu_time_burnt_before_the_elevator_does_not_count_against_the_command() {
    let fx = fx_with(|config| config.limit("cpu", "60"));
    let (request, _, token) =
        fx.approved(fx.request("/usr/bin/cat", &["cat", "/proc/self/limits"]));
    let out = fx
        .sb
        .run_as_agent("/usr/bin/perl")
        .args([
            "-e",
            "1 while (times)[0] + (times)[1] < 1.2; exec @ARGV or die $!",
        ])
        .arg(fx.sb.elevator_path())
        .args(["--grant", &token, "--"])
        .arg(&request.payload.program)
        .args(&request.payload.argv[1..])
        .run();
    let detail = fx.assert_refused(&out, "limits", &fx.sb.marker("unused"));
    assert!(detail.contains("already used 1 s of CPU time"), "{detail}");
    let out = fx.elevate(&token, &request).run();
    fx.assert_exec(&out);
    assert_eq!(printed_limit(&out, "Max cpu time"), pair("60", "60"));
}

#[test]
fn unreadable_pid_1_limits_are_refused_unless_every_limit_is_configured() {
    let fx = fx();
    fx.sb
        .write_root_limits("Limit Soft Hard Units\nMax cpu time lots\n");
    let (request, marker) = fx.touch("damaged-root-limits");
    let (request, _, token) = fx.approved(request);
    let detail = fx.assert_refused(&fx.elevate(&token, &request).run(), "limits", &marker);
    assert!(
        detail.contains("cannot read PID 1's limits from /proc/1/limits"),
        "{detail}"
    );

    // Every limit configured (as this process has them, which the agent inherits): PID 1's
    // are not needed.
    let names = [
        ("cpu", "Max cpu time"),
        ("fsize", "Max file size"),
        ("data", "Max data size"),
        ("stack", "Max stack size"),
        ("core", "Max core file size"),
        ("rss", "Max resident set"),
        ("nproc", "Max processes"),
        ("nofile", "Max open files"),
        ("memlock", "Max locked memory"),
        ("as", "Max address space"),
        ("locks", "Max file locks"),
        ("sigpending", "Max pending signals"),
        ("msgqueue", "Max msgqueue size"),
        ("nice", "Max nice priority"),
        ("rtprio", "Max realtime priority"),
        ("rttime", "Max realtime timeout"),
    ];
    let mine = fs::read_to_string("/proc/self/limits").unwrap();
    let toml = |v: &str| {
        if v == "unlimited" {
            "\"unlimited\"".to_owned()
        } else {
            v.to_owned()
        }
    };
    fx.reconfigure(|config| {
        names.iter().fold(config, |config, (name, label)| {
            let line = mine.lines().find(|l| l.starts_with(label)).unwrap();
            let words: Vec<&str> = line[label.len()..].split_whitespace().collect();
            config.limit(name, &format!("[{}, {}]", toml(words[0]), toml(words[1])))
        })
    });
    fx.assert_exec(&fx.elevate(&token, &request).run());
    assert!(marker.exists());
}

/// Against this host's real PID 1: where the agent's hard limits reach PID 1's soft ones, or
/// the elevator may raise them, the command gets PID 1's; otherwise the first limit that
/// cannot be had is named.
#[test]
fn this_hosts_pid_1_limits_are_given_or_the_shortfall_is_named() {
    let fx = fx();
    let (request, _, token) =
        fx.approved(fx.request("/usr/bin/cat", &["cat", "/proc/self/limits"]));
    let out = fx.elevate(&token, &request).host_root_limits().run();
    let root = fs::read_to_string("/proc/1/limits").unwrap();
    let mine = fs::read_to_string("/proc/self/limits").unwrap();
    let value = |v: &str| {
        if v == "unlimited" {
            u64::MAX
        } else {
            v.parse().unwrap()
        }
    };
    let labels: Vec<&str> = root.lines().skip(1).map(|l| l[..26].trim_end()).collect();
    let field = |text: &str, label: &str, i: usize| {
        text.lines()
            .find(|l| l.starts_with(label) && l[label.len()..].starts_with(' '))
            .and_then(|l| l[label.len()..].split_whitespace().nth(i))
            .unwrap_or_else(|| panic!("no {label}"))
            .to_owned()
    };
    let short = labels.iter().find(|label| {
        !host_has_cap_sys_resource()
            && value(&field(&mine, label, 1)) < value(&field(&root, label, 0))
    });
    match short {
        None => {
            fx.assert_exec(&out);
            for label in labels {
                assert_eq!(
                    printed_limit(&out, label).0,
                    field(&root, label, 0),
                    "{label}: {out}"
                );
            }
        }
        Some(label) => {
            let detail = fx.assert_refused(&out, "limits", &fx.sb.marker("unused"));
            eprintln!("{label}: {detail}");
            assert!(detail.contains("(PID 1's soft limit)"), "{detail}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Setup and configuration

/// A valid once-grant for touching `name`'s marker; the config may be broken afterwards.
fn valid_touch(fx: &Fx, name: &str) -> (SignedRequest, String, PathBuf) {
    let (request, marker) = fx.touch(name);
    let (request, _, token) = fx.approved(request);
    (request, token, marker)
}

#[test]
fn config_owned_by_the_requester_is_refused() {
    let fx = fx();
    let (request, token, marker) = valid_touch(&fx, "config-owner");
    std::os::unix::fs::chown(fx.sb.config_path(), Some(fx.agent.uid), Some(fx.agent.gid)).unwrap();
    fx.elevate(&token, &request).run().assert_config_error();
    assert_not_run(&marker);
}

#[test]
fn config_writable_by_others_is_refused() {
    let fx = fx();
    let (request, token, marker) = valid_touch(&fx, "config-0666");
    fs::set_permissions(fx.sb.config_path(), fs::Permissions::from_mode(0o666)).unwrap();
    fx.elevate(&token, &request).run().assert_config_error();
    assert_not_run(&marker);
}

#[test]
fn config_writable_by_group_is_refused() {
    let fx = fx();
    let (request, token, marker) = valid_touch(&fx, "config-0664");
    fs::set_permissions(fx.sb.config_path(), fs::Permissions::from_mode(0o664)).unwrap();
    fx.elevate(&token, &request).run().assert_config_error();
    assert_not_run(&marker);
}

// An unsafe config *directory* is an unsafe configuration too (SPEC §6.1): exit 78, naming
// the directory. An unsafe elevator binary is `setup` (77).

#[test]
fn config_dir_writable_by_group_is_refused() {
    let fx = fx();
    let (request, token, marker) = valid_touch(&fx, "config-dir");
    fs::set_permissions(fx.sb.etc_dir(), fs::Permissions::from_mode(0o775)).unwrap();
    let out = fx.elevate(&token, &request).run();
    let detail = out.assert_config_error();
    assert!(detail.contains("/etc/assent"), "name the directory: {out}");
    assert_not_run(&marker);
}

#[test]
fn config_dir_owned_by_the_requester_is_refused() {
    let fx = fx();
    let (request, token, marker) = valid_touch(&fx, "config-dir-owner");
    std::os::unix::fs::chown(fx.sb.etc_dir(), Some(fx.agent.uid), Some(fx.agent.gid)).unwrap();
    let out = fx.elevate(&token, &request).run();
    let detail = out.assert_config_error();
    assert!(detail.contains("/etc/assent"), "name the directory: {out}");
    assert_not_run(&marker);
}

#[test]
fn malformed_config_is_refused() {
    let fx = fx();
    let (request, token, marker) = valid_touch(&fx, "config-malformed");
    fx.sb.write_config_text("[[approver]\nname = \"alice\"\n");
    fx.elevate(&token, &request).run().assert_config_error();
    assert_not_run(&marker);
}

#[test]
fn config_with_unknown_settings_is_refused() {
    let fx = fx();
    let (request, token, marker) = valid_touch(&fx, "config-unknown");
    let text = fs::read_to_string(fx.sb.config_path()).unwrap();
    fx.sb
        .write_config_text(&format!("{text}\n[settings]\nallow_everything = true\n"));
    fx.elevate(&token, &request).run().assert_config_error();
    assert_not_run(&marker);
}

#[test]
fn missing_config_is_refused() {
    let fx = fx();
    let (request, token, marker) = valid_touch(&fx, "config-missing");
    fs::remove_file(fx.sb.config_path()).unwrap();
    fx.elevate(&token, &request).run().assert_config_error();
    assert_not_run(&marker);
}

#[test]
fn elevator_that_is_not_setuid_refuses() {
    let fx = fx();
    let (request, token, marker) = valid_touch(&fx, "not-setuid");
    fx.sb.install_bin(
        "assent-elevate",
        &assent_tests::built_binary("assent-elevate"),
        0o755,
    );
    fx.elevate(&token, &request).run().assert_refused("setup");
    assert_not_run(&marker);
}

/// An agent sandbox (Codex's, Claude Code's) sets no_new_privs, and the kernel then ignores
/// the setuid bit. Reinstalling the elevator would not help: the refusal says what would.
#[test]
fn under_no_new_privs_the_refusal_names_it_and_the_real_fix() {
    let fx = fx();
    let (request, token, marker) = valid_touch(&fx, "no-new-privs");
    let r = &request.payload;
    let out = fx
        .sb
        .run_as_agent(assent_tests::real_path("/usr/bin/setpriv"))
        .arg("--no-new-privs")
        .arg(fx.sb.elevator_path())
        .args(["--grant", &token, "--"])
        .arg(&r.program)
        .args(&r.argv[1..])
        .run();
    let detail = out.assert_refused("setup");
    assert!(detail.contains("no_new_privs"), "{out}");
    assert!(detail.contains("outside the sandbox"), "{out}");
    assert!(detail.contains("assent mcp"), "{out}");
    assert!(!detail.contains("chmod"), "a wrong fix: {out}");
    assert_not_run(&marker);
}

#[test]
fn elevator_writable_by_group_refuses() {
    let fx = fx();
    let (request, token, marker) = valid_touch(&fx, "binary-writable");
    fs::set_permissions(fx.sb.elevator_path(), fs::Permissions::from_mode(0o4775)).unwrap();
    fx.elevate(&token, &request).run().assert_refused("setup");
    assert_not_run(&marker);
}

#[test]
fn unlisted_caller_is_refused_before_the_token_is_parsed() {
    let other = TestUser::other();
    let fx = fx();
    let (request, marker) = fx.touch("requester");
    let (request, _, token) = fx.approved(request);
    let r = &request.payload;
    for token in [token.as_str(), "%%% garbage, not base64 %%%"] {
        let out = fx
            .sb
            .run_as(&other, fx.sb.elevator_path())
            .args(["--grant", token, "--"])
            .arg(&r.program)
            .args(&r.argv[1..])
            .run();
        fx.assert_refused(&out, "requester", &marker);
        assert!(fx.last_audit().mentions(&other.name));
    }
}

// ---------------------------------------------------------------------------------------------
// What the command inherits

#[test]
fn caller_environment_does_not_reach_the_command() {
    let secure_path = "/usr/sbin:/usr/bin:/sbin:/bin";
    let fx = fx_with(|c| c.secure_path(secure_path));
    let (request, _, token) = fx.approved(fx.request("/usr/bin/env", &["env"]));
    let hostile = [
        ("LD_PRELOAD", "/nonexistent/evil.so"),
        ("LD_LIBRARY_PATH", "/nonexistent/lib"),
        ("LD_AUDIT", "/nonexistent/audit.so"),
        ("BASH_ENV", "/nonexistent/bashrc"),
        ("ENV", "/nonexistent/shrc"),
        ("PATH", "/nonexistent/bin:/usr/bin:/bin"),
        ("IFS", "x"),
        ("PYTHONPATH", "/nonexistent/python"),
        ("PERL5LIB", "/nonexistent/perl"),
        ("ASSENT_REQUEST_ID", "forged"),
        ("HOME", "/nonexistent/home"),
        ("ASSENT_LEAK_CANARY", "leaked"),
    ];
    let mut run = fx.elevate(&token, &request);
    for (k, v) in hostile {
        run = run.env(k, v);
    }
    let out = run.run();
    fx.assert_exec(&out);
    assert!(!out.stdout.contains("nonexistent"), "{out}");
    assert!(!out.stdout.contains("leaked"), "{out}");
    assert!(!out.stdout.contains("forged"), "{out}");
    let env = env_lines(&out.stdout);
    for key in [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "BASH_ENV",
        "ENV",
        "IFS",
        "PYTHONPATH",
        "PERL5LIB",
    ] {
        assert_eq!(env_get(&env, key), None, "{key} reached the command: {out}");
    }
    assert_eq!(env_get(&env, "PATH"), Some(secure_path), "{out}");
    assert_eq!(env_get(&env, "HOME"), Some("/root"), "{out}");
    assert_eq!(env_get(&env, "USER"), Some("root"), "{out}");
    assert_eq!(env_get(&env, "LOGNAME"), Some("root"), "{out}");
    let id = request.payload.id.to_hex();
    assert_eq!(
        env_get(&env, "ASSENT_REQUEST_ID"),
        Some(id.as_str()),
        "{out}"
    );
    assert_eq!(env_get(&env, "ASSENT_APPROVER"), Some("alice"), "{out}");
    assert_eq!(env_get(&env, "ASSENT_AGENT"), Some("test-agent"), "{out}");
    assert_eq!(env_get(&env, "ASSENT_USER"), Some("assent-agent"), "{out}");
    let uid = fx.agent.uid.to_string();
    assert_eq!(env_get(&env, "ASSENT_UID"), Some(uid.as_str()), "{out}");
}

/// Installers read `SUDO_USER`, `SUDO_UID` and `SUDO_GID` to find who invoked them; they are
/// the caller's real ids, whatever the caller put in its own environment.
#[test]
fn the_command_gets_sudo_user_uid_gid_and_command_of_the_caller() {
    let fx = fx();
    let (request, _, token) = fx.approved(fx.request("/usr/bin/env", &["env", "-0"]));
    let out = fx
        .elevate(&token, &request)
        .env("SUDO_USER", "root")
        .env("SUDO_UID", "0")
        .env("SUDO_GID", "0")
        .env("SUDO_COMMAND", "/bin/forged")
        .run();
    fx.assert_exec(&out);
    let env: Vec<(String, String)> = out
        .stdout
        .split('\0')
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let (uid, gid) = (fx.agent.uid.to_string(), fx.agent.gid.to_string());
    assert_eq!(env_get(&env, "SUDO_USER"), Some("assent-agent"), "{out}");
    assert_eq!(env_get(&env, "SUDO_UID"), Some(uid.as_str()), "{out}");
    assert_eq!(env_get(&env, "SUDO_GID"), Some(gid.as_str()), "{out}");
    let command = format!("{} -0", request.payload.program);
    assert_eq!(
        env_get(&env, "SUDO_COMMAND"),
        Some(command.as_str()),
        "{out}"
    );
}

#[test]
fn safe_terminal_and_locale_variables_pass_and_unsafe_ones_do_not() {
    let fx = fx();
    let (request, _, token) = fx.approved(fx.request("/usr/bin/env", &["env"]));
    let out = fx
        .elevate(&token, &request)
        .env("TERM", "xterm-256color")
        .env("LANG", "C.UTF-8")
        .env("LC_CTYPE", "../../../tmp/evil")
        .env("LC_TIME", "/tmp/evil")
        .run();
    fx.assert_exec(&out);
    let env = env_lines(&out.stdout);
    assert_eq!(env_get(&env, "TERM"), Some("xterm-256color"), "{out}");
    assert_eq!(env_get(&env, "LANG"), Some("C.UTF-8"), "{out}");
    assert_eq!(env_get(&env, "LC_CTYPE"), None, "{out}");
    assert_eq!(env_get(&env, "LC_TIME"), None, "{out}");
    let root = TestUser::root();
    assert_eq!(env_get(&env, "SHELL"), root.shell.to_str(), "{out}");
}

#[test]
fn command_has_the_targets_groups_only() {
    let fx = fx();
    let (request, _, token) = fx.approved(fx.request("/usr/bin/id", &["id", "-G"]));
    let out = fx.elevate(&token, &request).run();
    fx.assert_exec(&out);
    // root's groups as the group database lists them, none of the caller's.
    let expected = std::process::Command::new("id")
        .args(["-G", "root"])
        .output()
        .unwrap();
    assert_eq!(
        out.stdout,
        String::from_utf8_lossy(&expected.stdout),
        "{out}"
    );
    let agent_gid = fx.agent.gid.to_string();
    assert!(
        !out.stdout.split_whitespace().any(|g| g == agent_gid),
        "the caller's group leaked: {out}"
    );
}

/// The caller's process state (umask, ignored signals, resource limits) as a hostile caller
/// would set it, then `exec "$@"`.
const HOSTILE_CALLER: &str = "ulimit -S -c 16; ulimit -S -n 512; ulimit -S -f 100000; \
    ulimit -S -t 1000; umask 077; trap '' INT TERM HUP PIPE; exec \"$@\"";
const PROCESS_STATE: &str =
    "^(Umask|SigIgn|SigBlk|Pid|PPid):|^Max (core file size|file size|open files|cpu time)";

/// `/proc/self/status` and `/proc/self/limits` lines of interest, printed by grep as
/// `FILE:LINE`.
fn process_state(out: &Outcome) -> Vec<String> {
    out.stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Bits of signals 32 and 33 in a `/proc/PID/status` signal mask (bit n-1 is signal n).
const GLIBC_INTERNAL_SIGNALS: u64 = 0b11 << 31;

fn sig_mask(state: &[String], name: &str) -> u64 {
    let prefix = format!("/proc/self/status:{name}:");
    let hex = state_line(state, &prefix)[prefix.len()..].trim();
    u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{name} {hex:?}: {e}"))
}

fn state_line<'a>(state: &'a [String], prefix: &str) -> &'a str {
    state
        .iter()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} line in {state:?}"))
}

#[test]
fn process_state_is_reset_and_the_command_is_the_elevators_child() {
    let fx = fx();
    let grep = real_path("/usr/bin/grep");
    let grep = grep.to_str().unwrap();
    let files = ["/proc/self/status", "/proc/self/limits"];
    let (request, _, token) =
        fx.approved(fx.request(grep, &["grep", "-E", PROCESS_STATE, files[0], files[1]]));

    // The same caller without the elevator: what it hands over.
    let baseline = fx
        .sb
        .run_as_agent("/bin/sh")
        .args(["-c", HOSTILE_CALLER, "sh", grep, "-E", PROCESS_STATE])
        .args(files)
        .run();
    baseline.assert_success();
    let before = process_state(&baseline);
    assert_eq!(
        state_line(&before, "/proc/self/status:Umask:"),
        "/proc/self/status:Umask: 0077"
    );
    assert_ne!(
        sig_mask(&before, "SigIgn") & !GLIBC_INTERNAL_SIGNALS,
        0,
        "the caller ignores signals: {baseline}"
    );

    let running = fx
        .sb
        .run_as_agent("/bin/sh")
        .args(["-c", HOSTILE_CALLER, "sh"])
        .arg(fx.sb.elevator_path())
        .args(["--grant", &token, "--", grep])
        .args(&request.payload.argv[1..])
        .spawn();
    let pid = running.pid();
    let out = running.wait();
    fx.assert_exec(&out);
    let after = process_state(&out);
    assert_eq!(
        state_line(&after, "/proc/self/status:Umask:"),
        "/proc/self/status:Umask: 0022",
        "{out}"
    );
    // Every signal must be reset, 32 and 33 too: glibc's sigaction refuses those, yet a process
    // may inherit them ignored from far up its ancestry.
    assert_eq!(
        sig_mask(&after, "SigIgn"),
        0,
        "ignored signals must be reset: {out}"
    );
    assert_eq!(
        state_line(&after, "/proc/self/status:SigBlk:"),
        "/proc/self/status:SigBlk: 0000000000000000",
        "the signal mask must be empty: {out}"
    );
    // The process that was started (unshare, sh, setpriv, env and the elevator are one pid,
    // each exec'ing the next) stays as the command's monitor: the command is its child.
    assert_eq!(
        state_line(&after, "/proc/self/status:PPid:"),
        format!("/proc/self/status:PPid: {pid}"),
        "{out}"
    );
    // The command has PID 1's limits (the sandbox's), not the ones the caller lowered.
    for label in [
        "Max core file size",
        "Max file size",
        "Max open files",
        "Max cpu time",
    ] {
        let prefix = format!("/proc/self/limits:{label}");
        let line = state_line(&after, &prefix);
        let (soft, hard) = fx.sb.root_limit(label);
        let fields: Vec<&str> = line[prefix.len()..].split_whitespace().collect();
        assert_eq!(
            fields[..2],
            [soft.as_str(), hard.as_str()],
            "{label}: {out}"
        );
        assert_ne!(
            state_line(&before, &prefix),
            line,
            "the caller lowered its {label}: {baseline}"
        );
    }
}

/// Interval timers survive exec. A caller that armed one before calling the elevator could
/// have the root command killed by SIGALRM, SIGVTALRM or SIGPROF at a moment of its choosing,
/// like the file size limit did. The command starts with none armed.
#[test]
fn interval_timers_the_caller_armed_do_not_reach_the_command() {
    let fx = fx();
    let perl = real_path("/usr/bin/perl");
    let report = "use Time::HiRes qw(getitimer ITIMER_REAL ITIMER_VIRTUAL ITIMER_PROF); \
        print join(' ', map { (getitimer($_))[0] > 0 ? 1 : 0 } ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF)";
    let (request, _, token) =
        fx.approved(fx.request(perl.to_str().unwrap(), &["perl", "-e", report]));
    let arm = "use Time::HiRes qw(setitimer ITIMER_REAL ITIMER_VIRTUAL ITIMER_PROF); \
        setitimer($_, 600) for ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF; exec @ARGV or die $!";
    let out = fx
        .sb
        .run_as_agent(&perl)
        .args(["-e", arm])
        .arg(fx.sb.elevator_path())
        .args(["--grant", &token, "--"])
        .arg(&request.payload.program)
        .args(&request.payload.argv[1..])
        .run();
    fx.assert_exec(&out);
    assert_eq!(out.stdout, "0 0 0", "timers armed in the command: {out}");
}

/// Pending signals survive exec too. v1 emptied the signal mask right before exec, so a
/// SIGTERM the caller left blocked and pending killed the elevator after the grant was spent
/// and the audit line said `exec`. Now it is discarded and the approved command runs.
#[test]
fn a_signal_the_caller_left_pending_does_not_stop_the_approved_command() {
    let fx = fx();
    let (request, marker) = fx.touch("pending-signal");
    let (request, _, token) = fx.approved(request);
    let out = fx
        .sb
        .run_as_agent(real_path("/usr/bin/perl"))
        .args([
            "-e",
            "use POSIX; sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGTERM)); kill TERM => $$; \
             exec @ARGV or die $!",
        ])
        .arg(fx.sb.elevator_path())
        .args(["--grant", &token, "--"])
        .arg(&request.payload.program)
        .args(&request.payload.argv[1..])
        .run();
    fx.assert_exec(&out);
    assert!(marker.exists(), "the approved command did not run: {out}");
}

/// The caller's scheduling class, niceness, I/O class and personality flags are its own to
/// choose, not the root command's: a SCHED_IDLE elevator holding the ledger lock would stall
/// every other elevation, and a personality flag changes what the command sees (here the
/// kernel version uname(2) reports).
#[test]
fn the_callers_scheduling_and_personality_do_not_reach_the_command() {
    let fx = fx();
    let report = "uname -r; chrt -p $$; nice; ionice";
    let (request, _, token) = fx.approved(fx.request("/bin/sh", &["sh", "-c", report]));
    let out = fx
        .sb
        .run_as_agent("setarch")
        .args([
            "--uname-2.6",
            "chrt",
            "--idle",
            "0",
            "nice",
            "-n",
            "19",
            "ionice",
            "-c",
            "3",
        ])
        .arg(fx.sb.elevator_path())
        .args(["--grant", &token, "--"])
        .arg(&request.payload.program)
        .args(&request.payload.argv[1..])
        .run();
    fx.assert_exec(&out);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(lines[0], release.trim_end(), "{out}");
    assert!(lines[1].ends_with("SCHED_OTHER"), "{out}");
    assert_eq!(lines[3], "0", "niceness: {out}");
    assert!(!lines[4].starts_with("idle"), "I/O class: {out}");
}

#[test]
fn default_secure_path_is_used_when_not_configured() {
    let fx = fx();
    let (request, _, token) = fx.approved(fx.request("/usr/bin/env", &["env"]));
    let out = fx.elevate(&token, &request).run();
    fx.assert_exec(&out);
    let env = env_lines(&out.stdout);
    assert_eq!(env_get(&env, "PATH"), Some(DEFAULT_SECURE_PATH), "{out}");
}

#[test]
fn inherited_descriptors_above_two_are_closed() {
    let fx = fx();
    let (request, _, token) = fx.approved(fx.request("/bin/sh", &["sh", "-c", "ls /proc/$$/fd"]));
    let secret = fx.sb.keys_dir().join("alice");
    let out = fx
        .elevate(&token, &request)
        .fd(5, &secret)
        .fd(9, fx.sb.config_path())
        .run();
    fx.assert_exec(&out);
    let mut fds: Vec<u32> = out
        .stdout
        .split_whitespace()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("not an fd: {s:?} in {out}"))
        })
        .collect();
    fds.sort_unstable();
    assert_eq!(fds, [0, 1, 2], "descriptors leaked into the command: {out}");
}

#[test]
fn the_harness_really_passes_extra_descriptors() {
    // Guards the test above: without the elevator, fd 5 does reach the program.
    let fx = fx();
    let out = fx
        .sb
        .run_as_agent("/bin/sh")
        .args(["-c", "ls /proc/$$/fd"])
        .fd(5, fx.sb.config_path())
        .run();
    out.assert_success();
    assert!(out.stdout.split_whitespace().any(|s| s == "5"), "{out}");
}

#[test]
fn approved_env_entries_are_applied() {
    let fx = fx();
    let request = fx
        .request("/usr/bin/env", &["env"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("ASSENT_TEST_VALUE", "a b=c $HOME");
    let (request, _, token) = fx.approved(request);
    let out = fx.elevate(&token, &request).run();
    fx.assert_exec(&out);
    let env = env_lines(&out.stdout);
    assert_eq!(
        env_get(&env, "DEBIAN_FRONTEND"),
        Some("noninteractive"),
        "{out}"
    );
    assert_eq!(
        env_get(&env, "ASSENT_TEST_VALUE"),
        Some("a b=c $HOME"),
        "{out}"
    );
    let line = fx.last_audit();
    assert!(
        line.mentions("DEBIAN_FRONTEND"),
        "env keys are audited: {}",
        line.raw
    );
}

#[test]
fn approved_cwd_is_applied() {
    let fx = fx();
    let dir = fx.sb.work_dir().join("approved dir");
    fs::create_dir(&dir).unwrap();
    let (request, _, token) = fx.approved(fx.request("/usr/bin/pwd", &["pwd"]).cwd(&dir));
    let out = fx.elevate(&token, &request).cwd(&dir).run();
    fx.assert_exec(&out);
    assert_eq!(out.stdout.trim_end(), dir.to_str().unwrap(), "{out}");
}

// ---------------------------------------------------------------------------------------------
// The working directory (SPEC §13.2): opened component by component, never through a symbolic
// link, and the command starts in the directory that was opened.

fn owner_of(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()))
        .uid()
}

/// A root-owned directory holding a root-owned file: what a swapped cwd must never reach.
fn root_owned_victim(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("sudoers"), "root ALL=(ALL) ALL\n").unwrap();
}

/// `chown -R assent-agent:assent-agent .`, approved in `cwd`.
fn chown_here(fx: &Fx, cwd: &Path) -> (SignedRequest, String) {
    let owner = format!("{0}:{0}", fx.agent.name);
    let request = fx
        .request("/usr/bin/chown", &["chown", "-R", &owner, "."])
        .cwd(cwd);
    let (request, _, token) = fx.approved(request);
    (request, token)
}

#[test]
fn a_chown_approved_in_the_agents_directory_runs_there() {
    let fx = fx();
    let proj = fx.sb.agent_dir().join("proj");
    fs::create_dir(&proj).unwrap();
    fs::write(proj.join("build.log"), "made by root").unwrap();
    let (request, token) = chown_here(&fx, &proj);
    fx.assert_exec(&fx.elevate(&token, &request).run());
    assert_eq!(owner_of(&proj.join("build.log")), fx.agent.uid);
}

/// The attack: approved `chown -R agent:agent .` in the agent's `proj`; before the elevator
/// runs, the agent replaces `proj` (or a directory above it) with a symbolic link to a
/// root-owned directory. Refused, before the grant is spent, and the root-owned files stay
/// root's.
#[test]
fn a_cwd_swapped_for_a_symlink_after_approval_is_refused() {
    let fx = fx();
    let root_side = fx.sb.work_dir().join("root-side");
    root_owned_victim(&root_side.join("proj"));

    // The approved directory itself becomes a link.
    let proj = fx.sb.agent_dir().join("proj");
    fs::create_dir(&proj).unwrap();
    let (request, token) = chown_here(&fx, &proj);
    fs::remove_dir(&proj).unwrap();
    std::os::unix::fs::symlink(root_side.join("proj"), &proj).unwrap();
    let detail = fx.assert_refused(
        &fx.elevate(&token, &request).run(),
        "cwd",
        &fx.sb.marker("unused"),
    );
    assert!(detail.contains("is a symbolic link"), "{detail}");

    // A directory above it becomes a link.
    let up = fx.sb.agent_dir().join("up");
    fs::create_dir_all(up.join("proj")).unwrap();
    let (request2, token2) = chown_here(&fx, &up.join("proj"));
    fs::rename(&up, fx.sb.agent_dir().join("up.old")).unwrap();
    std::os::unix::fs::symlink(&root_side, &up).unwrap();
    fx.assert_refused(
        &fx.elevate(&token2, &request2).run(),
        "cwd",
        &fx.sb.marker("unused"),
    );

    for path in [root_side.join("proj"), root_side.join("proj/sudoers")] {
        assert_eq!(owner_of(&path), 0, "{} was chowned", path.display());
    }
    // Refused before the single-use check: the grant is not spent. With the real directory
    // back, the same token runs.
    fs::remove_file(&proj).unwrap();
    fs::create_dir(&proj).unwrap();
    fx.assert_exec(&fx.elevate(&token, &request).run());
}

#[test]
fn a_cwd_that_is_not_canonical_is_refused() {
    let fx = fx();
    let work = fx.sb.work_dir();
    let work = work.to_str().unwrap();
    for cwd in [
        format!("{work}/"),
        format!("{work}/./"),
        format!("{work}/../work"),
    ] {
        let (request, marker) = fx.touch("noncanonical-cwd");
        let request = request.cwd(&cwd);
        let (request, _, token) = fx.approved(request);
        let detail = fx.assert_refused(&fx.elevate(&token, &request).run(), "cwd", &marker);
        assert!(detail.contains("not canonical"), "{cwd}: {detail}");
    }
}

/// The target user must be allowed to enter the approved directory, as `chdir` as that user
/// would require; when it cannot, the attempt is refused before the grant is spent.
#[test]
fn a_cwd_the_target_cannot_enter_is_refused_before_the_grant_is_spent() {
    let nobody = TestUser::lookup("nobody").expect("this system has no user nobody");
    let fx = fx();
    fx.sb.write_config(
        &ElevatorConfig::new()
            .approver("alice", &fx.alice.public_line)
            .requester(&fx.agent.name, &["root", "nobody"]),
    );
    let private = fx.sb.work_dir().join("private");
    fs::create_dir(&private).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    let (request, _, token) = fx.approved(
        fx.request("/usr/bin/pwd", &["pwd"])
            .run_as("nobody")
            .cwd(&private),
    );
    let detail = fx.assert_refused(
        &fx.elevate(&token, &request).run(),
        "cwd",
        &fx.sb.marker("unused"),
    );
    assert!(detail.contains("cannot be entered by nobody"), "{detail}");
    fs::set_permissions(&private, fs::Permissions::from_mode(0o711)).unwrap();
    let out = fx.elevate(&token, &request).run();
    fx.assert_exec(&out);
    assert_eq!(out.stdout.trim_end(), private.to_str().unwrap(), "{out}");
    assert_ne!(nobody.uid, 0);
}

// ---------------------------------------------------------------------------------------------
// The monitor: the elevator stays behind as the command's parent, reports how it ended, and
// takes it down with it.

/// The exit receipt after the last `exec` line.
fn last_receipt(fx: &Fx) -> AuditLine {
    let lines = fx.sb.audit_lines();
    let receipt = lines.last().expect("an audit line").clone();
    assert_eq!(receipt.event(), "exit", "{}", fx.sb.audit_text());
    let exec = &lines[lines.len() - 2];
    assert_eq!(exec.event(), "exec", "{}", fx.sb.audit_text());
    assert_eq!(receipt.json["request_id"], exec.json["request_id"]);
    receipt
}

#[test]
fn the_exit_status_and_a_receipt_of_how_the_command_ended_come_back() {
    let fx = fx();
    let sh = real_path("/bin/sh");
    let sh = sh.to_str().unwrap();
    // An exit status passes through; the receipt has it, the time and the CPU time.
    let (request, _, token) = fx.approved(fx.request(sh, &["sh", "-c", "exit 3"]));
    fx.elevate(&token, &request).run().assert_code(3);
    let receipt = last_receipt(&fx);
    assert_eq!(receipt.json["status"], 3, "{}", receipt.raw);
    assert!(receipt.json["signal"].is_null(), "{}", receipt.raw);
    assert!(receipt.json["wall_ms"].is_u64(), "{}", receipt.raw);
    assert!(receipt.json["cpu_ms"].is_u64(), "{}", receipt.raw);
    assert!(
        receipt.json["pid"].as_i64().is_some_and(|p| p > 1),
        "{}",
        receipt.raw
    );
    assert_eq!(receipt.json["uid"], fx.agent.uid, "{}", receipt.raw);
    // A command killed by signal N: 128 + N, as a shell reports it.
    let (request, _, token) = fx.approved(fx.request(sh, &["sh", "-c", "kill -KILL $$"]));
    fx.elevate(&token, &request).run().assert_code(128 + 9);
    let receipt = last_receipt(&fx);
    assert_eq!(receipt.json["signal"], 9, "{}", receipt.raw);
    assert!(receipt.json["status"].is_null(), "{}", receipt.raw);
    // The CPU time is the command's.
    let (request, _, token) = fx.approved(fx.request(
        sh,
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done",
        ],
    ));
    fx.elevate(&token, &request).run().assert_success();
    let receipt = last_receipt(&fx);
    assert!(
        receipt.json["cpu_ms"].as_u64().is_some_and(|ms| ms > 0),
        "{}",
        receipt.raw
    );
    fx.sb.audit_verify().assert_success();
}

/// The caller may kill the monitor (its real uid is the caller's again), but not the root
/// command it stands for: that dies with it.
#[test]
fn the_command_dies_with_its_monitor() {
    use std::time::{Duration, Instant};
    let fx = fx();
    let pidfile = fx.sb.marker("monitored");
    let sh = real_path("/bin/sh");
    let script = format!("echo $$ > '{}'; exec sleep 300", pidfile.display());
    let (request, _, token) = fx.approved(fx.request(sh.to_str().unwrap(), &["sh", "-c", &script]));
    let running = fx.elevate(&token, &request).spawn();
    let monitor = running.pid();
    let deadline = Instant::now() + Duration::from_secs(30);
    let sleeping = |pid: u32| {
        proc_status(pid, "Name").as_deref() == Some("sleep")
            && proc_status(pid, "State").is_some_and(|s| !s.starts_with('Z'))
    };
    let mut command = 0;
    while !(command != 0 && sleeping(command)) {
        assert!(Instant::now() < deadline, "the command did not start");
        std::thread::sleep(Duration::from_millis(10));
        command = fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
    }
    assert_eq!(
        proc_status(command, "PPid"),
        Some(monitor.to_string()),
        "the monitor is the command's parent"
    );
    let uids = proc_status(monitor, "Uid").unwrap_or_default();
    assert!(
        uids.starts_with(&format!("{} 0 0 ", fx.agent.uid)),
        "the monitor's real uid is the caller's, the others root's: {uids}"
    );
    // The command is root's: the caller cannot signal it.
    let direct = fx
        .sb
        .run_as_agent("/bin/kill")
        .args(["-KILL", &command.to_string()])
        .run();
    assert!(
        !direct.success(),
        "the caller signalled root's command: {direct}"
    );
    let killed = fx
        .sb
        .run_as_agent("/bin/kill")
        .args(["-KILL", &monitor.to_string()])
        .run();
    killed.assert_success();
    running.wait();
    while sleeping(command) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let left = sleeping(command);
    if left {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &command.to_string()])
            .status();
    }
    assert!(!left, "the root command outlived its monitor");
}

// ---------------------------------------------------------------------------------------------
// Audit log

/// Three attempts: exec, refused (single-use), exec.
fn three_audited_attempts(fx: &Fx) {
    let (request, _) = fx.touch("audit-1");
    let (request, _, token) = fx.approved(request);
    fx.assert_exec(&fx.elevate(&token, &request).run());
    fx.elevate(&token, &request)
        .run()
        .assert_refused("single-use");
    let (request, _) = fx.touch("audit-2");
    let (request, _, token) = fx.approved(request);
    fx.assert_exec(&fx.elevate(&token, &request).run());
}

#[test]
fn every_attempt_is_audited_and_the_chain_verifies() {
    let fx = fx();
    three_audited_attempts(&fx);
    let lines = fx.sb.audit_lines();
    let events: Vec<(&str, Option<&str>)> = lines.iter().map(|l| (l.event(), l.check())).collect();
    assert_eq!(
        events,
        [
            ("exec", None),
            ("exit", None),
            ("refused", Some("single-use")),
            ("exec", None),
            ("exit", None)
        ]
    );
    let mode = fs::metadata(fx.sb.audit_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o077,
        0,
        "the audit log must be private to root: {mode:o}"
    );
    let out = fx.sb.audit_verify();
    out.assert_success();
}

fn mentions_line(out: &Outcome, numbers: &[usize]) -> bool {
    let text = format!("{}{}", out.stdout, out.stderr).to_lowercase();
    numbers.iter().any(|n| text.contains(&format!("line {n}")))
}

#[test]
fn edited_audit_line_fails_verification() {
    let fx = fx();
    three_audited_attempts(&fx);
    let text = fx.sb.audit_text();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // Change one character of line 3 (the refusal) inside a string value, keeping it valid
    // JSON.
    let at = lines[2]
        .find("marker-audit-1")
        .expect("line 3 names the marker");
    lines[2].replace_range(at..at + 1, "M");
    fs::write(fx.sb.audit_path(), lines.join("\n") + "\n").unwrap();
    let out = fx.sb.audit_verify();
    assert!(!out.success(), "verify accepted an edited log: {out}");
    // Line 3 was edited; a pure hash chain notices it at line 4, whose `prev` no longer matches.
    assert!(
        mentions_line(&out, &[3, 4]),
        "verify must name the line: {out}"
    );
}

#[test]
fn deleted_audit_line_fails_verification() {
    let fx = fx();
    three_audited_attempts(&fx);
    let text = fx.sb.audit_text();
    let lines: Vec<&str> = text.lines().collect();
    fs::write(fx.sb.audit_path(), format!("{}\n{}\n", lines[0], lines[2])).unwrap();
    let out = fx.sb.audit_verify();
    assert!(
        !out.success(),
        "verify accepted a log with a line deleted: {out}"
    );
    assert!(
        mentions_line(&out, &[2]),
        "verify must name the line: {out}"
    );
}

// The audit log under hostile callers (SPEC §13.4): bounded lines, every argument counted,
// and a log that verifies after any attempt by any local user.

/// `assent-elevate --grant not-a-token -- /usr/bin/true` plus `extra` empty arguments, built
/// by perl on the caller's side (the harness would have to pass them through root's execs),
/// with the stack limit that lets execve take that many.
fn many_empty_arguments<'a>(fx: &'a Fx, user: &TestUser, extra: usize) -> Run<'a> {
    fx.sb
        .run_as(user, "/bin/sh")
        .args([
            "-c",
            "ulimit -s unlimited; exec /usr/bin/perl -e 'my $n = shift; exec @ARGV, (q()) x $n or die $!' \"$@\"",
            "sh",
        ])
        .arg(extra.to_string())
        .arg(fx.sb.elevator_path())
        .args(["--grant", "not-a-token", "--", "/usr/bin/true"])
}

/// The attack: a user that is not a requester added about 2 MB to the log per call with
/// hundreds of thousands of empty arguments. Now its line is at most 4 KiB, and says how many
/// arguments (and bytes) there were.
#[test]
fn a_strangers_hundreds_of_thousands_of_empty_arguments_make_one_short_line() {
    let fx = fx();
    let out = many_empty_arguments(&fx, &TestUser::other(), 300_000).run();
    out.assert_refused("requester");
    let line = fx.last_audit();
    assert!(
        line.raw.len() <= 4096,
        "a {} byte line for a stranger",
        line.raw.len()
    );
    assert_eq!(line.json["argc"], 300_001, "{}", line.raw);
    assert_eq!(line.json["argv_bytes"], 0, "{}", line.raw);
    let argv = line.json["argv"].as_array().expect("argv");
    assert!(
        argv[0].is_null(),
        "argv[0] is the request's, unknown here: {}",
        line.raw
    );
    assert!(
        argv.last()
            .unwrap()
            .as_str()
            .unwrap()
            .contains("more arguments not logged"),
        "{}",
        line.raw
    );
    fx.sb.audit_verify().assert_success();
}

/// A requester's line is at most 64 KiB, however long or however escaped (a control byte is
/// six bytes of JSON) its arguments are, and the refusal's detail too.
#[test]
fn a_requesters_line_is_at_most_64_kib() {
    let fx = fx();
    let (request, marker) = fx.touch("long-args");
    let (request, _, token) = fx.approved(request);
    let control = "\u{1}".repeat(100 * 1024);
    let out = fx
        .sb
        .run_as_agent("/bin/sh")
        .args(["-c", "ulimit -s unlimited; exec \"$@\"", "sh"])
        .arg(fx.sb.elevator_path())
        .args(["--grant", &token, "--"])
        .arg(&request.payload.program)
        .args(std::iter::repeat_n(control.as_str(), 20))
        .run();
    fx.assert_refused(&out, "command", &marker);
    let line = fx.last_audit();
    assert!(
        line.raw.len() <= 64 * 1024,
        "a {} byte line",
        line.raw.len()
    );
    assert_eq!(line.json["argc"], 21, "{}", line.raw);
    assert_eq!(line.json["argv_bytes"], 20 * 100 * 1024, "{}", line.raw);
    assert_eq!(
        line.json["argv"][0], request.payload.argv[0],
        "argv[0] is the signed request's: {}",
        line.raw
    );
    assert!(
        out.stderr.len() < 4096,
        "the refusal is one short line: {}",
        out.stderr.len()
    );
    fx.sb.audit_verify().assert_success();
}

/// Refused and exec lines record argv[0] the same way: the signed request's, or null when no
/// request was read.
#[test]
fn argv0_is_recorded_the_same_way_in_every_line() {
    let fx = fx();
    let (request, _) = fx.touch("argv0");
    let (request, _, token) = fx.approved(request.argv(&["my-touch", "x"]));
    fx.elevate(&token, &request)
        .arg("extra")
        .run()
        .assert_refused("command");
    fx.assert_exec(&fx.elevate(&token, &request).run());
    fx.sb
        .elevate("garbage", &request.payload.program, ["x"])
        .run()
        .assert_refused("token");
    let lines = fx.sb.audit_attempts();
    let argv: Vec<&serde_json::Value> = lines.iter().map(|l| &l.json["argv"]).collect();
    assert_eq!(*argv[0], serde_json::json!(["my-touch", "x", "extra"]));
    assert_eq!(*argv[1], serde_json::json!(["my-touch", "x"]));
    assert_eq!(*argv[2], serde_json::json!([null, "x"]));
    for line in &lines {
        assert_eq!(
            line.json["program"], request.payload.program,
            "{}",
            line.raw
        );
    }
}

/// Where root lacks CAP_SYS_RESOURCE, a tiny file size limit made v1 leave half a line in the
/// log, and `audit verify` failed for good. Now nothing is written under the caller's limit.
#[test]
fn a_tiny_file_size_limit_never_leaves_half_a_line() {
    let fx = fx();
    let (request, marker) = fx.touch("fsize-audit");
    let (request, _, token) = fx.approved(request);
    // Some lines first, so that the limit is just above the log's size.
    three_audited_attempts(&fx);
    let size = fs::metadata(fx.sb.audit_path()).unwrap().len();
    let limit = format!("--fsize={0}:{0}", size + 20);
    for user in [TestUser::other(), TestUser::agent()] {
        let out = fx
            .sb
            .run_as(&user, "prlimit")
            .args([limit.as_str(), "--"])
            .arg(fx.sb.elevator_path())
            .args(["--grant", &token, "--"])
            .arg(&request.payload.program)
            .args(&request.payload.argv[1..])
            .without_cap_sys_resource()
            .run();
        fx.sb.audit_verify().assert_success();
        assert_eq!(fs::metadata(fx.sb.audit_path()).unwrap().len(), size);
        out.assert_refused("limits");
        assert_not_run(&marker);
    }
}

// ---------------------------------------------------------------------------------------------
// Administrative commands and usage

#[test]
fn check_as_root_prints_each_approvers_fingerprint() {
    let fx = fx();
    let out = fx.sb.check();
    out.assert_success();
    assert!(
        out.stdout.contains(&fx.alice.ssh_keygen_fingerprint()),
        "check must print alice's fingerprint as ssh-keygen -l does: {out}"
    );
    assert!(out.stdout.contains("alice"), "{out}");
    assert!(
        out.stdout.contains(&format!(
            "\nhost id {} (/etc/assent/host-id)\n",
            fx.sb.host_id()
        )),
        "{out}"
    );
}

#[test]
fn check_as_root_reports_an_unsafe_config() {
    let fx = fx();
    fs::set_permissions(fx.sb.config_path(), fs::Permissions::from_mode(0o666)).unwrap();
    fx.sb.check().assert_config_error();
}

#[test]
fn non_root_callers_cannot_run_check_or_audit_verify() {
    let fx = fx();
    three_audited_attempts(&fx);
    for args in [&["check"][..], &["audit", "verify"][..]] {
        let out = fx.sb.run_as_agent(fx.sb.elevator_path()).args(args).run();
        assert!(!out.success(), "{args:?} as a non-root user: {out}");
        assert!(
            !out.stdout.contains(&fx.alice.ssh_keygen_fingerprint()),
            "{args:?} printed the config to a non-root user: {out}"
        );
        let lines = out.stderr_lines();
        assert_eq!(lines.len(), 1, "one clear line: {out}");
        assert!(lines[0].starts_with("assent-elevate: "), "{out}");
        assert!(
            lines[0].contains("root"),
            "the message should say root is needed: {out}"
        );
    }
}

#[test]
fn usage_errors_exit_64_and_help_and_version_succeed() {
    let fx = fx();
    let elevator = fx.sb.elevator_path();
    let (_, marker) = fx.touch("usage");
    let marker_arg = marker.to_str().unwrap();
    for args in [
        &[][..],
        &["--grant"][..],
        &["--grant", "TOKEN"][..],
        &["--grant", "TOKEN", "--"][..],
        &["--frobnicate", "--", "/usr/bin/touch", marker_arg][..],
        &[
            "--grant-fd",
            "not-a-number",
            "--",
            "/usr/bin/touch",
            marker_arg,
        ][..],
    ] {
        let out = fx.sb.run_as_agent(&elevator).args(args).run();
        out.assert_code(64);
        assert!(
            out.stderr.starts_with("assent-elevate: "),
            "{args:?}: {out}"
        );
        assert_not_run(&marker);
    }
    for flag in ["--help", "--version"] {
        let out = fx.sb.run_as_agent(&elevator).arg(flag).run();
        out.assert_success();
        assert!(!out.stdout.trim().is_empty(), "{flag}: {out}");
    }
}
