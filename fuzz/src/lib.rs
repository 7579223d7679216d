//! Helpers shared by the fuzz targets: fixed keys, the sealed-input convention and the
//! round-trip checks.
//!
//! Random bytes almost never carry a valid Ed25519 signature, so a target that only fed them
//! to the verifiers would never reach the code behind a signature check. The targets
//! therefore also *sign* fuzzer-chosen payload bytes with fixed keys: an input that contains
//! the byte [`SEP`] (which never occurs in UTF-8 text) is split at it into payloads that are
//! sealed before they are handed on.
#![forbid(unsafe_code)]

use std::fmt::Debug;
use std::sync::OnceLock;

use assent_protocol::{Envelope, Namespace, Payload, PrivateKey, PublicKey};

/// Splits a sealed input into its payloads. 0xFF is not valid anywhere in UTF-8.
pub const SEP: u8 = 0xFF;

/// In a sealed decision, replaced by the SHA-256 of the sealed request payload bytes.
pub const REQUEST_SHA256_MARK: &[u8] = b"@REQUEST_SHA256@";
/// In a sealed decision, replaced by the request's command hash (SPEC §4.7).
pub const CMD_SHA256_MARK: &[u8] = b"@CMD_SHA256@";
/// In a sealed status, replaced by the SHA-256 of the sealed decision payload bytes.
pub const DECISION_SHA256_MARK: &[u8] = b"@DECISION_SHA256@";

/// The nonce every `Login` in the seeds and the relay target signs.
pub const NONCE: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// The host name the elevator target pretends to run on.
pub const HOST: &str = "fuzz-host";
/// The host id of that host (the seeds' requests name it).
pub const HOST_ID: assent_protocol::HostId = assent_protocol::HostId([0xf2; 16]);
/// The calling user the elevator target pretends to be.
pub const CALLER_UID: u32 = 1000;
pub const CALLER_NAME: &str = "agent";
/// The approver's name in the fixed configurations.
pub const APPROVER_NAME: &str = "alice";

/// The agent's fixed key (signs requests and logins).
pub fn agent_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::from_seed(&[0xA6; 32], "agent@fuzz"))
}

/// The approver's fixed key (signs decisions and statuses).
pub fn approver_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::from_seed(&[0xA7; 32], "alice@fuzz"))
}

pub fn approver_public() -> PublicKey {
    approver_key().public()
}

/// The fuzz input split at [`SEP`], when it has one.
pub fn sealed_parts(data: &[u8]) -> Option<Vec<&[u8]>> {
    data.contains(&SEP)
        .then(|| data.split(|b| *b == SEP).collect())
}

/// `bytes` with every `mark` replaced by `with`.
pub fn replace(bytes: &[u8], mark: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = rest.windows(mark.len()).position(|w| w == mark) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + mark.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Seal `bytes` under `T`'s namespace with `key`.
pub fn seal<T: Payload>(key: &PrivateKey, bytes: &[u8]) -> Envelope {
    Envelope::seal_bytes(key, T::NAMESPACE, bytes)
}

/// Parse `bytes` as a `T`; when it parses, serialising and parsing again must give the same
/// value and the same bytes.
pub fn payload_round_trip<T: Payload + PartialEq + Debug>(bytes: &[u8]) -> Option<T> {
    let value = T::from_bytes(bytes).ok()?;
    let again = value.to_bytes();
    let reparsed = T::from_bytes(&again).unwrap_or_else(|e| {
        panic!(
            "a parsed {} does not parse again after serialising: {e}\n{}",
            T::KIND,
            String::from_utf8_lossy(&again)
        )
    });
    assert_eq!(reparsed, value, "{} changed across a round trip", T::KIND);
    assert_eq!(
        reparsed.to_bytes(),
        again,
        "{} serialises differently after a round trip",
        T::KIND
    );
    Some(value)
}

/// A namespace other than `ns`, to check that signatures do not cross namespaces.
pub fn other_namespace(ns: Namespace) -> Namespace {
    let i = Namespace::ALL.iter().position(|n| *n == ns).unwrap_or(0);
    Namespace::ALL[(i + 1) % Namespace::ALL.len()]
}
