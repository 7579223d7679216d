//! SSHSIG (OpenSSH `PROTOCOL.sshsig`) signatures over payload bytes, hash `sha512`, with one
//! namespace per purpose (SPEC §4.2). The binary blob is what the envelope carries; the
//! armoured form is what `ssh-keygen -Y sign` writes and `-Y verify` reads.

use ed25519_dalek::{Signature, Signer as _};
use sha2::Digest as _;

use crate::key::{self, ClaimedKey, KEY_TYPE};
use crate::wire::{Reader, Writer};
use crate::{Error, PrivateKey, PublicKey, b64};

const MAGIC: &[u8; 6] = b"SSHSIG";
const VERSION: u32 = 1;
const HASH: &str = "sha512";
const ARMOR_BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
const ARMOR_END: &str = "-----END SSH SIGNATURE-----";

/// What a signature is for. A signature made under one never verifies under another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Namespace {
    Request,
    Decision,
    Status,
    RelayAuth,
    Withdraw,
}

impl Namespace {
    pub const ALL: [Namespace; 5] = [
        Namespace::Request,
        Namespace::Decision,
        Namespace::Status,
        Namespace::RelayAuth,
        Namespace::Withdraw,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::Request => "request@assent",
            Namespace::Decision => "decision@assent",
            Namespace::Status => "status@assent",
            Namespace::RelayAuth => "relay-auth@assent",
            Namespace::Withdraw => "withdraw@assent",
        }
    }
}

/// The bytes the Ed25519 signature covers: the magic preamble, namespace, reserved, hash
/// algorithm and the SHA-512 of the message.
fn signed_data(namespace: &[u8], message: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    w.raw(MAGIC).string(namespace).string("").string(HASH);
    w.string(sha2::Sha512::digest(message));
    w.0
}

/// Sign `message` under `namespace`; returns the binary SSHSIG blob.
pub(crate) fn sign(key: &PrivateKey, namespace: Namespace, message: &[u8]) -> Vec<u8> {
    let ns = namespace.as_str();
    let signature = key.signing_key().sign(&signed_data(ns.as_bytes(), message));
    let mut inner = Writer::default();
    inner.string(KEY_TYPE).string(signature.to_bytes());

    let mut w = Writer::default();
    w.raw(MAGIC)
        .u32(VERSION)
        .string(key.public().blob())
        .string(ns)
        .string("")
        .string(HASH);
    w.string(inner.0);
    w.0
}

/// A well-formed SSHSIG blob for one namespace, taken apart but not yet checked.
struct Parts<'a> {
    /// The signer's raw key, not yet checked to be a valid point.
    signer: &'a [u8; 32],
    namespace: &'a [u8],
    signature: &'a [u8; 64],
}

/// Take a binary SSHSIG blob apart and check its form: magic, version, an Ed25519 signer key,
/// `namespace`, an empty reserved field, hash `sha512`, and one 64-byte Ed25519 signature with
/// nothing after it. Neither the signature nor the key's point is checked here (decoding the
/// point costs a quarter of a verification).
fn parse(blob: &[u8], namespace: Namespace) -> Result<Parts<'_>, Error> {
    let bad = |why: &str| Error::SignatureFormat(why.to_owned());
    let truncated = || bad("truncated");
    let mut r = Reader::new(blob);
    if r.raw(MAGIC.len()) != Some(&MAGIC[..]) {
        return Err(bad("it does not start with SSHSIG"));
    }
    if r.u32() != Some(VERSION) {
        return Err(bad("unsupported SSHSIG version"));
    }
    let signer = key::raw_from_blob(r.string().ok_or_else(truncated)?)?;
    let ns = r.string().ok_or_else(truncated)?;
    let reserved = r.string().ok_or_else(truncated)?;
    let hash = r.string().ok_or_else(truncated)?;
    let inner = r.string().ok_or_else(truncated)?;
    if !r.is_empty() {
        return Err(bad("trailing bytes"));
    }
    if ns != namespace.as_str().as_bytes() {
        return Err(Error::WrongNamespace {
            expected: namespace.as_str().to_owned(),
            found: String::from_utf8_lossy(ns).chars().take(64).collect(),
        });
    }
    if !reserved.is_empty() {
        return Err(bad("the reserved field is not empty"));
    }
    if hash != HASH.as_bytes() {
        return Err(bad("hash algorithm must be sha512"));
    }
    let mut sig = Reader::new(inner);
    if sig.string() != Some(KEY_TYPE.as_bytes()) {
        return Err(bad("signature type is not ssh-ed25519"));
    }
    let signature: &[u8; 64] = sig
        .string()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| bad("an Ed25519 signature is 64 bytes"))?;
    if !sig.is_empty() {
        return Err(bad("trailing bytes in the signature"));
    }
    Ok(Parts {
        signer,
        namespace: ns,
        signature,
    })
}

