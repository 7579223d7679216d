//! OpenSSH Ed25519 keys (SPEC §4.1): the one-line public key, the `openssh-key-v1` private key
//! file (unencrypted), and the `SHA256:` fingerprint that `ssh-keygen -l` prints.

use std::fmt;

use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::Digest as _;
use zeroize::Zeroizing;

use crate::wire::{Reader, Writer};
use crate::{Error, b64};

pub(crate) const KEY_TYPE: &str = "ssh-ed25519";
const PRIVATE_MAGIC: &[u8] = b"openssh-key-v1\0";
const PRIVATE_BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const PRIVATE_END: &str = "-----END OPENSSH PRIVATE KEY-----";

/// An Ed25519 public key. Equality is on the key alone; comments are not part of identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

/// An OpenSSH fingerprint: `SHA256:` followed by unpadded base64 of SHA-256 of the key blob.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(String);

impl PublicKey {
    /// Parse an `authorized_keys`-style line: `ssh-ed25519 AAAA… [comment]`.
    pub fn parse(line: &str) -> Result<Self, Error> {
        Self::parse_with_comment(line).map(|(key, _)| key)
    }

    /// Parse a public key line and return its comment too (empty when there is none).
    pub fn parse_with_comment(line: &str) -> Result<(Self, String), Error> {
        let line = line.trim();
        let mut parts = line.splitn(3, [' ', '\t']);
        let kind = parts.next().unwrap_or_default();
        if kind != KEY_TYPE {
            let shown: String = kind.chars().take(32).collect();
            return Err(Error::PublicKey(format!(
                "key type is {shown:?}; only ssh-ed25519 keys are supported"
            )));
        }
        let data = parts
            .next()
            .ok_or_else(|| Error::PublicKey("the base64 key data is missing".into()))?;
        let blob = b64::decode(data)
            .ok_or_else(|| Error::PublicKey("the key data is not valid base64".into()))?;
        let key = Self::from_blob(&blob)?;
        let comment = parts.next().unwrap_or_default().trim().to_owned();
        Ok((key, comment))
    }

    /// Parse the SSH wire blob: `string "ssh-ed25519", string key[32]`.
    pub fn from_blob(blob: &[u8]) -> Result<Self, Error> {
        Self::from_raw(raw_from_blob(blob)?)
    }

    /// The key from its 32 raw bytes, which must be a valid Ed25519 point.
    pub(crate) fn from_raw(raw: &[u8; 32]) -> Result<Self, Error> {
        VerifyingKey::from_bytes(raw)
            .map(Self)
            .map_err(|_| Error::PublicKey("not a valid Ed25519 point".into()))
    }

    /// The SSH wire blob.
    pub fn blob(&self) -> Vec<u8> {
        blob_of(self.0.as_bytes())
    }

    /// The raw 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint_of(self.0.as_bytes())
    }

    /// The `ssh-ed25519 AAAA… comment` line (no comment part when `comment` is empty).
    pub fn to_openssh(&self, comment: &str) -> String {
        let mut line = format!("{KEY_TYPE} {}", b64::encode(&self.blob()));
        if !comment.is_empty() {
            line.push(' ');
            line.push_str(comment);
        }
        line
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_openssh(""))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

/// The raw key inside an SSH wire blob (`string "ssh-ed25519", string key[32]`), not yet
/// checked to be a valid Ed25519 point.
pub(crate) fn raw_from_blob(blob: &[u8]) -> Result<&[u8; 32], Error> {
    let mut r = Reader::new(blob);
    let kind = r
        .string()
        .ok_or_else(|| Error::PublicKey("truncated key blob".into()))?;
    if kind != KEY_TYPE.as_bytes() {
        return Err(Error::PublicKey("key blob is not ssh-ed25519".into()));
    }
    let raw = r
        .string()
        .ok_or_else(|| Error::PublicKey("truncated key blob".into()))?;
    if !r.is_empty() {
        return Err(Error::PublicKey("trailing bytes after the key".into()));
    }
    raw.try_into()
        .map_err(|_| Error::PublicKey("an Ed25519 key is 32 bytes".into()))
}

fn blob_of(raw: &[u8; 32]) -> Vec<u8> {
    let mut w = Writer::default();
    w.string(KEY_TYPE).string(raw);
    w.0
}

fn fingerprint_of(raw: &[u8; 32]) -> Fingerprint {
    let digest = sha2::Sha256::digest(blob_of(raw));
    Fingerprint(format!("SHA256:{}", b64::encode_unpadded(&digest)))
}

/// The 32 bytes of an Ed25519 public key as a message **names** it: NOT checked to be a
/// valid key, let alone to have signed anything. It only says whom a sender claims to be
/// (see [`crate::Claimed`]); compare it with a key you already trust with [`ClaimedKey::is`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimedKey([u8; 32]);

impl ClaimedKey {
    pub(crate) fn new(raw: [u8; 32]) -> Self {
        ClaimedKey(raw)
    }

    /// Whether the claim names exactly `key`.
    pub fn is(&self, key: &PublicKey) -> bool {
        &self.0 == key.as_bytes()
    }

    /// The raw 32 bytes named.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The OpenSSH fingerprint of the key named (for messages).
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint_of(&self.0)
    }
}

impl fmt::Debug for ClaimedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClaimedKey({})", self.fingerprint())
    }
}

