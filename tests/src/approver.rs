//! A scripted approver for tests: logs in to a real relay as an approver, watches pending
//! requests and decides each with a policy, signing real decisions and statuses with
//! `assent_protocol::Envelope::seal`. Test-only; never shipped.
//!
//! It remembers what it decided: a request seen again (after a relay restart, say) gets the
//! very same signed decision again, never a second, different one.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use assent_protocol::payload::{KindDecision, KindStatus, V1};
use assent_protocol::{
    ConsoleId, Decision, Envelope, Grant, PrivateKey, Request, RequestId, Revocation, Role,
    Sha256Digest, Signed, Status, Verdict, sha256,
};
use assent_relay_client::{Client, ClientError, ConnectOptions, Event};

use crate::now;

/// Default window of a `once` approval, well inside the elevator's default of 120 s.
pub const ONCE_WINDOW_S: u64 = 60;
/// Default lifetime of a `timed` approval when neither the choice nor the request says.
pub const TIMED_TTL_S: u64 = 3600;

/// How to answer one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub verdict: Verdict,
    /// `None`: the grant type the request asked for.
    pub grant: Option<Grant>,
    pub note: Option<String>,
    /// Window for `once`, lifetime for `timed`; `None`: the defaults (or the request's ttl_s).
    pub ttl_s: Option<u64>,
}

impl Choice {
    pub fn approve() -> Choice {
        Choice {
            verdict: Verdict::Approve,
            grant: None,
            note: None,
            ttl_s: None,
        }
    }

    pub fn deny(note: &str) -> Choice {
        Choice {
            verdict: Verdict::Deny,
            note: Some(note.to_owned()),
            ..Choice::approve()
        }
    }

    pub fn grant(mut self, grant: Grant) -> Choice {
        self.grant = Some(grant);
        self
    }

    pub fn ttl_s(mut self, ttl_s: u64) -> Choice {
        self.ttl_s = Some(ttl_s);
        self
    }

    pub fn note(mut self, note: &str) -> Choice {
        self.note = Some(note.to_owned());
        self
    }
}

/// A decision this approver made (or re-sent).
#[derive(Debug, Clone)]
pub struct Decided {
    pub request: Signed<Request>,
    pub first_seen: bool,
    pub decision: Decision,
    pub envelope: Envelope,
    /// SHA-256 of the decision payload bytes: what a status revokes.
    pub decision_sha256: Sha256Digest,
    /// True when this request had been decided before and the same decision was sent again.
    pub resent: bool,
}

impl Decided {
    /// One JSON object describing the decision, as the CLI prints it.
    pub fn to_json(&self) -> serde_json::Value {
        let r = &self.request.payload;
        let d = &self.decision;
        serde_json::json!({
            "request_id": r.id,
            "agent": r.agent,
            "agent_key": self.request.signer.fingerprint().to_string(),
            "first_seen": self.first_seen,
            "program": r.program,
            "argv": r.argv,
            "verdict": d.verdict,
            "grant": d.grant,
            "not_before": d.not_before,
            "not_after": d.not_after,
            "note": d.note,
            "approver": d.approver,
            "decision_sha256": self.decision_sha256,
            "resent": self.resent,
            "decision": self.envelope,
        })
    }
}

/// An approver console without a human. Its console id is [`crate::grants::TEST_CONSOLE`]
/// unless set with [`ScriptedApprover::with_console`].
pub struct ScriptedApprover {
    client: Client,
    url: String,
    options: ConnectOptions,
    key: PrivateKey,
    name: String,
    console: ConsoleId,
    decided: HashMap<RequestId, Decided>,
}

impl std::fmt::Debug for ScriptedApprover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedApprover")
            .field("url", &self.url)
            .field("name", &self.name)
            .field("decided", &self.decided.len())
            .finish_non_exhaustive()
    }
}

impl ScriptedApprover {
    /// Log in to the relay at `url` as approver `name` (which must match the relay config).
    pub async fn connect(url: &str, key: PrivateKey, name: &str) -> Result<Self, ClientError> {
        Self::connect_with(url, key, name, ConnectOptions::from_env()).await
    }

    pub async fn connect_with(
        url: &str,
        key: PrivateKey,
        name: &str,
        options: ConnectOptions,
    ) -> Result<Self, ClientError> {
        let client = Client::connect_with(url, &key, Role::Approver, &options).await?;
        Ok(ScriptedApprover {
            client,
            url: url.to_owned(),
            options,
            key,
            name: name.to_owned(),
            console: crate::grants::TEST_CONSOLE,
            decided: HashMap::new(),
        })
    }

    /// Sign as another console of the same key from now on.
    pub fn with_console(mut self, console: ConsoleId) -> Self {
        self.console = console;
        self
    }

    /// The console id its decisions and statuses carry.
    pub fn console(&self) -> ConsoleId {
        self.console
    }

