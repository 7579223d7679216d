//! Opening paths without trusting them: one walk for every path the elevator uses.
//!
//! Every directory from the anchor (`/` in production) down to the target is opened with
//! `O_NOFOLLOW`, and checked on the open descriptor before the next component is opened
//! relative to it. So what was checked is what is used: a path that changes between check and
//! use (TOCTOU) cannot slip something else in, and no symbolic link is ever followed. The path
//! itself must be canonical: absolute, no `.` or `..`, no empty component, no trailing `/`.
//!
//! What each directory must be is the walk's [`Policy`]:
//! - the elevator's own files ([`Policy::RootOwned`]): owned by root, not writable by group or
//!   others, as in OpenSSH's `safe_path` and sudo-rs. With POSIX ACLs the group bits hold the
//!   ACL mask, so any named user or group with write access shows up as group-writable and is
//!   refused too;
//! - a path the command will use as the target user, its working directory and its program
//!   ([`Policy::SearchableBy`]): every directory searchable by that user, as the kernel would
//!   require of the user walking the path itself;
//! - a path that only root can change ([`Policy::RootOnly`]), so that it may be looked up
//!   again: a script's path handed to its interpreter.

use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, mkdirat};

use crate::identity::Target;

/// Why a path cannot be trusted, as one line naming the path and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untrusted(pub String);

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Untrusted {}

/// What kind of object a check expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Directory,
    File,
}

/// What every directory on a walk must be.
#[derive(Debug, Clone, Copy)]
pub enum Policy<'a> {
    /// Owned by root and not writable by group or others: the elevator's own files.
    RootOwned,
    /// Searchable (execute permission) by this user: what the command uses as that user.
    SearchableBy(&'a Target),
    /// No one but root can change what the path names: every directory owned by root and not
    /// writable by group or others, or sticky (then the next component, which the walk checks
    /// in turn, must be root's, and only root can rename or remove it); and none on a FUSE
    /// file system, whose server answers stat and lookups as it likes (it could claim a
    /// directory it serves is root's).
    RootOnly,
}

impl Policy<'_> {
    fn check(self, stat: &FileStat, path: &Path) -> Result<(), Untrusted> {
        match self {
            Policy::RootOwned => check_root_owned(stat, path, Kind::Directory),
            Policy::RootOnly => {
                let sticky_root_dir = stat.st_uid == 0
                    && stat.st_mode & 0o1000 != 0
                    && SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
                if sticky_root_dir {
                    Ok(())
                } else {
                    check_root_owned(stat, path, Kind::Directory)
                }
            }
            Policy::SearchableBy(target) => {
                if target.may_search(stat.into()) {
                    Ok(())
                } else {
                    Err(Untrusted(format!(
                        "{} cannot be entered by {} (owner uid {}, group {}, mode {:04o})",
                        path.display(),
                        target.name,
                        stat.st_uid,
                        stat.st_gid,
                        stat.st_mode & 0o7777
                    )))
                }
            }
        }
    }
}

/// Root-owned, of the expected kind, not writable by group or others.
pub fn check_root_owned(stat: &FileStat, path: &Path, kind: Kind) -> Result<(), Untrusted> {
    let shown = path.display();
    let format = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    match kind {
        Kind::Directory if format != SFlag::S_IFDIR => {
            return Err(Untrusted(format!("{shown} is not a directory")));
        }
        Kind::File if format != SFlag::S_IFREG => {
            return Err(Untrusted(format!("{shown} is not a regular file")));
        }
        _ => {}
    }
    match assent_common::access::root_owned_problem(&shown.to_string(), stat.st_uid, stat.st_mode) {
        Some(why) => Err(Untrusted(why)),
        None => Ok(()),
    }
}

fn io_problem(path: &Path, what: &str, errno: Errno) -> Untrusted {
    let shown = path.display();
    if errno == Errno::ELOOP {
        return Untrusted(format!(
            "{shown} is a symbolic link; the elevator follows none, use the real path"
        ));
    }
    Untrusted(format!("cannot {what} {shown}: {}", errno.desc()))
}

fn is_symlink(dir: &OwnedFd, name: &str) -> bool {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK)
}

