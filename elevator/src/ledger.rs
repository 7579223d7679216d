//! The single-use ledger (SPEC §6 check 11): one line per used `once` grant,
//! `DECISION_SHA256 UNIX_TIME NOTE`, in one of 16 bucket files named `used-X` after the
//! digest's first hex digit.
//!
//! A claim holds an exclusive `flock` on the ledger directory while it reads the bucket,
//! looks for the digest and, when it is absent, appends the line and `fdatasync`s it. So of
//! any number of concurrent claims on one grant exactly one finds it absent, and that one's
//! line is on disk before anything runs. Appending to a file that already exists makes no
//! new inode, and syncing a file's data is durable on every filesystem, unlike a new file
//! whose directory alone was synced. A bucket's own name is synced the first time it is
//! written to; a line cut short by a crash was never confirmed, so it never ran, and the next
//! line starts after a newline.
//!
//! Lines older than a day (or longer, see `keep`) are dropped by rewriting the bucket when at
//! least half of it is stale: the new bucket is written and synced beside the old one,
//! renamed over it, and the directory synced, all under the lock.

use std::fmt;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::Duration;

use assent_protocol::Sha256Digest;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::Mode;
use nix::unistd::fsync;

use crate::lock;
use crate::trusted::{Policy, Untrusted, WalkedDir};

/// Entries younger than this are never pruned, whatever the settings say.
pub const MIN_PRUNE_AGE: Duration = Duration::from_secs(24 * 3600);

/// The longest note kept in a ledger line, in bytes.
const MAX_NOTE_LEN: usize = 512;

#[derive(Debug)]
pub struct Ledger {
    dir: WalkedDir,
    wait: Duration,
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
        WalkedDir::open_from(anchor, path, Some(Mode::S_IRWXU), Policy::RootOwned).map(|dir| {
            Ledger {
                dir,
                wait: lock::LOCK_WAIT,
            }
        })
    }

    /// Wait at most `wait` for another claim to finish (the default is [`lock::LOCK_WAIT`]).
    pub fn waiting(self, wait: Duration) -> Ledger {
        Ledger { wait, ..self }
    }

    /// Record the use, at `now` (unix seconds), of the grant whose decision hashes to
    /// `decision`. Exactly one call per digest ever succeeds (until its line is pruned, at
    /// least `max(keep, MIN_PRUNE_AGE)` later). `note` is kept in the line for people reading
    /// the ledger.
    pub fn claim(
        &self,
        decision: &Sha256Digest,
        note: &str,
        now: u64,
        keep: Duration,
    ) -> Result<(), ClaimError> {
        let path = self.dir.path().display();
        let hex = decision.to_hex();
        let name = format!("used-{}", &hex[..1]);
        let io = |what: &str, why: &dyn fmt::Display| {
            ClaimError::Io(format!("{path}/{name}: cannot {what}: {why}"))
        };
        // A lock belongs to an open file description: open the directory afresh, so that
        // two claims in one process exclude each other as two processes do.
        let dir = openat(
            &self.dir,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io("lock", &e))?;
        let _lock = lock::exclusive(dir, self.wait).map_err(|e| io("lock", &e))?;

        let flags = OFlag::O_RDWR | OFlag::O_APPEND | OFlag::O_CREAT;
        let mut bucket = self
            .dir
            .open_trusted_file(&name, flags, Mode::S_IRUSR | Mode::S_IWUSR)
            .map_err(|e| ClaimError::Io(e.0))?;
        let mut content = Vec::new();
        bucket
            .read_to_end(&mut content)
            .map_err(|e| io("read", &e))?;

        let cutoff = now.saturating_sub(keep.max(MIN_PRUNE_AGE).as_secs());
        let mut stale = 0;
        for line in content.split(|b| *b == b'\n') {
            match parse(line) {
                Some((digest, at)) if digest == hex.as_bytes() => {
                    return Err(ClaimError::AlreadyUsed { at });
                }
                Some((_, Some(at))) if at >= cutoff => {}
                _ => stale += line.len() + 1,
            }
        }

        let mut record = Vec::with_capacity(128);
        if content.last().is_some_and(|b| *b != b'\n') {
            record.push(b'\n');
        }
        record.extend_from_slice(format!("{hex} {now} {}\n", one_line(note)).as_bytes());
        if stale > 0 && stale * 2 >= content.len() {
            return self
                .rewrite(&name, &content, cutoff, &record)
                .map_err(|e| io("rewrite", &e));
        }
        bucket
            .write_all(&record)
            .and_then(|()| bucket.sync_data())
            .map_err(|e| io("write", &e))?;
        if content.is_empty() {
            // Possibly a new bucket: its name must survive a crash too.
            fsync(&self.dir).map_err(|e| io("sync the directory of", &e))?;
        }
        Ok(())
    }

    /// Replace bucket `name` with its lines used at or after `cutoff` plus `record`.
    fn rewrite(
        &self,
        name: &str,
        content: &[u8],
        cutoff: u64,
        record: &[u8],
    ) -> std::io::Result<()> {
        let mut kept = Vec::with_capacity(content.len() + record.len());
        for line in content.split(|b| *b == b'\n') {
            if let Some((_, Some(at))) = parse(line)
                && at >= cutoff
            {
                kept.extend_from_slice(line);
                kept.push(b'\n');
            }
        }
        kept.extend_from_slice(record.strip_prefix(b"\n").unwrap_or(record));
        let fresh = format!("{name}.new");
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC;
        let mut file: File = self
            .dir
            .open_trusted_file(&fresh, flags, Mode::S_IRUSR | Mode::S_IWUSR)
            .map_err(|e| std::io::Error::other(e.0))?;
        file.write_all(&kept)?;
        file.sync_data()?;
        renameat(&self.dir, fresh.as_str(), &self.dir, name)?;
        fsync(&self.dir)?;
        Ok(())
    }
}

