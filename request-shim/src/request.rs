//! Building the request (SPEC §4.4) from what the agent typed.

use std::collections::BTreeMap;
use std::ffi::OsString;

use assent_protocol::{
    Env, Grant, HostId, PrivateKey, Request, RequestId, Sha256Digest, Signed, Withdraw,
};

use crate::failure::{Failure, Result};

/// Who is asking, from where: the facts the elevator checks against its own view of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// `gethostname()`.
    pub host: String,
    /// The real uid's user name.
    pub user: String,
    pub uid: u32,
}

impl Requester {
    /// The calling process's real uid, its name, and this host's name.
    pub fn current() -> Result<Requester> {
        let uid = nix::unistd::getuid();
        let user = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .ok_or_else(|| {
                Failure::config(format!(
                    "uid {uid} has no user name in the password database; the elevator only serves named users"
                ))
            })?
            .name;
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                Failure::config("this host's name (gethostname) is empty or not UTF-8")
            })?;
        Ok(Requester {
            host,
            user,
            uid: uid.as_raw(),
        })
    }
}

/// The command to approve: every field that `cmd_sha256` covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub run_as: String,
    /// Absolute, canonical path of the file the elevator will execute.
    pub program: String,
    pub program_sha256: Sha256Digest,
    /// As typed; argv[0] kept.
    pub argv: Vec<String>,
    pub cwd: String,
    pub env: Env,
}

impl Command {
    pub fn cmd_sha256(&self) -> Sha256Digest {
        assent_protocol::cmd_sha256(&assent_protocol::CommandLine {
            run_as: &self.run_as,
            program: &self.program,
            program_sha256: &self.program_sha256,
            argv: &self.argv,
            cwd: &self.cwd,
            env: &self.env,
        })
    }
}

/// What the agent asks for beyond the command itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub agent: String,
    pub reason: String,
    pub grant: Grant,
    /// Only for timed grants.
    pub ttl_s: Option<u64>,
    /// How long to wait for an answer.
    pub timeout_s: u64,
}

/// The request payload for `command` on this host (named by `requester.host` and `host_id`),
/// created `now`.
pub fn build(
    requester: &Requester,
    host_id: HostId,
    command: &Command,
    ask: &Ask,
    now: u64,
) -> Request {
    Request {
        v: Default::default(),
        kind: Default::default(),
        id: RequestId::random(),
        agent: ask.agent.clone(),
        host: requester.host.clone(),
        host_id,
        user: requester.user.clone(),
        uid: requester.uid,
        run_as: command.run_as.clone(),
        program: command.program.clone(),
        program_sha256: command.program_sha256,
        argv: command.argv.clone(),
        cwd: command.cwd.clone(),
        env: command.env.clone(),
        reason: ask.reason.clone(),
        grant: ask.grant,
        ttl_s: ask.ttl_s,
        created_at: now,
        expires_at: now.saturating_add(ask.timeout_s.max(1)),
    }
}

/// Sign `request` with the agent's key.
pub fn seal(key: &PrivateKey, request: &Request) -> assent_protocol::Envelope {
    assent_protocol::Envelope::seal(key, request)
}

/// A withdraw of `request`, signed with the key that signed it, at `now`.
pub fn withdraw(
    key: &PrivateKey,
    request: &Signed<Request>,
    now: u64,
) -> assent_protocol::Envelope {
    let withdraw = Withdraw {
        v: Default::default(),
        kind: Default::default(),
        request_id: request.payload.id,
        request_sha256: request.sha256,
        withdrawn_at: now,
    };
    assent_protocol::Envelope::seal(key, &withdraw)
}

