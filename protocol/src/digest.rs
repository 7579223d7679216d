use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

use crate::hex;

/// A SHA-256 digest, written in the protocol as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(pub [u8; 32]);

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Sha256Digest {
    Sha256Digest(sha2::Sha256::digest(bytes).into())
}

/// SHA-256 over a list of items, each written as its length (4 bytes, big-endian) followed by
/// its bytes, so that no two different lists feed the hash the same bytes. The command hash is
/// made this way (`cmd_sha256`), and so may other keys built from several strings.
#[derive(Debug, Clone, Default)]
pub struct ItemHasher(sha2::Sha256);

impl ItemHasher {
    pub fn new() -> ItemHasher {
        ItemHasher::default()
    }

    /// Add one item.
    ///
    /// # Panics
    /// For an item of 4 GiB or more, which no payload can hold.
    pub fn item(&mut self, bytes: &[u8]) -> &mut Self {
        let len = u32::try_from(bytes.len()).expect("items are shorter than 4 GiB");
        self.0.update(len.to_be_bytes());
        self.0.update(bytes);
        self
    }

    pub fn finish(self) -> Sha256Digest {
        Sha256Digest(self.0.finalize().into())
    }
}

/// How many hex digits of a request's SHA-256 name it for people (SPEC §13.1).
pub const REFERENCE_LEN: usize = 12;

impl Sha256Digest {
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// The first [`REFERENCE_LEN`] lowercase hex digits. Applied to `request_sha256`, this is
    /// the reference by which agent, relay and approver name a request: derived from the
    /// signed bytes, it can never name another request's content, as a reused id could.
    pub fn reference(&self) -> String {
        hex::encode(&self.0[..REFERENCE_LEN / 2])
    }

    /// Parse 64 lowercase hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        hex::decode::<32>(s).map(Self)
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_hex(&s)
            .ok_or_else(|| serde::de::Error::custom("expected 64 lowercase hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_is_the_first_twelve_hex_digits() {
        let digest = sha256(b"request");
        assert_eq!(digest.reference().len(), REFERENCE_LEN);
        assert!(digest.to_hex().starts_with(&digest.reference()));
        assert_eq!(Sha256Digest([0xab; 32]).reference(), "abababababab");
    }
}
