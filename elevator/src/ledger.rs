//! The single-use ledger (SPEC §6 check 11): one file per used `once` grant, named by the
//! decision's SHA-256, created with `O_CREAT | O_EXCL`. The kernel guarantees that exactly one
//! of any number of concurrent creators succeeds, so a once-grant runs at most once per host
//! whatever the caller does in parallel.

use std::fmt;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use assent_protocol::Sha256Digest;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, fstatat};
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};

use crate::trusted::{TrustedDir, Untrusted};

/// Entries younger than this are never pruned, whatever the settings say.
pub const MIN_PRUNE_AGE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug)]
pub struct Ledger {
    dir: TrustedDir,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimError {
    /// The grant was used before, at this time (unix seconds) if known.
    AlreadyUsed { at: Option<u64> },
    /// The ledger could not record the use; the grant must not run.
    Io(String),
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimError::AlreadyUsed { at: Some(at) } => write!(
                f,
                "this once-grant was already used on this host at {}",
                crate::time::rfc3339_utc(*at)
            ),
            ClaimError::AlreadyUsed { at: None } => {
                f.write_str("this once-grant was already used on this host")
            }
            ClaimError::Io(why) => write!(f, "cannot record the use in the ledger: {why}"),
        }
    }
}

impl Ledger {
    /// Open (creating it 0700 if missing) the ledger directory at the absolute `path`.
    pub fn open(path: &Path) -> Result<Ledger, Untrusted> {
        Self::open_from(Path::new("/"), path)
    }

    pub fn open_from(anchor: &Path, path: &Path) -> Result<Ledger, Untrusted> {
        TrustedDir::open_from(anchor, path, Some(Mode::S_IRWXU)).map(|dir| Ledger { dir })
    }

    /// Record the use of the grant whose decision hashes to `decision`. Exactly one call per
    /// digest ever succeeds (until the entry is pruned long after the grant expired).
    /// `note` is written into the entry for people reading the ledger.
    pub fn claim(&self, decision: &Sha256Digest, note: &str) -> Result<(), ClaimError> {
        let name = decision.to_hex();
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL;
        let mut file = match self
            .dir
            .open_file(&name, flags, Mode::S_IRUSR | Mode::S_IWUSR)
        {
            Ok(file) => file,
            Err(Errno::EEXIST) => {
                let at = fstatat(&self.dir, name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                    .ok()
                    .and_then(|st| u64::try_from(st.st_mtime).ok());
                return Err(ClaimError::AlreadyUsed { at });
            }
            Err(e) => {
                return Err(ClaimError::Io(format!(
                    "{}/{name}: {}",
                    self.dir.path().display(),
                    e.desc()
                )));
            }
        };
        // The entry exists from here on: the grant is spent even if what follows fails. What
        // must survive a crash is the entry's name, so only the directory is synced; the note
        // inside is for people and may be lost (an empty entry still spends the grant).
        let durable = file
            .write_all(note.as_bytes())
            .map_err(|e| e.to_string())
            .and_then(|()| fsync(&self.dir).map_err(|e| e.desc().to_string()));
        durable.map_err(|why| ClaimError::Io(format!("{}: {why}", self.dir.path().display())))
    }

    /// Remove entries older than `max(min_age, MIN_PRUNE_AGE)` as of `now`. Returns how many
    /// were removed. Only names that look like ledger entries are touched.
    pub fn prune(&self, min_age: Duration, now: SystemTime) -> usize {
        let min_age = min_age.max(MIN_PRUNE_AGE);
        let Some(cutoff) = now
            .checked_sub(min_age)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        else {
            return 0;
        };
        let Ok(mut listing) = nix::dir::Dir::openat(
            &self.dir,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            return 0;
        };
        let names: Vec<String> = listing
            .iter()
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().to_str().ok().map(str::to_owned))
            .filter(|name| Sha256Digest::from_hex(name).is_some())
            .collect();
        let mut removed = 0;
        for name in names {
            let Ok(st) = fstatat(&self.dir, name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
                continue;
            };
            let old = u64::try_from(st.st_mtime).is_ok_and(|m| m < cutoff.as_secs());
            if old && unlinkat(&self.dir, name.as_str(), UnlinkatFlags::NoRemoveDir).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use assent_protocol::sha256;

    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn a_grant_can_be_claimed_once() {
        let tmp = TempDir::new();
        let ledger = Ledger::open_from(tmp.path(), &tmp.path().join("ledger")).unwrap();
        let a = sha256(b"decision a");
        ledger.claim(&a, "request 1\n").unwrap();
        let err = ledger.claim(&a, "request 1 again\n").unwrap_err();
        assert!(
            matches!(err, ClaimError::AlreadyUsed { at: Some(_) }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("already used on this host at 20"),
            "{err}"
        );
        ledger
            .claim(&sha256(b"decision b"), "")
            .expect("another grant is independent");
        let entry = tmp.path().join("ledger").join(a.to_hex());
        assert_eq!(std::fs::read_to_string(entry).unwrap(), "request 1\n");
    }

    #[test]
    fn exactly_one_of_64_concurrent_claims_wins() {
        let tmp = TempDir::new();
        let ledger = Arc::new(Ledger::open_from(tmp.path(), &tmp.path().join("ledger")).unwrap());
        let digest = sha256(b"contended decision");
        let start = Arc::new(Barrier::new(64));
        let threads: Vec<_> = (0..64)
            .map(|i| {
                let (ledger, start) = (Arc::clone(&ledger), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    ledger.claim(&digest, &format!("thread {i}\n"))
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "{results:?}");
        assert!(
            results
                .iter()
                .filter_map(|r| r.as_ref().err())
                .all(|e| matches!(e, ClaimError::AlreadyUsed { .. }))
        );
    }

    #[test]
    fn pruning_removes_only_long_expired_entries() {
        let tmp = TempDir::new();
        let ledger = Ledger::open_from(tmp.path(), &tmp.path().join("ledger")).unwrap();
        let digest = sha256(b"old");
        ledger.claim(&digest, "").unwrap();
        std::fs::write(tmp.path().join("ledger/README"), "not an entry").unwrap();
        let now = SystemTime::now();
        assert_eq!(
            ledger.prune(Duration::from_secs(1), now),
            0,
            "a day is the minimum"
        );
        let later = now + Duration::from_secs(2 * 24 * 3600);
        assert_eq!(ledger.prune(Duration::from_secs(3 * 24 * 3600), later), 0);
        assert_eq!(ledger.prune(Duration::from_secs(60), later), 1);
        assert!(
            tmp.path().join("ledger/README").exists(),
            "foreign names are left alone"
        );
        ledger
            .claim(&digest, "")
            .expect("pruned entries can be claimed again");
    }

    #[test]
    fn an_unsafe_ledger_directory_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new();
        let dir = tmp.path().join("ledger");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = Ledger::open_from(tmp.path(), &dir).unwrap_err();
        assert!(err.0.contains("writable by group or others"), "{err}");
    }
}