    /// Connect again (after the relay restarted), retrying every 100 ms for up to `patience`.
    /// What was decided before is remembered.
    pub async fn reconnect(&mut self, patience: Duration) -> Result<(), ClientError> {
        let give_up = tokio::time::Instant::now() + patience;
        loop {
            match Client::connect_with(&self.url, &self.key, Role::Approver, &self.options).await {
                Ok(client) => {
                    self.client = client;
                    return Ok(());
                }
                Err(e) if tokio::time::Instant::now() >= give_up => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// The underlying connection, for tests that look at raw events.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Everything decided so far, by request id.
    pub fn decided(&self) -> &HashMap<RequestId, Decided> {
        &self.decided
    }

    /// Wait for the next pending request; other events are skipped.
    /// The request is verified here, as a console would.
    pub async fn next_request(&mut self) -> Result<(Signed<Request>, bool), ClientError> {
        loop {
            if let Event::Request {
                envelope,
                first_seen,
            } = self.client.next_event().await?
            {
                match envelope.open::<Request>() {
                    Ok(request) => return Ok((request, first_seen)),
                    Err(e) => {
                        return Err(ClientError::Protocol(format!(
                            "the relay passed on a request that does not verify: {e}"
                        )));
                    }
                }
            }
        }
    }

    /// The decision this approver makes for `request` under `choice`, signed.
    pub fn sign_decision(
        &self,
        request: &Signed<Request>,
        choice: &Choice,
    ) -> (Decision, Envelope) {
        let r = &request.payload;
        let grant = choice.grant.unwrap_or(r.grant);
        let now = now();
        let not_after = match grant {
            Grant::Once => Some(now + choice.ttl_s.unwrap_or(ONCE_WINDOW_S)),
            Grant::Timed => Some(now + choice.ttl_s.or(r.ttl_s).unwrap_or(TIMED_TTL_S)),
            Grant::Always => None,
        };
        let decision = Decision {
            v: V1,
            kind: KindDecision,
            request_id: r.id,
            request_sha256: request.sha256,
            verdict: choice.verdict,
            grant,
            not_before: now,
            not_after,
            cmd_sha256: r.cmd_sha256(),
            approver: self.name.clone(),
            console: self.console,
            decided_at: now,
            note: choice.note.clone(),
        };
        let envelope = Envelope::seal(&self.key, &decision);
        (decision, envelope)
    }

    /// Decide `request` and send the decision. A request decided before gets the same
    /// decision again.
    pub async fn decide(
        &mut self,
        request: Signed<Request>,
        first_seen: bool,
        choice: &Choice,
    ) -> Result<Decided, ClientError> {
        if let Some(previous) = self.decided.get(&request.payload.id) {
            let mut again = previous.clone();
            again.resent = true;
            self.client.decide(&again.envelope).await?;
            return Ok(again);
        }
        let (decision, envelope) = self.sign_decision(&request, choice);
        let bytes = envelope
            .payload_bytes_unverified()
            .expect("an envelope just sealed decodes");
        let decided = Decided {
            request,
            first_seen,
            decision,
            decision_sha256: sha256(&bytes),
            envelope,
            resent: false,
        };
        self.client.decide(&decided.envelope).await?;
        self.decided
            .insert(decided.request.payload.id, decided.clone());
        Ok(decided)
    }

    /// Decide pending requests as they come with `policy` (`None` leaves a request alone),
    /// until `count` new decisions were made (or forever with `None`). Calls `each` per
    /// decision, re-sent ones included.
    pub async fn run(
        &mut self,
        count: Option<usize>,
        mut policy: impl FnMut(&Request, bool) -> Option<Choice>,
        mut each: impl FnMut(&Decided),
    ) -> Result<usize, ClientError> {
        let mut made = 0;
        while count.is_none_or(|n| made < n) {
            let (request, first_seen) = self.next_request().await?;
            let choice = if self.decided.contains_key(&request.payload.id) {
                Choice::approve() // ignored: the earlier decision is re-sent
            } else {
                match policy(&request.payload, first_seen) {
                    Some(choice) => choice,
                    None => continue,
                }
            };
            let decided = self.decide(request, first_seen, &choice).await?;
            if !decided.resent {
                made += 1;
            }
            each(&decided);
        }
        Ok(made)
    }

    /// A status of this console issued now, revoking `revoked` (for ever), signed.
    pub fn sign_status(&self, revoked: &[Sha256Digest]) -> Envelope {
        let status = Status {
            v: V1,
            kind: KindStatus,
            approver: self.name.clone(),
            console: self.console,
            issued_at: now(),
            revoked: revoked
                .iter()
                .map(|&decision_sha256| Revocation {
                    decision_sha256,
                    until: None,
                })
                .collect(),
        };
        Envelope::seal(&self.key, &status)
    }

    /// Publish a fresh status revoking `revoked` (possibly none).
    pub async fn publish_status(
        &mut self,
        revoked: &[Sha256Digest],
    ) -> Result<Envelope, ClientError> {
        let status = self.sign_status(revoked);
        self.client.publish_status(&status).await?;
        Ok(status)
    }
}

/// `None`: leave requests alone (nobody is at the console).
pub type Policy = Option<Choice>;

/// What a [`BackgroundApprover`] has seen and done.
#[derive(Debug, Default)]
struct Seen {
    /// Every distinct request shown, in order.
    requests: Vec<Request>,
    /// Every decision made (re-sent ones not repeated).
    decisions: Vec<Decided>,
}

/// A [`ScriptedApprover`] on a thread of its own: it decides every request it is shown with
/// the current policy, reconnects whenever the relay goes away, and republishes its status on
/// every connection. Dropping it stops the thread.
pub struct BackgroundApprover {
    url: String,
    key: PrivateKey,
    policy: Arc<Mutex<Policy>>,
    seen: Arc<Mutex<Seen>>,
    /// The status to (re)publish on every connection.
    status: Arc<Mutex<Option<Envelope>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundApprover {
    /// Log in to `url` as approver "alice" with the OpenSSH key in `key_file`.
    pub fn start(url: String, key_file: &Path, policy: Policy) -> BackgroundApprover {
        let load = || {
            PrivateKey::from_openssh(&std::fs::read_to_string(key_file).unwrap())
                .expect("the approver key loads")
        };
        let mut approver = BackgroundApprover {
            url: url.clone(),
            key: load(),
            policy: Arc::new(Mutex::new(policy)),
            seen: Arc::default(),
            status: Arc::default(),
            stop: Arc::default(),
            thread: None,
        };
        let shared = (
            load(),
            approver.policy.clone(),
            approver.seen.clone(),
            approver.status.clone(),
            approver.stop.clone(),
        );
        approver.thread = Some(std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let (key, policy, seen, status, stop) = shared;
            runtime.block_on(approver_loop(url, key, policy, seen, status, stop));
        }));
        approver
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    pub fn set_policy(&self, policy: Policy) {
        *self.policy.lock().unwrap() = policy;
    }

    /// Publish `status` now and again on every reconnect.
    pub fn set_status(&self, status: Envelope) {
        *self.status.lock().unwrap() = Some(status);
    }

    /// Publish no status from now on, not even after a reconnect (a console that went away,
    /// or a restarted relay that has not heard from it yet).
    pub fn stop_publishing(&self) {
        *self.status.lock().unwrap() = None;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().requests.clone()
    }

    pub fn decisions(&self) -> Vec<Decided> {
        self.seen.lock().unwrap().decisions.clone()
    }
}

impl Drop for BackgroundApprover {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn approver_loop(
    url: String,
    key: PrivateKey,
    policy: Arc<Mutex<Policy>>,
    seen: Arc<Mutex<Seen>>,
    status: Arc<Mutex<Option<Envelope>>>,
    stop: Arc<AtomicBool>,
) {
    let mut approver = ScriptedApprover::connect(&url, key, "alice")
        .await
        .unwrap_or_else(|e| panic!("the scripted approver cannot log in to {url}: {e}"));
    let mut published: Option<Envelope> = None;
    while !stop.load(Ordering::SeqCst) {
        let wanted = status.lock().unwrap().clone();
        let result = async {
            if let Some(envelope) = wanted.as_ref().filter(|w| Some(*w) != published.as_ref()) {
                approver.client().publish_status(envelope).await?;
                published = wanted.clone();
            }
            // Short waits, so policy and status changes and `stop` are noticed promptly.
            let Ok(next) =
                tokio::time::timeout(Duration::from_millis(20), approver.next_request()).await
            else {
                return Ok(());
            };
            let (request, first_seen) = next?;
            {
                let mut seen = seen.lock().unwrap();
                if !seen.requests.iter().any(|r| r.id == request.payload.id) {
                    seen.requests.push(request.payload.clone());
                }
            }
            // A request decided before gets the same decision again (the choice is ignored).
            let choice = if approver.decided().contains_key(&request.payload.id) {
                Some(Choice::approve())
            } else {
                policy.lock().unwrap().clone()
            };
            if let Some(choice) = choice {
                let decided = approver.decide(request, first_seen, &choice).await?;
                if !decided.resent {
                    seen.lock().unwrap().decisions.push(decided);
                }
            }
            Ok::<(), ClientError>(())
        }
        .await;
        if result.is_err() {
            // The relay went away: log in again (a restarted relay forgot the status too),
            // unless the test is over.
            while !stop.load(Ordering::SeqCst) {
                if approver.reconnect(Duration::from_millis(200)).await.is_ok() {
                    break;
                }
            }
            published = None;
        }
    }
}
