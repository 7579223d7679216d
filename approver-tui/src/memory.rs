//! What the console remembers between requests and across restarts, so that its flags and its
//! references keep their meaning:
//!
//! - which agent keys this approver key has approved, and under which agent names (from the
//!   decision log): a key is `first-seen` until its first approval, and a known name with an
//!   unknown key is flagged;
//! - which signed bytes each request id and each reference named (from the decision log and
//!   the list of requests shown, [`ShownFile`]): an id or a reference that comes back naming
//!   other bytes is refused, so a reference the approver read can never name another request.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use assent_protocol::{Request, RequestId, Sha256Digest, Signed, Verdict};

use crate::log::Entry;
use crate::risk::Risk;

// A reference is the start of the request's SHA-256 (48 bits,
// `Sha256Digest::reference`). Two requests the console has seen never share one (the second
// is refused), so it names exactly one.
use assent_protocol::REFERENCE_LEN as REF_LEN;

fn ref_key(sha256: &Sha256Digest) -> [u8; REF_LEN / 2] {
    let mut key = [0u8; REF_LEN / 2];
    key.copy_from_slice(&sha256.0[..REF_LEN / 2]);
    key
}

/// What the decision log and the requests shown before say.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    /// This approver's key: only its own approvals make an agent key known.
    approver: String,
    /// Fingerprints of agent keys with at least one approval.
    approved_keys: HashSet<String>,
    /// Agent names with the fingerprints of the keys approved under each.
    names: HashMap<String, HashSet<String>>,
    /// The digest each request id named.
    ids: HashMap<RequestId, Sha256Digest>,
    /// The digest each reference named.
    refs: HashMap<[u8; REF_LEN / 2], Sha256Digest>,
}

impl Memory {
    /// An empty memory for the approver key with this fingerprint.
    pub fn new(approver_fingerprint: &str) -> Memory {
        Memory {
            approver: approver_fingerprint.to_string(),
            ..Memory::default()
        }
    }

    /// Fold one decision-log entry in.
    pub fn learn(&mut self, entry: &Entry) {
        match entry {
            Entry::Decided { request, decision } => {
                self.saw(request.payload.id, request.sha256);
                let mine = decision.signer.fingerprint().as_str() == self.approver;
                // A denial does not make a key known: it is still one never approved.
                if mine && decision.payload.verdict == Verdict::Approve {
                    self.approved(
                        &request.payload.agent,
                        request.signer.fingerprint().as_str(),
                    );
                }
            }
            Entry::DecidedElsewhere { request, .. } => self.saw(request.payload.id, request.sha256),
            Entry::Revoked { .. } | Entry::Delivered { .. } => {}
        }
    }

    /// Record that this approver approved a request from `agent` signed by key `fingerprint`.
    pub fn approved(&mut self, agent: &str, fingerprint: &str) {
        self.approved_keys.insert(fingerprint.to_string());
        self.names
            .entry(agent.to_string())
            .or_default()
            .insert(fingerprint.to_string());
    }

    /// Record a request shown to the approver (or decided).
    pub fn saw(&mut self, id: RequestId, sha256: Sha256Digest) {
        self.ids.entry(id).or_insert(sha256);
        self.refs.entry(ref_key(&sha256)).or_insert(sha256);
    }

    /// Why a request must be refused: its id or its reference already named other bytes.
    pub fn conflict(&self, id: RequestId, sha256: &Sha256Digest) -> Option<String> {
        if self.ids.get(&id).is_some_and(|seen| seen != sha256) {
            return Some(format!(
                "its id {id} was already used by another request; a reused id is never shown"
            ));
        }
        if self
            .refs
            .get(&ref_key(sha256))
            .is_some_and(|seen| seen != sha256)
        {
            return Some(format!(
                "its reference {} already names another request",
                sha256.reference()
            ));
        }
        None
    }

    /// Whether this exact request was shown before.
    pub fn shown(&self, sha256: &Sha256Digest) -> bool {
        self.refs.get(&ref_key(sha256)) == Some(sha256)
    }

