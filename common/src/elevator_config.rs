//! The elevator's configuration (SPEC §5): who may approve, who may ask to become whom, and
//! the limits. The equivalent of sudoers — written by root, for humans, read strictly.
//!
//! Parsing refuses unknown fields, duplicate approvers, requesters or keys, and keys that
//! are not OpenSSH Ed25519 public keys. Every error is one line naming the file.
//!
//! Only the text is parsed here. The elevator reads the file itself, through a walk that
//! trusts no path (`assent_elevate::config`); others read it as they can and parse it with
//! the same function, so their answers match the elevator's.

use std::path::Path;

use assent_protocol::PublicKey;
use serde::Deserialize;

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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            secure_path: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            once_window_s: 120,
            max_ttl_s: 86_400,
            status_max_age_s: 120,
            clock_skew_s: 60,
        }
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
