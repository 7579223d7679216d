//! The relay, tested as a real `assent-relay` process with real WebSocket clients: the
//! library client, the scripted approver, and a minimal hand-written WebSocket client for
//! sending what a well-behaved client never would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assent_protocol::payload::{KindLogin, V1};
use assent_protocol::{
    ConsoleId, Decision, Envelope, Login, PrivateKey, Request, RequestId, Role, Sha256Digest,
    Signed, Status, Verdict, Withdraw, sha256,
};
use assent_relay_client::message::{ClientMessage, ServerMessage};
use assent_relay_client::{Client, ClientError, ConnectOptions, Event, Fault};
use assent_tests::approver::{Choice, ScriptedApprover};
use assent_tests::grants::{DecisionBuilder, RequestBuilder, SignedRequest, StatusBuilder};
use assent_tests::pki::{Leaf, PrivateCa};
use assent_tests::scratch::ScratchDir;
use assent_tests::{built_binary, now};

const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// The relay process.

struct Relay {
    child: Child,
    addr: SocketAddr,
    scheme: &'static str,
    dir: ScratchDir,
    extra: Vec<String>,
}

impl Relay {
    fn start(config: &str) -> Relay {
        Self::start_with(ScratchDir::new("relay"), config, "127.0.0.1:0", &[])
    }

    /// Start `assent-relay` with `config` on `listen`, and wait for its "listening" line.
    fn start_with(dir: ScratchDir, config: &str, listen: &str, extra: &[&str]) -> Relay {
        std::fs::write(dir.join("relay.toml"), config).unwrap();
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let (child, scheme, addr) = spawn_relay(dir.path(), listen, &extra);
        Relay {
            child,
            addr,
            scheme,
            dir,
            extra,
        }
    }

    fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// SIGKILL, and wait for it to be gone.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL this relay and start a new process on the same address with the same config.
    fn restart(&mut self) {
        self.kill();
        let (child, scheme, addr) =
            spawn_relay(self.dir.path(), &self.addr.to_string(), &self.extra);
        assert_eq!(addr, self.addr);
        self.child = child;
        self.scheme = scheme;
    }
}

fn spawn_relay(dir: &Path, listen: &str, extra: &[String]) -> (Child, &'static str, SocketAddr) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("relay.log"))
        .unwrap();
    let mut child = Command::new(built_binary("assent-relay"))
        .arg("--listen")
        .arg(listen)
        .arg("--config")
        .arg(dir.join("relay.toml"))
        .args(extra)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("cannot start assent-relay");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(WAIT).unwrap_or_else(|_| {
        panic!(
            "assent-relay did not say it was listening; log in {}",
            dir.display()
        )
    });
    let url = line
        .trim()
        .strip_prefix("assent-relay listening on ")
        .unwrap_or_else(|| {
            panic!(
                "unexpected first line from assent-relay: {line:?}; log in {}",
                dir.display()
            )
        });
    let (scheme, addr) = url.split_once("://").unwrap();
    let scheme = if scheme == "wss" { "wss" } else { "ws" };
    (child, scheme, addr.parse().unwrap())
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}

fn key_line(key: &PrivateKey) -> String {
    key.public().to_openssh("test")
}

/// A config listing `approvers`, with extra TOML appended (e.g. a `[limits]` table).
fn config(approvers: &[(&str, &PrivateKey)], extra: &str) -> String {
    let mut text = String::new();
    for (name, key) in approvers {
        text.push_str(&format!(
            "[[approver]]\nname = \"{name}\"\nkey = \"{}\"\n\n",
            key_line(key)
        ));
    }
    text.push_str(extra);
    text
}

// ---------------------------------------------------------------------------------------
// Client helpers.

async fn connect(url: &str, key: &PrivateKey, role: Role) -> Client {
    Client::connect(url, key, role)
        .await
        .unwrap_or_else(|e| panic!("{role:?} could not connect to {url}: {e}"))
}

async fn event(client: &mut Client) -> Event {
    tokio::time::timeout(WAIT, client.next_event())
        .await
        .expect("no event from the relay in time")
        .unwrap_or_else(|e| panic!("connection failed while waiting for an event: {e}"))
}

/// Nothing is queued for this client: a statuses request is answered next.
async fn assert_nothing_pending(client: &mut Client) {
    client.request_statuses().await.unwrap();
    match event(client).await {
        Event::Statuses { .. } => {}
        other => panic!("expected nothing before the statuses answer, got {other:?}"),
    }
}

/// The connection ends (with the relay's reason) within the wait time.
async fn closed(client: &mut Client) -> String {
    loop {
        match tokio::time::timeout(WAIT, client.next_event()).await {
            Err(_) => panic!("the relay did not close the connection"),
            Ok(Ok(_)) => continue,
            Ok(Err(ClientError::Closed(why))) => return why,
            Ok(Err(e)) => panic!("unexpected error {e}"),
        }
    }
}

fn request(agent: &PrivateKey, expires_in: u64) -> SignedRequest {
    RequestBuilder::new("/bin/true", &["true"])
        .expires_at(now() + expires_in)
        .sign(agent)
}

fn approve(request: &SignedRequest, name: &str, key: &PrivateKey) -> Envelope {
    DecisionBuilder::approve(request)
        .approver(name)
        .sign(key)
        .envelope
}

async fn expect_queued(agent: &mut Client, req: &SignedRequest) {
    match event(agent).await {
        Event::Queued { request_id } => assert_eq!(request_id, req.payload.id),
        other => panic!("expected queued, got {other:?}"),
    }
}

async fn expect_request(approver: &mut Client, req: &SignedRequest) -> bool {
    match event(approver).await {
        Event::Request {
            envelope,
            first_seen,
        } => {
            assert_eq!(
                envelope, req.envelope,
                "the relay must pass the request on unchanged"
            );
            first_seen
        }
        other => panic!("expected the request, got {other:?}"),
    }
}

/// `decided`, carrying `decision`, for `req`.
async fn expect_decided(approver: &mut Client, req: &SignedRequest, decision: &Envelope) {
    match event(approver).await {
        Event::Decided {
            request_id,
            envelope,
            ..
        } => {
            assert_eq!(request_id, req.payload.id);
            assert_eq!(&envelope, decision, "decided carries the winning decision");
        }
        other => panic!("expected decided, got {other:?}"),
    }
}

/// `delivered` for `req` and `decision`.
async fn expect_delivered(approver: &mut Client, req: &SignedRequest, decision: &Envelope) {
    let digest = sha256(&decision.payload_bytes_unverified().unwrap());
    match event(approver).await {
        Event::Delivered {
            request_id,
            decision_sha256,
        } => {
            assert_eq!(request_id, req.payload.id);
            assert_eq!(decision_sha256, digest);
        }
        other => panic!("expected delivered, got {other:?}"),
    }
}

/// An agent connection that has submitted `req` and had it queued.
async fn submitted(url: &str, agent_key: &PrivateKey, req: &SignedRequest) -> Client {
    let mut agent = connect(url, agent_key, Role::Agent).await;
    agent.submit(&req.envelope).await.unwrap();
    expect_queued(&mut agent, req).await;
    agent
}

/// The next request shown to a scripted approver, and whether it was flagged first-seen.
async fn shown(approver: &mut ScriptedApprover) -> (Signed<Request>, bool) {
    tokio::time::timeout(WAIT, approver.next_request())
        .await
        .expect("no request shown in time")
        .expect("the approver's connection failed")
}

