//! Builders for signed requests, decisions, statuses and grant tokens, with sensible defaults
//! and a setter for every field — and helpers that make deliberately wrong ones.
//!
//! Everything is signed through `assent_protocol::Envelope::seal` / `seal_bytes`; nothing here
//! verifies anything. The binaries under test are the only judges.

use std::path::Path;

use assent_protocol::payload::{KindDecision, KindRequest, KindStatus, V1};
use assent_protocol::{
    CommandLine, ConsoleId, Decision, Env, Envelope, Grant, GrantToken, HostId, Namespace, Payload,
    PrivateKey, Request, RequestId, Revocation, Revocations, Sha256Digest, Status, Verdict,
    cmd_sha256, sha256,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::users::TestUser;

/// Default window of a `once` grant: well inside the default `once_window_s` of 120.
pub const ONCE_WINDOW_S: u64 = 60;
/// Default `ttl_s` of a `timed` request.
pub const TIMED_TTL_S: u64 = 3600;

/// The console that test decisions and statuses come from unless a test names another.
pub const TEST_CONSOLE: ConsoleId = ConsoleId([0xc0; 16]);

/// A payload, the envelope that signs it, and the exact signed bytes.
#[derive(Debug, Clone)]
pub struct Sealed<T> {
    pub payload: T,
    pub envelope: Envelope,
    /// The payload bytes inside the envelope.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes` (`request_sha256` / `decision_sha256`).
    pub sha256: Sha256Digest,
}

pub type SignedRequest = Sealed<Request>;
pub type SignedDecision = Sealed<Decision>;
pub type SignedStatus = Sealed<Status>;

impl<T> Sealed<T> {
    fn new(payload: T, envelope: Envelope) -> Self {
        let bytes = envelope
            .payload_bytes_unverified()
            .expect("an envelope just sealed decodes");
        Sealed {
            payload,
            sha256: sha256(&bytes),
            bytes,
            envelope,
        }
    }
}

fn hash_file(path: &Path) -> Sha256Digest {
    let bytes = std::fs::read(path)
        .unwrap_or_else(|e| panic!("cannot read program {} to hash it: {e}", path.display()));
    sha256(&bytes)
}

fn path_str(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A request (`docs/protocol.md`). Defaults: a fresh random id, agent `test-agent`, this host
/// (its hostname and the sandboxes' default host id), the current user, run_as `root`, cwd
/// `/`, no env, reason `end-to-end test`, a `once` grant, created now, expiring in 5 minutes.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    request: Request,
}

impl RequestBuilder {
    /// A request to run `program` (hashed from the real file now) with `argv` (argv[0] kept).
    pub fn new(program: impl AsRef<Path>, argv: &[&str]) -> RequestBuilder {
        let program = program.as_ref();
        let me = TestUser::current();
        let now = crate::now();
        RequestBuilder {
            request: Request {
                v: V1,
                kind: KindRequest,
                id: RequestId::random(),
                agent: "test-agent".into(),
                host: crate::hostname(),
                host_id: crate::sandbox::DEFAULT_HOST_ID,
                user: me.name,
                uid: me.uid,
                run_as: "root".into(),
                program: path_str(program).to_owned(),
                program_sha256: hash_file(program),
                argv: strings(argv),
                cwd: "/".into(),
                env: Env::default(),
                reason: "end-to-end test".into(),
                grant: Grant::Once,
                ttl_s: None,
                created_at: now,
                expires_at: now + 300,
            },
        }
    }

    pub fn id(mut self, id: RequestId) -> Self {
        self.request.id = id;
        self
    }
    pub fn agent(mut self, name: &str) -> Self {
        self.request.agent = name.into();
        self
    }
    pub fn host(mut self, host: &str) -> Self {
        self.request.host = host.into();
        self
    }
    pub fn host_id(mut self, id: HostId) -> Self {
        self.request.host_id = id;
        self
    }
    pub fn user(mut self, name: &str) -> Self {
        self.request.user = name.into();
        self
    }
    pub fn uid(mut self, uid: u32) -> Self {
        self.request.uid = uid;
        self
    }
    /// Sets both `user` and `uid`.
    pub fn requester(self, user: &TestUser) -> Self {
        self.user(&user.name).uid(user.uid)
    }
    pub fn run_as(mut self, user: &str) -> Self {
        self.request.run_as = user.into();
        self
    }
    /// Sets `program` and hashes that file now.
    pub fn program(mut self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        self.request.program = path_str(path).to_owned();
        self.request.program_sha256 = hash_file(path);
        self
    }
    /// Sets `program` without touching `program_sha256`.
    pub fn program_path_only(mut self, path: &str) -> Self {
        self.request.program = path.into();
        self
    }
    pub fn program_sha256(mut self, digest: Sha256Digest) -> Self {
        self.request.program_sha256 = digest;
        self
    }
    pub fn argv(mut self, argv: &[&str]) -> Self {
        self.request.argv = strings(argv);
        self
    }
    pub fn cwd(mut self, cwd: impl AsRef<Path>) -> Self {
        self.request.cwd = path_str(cwd.as_ref()).to_owned();
        self
    }
    /// Adds (or replaces) one approved environment entry.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.request.env.0.insert(key.into(), value.into());
        self
    }
    pub fn clear_env(mut self) -> Self {
        self.request.env = Env::default();
        self
    }
    pub fn reason(mut self, reason: &str) -> Self {
        self.request.reason = reason.into();
        self
    }
    /// Sets the requested grant type; `ttl_s` follows it (3600 for timed, else null).
    pub fn grant(mut self, grant: Grant) -> Self {
        self.request.grant = grant;
        self.request.ttl_s = (grant == Grant::Timed).then_some(TIMED_TTL_S);
        self
    }
    pub fn ttl_s(mut self, ttl: Option<u64>) -> Self {
        self.request.ttl_s = ttl;
        self
    }
    /// A timed request for `ttl` seconds.
    pub fn timed(self, ttl: u64) -> Self {
        self.grant(Grant::Timed).ttl_s(Some(ttl))
    }
    pub fn created_at(mut self, t: u64) -> Self {
        self.request.created_at = t;
        self
    }
    pub fn expires_at(mut self, t: u64) -> Self {
        self.request.expires_at = t;
        self
    }

    pub fn payload(&self) -> &Request {
        &self.request
    }

    pub fn build(self) -> Request {
        self.request
    }

    /// Sign with the agent's key under `request@assent`.
    pub fn sign(self, key: &PrivateKey) -> SignedRequest {
        let envelope = Envelope::seal(key, &self.request);
        Sealed::new(self.request, envelope)
    }

    /// Sign the payload bytes under any namespace (deliberately wrong ones included).
    pub fn sign_under(self, key: &PrivateKey, namespace: Namespace) -> SignedRequest {
        let envelope = Envelope::seal_bytes(key, namespace, &self.request.to_bytes());
        Sealed::new(self.request, envelope)
    }
}

