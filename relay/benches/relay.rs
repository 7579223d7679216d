//! Relay benchmarks (SPEC §12), run against the real `assent-relay` binary:
//!
//! - round trips (request → decision) per second at saturation, with N agent connections
//!   each keeping one request in flight and one approver deciding as fast as it can;
//! - latency percentiles at a fixed 1,000 round trips per second;
//! - the relay's resident memory with 10,000 connected agents, idle and then each waiting
//!   on a pending request.
//!
//! The figures are the relay's (parsing requests, verifying each decision's signature,
//! routing, framing) plus the clients' framing — not the cost of signing. Relay and clients
//! share the machine's cores, so the load generator is kept light: requests and decisions
//! are signed and serialised into frames before timing starts, and during the timed part
//! the clients only pick the request id out of each frame they receive (from the start of
//! its base64 payload) rather than decoding it all. Every round trip is still the real
//! thing over loopback TCP: a request frame in, forwarded to the approver's connection, a
//! signed decision frame back in, and the decision delivered to the waiting agent, which
//! checks it is the decision for its own request. Run: `cargo bench -p assent-relay`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assent_protocol::payload::{KindDecision, KindRequest, V1};
use assent_protocol::{
    ConsoleId, Decision, Env, Envelope, Grant, HostId, Login, PrivateKey, Request, RequestId, Role,
    Verdict, sha256,
};
use assent_relay_client::message::{ClientMessage, ServerMessage};
use assent_relay_client::{Client, Event};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The sizes of one run. `cargo bench` passes `--bench`; without it (`cargo test
/// --benches`) a small smoke run checks that the benchmark itself works.
struct Sizes {
    round_trips: usize,
    rate: usize,
    seconds: usize,
    idle_clients: usize,
}

const FULL: Sizes = Sizes {
    round_trips: 60_000,
    rate: 1_000,
    seconds: 5,
    idle_clients: 10_000,
};

const SMOKE: Sizes = Sizes {
    round_trips: 256,
    rate: 100,
    seconds: 1,
    idle_clients: 100,
};

fn main() {
    raise_fd_limit();
    let sizes = if std::env::args().any(|a| a == "--bench") {
        FULL
    } else {
        SMOKE
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(sizes));
}

struct Row {
    what: String,
    result: String,
    target: &'static str,
}

