//! Adversarial end to end tests (SPEC §6, §7, §10): a real `assent-relay` process under
//! hundreds of hostile clients beside a legitimate flow, the relay SIGKILLed at many points of
//! a real `assent run` through the setuid sandbox, and the elevator facing an audit log it
//! cannot write.
//!
//! Everything runs on loopback, with its own ports, sandboxes and markers, so the tests run in
//! parallel with each other and with the rest of the suite.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assent_protocol::{Envelope, Grant, PrivateKey, Role, Status};
use assent_relay_client::{Client, Event};
use assent_tests::agent_flow::AgentFlow;
use assent_tests::approver::{Choice, Policy, ScriptedApprover};
use assent_tests::grants::{DecisionBuilder, RequestBuilder, TokenBuilder};
use assent_tests::keys::KeyPair;
use assent_tests::relay_process::RelayProcess;
use assent_tests::sandbox::{ElevatorConfig, Outcome, Run, Sandbox};
use assent_tests::scratch::ScratchDir;
use assent_tests::users::TestUser;
use assent_tests::{now, real_path};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any wait in these tests may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// The heavy tests take turns: the hostile-clients test measures latency and must not share
/// two cores with ten sandboxed flows or two hundred racing processes.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The relay's resident set size in KiB, from /proc.
fn rss_kib(pid: u32) -> Option<u64> {
    assent_tests::proc_status(pid, "VmRSS")?
        .strip_suffix(" kB")?
        .parse()
        .ok()
}