/// A decision on one signed request. Defaults: approved by `alice` on [`TEST_CONSOLE`] now,
/// for the requested grant type, bound to the request by id and hash and to its command by
/// `cmd_sha256`; `once` valid for 60 s, `timed` for the requested `ttl_s`, `always` open-ended.
#[derive(Debug, Clone)]
pub struct DecisionBuilder {
    decision: Decision,
    ttl_s: Option<u64>,
}

impl DecisionBuilder {
    pub fn approve(request: &SignedRequest) -> DecisionBuilder {
        let now = crate::now();
        let r = &request.payload;
        let mut builder = DecisionBuilder {
            decision: Decision {
                v: V1,
                kind: KindDecision,
                request_id: r.id,
                request_sha256: request.sha256,
                verdict: Verdict::Approve,
                grant: r.grant,
                not_before: now,
                not_after: None,
                cmd_sha256: r.cmd_sha256(),
                approver: "alice".into(),
                console: TEST_CONSOLE,
                decided_at: now,
                note: None,
            },
            ttl_s: r.ttl_s,
        };
        builder.decision.not_after = builder.default_not_after(r.grant);
        builder
    }

    pub fn deny(request: &SignedRequest, note: Option<&str>) -> DecisionBuilder {
        DecisionBuilder::approve(request)
            .verdict(Verdict::Deny)
            .note(note)
    }

