//! The signed payloads of protocol v1 (SPEC §4.4–§4.6) plus the relay login.
//!
//! Parsing is strict: unknown fields, duplicate fields or env keys, a `"v"` other than 1, a
//! `"kind"` other than the expected one, malformed ids or digests, NUL bytes and inconsistent
//! grant fields are all refused. What parses is structurally valid; whether it may be *used*
//! (time, host, user, policy) is for the caller to decide.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Namespace, Sha256Digest, hex};

/// A payload type: its namespace and the checks serde cannot express.
pub trait Payload: Serialize + DeserializeOwned {
    const NAMESPACE: Namespace;
    /// The payload's `"kind"`.
    const KIND: &'static str;

    /// Structural checks beyond the JSON shape.
    fn validate(&self) -> Result<(), Error>;

    /// Strict parse of payload bytes.
    fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let value: Self = serde_json::from_slice(bytes)
            .map_err(|e| Error::Payload(format!("{} payload: {e}", Self::KIND)))?;
        value.validate()?;
        Ok(value)
    }

    /// The payload bytes: compact UTF-8 JSON.
    fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("payload types always serialise")
    }
}

/// Define a unit type that (de)serialises as exactly one JSON value and nothing else.
macro_rules! exact_value {
    ($name:ident, $value:expr, $ser:ident, $expecting:literal, $visit:ident: $ty:ty) => {
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name;

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.$ser($value)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn $visit<E: de::Error>(self, v: $ty) -> Result<$name, E> {
                        if v == $value {
                            Ok($name)
                        } else {
                            Err(E::custom(concat!("expected ", $expecting)))
                        }
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

exact_value!(V1, 1u64, serialize_u64, "protocol version 1", visit_u64: u64);
exact_value!(KindRequest, "request", serialize_str, "kind \"request\"", visit_str: &str);
exact_value!(KindDecision, "decision", serialize_str, "kind \"decision\"", visit_str: &str);
exact_value!(KindStatus, "status", serialize_str, "kind \"status\"", visit_str: &str);
exact_value!(KindLogin, "login", serialize_str, "kind \"login\"", visit_str: &str);

/// A request id: 16 random bytes, written as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub [u8; 16]);

impl RequestId {
    pub fn random() -> Self {
        let mut id = [0u8; 16];
        crate::random_bytes(&mut id);
        Self(id)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        hex::decode::<16>(s).map(Self)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.to_hex())
    }
}

impl Serialize for RequestId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_hex(&s).ok_or_else(|| de::Error::custom("expected 32 lowercase hex digits"))
    }
}

/// How long an approval lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grant {
    /// One use, within a short window.
    Once,
    /// Reusable for the same command for `ttl_s` seconds.
    Timed,
    /// Reusable until revoked.
    Always,
}

impl Grant {
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Once => "once",
            Grant::Timed => "timed",
            Grant::Always => "always",
        }
    }

    /// Timed and always grants may be used more than once.
    pub fn is_reusable(self) -> bool {
        !matches!(self, Grant::Once)
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Deny,
}

/// Extra environment variables, sorted by name. Duplicate names are refused when parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Env(pub BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Env {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Env;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Env, A::Error> {
                let mut env = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    if env.contains_key(&k) {
                        return Err(de::Error::custom(format!("duplicate env key {k:?}")));
                    }
                    env.insert(k, v);
                }
                Ok(Env(env))
            }
        }
        d.deserialize_map(V)
    }
}

impl Env {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A request to run one command (SPEC §4.4), signed by the agent under `request@assent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub v: V1,
    pub kind: KindRequest,
    pub id: RequestId,
    /// Display name the agent chose for itself.
    pub agent: String,
    /// `gethostname()` of the target host.
    pub host: String,
    /// The requesting OS user.
    pub user: String,
    pub uid: u32,
    pub run_as: String,
    /// Absolute path the elevator will execute.
    pub program: String,
    pub program_sha256: Sha256Digest,
    /// argv as the agent typed it; argv[0] kept.
    pub argv: Vec<String>,
    pub cwd: String,
    pub env: Env,
    pub reason: String,
    pub grant: Grant,
    /// Requested lifetime, only for timed grants.
    pub ttl_s: Option<u64>,
    pub created_at: u64,
    /// The deadline for an answer.
    pub expires_at: u64,
}

/// An approver's answer to one request (SPEC §4.5), signed under `decision@assent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub v: V1,
    pub kind: KindDecision,
    pub request_id: RequestId,
    /// SHA-256 of the request payload bytes.
    pub request_sha256: Sha256Digest,
    pub verdict: Verdict,
    pub grant: Grant,
    pub not_before: u64,
    /// `None` only for `always`.
    pub not_after: Option<u64>,
    pub cmd_sha256: Sha256Digest,
    pub approver: String,
    pub decided_at: u64,
    pub note: Option<String>,
}

