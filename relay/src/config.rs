//! The relay config: who may log in as an approver, which agents are admitted, and the limits.
//!
//! ```toml
//! [[approver]]                 # exactly like elevator.toml
//! name = "alice"
//! key  = "ssh-ed25519 AAAA… alice@laptop"
//!
//! [agents]
//! policy = "loopback-any"      # or "allowlist"
//!
//! [[agent]]                    # always admitted, under either policy
//! name = "openclaw"
//! key  = "ssh-ed25519 AAAA… openclaw@mini"
//!
//! [limits]                     # all optional; see `Limits`
//! max_pending_per_agent = 16
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use assent_protocol::PublicKey;
use serde::Deserialize;

use crate::limits::Limits;

/// A named key: an approver or a listed agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedKey {
    pub name: String,
    pub key: PublicKey,
}

/// How agents that are not listed in `[[agent]]` are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentPolicy {
    /// Any agent key connecting from a loopback address; others must be listed.
    #[default]
    LoopbackAny,
    /// Only listed agent keys, from anywhere.
    Allowlist,
}

/// Everything the relay is configured with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayConfig {
    /// Keys that may log in as approvers and sign decisions and statuses.
    pub approvers: Vec<NamedKey>,
    pub agent_policy: AgentPolicy,
    /// Agent keys admitted under any policy.
    pub agents: Vec<NamedKey>,
    pub limits: Limits,
    /// Allow plain `ws://` on an address that is not loopback.
    pub insecure_listen: bool,
}

/// A config file that could not be used: which file and what is wrong, on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: Option<PathBuf>,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "config {}: {}", path.display(), self.problem),
            None => write!(f, "config: {}", self.problem),
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    approver: Vec<KeyEntry>,
    #[serde(default)]
    agents: AgentsSection,
    #[serde(default)]
    agent: Vec<KeyEntry>,
    #[serde(default)]
    limits: Limits,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AgentsSection {
    #[serde(default)]
    policy: AgentPolicy,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    name: String,
    key: String,
}

impl RelayConfig {
    /// Read and check a config file.
    pub fn load(path: &Path) -> Result<RelayConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: Some(path.to_owned()),
            problem: format!("cannot read it: {e}"),
        })?;
        Self::from_toml_str(&text).map_err(|mut e| {
            e.path = Some(path.to_owned());
            e
        })
    }

    /// Parse and check config text.
    pub fn from_toml_str(text: &str) -> Result<RelayConfig, ConfigError> {
        let err = |problem: String| ConfigError {
            path: None,
            problem,
        };
        let file: ConfigFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let message = e.message().trim().replace('\n', "; ");
            err(match line {
                Some(line) => format!("line {line}: {message}"),
                None => message,
            })
        })?;
        let approvers = named_keys("approver", file.approver).map_err(err)?;
        let agents = named_keys("agent", file.agent).map_err(err)?;
        file.limits.validate().map_err(err)?;
        Ok(RelayConfig {
            approvers,
            agent_policy: file.agents.policy,
            agents,
            limits: file.limits,
            insecure_listen: false,
        })
    }

    /// Add an approver (for configs built in code, such as a console's embedded relay).
    pub fn with_approver(mut self, name: &str, key: PublicKey) -> Self {
        self.approvers.push(NamedKey {
            name: name.to_owned(),
            key,
        });
        self
    }

    /// Add a listed agent.
    pub fn with_agent(mut self, name: &str, key: PublicKey) -> Self {
        self.agents.push(NamedKey {
            name: name.to_owned(),
            key,
        });
        self
    }

    /// Check a config built in code the same way a file is checked.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |problem: String| ConfigError {
            path: None,
            problem,
        };
        check_unique("approver", &self.approvers).map_err(err)?;
        check_unique("agent", &self.agents).map_err(err)?;
        self.limits.validate().map_err(err)
    }

    /// The name of the approver holding `key`, if it is listed.
    pub fn approver_name(&self, key: &PublicKey) -> Option<&str> {
        find(&self.approvers, key)
    }

    /// The name of the listed agent holding `key`, if it is listed.
    pub fn agent_name(&self, key: &PublicKey) -> Option<&str> {
        find(&self.agents, key)
    }
}

fn find<'a>(list: &'a [NamedKey], key: &PublicKey) -> Option<&'a str> {
    list.iter().find(|n| n.key == *key).map(|n| n.name.as_str())
}

fn named_keys(section: &str, entries: Vec<KeyEntry>) -> Result<Vec<NamedKey>, String> {
    let mut keys = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let key = PublicKey::parse(&entry.key)
            .map_err(|e| format!("[[{section}]] #{} ({:?}): key: {e}", i + 1, entry.name))?;
        keys.push(NamedKey {
            name: entry.name,
            key,
        });
    }
    check_unique(section, &keys)?;
    Ok(keys)
}

