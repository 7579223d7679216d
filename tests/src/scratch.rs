//! Fresh, uniquely named directories for one test each, on a file system where setuid works
//! and that unprivileged test users can traverse.
//!
//! Removed when dropped, except while the test is panicking (the path is printed so the
//! failure can be inspected) or when `ASSENT_KEEP_TEST_DIRS` is set.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::statvfs::{FsFlags, statvfs};

/// A directory owned by the test that made it.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// A new empty directory, mode 0755, named after `label`.
    pub fn new(label: &str) -> ScratchDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut random = [0u8; 4];
        assent_protocol::random_bytes(&mut random);
        let name = format!(
            "{label}-{}-{}-{:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            u32::from_be_bytes(random)
        );
        let path = base_dir().join(name);
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        // The umask may have removed bits; the test users must be able to traverse it.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
        ScratchDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("ASSENT_KEEP_TEST_DIRS").is_some() {
            eprintln!("kept test directory {}", self.path.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Where scratch directories go: `<target>/tmp/assent` (cargo's own scratch area, next to the
/// build), else `/var/tmp/assent-tests` — the first that allows setuid and is traversable.
pub fn base_dir() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut candidates = Vec::new();
        if let Some(target) = crate::profile_dir().parent() {
            candidates.push(target.join("tmp").join("assent"));
        }
        candidates.push(PathBuf::from("/var/tmp/assent-tests"));
        let mut why = Vec::new();
        for dir in candidates {
            if let Err(e) = fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(&dir)
            {
                why.push(format!("{}: {e}", dir.display()));
                continue;
            }
            match unusable(&dir) {
                None => return dir,
                Some(reason) => why.push(format!("{}: {reason}", dir.display())),
            }
        }
        panic!(
            "no directory for test sandboxes allows setuid and is traversable by test users ({})",
            why.join("; ")
        )
    })
}

/// Why `dir` cannot hold a setuid sandbox, if it cannot.
fn unusable(dir: &Path) -> Option<String> {
    match statvfs(dir) {
        Ok(st) if st.flags().contains(FsFlags::ST_NOSUID) => {
            return Some("mounted nosuid".into());
        }
        Ok(_) => {}
        Err(e) => return Some(format!("statvfs failed: {e}")),
    }
    for ancestor in dir.ancestors() {
        let mode = match fs::metadata(ancestor) {
            Ok(meta) => meta.permissions().mode(),
            Err(e) => return Some(format!("{}: {e}", ancestor.display())),
        };
        if mode & 0o001 == 0 {
            return Some(format!(
                "{} is not searchable by other users (mode {:o})",
                ancestor.display(),
                mode & 0o7777
            ));
        }
    }
    None
}