/// An approver's list of revoked grants (SPEC §4.6), signed under `status@assent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {
    pub v: V1,
    pub kind: KindStatus,
    pub approver: String,
    pub issued_at: u64,
    /// `decision_sha256` of each revoked grant.
    pub revoked: Vec<Sha256Digest>,
}

/// Which side of the relay a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Approver,
}

/// The answer to a relay's login challenge, signed under `relay-auth@assent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub v: V1,
    pub kind: KindLogin,
    /// The relay-issued nonce, as the relay sent it (hex).
    pub nonce: String,
    pub role: Role,
}

fn check_text(field: &str, value: &str) -> Result<(), Error> {
    if value.contains('\0') {
        return Err(Error::Payload(format!("{field} contains a NUL byte")));
    }
    Ok(())
}

fn check_name(field: &str, value: &str) -> Result<(), Error> {
    check_text(field, value)?;
    if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
        return Err(Error::Payload(format!(
            "{field} must be 1 to 256 characters with no control characters"
        )));
    }
    Ok(())
}

fn check_absolute(field: &str, value: &str) -> Result<(), Error> {
    check_text(field, value)?;
    if !value.starts_with('/') {
        return Err(Error::Payload(format!("{field} must be an absolute path")));
    }
    Ok(())
}

/// Environment variable names: a portable shell identifier.
fn check_env_key(key: &str) -> Result<(), Error> {
    let mut chars = key.chars();
    let ok = matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
    if !ok {
        return Err(Error::Payload(format!(
            "env key {key:?} is not a valid variable name (letters, digits, _; not starting with a digit)"
        )));
    }
    Ok(())
}

impl Payload for Request {
    const NAMESPACE: Namespace = Namespace::Request;
    const KIND: &'static str = "request";

    fn validate(&self) -> Result<(), Error> {
        check_name("agent", &self.agent)?;
        check_name("host", &self.host)?;
        check_name("user", &self.user)?;
        check_name("run_as", &self.run_as)?;
        check_absolute("program", &self.program)?;
        check_absolute("cwd", &self.cwd)?;
        check_text("reason", &self.reason)?;
        if self.argv.is_empty() {
            return Err(Error::Payload("argv must hold at least argv[0]".into()));
        }
        for arg in &self.argv {
            check_text("argv", arg)?;
        }
        for (k, v) in self.env.iter() {
            check_env_key(k)?;
            check_text("env value", v)?;
        }
        match (self.grant, self.ttl_s) {
            (Grant::Timed, Some(ttl)) if ttl > 0 => {}
            (Grant::Timed, _) => {
                return Err(Error::Payload("a timed request needs ttl_s > 0".into()));
            }
            (_, Some(_)) => {
                return Err(Error::Payload("ttl_s is only for timed requests".into()));
            }
            (_, None) => {}
        }
        if self.expires_at <= self.created_at {
            return Err(Error::Payload("expires_at must be after created_at".into()));
        }
        Ok(())
    }
}

impl Payload for Decision {
    const NAMESPACE: Namespace = Namespace::Decision;
    const KIND: &'static str = "decision";

    fn validate(&self) -> Result<(), Error> {
        check_name("approver", &self.approver)?;
        if let Some(note) = &self.note {
            check_text("note", note)?;
        }
        match (self.grant, self.not_after) {
            (Grant::Always, None) => {}
            (Grant::Always, Some(_)) => {
                return Err(Error::Payload("an always grant has not_after null".into()));
            }
            (_, None) => {
                return Err(Error::Payload(
                    "once and timed grants need not_after".into(),
                ));
            }
            (_, Some(not_after)) if not_after < self.not_before => {
                return Err(Error::Payload("not_after is before not_before".into()));
            }
            (_, Some(_)) => {}
        }
        Ok(())
    }
}

impl Payload for Status {
    const NAMESPACE: Namespace = Namespace::Status;
    const KIND: &'static str = "status";

    fn validate(&self) -> Result<(), Error> {
        check_name("approver", &self.approver)
    }
}

impl Payload for Login {
    const NAMESPACE: Namespace = Namespace::RelayAuth;
    const KIND: &'static str = "login";

    fn validate(&self) -> Result<(), Error> {
        if self.nonce.len() < 32
            || self.nonce.len() > 128
            || !self.nonce.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(Error::Payload("nonce must be 32 to 128 hex digits".into()));
        }
        Ok(())
    }
}

impl Decision {
    /// The window in seconds; `None` for `always`.
    pub fn window_s(&self) -> Option<u64> {
        self.not_after
            .map(|end| end.saturating_sub(self.not_before))
    }
}