/// Verify a binary SSHSIG blob over `message` under `namespace`; returns the signer's key.
///
/// Crate-private: outside this crate, signatures are checked only through
/// [`crate::Envelope::open`] (and the armoured helpers used for interop).
pub(crate) fn verify(
    blob: &[u8],
    namespace: Namespace,
    message: &[u8],
) -> Result<PublicKey, Error> {
    let parts = parse(blob, namespace)?;
    let signer = PublicKey::from_raw(parts.signer)?;
    check(&signer, &parts, message)?;
    Ok(signer)
}

fn check(key: &PublicKey, parts: &Parts<'_>, message: &[u8]) -> Result<(), Error> {
    Prepared::new(key, parts, message).strict()
}

/// One signature ready for Ed25519: the key to check it with, the bytes it covers, and the
/// signature itself.
struct Prepared<'a> {
    key: &'a PublicKey,
    data: Vec<u8>,
    signature: Signature,
}

impl<'a> Prepared<'a> {
    fn new(key: &'a PublicKey, parts: &Parts<'_>, message: &[u8]) -> Prepared<'a> {
        Prepared {
            key,
            data: signed_data(parts.namespace, message),
            signature: Signature::from_bytes(parts.signature),
        }
    }

    /// The one strict check every signature gets alone.
    fn strict(&self) -> Result<(), Error> {
        self.key
            .verifying_key()
            .verify_strict(&self.data, &self.signature)
            .map_err(|_| Error::BadSignature)
    }
}

/// One signature for [`verify_all_with`]: `blob` over `message`, checked with `key`.
pub(crate) struct Check<'a> {
    pub key: &'a PublicKey,
    pub blob: &'a [u8],
    pub message: &'a [u8],
}

