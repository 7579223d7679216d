//! Deterministic fixtures for tests, snapshots and the frame bench: seeded keys, fixed clocks.
#![doc(hidden)]

use std::collections::BTreeMap;

use assent_protocol::payload::{KindRequest, V1};
use assent_protocol::{
    ConsoleId, Env, Envelope, Grant, HostId, PrivateKey, Request, RequestId, Sha256Digest, Signed,
};

/// The fixed "now" of every snapshot: 2025-11-22 00:06:40 UTC.
pub const NOW: u64 = 1_763_770_000;

/// The host id of mini.local, the host the test requests are for.
pub const HOST_ID: HostId = HostId([0x3f; 16]);

/// The console of the approver in tests.
pub const CONSOLE: ConsoleId = ConsoleId([0xc0; 16]);

pub fn agent_key(n: u8) -> PrivateKey {
    PrivateKey::from_seed(&[n; 32], &format!("agent{n}@test"))
}

pub fn approver_key() -> PrivateKey {
    PrivateKey::from_seed(&[200; 32], "alice@laptop")
}

/// An unsigned request for `argv` (words split on spaces) with `env`.
pub fn request(argv: &str, env: &[(&str, &str)]) -> Request {
    let argv: Vec<String> = argv.split(' ').map(str::to_string).collect();
    Request {
        v: V1,
        kind: KindRequest,
        id: RequestId([7; 16]),
        agent: "openclaw".into(),
        host: "mini.local".into(),
        host_id: HOST_ID,
        user: "openclaw".into(),
        uid: 1001,
        run_as: "root".into(),
        program: format!("/usr/bin/{}", argv[0]),
        program_sha256: Sha256Digest([0xab; 32]),
        argv,
        cwd: "/home/openclaw/work".into(),
        env: Env(env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()),
        reason: "security patch".into(),
        grant: Grant::Once,
        ttl_s: None,
        created_at: NOW - 20,
        expires_at: NOW + 280,
    }
}

/// Request `n` of a series: distinct id, signed by agent key `key`.
pub fn signed(mut request: Request, n: u32, key: u8) -> Signed<Request> {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id[15] = 0x5a;
    request.id = RequestId(id);
    Envelope::seal(&agent_key(key), &request)
        .open()
        .expect("a freshly sealed request opens")
}
