//! The grant cache: approved timed and always grants, kept so the same command can run again
//! without a new prompt while its window lasts and the approver has not revoked it.
//!
//! One file per command and host in `$XDG_STATE_HOME/assent/grants/` (directory 0700, files
//! 0600), named by its [cache key](cache_key) in hex, holding `{"request": envelope,
//! "decision": envelope}`. The key covers the host name and host id as well as the command, so
//! that hosts sharing a home directory (NFS) keep their grants apart. Everything read back is
//! verified again; the cache is a convenience, never an authority — the elevator checks every
//! use, including a fresh status from the console that approved it.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use assent_common::elevator_config::Approver;
use assent_protocol::{
    Decision, Envelope, GrantToken, HostId, ItemHasher, OpenedGrant, PublicKey, Request,
    Sha256Digest, Signed, Status, Verdict,
};
use serde::{Deserialize, Serialize};

use crate::config::ELEVATOR_CONFIG;
use crate::keys;
use crate::request::{Command, Requester};
use crate::statuses;
use assent_common::duration;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    request: Envelope,
    decision: Envelope,
}

/// A verified cache entry.
#[derive(Debug, Clone)]
pub struct CachedGrant {
    pub request: Signed<Request>,
    pub decision: Signed<Decision>,
    pub path: PathBuf,
}

/// Why a cached grant cannot be used now. Only [`Unusable::is_final`] reasons drop it from the
/// cache; every other one can pass by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    Expired {
        ago_s: u64,
    },
    ProgramChanged {
        program: String,
    },
    /// The elevator's config does not list its signer under its name (any more).
    NotListed {
        why: String,
    },
    Revoked {
        by: String,
    },
    NoStatus {
        approver: String,
    },
    StaleStatus {
        approver: String,
        age_s: u64,
        max_age_s: u64,
    },
}

impl Unusable {
    /// Expired, or revoked by a status of the console that approved it: it can never be used
    /// again, and only then is it dropped. A missing or stale status, a changed program or an
    /// approver no longer listed may all change back.
    pub fn is_final(&self) -> bool {
        matches!(self, Unusable::Expired { .. } | Unusable::Revoked { .. })
    }

    /// Only a fresh status of the approving console is missing: one may come any moment.
    pub fn is_waiting(&self) -> bool {
        matches!(
            self,
            Unusable::NoStatus { .. } | Unusable::StaleStatus { .. }
        )
    }

    /// The state `assent grants` shows for a grant unusable for this reason.
    pub fn state(&self) -> &'static str {
        match self {
            Unusable::Expired { .. } => "expired",
            Unusable::Revoked { .. } => "revoked",
            Unusable::NoStatus { .. } | Unusable::StaleStatus { .. } => "waiting",
            Unusable::ProgramChanged { .. } | Unusable::NotListed { .. } => "unusable",
        }
    }
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::Expired { ago_s } => write!(f, "expired {} ago", duration::format(*ago_s)),
            Unusable::ProgramChanged { program } => {
                write!(f, "program changed since it was approved ({program})")
            }
            Unusable::NotListed { why } => write!(f, "the elevator would refuse it: {why}"),
            Unusable::Revoked { by } => write!(f, "revoked by {by}"),
            Unusable::NoStatus { approver } => write!(
                f,
                "no status from the console of {approver} that approved it, which a reusable grant needs"
            ),
            Unusable::StaleStatus {
                approver,
                age_s,
                max_age_s,
            } => write!(
                f,
                "status is stale: the latest from the console of {approver} that approved it is {} old (at most {} allowed)",
                duration::format(*age_s),
                duration::format(*max_age_s)
            ),
        }
    }
}

/// The decision binds the request (id and payload hash) and approves exactly its command.
pub fn check_binding(request: &Signed<Request>, decision: &Signed<Decision>) -> Result<(), String> {
    let opened = OpenedGrant {
        request: request.clone(),
        decision: decision.clone(),
        status: None,
    };
    if !opened.decision_binds_request() {
        return Err("the decision names another request".into());
    }
    if decision.payload.cmd_sha256 != request.payload.cmd_sha256() {
        return Err("the decision's cmd_sha256 is not this request's command".into());
    }
    Ok(())
}

