//! The decision log: `$XDG_STATE_HOME/assent/decisions.jsonl`, append-only, one JSON record a
//! line. History and Grants are rebuilt from it at start, so decisions (and whether the relay
//! delivered them), requests decided by other consoles and revocations all survive a restart.
//!
//! Records keep the signed envelopes, not summaries: on load each is opened again with
//! [`assent_protocol::Envelope::open`], so a line edited by hand is dropped, not believed.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use assent_protocol::{Decision, Envelope, Request, RequestId, Sha256Digest, Signed, Verdict};
use serde::{Deserialize, Serialize};

/// One line of the log, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    /// A decision this console signed.
    Decision {
        request: Envelope,
        decision: Envelope,
    },
    /// A request another approver decided while it was shown here.
    DecidedElsewhere {
        at: u64,
        request: Envelope,
        approver: String,
        verdict: Verdict,
    },
    /// A reusable grant revoked here.
    Revoke {
        at: u64,
        decision_sha256: Sha256Digest,
    },
    /// The relay said this decision reached the agent that asked.
    Delivered {
        at: u64,
        request_id: RequestId,
        decision_sha256: Sha256Digest,
    },
}

/// A record whose envelopes verified.
// Entries are made one at a time and folded into the state at once; boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Entry {
    Decided {
        request: Signed<Request>,
        decision: Signed<Decision>,
    },
    DecidedElsewhere {
        at: u64,
        request: Signed<Request>,
        approver: String,
        verdict: Verdict,
    },
    Revoked {
        at: u64,
        decision_sha256: Sha256Digest,
    },
    Delivered {
        at: u64,
        request_id: RequestId,
        decision_sha256: Sha256Digest,
    },
}

impl Entry {
    /// The record to store for this entry.
    pub fn record(&self) -> Record {
        match self {
            Entry::Decided { request, decision } => Record::Decision {
                request: request.envelope.clone(),
                decision: decision.envelope.clone(),
            },
            Entry::DecidedElsewhere {
                at,
                request,
                approver,
                verdict,
            } => Record::DecidedElsewhere {
                at: *at,
                request: request.envelope.clone(),
                approver: approver.clone(),
                verdict: *verdict,
            },
            Entry::Revoked {
                at,
                decision_sha256,
            } => Record::Revoke {
                at: *at,
                decision_sha256: *decision_sha256,
            },
            Entry::Delivered {
                at,
                request_id,
                decision_sha256,
            } => Record::Delivered {
                at: *at,
                request_id: *request_id,
                decision_sha256: *decision_sha256,
            },
        }
    }
}

impl Record {
    /// Verify the envelopes and check that a decision names its request.
    pub fn open(&self) -> Result<Entry, String> {
        match self {
            Record::Decision { request, decision } => {
                let request = request.open::<Request>().map_err(|e| e.to_string())?;
                let decision = decision.open::<Decision>().map_err(|e| e.to_string())?;
                if decision.payload.request_id != request.payload.id
                    || decision.payload.request_sha256 != request.sha256
                {
                    return Err("decision does not belong to its request".into());
                }
                Ok(Entry::Decided { request, decision })
            }
            Record::DecidedElsewhere {
                at,
                request,
                approver,
                verdict,
            } => Ok(Entry::DecidedElsewhere {
                at: *at,
                request: request.open::<Request>().map_err(|e| e.to_string())?,
                approver: approver.clone(),
                verdict: *verdict,
            }),
            Record::Revoke {
                at,
                decision_sha256,
            } => Ok(Entry::Revoked {
                at: *at,
                decision_sha256: *decision_sha256,
            }),
            Record::Delivered {
                at,
                request_id,
                decision_sha256,
            } => Ok(Entry::Delivered {
                at: *at,
                request_id: *request_id,
                decision_sha256: *decision_sha256,
            }),
        }
    }
}

/// The log file.
#[derive(Debug, Clone)]
pub struct DecisionLog {
    path: PathBuf,
}

/// What loading found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub entries: Vec<Entry>,
    /// Lines that did not parse or verify (skipped, counted so the console can say so).
    pub skipped: usize,
}

impl DecisionLog {
    pub fn new(path: impl Into<PathBuf>) -> DecisionLog {
        DecisionLog { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read every entry; a missing file is an empty log.
    pub fn load(&self) -> std::io::Result<Loaded> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::default()),
            Err(e) => return Err(e),
        };
        let mut loaded = Loaded::default();
        for line in BufReader::new(file).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Record>(&line)
                .map_err(|e| e.to_string())
                .and_then(|r| r.open())
            {
                Ok(entry) => loaded.entries.push(entry),
                Err(_) => loaded.skipped += 1,
            }
        }
        Ok(loaded)
    }

    /// Append one record as one line (one `write`, O_APPEND) and flush it to disk.
    pub fn append(&self, record: &Record) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut line = serde_json::to_string(record).expect("records always serialise");
        line.push('\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)?;
        file.write_all(line.as_bytes())?;
        file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::{self, Choice};
    use crate::testing;

    #[test]
    fn entries_survive_a_reload_and_tampering_is_dropped() {
        let dir = std::env::temp_dir().join(format!("assent-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let log = DecisionLog::new(dir.join("sub/decisions.jsonl"));
        assert_eq!(log.load().unwrap().entries.len(), 0);

        let key = testing::approver_key();
        let request = testing::signed(testing::request("true", &[]), 1, 1);
        let choice = Choice::approve(assent_protocol::Grant::Timed, Some(900));
        let decision = sign::decision(
            &request,
            &choice,
            "alice",
            testing::CONSOLE,
            testing::NOW,
            120,
        );
        let decision = assent_protocol::Envelope::seal(&key, &decision)
            .open()
            .unwrap();
        let entry = Entry::Decided {
            request: request.clone(),
            decision: decision.clone(),
        };
        log.append(&entry.record()).unwrap();
        log.append(&Record::Revoke {
            at: 5,
            decision_sha256: decision.sha256,
        })
        .unwrap();

        // A forged line: the decision of another request pasted next to this request.
        let other = testing::signed(testing::request("id", &[]), 2, 1);
        let forged = Record::Decision {
            request: other.envelope.clone(),
            decision: decision.envelope.clone(),
        };
        log.append(&forged).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap()
            .write_all(b"{not json\n")
            .unwrap();

        let loaded = log.load().unwrap();
        assert_eq!(loaded.skipped, 2);
        assert_eq!(loaded.entries.len(), 2);
        assert!(
            matches!(&loaded.entries[0], Entry::Decided { decision: d, .. } if d.sha256 == decision.sha256)
        );
        assert!(
            matches!(&loaded.entries[1], Entry::Revoked { at: 5, decision_sha256 } if *decision_sha256 == decision.sha256)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
