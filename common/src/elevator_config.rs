//! The elevator's configuration (SPEC §5): who may approve, who may ask to become whom, and
//! the settings, including the resource limits commands get (`[settings.limits]`, SPEC §13.3). The equivalent of sudoers — written by root, for humans, read strictly.
//!
//! Parsing refuses unknown fields, duplicate approvers, requesters or keys, and keys that
//! are not OpenSSH Ed25519 public keys. Every error is one line naming the file.
//!
//! Only the text is parsed here. The elevator reads the file itself, through a walk that
//! trusts no path (`assent_elevate::config`); others read it as they can and parse it with
//! the same function, so their answers match the elevator's.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use assent_protocol::PublicKey;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// Largest configuration file read, in bytes.
pub const MAX_CONFIG_LEN: u64 = 1024 * 1024;

/// Largest clock skew accepted: more than this means the clocks need fixing, not tolerating.
pub const MAX_CLOCK_SKEW_S: u64 = 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub approvers: Vec<Approver>,
    pub requesters: Vec<Requester>,
    pub settings: Settings,
}

/// A human whose signed decisions this host accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approver {
    pub name: String,
    pub key: PublicKey,
}

/// An OS user allowed to call the elevator, and whom they may become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub user: String,
    pub run_as: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `PATH` for the program.
    pub secure_path: String,
    /// Longest window a `once` grant may have.
    pub once_window_s: u64,
    /// Longest window a `timed` grant may have.
    pub max_ttl_s: u64,
    /// Oldest status accepted for a reusable grant.
    pub status_max_age_s: u64,
    /// Tolerated difference between the approver's clock and this host's.
    pub clock_skew_s: u64,
    /// Resource limits for commands instead of PID 1's, limit by limit.
    pub limits: LimitOverrides,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            secure_path: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            once_window_s: 120,
            max_ttl_s: 86_400,
            status_max_age_s: 120,
            clock_skew_s: 60,
            limits: LimitOverrides::default(),
        }
    }
}

/// A resource limit a command runs under, named as `prlimit(1)` names it. In the kernel's
/// order (`RLIMIT_CPU` is 0 … `RLIMIT_RTTIME` is 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Limit {
    Cpu,
    Fsize,
    Data,
    Stack,
    Core,
    Rss,
    Nproc,
    Nofile,
    Memlock,
    As,
    Locks,
    Sigpending,
    Msgqueue,
    Nice,
    Rtprio,
    Rttime,
}

impl Limit {
    /// Every limit, in the kernel's order.
    pub const ALL: [Limit; 16] = [
        Limit::Cpu,
        Limit::Fsize,
        Limit::Data,
        Limit::Stack,
        Limit::Core,
        Limit::Rss,
        Limit::Nproc,
        Limit::Nofile,
        Limit::Memlock,
        Limit::As,
        Limit::Locks,
        Limit::Sigpending,
        Limit::Msgqueue,
        Limit::Nice,
        Limit::Rtprio,
        Limit::Rttime,
    ];

    /// The name in `[settings.limits]` (and in `prlimit(1)`).
    pub fn name(self) -> &'static str {
        match self {
            Limit::Cpu => "cpu",
            Limit::Fsize => "fsize",
            Limit::Data => "data",
            Limit::Stack => "stack",
            Limit::Core => "core",
            Limit::Rss => "rss",
            Limit::Nproc => "nproc",
            Limit::Nofile => "nofile",
            Limit::Memlock => "memlock",
            Limit::As => "as",
            Limit::Locks => "locks",
            Limit::Sigpending => "sigpending",
            Limit::Msgqueue => "msgqueue",
            Limit::Nice => "nice",
            Limit::Rtprio => "rtprio",
            Limit::Rttime => "rttime",
        }
    }

    /// What the number counts, as `/proc/PID/limits` says it.
    pub fn unit(self) -> &'static str {
        match self {
            Limit::Cpu => "seconds",
            Limit::Fsize | Limit::Data | Limit::Stack | Limit::Core | Limit::Rss => "bytes",
            Limit::Memlock | Limit::As | Limit::Msgqueue => "bytes",
            Limit::Nproc => "processes",
            Limit::Nofile => "files",
            Limit::Locks => "locks",
            Limit::Sigpending => "signals",
            Limit::Nice | Limit::Rtprio => "priority",
            Limit::Rttime => "microseconds",
        }
    }

    pub fn from_name(name: &str) -> Option<Limit> {
        Limit::ALL.into_iter().find(|l| l.name() == name)
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One side of a limit: a number in the limit's unit, or no limit. `Finite` sorts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LimitValue {
    Finite(u64),
    Unlimited,
}

