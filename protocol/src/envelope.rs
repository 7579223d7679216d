//! The signed envelope (SPEC §4.3) and the one function that verifies it.

use serde::{Deserialize, Serialize};

use crate::key::ClaimedKey;
use crate::payload::Payload;
use crate::{Error, PrivateKey, PublicKey, Sha256Digest, b64, sha256, sshsig};

/// Largest payload accepted, in bytes. Requests are small; this bounds work on hostile input.
pub const MAX_PAYLOAD_LEN: usize = 48 * 1024;

/// `{"payload": base64(payload bytes), "sig": base64(SSHSIG blob)}`, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub payload: String,
    pub sig: String,
}

/// A payload whose signature has been verified under its namespace and which parsed strictly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<T> {
    pub payload: T,
    /// The exact payload bytes that were signed.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`: `request_sha256` for requests, `decision_sha256` for decisions.
    pub sha256: Sha256Digest,
    /// The key inside the SSHSIG blob.
    pub signer: PublicKey,
    /// The envelope it came from, for passing on unchanged.
    pub envelope: Envelope,
    /// Private, so that only [`Envelope::open`] and [`Envelope::open_trusted`] can make a
    /// `Signed`: holding one means the signature was checked.
    verified: Verified,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Verified;

/// A payload as its envelope **claims** it — the signature has **NOT** been verified.
///
/// Made by [`Envelope::claim`]: the payload parsed strictly and the SSHSIG blob is
/// well-formed for the payload's namespace, but anyone can produce a `Claimed` naming any
/// key as its signer. It is for routing by a party that is not the authority and whose
/// sender is already authenticated some other way (the relay compares `claimed_signer` with
/// the key a connection logged in with). Never act on it as if someone signed it: whoever
/// relies on the content must call [`Envelope::open`] on `envelope`, which yields a
/// [`Signed`]. There is no way to turn a `Claimed` into a `Signed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed<T> {
    /// The payload as sent. UNVERIFIED.
    pub payload: T,
    /// The payload bytes, exactly as carried.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes` (the `request_sha256` a decision for it must carry).
    pub sha256: Sha256Digest,
    /// The key the SSHSIG blob names as its signer. UNVERIFIED: a claim, not a proof, and
    /// not even checked to be a valid key; compare it with a key you trust.
    pub claimed_signer: ClaimedKey,
    /// The envelope it came from, for passing on unchanged to those who verify it.
    pub envelope: Envelope,
}

impl Envelope {
    /// Serialise `payload` and sign it under its namespace.
    pub fn seal<T: Payload>(key: &PrivateKey, payload: &T) -> Envelope {
        Self::seal_bytes(key, T::NAMESPACE, &payload.to_bytes())
    }

    /// Sign payload bytes as they are, for callers that must control the exact bytes.
    pub fn seal_bytes(key: &PrivateKey, namespace: crate::Namespace, bytes: &[u8]) -> Envelope {
        Self::from_signature(bytes, &sshsig::sign(key, namespace, bytes))
    }

    /// Assemble an envelope from payload bytes and a binary SSHSIG blob made elsewhere
    /// (for example by `ssh-keygen -Y sign`). Nothing is verified here.
    pub fn from_signature(payload: &[u8], sshsig_blob: &[u8]) -> Envelope {
        Envelope {
            payload: b64::encode(payload),
            sig: b64::encode(sshsig_blob),
        }
    }

    /// Strict parse of the envelope's own JSON.
    pub fn from_json(json: &str) -> Result<Envelope, Error> {
        serde_json::from_str(json).map_err(|e| Error::Envelope(e.to_string()))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("envelopes always serialise")
    }

    /// Verify and parse: decode, check the SSHSIG (namespace, hash, signature), and only then
    /// parse the payload strictly. This is the only way to turn signed bytes into a payload.
    pub fn open<T: Payload>(&self) -> Result<Signed<T>, Error> {
        let (bytes, blob) = self.decode()?;
        let signer = sshsig::verify(&blob, T::NAMESPACE, &bytes)?;
        let payload = T::from_bytes(&bytes)?;
        Ok(Signed {
            payload,
            sha256: sha256(&bytes),
            bytes,
            signer,
            envelope: self.clone(),
            verified: Verified,
        })
    }