/// The decision is signed by an approver the elevator lists, under that approver's name, when
/// the list is known (`listed`). A relay can deliver a well-formed decision from any key;
/// only these would ever pass the elevator.
pub fn check_signer(
    decision: &Signed<Decision>,
    listed: Option<&[Approver]>,
) -> Result<(), String> {
    let Some(listed) = listed else {
        return Ok(());
    };
    match listed.iter().find(|a| a.key == decision.signer) {
        Some(a) if a.name == decision.payload.approver => Ok(()),
        Some(a) => Err(format!(
            "it claims approver {:?}, but its key is listed as {:?} in {ELEVATOR_CONFIG}",
            decision.payload.approver, a.name
        )),
        None => Err(format!(
            "it is signed by {}, which is not an [[approver]] in {ELEVATOR_CONFIG}",
            decision.signer.fingerprint()
        )),
    }
}

/// The window of an approved grant has not ended.
pub fn check_window(decision: &Decision, now: u64) -> Result<(), Unusable> {
    match decision.not_after {
        Some(end) if now > end => Err(Unusable::Expired { ago_s: now - end }),
        _ => Ok(()),
    }
}

/// What `status`, the newest seen from the console that approved `decision` (see
/// [`crate::statuses::StatusStore::update`]), says about using it at `now`: revoked, missing,
/// stale, or fine (then it is the status to send). Statuses of the same key from another
/// console never vouch for a grant they did not approve (the elevator refuses them too).
pub fn check_status(
    decision: &Signed<Decision>,
    status: Option<Signed<Status>>,
    now: u64,
    max_age_s: u64,
) -> Result<Signed<Status>, Unusable> {
    let approver = decision.payload.approver.clone();
    let Some(status) = status.filter(|s| statuses::vouches_for(s, decision)) else {
        return Err(Unusable::NoStatus { approver });
    };
    if status.payload.revoked.contains(&decision.sha256) {
        return Err(Unusable::Revoked {
            by: status.payload.approver.clone(),
        });
    }
    let age_s = now.saturating_sub(status.payload.issued_at);
    if age_s > max_age_s {
        return Err(Unusable::StaleStatus {
            approver,
            age_s,
            max_age_s,
        });
    }
    Ok(status)
}

/// Whether `grant` can run now with `status` (the newest seen from its console): its window
/// is open, its signer is still listed (when the list is known), and the status vouches for
/// it (then it is the status to send).
pub fn check_grant(
    grant: &CachedGrant,
    status: Option<Signed<Status>>,
    listed: Option<&[Approver]>,
    now: u64,
    max_age_s: u64,
) -> Result<Signed<Status>, Unusable> {
    check_window(&grant.decision.payload, now)?;
    check_signer(&grant.decision, listed).map_err(|why| Unusable::NotListed { why })?;
    check_status(&grant.decision, status, now, max_age_s)
}

/// The cache directory.
#[derive(Debug, Clone)]
pub struct GrantCache {
    dir: PathBuf,
}