/// User plus system CPU time of a process, in clock ticks (100 a second on Linux).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn load_key(path: &Path) -> PrivateKey {
    PrivateKey::from_openssh(&fs::read_to_string(path).expect("cannot read a key file"))
        .expect("the key loads")
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn lines_in(path: &Path) -> usize {
    fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Raise this process's open file limit (inherited by the relay it starts) to `want`.
fn raise_nofile(want: u64) {
    let limits = fs::read_to_string("/proc/self/limits").expect("cannot read /proc/self/limits");
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if soft >= want {
        return;
    }
    let out = Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={want}:{want}"))
        .output()
        .expect("cannot run prlimit (install util-linux)");
    assert!(
        out.status.success(),
        "cannot raise the open file limit to {want}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// 1. The relay under 500 hostile clients beside a legitimate flow.

/// How long a hostile client waits for the relay to close it before calling it a failure.
const CUT_OFF_WITHIN: Duration = Duration::from_secs(20);
const LOGIN_TIMEOUT_S: u64 = 5;
/// The legitimate flow's bound: it takes about a second on an idle two-core machine, and
/// the suite shares its two cores with everything else that runs.
const FLOW_WITHIN: Duration = Duration::from_secs(10);

/// A client frame (always masked, as RFC 6455 requires of clients).
fn ws_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first_byte];
    let len = payload.len();
    if len < 126 {
        frame.push(0x80 | len as u8);
    } else if len < 65_536 {
        frame.push(0x80 | 126);
        frame.extend((len as u16).to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend((len as u64).to_be_bytes());
    }
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    frame.extend(mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// Connect and finish the WebSocket handshake (but never log in).
async fn ws_open(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(UPGRADE).await?;
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed during the handshake"));
        }
        head.extend_from_slice(&buf[..n]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(std::io::Error::other(format!(
            "no upgrade: {}",
            String::from_utf8_lossy(&head)
        )));
    }
    Ok(stream)
}

/// Read and discard until the relay closes the connection; `true` when it did within the
/// bound. A reset or any error counts as closed.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(bound, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Hostile {
    Garbage,
    Slowloris,
    Flood,
    Oversized,
}

/// How a flooder's login went: it could not log in before the relay's login deadline (the
/// relay was busy), which ends it too, but then it never flooded.
const FLOODER_NOT_LOGGED_IN: &str = "flooder could not log in";

/// One hostile client; `Ok(true)` when the relay cut it off in time.
async fn hostile(kind: Hostile, i: usize, addr: SocketAddr, url: String) -> Result<bool, String> {
    let e = |e: std::io::Error| format!("{kind:?} #{i}: {e}");
    match kind {
        Hostile::Garbage => {
            let mut stream;
            match i % 4 {
                0 => {
                    // Not even HTTP.
                    stream = TcpStream::connect(addr).await.map_err(e)?;
                    let _ = stream
                        .write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
                        .await;
                }
                1 => {
                    stream = ws_open(addr).await.map_err(e)?;
                    let _ = stream
                        .write_all(&ws_frame(0x81, b"{\"type\":\"login\",\"login\":"))
                        .await;
                }
                2 => {
                    stream = ws_open(addr).await.map_err(e)?;
                    let _ = stream.write_all(&ws_frame(0x82, &[0xde; 300])).await;
                }
                _ => {
                    // Reserved bits and a reserved opcode.
                    stream = ws_open(addr).await.map_err(e)?;
                    let _ = stream.write_all(&ws_frame(0xf3, b"nonsense")).await;
                }
            }
            Ok(closed_within(&mut stream, CUT_OFF_WITHIN).await)
        }
        Hostile::Slowloris => {
            let mut stream = TcpStream::connect(addr).await.map_err(e)?;
            if i % 2 == 0 {
                // The upgrade request, one byte every 400 ms: it would take a minute.
                let started = Instant::now();
                for byte in UPGRADE {
                    if stream.write_all(&[*byte]).await.is_err() {
                        return Ok(started.elapsed() < CUT_OFF_WITHIN);
                    }
                    let mut buf = [0u8; 256];
                    let read =
                        tokio::time::timeout(Duration::from_millis(400), stream.read(&mut buf))
                            .await;
                    if let Ok(Ok(0) | Err(_)) = read {
                        return Ok(started.elapsed() < CUT_OFF_WITHIN);
                    }
                    if started.elapsed() > CUT_OFF_WITHIN {
                        return Ok(false);
                    }
                }
                Ok(false)
            } else {
                // A finished handshake and then silence instead of a login.
                let mut stream = ws_open(addr).await.map_err(e)?;
                Ok(closed_within(&mut stream, CUT_OFF_WITHIN).await)
            }
        }
        Hostile::Flood => {
            let key = PrivateKey::generate(&format!("flooder-{i}"));
            let request = RequestBuilder::new(real_path("/bin/true"), &["true"])
                .agent(&format!("flooder-{i}"))
                .sign(&key);
            let mut client = Client::connect(&url, &key, Role::Agent)
                .await
                .map_err(|e| format!("{FLOODER_NOT_LOGGED_IN} (#{i}): {e}"))?;
            // Far above both the submission rate and the message rate.
            for _ in 0..250 {
                if client.submit(&request.envelope).await.is_err() {
                    return Ok(true);
                }
            }
            let cut = tokio::time::timeout(CUT_OFF_WITHIN, async {
                while client.next_event().await.is_ok() {}
            })
            .await
            .is_ok();
            Ok(cut)
        }
        Hostile::Oversized => {
            let mut stream = ws_open(addr).await.map_err(e)?;
            if i % 2 == 0 {
                // 100 KiB in one text frame (the limit is 64 KiB).
                let big = vec![b'x'; 100 * 1024];
                let _ = stream.write_all(&ws_frame(0x81, &big)).await;
            } else {
                // A header announcing a terabyte, then nothing.
                let mut header = vec![0x81, 0x80 | 127];
                header.extend((1u64 << 40).to_be_bytes());
                header.extend([1, 2, 3, 4]);
                let _ = stream.write_all(&header).await;
            }
            Ok(closed_within(&mut stream, CUT_OFF_WITHIN).await)
        }
    }
}

/// An approver and an agent, each with a connection of its own: log in, submit, decide,
/// deliver. Returns the time from the agent's first connect to the verified decision.
fn legitimate_flow(url: &str, alice: &Path, agent: &Path) -> Duration {
    let (alice, agent) = (load_key(alice), load_key(agent));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut approver = ScriptedApprover::connect(url, alice, "alice")
            .await
            .expect("the approver logs in beside the hostile clients");
        let started = Instant::now();
        let mut client = Client::connect(url, &agent, Role::Agent)
            .await
            .expect("the legitimate agent logs in beside the hostile clients");
        let logged_in = started.elapsed();
        let request = RequestBuilder::new(real_path("/bin/true"), &["true"]).sign(&agent);
        client.submit(&request.envelope).await.expect("submit");
        let id = request.payload.id;
        let decide = async {
            loop {
                let (seen, first) = approver.next_request().await.expect("the approver reads");
                if seen.payload.id == id {
                    approver
                        .decide(seen, first, &Choice::approve())
                        .await
                        .expect("decide");
                    return started.elapsed();
                }
            }
        };
        let receive = async {
            loop {
                match client
                    .next_event()
                    .await
                    .expect("the agent's connection stays up")
                {
                    Event::Decision { envelope } => return envelope,
                    Event::Refused { reason, .. } => {
                        panic!("the legitimate request was refused: {reason}")
                    }
                    _ => {}
                }
            }
        };
        let (decided, decision) =
            tokio::time::timeout(PATIENCE, async { tokio::join!(decide, receive) })
                .await
                .expect("the legitimate flow completes");
        let delivered = started.elapsed();
        decision
            .open::<assent_protocol::Decision>()
            .expect("the delivered decision verifies");
        eprintln!(
            "legitimate flow: logged in after {logged_in:?}, decided after {decided:?}, delivered after {delivered:?}"
        );
        delivered
    })
}