impl fmt::Display for LimitValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitValue::Finite(n) => write!(f, "{n}"),
            LimitValue::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// A soft and a hard limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitPair {
    pub soft: LimitValue,
    pub hard: LimitValue,
}

/// `[settings.limits]`: `NAME = VALUE` sets soft and hard; `NAME = [SOFT, HARD]` sets each.
/// A value is a non-negative integer or `"unlimited"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitOverrides(pub BTreeMap<Limit, LimitPair>);

impl LimitOverrides {
    pub fn get(&self, limit: Limit) -> Option<LimitPair> {
        self.0.get(&limit).copied()
    }

    /// Whether every limit is set here, so that PID 1's are not needed.
    pub fn covers_all(&self) -> bool {
        self.0.len() == Limit::ALL.len()
    }
}

const LIMIT_VALUE: &str = "a non-negative integer or \"unlimited\"";

/// A TOML integer as a limit value.
fn finite<E: de::Error>(v: i64, expected: &dyn de::Expected) -> Result<LimitValue, E> {
    u64::try_from(v)
        .map(LimitValue::Finite)
        .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), expected))
}

/// A TOML string as a limit value: only `"unlimited"` is one.
fn named<E: de::Error>(v: &str, expected: &dyn de::Expected) -> Result<LimitValue, E> {
    match v {
        "unlimited" => Ok(LimitValue::Unlimited),
        _ => Err(E::invalid_value(de::Unexpected::Str(v), expected)),
    }
}

impl LimitPair {
    fn both(value: LimitValue) -> LimitPair {
        LimitPair {
            soft: value,
            hard: value,
        }
    }
}