    fn default_not_after(&self, grant: Grant) -> Option<u64> {
        let start = self.decision.not_before;
        match grant {
            Grant::Once => Some(start + ONCE_WINDOW_S),
            Grant::Timed => Some(start + self.ttl_s.unwrap_or(TIMED_TTL_S)),
            Grant::Always => None,
        }
    }

    pub fn request_id(mut self, id: RequestId) -> Self {
        self.decision.request_id = id;
        self
    }
    pub fn request_sha256(mut self, digest: Sha256Digest) -> Self {
        self.decision.request_sha256 = digest;
        self
    }
    pub fn verdict(mut self, verdict: Verdict) -> Self {
        self.decision.verdict = verdict;
        self
    }
    /// Overrides the grant type; `not_after` follows it (set it afterwards to change it).
    pub fn grant(mut self, grant: Grant) -> Self {
        self.decision.grant = grant;
        self.decision.not_after = self.default_not_after(grant);
        self
    }
    /// A timed grant for `ttl` seconds from `not_before`.
    pub fn timed(mut self, ttl: u64) -> Self {
        self.ttl_s = Some(ttl);
        self.grant(Grant::Timed)
    }
    pub fn not_before(mut self, t: u64) -> Self {
        self.decision.not_before = t;
        self
    }
    pub fn not_after(mut self, t: Option<u64>) -> Self {
        self.decision.not_after = t;
        self
    }
    /// Both ends of the validity window.
    pub fn window(self, not_before: u64, not_after: u64) -> Self {
        self.not_before(not_before).not_after(Some(not_after))
    }
    pub fn cmd_sha256(mut self, digest: Sha256Digest) -> Self {
        self.decision.cmd_sha256 = digest;
        self
    }
    /// Binds the decision to another command than the request's.
    pub fn cmd_for(self, cmd: &CommandLine<'_>) -> Self {
        self.cmd_sha256(cmd_sha256(cmd))
    }
    pub fn approver(mut self, name: &str) -> Self {
        self.decision.approver = name.into();
        self
    }
    pub fn console(mut self, console: ConsoleId) -> Self {
        self.decision.console = console;
        self
    }
    pub fn decided_at(mut self, t: u64) -> Self {
        self.decision.decided_at = t;
        self
    }
    pub fn note(mut self, note: Option<&str>) -> Self {
        self.decision.note = note.map(str::to_owned);
        self
    }

    pub fn payload(&self) -> &Decision {
        &self.decision
    }

    pub fn build(self) -> Decision {
        self.decision
    }

    /// Sign with an approver's key under `decision@assent`.
    pub fn sign(self, key: &PrivateKey) -> SignedDecision {
        let envelope = Envelope::seal(key, &self.decision);
        Sealed::new(self.decision, envelope)
    }

    /// Sign the decision bytes under another namespace, e.g. `Namespace::Status`.
    pub fn sign_under(self, key: &PrivateKey, namespace: Namespace) -> SignedDecision {
        let envelope = Envelope::seal_bytes(key, namespace, &self.decision.to_bytes());
        Sealed::new(self.decision, envelope)
    }
}

/// An approver's status. Defaults: approver `alice` on [`TEST_CONSOLE`], issued now, nothing
/// revoked.
#[derive(Debug, Clone)]
pub struct StatusBuilder {
    status: Status,
}

impl StatusBuilder {
    pub fn new(approver: &str) -> StatusBuilder {
        StatusBuilder {
            status: Status {
                v: V1,
                kind: KindStatus,
                approver: approver.into(),
                console: TEST_CONSOLE,
                issued_at: crate::now(),
                revoked: Revocations::new(),
            },
        }
    }

