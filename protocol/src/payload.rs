//! The signed payloads of protocol v1.1 (`docs/protocol.md`): request, decision, status,
//! withdraw, and the relay login.
//!
//! Parsing is strict: unknown, missing or duplicate fields (a field that may be null must
//! still be there), duplicate env keys, a `"v"` other than 1, a `"kind"` other than the
//! expected one, malformed ids or digests, NUL bytes, inconsistent grant fields and
//! revocations that are not sorted or not unique are all refused. What parses is structurally
//! valid; whether it may be *used* (time, host, user, policy) is for the caller to decide.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{ConsoleId, Error, HostId, Namespace, RequestId, Sha256Digest};

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
exact_value!(KindWithdraw, "withdraw", serialize_str, "kind \"withdraw\"", visit_str: &str);

/// For a field that may be null but must be present: serde would otherwise read a missing
/// `Option` field as `None`, and a payload would have two spellings.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
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
    /// The target host's id (its `/etc/assent/host-id`): the hostname alone may be shared.
    pub host_id: HostId,
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
    #[serde(deserialize_with = "present")]
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
    #[serde(deserialize_with = "present")]
    pub not_after: Option<u64>,
    pub cmd_sha256: Sha256Digest,
    pub approver: String,
    /// The console that signed it: only that console's statuses vouch for a reusable grant.
    pub console: ConsoleId,
    pub decided_at: u64,
    #[serde(deserialize_with = "present")]
    pub note: Option<String>,
}

/// One console's list of revoked grants (SPEC §4.6, §13.7), signed by the approver's key
/// under `status@assent`. It vouches only for reusable grants whose decision names the same
/// key and the same console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {
    pub v: V1,
    pub kind: KindStatus,
    pub approver: String,
    /// The console that signed it.
    pub console: ConsoleId,
    pub issued_at: u64,
    pub revoked: Revocations,
}

/// A revoked grant, as a status lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// SHA-256 of the revoked decision's payload bytes.
    pub decision_sha256: Sha256Digest,
    /// The revoked grant's `not_after`; `None` (null) for an `always` grant. Until then (and a
    /// grace period), statuses of that console keep listing the revocation.
    #[serde(deserialize_with = "present")]
    pub until: Option<u64>,
}

/// The revocations of a status, always in the one canonical order: sorted by
/// `decision_sha256` (by its bytes, which is the order of its hex), each digest once.
///
/// Parsing refuses a list that is not in that order or names a digest twice, so a set of
/// revocations has exactly one encoding. Building one with [`Revocations::insert`] or
/// [`FromIterator`] sorts and merges; nothing can make an unordered one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Revocations(Vec<Revocation>);

impl Revocations {
    pub fn new() -> Revocations {
        Revocations::default()
    }

    /// Add a revocation. One for a digest already listed keeps the later `until` (null, for
    /// ever, is the latest).
    pub fn insert(&mut self, revocation: Revocation) {
        match self.position(&revocation.decision_sha256) {
            Ok(i) => {
                let held = &mut self.0[i].until;
                *held = match (*held, revocation.until) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
            Err(i) => self.0.insert(i, revocation),
        }
    }

    /// The revocation of this decision, if listed.
    pub fn get(&self, decision_sha256: &Sha256Digest) -> Option<&Revocation> {
        self.position(decision_sha256).ok().map(|i| &self.0[i])
    }

    pub fn contains(&self, decision_sha256: &Sha256Digest) -> bool {
        self.get(decision_sha256).is_some()
    }

    /// Keep only the revocations for which `keep` holds.
    pub fn retain(&mut self, keep: impl FnMut(&Revocation) -> bool) {
        self.0.retain(keep);
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Revocation> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[Revocation] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, digest: &Sha256Digest) -> Result<usize, usize> {
        self.0.binary_search_by(|r| r.decision_sha256.cmp(digest))
    }
}

impl FromIterator<Revocation> for Revocations {
    fn from_iter<I: IntoIterator<Item = Revocation>>(items: I) -> Revocations {
        let mut out = Revocations::new();
        for r in items {
            out.insert(r);
        }
        out
    }
}

impl<'a> IntoIterator for &'a Revocations {
    type Item = &'a Revocation;
    type IntoIter = std::slice::Iter<'a, Revocation>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<'de> Deserialize<'de> for Revocations {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<Revocation>::deserialize(d)?;
        for pair in list.windows(2) {
            let (a, b) = (&pair[0].decision_sha256, &pair[1].decision_sha256);
            if a == b {
                return Err(de::Error::custom(format!(
                    "revoked lists decision_sha256 {a} twice"
                )));
            }
            if a > b {
                return Err(de::Error::custom(format!(
                    "revoked must be sorted by decision_sha256: {b} comes after {a}"
                )));
            }
        }
        Ok(Revocations(list))
    }
}

/// An agent taking back a request it no longer waits for (SPEC §13.5), signed by the key that
/// signed the request, under `withdraw@assent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Withdraw {
    pub v: V1,
    pub kind: KindWithdraw,
    pub request_id: RequestId,
    /// SHA-256 of the withdrawn request's payload bytes.
    pub request_sha256: Sha256Digest,
    pub withdrawn_at: u64,
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

impl Payload for Withdraw {
    const NAMESPACE: Namespace = Namespace::Withdraw;
    const KIND: &'static str = "withdraw";

    fn validate(&self) -> Result<(), Error> {
        Ok(())
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