fn check_unique(section: &str, keys: &[NamedKey]) -> Result<(), String> {
    let mut names = HashMap::new();
    let mut seen = HashMap::new();
    for k in keys {
        if k.name.is_empty() || k.name.len() > 256 || k.name.chars().any(char::is_control) {
            return Err(format!(
                "[[{section}]] name {:?} must be 1 to 256 characters with no control characters",
                k.name
            ));
        }
        if names.insert(k.name.as_str(), ()).is_some() {
            return Err(format!("[[{section}]] name {:?} is listed twice", k.name));
        }
        if let Some(other) = seen.insert(k.key, k.name.as_str()) {
            return Err(format!(
                "[[{section}]] {:?} and {other:?} have the same key {}",
                k.name,
                k.key.fingerprint()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use assent_protocol::PrivateKey;

    fn key_line(seed: u8) -> String {
        PrivateKey::from_seed(&[seed; 32], "")
            .public()
            .to_openssh("c")
    }

    #[test]
    fn parses_a_full_config() {
        let text = format!(
            r#"
[[approver]]
name = "alice"
key  = "{}"

[[approver]]
name = "bob"
key = "{}"

[agents]
policy = "allowlist"

[[agent]]
name = "openclaw"
key = "{}"

[limits]
max_pending_per_agent = 4
login_timeout_s = 2
"#,
            key_line(1),
            key_line(2),
            key_line(3)
        );
        let c = RelayConfig::from_toml_str(&text).unwrap();
        assert_eq!(c.approvers.len(), 2);
        assert_eq!(c.approvers[1].name, "bob");
        assert_eq!(c.agent_policy, AgentPolicy::Allowlist);
        assert_eq!(
            c.agent_name(&PublicKey::parse(&key_line(3)).unwrap()),
            Some("openclaw")
        );
        assert_eq!(
            c.approver_name(&PublicKey::parse(&key_line(1)).unwrap()),
            Some("alice")
        );
        assert_eq!(
            c.approver_name(&PublicKey::parse(&key_line(3)).unwrap()),
            None
        );
        assert_eq!(c.limits.max_pending_per_agent, 4);
        assert_eq!(c.limits.login_timeout_s, 2);
        assert_eq!(c.limits.max_frame_bytes, 64 * 1024);
    }

    #[test]
    fn empty_config_means_loopback_agents_and_no_approver() {
        let c = RelayConfig::from_toml_str("").unwrap();
        assert!(c.approvers.is_empty());
        assert_eq!(c.agent_policy, AgentPolicy::LoopbackAny);
        assert_eq!(c.limits, Limits::default());
    }

    #[test]
    fn refuses_bad_configs_with_one_line_each() {
        let k = key_line(1);
        let cases = [
            ("unknown = 1\n", "line 1"),
            ("[limits]\nmax_frame = 3\n", "unknown field `max_frame`"),
            ("[agents]\npolicy = \"everyone\"\n", "unknown variant"),
            (
                "[[approver]]\nname = \"a\"\nkey = \"ssh-rsa AAAA\"\n",
                "only ssh-ed25519",
            ),
            (
                &format!(
                    "[[approver]]\nname = \"a\"\nkey = \"{k}\"\n[[approver]]\nname = \"b\"\nkey = \"{k}\"\n"
                ),
                "have the same key",
            ),
            (
                &format!(
                    "[[approver]]\nname = \"a\"\nkey = \"{k}\"\n[[approver]]\nname = \"a\"\nkey = \"{}\"\n",
                    key_line(2)
                ),
                "listed twice",
            ),
            ("[[approver]]\nname = \"a\"\n", "missing field `key`"),
            ("[limits]\nmax_connections = 0\n", "greater than 0"),
        ];
        for (text, want) in cases {
            let e = RelayConfig::from_toml_str(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(!e.contains('\n'), "not one line: {e:?}");
        }
    }

    /// The template `install.sh --relay` installs.
    const TEMPLATE: &str = include_str!("../../packaging/relay.toml");

    #[test]
    fn the_packaged_template_parses_and_shows_the_defaults() {
        let c = RelayConfig::from_toml_str(TEMPLATE).unwrap();
        assert_eq!(c.agent_policy, AgentPolicy::Allowlist);
        assert!(c.approvers.is_empty() && c.agents.is_empty());
        // Every limit is shown, commented out, with its default.
        let limits: String = TEMPLATE
            .split_once("[limits]\n")
            .expect("the template has a [limits] table")
            .1
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let shown = RelayConfig::from_toml_str(&format!("[limits]\n{limits}")).unwrap();
        assert_eq!(shown.limits, Limits::default());
        let defaults = toml::to_string(&Limits::default()).unwrap();
        assert_eq!(
            limits.lines().filter(|l| !l.is_empty()).count(),
            defaults.lines().count(),
            "a limit is missing from the template"
        );
    }

    #[test]
    fn load_names_the_file() {
        let e = RelayConfig::load(Path::new("/nonexistent/relay.toml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config /nonexistent/relay.toml: cannot read it")
        );
    }
}