    /// [`Envelope::open`] for a signer the caller already holds the key of (a listed
    /// approver). Once the blob is well-formed for `T`'s namespace, `lookup` is asked for
    /// the caller's key with the raw bytes the blob names; `Ok(None)` if it has none (and
    /// nothing was verified). Otherwise the signature is verified with the key `lookup`
    /// returned — never with the one the blob names — which spares decoding that key again,
    /// and the payload is parsed strictly. What opens is exactly what [`Envelope::open`]
    /// opens from that key.
    pub fn open_trusted<'k, T: Payload>(
        &self,
        lookup: impl FnOnce(&ClaimedKey) -> Option<&'k PublicKey>,
    ) -> Result<Option<Signed<T>>, Error> {
        let mut lookup = Some(lookup);
        Self::open_trusted_all(&[self], |_, claimed| lookup.take()?(claimed))
            .pop()
            .expect("one result for one envelope")
    }

    /// [`Envelope::open_trusted`] for each of `envelopes`, in order, with their signatures
    /// checked together (see the `batch` feature): what arrives at once is cheaper to check
    /// at once. `lookup` is asked once for each envelope whose blob is well-formed, with its
    /// index. Each result is exactly what [`Envelope::open_trusted`] gives for that envelope
    /// alone, up to the batch check's bound on signatures altered by a small-order point
    /// (which only the key's holder can make).
    pub fn open_trusted_all<'k, T: Payload>(
        envelopes: &[&Envelope],
        mut lookup: impl FnMut(usize, &ClaimedKey) -> Option<&'k PublicKey>,
    ) -> Vec<Result<Option<Signed<T>>, Error>> {
        // Decoded, with the caller's key for each (`None`: it has none, nothing to verify).
        type Decoded<'k> = Result<Option<(Vec<u8>, Vec<u8>, &'k PublicKey)>, Error>;
        let decoded: Vec<Decoded<'k>> = envelopes
            .iter()
            .enumerate()
            .map(|(i, envelope)| {
                let (bytes, blob) = envelope.decode()?;
                let claimed = sshsig::claimed_signer(&blob, T::NAMESPACE)?;
                Ok(lookup(i, &claimed).map(|key| (bytes, blob, key)))
            })
            .collect();
        let checks: Vec<sshsig::Check<'_>> = decoded
            .iter()
            .filter_map(|d| d.as_ref().ok()?.as_ref())
            .map(|(bytes, blob, key)| sshsig::Check {
                key,
                blob,
                message: bytes,
            })
            .collect();
        let mut verified = sshsig::verify_all_with(&checks, T::NAMESPACE).into_iter();
        decoded
            .into_iter()
            .zip(envelopes)
            .map(|(decoded, envelope)| {
                let Some((bytes, _, key)) = decoded? else {
                    return Ok(None);
                };
                verified.next().expect("one result for each check")?;
                let payload = T::from_bytes(&bytes)?;
                Ok(Some(Signed {
                    payload,
                    sha256: sha256(&bytes),
                    bytes,
                    signer: *key,
                    envelope: (*envelope).clone(),
                    verified: Verified,
                }))
            })
            .collect()
    }

    /// Parse WITHOUT verifying the signature: the checks of [`Envelope::open`] except the
    /// signature itself. The SSHSIG blob must be well-formed and made out for `T`'s namespace,
    /// and the payload must parse strictly; the result names the key the blob claims signed
    /// it (as raw bytes, not checked to be a valid key). See [`Claimed`] for the only thing
    /// this is fit for (routing); it is NOT a verification and must never stand in for
    /// [`Envelope::open`].
    pub fn claim<T: Payload>(&self) -> Result<Claimed<T>, Error> {
        let (bytes, blob) = self.decode()?;
        let claimed_signer = sshsig::claimed_signer(&blob, T::NAMESPACE)?;
        let payload = T::from_bytes(&bytes)?;
        Ok(Claimed {
            payload,
            sha256: sha256(&bytes),
            bytes,
            claimed_signer,
            envelope: self.clone(),
        })
    }

    /// The payload bytes and the SSHSIG blob, size-checked and base64-decoded.
    fn decode(&self) -> Result<(Vec<u8>, Vec<u8>), Error> {
        if self.payload.len() > MAX_PAYLOAD_LEN.div_ceil(3) * 4 {
            return Err(Error::Envelope(format!(
                "payload is larger than {MAX_PAYLOAD_LEN} bytes"
            )));
        }
        let bytes = b64::decode(&self.payload)
            .ok_or_else(|| Error::Envelope("payload is not standard base64".into()))?;
        if self.sig.len() > 1024 {
            return Err(Error::Envelope(
                "sig is too long to be an Ed25519 SSHSIG".into(),
            ));
        }
        let blob = b64::decode(&self.sig)
            .ok_or_else(|| Error::Envelope("sig is not standard base64".into()))?;
        Ok((bytes, blob))
    }

    /// The armoured SSHSIG, for `ssh-keygen -Y verify`.
    pub fn armored_signature(&self) -> Result<String, Error> {
        let blob = b64::decode(&self.sig)
            .ok_or_else(|| Error::Envelope("sig is not standard base64".into()))?;
        Ok(sshsig::armor(&blob))
    }

    /// The raw payload bytes, unverified (for writing to a file to check with `ssh-keygen`).
    pub fn payload_bytes_unverified(&self) -> Result<Vec<u8>, Error> {
        b64::decode(&self.payload)
            .ok_or_else(|| Error::Envelope("payload is not standard base64".into()))
    }
}