/// A portable environment variable name: letters, digits and `_`, not starting with a digit.
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// `NAME=VALUE`, with NAME a portable variable name.
pub fn parse_env_assignment(text: &str) -> Result<(String, String), String> {
    let Some((name, value)) = text.split_once('=') else {
        return Err(format!(
            "environment entry {text:?} has no '='; write NAME=VALUE"
        ));
    };
    if !is_env_name(name) {
        return Err(format!(
            "{name:?} is not a variable name (letters, digits and _, not starting with a digit)"
        ));
    }
    if value.contains('\0') {
        return Err(format!("the value of {name} contains a NUL byte"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// Collect `NAME=VALUE` entries; the same name twice is a mistake, not an override.
pub fn collect_env(entries: impl IntoIterator<Item = (String, String)>) -> Result<Env, String> {
    let mut env = BTreeMap::new();
    for (name, value) in entries {
        if env.insert(name.clone(), value).is_some() {
            return Err(format!(
                "environment variable {name} is given twice; give it once"
            ));
        }
    }
    Ok(Env(env))
}

/// argv as UTF-8 strings; the protocol carries text only.
pub fn utf8_argv(words: &[OsString]) -> Result<Vec<String>> {
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            w.to_str().map(str::to_owned).ok_or_else(|| {
                Failure::usage(format!(
                    "argument {i} ({}) is not valid UTF-8; assent can only ask about text arguments",
                    w.to_string_lossy()
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use assent_protocol::Payload as _;

    #[test]
    fn env_assignment() {
        assert_eq!(
            parse_env_assignment("DEBIAN_FRONTEND=noninteractive"),
            Ok(("DEBIAN_FRONTEND".into(), "noninteractive".into()))
        );
        assert_eq!(parse_env_assignment("A="), Ok(("A".into(), "".into())));
        assert_eq!(
            parse_env_assignment("A=b=c"),
            Ok(("A".into(), "b=c".into()))
        );
        assert_eq!(
            parse_env_assignment("_x1=y"),
            Ok(("_x1".into(), "y".into()))
        );
        assert!(
            parse_env_assignment("NOEQUALS")
                .unwrap_err()
                .contains("NAME=VALUE")
        );
        for bad in ["=v", "1A=v", "A-B=v", "A B=v", "Ä=v", "A.B=v"] {
            assert!(
                parse_env_assignment(bad)
                    .unwrap_err()
                    .contains("not a variable name"),
                "{bad}"
            );
        }
        assert!(parse_env_assignment("A=x\0y").unwrap_err().contains("NUL"));
    }

    #[test]
    fn env_names_must_be_unique() {
        let env = collect_env([("B".into(), "2".into()), ("A".into(), "1".into())]).unwrap();
        assert_eq!(env.iter().collect::<Vec<_>>(), [("A", "1"), ("B", "2")]);
        let err = collect_env([("A".into(), "1".into()), ("A".into(), "2".into())]).unwrap_err();
        assert!(err.contains("A is given twice"));
    }

    #[test]
    fn non_utf8_argument_is_refused() {
        use std::os::unix::ffi::OsStringExt;
        let words = [OsString::from("ls"), OsString::from_vec(vec![0x66, 0xff])];
        let err = utf8_argv(&words).unwrap_err();
        assert_eq!(err.exit, crate::failure::Exit::Usage);
        assert!(err.message.contains("argument 1"), "{}", err.message);
    }

    #[test]
    fn built_request_is_a_valid_payload_with_our_fields() {
        let requester = Requester {
            host: "mini.local".into(),
            user: "openclaw".into(),
            uid: 1001,
        };
        let command = Command {
            run_as: "root".into(),
            program: "/usr/bin/apt-get".into(),
            program_sha256: Sha256Digest([7; 32]),
            argv: vec!["apt-get".into(), "upgrade".into()],
            cwd: "/home/openclaw".into(),
            env: collect_env([("DEBIAN_FRONTEND".into(), "noninteractive".into())]).unwrap(),
        };
        let ask = Ask {
            agent: "openclaw".into(),
            reason: "security patch".into(),
            grant: Grant::Timed,
            ttl_s: Some(3600),
            timeout_s: 300,
        };
        let host_id = HostId([0x3f; 16]);
        let a = build(&requester, host_id, &command, &ask, 1_763_770_000);
        let b = build(&requester, host_id, &command, &ask, 1_763_770_000);
        assert_ne!(a.id, b.id, "ids are random");
        assert_eq!((a.host.as_str(), a.host_id), ("mini.local", host_id));
        assert_eq!(a.expires_at, 1_763_770_300);
        assert_eq!(a.cmd_sha256(), command.cmd_sha256());
        // Round trip through signing and the one verifier.
        let key = PrivateKey::generate("test");
        let opened = seal(&key, &a).open::<Request>().unwrap();
        assert_eq!(opened.payload, a);
        assert_eq!(opened.signer, key.public());
        Request::from_bytes(&a.to_bytes()).unwrap();
    }
}