/// Verify each of `checks` under `namespace` with its own key, whatever key its blob names (a
/// signature by another key does not verify: Ed25519 hashes the signer's key into what it
/// signs); the results in order. With the `batch` feature, the well-formed
/// ones (two or more) are first checked together (`ed25519_dalek::verify_batch`: one
/// multiscalar multiplication instead of one double-base multiplication each); only if that
/// fails is each checked alone, so a bad signature costs its batch the time of the attempt.
///
/// A batch holds exactly when every signature verifies as `verify_strict` has it, except with
/// probability at most 1/8 for a signature whose `R` differs from a valid one by a point of
/// small order. Making one needs that valid signature from `key`'s holder, since the batch
/// equation is the cofactored one's prime-order part. A small-order (weak) key, with which
/// anyone could pass that equation, is never batched: `verify_strict` refuses it.
pub(crate) fn verify_all_with(
    checks: &[Check<'_>],
    namespace: Namespace,
) -> Vec<Result<(), Error>> {
    let mut results = Vec::with_capacity(checks.len());
    // The well-formed ones, and where each stands in `checks`.
    let (mut at, mut well_formed) = (Vec::new(), Vec::new());
    for (i, c) in checks.iter().enumerate() {
        match parse(c.blob, namespace) {
            Ok(parts) => {
                results.push(Ok(()));
                at.push(i);
                well_formed.push(Prepared::new(c.key, &parts, c.message));
            }
            Err(e) => results.push(Err(e)),
        }
    }
    if batch_holds(&well_formed) {
        return results;
    }
    for (i, prepared) in at.into_iter().zip(&well_formed) {
        results[i] = prepared.strict();
    }
    results
}

/// Whether the batch check passes for all of `signed` at once (never for fewer than two).
#[cfg(feature = "batch")]
fn batch_holds(signed: &[Prepared<'_>]) -> bool {
    if signed.len() < 2 || signed.iter().any(|p| p.key.verifying_key().is_weak()) {
        return false;
    }
    let messages: Vec<&[u8]> = signed.iter().map(|p| p.data.as_slice()).collect();
    let signatures: Vec<Signature> = signed.iter().map(|p| p.signature).collect();
    let keys: Vec<_> = signed.iter().map(|p| *p.key.verifying_key()).collect();
    ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
}

#[cfg(not(feature = "batch"))]
fn batch_holds(_: &[Prepared<'_>]) -> bool {
    false
}

/// The key a well-formed SSHSIG blob for `namespace` *names* as its signer, WITHOUT checking
/// the signature. Only for [`crate::Envelope::claim`]; the key proves nothing on its own.
pub(crate) fn claimed_signer(blob: &[u8], namespace: Namespace) -> Result<ClaimedKey, Error> {
    parse(blob, namespace).map(|parts| ClaimedKey::new(*parts.signer))
}

/// The armoured text form (`-----BEGIN SSH SIGNATURE-----`), as `ssh-keygen -Y sign` writes.
pub fn armor(blob: &[u8]) -> String {
    format!(
        "{ARMOR_BEGIN}\n{}{ARMOR_END}\n",
        b64::wrap(&b64::encode(blob), 70)
    )
}

/// The binary blob inside an armoured signature.
pub fn dearmor(text: &str) -> Result<Vec<u8>, Error> {
    let bad = |why: &str| Error::SignatureFormat(why.to_owned());
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some(ARMOR_BEGIN) {
        return Err(bad("it does not start with -----BEGIN SSH SIGNATURE-----"));
    }
    let body: Vec<&str> = lines.by_ref().take_while(|l| *l != ARMOR_END).collect();
    if !text.contains(ARMOR_END) || lines.next().is_some() {
        return Err(bad("the END line is missing or followed by more text"));
    }
    b64::decode_wrapped(body.into_iter()).ok_or_else(|| bad("the body is not base64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PrivateKey {
        PrivateKey::from_seed(&[7u8; 32], "test")
    }

    #[test]
    fn sign_then_verify_names_the_signer() {
        let blob = sign(&key(), Namespace::Decision, b"hello");
        assert_eq!(
            verify(&blob, Namespace::Decision, b"hello"),
            Ok(key().public())
        );
    }

    #[test]
    fn every_namespace_rejects_every_other() {
        for signed_as in Namespace::ALL {
            let blob = sign(&key(), signed_as, b"m");
            for checked_as in Namespace::ALL {
                let result = verify(&blob, checked_as, b"m");
                if signed_as == checked_as {
                    assert!(result.is_ok());
                } else {
                    assert!(
                        matches!(result, Err(Error::WrongNamespace { .. })),
                        "{signed_as:?} verified as {checked_as:?}: {result:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn other_message_is_a_bad_signature() {
        let blob = sign(&key(), Namespace::Request, b"one");
        assert_eq!(
            verify(&blob, Namespace::Request, b"two"),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn every_single_byte_change_of_the_blob_is_rejected() {
        let blob = sign(&key(), Namespace::Status, b"payload");
        for i in 0..blob.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = blob.clone();
                bad[i] ^= flip;
                assert!(
                    verify(&bad, Namespace::Status, b"payload").is_err(),
                    "byte {i} ^ {flip}"
                );
            }
        }
        for cut in 0..blob.len() {
            assert!(verify(&blob[..cut], Namespace::Status, b"payload").is_err());
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert!(verify(&longer, Namespace::Status, b"payload").is_err());
    }

    #[test]
    fn claimed_signer_checks_the_form_but_not_the_signature() {
        let blob = sign(&key(), Namespace::Request, b"payload");
        assert!(
            claimed_signer(&blob, Namespace::Request)
                .unwrap()
                .is(&key().public())
        );
        assert!(matches!(
            claimed_signer(&blob, Namespace::Decision),
            Err(Error::WrongNamespace { .. })
        ));
        // The Ed25519 signature is the blob's last 64 bytes; the raw signer key sits at 33..65.
        let signature = blob.len() - 64..blob.len();
        let signer_key = 33..65;
        assert_eq!(&blob[signer_key.clone()], key().public().as_bytes());
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            assert!(verify(&bad, Namespace::Request, b"payload").is_err());
            match claimed_signer(&bad, Namespace::Request) {
                Ok(signer) if signature.contains(&i) => assert!(signer.is(&key().public())),
                Ok(signer) if signer_key.contains(&i) => assert!(!signer.is(&key().public())),
                Ok(_) => panic!("byte {i} is part of the form, yet the claim was accepted"),
                Err(_) => assert!(!signature.contains(&i), "byte {i}"),
            }
        }
        for cut in 0..blob.len() {
            assert!(claimed_signer(&blob[..cut], Namespace::Request).is_err());
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert!(claimed_signer(&longer, Namespace::Request).is_err());
    }

    /// Two "signatures" by the identity point, a small-order (weak) key: `R = sB` passes the
    /// batch equation for any message, so such a key must never be batched.
    #[test]
    fn a_weak_key_is_checked_alone_and_refused() {
        use curve25519_dalek::{constants::ED25519_BASEPOINT_POINT, scalar::Scalar};
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = PublicKey::from_raw(&identity).expect("the identity decodes");
        let forged = |n: u64| {
            let s = Scalar::from(n);
            let mut blob = sign(&key(), Namespace::Decision, b"m");
            blob[33..65].copy_from_slice(&identity);
            let at = blob.len() - 64;
            blob[at..at + 32].copy_from_slice((s * ED25519_BASEPOINT_POINT).compress().as_bytes());
            blob[at + 32..].copy_from_slice(s.as_bytes());
            blob
        };
        let (one, two) = (forged(7), forged(11));
        let checks = [
            Check {
                key: &weak,
                blob: &one,
                message: b"approve",
            },
            Check {
                key: &weak,
                blob: &two,
                message: b"anything",
            },
        ];
        assert_eq!(
            verify_all_with(&checks, Namespace::Decision),
            vec![Err(Error::BadSignature), Err(Error::BadSignature)]
        );
    }

    #[test]
    fn armour_round_trips() {
        let blob = sign(&key(), Namespace::Request, b"x");
        let text = armor(&blob);
        assert!(text.lines().all(|l| l.len() <= 70));
        assert_eq!(dearmor(&text), Ok(blob));
        assert!(dearmor("garbage").is_err());
    }
}