    /// Every digest remembered whose hex starts with `prefix`.
    pub fn matching(&self, prefix: &str) -> Vec<Sha256Digest> {
        let mut out: Vec<Sha256Digest> = self
            .refs
            .values()
            .filter(|d| d.to_hex().starts_with(prefix))
            .copied()
            .collect();
        out.sort();
        out
    }

    /// The flags about the agent key: first-seen until this approver's first approval of that
    /// key, and a known name arriving with a key never approved under it.
    pub fn agent_flags(&self, request: &Signed<Request>) -> Vec<Risk> {
        let fingerprint = request.signer.fingerprint();
        let mut flags = Vec::new();
        if !self.approved_keys.contains(fingerprint.as_str()) {
            flags.push(Risk::FirstSeenAgent);
        }
        if let Some(keys) = self.names.get(&request.payload.agent) {
            if !keys.contains(fingerprint.as_str()) {
                flags.push(Risk::NameNewKey(request.payload.agent.clone()));
            }
        }
        flags
    }
}

/// The requests shown to this approver (by the console and by `list`), one line each:
/// `ID SHA256 EXPIRES_AT`. Lines for requests that expired more than [`KEEP_S`] ago are
/// dropped when the file is rewritten.
#[derive(Debug, Clone)]
pub struct ShownFile {
    path: PathBuf,
}

/// How long after its expiry a shown request is remembered.
pub const KEEP_S: u64 = 86_400;

/// One request shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    pub id: RequestId,
    pub sha256: Sha256Digest,
    pub expires_at: u64,
}

impl Shown {
    pub fn of(request: &Signed<Request>) -> Shown {
        Shown {
            id: request.payload.id,
            sha256: request.sha256,
            expires_at: request.payload.expires_at,
        }
    }

    fn line(&self) -> String {
        format!("{} {} {}\n", self.id, self.sha256, self.expires_at)
    }

    fn parse(line: &str) -> Option<Shown> {
        let mut parts = line.split(' ');
        let shown = Shown {
            id: RequestId::from_hex(parts.next()?)?,
            sha256: Sha256Digest::from_hex(parts.next()?)?,
            expires_at: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(shown)
    }
}

impl ShownFile {
    pub fn new(path: impl Into<PathBuf>) -> ShownFile {
        ShownFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every request remembered as shown, dropping (and rewriting the file without) those
    /// long expired once they are the larger part of it. A missing file is an empty list.
    pub fn load(&self, now: u64) -> std::io::Result<Vec<Shown>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut all = Vec::new();
        for line in BufReader::new(file).lines() {
            if let Some(shown) = Shown::parse(&line?) {
                all.push(shown);
            }
        }
        let fresh: Vec<Shown> = all
            .iter()
            .filter(|s| s.expires_at.saturating_add(KEEP_S) > now)
            .copied()
            .collect();
        if all.len() > 1000 && fresh.len() * 2 < all.len() {
            self.rewrite(&fresh)?;
        }
        Ok(fresh)
    }

    /// Append requests shown (one write).
    pub fn append(&self, shown: &[Shown]) -> std::io::Result<()> {
        if shown.is_empty() {
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text: String = shown.iter().map(Shown::line).collect();
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)?
            .write_all(text.as_bytes())
    }