/// A ledger line's digest (64 lowercase hex digits) and, when it parses, its time. A line cut
/// short after its digest still counts as a use.
fn parse(line: &[u8]) -> Option<(&[u8], Option<u64>)> {
    let (digest, rest) = line.split_at_checked(64)?;
    if !digest
        .iter()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let rest = rest.strip_prefix(b" ")?;
    let time = rest.split(|b| *b == b' ').next().unwrap_or_default();
    let at = std::str::from_utf8(time).ok().and_then(|t| t.parse().ok());
    Some((digest, at))
}

/// `note` on one line of bounded length: control characters become `?`.
fn one_line(note: &str) -> String {
    let mut out: String = note
        .trim_end()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if out.len() > MAX_NOTE_LEN {
        let mut end = MAX_NOTE_LEN;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use assent_protocol::sha256;

    use super::*;
    use crate::testutil::TempDir;

    const NOW: u64 = 1_800_000_000;
    const DAY: u64 = 24 * 3600;
    const KEEP: Duration = Duration::from_secs(600);

    fn ledger(tmp: &TempDir) -> Ledger {
        Ledger::open_from(tmp.path(), &tmp.path().join("ledger")).unwrap()
    }

    fn bucket(tmp: &TempDir, digest: &Sha256Digest) -> std::path::PathBuf {
        tmp.path()
            .join("ledger")
            .join(format!("used-{}", &digest.to_hex()[..1]))
    }

    /// A digest in the same bucket as `sha256(b"0")`, different from it.
    fn same_bucket_as(first: &Sha256Digest, n: u32) -> Sha256Digest {
        (0u32..)
            .map(|i| sha256(format!("{n} {i}").as_bytes()))
            .find(|d| d.0[0] >> 4 == first.0[0] >> 4 && d != first)
            .unwrap()
    }

    #[test]
    fn a_grant_can_be_claimed_once() {
        let tmp = TempDir::new();
        let ledger = ledger(&tmp);
        let a = sha256(b"decision a");
        ledger.claim(&a, "request 1\n", NOW, KEEP).unwrap();
        let err = ledger
            .claim(&a, "request 1 again", NOW + 5, KEEP)
            .unwrap_err();
        assert_eq!(err, ClaimError::AlreadyUsed { at: Some(NOW) });
        assert!(
            err.to_string()
                .contains("already used on this host at 2027-01-15T08:00:00Z"),
            "{err}"
        );
        ledger
            .claim(&sha256(b"decision b"), "", NOW, KEEP)
            .expect("another grant is independent");
        let line = format!("{} {NOW} request 1\n", a.to_hex());
        assert_eq!(std::fs::read_to_string(bucket(&tmp, &a)).unwrap(), line);
    }

    #[test]
    fn a_reopened_ledger_remembers() {
        let tmp = TempDir::new();
        let a = sha256(b"decision a");
        ledger(&tmp).claim(&a, "", NOW, KEEP).unwrap();
        assert!(matches!(
            ledger(&tmp).claim(&a, "", NOW, KEEP),
            Err(ClaimError::AlreadyUsed { .. })
        ));
    }

    #[test]
    fn exactly_one_of_64_concurrent_claims_wins() {
        let tmp = TempDir::new();
        let ledger = Arc::new(ledger(&tmp));
        let digest = sha256(b"contended decision");
        let start = Arc::new(Barrier::new(64));
        let threads: Vec<_> = (0..64)
            .map(|i| {
                let (ledger, start) = (Arc::clone(&ledger), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    ledger.claim(&digest, &format!("thread {i}"), NOW, KEEP)
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
    fn concurrent_claims_of_different_grants_in_one_bucket_all_win_and_are_kept() {
        let tmp = TempDir::new();
        let ledger = Arc::new(ledger(&tmp));
        let first = sha256(b"0");
        let digests: Vec<_> = (0..32).map(|n| same_bucket_as(&first, n)).collect();
        let threads: Vec<_> = digests
            .iter()
            .map(|d| {
                let (ledger, d) = (Arc::clone(&ledger), *d);
                std::thread::spawn(move || ledger.claim(&d, "", NOW, KEEP))
            })
            .collect();
        for t in threads {
            t.join()
                .unwrap()
                .expect("distinct grants never block each other");
        }
        for d in &digests {
            assert!(matches!(
                ledger.claim(d, "", NOW, KEEP),
                Err(ClaimError::AlreadyUsed { .. })
            ));
        }
    }

    #[test]
    fn stale_lines_are_pruned_only_after_a_day_and_only_when_half_the_bucket() {
        let tmp = TempDir::new();
        let ledger = ledger(&tmp);
        let old = sha256(b"0");
        let young = same_bucket_as(&old, 1);
        let later = same_bucket_as(&old, 2);
        ledger.claim(&old, "old", NOW, KEEP).unwrap();
        ledger.claim(&young, "young", NOW + DAY, KEEP).unwrap();

        // A day and a half on: `old` is stale, `young` is not; half the bucket is stale.
        let when = NOW + DAY + DAY / 2;
        ledger.claim(&later, "later", when, KEEP).unwrap();
        let text = std::fs::read_to_string(bucket(&tmp, &old)).unwrap();
        assert!(!text.contains(&old.to_hex()), "{text}");
        assert!(text.contains(&young.to_hex()) && text.contains(&later.to_hex()));
        assert!(
            !tmp.path()
                .join("ledger")
                .join(format!("used-{}.new", &old.to_hex()[..1]))
                .exists()
        );
        ledger
            .claim(&old, "", when, KEEP)
            .expect("a pruned grant, long expired, is no longer known");
        assert!(matches!(
            ledger.claim(&young, "", when, KEEP),
            Err(ClaimError::AlreadyUsed { at: Some(at) }) if at == NOW + DAY
        ));
    }

    #[test]
    fn keep_longer_than_a_day_is_honoured() {
        let tmp = TempDir::new();
        let ledger = ledger(&tmp);
        let old = sha256(b"0");
        ledger.claim(&old, "", NOW, KEEP).unwrap();
        let two_days = Duration::from_secs(2 * DAY);
        let when = NOW + DAY + 1;
        ledger
            .claim(&same_bucket_as(&old, 1), "", when, two_days)
            .unwrap();
        assert!(matches!(
            ledger.claim(&old, "", when, two_days),
            Err(ClaimError::AlreadyUsed { .. })
        ));
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_handled() {
        let tmp = TempDir::new();
        let ledger = ledger(&tmp);
        let a = sha256(b"0");
        let torn = same_bucket_as(&a, 1);
        ledger.claim(&a, "", NOW, KEEP).unwrap();
        let path = bucket(&tmp, &a);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!("{} 18000", torn.to_hex()));
        std::fs::write(&path, &text).unwrap();

        assert!(
            matches!(
                ledger.claim(&torn, "", NOW, KEEP),
                Err(ClaimError::AlreadyUsed { .. })
            ),
            "a torn line naming the grant still spends it"
        );
        let b = same_bucket_as(&a, 2);
        ledger.claim(&b, "", NOW, KEEP).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.ends_with(&format!("18000\n{} {NOW} \n", b.to_hex())),
            "the next line starts after a newline: {text:?}"
        );
    }

    #[test]
    fn notes_stay_on_one_line() {
        assert_eq!(one_line("a\nb\tc\n"), "a?b?c");
        assert_eq!(one_line(&"é".repeat(400)).len(), MAX_NOTE_LEN);
    }

    #[test]
    fn parse_reads_only_well_formed_digests() {
        let d = sha256(b"x").to_hex();
        assert_eq!(
            parse(format!("{d} 12 n").as_bytes()),
            Some((d.as_bytes(), Some(12)))
        );
        assert_eq!(
            parse(format!("{d} ").as_bytes()),
            Some((d.as_bytes(), None))
        );
        assert_eq!(parse(d.as_bytes()), None);
        assert_eq!(parse(d.to_uppercase().as_bytes()), None);
        assert_eq!(parse(b""), None);
        assert_eq!(parse("é".repeat(40).as_bytes()), None);
    }

    #[test]
    fn a_held_ledger_is_given_up_on_and_nothing_is_spent() {
        let tmp = TempDir::new();
        let ledger = ledger(&tmp).waiting(Duration::from_millis(50));
        let dir = File::open(tmp.path().join("ledger")).unwrap();
        let held = lock::exclusive(dir, lock::LOCK_WAIT).unwrap();
        let a = sha256(b"a");
        let err = ledger.claim(&a, "", NOW, KEEP).unwrap_err();
        assert!(
            matches!(&err, ClaimError::Io(why) if why.contains("try again")),
            "{err}"
        );
        drop(held);
        ledger
            .claim(&a, "", NOW, KEEP)
            .expect("not spent by the attempt that gave up");
    }

    #[test]
    fn an_unsafe_bucket_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new();
        let ledger = ledger(&tmp);
        let a = sha256(b"a");
        ledger.claim(&a, "", NOW, KEEP).unwrap();
        let path = bucket(&tmp, &a);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = ledger.claim(&sha256(b"a"), "", NOW, KEEP).unwrap_err();
        assert!(
            matches!(&err, ClaimError::Io(why) if why.contains("writable by group or others")),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
        let err = ledger.claim(&a, "", NOW, KEEP).unwrap_err();
        assert!(matches!(err, ClaimError::Io(_)), "{err}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Against a model: a grant claimed within the keep window is always refused, a
        /// grant never claimed is always accepted, whatever order, times and pruning.
        #[test]
        fn the_ledger_never_forgets_a_recent_use_nor_invents_one(
            ops in proptest::collection::vec((0u8..4, 0u64..(DAY / 3), ".{0,12}"), 1..40),
        ) {
            let tmp = TempDir::new();
            let ledger = ledger(&tmp);
            let keep = MIN_PRUNE_AGE.as_secs();
            let mut used: std::collections::HashMap<u8, u64> = Default::default();
            let mut now = NOW;
            // All four grants share one bucket, so it fills and is pruned.
            let first = sha256(b"0");
            let digests = [first, same_bucket_as(&first, 1), same_bucket_as(&first, 2), same_bucket_as(&first, 3)];
            for (grant, step, note) in ops {
                now += step;
                let digest = digests[usize::from(grant)];
                let result = ledger.claim(&digest, &note, now, KEEP);
                match used.get(&grant) {
                    None => {
                        proptest::prop_assert!(result.is_ok(), "{result:?}");
                        used.insert(grant, now);
                    }
                    Some(at) if now - at < keep => proptest::prop_assert_eq!(
                        result,
                        Err(ClaimError::AlreadyUsed { at: Some(*at) })
                    ),
                    Some(_) => match result {
                        Ok(()) => {
                            used.insert(grant, now);
                        }
                        Err(ClaimError::AlreadyUsed { .. }) => {}
                        Err(e) => proptest::prop_assert!(false, "{e}"),
                    },
                }
            }
        }

        #[test]
        fn lines_parse_back_and_stay_one_line(
            digest in proptest::array::uniform32(proptest::num::u8::ANY),
            at in proptest::num::u64::ANY,
            note in proptest::prelude::any::<String>(),
        ) {
            let hex = Sha256Digest(digest).to_hex();
            let line = format!("{hex} {at} {}", one_line(&note));
            proptest::prop_assert!(!line.contains('\n'));
            proptest::prop_assert_eq!(parse(line.as_bytes()), Some((hex.as_bytes(), Some(at))));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Some((digest, _)) = parse(&bytes) {
                proptest::prop_assert_eq!(digest.len(), 64);
            }
        }
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
