//! assent protocol v1.1 (`docs/protocol.md`): OpenSSH Ed25519 keys, SSHSIG signatures under
//! one namespace per purpose, the signed envelope, the request / decision / status / withdraw /
//! login payloads, the ids they carry, the command hash and the grant token.
//!
//! This crate does no I/O beyond drawing randomness for new keys and ids, and holds no policy:
//! whether a correctly signed decision may be used is the elevator's question. The one place
//! that verifies a signature is [`Envelope::open`]; everything else receives typed values that
//! have already passed it. ([`Envelope::claim`] parses without verifying, for routing only;
//! its [`Claimed`] result says so in its name.)
#![forbid(unsafe_code)]

mod b64;
pub mod cmd;
mod digest;
mod envelope;
mod error;
mod hex;
mod id;
pub mod key;
pub mod payload;
pub mod sshsig;
mod token;
mod wire;

pub use cmd::{CommandLine, cmd_sha256};
pub use digest::{ItemHasher, REFERENCE_LEN, Sha256Digest, sha256};
pub use envelope::{Claimed, Envelope, MAX_PAYLOAD_LEN, Signed};
pub use error::Error;
pub use id::{ConsoleId, HostId, RequestId};
pub use key::{ClaimedKey, Fingerprint, PrivateKey, PublicKey};
pub use payload::{
    Decision, Env, Grant, Login, Payload, Request, Revocation, Revocations, Role, Status, Verdict,
    Withdraw,
};
pub use sshsig::Namespace;
pub use token::{GrantToken, MAX_TOKEN_LEN, OpenedGrant};

/// Fill `buf` from the operating system's CSPRNG.
///
/// # Panics
/// If the kernel cannot supply randomness, which leaves no safe way to continue.
pub fn random_bytes(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}