#[test]
fn the_relay_serves_a_legitimate_flow_beside_500_hostile_clients() {
    const PER_KIND: usize = 125;
    assent_tests::require_root();
    let _turn = heavy();
    raise_nofile(8192);
    let dir = ScratchDir::new("hostile");
    let alice = KeyPair::generate(dir.path(), "alice");
    let agent = KeyPair::generate(dir.path(), "agent");
    let config = dir.join("relay.toml");
    fs::write(
        &config,
        format!(
            "[[approver]]\nname = \"alice\"\nkey = {:?}\n\n[limits]\nlogin_timeout_s = {LOGIN_TIMEOUT_S}\n",
            alice.public_line
        ),
    )
    .unwrap();
    let mut relay = RelayProcess::start(&config, &dir.join("relay.log"), "127.0.0.1:0");
    let (addr, url, pid) = (relay.addr(), relay.url(), relay.pid());
    let rss_before = rss_kib(pid).expect("the relay's VmRSS");
    let cpu_before = cpu_ticks(pid).expect("the relay's CPU time");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let peak = Arc::new(AtomicU64::new(rss_before));
    let sampling = Arc::new(AtomicBool::new(true));
    let (flow_time, results) = runtime.block_on(async {
        let sampler = {
            let (peak, sampling) = (peak.clone(), sampling.clone());
            tokio::spawn(async move {
                while sampling.load(Ordering::SeqCst) {
                    if let Some(kib) = rss_kib(pid) {
                        peak.fetch_max(kib, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };

        let mut tasks = Vec::new();
        for i in 0..PER_KIND {
            for kind in [
                Hostile::Garbage,
                Hostile::Slowloris,
                Hostile::Flood,
                Hostile::Oversized,
            ] {
                let url = url.clone();
                tasks.push((
                    kind,
                    tokio::spawn(async move {
                        let started = Instant::now();
                        let result = hostile(kind, i, addr, url).await;
                        (result, started.elapsed())
                    }),
                ));
            }
        }
        // Let the storm build up, then the real flow (its own process's worth of threads)
        // goes through it.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let legit = {
            let (url, alice, agent) = (
                url.clone(),
                alice.private_path.clone(),
                agent.private_path.clone(),
            );
            std::thread::spawn(move || legitimate_flow(&url, &alice, &agent))
        };
        let flow_time = tokio::task::spawn_blocking(move || legit.join())
            .await
            .expect("join")
            .expect("the legitimate flow panicked");

        let mut results = Vec::new();
        for (kind, task) in tasks {
            let (result, took) = task.await.expect("a hostile client panicked");
            results.push((kind, result, took));
        }
        sampling.store(false, Ordering::SeqCst);
        let _ = sampler.await;
        (flow_time, results)
    });

    let peak_kib = peak.load(Ordering::SeqCst);
    let after_kib = rss_kib(pid).unwrap_or(0);
    let cpu_s = cpu_ticks(pid).unwrap_or(0).saturating_sub(cpu_before) as f64 / 100.0;
    eprintln!("relay CPU time during the storm: {cpu_s:.2} s");
    eprintln!(
        "legitimate flow: {flow_time:?}; relay VmRSS: {rss_before} KiB before, {peak_kib} KiB peak, {after_kib} KiB after"
    );
    assert!(
        relay.is_running(),
        "the relay died under the hostile clients"
    );
    let mut failures = Vec::new();
    let mut not_logged_in = 0;
    for kind in [
        Hostile::Garbage,
        Hostile::Slowloris,
        Hostile::Flood,
        Hostile::Oversized,
    ] {
        let mut took: Vec<Duration> = results
            .iter()
            .filter(|r| r.0 == kind)
            .map(|r| r.2)
            .collect();
        took.sort();
        eprintln!(
            "{kind:?}: cut off after {:?} (median), {:?} (max)",
            took[took.len() / 2],
            took[took.len() - 1]
        );
    }
    for (kind, result, _) in &results {
        match result {
            Ok(true) => {}
            Err(e) if e.starts_with(FLOODER_NOT_LOGGED_IN) && e.contains("no login within") => {
                not_logged_in += 1
            }
            Ok(false) => failures.push(format!("{kind:?}: not cut off within {CUT_OFF_WITHIN:?}")),
            Err(e) => failures.push(e.clone()),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} hostile clients were not cut off: {:?}",
        failures.len(),
        results.len(),
        &failures[..failures.len().min(10)]
    );
    eprintln!("{not_logged_in} of {PER_KIND} flooders were closed before they could log in");
    assert!(
        not_logged_in <= PER_KIND / 2,
        "{not_logged_in} of {PER_KIND} flooders could not log in: the flood was not tested"
    );
    assert!(
        flow_time < FLOW_WITHIN,
        "the legitimate flow took {flow_time:?} beside the hostile clients"
    );
    assert!(
        peak_kib < 200 * 1024,
        "the relay's VmRSS peaked at {peak_kib} KiB"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. The audit log on a full or read-only file system.

/// A mount over a sandbox directory, undone when dropped (before the sandbox is removed).
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount(args: &[&str], target: &Path) {
    let out = Command::new("mount")
        .args(args)
        .arg(target)
        .output()
        .expect("cannot run mount");
    assert!(
        out.status.success(),
        "mount {args:?} {} failed: {}",
        target.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private tmpfs of `size` (as `mount -o size=` takes it) over `dir`, until dropped.
fn mount_tmpfs(dir: &Path, size: &str) -> Mounted {
    let options = format!("size={size},mode=0700,uid=0,gid=0");
    mount(&["-t", "tmpfs", "-o", &options, "tmpfs"], dir);
    Mounted(dir.to_path_buf())
}

struct AuditFx {
    sb: Sandbox,
    alice: KeyPair,
    agent_key: KeyPair,
}

fn audit_fx() -> AuditFx {
    let sb = Sandbox::new();
    let alice = KeyPair::generate(&sb.keys_dir(), "alice");
    let agent_key = KeyPair::generate(&sb.keys_dir(), "agent");
    sb.write_config(
        &ElevatorConfig::new()
            .approver("alice", &alice.public_line)
            .requester(&TestUser::agent().name, &["root"]),
    );
    AuditFx {
        sb,
        alice,
        agent_key,
    }
}

impl AuditFx {
    /// Elevate a fresh once-grant for `touch MARKER`.
    fn touch(&self, marker: &Path) -> Outcome {
        let argv = ["touch", marker.to_str().unwrap()];
        let (program, token) = self.approved("/usr/bin/touch", &argv);
        self.sb.elevate(&token, program, &argv[1..]).run()
    }

    /// A fresh once-grant for `program` (by its real path) with `argv`, in the work dir: the
    /// program's real path and the token.
    fn approved(&self, program: &str, argv: &[&str]) -> (String, String) {
        let request = RequestBuilder::new(real_path(program), argv)
            .requester(&TestUser::agent())
            .cwd(self.sb.work_dir())
            .sign(&self.agent_key.private);
        let decision = DecisionBuilder::approve(&request).sign(&self.alice.private);
        let token = TokenBuilder::new(&request, &decision).encode();
        (request.payload.program, token)
    }
}

#[test]
fn a_full_audit_file_system_refuses_rather_than_running_unaudited() {
    let fx = audit_fx();
    let log = fx.sb.log_dir();
    let _mounted = mount_tmpfs(&log, "8k");

    // Fill it to the last byte. (tmpfs counts whole pages, so a log file with room left in its
    // last page could still take a line: the log starts absent here.)
    let filler = log.join("filler");
    let mut file = fs::File::create(&filler).unwrap();
    let chunk = [0u8; 512];
    let mut written = 0;
    while std::io::Write::write_all(&mut file, &chunk).is_ok() {
        written += chunk.len();
        assert!(written < 1 << 20, "the 8k tmpfs took {written} bytes");
    }
    drop(file);
    let before = fx.sb.audit_text();

    let marker = fx.sb.marker("full");
    let out = fx.touch(&marker);
    let detail = out.assert_refused("setup");
    eprintln!("full disk: {detail}");
    assert!(detail.contains("unaudited"), "{out}");
    assert!(!marker.exists(), "the command ran unaudited");
    let after = fx.sb.audit_text();
    assert!(
        after.starts_with(&before) && after.lines().count() == 0,
        "the audit log changed on a full disk:\n{after}"
    );
}

#[test]
fn a_read_only_audit_directory_refuses_rather_than_running_unaudited() {
    let fx = audit_fx();
    let log = fx.sb.log_dir();
    let first = fx.sb.marker("before-ro");
    fx.touch(&first).assert_success();
    assert!(first.exists());
    assert_eq!(fx.sb.audit_attempts().len(), 1);

    let log_arg = log.to_str().unwrap();
    mount(&["--bind", log_arg], &log);
    let _mounted = Mounted(log.clone());
    mount(&["-o", "remount,bind,ro"], &log);

    let marker = fx.sb.marker("ro");
    let out = fx.touch(&marker);
    let detail = out.assert_refused("setup");
    eprintln!("read-only: {detail}");
    assert!(detail.contains("unaudited"), "{out}");
    assert!(!marker.exists(), "the command ran unaudited");
    assert_eq!(fx.sb.audit_attempts().len(), 1, "the audit log changed");
}

/// An append is all or nothing (SPEC §13.4): a line that does not fit on the file system is
/// taken back, so the log still verifies, and nothing runs. v1 left the part that fitted.
#[test]
fn an_audit_line_that_does_not_fit_is_taken_back_and_nothing_runs() {
    let fx = audit_fx();
    let log = fx.sb.log_dir();
    let _mounted = mount_tmpfs(&log, "64k");
    let first = fx.sb.marker("fits");
    fx.touch(&first).assert_success();
    // Fill every free page; the log's last page keeps the room after its one short line.
    let filler = log.join("filler");
    let mut file = fs::File::create(&filler).unwrap();
    while std::io::Write::write_all(&mut file, &[0u8; 512]).is_ok() {}
    drop(file);
    let before = fx.sb.audit_text();
    assert_eq!(
        before.lines().count(),
        2,
        "an exec line and its exit receipt"
    );

    // A refusal whose line (with a 16 KiB argument) is longer than the room left.
    let (program, token) = fx.approved("/usr/bin/touch", &["touch", "x"]);
    let long = "y".repeat(16 * 1024);
    let out = fx.sb.elevate(&token, &program, [long.as_str()]).run();
    let detail = out.assert_refused("command");
    assert!(detail.contains("cannot write the audit log"), "{out}");
    assert_eq!(fx.sb.audit_text(), before, "a part of the line was left");

    // The same for an exec line: it does not fit, nothing runs.
    let marker = fx.sb.marker("does-not-fit");
    let argv = [
        "sh",
        "-c",
        &format!(": {long}; touch \"$0\""),
        marker.to_str().unwrap(),
    ];
    let request = RequestBuilder::new(real_path("/bin/sh"), &argv)
        .requester(&TestUser::agent())
        .cwd(fx.sb.work_dir())
        .sign(&fx.agent_key.private);
    let decision = DecisionBuilder::approve(&request).sign(&fx.alice.private);
    let token = TokenBuilder::new(&request, &decision).encode();
    let out = fx
        .sb
        .elevate(&token, &request.payload.program, &argv[1..])
        .run();
    let detail = out.assert_refused("setup");
    assert!(detail.contains("unaudited"), "{out}");
    assert!(!marker.exists(), "the command ran unaudited");
    assert_eq!(fx.sb.audit_text(), before, "a part of the line was left");
    fx.sb.audit_verify().assert_success();
}

// ---------------------------------------------------------------------------------------------
// 2. The relay SIGKILLed at ten points of a real `assent run`.

fn approve(grant: Grant) -> Policy {
    Some(Choice::approve().grant(grant))
}

/// Whether the relay at `url` serves `status` to an agent.
fn relay_serves(url: &str, key: &PrivateKey, status: &Envelope) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let Ok(mut client) = Client::connect(url, key, Role::Agent).await else {
            return false;
        };
        let mut found = false;
        if client.request_statuses().await.is_ok() {
            while let Ok(Ok(event)) =
                tokio::time::timeout(Duration::from_secs(2), client.next_event()).await
            {
                if let Event::Statuses { statuses } = event {
                    found = statuses.contains(status);
                    break;
                }
            }
        }
        client.close().await;
        found
    })
}

/// Sandbox + relay + approver + an agent with a key (the shared set-up), with this file's
/// helpers on top.
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
        Flow(AgentFlow::new(policy))
    }

    /// `assent run --timeout 20s [OPTIONS] -- sh -c 'echo ran >> MARKER'`.
    fn run(&self, options: &[&str], marker: &Path) -> Run<'_> {
        self.shim()
            .args(["run", "--timeout", "20s"])
            .args(options)
            .args(["--", "sh", "-c"])
            .arg(format!("echo ran >> '{}'", marker.display()))
            .timeout(Duration::from_secs(60))
    }

    /// Publish a fresh status (and on every reconnect); returns once the relay serves it.
    fn publish_status(&self) {
        let status = Envelope::seal(
            &self.alice.private,
            &Status {
                v: Default::default(),
                kind: Default::default(),
                approver: "alice".into(),
                console: assent_tests::grants::TEST_CONSOLE,
                issued_at: now(),
                revoked: Default::default(),
            },
        );
        self.approver.set_status(status.clone());
        wait_for("the relay to serve the status", || {
            relay_serves(&self.relay.url(), &self.alice.private, &status)
        });
    }

    fn execs(&self) -> usize {
        self.sb
            .audit_lines()
            .iter()
            .filter(|l| l.event() == "exec")
            .count()
    }
}

/// When, in the flow, the relay is killed.
#[derive(Debug, Clone, Copy)]
enum When {
    /// Before the shim starts: the shim finds no relay at first.
    BeforeStart,
    /// This long after the shim started (connecting, logging in, submitting).
    AfterSpawn(u64),
    /// As soon as the approver has seen the request (while it holds back its decision).
    ApproverSaw,
    /// As soon as the approver has sent its decision (before or while it is delivered).
    ApproverDecided,
    /// As soon as the command has run (the decision was delivered).
    Ran,
}

struct Point {
    name: &'static str,
    when: When,
    /// The approver's policy until the relay is back.
    before: Policy,
    /// How long the relay stays down.
    down: Duration,
    /// Kill it once more, this long after the restart.
    again: Option<Duration>,
}

/// What happened at one point: the exit code, exec lines in the audit log, marker lines.
type Tally = (Option<i32>, usize, usize);

fn kill_point(point: &Point) -> Tally {
    let mut flow = Flow::new(point.before.clone());
    let marker = flow.sb.marker(point.name);
    if matches!(point.when, When::BeforeStart) {
        flow.relay.kill();
    }
    let running = flow.run(&[], &marker).spawn();
    let spawned = Instant::now();
    match point.when {
        When::BeforeStart => {}
        When::AfterSpawn(ms) => {
            std::thread::sleep(Duration::from_millis(ms).saturating_sub(spawned.elapsed()))
        }
        When::ApproverSaw => wait_for("the approver to see the request", || {
            !flow.approver.requests().is_empty()
        }),
        When::ApproverDecided => wait_for("the approver to decide", || {
            !flow.approver.decisions().is_empty()
        }),
        When::Ran => wait_for("the command to run", || lines_in(&marker) >= 1),
    }
    if !matches!(point.when, When::BeforeStart) {
        flow.relay.kill();
    }
    std::thread::sleep(point.down);
    flow.relay.start_again();
    if let Some(after) = point.again {
        std::thread::sleep(after);
        flow.relay.restart();
    }
    flow.approver.set_policy(approve(Grant::Once));
    let out = running.wait();
    let result = (out.code(), flow.execs(), lines_in(&marker));
    eprintln!(
        "kill point {:?} ({:?}): exit {:?}, {} exec(s)",
        point.name,
        point.when,
        out.code(),
        result.1
    );
    // The relay is back long before the shim's timeout: the shim re-sends its request and the
    // approver its decision, so the flow must complete. A time-out (75) is a lost flow.
    assert_eq!(
        out.code(),
        Some(0),
        "kill point {}: the relay came back within the timeout, yet the flow did not complete: {out}",
        point.name
    );
    result
}

/// A timed grant is used once, then reused while the relay is killed during the shim's
/// status fetch.
fn kill_during_status_fetch() -> Tally {
    let mut flow = Flow::new(approve(Grant::Timed));
    flow.publish_status();
    let marker = flow.sb.marker("status-fetch");
    flow.run(&["--grant", "timed:1h"], &marker)
        .run()
        .assert_success();
    assert_eq!(lines_in(&marker), 1);
    let running = flow.run(&["--grant", "timed:1h"], &marker).spawn();
    std::thread::sleep(Duration::from_millis(30));
    flow.relay.restart();
    let out = running.wait();
    eprintln!("kill point \"status fetch\": exit {:?}", out.code());
    assert_eq!(
        out.code(),
        Some(0),
        "kill during the status fetch: the relay came back, yet the cached grant did not run: {out}"
    );
    (out.code(), flow.execs(), lines_in(&marker))
}

#[test]
fn killing_the_relay_at_ten_points_completes_every_flow_and_runs_it_once() {
    let _turn = heavy();
    let ms = Duration::from_millis;
    let points = [
        Point {
            name: "before-start",
            when: When::BeforeStart,
            before: approve(Grant::Once),
            down: ms(1500),
            again: None,
        },
        Point {
            name: "connecting",
            when: When::AfterSpawn(40),
            before: approve(Grant::Once),
            down: ms(0),
            again: None,
        },
        Point {
            name: "logged-in",
            when: When::AfterSpawn(150),
            before: approve(Grant::Once),
            down: ms(200),
            again: None,
        },
        Point {
            name: "submitted",
            when: When::AfterSpawn(400),
            before: None,
            down: ms(0),
            again: None,
        },
        Point {
            name: "console-saw",
            when: When::ApproverSaw,
            before: None,
            down: ms(300),
            again: None,
        },
        Point {
            name: "decided",
            when: When::ApproverDecided,
            before: approve(Grant::Once),
            down: ms(0),
            again: None,
        },
        Point {
            name: "delivered",
            when: When::Ran,
            before: approve(Grant::Once),
            down: ms(0),
            again: None,
        },
        Point {
            name: "backing-off",
            when: When::ApproverSaw,
            before: None,
            down: ms(4000),
            again: None,
        },
        Point {
            name: "twice",
            when: When::ApproverSaw,
            before: None,
            down: ms(100),
            again: Some(ms(300)),
        },
    ];
    let started = Instant::now();
    let results: Vec<(String, std::thread::Result<Tally>)> = std::thread::scope(|s| {
        let mut handles: Vec<_> = points
            .iter()
            .map(|p| (p.name.to_owned(), s.spawn(move || kill_point(p))))
            .collect();
        handles.push(("status-fetch".into(), s.spawn(kill_during_status_fetch)));
        handles
            .into_iter()
            .map(|(name, h)| (name, h.join()))
            .collect()
    });
    eprintln!("ten kill points in {:?}", started.elapsed());
    let mut failures = Vec::new();
    for (name, result) in results {
        match result {
            Err(panic) => failures.push(format!(
                "{name}: {}",
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default()
            )),
            Ok((code, execs, marks)) => {
                // Every flow completed (kill_point asserts exit 0); the reusable grant had
                // run once before the kill.
                let (want_execs, want_marks) = match name.as_str() {
                    "status-fetch" => (2, 2),
                    _ => (1, 1),
                };
                if (execs, marks) != (want_execs, want_marks) {
                    failures.push(format!(
                        "{name}: exit {code:?} with {execs} exec audit line(s) and {marks} marker line(s)"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

// ---------------------------------------------------------------------------------------------
// 3. Many once-grants raced at once, each from several processes in separate mount
// namespaces sharing one ledger: one grant's use never blocks or consumes another's.

#[test]
fn fifty_once_grants_each_raced_by_four_processes_exec_fifty_times() {
    const GRANTS: usize = 50;
    const RACERS: usize = 4;
    let fx = audit_fx();
    let _turn = heavy();
    let shell = real_path("/bin/sh");
    let grants: Vec<(PathBuf, String, Vec<String>)> = (0..GRANTS)
        .map(|i| {
            let marker = fx.sb.marker(&format!("race-{i}"));
            let argv = [
                "sh",
                "-c",
                "echo ran >> \"$1\"",
                "sh",
                marker.to_str().unwrap(),
            ];
            let request = RequestBuilder::new(&shell, &argv)
                .requester(&TestUser::agent())
                .cwd(fx.sb.work_dir())
                .sign(&fx.agent_key.private);
            let decision = DecisionBuilder::approve(&request).sign(&fx.alice.private);
            let token = TokenBuilder::new(&request, &decision).encode();
            let args = argv[1..].iter().map(|a| (*a).to_owned()).collect();
            (marker, token, args)
        })
        .collect();
    let started = Instant::now();
    let barrier = std::sync::Barrier::new(GRANTS * RACERS);
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = grants
            .iter()
            .flat_map(|g| std::iter::repeat_n(g, RACERS))
            .map(|(_, token, args)| {
                let (shell, barrier, sb) = (&shell, &barrier, &fx.sb);
                s.spawn(move || {
                    let run = sb.elevate(token, shell, args);
                    barrier.wait();
                    run.run()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!(
        "{} racing processes in {:?}",
        GRANTS * RACERS,
        started.elapsed()
    );
    for (i, (marker, _, _)) in grants.iter().enumerate() {
        assert_eq!(
            lines_in(marker),
            1,
            "grant {i} ran {} times",
            lines_in(marker)
        );
    }
    assert_eq!(outcomes.iter().filter(|o| o.success()).count(), GRANTS);
    for out in outcomes.iter().filter(|o| !o.success()) {
        out.assert_refused("single-use");
    }
    let lines = fx.sb.audit_attempts();
    assert_eq!(lines.len(), GRANTS * RACERS, "one audit line per attempt");
    assert_eq!(lines.iter().filter(|l| l.event() == "exec").count(), GRANTS);
    fx.sb.audit_verify().assert_success();
}