async fn expect_decision(agent: &mut Client, decision: &Envelope) {
    match event(agent).await {
        Event::Decision { envelope } => assert_eq!(&envelope, decision),
        other => panic!("expected the decision, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Flows.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_console_sees_the_pending_request_and_the_shim_gets_the_decision() {
    let alice = PrivateKey::generate("alice");
    let relay = Relay::start(&config(&[("alice", &alice)], ""));
    let url = relay.url();

    let agent_key = PrivateKey::generate("agent");
    let mut agent = connect(&url, &agent_key, Role::Agent).await;
    let req = request(&agent_key, 60);
    agent.submit(&req.envelope).await.unwrap();
    expect_queued(&mut agent, &req).await;

    // The console connects only now, and still sees it, flagged as a first-seen key.
    let mut console = connect(&url, &alice, Role::Approver).await;
    assert_eq!(console.name(), Some("alice"));
    assert!(expect_request(&mut console, &req).await, "first_seen");
    let decision = approve(&req, "alice", &alice);
    console.decide(&decision).await.unwrap();

    expect_decision(&mut agent, &decision).await;
    match event(&mut console).await {
        Event::Decided {
            request_id,
            approver,
            verdict,
            envelope,
        } => {
            assert_eq!(request_id, req.payload.id);
            assert_eq!(approver, "alice");
            assert_eq!(verdict, Verdict::Approve);
            assert_eq!(envelope, decision);
        }
        other => panic!("expected decided, got {other:?}"),
    }
    expect_delivered(&mut console, &req, &decision).await;

    // The same agent key is no longer first-seen once a human decided for it.
    let second = request(&agent_key, 60);
    agent.submit(&second.envelope).await.unwrap();
    expect_queued(&mut agent, &second).await;
    assert!(!expect_request(&mut console, &second).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_waits_for_the_reconnecting_shim_and_duplicates_are_idempotent() {
    let alice = PrivateKey::generate("alice");
    let relay = Relay::start(&config(&[("alice", &alice)], ""));
    let url = relay.url();
    let agent_key = PrivateKey::generate("agent");
    let mut console = connect(&url, &alice, Role::Approver).await;

    let req = request(&agent_key, 60);
    let mut agent = connect(&url, &agent_key, Role::Agent).await;
    agent.submit(&req.envelope).await.unwrap();
    expect_queued(&mut agent, &req).await;
    agent.close().await;
    expect_request(&mut console, &req).await;

    // Decided while the shim is away: decided, not delivered.
    let decision = approve(&req, "alice", &alice);
    console.decide(&decision).await.unwrap();
    expect_decided(&mut console, &req, &decision).await;
    assert_nothing_pending(&mut console).await;
    // Sent again (as a console does after a reconnect): still nothing delivered to say.
    console.decide(&decision).await.unwrap();
    assert_nothing_pending(&mut console).await;

    // The shim reconnects and re-submits the same signed request: it gets the decision, and
    // the console hears that it was delivered.
    let mut agent = connect(&url, &agent_key, Role::Agent).await;
    agent.submit(&req.envelope).await.unwrap();
    expect_queued(&mut agent, &req).await;
    expect_decision(&mut agent, &decision).await;
    expect_delivered(&mut console, &req, &decision).await;

    // And again on the same connection: the same answer, and the console hears nothing new.
    agent.submit(&req.envelope).await.unwrap();
    expect_queued(&mut agent, &req).await;
    expect_decision(&mut agent, &decision).await;
    assert_nothing_pending(&mut console).await;

    // Deciding it again with the identical decision is accepted, and answered with what the
    // console may have missed: it was delivered.
    console.decide(&decision).await.unwrap();
    expect_delivered(&mut console, &req, &decision).await;
    assert_nothing_pending(&mut console).await;
}

/// A withdraw of `req`, signed by `key`.
fn withdraw(req: &SignedRequest, key: &PrivateKey) -> Envelope {
    let w = Withdraw {
        v: V1,
        kind: Default::default(),
        request_id: req.payload.id,
        request_sha256: req.sha256,
        withdrawn_at: now(),
    };
    Envelope::seal(key, &w)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_withdraws_its_undecided_request_and_the_console_is_told() {
    let alice = PrivateKey::generate("alice");
    let relay = Relay::start(&config(&[("alice", &alice)], ""));
    let url = relay.url();
    let mut console = connect(&url, &alice, Role::Approver).await;
    let agent_key = PrivateKey::generate("agent");
    let mut agent = connect(&url, &agent_key, Role::Agent).await;
    let req = request(&agent_key, 60);
    agent.submit(&req.envelope).await.unwrap();
    expect_queued(&mut agent, &req).await;
    expect_request(&mut console, &req).await;

    // Another agent cannot withdraw it, even with a withdraw of its own key.
    let mallory_key = PrivateKey::generate("mallory");
    let mut mallory = connect(&url, &mallory_key, Role::Agent).await;
    mallory
        .withdraw(&withdraw(&req, &mallory_key))
        .await
        .unwrap();
    match event(&mut mallory).await {
        Event::Refused { request_id, reason } => {
            assert_eq!(request_id, Some(req.payload.id));
            assert!(reason.contains("was not submitted by this key"), "{reason}");
        }
        other => panic!("expected refused, got {other:?}"),
    }
    assert_nothing_pending(&mut console).await;

    // Its agent withdraws it: the agent and the console hear so, and it is gone.
    agent.withdraw(&withdraw(&req, &agent_key)).await.unwrap();
    for client in [&mut agent, &mut console] {
        match event(client).await {
            Event::Withdrawn { request_id } => assert_eq!(request_id, req.payload.id),
            other => panic!("expected withdrawn, got {other:?}"),
        }
    }
    console
        .decide(&approve(&req, "alice", &alice))
        .await
        .unwrap();
    match event(&mut console).await {
        Event::Refused { reason, .. } => assert!(reason.contains("no request"), "{reason}"),
        other => panic!("expected refused, got {other:?}"),
    }
    agent.submit(&req.envelope).await.unwrap();
    match event(&mut agent).await {
        Event::Withdrawn { request_id } => assert_eq!(request_id, req.payload.id),
        other => panic!("expected withdrawn, got {other:?}"),
    }
    let mut late = connect(&url, &alice, Role::Approver).await;
    assert_nothing_pending(&mut late).await;

    // A decided request stays decided.
    let decided = request(&agent_key, 60);
    agent.submit(&decided.envelope).await.unwrap();
    expect_queued(&mut agent, &decided).await;
    expect_request(&mut console, &decided).await;
    let d = approve(&decided, "alice", &alice);
    console.decide(&d).await.unwrap();
    expect_decision(&mut agent, &d).await;
    agent
        .withdraw(&withdraw(&decided, &agent_key))
        .await
        .unwrap();
    match event(&mut agent).await {
        Event::Refused { reason, .. } => {
            assert!(reason.contains("already decided by alice"), "{reason}");
        }
        other => panic!("expected refused, got {other:?}"),
    }

    // A withdraw signed by another key than the connection's ends the connection.
    agent.withdraw(&withdraw(&req, &mallory_key)).await.unwrap();
    let why = closed(&mut agent).await;
    assert!(why.contains("withdraw is signed by"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_decision_is_gone_once_the_request_expires() {
    let alice = PrivateKey::generate("alice");
    let relay = Relay::start(&config(&[("alice", &alice)], ""));
    let url = relay.url();
    let agent_key = PrivateKey::generate("agent");
    let mut console = connect(&url, &alice, Role::Approver).await;
    let req = request(&agent_key, 2);
    let mut agent = connect(&url, &agent_key, Role::Agent).await;
    agent.submit(&req.envelope).await.unwrap();
    expect_queued(&mut agent, &req).await;
    agent.close().await;
    expect_request(&mut console, &req).await;
    console
        .decide(&approve(&req, "alice", &alice))
        .await
        .unwrap();
    assert!(matches!(event(&mut console).await, Event::Decided { .. }));

    // The shim comes back only after the request's deadline: the decision is gone.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut agent = connect(&url, &agent_key, Role::Agent).await;
    agent.submit(&req.envelope).await.unwrap();
    match event(&mut agent).await {
        Event::Expired { request_id } => assert_eq!(request_id, req.payload.id),
        other => panic!("expected expired, got {other:?}"),
    }
    // Consoles were not told about the expiry of a request they had already seen decided.
    assert_nothing_pending(&mut console).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_approvers_first_decision_wins_and_the_other_is_told() {
    let (alice, bob) = (PrivateKey::generate("alice"), PrivateKey::generate("bob"));
    let relay = Relay::start(&config(&[("alice", &alice), ("bob", &bob)], ""));
    let url = relay.url();
    let mut a = connect(&url, &alice, Role::Approver).await;
    let mut b = connect(&url, &bob, Role::Approver).await;
    let agent_key = PrivateKey::generate("agent");
    let mut agent = connect(&url, &agent_key, Role::Agent).await;

    let req = request(&agent_key, 60);
    agent.submit(&req.envelope).await.unwrap();
    expect_queued(&mut agent, &req).await;
    expect_request(&mut a, &req).await;
    expect_request(&mut b, &req).await;

    let alices = approve(&req, "alice", &alice);
    a.decide(&alices).await.unwrap();
    expect_decision(&mut agent, &alices).await;
    for console in [&mut a, &mut b] {
        match event(console).await {
            Event::Decided { approver, .. } => assert_eq!(approver, "alice"),
            other => panic!("expected decided by alice, got {other:?}"),
        }
        expect_delivered(console, &req, &alices).await;
    }

    // Bob was a moment late with a denial: refused, and the shim hears nothing more.
    let bobs = DecisionBuilder::deny(&req, Some("no"))
        .approver("bob")
        .sign(&bob)
        .envelope;
    b.decide(&bobs).await.unwrap();
    match event(&mut b).await {
        Event::Refused { request_id, reason } => {
            assert_eq!(request_id, Some(req.payload.id));
            assert!(reason.contains("already decided by alice"), "{reason}");
        }
        other => panic!("expected refused, got {other:?}"),
    }
    assert_nothing_pending(&mut agent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_tells_the_shim_and_the_console() {
    let alice = PrivateKey::generate("alice");
    let relay = Relay::start(&config(&[("alice", &alice)], ""));
    let url = relay.url();
    let mut console = connect(&url, &alice, Role::Approver).await;
    let agent_key = PrivateKey::generate("agent");
    let mut agent = connect(&url, &agent_key, Role::Agent).await;

    let req = request(&agent_key, 2);
    let started = Instant::now();
    agent.submit(&req.envelope).await.unwrap();
    expect_queued(&mut agent, &req).await;
    expect_request(&mut console, &req).await;
    for client in [&mut agent, &mut console] {
        match event(client).await {
            Event::Expired { request_id } => assert_eq!(request_id, req.payload.id),
            other => panic!("expected expired, got {other:?}"),
        }
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // Too late to decide, and a re-submission is told it expired.
    console
        .decide(&approve(&req, "alice", &alice))
        .await
        .unwrap();
    assert!(matches!(event(&mut console).await, Event::Refused { .. }));
    agent.submit(&req.envelope).await.unwrap();
    assert!(matches!(event(&mut agent).await, Event::Expired { .. }));
    // A console connecting now sees nothing pending.
    let mut late = connect(&url, &alice, Role::Approver).await;
    assert_nothing_pending(&mut late).await;
}

/// The refusal answering a submission of `req`.
async fn expect_refused(agent: &mut Client, req: &SignedRequest) -> String {
    refusal(agent, Some(req.payload.id)).await
}

/// The next event, a refusal naming `request_id`: its reason.
async fn refusal(client: &mut Client, request_id: Option<RequestId>) -> String {
    match event(client).await {
        Event::Refused {
            request_id: named,
            reason,
        } => {
            assert_eq!(named, request_id, "refused: {reason}");
            reason
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_request_id_is_never_taken_by_another_request() {
    let alice = PrivateKey::generate("alice");
    // A small id table, so that "many other ids" fill it.
    let relay = Relay::start(&config(
        &[("alice", &alice)],
        "[limits]\nmax_remembered_ids = 30\nmax_pending_per_agent = 1000\n\
         requests_per_agent_per_minute = 100000\nmessages_per_connection_per_second = 100000\n",
    ));
    let url = relay.url();
    let mut console = connect(&url, &alice, Role::Approver).await;
    let agent_key = PrivateKey::generate("agent");
    let mut agent = connect(&url, &agent_key, Role::Agent).await;

    // The approver reviews a harmless request; it expires undecided.
    let harmless = RequestBuilder::new("/bin/true", &["apt-get", "update"])
        .expires_at(now() + 1)
        .sign(&agent_key);
    agent.submit(&harmless.envelope).await.unwrap();
    expect_queued(&mut agent, &harmless).await;
    expect_request(&mut console, &harmless).await;
    match event(&mut agent).await {
        Event::Expired { request_id } => assert_eq!(request_id, harmless.payload.id),
        other => panic!("expected expired, got {other:?}"),
    }

    // Something else under the same id, from the same key or another one.
    let other_key = PrivateKey::generate("other agent");
    let mut other = connect(&url, &other_key, Role::Agent).await;
    let evil = |key: &PrivateKey| {
        RequestBuilder::new("/bin/sh", &["sh", "-c", "id"])
            .id(harmless.payload.id)
            .expires_at(now() + 600)
            .sign(key)
    };
    let refusal = format!("already used by request {}", harmless.sha256.reference());
    for (client, key) in [(&mut agent, &agent_key), (&mut other, &other_key)] {
        let evil = evil(key);
        client.submit(&evil.envelope).await.unwrap();
        let reason = expect_refused(client, &evil).await;
        assert!(reason.contains(&refusal), "{reason}");
    }

    // Many other ids, more than the relay may remember: the later ones are refused, and the
    // first id is not forgotten to make room.
    let mut refused = 0;
    for _ in 0..40 {
        let filler = request(&agent_key, 1);
        agent.submit(&filler.envelope).await.unwrap();
        match event(&mut agent).await {
            Event::Queued { .. } | Event::Expired { .. } => {}
            Event::Refused { reason, .. } => {
                assert!(reason.contains("remembers as many request ids"), "{reason}");
                refused += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(refused > 0, "the table never filled up");
    let evil = evil(&agent_key);
    agent.submit(&evil.envelope).await.unwrap();
    // Events about the fillers may come first.
    let reason = loop {
        match event(&mut agent).await {
            Event::Refused { request_id, reason } if request_id == Some(evil.payload.id) => {
                break reason;
            }
            Event::Expired { request_id } | Event::Queued { request_id } => {
                assert_ne!(request_id, evil.payload.id, "the reused id was accepted")
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(reason.contains(&refusal), "{reason}");

    // The identical envelope is still idempotent: it has expired.
    let mut fresh = connect(&url, &agent_key, Role::Agent).await;
    fresh.submit(&harmless.envelope).await.unwrap();
    match event(&mut fresh).await {
        Event::Expired { request_id } => assert_eq!(request_id, harmless.payload.id),
        other => panic!("expected expired, got {other:?}"),
    }

    // No console was ever shown the other content under that id.
    console.request_statuses().await.unwrap();
    loop {
        match event(&mut console).await {
            Event::Statuses { .. } => break,
            Event::Request { envelope, .. } => {
                let shown = envelope.open::<assent_protocol::Request>().unwrap();
                assert_ne!(shown.payload.id, harmless.payload.id, "{shown:?}");
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_names_requests_by_reference_and_quotes_what_agents_chose() {
    let relay = Relay::start("");
    let agent_key = PrivateKey::generate("agent");
    let mut agent = connect(&relay.url(), &agent_key, Role::Agent).await;
    // A program path is any absolute path: here one that would forge a log line.
    let forged = "2099-01-01T00:00:00.000000Z  INFO assent_relay: approved by alice";
    let req = RequestBuilder::new("/bin/true", &["true"])
        .program_path_only(&format!("/bin/true\n{forged}\u{1b}[2J"))
        .sign(&agent_key);
    agent.submit(&req.envelope).await.unwrap();
    expect_queued(&mut agent, &req).await;
    // A message that does not parse, quoting a field name with a newline.
    let mut raw = Raw::login(relay.addr, &agent_key, Role::Agent);
    raw.send(
        OP_TEXT,
        format!(r#"{{"type":"get_statuses","x\n{forged}":1}}"#).as_bytes(),
    );
    raw.closed();

    let log_path = relay.dir.join("relay.log");
    let reference = format!("request={}", req.sha256.reference());
    let deadline = Instant::now() + WAIT;
    let log = loop {
        let log = std::fs::read_to_string(&log_path).unwrap();
        if log.contains(&reference) && log.contains("closing connection") {
            break log;
        }
        assert!(
            Instant::now() < deadline,
            "no request line in the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    for line in log.lines() {
        assert!(!line.starts_with("2099-"), "a forged line:\n{log}");
    }
    assert!(
        !log.contains('\u{1b}'),
        "an escape sequence reached the log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_are_stored_and_served() {
    let (alice, bob) = (PrivateKey::generate("alice"), PrivateKey::generate("bob"));
    let relay = Relay::start(&config(&[("alice", &alice), ("bob", &bob)], ""));
    let url = relay.url();
    let mut a = connect(&url, &alice, Role::Approver).await;
    let mut b = connect(&url, &bob, Role::Approver).await;
    let mut agent = connect(&url, &PrivateKey::generate("agent"), Role::Agent).await;

    agent.request_statuses().await.unwrap();
    assert_eq!(
        event(&mut agent).await,
        Event::Statuses { statuses: vec![] }
    );

    let revoked = sha256(b"some decision");
    let alices = StatusBuilder::new("alice")
        .revoke(revoked)
        .sign(&alice)
        .envelope;
    a.publish_status(&alices).await.unwrap();
    let older = StatusBuilder::new("alice")
        .issued_at(now() - 100)
        .sign(&alice)
        .envelope;
    a.publish_status(&older).await.unwrap();
    match event(&mut a).await {
        Event::Refused { reason, .. } => assert!(reason.contains("newer status"), "{reason}"),
        other => panic!("expected refused, got {other:?}"),
    }
    let bobs = StatusBuilder::new("bob").sign(&bob).envelope;
    b.publish_status(&bobs).await.unwrap();
    assert_nothing_pending(&mut b).await; // also makes sure bob's status was handled

    agent.request_statuses().await.unwrap();
    match event(&mut agent).await {
        Event::Statuses { statuses } => {
            assert_eq!(statuses, vec![alices.clone(), bobs]);
            let held = statuses[0].open::<Status>().unwrap();
            assert!(held.payload.revoked.contains(&revoked));
            assert_eq!(held.payload.revoked.len(), 1);
        }
        other => panic!("expected statuses, got {other:?}"),
    }

    // A status signed by a key that is not listed closes that connection.
    let mallory = PrivateKey::generate("mallory");
    let forged = StatusBuilder::new("alice").sign(&mallory).envelope;
    a.publish_status(&forged).await.unwrap();
    let why = closed(&mut a).await;
    assert!(why.contains("not a listed approver"), "{why}");
    let mut again = connect(&url, &PrivateKey::generate("agent2"), Role::Agent).await;
    again.request_statuses().await.unwrap();
    match event(&mut again).await {
        Event::Statuses { statuses } => assert_eq!(statuses[0], alices),
        other => panic!("expected statuses, got {other:?}"),
    }
}

/// The statuses the relay serves now.
async fn served(agent: &mut Client) -> Vec<Envelope> {
    agent.request_statuses().await.unwrap();
    loop {
        if let Event::Statuses { statuses } = event(agent).await {
            return statuses;
        }
    }
}

/// The refusal answering a status just published.
async fn expect_status_refused(console: &mut Client) -> String {
    refusal(console, None).await
}

/// A status of `console` signed by `alice`, issued at `issued_at`, revoking each digest until
/// its time (`None`: for ever).
fn console_status(
    alice: &PrivateKey,
    console: ConsoleId,
    issued_at: u64,
    revoked: &[(Sha256Digest, Option<u64>)],
) -> Envelope {
    revoked
        .iter()
        .fold(
            StatusBuilder::new("alice")
                .console(console)
                .issued_at(issued_at),
            |b, &(digest, until)| b.revoke_until(digest, until),
        )
        .sign(alice)
        .envelope
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_console_has_its_own_status_stream_whose_revocations_stay() {
    let alice = PrivateKey::generate("alice");
    let relay = Relay::start(&config(
        &[("alice", &alice)],
        "[limits]\nrevocation_grace_s = 30\n",
    ));
    let url = relay.url();
    let (laptop, desktop) = (ConsoleId([0x1a; 16]), ConsoleId([0x2b; 16]));
    let mut console = connect(&url, &alice, Role::Approver).await;
    let mut agent = connect(&url, &PrivateKey::generate("agent"), Role::Agent).await;
    let t = now();

    // The laptop revokes a timed grant; the desktop, which never saw it, publishes later.
    let timed = sha256(b"a timed grant");
    let until = t + 600;
    let revoking = console_status(&alice, laptop, t, &[(timed, Some(until))]);
    let unaware = console_status(&alice, desktop, t + 1, &[]);
    for status in [&revoking, &unaware] {
        console.publish_status(status).await.unwrap();
    }
    assert_nothing_pending(&mut console).await;
    let both = [revoking.clone(), unaware.clone()];
    assert_eq!(
        served(&mut agent).await,
        both,
        "both streams, by console id"
    );

    // A newer laptop status that forgets the revocation is refused, naming it, and so is an
    // older one; the connection stays, and the laptop's stream still carries it.
    let forgetful = console_status(&alice, laptop, t + 2, &[]);
    console.publish_status(&forgetful).await.unwrap();
    let why = expect_status_refused(&mut console).await;
    assert!(why.contains(&timed.reference()), "{why}");
    assert!(why.contains(&format!("until {until}")), "{why}");
    let older = console_status(&alice, laptop, t - 100, &[(timed, Some(until))]);
    console.publish_status(&older).await.unwrap();
    let why = expect_status_refused(&mut console).await;
    assert!(why.contains("newer status"), "{why}");
    assert_eq!(served(&mut agent).await, both);

    // One that keeps it (and adds one) replaces it.
    let always = sha256(b"an always grant");
    let keeping = console_status(
        &alice,
        laptop,
        t + 3,
        &[(timed, Some(until)), (always, None)],
    );
    console.publish_status(&keeping).await.unwrap();
    assert_nothing_pending(&mut console).await;
    assert_eq!(served(&mut agent).await, [keeping.clone(), unaware]);

    // A revocation whose until + revocation_grace_s has passed may go; one for ever may not.
    let ended = sha256(b"a grant that ended");
    let desktop_revoking = console_status(
        &alice,
        desktop,
        t + 4,
        &[(ended, Some(t - 31)), (always, None)],
    );
    let desktop_done = console_status(&alice, desktop, t + 5, &[(always, None)]);
    for status in [&desktop_revoking, &desktop_done] {
        console.publish_status(status).await.unwrap();
    }
    assert_nothing_pending(&mut console).await;
    assert_eq!(served(&mut agent).await, [keeping, desktop_done]);
    let desktop_forgets = console_status(&alice, desktop, t + 6, &[]);
    console.publish_status(&desktop_forgets).await.unwrap();
    let why = expect_status_refused(&mut console).await;
    let named = format!("{} (until null, for ever)", always.reference());
    assert!(why.contains(&named), "{why}");
}

/// Decided while its shim was away, then the relay restarted: the console keeps the decision
/// and sends it again when the request comes back, in either order of return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_decision_is_delivered_after_a_relay_restart_whoever_returns_first() {
    for console_first in [true, false] {
        let alice = PrivateKey::generate("alice");
        let mut relay = Relay::start(&config(&[("alice", &alice)], ""));
        let url = relay.url();
        let agent_key = PrivateKey::generate("agent");
        let req = request(&agent_key, 120);
        submitted(&url, &agent_key, &req).await.close().await;
        let mut approver = ScriptedApprover::connect(&url, alice, "alice")
            .await
            .unwrap();
        let (seen, first_seen) = shown(&mut approver).await;
        let decided = approver
            .decide(seen, first_seen, &Choice::approve())
            .await
            .unwrap();
        match event(approver.client()).await {
            Event::Decided { envelope, .. } => assert_eq!(envelope, decided.envelope),
            other => panic!("expected decided, got {other:?}"),
        }
        assert_nothing_pending(approver.client()).await;

        relay.restart();
        let resubmit = || submitted(&url, &agent_key, &req);
        let mut agent = if console_first {
            approver.reconnect(WAIT).await.unwrap();
            // Sent again before the shim is back: the relay holds no such request.
            approver
                .decide(decided.request.clone(), false, &Choice::approve())
                .await
                .unwrap();
            match event(approver.client()).await {
                Event::Refused { reason, .. } => assert!(reason.contains("no request"), "{reason}"),
                other => panic!("expected refused, got {other:?}"),
            }
            resubmit().await
        } else {
            let agent = resubmit().await;
            approver.reconnect(WAIT).await.unwrap();
            agent
        };
        // The request is announced (again); the console answers with the decision it kept.
        let (again, first_seen) = shown(&mut approver).await;
        assert_eq!(again.envelope, req.envelope);
        let resent = approver
            .decide(again, first_seen, &Choice::deny("never used"))
            .await
            .unwrap();
        assert!(resent.resent, "the same decision, not a new one");
        expect_decision(&mut agent, &decided.envelope).await;
        expect_decided(approver.client(), &req, &decided.envelope).await;
        expect_delivered(approver.client(), &req, &decided.envelope).await;

        // A shim that comes back once more gets it again; the console is told nothing new.
        agent.close().await;
        let mut agent = submitted(&url, &agent_key, &req).await;
        expect_decision(&mut agent, &decided.envelope).await;
        assert_nothing_pending(approver.client()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_relay_crash_the_resubmitted_request_completes() {
    let alice = PrivateKey::generate("alice");
    let relay = Relay::start(&config(&[("alice", &alice)], ""));
    let url = relay.url();
    let agent_key = PrivateKey::generate("agent");
    let req = request(&agent_key, 120);

    let mut agent = submitted(&url, &agent_key, &req).await;
    let mut approver = ScriptedApprover::connect(&url, alice, "alice")
        .await
        .unwrap();
    let (seen, _) = shown(&mut approver).await;
    assert_eq!(seen.payload.id, req.payload.id);

    // SIGKILL before anyone decides: everything in the relay is lost.
    let mut relay = relay;
    relay.restart();
    assert_eq!(relay.url(), url);
    match tokio::time::timeout(WAIT, agent.next_event())
        .await
        .unwrap()
    {
        Err(ClientError::Closed(_)) => {}
        other => panic!("the shim should see the connection drop, got {other:?}"),
    }

    // Both sides come back; the shim re-sends the very same envelope.
    approver.reconnect(WAIT).await.unwrap();
    let mut agent = submitted(&url, &agent_key, &req).await;
    let (again, first_seen) = shown(&mut approver).await;
    assert_eq!(again.envelope, req.envelope);
    assert!(first_seen, "a new relay has seen no agent yet");
    let decided = approver
        .decide(again, first_seen, &Choice::approve())
        .await
        .unwrap();
    expect_decision(&mut agent, &decided.envelope).await;
    let d = decided.envelope.open::<Decision>().unwrap();
    assert_eq!(d.payload.request_sha256, req.sha256);
    assert_eq!(d.payload.cmd_sha256, req.payload.cmd_sha256());
}

// ---------------------------------------------------------------------------------------
// Bad input, each from its own client, while a legitimate flow runs beside it.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clients_are_cut_off_while_a_legitimate_flow_completes() {
    let (alice, bob) = (PrivateKey::generate("alice"), PrivateKey::generate("bob"));
    let relay = Relay::start(&config(
        &[("alice", &alice), ("bob", &bob)],
        "[limits]\nlogin_timeout_s = 1\nrequests_per_agent_per_minute = 20\n",
    ));
    let url = relay.url();
    let addr = relay.addr;

    // The legitimate flow: one request pending while the attacks run, more afterwards.
    let agent_key = PrivateKey::generate("agent");
    let mut agent = connect(&url, &agent_key, Role::Agent).await;
    let mut console = connect(&url, &alice, Role::Approver).await;
    let pending = request(&agent_key, 120);
    agent.submit(&pending.envelope).await.unwrap();
    expect_queued(&mut agent, &pending).await;
    expect_request(&mut console, &pending).await;

    let other_request = request(&agent_key, 120);
    let pending_for_attacks = pending.clone();
    let bob_for_attacks = PrivateKey::from_openssh(&bob.to_openssh()).unwrap();
    let pending_for_unbound = pending.clone();
    let bob_for_unbound = PrivateKey::from_openssh(&bob.to_openssh()).unwrap();
    let attacks = tokio::task::spawn_blocking(move || {
        let threads: Vec<(&str, std::thread::JoinHandle<()>)> = vec![
            (
                "garbage",
                std::thread::spawn(move || {
                    let mut ws = Raw::login(addr, &PrivateKey::generate("g"), Role::Agent);
                    ws.send(OP_TEXT, b"{this is not json");
                    let (reason, code) = ws.closed();
                    assert!(reason.unwrap().contains("not a valid client message"));
                    assert_eq!(code, Some(1007));
                }),
            ),
            (
                "unknown type",
                std::thread::spawn(move || {
                    let mut ws = Raw::login(addr, &PrivateKey::generate("u"), Role::Agent);
                    ws.send(OP_TEXT, br#"{"type":"approve_everything"}"#);
                    let (reason, _) = ws.closed();
                    assert!(reason.unwrap().contains("not a valid client message"));
                }),
            ),
            (
                "oversized",
                std::thread::spawn(move || {
                    let mut ws = Raw::login(addr, &PrivateKey::generate("o"), Role::Agent);
                    let big = format!(
                        r#"{{"type":"submit","request":{{"payload":"{}","sig":""}}}}"#,
                        "A".repeat(100_000)
                    );
                    ws.send(OP_TEXT, big.as_bytes());
                    let (reason, code) = ws.closed();
                    // The relay stops reading mid-frame, so the socket may be reset before the
                    // client reads the reason; but if a reason arrives, it is the right one.
                    if let Some(reason) = reason {
                        assert!(reason.contains("too large"), "{reason}");
                    }
                    if let Some(code) = code {
                        assert_eq!(code, 1009);
                    }
                }),
            ),
            (
                "binary",
                std::thread::spawn(move || {
                    let mut ws = Raw::login(addr, &PrivateKey::generate("b"), Role::Agent);
                    ws.send(OP_BINARY, b"\x00\x01\x02");
                    let (reason, code) = ws.closed();
                    assert!(reason.unwrap().contains("binary"));
                    assert_eq!(code, Some(1003));
                }),
            ),
            (
                "no login",
                std::thread::spawn(move || {
                    let started = Instant::now();
                    let mut ws = Raw::connect(addr);
                    let hello = ws.read_message().expect("hello");
                    assert!(matches!(hello, ServerMessage::Hello { v: 1, .. }));
                    let (reason, _) = ws.closed();
                    assert!(reason.unwrap().contains("no login within 1 s"));
                    let took = started.elapsed();
                    assert!(took < Duration::from_secs(4), "{took:?}");
                }),
            ),
            (
                "unlisted approver",
                std::thread::spawn(move || {
                    let mut ws = Raw::connect(addr);
                    let reason = ws
                        .try_login(&PrivateKey::generate("m"), Role::Approver)
                        .unwrap_err();
                    assert!(reason.contains("not listed as an [[approver]]"), "{reason}");
                }),
            ),
            (
                "forged decision",
                std::thread::spawn(move || {
                    // Bob is a listed approver, but the decision is signed by a key that is not.
                    let mut ws = Raw::login(addr, &bob_for_attacks, Role::Approver);
                    let mallory = PrivateKey::generate("mallory");
                    let forged = approve(&pending_for_attacks, "alice", &mallory);
                    ws.send_message(&ClientMessage::Decide { decision: forged });
                    let (reason, code) = ws.closed();
                    assert!(reason.unwrap().contains("not a listed approver"));
                    assert_eq!(code, Some(1008));
                }),
            ),
            (
                "unbound decision",
                std::thread::spawn({
                    let pending = pending_for_unbound;
                    let bob = bob_for_unbound;
                    move || {
                        // Properly signed by bob, but bound to another request's hash.
                        let mut ws = Raw::login(addr, &bob, Role::Approver);
                        let wrong = DecisionBuilder::approve(&pending)
                            .approver("bob")
                            .request_sha256(other_request.sha256)
                            .sign(&bob)
                            .envelope;
                        ws.send_message(&ClientMessage::Decide { decision: wrong });
                        loop {
                            match ws.read_message().expect("an answer") {
                                ServerMessage::Refused { reason, .. } => {
                                    assert!(reason.contains("does not bind"), "{reason}");
                                    break;
                                }
                                ServerMessage::Request { .. }
                                | ServerMessage::Decided { .. }
                                | ServerMessage::Delivered { .. }
                                | ServerMessage::Expired { .. } => continue,
                                other => panic!("expected refused, got {other:?}"),
                            }
                        }
                    }
                }),
            ),
            (
                "request signed by another key",
                std::thread::spawn(move || {
                    let mut ws = Raw::login(addr, &PrivateKey::generate("me"), Role::Agent);
                    let someone_else = PrivateKey::generate("someone else");
                    let theirs = request(&someone_else, 60);
                    ws.send_message(&ClientMessage::Submit {
                        request: theirs.envelope,
                    });
                    let (reason, code) = ws.closed();
                    assert!(reason.unwrap().contains("not by this connection's key"));
                    assert_eq!(code, Some(1008));
                }),
            ),
            (
                "flood",
                std::thread::spawn(move || {
                    let flooder = PrivateKey::generate("flooder");
                    let mut ws = Raw::login(addr, &flooder, Role::Agent);
                    let req = request(&flooder, 60);
                    let frame = ClientMessage::Submit {
                        request: req.envelope,
                    }
                    .to_json();
                    for _ in 0..40 {
                        if !ws.try_send(OP_TEXT, frame.as_bytes()) {
                            break;
                        }
                    }
                    let (reason, _) = ws.closed();
                    assert!(reason.unwrap().contains("requests a minute"));
                }),
            ),
        ];
        let mut failed = Vec::new();
        for (name, thread) in threads {
            if thread.join().is_err() {
                failed.push(name);
            }
        }
        assert!(
            failed.is_empty(),
            "attacks not handled as expected: {failed:?}"
        );
    });

    // Meanwhile, legitimate round trips go on.
    for _ in 0..5 {
        let req = request(&agent_key, 60);
        agent.submit(&req.envelope).await.unwrap();
        expect_queued(&mut agent, &req).await;
        loop {
            match event(&mut console).await {
                Event::Request { envelope, .. } if envelope == req.envelope => break,
                Event::Request { .. } | Event::Decided { .. } | Event::Delivered { .. } => {
                    continue;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let d = approve(&req, "alice", &alice);
        console.decide(&d).await.unwrap();
        expect_decision(&mut agent, &d).await;
    }
    attacks.await.unwrap();

    // The request that was pending through all of it is still undecided, and completes.
    let d = approve(&pending, "alice", &alice);
    console.decide(&d).await.unwrap();
    expect_decision(&mut agent, &d).await;
}

/// Decisions that arrive together are checked together, and a forged one among them is
/// refused as it is alone: those before it are delivered, the connection ends at it, and
/// nothing after it counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_decision_among_several_sent_at_once_is_refused_and_the_others_stand() {
    let alice = PrivateKey::generate("alice");
    let relay = Relay::start(&config(&[("alice", &alice)], ""));
    let url = relay.url();
    let agent_key = PrivateKey::generate("agent");
    let mut agent = connect(&url, &agent_key, Role::Agent).await;
    let requests: Vec<SignedRequest> = (0..5).map(|_| request(&agent_key, 120)).collect();
    for r in &requests {
        agent.submit(&r.envelope).await.unwrap();
        expect_queued(&mut agent, r).await;
    }
    let decisions: Vec<Envelope> = requests
        .iter()
        .map(|r| approve(r, "alice", &alice))
        .collect();
    // Alice's signature on the approval, over a denial's bytes.
    let forged = Envelope {
        payload: DecisionBuilder::deny(&requests[3], None)
            .approver("alice")
            .sign(&alice)
            .envelope
            .payload,
        sig: decisions[3].sig.clone(),
    };
    let mut sent: Vec<ClientMessage> = decisions
        .iter()
        .map(|d| ClientMessage::Decide {
            decision: d.clone(),
        })
        .collect();
    sent[3] = ClientMessage::Decide { decision: forged };
    let (addr, key) = (
        relay.addr,
        PrivateKey::from_openssh(&alice.to_openssh()).unwrap(),
    );
    let (reason, _) = tokio::task::spawn_blocking(move || {
        let mut console = Raw::login(addr, &key, Role::Approver);
        console.send_together(&sent);
        console.closed()
    })
    .await
    .unwrap();
    let reason = reason.expect("the relay says why it closed");
    assert!(reason.contains("decision does not verify"), "{reason}");
    for decision in &decisions[..3] {
        expect_decision(&mut agent, decision).await;
    }
    // The forged one and the one after it decided nothing: both still wait for a console.
    let mut console = connect(&url, &alice, Role::Approver).await;
    for r in &requests[3..] {
        expect_request(&mut console, r).await;
    }
    assert_nothing_pending(&mut agent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_are_dropped_after_the_idle_timeout_and_live_ones_stay() {
    let relay = Relay::start("[limits]\nping_interval_s = 1\nidle_timeout_s = 2\n");
    let addr = relay.addr;
    let url = relay.url();
    // A raw client that never answers the relay's pings.
    let silent = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut ws = Raw::login(addr, &PrivateKey::generate("silent"), Role::Agent);
        let (reason, code) = ws.closed();
        assert!(reason.unwrap().contains("nothing heard for 2 s"));
        assert_eq!(code, Some(1001));
        started.elapsed()
    });
    // A library client that keeps reading answers pings automatically.
    let mut live = connect(&url, &PrivateKey::generate("live"), Role::Agent).await;
    let waited = tokio::time::timeout(Duration::from_secs(5), live.next_event()).await;
    assert!(
        waited.is_err(),
        "a reading client must stay connected: {waited:?}"
    );
    let took = silent.await.unwrap();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_nothing_pending(&mut live).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_refused_and_others_keep_working() {
    let relay = Relay::start("[limits]\nmax_connections = 3\n");
    let url = relay.url();
    let key = PrivateKey::generate("agent");
    let mut first = connect(&url, &key, Role::Agent).await;
    let _second = connect(&url, &key, Role::Agent).await;
    let third = connect(&url, &key, Role::Agent).await;
    match Client::connect(&url, &key, Role::Agent).await {
        Err(ClientError::Connect(_) | ClientError::Login(_) | ClientError::Closed(_)) => {}
        other => panic!("a fourth connection must be refused: {other:?}"),
    }
    assert_nothing_pending(&mut first).await;
    // A slot frees when a client leaves.
    third.close().await;
    let deadline = Instant::now() + WAIT;
    loop {
        match Client::connect(&url, &key, Role::Agent).await {
            Ok(mut again) => {
                assert_nothing_pending(&mut again).await;
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "no slot came free: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------
// TLS.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_a_self_signed_ca_works_end_to_end() {
    let dir = ScratchDir::new("relay-tls");
    let ca = PrivateCa::new(dir.path(), "ca");
    let Leaf { cert, key } = ca.leaf("leaf", &["DNS:localhost", "IP:127.0.0.1"]);
    let alice = PrivateKey::generate("alice");
    let relay = Relay::start_with(
        dir,
        &config(&[("alice", &alice)], ""),
        "127.0.0.1:0",
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let url = format!("wss://localhost:{}", relay.addr.port());
    assert_eq!(relay.scheme, "wss");
    let trust = ConnectOptions {
        extra_roots: vec![relay.dir.join("ca.pem")],
        ..ConnectOptions::default()
    };

    // Without the CA, the certificate is not trusted.
    let agent_key = PrivateKey::generate("agent");
    let untrusted =
        Client::connect_with(&url, &agent_key, Role::Agent, &ConnectOptions::default()).await;
    match untrusted {
        Err(e @ ClientError::Misconfigured(_)) => {
            assert_eq!(e.fault(), Fault::Configuration);
            assert!(
                e.to_string()
                    .contains("not signed by a CA this host trusts"),
                "{e}"
            );
        }
        other => panic!("an unknown certificate must be refused: {other:?}"),
    }
    // Plain ws:// to a TLS port does not work either, and says what to use.
    match Client::connect(&format!("ws://{}", relay.addr), &agent_key, Role::Agent).await {
        Err(e @ ClientError::Misconfigured(_)) => {
            assert!(e.to_string().contains("use wss://"), "{e}")
        }
        other => panic!("ws:// to a TLS port must be refused: {other:?}"),
    }

    let mut agent = Client::connect_with(&url, &agent_key, Role::Agent, &trust)
        .await
        .unwrap();
    let mut approver = ScriptedApprover::connect_with(&url, alice, "alice", trust.clone())
        .await
        .unwrap();
    let req = request(&agent_key, 60);
    agent.submit(&req.envelope).await.unwrap();
    expect_queued(&mut agent, &req).await;
    let (seen, _) = approver.next_request().await.unwrap();
    let decided = approver
        .decide(seen, true, &Choice::deny("not today"))
        .await
        .unwrap();
    expect_decision(&mut agent, &decided.envelope).await;
    let d = decided.envelope.open::<Decision>().unwrap().payload;
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.note.as_deref(), Some("not today"));
}

/// Options that trust only `ca`.
fn trusting(ca: &PrivateCa) -> ConnectOptions {
    ConnectOptions {
        extra_roots: vec![ca.cert()],
        ..ConnectOptions::default()
    }
}

impl Relay {
    fn sighup(&self) {
        let sent = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("relay.log")).unwrap_or_default()
    }

    /// Wait for the log to say `needle` `n` times in all.
    fn wait_logged(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.log().matches(needle).count() < n {
            assert!(
                Instant::now() < deadline,
                "the relay never logged {needle:?} {n} times:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_config_and_certificate_and_keeps_everything_else() {
    let dir = ScratchDir::new("relay-reload");
    let old_ca = PrivateCa::new(dir.path(), "old-ca");
    let new_ca = PrivateCa::new(dir.path(), "new-ca");
    let served = old_ca.leaf("served", &["DNS:localhost"]);
    let renewed = new_ca.leaf("renewed", &["DNS:localhost"]);
    let (alice, bob) = (PrivateKey::generate("alice"), PrivateKey::generate("bob"));
    let mut relay = Relay::start_with(
        dir,
        &config(&[("alice", &alice)], ""),
        "127.0.0.1:0",
        &[
            "--tls-cert",
            served.cert.to_str().unwrap(),
            "--tls-key",
            served.key.to_str().unwrap(),
        ],
    );
    let url = format!("wss://localhost:{}", relay.addr.port());

    // A request waits, on a connection made with the old certificate.
    let agent_key = PrivateKey::generate("agent");
    let mut agent = Client::connect_with(&url, &agent_key, Role::Agent, &trusting(&old_ca))
        .await
        .unwrap();
    let req = request(&agent_key, 600);
    agent.submit(&req.envelope).await.unwrap();
    expect_queued(&mut agent, &req).await;

    // Rotate the certificate (new CA, new key) and list bob too, then SIGHUP.
    std::fs::copy(&renewed.cert, &served.cert).unwrap();
    std::fs::copy(&renewed.key, &served.key).unwrap();
    std::fs::write(
        relay.dir.join("relay.toml"),
        config(&[("alice", &alice), ("bob", &bob)], ""),
    )
    .unwrap();
    relay.sighup();
    relay.wait_logged("SIGHUP: reloaded", 1);
    assert!(
        relay.child.try_wait().unwrap().is_none(),
        "SIGHUP stopped the relay"
    );

    // New handshakes get the new certificate: a client trusting only the new CA gets in,
    // and bob, listed only now, is an approver who sees the request that waited.
    let mut console = Client::connect_with(&url, &bob, Role::Approver, &trusting(&new_ca))
        .await
        .unwrap_or_else(|e| panic!("the new certificate is not served: {e}"));
    expect_request(&mut console, &req).await;
    let old_only = Client::connect_with(&url, &agent_key, Role::Agent, &trusting(&old_ca)).await;
    assert!(old_only.is_err(), "the old certificate is still served");
    // The agent's connection from before the reload still works: the decision reaches it.
    let decision = approve(&req, "bob", &bob);
    console.decide(&decision).await.unwrap();
    expect_decision(&mut agent, &decision).await;

    // A config that does not parse, or a certificate that does not go with its key, is
    // logged and changes nothing.
    std::fs::write(relay.dir.join("relay.toml"), "[[approver]]\nname = 3\n").unwrap();
    relay.sighup();
    relay.wait_logged("reload failed", 1);
    std::fs::write(
        relay.dir.join("relay.toml"),
        config(&[("alice", &alice)], ""),
    )
    .unwrap();
    std::fs::copy(
        &old_ca.leaf("mismatch", &["DNS:localhost"]).cert,
        &served.cert,
    )
    .unwrap();
    relay.sighup();
    relay.wait_logged("reload failed", 2);
    assert!(relay.child.try_wait().unwrap().is_none());
    // Still the new certificate, and bob is still listed.
    Client::connect_with(&url, &bob, Role::Approver, &trusting(&new_ca))
        .await
        .unwrap_or_else(|e| panic!("a failed reload changed something: {e}"))
        .close()
        .await;
    relay.kill();
}

// ---------------------------------------------------------------------------------------
// The binaries' command lines.

#[test]
fn bad_config_exits_78_with_one_line_naming_the_file() {
    let dir = ScratchDir::new("relay-cli");
    let path = dir.join("relay.toml");
    std::fs::write(
        &path,
        "[[approver]]\nname = \"alice\"\nkey = \"ssh-rsa AAAA\"\n",
    )
    .unwrap();
    let out = Command::new(built_binary("assent-relay"))
        .arg("--config")
        .arg(&path)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("assent-relay: config {}: ", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("ssh-ed25519"), "{stderr}");

    let out = Command::new(built_binary("assent-relay"))
        .arg("--config")
        .arg(dir.join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml: cannot read it"));
}

#[test]
fn plain_ws_off_loopback_needs_insecure_listen() {
    let out = Command::new(built_binary("assent-relay"))
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--insecure-listen"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn sigterm_shuts_the_relay_down_cleanly() {
    let mut relay = Relay::start("");
    // A connection that never logs in must not hold the shutdown up until its login timeout.
    let _idle = TcpStream::connect(relay.addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &relay.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    loop {
        if let Some(status) = relay.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the relay did not exit promptly after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scripted_approver_cli_decides_and_revokes() {
    let alice = PrivateKey::generate("alice");
    let relay = Relay::start(&config(&[("alice", &alice)], ""));
    let url = relay.url();
    let key_file = relay.dir.join("alice.key");
    std::fs::write(&key_file, alice.to_openssh()).unwrap();
    let revoke_file = relay.dir.join("revoked");

    let mut cli = Command::new(built_binary("assent-test-approver"))
        .args([
            "--relay",
            &url,
            "--name",
            "alice",
            "--grant",
            "timed:10m",
            "--count",
            "1",
        ])
        .arg("--key")
        .arg(&key_file)
        .arg("--revoke-file")
        .arg(&revoke_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let agent_key = PrivateKey::generate("agent");
    let mut agent = connect(&url, &agent_key, Role::Agent).await;
    let req = request(&agent_key, 60);
    agent.submit(&req.envelope).await.unwrap();
    expect_queued(&mut agent, &req).await;
    let envelope = match event(&mut agent).await {
        Event::Decision { envelope } => envelope,
        other => panic!("expected a decision, got {other:?}"),
    };
    let d = envelope.open::<Decision>().unwrap();
    assert_eq!(d.signer, alice.public());
    assert_eq!(d.payload.verdict, Verdict::Approve);
    assert_eq!(d.payload.window_s(), Some(600));

    let mut line = String::new();
    BufReader::new(cli.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let printed: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(printed["request_id"], req.payload.id.to_hex());
    assert_eq!(printed["verdict"], "approve");
    assert_eq!(printed["grant"], "timed");
    assert_eq!(printed["decision_sha256"], d.sha256.to_hex());
    assert!(
        cli.wait().unwrap().success(),
        "--count 1 exits after one decision"
    );

    // Revocations on demand: a library approver with the same key publishes one.
    let mut approver = ScriptedApprover::connect(&url, alice, "alice")
        .await
        .unwrap();
    approver.publish_status(&[d.sha256]).await.unwrap();
    let held = wait_for_status(&mut agent, |revoked| revoked == [d.sha256]).await;
    assert_eq!(held.approver, "alice");

    // And the CLI's --revoke-file: published when the file changes.
    let mut cli = Command::new(built_binary("assent-test-approver"))
        .args(["--relay", &url, "--name", "alice"])
        .arg("--key")
        .arg(&key_file)
        .arg("--revoke-file")
        .arg(&revoke_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let other = sha256(b"another decision");
    std::fs::write(
        &revoke_file,
        format!("{}\n# comment\n{}\n", d.sha256, other),
    )
    .unwrap();
    let mut both = [d.sha256, other];
    both.sort();
    wait_for_status(&mut agent, |revoked| revoked == both).await;
    let _ = cli.kill();
    let _ = cli.wait();
}

/// The first status served once its revoked digests (in their order, sorted) satisfy `want`.
async fn wait_for_status(agent: &mut Client, want: impl Fn(&[Sha256Digest]) -> bool) -> Status {
    let deadline = Instant::now() + WAIT;
    loop {
        agent.request_statuses().await.unwrap();
        if let Event::Statuses { statuses } = event(agent).await {
            if let Some(s) = statuses.first() {
                let s = s.open::<Status>().unwrap().payload;
                let digests: Vec<Sha256Digest> =
                    s.revoked.iter().map(|r| r.decision_sha256).collect();
                if want(&digests) {
                    return s;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the expected status never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------
// A minimal WebSocket client (RFC 6455) that will send anything.

const OP_TEXT: u8 = 1;
const OP_BINARY: u8 = 2;
const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;

struct Raw {
    stream: TcpStream,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut nonce = [0u8; 16];
        assent_protocol::random_bytes(&mut nonce);
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD.encode(nonce);
        write!(
            stream,
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "handshake refused: {head}"
        );
        Raw { stream }
    }

    fn login(addr: SocketAddr, key: &PrivateKey, role: Role) -> Raw {
        let mut ws = Raw::connect(addr);
        ws.try_login(key, role).unwrap();
        ws
    }

    fn try_login(&mut self, key: &PrivateKey, role: Role) -> Result<(), String> {
        let nonce = match self.read_message() {
            Some(ServerMessage::Hello { nonce, .. }) => nonce,
            other => panic!("expected hello, got {other:?}"),
        };
        let login = Login {
            v: V1,
            kind: KindLogin,
            nonce,
            role,
        };
        self.send_message(&ClientMessage::Login {
            login: Envelope::seal(key, &login),
        });
        match self.read_message() {
            Some(ServerMessage::Welcome { .. }) => Ok(()),
            Some(ServerMessage::Error { reason }) => Err(reason),
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    fn send_message(&mut self, message: &ClientMessage) {
        self.send(OP_TEXT, message.to_json().as_bytes());
    }

    fn send(&mut self, opcode: u8, payload: &[u8]) {
        assert!(self.try_send(opcode, payload), "write failed");
    }

    /// Several messages in one write, so that they reach the relay together.
    fn send_together(&mut self, messages: &[ClientMessage]) {
        let frames: Vec<u8> = messages
            .iter()
            .flat_map(|m| Self::frame(OP_TEXT, m.to_json().as_bytes()))
            .collect();
        self.stream.write_all(&frames).expect("write failed");
    }

    /// One masked frame; false when the relay has already closed the socket.
    fn try_send(&mut self, opcode: u8, payload: &[u8]) -> bool {
        self.stream.write_all(&Self::frame(opcode, payload)).is_ok()
    }

    /// A client's frame: final, masked.
    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mut mask = [0u8; 4];
        assent_protocol::random_bytes(&mut mask);
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frame
    }

    /// Fill `buf`; `None` at EOF or on a reset. Panics when the relay keeps the connection
    /// open but silent for the whole wait time.
    fn read_exact(&mut self, buf: &mut [u8]) -> Option<()> {
        match self.stream.read_exact(buf) {
            Ok(()) => Some(()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the relay kept the connection open and silent for {WAIT:?}")
            }
            Err(_) => None,
        }
    }

    /// The next frame: (opcode, payload); `None` at EOF or on a reset.
    fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut head = [0u8; 2];
        self.read_exact(&mut head)?;
        let opcode = head[0] & 0x0f;
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.read_exact(&mut b)?;
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                self.read_exact(&mut b)?;
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; usize::try_from(len).unwrap()];
        self.read_exact(&mut payload)?;
        Some((opcode, payload))
    }

    /// The next relay message, skipping pings; `None` when the connection ends first.
    fn read_message(&mut self) -> Option<ServerMessage> {
        loop {
            let (opcode, payload) = self.read_frame()?;
            match opcode {
                OP_TEXT => return Some(serde_json::from_slice(&payload).unwrap()),
                OP_PING => continue,
                OP_CLOSE => return None,
                other => panic!("unexpected opcode {other}"),
            }
        }
    }

    /// Read until the relay closes: the `error` reason it gave and the close code, if any.
    /// Panics if the connection stays open.
    fn closed(&mut self) -> (Option<String>, Option<u16>) {
        let mut reason = None;
        loop {
            match self.read_frame() {
                None => return (reason, None),
                Some((OP_TEXT, payload)) => {
                    if let Ok(ServerMessage::Error { reason: why }) =
                        serde_json::from_slice(&payload)
                    {
                        reason = Some(why);
                    }
                }
                Some((OP_CLOSE, payload)) => {
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    return (reason, code);
                }
                Some(_) => continue,
            }
        }
    }
}