impl GrantCache {
    pub fn new(dir: PathBuf) -> GrantCache {
        GrantCache { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_for(&self, host: &str, host_id: &HostId, cmd: &Sha256Digest) -> PathBuf {
        self.dir.join(cache_key(host, host_id, cmd).to_hex())
    }

    /// Keep an approved reusable grant, replacing any older one for the same command.
    pub fn store(
        &self,
        request: &Signed<Request>,
        decision: &Signed<Decision>,
    ) -> std::io::Result<PathBuf> {
        keys::private_dir(&self.dir)?;
        let entry = Entry {
            request: request.envelope.clone(),
            decision: decision.envelope.clone(),
        };
        let r = &request.payload;
        let path = self.path_for(&r.host, &r.host_id, &decision.payload.cmd_sha256);
        let json = serde_json::to_vec(&entry).expect("entries always serialise");
        keys::replace(&path, &json, 0o600)?;
        Ok(path)
    }

    /// Read and verify one file: both signatures, the binding, an approved reusable grant for
    /// the host and command its name says, requested with `agent`'s key.
    pub fn load(path: &Path, agent: &PublicKey) -> Result<CachedGrant, String> {
        let text = fs::read(path).map_err(|e| e.to_string())?;
        let entry: Entry = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
        let opened = GrantToken {
            request: entry.request,
            decision: entry.decision,
            status: None,
        }
        .open()
        .map_err(|e| e.to_string())?;
        let (request, decision) = (opened.request, opened.decision);
        check_binding(&request, &decision)?;
        if request.signer != *agent {
            return Err("the request was signed by another agent key".into());
        }
        if decision.payload.verdict != Verdict::Approve || !decision.payload.grant.is_reusable() {
            return Err("not an approved timed or always grant".into());
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let r = &request.payload;
        if name != cache_key(&r.host, &r.host_id, &decision.payload.cmd_sha256).to_hex() {
            return Err("the file name is not the grant's cache key (host and command)".into());
        }
        Ok(CachedGrant {
            request,
            decision,
            path: path.to_path_buf(),
        })
    }

    /// The cached grant for exactly this command by this requester on this host, if there is
    /// a valid one. A file that fails verification is removed.
    pub fn find(
        &self,
        command: &Command,
        requester: &Requester,
        host_id: &HostId,
        agent: &PublicKey,
    ) -> Option<CachedGrant> {
        let path = self.path_for(&requester.host, host_id, &command.cmd_sha256());
        if !path.exists() {
            return None;
        }
        match Self::load(&path, agent) {
            Ok(grant) if same_requester(&grant.request.payload, requester, host_id) => Some(grant),
            Ok(_) => None,
            Err(_) => {
                self.remove(&path);
                None
            }
        }
    }

    /// A cached grant for this same command line whose program file has since changed.
    pub fn find_changed_program(
        &self,
        command: &Command,
        requester: &Requester,
        host_id: &HostId,
        agent: &PublicKey,
    ) -> Option<CachedGrant> {
        self.entries(agent).into_iter().find_map(|(_, grant)| {
            let grant = grant.ok()?;
            let r = &grant.request.payload;
            (same_requester(r, requester, host_id)
                && r.run_as == command.run_as
                && r.program == command.program
                && r.argv == command.argv
                && r.cwd == command.cwd
                && r.env == command.env
                && r.program_sha256 != command.program_sha256)
                .then_some(grant)
        })
    }

    /// Every file in the cache, verified, sorted by path.
    pub fn entries(&self, agent: &PublicKey) -> Vec<(PathBuf, Result<CachedGrant, String>)> {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<_> = dir
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| Sha256Digest::from_hex(n).is_some())
            })
            .map(|p| {
                let grant = Self::load(&p, agent);
                (p, grant)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn remove(&self, path: &Path) {
        let _ = fs::remove_file(path);
    }
}

fn same_requester(request: &Request, requester: &Requester, host_id: &HostId) -> bool {
    request.host == requester.host
        && request.host_id == *host_id
        && request.uid == requester.uid
        && request.user == requester.user
}

/// What names a cache file: SHA-256 over the host name, the host id (hex) and the command
/// hash (hex), each length-prefixed as in `cmd_sha256`. A grant for one host never takes the
/// place of another host's grant for the same command.
pub fn cache_key(host: &str, host_id: &HostId, cmd_sha256: &Sha256Digest) -> Sha256Digest {
    let mut h = ItemHasher::new();
    h.item(host.as_bytes())
        .item(host_id.to_hex().as_bytes())
        .item(cmd_sha256.to_hex().as_bytes());
    h.finish()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::os::unix::fs::MetadataExt;

    use assent_protocol::{ConsoleId, Env, Grant, PrivateKey, Revocation, Revocations};

    use super::*;
    use crate::request::{self, Ask};

    /// The host id of mini.local.
    pub(crate) const HOST_ID: HostId = HostId([0x3f; 16]);
    /// The console alice approves from.
    pub(crate) const CONSOLE: ConsoleId = ConsoleId([0xc0; 16]);

    pub(crate) fn requester() -> Requester {
        Requester {
            host: "mini.local".into(),
            user: "openclaw".into(),
            uid: 1001,
        }
    }

    pub(crate) fn command(program_hash: u8) -> Command {
        Command {
            run_as: "root".into(),
            program: "/usr/bin/systemctl".into(),
            program_sha256: Sha256Digest([program_hash; 32]),
            argv: vec!["systemctl".into(), "restart".into(), "nginx".into()],
            cwd: "/".into(),
            env: Env::default(),
        }
    }

    pub(crate) fn signed_request(
        agent: &PrivateKey,
        command: &Command,
        grant: Grant,
    ) -> Signed<Request> {
        signed_request_on(HOST_ID, agent, command, grant)
    }

    /// A request for the host mini.local with `host_id`.
    fn signed_request_on(
        host_id: HostId,
        agent: &PrivateKey,
        command: &Command,
        grant: Grant,
    ) -> Signed<Request> {
        let ask = Ask {
            agent: "openclaw".into(),
            reason: String::new(),
            grant,
            ttl_s: (grant == Grant::Timed).then_some(3600),
            timeout_s: 300,
        };
        let r = request::build(&requester(), host_id, command, &ask, 1000);
        Envelope::seal(agent, &r).open().unwrap()
    }

    pub(crate) fn decide(
        approver: &PrivateKey,
        request: &Signed<Request>,
        verdict: Verdict,
        grant: Grant,
        not_after: Option<u64>,
    ) -> Signed<Decision> {
        let d = Decision {
            v: Default::default(),
            kind: Default::default(),
            request_id: request.payload.id,
            request_sha256: request.sha256,
            verdict,
            grant,
            not_before: 1000,
            not_after,
            cmd_sha256: request.payload.cmd_sha256(),
            approver: "alice".into(),
            console: CONSOLE,
            decided_at: 1000,
            note: None,
        };
        Envelope::seal(approver, &d).open().unwrap()
    }

    /// A status of alice's console [`CONSOLE`] revoking `revoked` (for ever).
    pub(crate) fn status(
        approver: &PrivateKey,
        issued_at: u64,
        revoked: Vec<Sha256Digest>,
    ) -> Envelope {
        status_of(approver, CONSOLE, issued_at, revoked)
    }

    pub(crate) fn status_of(
        approver: &PrivateKey,
        console: ConsoleId,
        issued_at: u64,
        revoked: Vec<Sha256Digest>,
    ) -> Envelope {
        let revoked: Revocations = revoked
            .into_iter()
            .map(|decision_sha256| Revocation {
                decision_sha256,
                until: None,
            })
            .collect();
        Envelope::seal(
            approver,
            &Status {
                v: Default::default(),
                kind: Default::default(),
                approver: "alice".into(),
                console,
                issued_at,
                revoked,
            },
        )
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        cache: GrantCache,
        agent: PrivateKey,
        approver: PrivateKey,
    }

    impl Fixture {
        /// A timed grant for `cmd`, approved by alice until 4600: its request and decision.
        fn timed(&self, cmd: &Command) -> (Signed<Request>, Signed<Decision>) {
            let req = signed_request(&self.agent, cmd, Grant::Timed);
            let dec = decide(
                &self.approver,
                &req,
                Verdict::Approve,
                Grant::Timed,
                Some(4600),
            );
            (req, dec)
        }
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let cache = GrantCache::new(dir.path().join("state/assent/grants"));
        Fixture {
            _dir: dir,
            cache,
            agent: PrivateKey::generate("agent"),
            approver: PrivateKey::generate("alice"),
        }
    }

    #[test]
    fn store_then_find_with_private_modes() {
        let f = fixture();
        let cmd = command(1);
        let (req, dec) = f.timed(&cmd);
        let path = f.cache.store(&req, &dec).unwrap();
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            cache_key("mini.local", &HOST_ID, &cmd.cmd_sha256()).to_hex()
        );
        assert_eq!(fs::metadata(f.cache.dir()).unwrap().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let found = f
            .cache
            .find(&cmd, &requester(), &HOST_ID, &f.agent.public())
            .unwrap();
        assert_eq!(found.request.payload, req.payload);
        assert_eq!(found.decision.sha256, dec.sha256);
        // A different command, or another requester, finds nothing.
        let mut other = cmd.clone();
        other.argv.push("--now".into());
        assert!(
            f.cache
                .find(&other, &requester(), &HOST_ID, &f.agent.public())
                .is_none()
        );
        let mut elsewhere = requester();
        elsewhere.host = "other.local".into();
        assert!(
            f.cache
                .find(&cmd, &elsewhere, &HOST_ID, &f.agent.public())
                .is_none()
        );
        let clone = HostId([0x77; 16]);
        assert!(
            f.cache
                .find(&cmd, &requester(), &clone, &f.agent.public())
                .is_none()
        );
        assert!(path.exists(), "another host's grant is left alone");
    }

    #[test]
    fn hosts_sharing_a_home_keep_their_grants_apart() {
        let f = fixture();
        let cmd = command(1);
        // The same command approved on two hosts that share the name (a cloned image) and a
        // home directory.
        let clone = HostId([0x77; 16]);
        let mut stored = Vec::new();
        for host_id in [HOST_ID, clone] {
            let req = signed_request_on(host_id, &f.agent, &cmd, Grant::Timed);
            let dec = decide(
                &f.approver,
                &req,
                Verdict::Approve,
                Grant::Timed,
                Some(4600),
            );
            stored.push((f.cache.store(&req, &dec).unwrap(), dec.sha256));
        }
        assert_ne!(stored[0].0, stored[1].0, "one file each");
        for (host_id, (_, decision)) in [HOST_ID, clone].iter().zip(&stored) {
            let found = f
                .cache
                .find(&cmd, &requester(), host_id, &f.agent.public())
                .unwrap();
            assert_eq!(found.decision.sha256, *decision);
        }
        assert_eq!(f.cache.entries(&f.agent.public()).len(), 2);
    }

    #[test]
    fn tampered_files_are_rejected_and_removed() {
        let f = fixture();
        let cmd = command(1);
        let req = signed_request(&f.agent, &cmd, Grant::Always);
        let dec = decide(&f.approver, &req, Verdict::Approve, Grant::Always, None);
        let path = f.cache.store(&req, &dec).unwrap();
        let mut entry: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        // Flip one character of the decision payload's base64.
        let payload = entry["decision"]["payload"].as_str().unwrap().to_owned();
        let mut bytes = payload.into_bytes();
        bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
        entry["decision"]["payload"] = String::from_utf8(bytes).unwrap().into();
        fs::write(&path, serde_json::to_vec(&entry).unwrap()).unwrap();
        let err = GrantCache::load(&path, &f.agent.public()).unwrap_err();
        assert!(!err.is_empty());
        assert!(
            f.cache
                .find(&cmd, &requester(), &HOST_ID, &f.agent.public())
                .is_none()
        );
        assert!(!path.exists(), "a bad file is dropped");
    }

    #[test]
    fn mismatches_are_rejected() {
        let f = fixture();
        let cmd = command(1);
        let req = signed_request(&f.agent, &cmd, Grant::Timed);
        let other_req = signed_request(&f.agent, &cmd, Grant::Timed);
        let check = |request: &Signed<Request>, decision: &Signed<Decision>, agent: &PublicKey| {
            let path = f.cache.store(request, decision).unwrap();
            let result = GrantCache::load(&path, agent).map(|_| ());
            fs::remove_file(&path).unwrap();
            result
        };
        // A decision for another request (same command, other id).
        let foreign = decide(
            &f.approver,
            &other_req,
            Verdict::Approve,
            Grant::Timed,
            Some(4600),
        );
        assert!(
            check(&req, &foreign, &f.agent.public())
                .unwrap_err()
                .contains("another request")
        );
        // A denial, and a once grant, are not cached grants.
        let denied = decide(&f.approver, &req, Verdict::Deny, Grant::Timed, Some(4600));
        assert!(
            check(&req, &denied, &f.agent.public())
                .unwrap_err()
                .contains("approved timed or always")
        );
        let once = decide(&f.approver, &req, Verdict::Approve, Grant::Once, Some(1120));
        assert!(
            check(&req, &once, &f.agent.public())
                .unwrap_err()
                .contains("approved timed or always")
        );
        // Somebody else's request.
        let good = decide(
            &f.approver,
            &req,
            Verdict::Approve,
            Grant::Timed,
            Some(4600),
        );
        let stranger = PrivateKey::generate("x").public();
        assert!(
            check(&req, &good, &stranger)
                .unwrap_err()
                .contains("another agent key")
        );
        // A file renamed to another command's key, or to the command hash alone.
        let path = f.cache.store(&req, &good).unwrap();
        let renamed = f
            .cache
            .dir()
            .join(cache_key("mini.local", &HOST_ID, &command(2).cmd_sha256()).to_hex());
        fs::rename(&path, &renamed).unwrap();
        assert!(
            GrantCache::load(&renamed, &f.agent.public())
                .unwrap_err()
                .contains("file name")
        );
        let by_command = f.cache.dir().join(cmd.cmd_sha256().to_hex());
        fs::rename(&renamed, &by_command).unwrap();
        assert!(
            GrantCache::load(&by_command, &f.agent.public())
                .unwrap_err()
                .contains("file name")
        );
        fs::rename(&by_command, &renamed).unwrap();
        // Unknown fields in the file.
        fs::write(
            &renamed,
            br#"{"request":{"payload":"","sig":""},"decision":{"payload":"","sig":""},"x":1}"#,
        )
        .unwrap();
        assert!(
            GrantCache::load(&renamed, &f.agent.public())
                .unwrap_err()
                .contains("unknown field")
        );
    }

    #[test]
    fn a_changed_program_is_found_by_its_command_line() {
        let f = fixture();
        let old = command(1);
        let (req, dec) = f.timed(&old);
        f.cache.store(&req, &dec).unwrap();
        let new = command(2);
        assert!(
            f.cache
                .find(&new, &requester(), &HOST_ID, &f.agent.public())
                .is_none()
        );
        let changed = f
            .cache
            .find_changed_program(&new, &requester(), &HOST_ID, &f.agent.public())
            .unwrap();
        assert_eq!(changed.request.payload.program_sha256, old.program_sha256);
        assert!(
            f.cache
                .find_changed_program(&old, &requester(), &HOST_ID, &f.agent.public())
                .is_none()
        );
    }

    #[test]
    fn window_and_status_rules() {
        let f = fixture();
        let cmd = command(1);
        let (req, dec) = f.timed(&cmd);
        assert_eq!(check_window(&dec.payload, 4600), Ok(()));
        assert_eq!(
            check_window(&dec.payload, 4660),
            Err(Unusable::Expired { ago_s: 60 })
        );
        assert!(
            Unusable::Expired { ago_s: 60 }
                .to_string()
                .starts_with("expired")
        );
        let always = decide(&f.approver, &req, Verdict::Approve, Grant::Always, None);
        assert_eq!(check_window(&always.payload, u64::MAX), Ok(()));

        let now = 10_000;
        let opened = |e: Envelope| e.open::<Status>().unwrap();
        let fresh = opened(status(&f.approver, now - 30, vec![]));
        let older = opened(status(&f.approver, now - 90, vec![]));
        assert_eq!(check_status(&dec, Some(fresh.clone()), now, 120), Ok(fresh));
        assert_eq!(
            check_status(&dec, None, now, 120).unwrap_err(),
            Unusable::NoStatus {
                approver: "alice".into()
            }
        );
        // Another key, or the same key but another console: neither approved this grant.
        let stranger = opened(status(&PrivateKey::generate("mallory"), now, vec![]));
        let other_console = opened(status_of(&f.approver, ConsoleId([0x99; 16]), now, vec![]));
        for foreign in [stranger, other_console] {
            assert_eq!(
                check_status(&dec, Some(foreign), now, 120).unwrap_err(),
                Unusable::NoStatus {
                    approver: "alice".into()
                }
            );
        }
        let err = check_status(&dec, Some(older), now, 60).unwrap_err();
        assert!(err.to_string().starts_with("status is stale"), "{err}");
        assert_eq!(err.state(), "waiting");
        assert!(!err.is_final());
        let revoking = opened(status(
            &f.approver,
            now - 500,
            vec![Sha256Digest([9; 32]), dec.sha256],
        ));
        let err = check_status(&dec, Some(revoking), now, 120).unwrap_err();
        assert_eq!(err.to_string(), "revoked by alice", "stale or not");
        assert!(err.is_final());
        assert!(Unusable::Expired { ago_s: 1 }.is_final());
        for transient in [
            Unusable::NotListed { why: "x".into() },
            Unusable::ProgramChanged {
                program: "/x".into(),
            },
        ] {
            assert!(!transient.is_final(), "{transient}");
        }
    }

    #[test]
    fn a_grant_is_checked_for_its_window_its_signer_then_its_status() {
        let f = fixture();
        let cmd = command(1);
        let (req, dec) = f.timed(&cmd);
        let path = f.cache.store(&req, &dec).unwrap();
        let grant = GrantCache::load(&path, &f.agent.public()).unwrap();
        let fresh = status(&f.approver, 4000, vec![]).open::<Status>().unwrap();
        let alice = [Approver {
            name: "alice".into(),
            key: f.approver.public(),
        }];
        assert_eq!(
            check_grant(&grant, Some(fresh.clone()), Some(&alice), 4010, 120),
            Ok(fresh.clone())
        );
        assert_eq!(
            check_grant(&grant, Some(fresh.clone()), None, 4700, 120),
            Err(Unusable::Expired { ago_s: 100 })
        );
        let bob = [Approver {
            name: "bob".into(),
            key: PrivateKey::generate("bob").public(),
        }];
        let err = check_grant(&grant, Some(fresh), Some(&bob), 4010, 120).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the elevator would refuse it: it is signed by"),
            "{err}"
        );
        assert_eq!(err.state(), "unusable");
        assert_eq!(
            check_grant(&grant, None, None, 4010, 120)
                .unwrap_err()
                .state(),
            "waiting"
        )
    }
}
