//! The 16-byte identifiers of the protocol, each written as 32 lowercase hex digits: a
//! request's id (chosen by the agent), an install's host id, a console's id. One type each, so
//! that one can never be passed where another is meant.

use std::fmt;

use serde::de;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hex;

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            /// 128 fresh random bits.
            pub fn random() -> Self {
                let mut id = [0u8; 16];
                crate::random_bytes(&mut id);
                Self(id)
            }

            /// Exactly 32 lowercase hex digits.
            pub fn from_hex(s: &str) -> Option<Self> {
                hex::decode::<16>(s).map(Self)
            }

            pub fn to_hex(&self) -> String {
                hex::encode(&self.0)
            }

            /// The first 8 hex digits, for showing to people where space is short. Never
            /// compare these: two different ids may share them.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }

            /// The text of a file holding this id: its hex digits and a newline.
            pub fn to_file(&self) -> String {
                format!("{}\n", self.to_hex())
            }

            /// Parse a file written by [`Self::to_file`]: 32 lowercase hex digits, then one
            /// newline or nothing. Anything else (spaces, upper case, a CR, a second line)
            /// is refused.
            pub fn from_file(bytes: &[u8]) -> Option<Self> {
                let line = bytes.strip_suffix(b"\n").unwrap_or(bytes);
                Self::from_hex(std::str::from_utf8(line).ok()?)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_hex())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::from_hex(&s)
                    .ok_or_else(|| de::Error::custom("expected 32 lowercase hex digits"))
            }
        }
    };
}

hex_id!(
    /// A request id: 16 random bytes chosen by the agent. It routes a request; people name
    /// requests by their reference instead ([`crate::Sha256Digest::reference`]).
    RequestId
);

hex_id!(
    /// A host id: 16 random bytes made once per install (`/etc/assent/host-id`), so that two
    /// machines with the same hostname (a cloned image, two containers) are still two hosts.
    /// A request names the host it is for by hostname and host id; the elevator runs it only
    /// where both match.
    HostId
);

hex_id!(
    /// A console id: 16 random bytes made once per console state directory. Decisions and
    /// statuses carry the id of the console that signed them, so that only the statuses of
    /// the console that approved a reusable grant vouch for it.
    ConsoleId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_from_their_files_and_nothing_else() {
        let id = HostId([0x3f; 16]);
        assert_eq!(id.to_file(), format!("{}\n", "3f".repeat(16)));
        assert_eq!(HostId::from_file(id.to_file().as_bytes()), Some(id));
        assert_eq!(HostId::from_file(id.to_hex().as_bytes()), Some(id));
        assert_eq!(id.short(), "3f3f3f3f");
        for bad in [
            "".to_owned(),
            "\n".to_owned(),
            format!("{}\n\n", id.to_hex()),
            format!("{}\r\n", id.to_hex()),
            format!(" {}\n", id.to_hex()),
            format!("{}\n", id.to_hex().to_uppercase()),
            format!("{}\n", &id.to_hex()[1..]),
            format!("{}0\n", id.to_hex()),
        ] {
            assert_eq!(HostId::from_file(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(ConsoleId::from_file(&[0xff; 33]), None);
    }

    #[test]
    fn ids_are_random_and_print_their_type() {
        assert_ne!(ConsoleId::random(), ConsoleId::random());
        assert_eq!(
            format!("{:?}", RequestId([0; 16])),
            format!("RequestId({})", "0".repeat(32))
        );
    }
}