    fn rewrite(&self, keep: &[Shown]) -> std::io::Result<()> {
        let tmp = self
            .path
            .with_extension(format!("{}.tmp", std::process::id()));
        let text: String = keep.iter().map(Shown::line).collect();
        let written = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::{self, Choice};
    use crate::testing::{self, NOW};
    use assent_protocol::Grant;

    fn decided(request: &Signed<Request>, choice: Choice, key: u8) -> Entry {
        let signer = if key == 0 {
            testing::approver_key()
        } else {
            testing::agent_key(key)
        };
        let decision = sign::decision(request, &choice, "alice", crate::testing::CONSOLE, NOW, 120);
        Entry::Decided {
            request: request.clone(),
            decision: sign::seal_decision(&signer, &decision),
        }
    }

    fn me() -> Memory {
        Memory::new(testing::approver_key().public().fingerprint().as_str())
    }

    #[test]
    fn first_seen_lasts_until_the_first_approval_not_a_denial() {
        let mut memory = me();
        let request = testing::signed(testing::request("ls", &[]), 1, 1);
        assert_eq!(memory.agent_flags(&request), [Risk::FirstSeenAgent]);
        memory.learn(&decided(&request, Choice::deny(None), 0));
        assert_eq!(
            memory.agent_flags(&request),
            [Risk::FirstSeenAgent],
            "a denial does not clear it"
        );
        // Another approver key's approval (a key rotated away, a forged log line) does not.
        memory.learn(&decided(&request, Choice::approve(Grant::Once, None), 9));
        assert_eq!(memory.agent_flags(&request), [Risk::FirstSeenAgent]);
        memory.learn(&decided(&request, Choice::approve(Grant::Once, None), 0));
        assert!(memory.agent_flags(&request).is_empty());
    }

    #[test]
    fn a_known_name_with_another_key_is_flagged() {
        let mut memory = me();
        let openclaw = testing::signed(testing::request("ls", &[]), 1, 1);
        memory.learn(&decided(&openclaw, Choice::approve(Grant::Once, None), 0));
        let impostor = testing::signed(testing::request("ls", &[]), 2, 2);
        assert_eq!(
            memory.agent_flags(&impostor),
            [Risk::FirstSeenAgent, Risk::NameNewKey("openclaw".into())]
        );
        let mut other_name = testing::request("ls", &[]);
        other_name.agent = "builder".into();
        let other = testing::signed(other_name, 3, 2);
        assert_eq!(memory.agent_flags(&other), [Risk::FirstSeenAgent]);
    }

    #[test]
    fn an_id_or_reference_naming_other_bytes_is_a_conflict() {
        let mut memory = me();
        let first = testing::signed(testing::request("apt-get update", &[]), 1, 1);
        memory.saw(first.payload.id, first.sha256);
        assert_eq!(memory.conflict(first.payload.id, &first.sha256), None);
        assert!(memory.shown(&first.sha256));
        let reused = testing::signed(testing::request("bash -c evil", &[]), 1, 1);
        assert_eq!(reused.payload.id, first.payload.id);
        let why = memory.conflict(reused.payload.id, &reused.sha256).unwrap();
        assert!(why.contains("already used by another request"), "{why}");
        // Another id whose digest starts like the first one's (forged here: a real one
        // takes a collision search).
        let mut lookalike = first.sha256;
        lookalike.0[31] ^= 1;
        let why = memory.conflict(RequestId([9; 16]), &lookalike).unwrap();
        assert!(why.contains(&first.sha256.reference()), "{why}");
        assert_eq!(memory.matching(&first.sha256.reference()), [first.sha256]);
        assert!(memory.matching("zz").is_empty());
    }

    #[test]
    fn the_shown_file_survives_and_forgets_old_lines() {
        let dir = std::env::temp_dir().join(format!("assent-shown-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let file = ShownFile::new(dir.join("sub/shown"));
        assert!(file.load(NOW).unwrap().is_empty());
        let request = testing::signed(testing::request("ls", &[]), 1, 1);
        let shown = Shown::of(&request);
        file.append(&[shown]).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(file.path())
            .unwrap()
            .write_all(b"garbage\n")
            .unwrap();
        assert_eq!(file.load(NOW).unwrap(), [shown]);
        let old: Vec<Shown> = (0..2000u32)
            .map(|n| Shown {
                id: RequestId([n as u8; 16]),
                sha256: Sha256Digest([n as u8; 32]),
                expires_at: NOW - KEEP_S - 10,
            })
            .collect();
        file.append(&old).unwrap();
        assert_eq!(file.load(NOW).unwrap(), [shown]);
        let lines = std::fs::read_to_string(file.path())
            .unwrap()
            .lines()
            .count();
        assert_eq!(lines, 1, "rewritten without the stale lines");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