    pub fn approver(mut self, name: &str) -> Self {
        self.status.approver = name.into();
        self
    }
    pub fn issued_at(mut self, t: u64) -> Self {
        self.status.issued_at = t;
        self
    }
    pub fn console(mut self, console: ConsoleId) -> Self {
        self.status.console = console;
        self
    }
    /// Adds one revoked `decision_sha256`, listed for ever (as for an always grant).
    pub fn revoke(self, decision_sha256: Sha256Digest) -> Self {
        self.revoke_until(decision_sha256, None)
    }
    /// Adds one revoked `decision_sha256`, listed `until` then (the grant's `not_after`).
    pub fn revoke_until(mut self, decision_sha256: Sha256Digest, until: Option<u64>) -> Self {
        self.status.revoked.insert(Revocation {
            decision_sha256,
            until,
        });
        self
    }

    pub fn payload(&self) -> &Status {
        &self.status
    }

    pub fn sign(self, key: &PrivateKey) -> SignedStatus {
        let envelope = Envelope::seal(key, &self.status);
        Sealed::new(self.status, envelope)
    }

    pub fn sign_under(self, key: &PrivateKey, namespace: Namespace) -> SignedStatus {
        let envelope = Envelope::seal_bytes(key, namespace, &self.status.to_bytes());
        Sealed::new(self.status, envelope)
    }
}

/// A grant token (SPEC §4.8) from three envelopes.
#[derive(Debug, Clone)]
pub struct TokenBuilder {
    token: GrantToken,
}

impl TokenBuilder {
    pub fn new(request: &SignedRequest, decision: &SignedDecision) -> TokenBuilder {
        TokenBuilder::from_envelopes(request.envelope.clone(), decision.envelope.clone(), None)
    }

    pub fn from_envelopes(
        request: Envelope,
        decision: Envelope,
        status: Option<Envelope>,
    ) -> TokenBuilder {
        TokenBuilder {
            token: GrantToken {
                request,
                decision,
                status,
            },
        }
    }

    pub fn status(mut self, status: &SignedStatus) -> Self {
        self.token.status = Some(status.envelope.clone());
        self
    }
    pub fn status_envelope(mut self, status: Option<Envelope>) -> Self {
        self.token.status = status;
        self
    }
    pub fn request_envelope(mut self, request: Envelope) -> Self {
        self.token.request = request;
        self
    }
    pub fn decision_envelope(mut self, decision: Envelope) -> Self {
        self.token.decision = decision;
        self
    }

    pub fn build(self) -> GrantToken {
        self.token
    }

    /// The token as the shim hands it to the elevator.
    pub fn encode(&self) -> String {
        self.token.encode()
    }
}

/// The envelope with bit 0 of payload byte `index` (modulo the length) flipped; the signature
/// is left as it was.
pub fn flip_payload_byte(envelope: &Envelope, index: usize) -> Envelope {
    Envelope {
        payload: flip_b64_byte(&envelope.payload, index),
        sig: envelope.sig.clone(),
    }
}

/// The envelope with bit 0 of signature-blob byte `index` (modulo the length) flipped.
pub fn flip_sig_byte(envelope: &Envelope, index: usize) -> Envelope {
    Envelope {
        payload: envelope.payload.clone(),
        sig: flip_b64_byte(&envelope.sig, index),
    }
}

/// Length of the envelope's binary SSHSIG blob (the Ed25519 signature is its last 64 bytes).
pub fn sig_len(envelope: &Envelope) -> usize {
    STANDARD
        .decode(&envelope.sig)
        .expect("the envelope's sig is standard base64")
        .len()
}

fn flip_b64_byte(text: &str, index: usize) -> String {
    let mut bytes = STANDARD
        .decode(text)
        .expect("the envelope field is standard base64");
    assert!(!bytes.is_empty(), "nothing to tamper with");
    let i = index % bytes.len();
    bytes[i] ^= 0x01;
    STANDARD.encode(bytes)
}

/// The token with one byte of its decoded JSON changed (bit 0 of byte `index`, modulo the
/// length), re-encoded: one tampered byte anywhere in the token.
pub fn flip_token_byte(token: &str, index: usize) -> String {
    flip_b64_byte(token, index)
}