async fn run(sizes: Sizes) {
    let dir = std::env::temp_dir().join(format!("assent-relay-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let alice = Arc::new(PrivateKey::generate("alice"));
    let mut relay = RelayProcess::start(&dir, &alice);
    let url = relay.url.clone();
    let mut rows = Vec::new();
    // ASSENT_BENCH_ONLY=memory (or throughput, latency) runs one part.
    let only = std::env::var("ASSENT_BENCH_ONLY").unwrap_or_default();
    let part = |name: &str| only.is_empty() || only == name;

    if part("throughput") {
        let (per_round_trip, batched) = verification_cost(&alice, 16);
        rows.push(Row {
            what: "signature check per round trip (the decision's), 1 core".into(),
            result: format!("{:.1} µs", per_round_trip.as_secs_f64() * 1e6),
            target: "",
        });
        rows.push(Row {
            what: "  the same in batches of 16, as decisions arriving together".into(),
            result: format!("{:.1} µs", batched.as_secs_f64() * 1e6),
            target: "",
        });
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        rows.push(Row {
            what: format!(
                "  → ceiling from signature checks alone (1 per round trip), {cores} cores"
            ),
            result: format!("{:.0} /s", cores as f64 / per_round_trip.as_secs_f64()),
            target: "",
        });
    }
    for agents in [16, 128].into_iter().filter(|_| part("throughput")) {
        let rate = saturation(&url, &alice, agents, sizes.round_trips).await;
        rows.push(Row {
            what: format!("round trips/s, saturated, {agents} agents + 1 approver"),
            result: format!("{rate:.0} /s"),
            target: "≥ 20,000 /s",
        });
    }

    let Sizes {
        rate,
        seconds,
        idle_clients,
        ..
    } = sizes;
    if part("latency") {
        let (p50, p99, max) = fixed_rate(&url, &alice, rate, seconds, 20).await;
        rows.push(Row {
            what: format!("latency p50 at {rate}/s (20 agents, {seconds} s)"),
            result: format!("{:.2} ms", ms(p50)),
            target: "",
        });
        rows.push(Row {
            what: format!("latency p99 at {rate}/s"),
            result: format!("{:.2} ms", ms(p99)),
            target: "p99 ≤ 5 ms",
        });
        rows.push(Row {
            what: format!("latency max at {rate}/s"),
            result: format!("{:.2} ms", ms(max)),
            target: "",
        });
    }

    // Memory on a fresh relay, so the figures are not inflated by the runs above.
    relay.stop();
    if part("memory") {
        let relay = RelayProcess::start(&dir, &alice);
        let (base, idle, waiting) = memory(&relay, idle_clients).await;
        rows.push(Row {
            what: "relay RSS, freshly started".into(),
            result: format!("{:.1} MiB", mib(base)),
            target: "",
        });
        rows.push(Row {
            what: format!("relay RSS, {idle_clients} agents logged in, idle"),
            result: format!("{:.1} MiB", mib(idle)),
            target: "",
        });
        rows.push(Row {
            what: format!("relay RSS, {idle_clients} agents each waiting on a request"),
            result: format!("{:.1} MiB", mib(waiting)),
            target: "≤ 100 MiB",
        });
        drop(relay);
    }
    let _ = std::fs::remove_dir_all(&dir);

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "assent-relay benchmark — {cores} cores shared by the relay and its clients; relay log level warn"
    );
    let width = rows
        .iter()
        .map(|r| r.what.chars().count())
        .max()
        .unwrap_or(0);
    println!(
        "| {:width$} | {:>12} | {:12} |",
        "measurement", "result", "target"
    );
    println!(
        "|-{}-|-{}-|-{}-|",
        "-".repeat(width),
        "-".repeat(12),
        "-".repeat(12)
    );
    for row in rows {
        println!(
            "| {:width$} | {:>12} | {:12} |",
            row.what, row.result, row.target
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------

struct RelayProcess {
    child: Child,
    url: String,
}

impl RelayProcess {
    fn start(dir: &Path, alice: &PrivateKey) -> RelayProcess {
        let config = dir.join("relay.toml");
        std::fs::write(
            &config,
            format!(
                "[[approver]]\nname = \"alice\"\nkey = \"{}\"\n\n[limits]\n\
                 requests_per_agent_per_minute = 100000000\n\
                 messages_per_connection_per_second = 100000000\n\
                 max_pending_total = 1000000\n\
                 max_remembered_ids = 100000000\n\
                 max_remembered_ids_per_agent = 100000000\n\
                 max_connections = 20000\n\
                 outbound_queue = 65536\n",
                alice.public().to_openssh("alice")
            ),
        )
        .unwrap();
        let mut child = Command::new(relay_binary())
            .args(["--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start assent-relay");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let url = line
            .trim()
            .strip_prefix("assent-relay listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        RelayProcess { child, url }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn relay_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_assent-relay"))
}

fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// The relay's resident set size in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

// ---------------------------------------------------------------------------------------
// Signed traffic, made before timing.

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn signed_request(agent: &PrivateKey, n: usize) -> (Envelope, Request) {
    let now = now();
    let request = Request {
        v: V1,
        kind: KindRequest,
        id: RequestId::random(),
        agent: "bench".into(),
        host: "bench-host".into(),
        host_id: HostId([0x3f; 16]),
        user: "agent".into(),
        uid: 1001,
        run_as: "root".into(),
        program: "/usr/bin/true".into(),
        program_sha256: sha256(b"true"),
        argv: vec!["true".into(), n.to_string()],
        cwd: "/tmp".into(),
        env: Env::default(),
        reason: "benchmark".into(),
        grant: Grant::Once,
        ttl_s: None,
        created_at: now,
        expires_at: now + 600,
    };
    (Envelope::seal(agent, &request), request)
}

fn signed_decision(alice: &PrivateKey, envelope: &Envelope, request: &Request) -> Envelope {
    let now = now();
    let bytes = envelope.payload_bytes_unverified().unwrap();
    let decision = Decision {
        v: V1,
        kind: KindDecision,
        request_id: request.id,
        request_sha256: sha256(&bytes),
        verdict: Verdict::Approve,
        grant: Grant::Once,
        not_before: now,
        not_after: Some(now + 60),
        cmd_sha256: request.cmd_sha256(),
        approver: "alice".into(),
        console: ConsoleId([0xc0; 16]),
        decided_at: now,
        note: None,
    };
    Envelope::seal(alice, &decision)
}

/// A logged-in WebSocket without the library client on top, for sending pre-serialised
/// frames.
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One agent's work: its key, and per request the `submit` frame and the request's id.
struct AgentWork {
    key: PrivateKey,
    requests: Vec<(Utf8Bytes, RequestId)>,
}

/// The approver's work: the `decide` frame for each request id.
type Decisions = HashMap<RequestId, Utf8Bytes>;

fn prepare(alice: &PrivateKey, agents: usize, per_agent: usize) -> (Vec<AgentWork>, Decisions) {
    let mut decisions = HashMap::new();
    let work = (0..agents)
        .map(|_| {
            let key = PrivateKey::generate("bench agent");
            let requests = (0..per_agent)
                .map(|n| {
                    let (envelope, request) = signed_request(&key, n);
                    let decision = signed_decision(alice, &envelope, &request);
                    let decide = ClientMessage::Decide { decision }.to_json();
                    decisions.insert(request.id, Utf8Bytes::from(decide));
                    let submit = ClientMessage::Submit { request: envelope }.to_json();
                    (Utf8Bytes::from(submit), request.id)
                })
                .collect();
            AgentWork { key, requests }
        })
        .collect();
    (work, decisions)
}

/// Connect and log in as `Client` does: answer `hello` with a signed `Login`, expect `welcome`.
async fn log_in(url: &str, key: &PrivateKey, role: Role) -> Ws {
    // tungstenite zero-fills its read buffer before every read: the default 128 KiB made
    // that the load generator's largest cost. An agent reads ~1 KiB frames; the approver
    // reads bursts of them.
    let read_buffer = match role {
        Role::Agent => 4 * 1024,
        Role::Approver => 32 * 1024,
    };
    let config = WebSocketConfig::default().read_buffer_size(read_buffer);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .unwrap();
    let nonce = match serde_json::from_str(&next_text(&mut ws).await).unwrap() {
        ServerMessage::Hello { nonce, .. } => nonce,
        other => panic!("expected hello, got {other:?}"),
    };
    let login = Login {
        v: Default::default(),
        kind: Default::default(),
        nonce,
        role,
    };
    let login = ClientMessage::Login {
        login: Envelope::seal(key, &login),
    };
    ws.send(Message::text(login.to_json())).await.unwrap();
    match serde_json::from_str(&next_text(&mut ws).await).unwrap() {
        ServerMessage::Welcome { .. } => ws,
        other => panic!("expected welcome, got {other:?}"),
    }
}

async fn next_text(ws: &mut Ws) -> Utf8Bytes {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return text,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("the relay connection ended: {other:?}"),
        }
    }
}

/// The request id at the start of the payload of the envelope in a relay frame, found by
/// decoding only the first 96 base64 characters: payloads serialise `v`, `kind` and then the
/// id (`id_field`), so the id lies within the first 72 bytes.
fn id_in_frame(frame: &str, id_field: &str) -> RequestId {
    const MARK: &str = r#""payload":""#;
    let start = frame.find(MARK).expect("a frame with an envelope") + MARK.len();
    let prefix = Envelope {
        payload: frame[start..start + 96].to_owned(),
        sig: String::new(),
    };
    let bytes = prefix.payload_bytes_unverified().unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let field = format!(r#""{id_field}":""#);
    let at = text.find(&field).expect("the id near the payload's start") + field.len();
    RequestId::from_hex(&text[at..at + 32]).expect("a request id")
}

/// An approver that decides every request it is shown with the prepared decision, writing
/// the decisions for all requests that arrived together in one batch.
async fn spawn_approver(
    url: &str,
    alice: &PrivateKey,
    decisions: Decisions,
) -> tokio::task::JoinHandle<()> {
    let mut ws = log_in(url, alice, Role::Approver).await;
    tokio::spawn(async move {
        loop {
            let mut frame = Some(next_text(&mut ws).await);
            while let Some(text) = frame.take() {
                if text.starts_with(r#"{"type":"request""#) {
                    let decide = &decisions[&id_in_frame(&text, "id")];
                    if ws.feed(Message::Text(decide.clone())).await.is_err() {
                        return;
                    }
                } else if !text.starts_with(r#"{"type":"decided""#)
                    && !text.starts_with(r#"{"type":"delivered""#)
                {
                    panic!("approver: unexpected {text}");
                }
                // Whatever else has already arrived, without waiting.
                if let Some(Some(Ok(Message::Text(next)))) = ws.next().now_or_never() {
                    frame = Some(next);
                }
            }
            if ws.flush().await.is_err() {
                return;
            }
        }
    })
}

/// Submit one request and wait for its decision, checking it is this request's.
async fn round_trip(ws: &mut Ws, submit: &Utf8Bytes, id: RequestId) {
    ws.send(Message::Text(submit.clone())).await.unwrap();
    loop {
        let text = next_text(ws).await;
        if text.starts_with(r#"{"type":"queued""#) {
            continue;
        }
        assert!(
            text.starts_with(r#"{"type":"decision""#),
            "agent: unexpected {text}"
        );
        assert_eq!(
            id_in_frame(&text, "request_id"),
            id,
            "another request's decision"
        );
        return;
    }
}

async fn connect_agents(url: &str, work: &[AgentWork]) -> Vec<Ws> {
    let mut clients = Vec::with_capacity(work.len());
    for agent in work {
        clients.push(log_in(url, &agent.key, Role::Agent).await);
    }
    clients
}

/// What the relay spends verifying one round trip's signature (the decision's, with the
/// listed approver's key as the relay does, and parsing its payload), measured in this
/// process on one core.
/// The time to check one decision's signature (and parse it), alone, and in batches of
/// `batch` as the relay checks decisions that arrive together.
fn verification_cost(alice: &PrivateKey, batch: usize) -> (Duration, Duration) {
    let agent = PrivateKey::generate("agent");
    let decisions: Vec<Envelope> = (0..512)
        .map(|n| {
            let (envelope, request) = signed_request(&agent, n);
            signed_decision(alice, &envelope, &request)
        })
        .collect();
    let listed = alice.public();
    let started = Instant::now();
    for decision in &decisions {
        decision
            .open_trusted::<Decision>(|claimed| claimed.is(&listed).then_some(&listed))
            .unwrap()
            .unwrap();
    }
    let alone = started.elapsed() / decisions.len() as u32;
    let started = Instant::now();
    for chunk in decisions.chunks(batch) {
        let chunk: Vec<&Envelope> = chunk.iter().collect();
        for opened in Envelope::open_trusted_all::<Decision>(&chunk, |_, claimed| {
            claimed.is(&listed).then_some(&listed)
        }) {
            opened.unwrap().unwrap();
        }
    }
    (alone, started.elapsed() / decisions.len() as u32)
}

async fn saturation(url: &str, alice: &PrivateKey, agents: usize, total: usize) -> f64 {
    let per_agent = total / agents;
    let (work, decisions) = prepare(alice, agents, per_agent);
    let approver = spawn_approver(url, alice, decisions).await;
    let clients = connect_agents(url, &work).await;

    let started = Instant::now();
    let mut tasks = Vec::new();
    for (mut ws, agent) in clients.into_iter().zip(work) {
        tasks.push(tokio::spawn(async move {
            for (submit, id) in &agent.requests {
                round_trip(&mut ws, submit, *id).await;
            }
            ws
        }));
    }
    let mut done = Vec::with_capacity(tasks.len());
    for task in tasks {
        done.push(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    approver.abort();
    for mut ws in done {
        let _ = ws.close(None).await;
    }
    (agents * per_agent) as f64 / elapsed.as_secs_f64()
}

async fn fixed_rate(
    url: &str,
    alice: &PrivateKey,
    rate: usize,
    seconds: usize,
    agents: usize,
) -> (Duration, Duration, Duration) {
    let per_agent = rate * seconds / agents;
    let (work, decisions) = prepare(alice, agents, per_agent);
    let approver = spawn_approver(url, alice, decisions).await;
    let clients = connect_agents(url, &work).await;

    // Each agent sends every `period`, the agents evenly staggered, so the relay sees `rate`
    // requests a second. Latency counts from the scheduled send time, so a late send is
    // charged to the relay rather than hidden.
    let period = Duration::from_secs_f64(agents as f64 / rate as f64);
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::new();
    for (i, (mut ws, agent)) in clients.into_iter().zip(work).enumerate() {
        let first = start + period.mul_f64(i as f64 / agents as f64);
        tasks.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(first, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut latencies = Vec::with_capacity(agent.requests.len());
            for (submit, id) in &agent.requests {
                let scheduled = ticks.tick().await;
                round_trip(&mut ws, submit, *id).await;
                latencies.push(scheduled.elapsed());
            }
            let _ = ws.close(None).await;
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    approver.abort();
    all.sort();
    let pick = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    (pick(0.50), pick(0.99), *all.last().unwrap())
}

/// RSS (KiB) of a fresh relay; with `n` agents logged in; with each also waiting on a request.
async fn memory(relay: &RelayProcess, n: usize) -> (u64, u64, u64) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = rss_kib(relay.pid());

    let slots = Arc::new(Semaphore::new(200));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let url = relay.url.clone();
        let slots = slots.clone();
        tasks.push(tokio::spawn(async move {
            let slot = slots.acquire_owned().await.unwrap();
            let key = PrivateKey::generate("idle agent");
            let client = Client::connect(&url, &key, Role::Agent)
                .await
                .unwrap_or_else(|e| panic!("client {i}: {e}"));
            drop(slot);
            (client, key)
        }));
    }
    let mut clients = Vec::with_capacity(n);
    for task in tasks {
        clients.push(task.await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib(relay.pid());

    for (client, key) in &mut clients {
        let (envelope, _) = signed_request(key, 0);
        client.submit(&envelope).await.unwrap();
    }
    for (client, _) in &mut clients {
        match client.next_event().await.unwrap() {
            Event::Queued { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = rss_kib(relay.pid());
    drop(clients);
    (base, idle, waiting)
}