impl<'de> Deserialize<'de> for LimitValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl Visitor<'_> for ValueVisitor {
            type Value = LimitValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(LIMIT_VALUE)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LimitValue, E> {
                finite(v, &self)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LimitValue, E> {
                Ok(LimitValue::Finite(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LimitValue, E> {
                named(v, &self)
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

impl<'de> Deserialize<'de> for LimitPair {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairVisitor;
        impl<'de> Visitor<'de> for PairVisitor {
            type Value = LimitPair;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{LIMIT_VALUE}, or [soft, hard] of those")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LimitPair, E> {
                finite(v, &self).map(LimitPair::both)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LimitPair, E> {
                Ok(LimitPair::both(LimitValue::Finite(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LimitPair, E> {
                named(v, &self).map(LimitPair::both)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LimitPair, A::Error> {
                let soft = seq
                    .next_element::<LimitValue>()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let hard = seq
                    .next_element::<LimitValue>()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(LimitPair { soft, hard })
            }
        }
        deserializer.deserialize_any(PairVisitor)
    }
}

impl<'de> Deserialize<'de> for LimitOverrides {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = LimitOverrides;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of resource limits, e.g. nofile = 1024")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LimitOverrides, A::Error> {
                let mut limits = BTreeMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    let Some(limit) = Limit::from_name(&name) else {
                        let known: Vec<&str> = Limit::ALL.iter().map(|l| l.name()).collect();
                        return Err(de::Error::custom(format!(
                            "unknown limit `{name}`; the limits are {}",
                            known.join(", ")
                        )));
                    };
                    let pair = map.next_value::<LimitPair>()?;
                    if limits.insert(limit, pair).is_some() {
                        return Err(de::Error::custom(format!("limit `{name}` is set twice")));
                    }
                }
                Ok(LimitOverrides(limits))
            }
        }
        deserializer.deserialize_map(MapVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    approver: Vec<RawApprover>,
    #[serde(default)]
    requester: Vec<RawRequester>,
    #[serde(default)]
    settings: Settings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprover {
    name: String,
    key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequester {
    user: String,
    run_as: Vec<String>,
}

/// Deepest nesting of arrays and inline tables accepted. The parser recurses once per level
/// and has no limit of its own, so without this a short file of `[[[[…` would overflow the
/// stack; a real elevator.toml nests two levels at most.
const MAX_NESTING: usize = 16;

/// Refuse nesting deeper than [`MAX_NESTING`] before the parser sees the text. Brackets inside
/// strings and comments do not count; the count errs on the side of refusing.
fn check_nesting(text: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' | '\'' => {
                // Skip a string; a multi-line one ends at the next run of three quotes.
                let triple = chars.peek() == Some(&c) && {
                    let mut ahead = chars.clone();
                    ahead.next();
                    ahead.peek() == Some(&c)
                };
                if triple {
                    chars.next();
                    chars.next();
                }
                let mut run = 0;
                while let Some(s) = chars.next() {
                    if c == '"' && s == '\\' {
                        chars.next();
                        run = 0;
                    } else if s == c {
                        run += 1;
                        if !triple || run == 3 {
                            break;
                        }
                    } else {
                        run = 0;
                    }
                }
            }
            '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "arrays or tables nested deeper than {MAX_NESTING} levels"
                    ));
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

impl Config {
    /// Parse configuration text; errors are one line starting with `origin`.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, String> {
        let fail = |why: String| format!("{}: {}", origin.display(), one_line(&why));
        check_nesting(text).map_err(fail)?;
        let raw: RawConfig = basic_toml::from_str(text).map_err(|e| fail(e.to_string()))?;
        Self::validate(raw).map_err(fail)
    }

    fn validate(raw: RawConfig) -> Result<Config, String> {
        if raw.approver.is_empty() {
            return Err("no [[approver]] is listed; add one with name and key".into());
        }
        if raw.requester.is_empty() {
            return Err("no [[requester]] is listed; add one with user and run_as".into());
        }
        let mut approvers: Vec<Approver> = Vec::with_capacity(raw.approver.len());
        for a in raw.approver {
            check_name("approver name", &a.name)?;
            let key =
                PublicKey::parse(&a.key).map_err(|e| format!("approver {:?}: key: {e}", a.name))?;
            if approvers.iter().any(|b| b.name == a.name) {
                return Err(format!("approver {:?} is listed twice", a.name));
            }
            if let Some(b) = approvers.iter().find(|b| b.key == key) {
                return Err(format!(
                    "approvers {:?} and {:?} have the same key {}",
                    b.name,
                    a.name,
                    key.fingerprint()
                ));
            }
            approvers.push(Approver { name: a.name, key });
        }
        let mut requesters: Vec<Requester> = Vec::with_capacity(raw.requester.len());
        for r in raw.requester {
            check_name("requester user", &r.user)?;
            if requesters.iter().any(|q| q.user == r.user) {
                return Err(format!("requester {:?} is listed twice", r.user));
            }
            if r.run_as.is_empty() {
                return Err(format!(
                    "requester {:?} has an empty run_as; list whom they may become, e.g. [\"root\"]",
                    r.user
                ));
            }
            for target in &r.run_as {
                check_name("run_as user", target)?;
            }
            requesters.push(Requester {
                user: r.user,
                run_as: r.run_as,
            });
        }
        validate_settings(&raw.settings)?;
        Ok(Config {
            approvers,
            requesters,
            settings: raw.settings,
        })
    }

    /// The approver whose key this is.
    pub fn approver_by_key(&self, key: &PublicKey) -> Option<&Approver> {
        self.approvers.iter().find(|a| a.key == *key)
    }

    /// The requester entry for an OS user name.
    pub fn requester(&self, user: &str) -> Option<&Requester> {
        self.requesters.iter().find(|r| r.user == user)
    }
}

fn validate_settings(s: &Settings) -> Result<(), String> {
    let path_ok = !s.secure_path.is_empty()
        && s.secure_path.len() <= 4096
        && s.secure_path
            .split(':')
            .all(|dir| dir.starts_with('/') && !dir.chars().any(char::is_control));
    if !path_ok {
        return Err(format!(
            "settings.secure_path {:?} must be absolute directories separated by ':'",
            s.secure_path
        ));
    }
    for (name, value) in [
        ("once_window_s", s.once_window_s),
        ("max_ttl_s", s.max_ttl_s),
        ("status_max_age_s", s.status_max_age_s),
    ] {
        if value == 0 {
            return Err(format!("settings.{name} must be at least 1"));
        }
    }
    for (limit, pair) in &s.limits.0 {
        if pair.soft > pair.hard {
            return Err(format!(
                "settings.limits.{limit}: the soft limit {} is above the hard limit {}",
                pair.soft, pair.hard
            ));
        }
        // The kernel refuses more open files than fs.nr_open, and "unlimited" is more.
        if *limit == Limit::Nofile && pair.hard == LimitValue::Unlimited {
            return Err(
                "settings.limits.nofile cannot be \"unlimited\"; give a number (at most the \
                 sysctl fs.nr_open)"
                    .into(),
            );
        }
    }
    if s.clock_skew_s > MAX_CLOCK_SKEW_S {
        return Err(format!(
            "settings.clock_skew_s is {}; at most {MAX_CLOCK_SKEW_S} is accepted, fix the clocks instead",
            s.clock_skew_s
        ));
    }
    Ok(())
}

/// OS user and approver names: 1 to 256 characters, no control characters.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
        return Err(format!(
            "{what} {name:?} must be 1 to 256 characters without control characters"
        ));
    }
    Ok(())
}

/// Errors from the TOML parser may span lines; the elevator prints exactly one.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use assent_protocol::PrivateKey;

    use super::*;

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        // About 21,000 levels overflowed the stack inside the TOML parser (found by fuzzing).
        let deep = format!("a={}", "[".repeat(21_000));
        let err = Config::parse(&deep, Path::new("/etc/assent/elevator.toml")).unwrap_err();
        assert!(err.contains("nested deeper than"), "{err}");
        let inline = format!("a={}1{}", "{b=".repeat(17), "}".repeat(17));
        assert!(check_nesting(&inline).is_err());
        // Brackets in strings and comments do not count; ordinary files pass.
        assert!(
            check_nesting(&format!(
                "a = \"{}\" # {}\n",
                "[".repeat(40),
                "{".repeat(40)
            ))
            .is_ok()
        );
        assert!(check_nesting(&format!("a = \'\'\'{}\'\'\'\n", "[".repeat(40))).is_ok());
        assert!(check_nesting("a = \"\\\"[\"\nb = [[1], [2]]\n").is_ok());
        assert!(check_nesting(&format!("a = {}1{}", "[".repeat(16), "]".repeat(16))).is_ok());
        assert!(check_nesting(&good()).is_ok());
    }

    fn approver_key(n: u8) -> PrivateKey {
        PrivateKey::from_seed(&[n; 32], &format!("approver{n}@test"))
    }

    fn good() -> String {
        format!(
            r#"
# The approvers whose decisions count on this host.
[[approver]]
name = "alice"
key  = "{} alice@laptop"

[[approver]]
name = "bob"
key  = "{}"

[[requester]]
user   = "openclaw"
run_as = ["root", "postgres"]
"#,
            approver_key(1).public(),
            approver_key(2).public()
        )
    }

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("/etc/assent/elevator.toml"))
    }

    #[test]
    fn a_good_file_parses_with_defaults() {
        let config = parse(&good()).unwrap();
        assert_eq!(config.approvers.len(), 2);
        assert_eq!(config.approvers[0].name, "alice");
        assert_eq!(config.approvers[0].key, approver_key(1).public());
        assert_eq!(
            config
                .approver_by_key(&approver_key(2).public())
                .unwrap()
                .name,
            "bob"
        );
        assert!(config.approver_by_key(&approver_key(3).public()).is_none());
        assert_eq!(
            config.requester("openclaw").unwrap().run_as,
            ["root", "postgres"]
        );
        assert!(config.requester("root").is_none());
        assert_eq!(config.settings, Settings::default());
        assert_eq!(config.settings.once_window_s, 120);
        assert_eq!(config.settings.max_ttl_s, 86_400);
        assert_eq!(config.settings.status_max_age_s, 120);
        assert_eq!(config.settings.clock_skew_s, 60);
        assert_eq!(
            config.settings.secure_path,
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        );
    }

    #[test]
    fn settings_override_defaults_one_by_one() {
        let text = good() + "[settings]\nonce_window_s = 30\nsecure_path = \"/usr/bin:/bin\"\n";
        let settings = parse(&text).unwrap().settings;
        assert_eq!(settings.once_window_s, 30);
        assert_eq!(settings.secure_path, "/usr/bin:/bin");
        assert_eq!(settings.max_ttl_s, 86_400, "others keep their defaults");
    }

    #[test]
    fn limits_can_be_set_one_by_one() {
        let text = good()
            + "[settings.limits]\nnofile = 4096\nfsize = \"unlimited\"\ncore = [0, \"unlimited\"]\n\
               cpu = [60, 120]\n";
        let limits = parse(&text).unwrap().settings.limits;
        let pair = |soft, hard| LimitPair { soft, hard };
        use LimitValue::{Finite, Unlimited};
        assert_eq!(
            limits.get(Limit::Nofile),
            Some(pair(Finite(4096), Finite(4096)))
        );
        assert_eq!(limits.get(Limit::Fsize), Some(pair(Unlimited, Unlimited)));
        assert_eq!(limits.get(Limit::Core), Some(pair(Finite(0), Unlimited)));
        assert_eq!(limits.get(Limit::Cpu), Some(pair(Finite(60), Finite(120))));
        assert_eq!(limits.get(Limit::Stack), None, "the rest stays PID 1's");
        assert!(!limits.covers_all());
        assert_eq!(
            parse(&good()).unwrap().settings.limits,
            LimitOverrides::default()
        );

        let every: String = Limit::ALL.iter().map(|l| format!("{l} = 7\n")).collect();
        let all = parse(&(good() + "[settings.limits]\n" + &every)).unwrap();
        assert!(all.settings.limits.covers_all());
        for limit in Limit::ALL {
            assert_eq!(Limit::from_name(limit.name()), Some(limit));
        }
    }

    #[test]
    fn bad_limits_are_refused_with_the_limit_named() {
        for (limits, expect) in [
            (
                "nofiles = 10",
                "unknown limit `nofiles`; the limits are cpu, fsize,",
            ),
            ("nofile = -1", "a non-negative integer or \"unlimited\""),
            (
                "nofile = \"lots\"",
                "a non-negative integer or \"unlimited\"",
            ),
            ("fsize = 1.5", "invalid type"),
            ("cpu = [1]", "invalid length"),
            ("cpu = [1, 2, 3]", "invalid length"),
            (
                "cpu = [120, 60]",
                "settings.limits.cpu: the soft limit 120 is above the hard limit 60",
            ),
            (
                "core = [\"unlimited\", 0]",
                "the soft limit unlimited is above the hard limit 0",
            ),
            ("nofile = \"unlimited\"", "nofile cannot be \"unlimited\""),
            (
                "nofile = [1024, \"unlimited\"]",
                "nofile cannot be \"unlimited\"",
            ),
            ("cpu = { soft = 1 }", "invalid type"),
        ] {
            let err = parse(&format!("{}[settings.limits]\n{limits}\n", good())).unwrap_err();
            assert!(err.contains(expect), "{limits}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
        let err = parse(&format!("{}[settings]\nlimits = 5\n", good())).unwrap_err();
        assert!(err.contains("a table of resource limits"), "{err}");
    }

    #[test]
    fn unknown_fields_are_refused_everywhere() {
        for extra in [
            "[settings]\nonce_window = 30\n",
            "[[approver]]\nname = \"carol\"\nkey = \"x\"\nrole = \"admin\"\n",
            "[defaults]\nx = 1\n",
        ] {
            let err = parse(&(good() + extra)).unwrap_err();
            assert!(err.starts_with("/etc/assent/elevator.toml: "), "{err}");
            assert!(err.contains("unknown field"), "{extra}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
        let err = parse(&good().replace("run_as =", "runas =")).unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn bad_keys_are_refused_with_the_approver_named() {
        let text = good().replace(
            &approver_key(2).public().to_string(),
            "ssh-rsa AAAAB3NzaC1yc2E",
        );
        let err = parse(&text).unwrap_err();
        assert!(err.contains("approver \"bob\": key:"), "{err}");
        assert!(err.contains("only ssh-ed25519"), "{err}");

        let mangled = approver_key(2).public().to_string().replace("AAAA", "AAAB");
        let err = parse(&good().replace(&approver_key(2).public().to_string(), &mangled));
        assert!(err.unwrap_err().contains("approver \"bob\": key:"));
    }

    #[test]
    fn missing_sections_are_named() {
        let only_requester = "[[requester]]\nuser = \"openclaw\"\nrun_as = [\"root\"]\n";
        assert!(
            parse(only_requester)
                .unwrap_err()
                .contains("no [[approver]] is listed")
        );
        let only_approver = format!(
            "[[approver]]\nname = \"alice\"\nkey = \"{}\"\n",
            approver_key(1).public()
        );
        assert!(
            parse(&only_approver)
                .unwrap_err()
                .contains("no [[requester]] is listed")
        );
        assert!(parse("").unwrap_err().contains("no [[approver]]"));
        let err = parse(&good().replace("key  = ", "keyy = ")).unwrap_err();
        assert!(
            err.contains("unknown field") || err.contains("missing field"),
            "{err}"
        );
        let no_run_as = good().replace("run_as = [\"root\", \"postgres\"]", "");
        assert!(
            parse(&no_run_as)
                .unwrap_err()
                .contains("missing field `run_as`")
        );
    }

    #[test]
    fn duplicates_and_nonsense_are_refused() {
        let dup_name = good().replace("name = \"bob\"", "name = \"alice\"");
        assert!(
            parse(&dup_name)
                .unwrap_err()
                .contains("\"alice\" is listed twice")
        );
        let dup_key = good().replace(
            &approver_key(2).public().to_string(),
            &approver_key(1).public().to_string(),
        );
        assert!(
            parse(&dup_key)
                .unwrap_err()
                .contains("have the same key SHA256:")
        );
        let dup_requester = good() + "[[requester]]\nuser = \"openclaw\"\nrun_as = [\"root\"]\n";
        assert!(
            parse(&dup_requester)
                .unwrap_err()
                .contains("\"openclaw\" is listed twice")
        );
        let empty_run_as = good().replace("[\"root\", \"postgres\"]", "[]");
        assert!(parse(&empty_run_as).unwrap_err().contains("empty run_as"));
        for (setting, expect) in [
            ("once_window_s = 0", "once_window_s must be at least 1"),
            (
                "status_max_age_s = 0",
                "status_max_age_s must be at least 1",
            ),
            ("clock_skew_s = 86400", "at most 3600"),
            (
                "secure_path = \"bin:/usr/bin\"",
                "must be absolute directories",
            ),
            ("secure_path = \"\"", "must be absolute directories"),
            ("once_window_s = -5", "invalid value"),
            ("once_window_s = \"120\"", "invalid type"),
        ] {
            let err = parse(&format!("{}[settings]\n{setting}\n", good())).unwrap_err();
            assert!(err.contains(expect), "{setting}: {err}");
        }
        assert!(parse("this is not toml").is_err());
    }
}