/// The components of a canonical absolute path: it starts with `/` and has no empty, `.` or
/// `..` component (so no `//` and no trailing `/`); `/` itself has none. Anything else could
/// name a different file than it seems to, and is refused.
pub fn canonical_components(path: &str) -> Result<Vec<&str>, Untrusted> {
    let bad = |why: &str| Err(Untrusted(format!("{path:?} {why}")));
    let Some(rest) = path.strip_prefix('/') else {
        return bad("is not an absolute path");
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let components: Vec<&str> = rest.split('/').collect();
    if components.iter().any(|c| c.is_empty()) {
        return bad("is not canonical: it has an empty component (// or a trailing /)");
    }
    if components.iter().any(|c| *c == "." || *c == "..") {
        return bad("is not canonical: it has a . or .. component; use the real path");
    }
    Ok(components)
}

/// A directory reached by a walk: from the anchor, one component at a time, never through a
/// symbolic link, each directory checked by the walk's [`Policy`] on its open descriptor.
#[derive(Debug)]
pub struct WalkedDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl WalkedDir {
    /// Open the canonical absolute directory `path`, checking `/` and every component below it.
    pub fn open(path: &Path, policy: Policy<'_>) -> Result<WalkedDir, Untrusted> {
        Self::open_from(Path::new("/"), path, None, policy)
    }

    /// Open `path` by walking from `anchor`, which is opened directly and checked like every
    /// component after it. `path` must lie below `anchor` (or be it). With `create_last`, the
    /// last component is created with that mode if it is missing.
    pub fn open_from(
        anchor: &Path,
        path: &Path,
        create_last: Option<Mode>,
        policy: Policy<'_>,
    ) -> Result<WalkedDir, Untrusted> {
        let text = path
            .to_str()
            .ok_or_else(|| Untrusted(format!("{} is not a UTF-8 path", path.display())))?;
        let all = canonical_components(text)?;
        let skip = anchor.components().count().saturating_sub(1);
        if !path.starts_with(anchor) {
            return Err(Untrusted(format!(
                "{} is not below {}",
                path.display(),
                anchor.display()
            )));
        }
        let components = &all[skip.min(all.len())..];
        let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd =
            open(anchor, dir_flags, Mode::empty()).map_err(|e| io_problem(anchor, "open", e))?;
        let mut dir = WalkedDir {
            fd,
            path: anchor.to_path_buf(),
        };
        dir.check(policy)?;
        let last = components.len().saturating_sub(1);
        for (i, &name) in components.iter().enumerate() {
            let next = dir.path.join(name);
            let flags = dir_flags | OFlag::O_NOFOLLOW;
            let fd = match openat(&dir.fd, name, flags, Mode::empty()) {
                Err(Errno::ENOENT) if i == last && create_last.is_some() => {
                    let mode = create_last.unwrap_or(Mode::S_IRWXU);
                    match mkdirat(&dir.fd, name, mode) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(io_problem(&next, "create", e)),
                    }
                    openat(&dir.fd, name, flags, Mode::empty())
                }
                other => other,
            }
            .map_err(|e| match e {
                // O_DIRECTORY | O_NOFOLLOW on a symbolic link fails with ENOTDIR.
                Errno::ENOTDIR if is_symlink(&dir.fd, name) => {
                    io_problem(&next, "open", Errno::ELOOP)
                }
                Errno::ENOTDIR => Untrusted(format!("{} is not a directory", next.display())),
                e => io_problem(&next, "open", e),
            })?;
            dir = WalkedDir { fd, path: next };
            dir.check(policy)?;
        }
        Ok(dir)
    }

    fn check(&self, policy: Policy<'_>) -> Result<(), Untrusted> {
        let stat = fstat(&self.fd).map_err(|e| io_problem(&self.path, "inspect", e))?;
        policy.check(&stat, &self.path)?;
        if matches!(policy, Policy::RootOnly) && on_fuse(&self.fd) {
            return Err(Untrusted(format!(
                "{} is on a FUSE file system, whose server may answer as it likes",
                self.path.display()
            )));
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open `name` in this directory: never following a symbolic link, never inherited by
    /// the program, never blocking on a FIFO. The caller checks what it got.
    pub fn open_file(&self, name: &str, flags: OFlag, create_mode: Mode) -> Result<File, Errno> {
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        openat(&self.fd, name, flags, create_mode).map(File::from)
    }

    /// Open `name` and require a root-owned regular file not writable by group or others.
    pub fn open_trusted_file(
        &self,
        name: &str,
        flags: OFlag,
        create_mode: Mode,
    ) -> Result<File, Untrusted> {
        let path = self.path.join(name);
        let file = self
            .open_file(name, flags, create_mode)
            .map_err(|e| io_problem(&path, "open", e))?;
        let stat = fstat(&file).map_err(|e| io_problem(&path, "inspect", e))?;
        check_root_owned(&stat, &path, Kind::File)?;
        Ok(file)
    }
}

impl AsFd for WalkedDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Whether `fd` is on a FUSE file system (an error counts as yes: the safe direction).
pub fn on_fuse(fd: &impl AsFd) -> bool {
    nix::sys::statfs::fstatfs(fd).map_or(true, |fs| {
        fs.filesystem_type() == nix::sys::statfs::FUSE_SUPER_MAGIC
    })
}

/// Check the running binary itself, through the kernel's handle on it (no path lookup).
pub fn check_own_binary() -> Result<(), Untrusted> {
    let path = Path::new("/proc/self/exe");
    let file =
        File::open(path).map_err(|e| Untrusted(format!("cannot open {}: {e}", path.display())))?;
    let stat = fstat(&file).map_err(|e| io_problem(path, "inspect", e))?;
    check_root_owned(&stat, Path::new("the assent-elevate binary"), Kind::File)
}

/// Split an absolute file path into its directory and file name.
pub fn split_file_path(path: &Path) -> Result<(&Path, &str), Untrusted> {
    let not_a_file = || {
        Untrusted(format!(
            "{} is not an absolute path to a file",
            path.display()
        ))
    };
    let text = path.to_str().ok_or_else(not_a_file)?;
    let name = *canonical_components(text)?.last().ok_or_else(not_a_file)?;
    let dir = path.parent().ok_or_else(not_a_file)?;
    Ok((dir, name))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;
    use crate::testutil::{TempDir, chown, stranger};

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_root_owned_chain_is_trusted() {
        let tmp = TempDir::new();
        let dir = tmp.path().join("etc/assent");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("elevator.toml"), "x").unwrap();
        let trusted = WalkedDir::open_from(tmp.path(), &dir, None, Policy::RootOwned).unwrap();
        assert_eq!(trusted.path(), dir);
        trusted
            .open_trusted_file("elevator.toml", OFlag::O_RDONLY, Mode::empty())
            .unwrap();
    }

    #[test]
    fn a_writable_or_foreign_directory_anywhere_in_the_chain_is_refused() {
        let tmp = TempDir::new();
        let dir = tmp.path().join("etc/assent");
        std::fs::create_dir_all(&dir).unwrap();

        set_mode(&tmp.path().join("etc"), 0o775);
        let err = WalkedDir::open_from(tmp.path(), &dir, None, Policy::RootOwned).unwrap_err();
        assert!(
            err.0
                .contains("/etc is writable by group or others (mode 0775)"),
            "{err}"
        );
        set_mode(&tmp.path().join("etc"), 0o755);

        set_mode(&dir, 0o757);
        let err = WalkedDir::open_from(tmp.path(), &dir, None, Policy::RootOwned).unwrap_err();
        assert!(err.0.contains("writable by group or others"), "{err}");
        set_mode(&dir, 0o755);

        chown(&dir, 65534);
        let err = WalkedDir::open_from(tmp.path(), &dir, None, Policy::RootOwned).unwrap_err();
        assert!(err.0.contains("owned by uid 65534, not root"), "{err}");
        chown(&dir, 0);

        set_mode(tmp.path(), 0o777);
        let err = WalkedDir::open_from(tmp.path(), &dir, None, Policy::RootOwned).unwrap_err();
        assert!(
            err.0.contains("writable by group or others"),
            "the anchor is checked too"
        );
        set_mode(tmp.path(), 0o700);

        WalkedDir::open_from(tmp.path(), &dir, None, Policy::RootOwned).expect("safe again");
    }

    #[test]
    fn symbolic_links_are_never_followed() {
        let tmp = TempDir::new();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("elevator.toml"), "x").unwrap();
        symlink(&real, tmp.path().join("link")).unwrap();
        let err = WalkedDir::open_from(
            tmp.path(),
            &tmp.path().join("link"),
            None,
            Policy::RootOwned,
        )
        .unwrap_err();
        assert!(err.0.contains("is a symbolic link"), "{err}");

        symlink(real.join("elevator.toml"), real.join("linked.toml")).unwrap();
        let dir = WalkedDir::open_from(tmp.path(), &real, None, Policy::RootOwned).unwrap();
        let err = dir
            .open_trusted_file("linked.toml", OFlag::O_RDONLY, Mode::empty())
            .unwrap_err();
        assert!(err.0.contains("is a symbolic link"), "{err}");
    }

    #[test]
    fn unsafe_files_are_refused_on_the_open_descriptor() {
        let tmp = TempDir::new();
        let file = tmp.path().join("elevator.toml");
        std::fs::write(&file, "x").unwrap();
        let dir = WalkedDir::open_from(tmp.path(), tmp.path(), None, Policy::RootOwned).unwrap();
        let open = || dir.open_trusted_file("elevator.toml", OFlag::O_RDONLY, Mode::empty());

        set_mode(&file, 0o664);
        assert!(
            open()
                .unwrap_err()
                .0
                .contains("writable by group or others")
        );
        set_mode(&file, 0o646);
        assert!(
            open()
                .unwrap_err()
                .0
                .contains("writable by group or others")
        );
        set_mode(&file, 0o644);
        chown(&file, 65534);
        assert!(open().unwrap_err().0.contains("owned by uid 65534"));
        chown(&file, 0);
        open().expect("root-owned 0644 is fine");

        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        let err = dir
            .open_trusted_file("sub", OFlag::O_RDONLY, Mode::empty())
            .unwrap_err();
        assert!(err.0.contains("not a regular file"), "{err}");
    }

    #[test]
    fn the_last_component_can_be_created_private() {
        let tmp = TempDir::new();
        let ledger = tmp.path().join("ledger");
        let dir = WalkedDir::open_from(tmp.path(), &ledger, Some(Mode::S_IRWXU), Policy::RootOwned)
            .unwrap();
        assert_eq!(dir.path(), ledger);
        let mode = std::fs::metadata(&ledger).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let err = WalkedDir::open_from(
            tmp.path(),
            &tmp.path().join("a/b"),
            Some(Mode::S_IRWXU),
            Policy::RootOwned,
        )
        .unwrap_err();
        assert!(
            err.0.contains("cannot open"),
            "only the last component is created: {err}"
        );
    }

    #[test]
    fn only_canonical_absolute_paths_are_walked() {
        assert_eq!(canonical_components("/").unwrap(), Vec::<&str>::new());
        assert_eq!(canonical_components("/usr/bin").unwrap(), ["usr", "bin"]);
        assert_eq!(
            canonical_components("/a b/.hidden/..x").unwrap(),
            ["a b", ".hidden", "..x"]
        );
        for bad in [
            "",
            "usr/bin",
            "./x",
            "//usr",
            "/usr/",
            "/usr//bin",
            "/usr/./bin",
            "/usr/../etc",
            "/.",
            "/..",
        ] {
            assert!(canonical_components(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(split_file_path(Path::new("/")).is_err());
        assert!(split_file_path(Path::new("/etc/assent/")).is_err());
    }

    #[test]
    fn a_walk_for_a_user_needs_search_permission_on_every_directory() {
        let tmp = TempDir::new();
        set_mode(tmp.path(), 0o711);
        let dir = tmp.path().join("a/b");
        std::fs::create_dir_all(&dir).unwrap();
        let stranger = stranger();
        let walk = |target: &Target| {
            WalkedDir::open_from(tmp.path(), &dir, None, Policy::SearchableBy(target))
        };
        walk(&stranger).expect("0755 directories can be entered");

        set_mode(&tmp.path().join("a"), 0o750);
        let err = walk(&stranger).unwrap_err();
        assert!(err.0.contains("/a cannot be entered by stranger"), "{err}");
        let root = crate::identity::Target::lookup("root").unwrap();
        walk(&root).expect("root enters any directory");

        set_mode(&tmp.path().join("a"), 0o751);
        set_mode(&dir, 0o700);
        let err = walk(&stranger).unwrap_err();
        assert!(
            err.0.contains("/a/b cannot be entered"),
            "the last one counts too: {err}"
        );
        chown(&dir, 4242);
        walk(&stranger).expect("the owner enters its own 0700 directory");

        // Any owner and any write bit are fine for this policy; a symbolic link never is.
        set_mode(&tmp.path().join("a"), 0o777);
        walk(&stranger).unwrap();
        symlink(&dir, tmp.path().join("link")).unwrap();
        let err = WalkedDir::open_from(
            tmp.path(),
            &tmp.path().join("link"),
            None,
            Policy::SearchableBy(&stranger),
        )
        .unwrap_err();
        assert!(err.0.contains("is a symbolic link"), "{err}");
    }

    #[test]
    fn relative_tricks_are_refused() {
        let tmp = TempDir::new();
        let err = WalkedDir::open_from(
            tmp.path(),
            Path::new(&format!("{}/a/../b", tmp.path().display())),
            None,
            Policy::RootOwned,
        )
        .unwrap_err();
        assert!(err.0.contains("a . or .. component"), "{err}");
        assert!(split_file_path(Path::new("relative.toml")).is_err());
        assert_eq!(
            split_file_path(Path::new("/etc/assent/elevator.toml")).unwrap(),
            (Path::new("/etc/assent"), "elevator.toml")
        );
    }
}
