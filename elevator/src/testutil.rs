//! Test helpers: private temporary directories, seeded keys and signed grants.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use assent_protocol::payload::{KindDecision, KindRequest, KindStatus, V1};
use assent_protocol::{
    ConsoleId, Decision, Env, Envelope, Grant, GrantToken, HostId, OpenedGrant, Payload as _,
    PrivateKey, Request, RequestId, Revocations, Status, Verdict, sha256,
};

use crate::config::{Approver, Config, Requester, Settings};
use crate::identity::{Caller, Target};

/// The fixed "now" of the test grants (unix seconds).
pub const NOW: u64 = 1_763_770_010;

/// The host id of mini.local, the host the test requests are for.
pub const HOST_ID_HERE: HostId = HostId([0x3f; 16]);

/// The console alice approves from.
pub const CONSOLE_HERE: ConsoleId = ConsoleId([0xc0; 16]);

/// Panic (never skip) when a test that needs root runs as someone else.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (it creates root-owned files and changes owners); run cargo test as root"
    );
}

/// A private (root, 0700) directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        require_root();
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "assent-elevate-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A target user with no name in the user database and no file of its own: uid and gid 4242.
pub fn stranger() -> Target {
    Target {
        name: "stranger".into(),
        uid: 4242,
        gid: 4242,
        home: "/".into(),
        shell: "/bin/sh".into(),
        groups: vec![4242],
    }
}

pub fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), None).unwrap();
}

/// Approver key number `n` (deterministic).
pub fn approver_key(n: u8) -> PrivateKey {
    PrivateKey::from_seed(&[n; 32], &format!("approver{n}@test"))
}

pub fn agent_key() -> PrivateKey {
    PrivateKey::from_seed(&[200; 32], "openclaw@test")
}

/// alice (key 1) and bob (key 2) approve; openclaw may become root.
pub fn config() -> Config {
    Config {
        approvers: vec![
            Approver {
                name: "alice".into(),
                key: approver_key(1).public(),
            },
            Approver {
                name: "bob".into(),
                key: approver_key(2).public(),
            },
        ],
        requesters: vec![Requester {
            user: "openclaw".into(),
            run_as: vec!["root".into()],
        }],
        settings: Settings::default(),
    }
}

pub fn caller() -> Caller {
    Caller {
        uid: 1001,
        gid: 1001,
        name: Some("openclaw".into()),
    }
}

/// A request, a decision on it and an optional status, with the keys that sign them.
pub struct Fixture {
    pub agent: PrivateKey,
    pub approver: PrivateKey,
    pub status_key: PrivateKey,
    pub request: Request,
    pub decision: Decision,
    pub status: Option<Status>,
}

/// openclaw on mini.local asks for `apt-get upgrade` as root; alice approves once.
pub fn fixture() -> Fixture {
    let request = Request {
        v: V1,
        kind: KindRequest,
        id: RequestId([0x11; 16]),
        agent: "openclaw".into(),
        host: "mini.local".into(),
        host_id: HOST_ID_HERE,
        user: "openclaw".into(),
        uid: 1001,
        run_as: "root".into(),
        program: "/usr/bin/apt-get".into(),
        program_sha256: sha256(b"apt-get binary"),
        argv: vec!["apt-get".into(), "upgrade".into()],
        cwd: "/home/openclaw/work".into(),
        env: Env([("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string())].into()),
        reason: "security patch".into(),
        grant: Grant::Once,
        ttl_s: None,
        created_at: NOW - 10,
        expires_at: NOW + 290,
    };
    let decision = Decision {
        v: V1,
        kind: KindDecision,
        request_id: request.id,
        request_sha256: sha256(&request.to_bytes()),
        verdict: Verdict::Approve,
        grant: Grant::Once,
        not_before: NOW,
        not_after: Some(NOW + 120),
        cmd_sha256: request.cmd_sha256(),
        approver: "alice".into(),
        console: CONSOLE_HERE,
        decided_at: NOW,
        note: None,
    };
    Fixture {
        agent: agent_key(),
        approver: approver_key(1),
        status_key: approver_key(1),
        request,
        decision,
        status: None,
    }
}

impl Fixture {
    /// Make the decision cover the (changed) request again.
    pub fn bind(&mut self) {
        self.decision.request_id = self.request.id;
        self.decision.request_sha256 = sha256(&self.request.to_bytes());
        self.decision.cmd_sha256 = self.request.cmd_sha256();
    }

    /// Turn the grant into a timed (one hour) or always grant with a fresh status.
    pub fn reusable(mut self, grant: Grant) -> Fixture {
        self.decision.grant = grant;
        self.decision.not_after = match grant {
            Grant::Always => None,
            _ => Some(NOW + 3600),
        };
        self.status = Some(Status {
            v: V1,
            kind: KindStatus,
            approver: "alice".into(),
            console: CONSOLE_HERE,
            issued_at: NOW,
            revoked: Revocations::new(),
        });
        self
    }

    pub fn token(&self) -> GrantToken {
        GrantToken {
            request: Envelope::seal(&self.agent, &self.request),
            decision: Envelope::seal(&self.approver, &self.decision),
            status: self
                .status
                .as_ref()
                .map(|s| Envelope::seal(&self.status_key, s)),
        }
    }

    pub fn opened(&self) -> OpenedGrant {
        self.token().open().expect("fixture grants verify")
    }
}