impl Fingerprint {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Ed25519 private key with its comment. The secret is wiped from memory on drop.
pub struct PrivateKey {
    signing: SigningKey,
    comment: String,
}

impl PrivateKey {
    /// A new key from the operating system's CSPRNG.
    pub fn generate(comment: &str) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        crate::random_bytes(&mut *seed);
        Self::from_seed(&seed, comment)
    }

    /// A key from its 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32], comment: &str) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
            comment: comment.to_owned(),
        }
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    pub fn comment(&self) -> &str {
        &self.comment
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// Parse an unencrypted `-----BEGIN OPENSSH PRIVATE KEY-----` file holding one Ed25519 key.
    pub fn from_openssh(text: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::PrivateKey(why.to_owned());
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some(PRIVATE_BEGIN) {
            return Err(bad(
                "it does not start with -----BEGIN OPENSSH PRIVATE KEY-----",
            ));
        }
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != PRIVATE_END).collect();
        if lines.next().is_some() {
            return Err(bad("there is text after the END line"));
        }
        // take_while consumed the END line if it was there; make sure it was.
        if !text.contains(PRIVATE_END) {
            return Err(bad("the -----END OPENSSH PRIVATE KEY----- line is missing"));
        }
        let bytes = Zeroizing::new(
            b64::decode_wrapped(body.into_iter()).ok_or_else(|| bad("the body is not base64"))?,
        );
        Self::from_binary(&bytes)
    }

    fn from_binary(bytes: &[u8]) -> Result<Self, Error> {
        let bad = |why: &str| Error::PrivateKey(why.to_owned());
        let truncated = || bad("the key file is truncated");
        let mut r = Reader::new(bytes);
        if r.raw(PRIVATE_MAGIC.len()) != Some(PRIVATE_MAGIC) {
            return Err(bad("not an openssh-key-v1 file"));
        }
        let cipher = r.string().ok_or_else(truncated)?;
        let kdf = r.string().ok_or_else(truncated)?;
        let _kdf_options = r.string().ok_or_else(truncated)?;
        if cipher != b"none" || kdf != b"none" {
            return Err(bad(
                "it is protected by a passphrase, which v1 does not support; \
                 remove it with: ssh-keygen -p -N '' -f KEYFILE",
            ));
        }
        if r.u32() != Some(1) {
            return Err(bad("it must hold exactly one key"));
        }
        let public = PublicKey::from_blob(r.string().ok_or_else(truncated)?)?;
        let private = r.string().ok_or_else(truncated)?;
        if !r.is_empty() {
            return Err(bad("trailing bytes after the private section"));
        }

        let mut p = Reader::new(private);
        let (check1, check2) = (
            p.u32().ok_or_else(truncated)?,
            p.u32().ok_or_else(truncated)?,
        );
        if check1 != check2 {
            return Err(bad("its check integers differ (corrupt or encrypted)"));
        }
        if p.string() != Some(KEY_TYPE.as_bytes()) {
            return Err(bad("the private section is not ssh-ed25519"));
        }
        let inner_public = p.string().ok_or_else(truncated)?;
        let secret = p.string().ok_or_else(truncated)?;
        let comment = p.string().ok_or_else(truncated)?;
        let padding = p.rest();
        if padding.len() >= 8
            || padding
                .iter()
                .enumerate()
                .any(|(i, &b)| usize::from(b) != i + 1)
        {
            return Err(bad("its padding is malformed"));
        }
        if inner_public != public.as_bytes() {
            return Err(bad("its public and private halves disagree"));
        }
        let secret: &[u8; 64] = secret
            .try_into()
            .map_err(|_| bad("the Ed25519 secret must be 64 bytes"))?;
        let seed: &[u8; 32] = secret[..32].try_into().map_err(|_| truncated())?;
        if secret[32..] != public.as_bytes()[..] {
            return Err(bad("its secret does not embed its public key"));
        }
        let comment =
            String::from_utf8(comment.to_vec()).map_err(|_| bad("its comment is not UTF-8"))?;
        let key = Self::from_seed(seed, &comment);
        if key.public() != public {
            return Err(bad("its secret does not match its public key"));
        }
        Ok(key)
    }

    /// The `openssh-key-v1` file text, unencrypted, as `ssh-keygen -N ''` writes it.
    pub fn to_openssh(&self) -> String {
        let public = self.public();
        let mut check = [0u8; 4];
        crate::random_bytes(&mut check);
        let check = u32::from_be_bytes(check);

        let mut secret = Zeroizing::new([0u8; 64]);
        secret[..32].copy_from_slice(self.signing.as_bytes());
        secret[32..].copy_from_slice(public.as_bytes());

        let mut private = Writer::default();
        private
            .u32(check)
            .u32(check)
            .string(KEY_TYPE)
            .string(public.as_bytes());
        private.string(&secret[..]).string(self.comment.as_bytes());
        let mut pad = 1u8;
        while private.0.len() % 8 != 0 {
            private.0.push(pad);
            pad += 1;
        }
        let private = Zeroizing::new(std::mem::take(&mut private.0));

        let mut file = Writer::default();
        file.raw(PRIVATE_MAGIC)
            .string("none")
            .string("none")
            .string("")
            .u32(1);
        file.string(public.blob()).string(&private[..]);
        let file = Zeroizing::new(std::mem::take(&mut file.0));
        let encoded = Zeroizing::new(b64::encode(&file));
        format!(
            "{PRIVATE_BEGIN}\n{}{PRIVATE_END}\n",
            b64::wrap(&encoded, 70)
        )
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.public().fingerprint())
    }
}
