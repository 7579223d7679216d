//! The command hash (SPEC §4.7): what a decision binds a command to.

use crate::{Env, ItemHasher, Request, Sha256Digest};

/// The parts of a command that an approval covers.
#[derive(Debug, Clone, Copy)]
pub struct CommandLine<'a> {
    pub run_as: &'a str,
    pub program: &'a str,
    pub program_sha256: &'a Sha256Digest,
    pub argv: &'a [String],
    pub cwd: &'a str,
    pub env: &'a Env,
}

/// SHA-256 over each item as a 4-byte big-endian length followed by its bytes: `run_as`,
/// `program`, `program_sha256` (hex), the argv count (decimal), each argv item, `cwd`, the env
/// count (decimal), then each env key and value sorted by key.
pub fn cmd_sha256(cmd: &CommandLine<'_>) -> Sha256Digest {
    let mut h = ItemHasher::new();
    h.item(cmd.run_as.as_bytes())
        .item(cmd.program.as_bytes())
        .item(cmd.program_sha256.to_hex().as_bytes())
        .item(cmd.argv.len().to_string().as_bytes());
    for arg in cmd.argv {
        h.item(arg.as_bytes());
    }
    h.item(cmd.cwd.as_bytes())
        .item(cmd.env.len().to_string().as_bytes());
    // Env is a BTreeMap, so iteration is already sorted by key (bytewise).
    for (k, v) in cmd.env.iter() {
        h.item(k.as_bytes()).item(v.as_bytes());
    }
    h.finish()
}

impl Request {
    /// The command this request asks for.
    pub fn command_line(&self) -> CommandLine<'_> {
        CommandLine {
            run_as: &self.run_as,
            program: &self.program,
            program_sha256: &self.program_sha256,
            argv: &self.argv,
            cwd: &self.cwd,
            env: &self.env,
        }
    }

    pub fn cmd_sha256(&self) -> Sha256Digest {
        cmd_sha256(&self.command_line())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn hash(argv: &[&str], env: &[(&str, &str)]) -> Sha256Digest {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let env = Env(env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect());
        cmd_sha256(&CommandLine {
            run_as: "root",
            program: "/usr/bin/apt-get",
            program_sha256: &Sha256Digest([1; 32]),
            argv: &argv,
            cwd: "/tmp",
            env: &env,
        })
    }

    #[test]
    fn boundaries_between_items_matter() {
        assert_ne!(hash(&["a", "bc"], &[]), hash(&["ab", "c"], &[]));
        assert_ne!(hash(&["a", ""], &[]), hash(&["a"], &[]));
        assert_ne!(hash(&["a"], &[("K", "V")]), hash(&["a", "K", "V"], &[]));
        assert_ne!(hash(&["a"], &[("K", "V=W")]), hash(&["a"], &[("K=V", "W")]));
    }

    #[test]
    fn matches_an_independent_encoding() {
        // Built by hand from the SPEC §4.7 wording.
        let mut buf = Vec::new();
        for item in [
            "root",
            "/usr/bin/apt-get",
            &Sha256Digest([1; 32]).to_hex(),
            "2",
            "apt-get",
            "upgrade",
            "/tmp",
            "1",
            "DEBIAN_FRONTEND",
            "noninteractive",
        ] {
            buf.extend_from_slice(&(item.len() as u32).to_be_bytes());
            buf.extend_from_slice(item.as_bytes());
        }
        assert_eq!(
            hash(
                &["apt-get", "upgrade"],
                &[("DEBIAN_FRONTEND", "noninteractive")]
            ),
            crate::sha256(&buf)
        );
    }

    #[test]
    fn env_order_is_by_key() {
        let mut a = BTreeMap::new();
        a.insert("B".to_string(), "2".to_string());
        a.insert("A".to_string(), "1".to_string());
        assert_eq!(
            hash(&["x"], &[("A", "1"), ("B", "2")]),
            hash(&["x"], &[("B", "2"), ("A", "1")])
        );
    }
}
