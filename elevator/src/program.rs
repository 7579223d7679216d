//! The program file (SPEC §6 check 12, §13.2): named by a canonical path, opened once by a walk
//! that follows no symbolic link, hashed, and executed through that same descriptor, so no
//! second path lookup can swap it.
//!
//! Opening is its own step, before the grant is spent: the path must be absolute and
//! canonical, outside `/proc`, `/dev` and `/sys` (whose entries name whatever the caller has
//! open, like `/dev/stdin` or `/proc/self/fd/N`), every directory on it searchable by the
//! target, and the file a regular file the target may execute. Hashing is check 12.
//!
//! If anyone but root could change the file (owner not root, group or other write bit — which
//! with POSIX ACLs also covers named users and groups, since the group bits hold the ACL mask —
//! or a FUSE file system, whose server answers reads as it likes), its bytes are first copied
//! into a sealed memory file, and that copy is what is hashed and executed.
//!
//! A `#!` script is run by its interpreter, which opens the path the kernel hands it. Executed
//! through its descriptor, that path is `/dev/fd/N`: `$0` is then useless to a script that
//! finds its own files by it (`cd "$(dirname "$0")"`, Python's import of a sibling module).
//! So a script that only root can change — the file root's and not writable by others, every
//! directory above it too (or sticky), none on FUSE, and the same file found again by that
//! walk — is executed by its approved path, as sudo does: the interpreter opens a path only
//! root could have changed since it was hashed. Any other script runs from the descriptor that
//! was hashed (a sealed copy if others can write it), and its `$0` is `/dev/fd/N`.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read as _};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use assent_protocol::Sha256Digest;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};
use nix::sys::statfs::{FUSE_SUPER_MAGIC, PROC_SUPER_MAGIC, SYSFS_MAGIC, fstatfs};
use sha2::Digest as _;

use crate::identity::Target;
use crate::trusted::{Kind, Policy, WalkedDir, canonical_components, check_root_owned, on_fuse};

/// Largest program copied into memory (only programs that others than root can write).
pub const MAX_COPY_LEN: u64 = 1 << 30;

/// Top-level directories no program is taken from: their entries are the kernel's views of
/// processes, devices and descriptors, not files an approver can judge by name.
pub const PSEUDO_ROOTS: [&str; 3] = ["proc", "dev", "sys"];

/// A program file opened by its approved path and checked, not yet hashed.
#[derive(Debug)]
pub struct OpenedProgram {
    file: File,
    stat: FileStat,
    path: String,
}

impl OpenedProgram {
    /// Open the program at the approved `path` for `target`. Errors are one line for the
    /// refusal.
    ///
    /// `target` must be allowed to reach and execute the file: every directory on the path
    /// searchable, the file executable by its owner, group and mode — checked here because
    /// a sealed copy would otherwise lift the file's own permissions.
    pub fn open(path: &str, target: &Target) -> Result<OpenedProgram, String> {
        let components = canonical_components(path).map_err(|e| format!("program {e}"))?;
        let (Some(name), Some(top)) = (components.last(), components.first()) else {
            return Err(format!("program {path:?} is not a path to a file"));
        };
        if PSEUDO_ROOTS.contains(top) {
            return Err(format!(
                "program {path:?} is under /{top}: programs from /proc, /dev or /sys are \
                 refused; name the real file"
            ));
        }
        let parent = Path::new(path).parent().unwrap_or(Path::new("/"));
        let dir = WalkedDir::open(parent, Policy::SearchableBy(target))
            .map_err(|e| format!("program: {e}"))?;
        let flags = OFlag::O_RDONLY | OFlag::O_NOCTTY;
        let file = dir.open_file(name, flags, Mode::empty()).map_err(|e| match e {
            Errno::ELOOP => format!(
                "program {path:?} is a symbolic link; the elevator follows none, use the real path"
            ),
            e => format!("cannot open {path:?}: {}", e.desc()),
        })?;
        let stat = fstat(&file).map_err(|e| format!("cannot inspect {path:?}: {}", e.desc()))?;
        if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            return Err(format!("{path:?} is not a regular file"));
        }
        // /proc or /sys mounted somewhere else: still not a program.
        if fstatfs(&file)
            .is_ok_and(|fs| [PROC_SUPER_MAGIC, SYSFS_MAGIC].contains(&fs.filesystem_type()))
        {
            return Err(format!(
                "program {path:?} is on a proc or sysfs file system; name the real file"
            ));
        }
        if !target.may_execute((&stat).into()) {
            return Err(format!("{path:?} is not executable by {}", target.name));
        }
        Ok(OpenedProgram {
            file,
            stat,
            path: path.to_owned(),
        })
    }
}

/// An opened, hashed program ready to execute.
#[derive(Debug)]
pub struct ProgramFile {
    fd: OwnedFd,
    /// Starts with `#!`: the kernel hands the interpreter `/dev/fd/N`.
    pub script: bool,
    /// The bytes were copied into a sealed memory file.
    pub copied: bool,
    /// A script only root can change: executed by this path (its approved one), so that the
    /// interpreter's `$0` is that path.
    pub by_path: Option<CString>,
}

impl ProgramFile {
    /// Copy `opened` if others than root can change it, and require that the SHA-256 of the
    /// bytes that will run equals `expected`. Errors are one line for the refusal.
    pub fn verify(opened: OpenedProgram, expected: &Sha256Digest) -> Result<ProgramFile, String> {
        let OpenedProgram { file, stat, path } = opened;
        let on_fuse = fstatfs(&file).is_ok_and(|fs| fs.filesystem_type() == FUSE_SUPER_MAGIC);
        let changeable = stat.st_uid != 0 || stat.st_mode & 0o022 != 0 || on_fuse;
        let (fd, copied) = if changeable {
            (copy_sealed(file, &path)?, true)
        } else {
            (OwnedFd::from(file), false)
        };
        let file = File::from(fd);
        let actual = hash(&file).map_err(|e| format!("cannot read {path:?}: {e}"))?;
        if actual != *expected {
            return Err(format!(
                "SHA-256 of {path:?} is {actual}, not the approved {expected}: the program changed after approval"
            ));
        }
        let mut magic = [0u8; 2];
        let script = file.read_exact_at(&mut magic, 0).is_ok() && magic == *b"#!";
        let by_path = if script && !copied && only_root_can_change(&path, &stat) {
            CString::new(path).ok()
        } else {
            None
        };
        Ok(ProgramFile {
            fd: file.into(),
            script,
            copied,
            by_path,
        })
    }

    /// Make the descriptor usable by `fexecve`. For a `#!` script the kernel starts the
    /// interpreter with the path `/dev/fd/N`, which the interpreter opens after exec; with
    /// close-on-exec set that descriptor would be gone and exec fails with ENOENT. So for
    /// scripts only, this one read-only descriptor stays open in the program (as in
    /// `fexecve(3)`'s own advice); binaries keep close-on-exec and inherit nothing.
    pub fn prepare_for_exec(&self) -> Result<(), Errno> {
        if self.script && self.by_path.is_none() {
            fcntl(&self.fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
        }
        Ok(())
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for ProgramFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Whether `path` names, through a walk only root could have changed, the very file `stat`
/// describes, itself root's, not writable by others and not on FUSE. Any doubt is a no.
fn only_root_can_change(path: &str, stat: &FileStat) -> bool {
    let path = Path::new(path);
    let (Some(parent), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
    else {
        return false;
    };
    let Ok(dir) = WalkedDir::open(parent, Policy::RootOnly) else {
        return false;
    };
    let Ok(file) = dir.open_file(name, OFlag::O_RDONLY | OFlag::O_NOCTTY, Mode::empty()) else {
        return false;
    };
    let Ok(again) = fstat(&file) else {
        return false;
    };
    (again.st_dev, again.st_ino) == (stat.st_dev, stat.st_ino)
        && check_root_owned(&again, path, Kind::File).is_ok()
        && !on_fuse(&file)
}

fn hash(file: &File) -> io::Result<Sha256Digest> {
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut offset = 0u64;
    loop {
        let n = file.read_at(&mut buf, offset)?;
        if n == 0 {
            return Ok(Sha256Digest(hasher.finalize().into()));
        }
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
}

/// Copy `source` into a new memory file and seal it against any change.
fn copy_sealed(source: File, path: &str) -> Result<OwnedFd, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("cannot copy {path:?} {what}: {e}");
    let base = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    let memfd = match memfd_create(
        c"assent-program",
        base | MFdFlags::from_bits_retain(crate::sys::MFD_EXEC),
    ) {
        // Kernels before 6.3 do not know MFD_EXEC; their memory files are executable anyway.
        Err(Errno::EINVAL) => memfd_create(c"assent-program", base),
        other => other,
    }
    .map_err(|e| fail("into memory", &e.desc()))?;
    let mut memfile = File::from(memfd);
    let copied = io::copy(&mut (&source).take(MAX_COPY_LEN + 1), &mut memfile)
        .map_err(|e| fail("into memory", &e))?;
    if copied > MAX_COPY_LEN {
        return Err(format!(
            "{path:?} is larger than {MAX_COPY_LEN} bytes and writable by others than root; \
             make it root-owned and not group/other-writable"
        ));
    }
    let seals = SealFlag::F_SEAL_WRITE
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_SEAL;
    fcntl(&memfile, FcntlArg::F_ADD_SEALS(seals)).map_err(|e| fail("(seal)", &e.desc()))?;
    Ok(memfile.into())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use assent_protocol::sha256;

    use super::*;
    use crate::testutil::{TempDir, chown, stranger};

    fn program(tmp: &TempDir, name: &str, bytes: &[u8], mode: u32) -> String {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn open(path: &str, expected: &Sha256Digest, target: &Target) -> Result<ProgramFile, String> {
        ProgramFile::verify(OpenedProgram::open(path, target)?, expected)
    }

    fn root() -> Target {
        Target::lookup("root").unwrap()
    }

    fn seals(p: &ProgramFile) -> SealFlag {
        SealFlag::from_bits_truncate(fcntl(p, FcntlArg::F_GET_SEALS).unwrap())
    }

    #[test]
    fn a_root_owned_program_with_the_approved_hash_is_used_in_place() {
        let tmp = TempDir::new();
        let path = program(&tmp, "tool", b"\x7fELF pretend", 0o755);
        let p = open(&path, &sha256(b"\x7fELF pretend"), &root()).unwrap();
        assert!(!p.copied && !p.script);
        let flags = FdFlag::from_bits_truncate(fcntl(&p, FcntlArg::F_GETFD).unwrap());
        assert!(flags.contains(FdFlag::FD_CLOEXEC));
        p.prepare_for_exec().unwrap();
        let flags = FdFlag::from_bits_truncate(fcntl(&p, FcntlArg::F_GETFD).unwrap());
        assert!(
            flags.contains(FdFlag::FD_CLOEXEC),
            "binaries keep close-on-exec"
        );
    }

    #[test]
    fn a_different_hash_is_refused() {
        let tmp = TempDir::new();
        let path = program(&tmp, "tool", b"replaced after approval", 0o755);
        let err = open(&path, &sha256(b"what was approved"), &root()).unwrap_err();
        assert!(err.contains("the program changed after approval"), "{err}");
        assert!(
            err.contains(&sha256(b"replaced after approval").to_hex()),
            "{err}"
        );
    }

    #[test]
    fn non_executables_directories_and_missing_files_are_refused() {
        let tmp = TempDir::new();
        let path = program(&tmp, "data", b"x", 0o644);
        assert!(
            open(&path, &sha256(b"x"), &root())
                .unwrap_err()
                .contains("not executable")
        );
        let dir = tmp.path().to_str().unwrap();
        assert!(
            open(dir, &sha256(b""), &root())
                .unwrap_err()
                .contains("not a regular file")
        );
        let missing = format!("{dir}/missing");
        assert!(
            open(&missing, &sha256(b""), &root())
                .unwrap_err()
                .contains("cannot open")
        );
        let fifo = tmp.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::S_IRWXU).unwrap();
        let err = open(fifo.to_str().unwrap(), &sha256(b""), &root()).unwrap_err();
        assert!(
            err.contains("not a regular file"),
            "a FIFO must not block the open: {err}"
        );
    }

    #[test]
    fn a_program_others_can_write_runs_from_a_sealed_copy() {
        let tmp = TempDir::new();
        let body = b"#!/bin/sh\necho hi\n";
        for (mode, owner) in [(0o775, 0), (0o757, 0), (0o755, 1000)] {
            let path = program(&tmp, "script", body, mode);
            chown(Path::new(&path), owner);
            let p = open(&path, &sha256(body), &root()).unwrap();
            assert!(p.copied, "mode {mode:o} owner {owner}");
            assert!(p.script);
            let s = seals(&p);
            assert!(s.contains(
                SealFlag::F_SEAL_WRITE
                    | SealFlag::F_SEAL_GROW
                    | SealFlag::F_SEAL_SHRINK
                    | SealFlag::F_SEAL_SEAL
            ));
            // Changing the original afterwards changes nothing that will run.
            std::fs::write(&path, b"#!/bin/sh\nrm -rf /\n").unwrap();
            assert_eq!(
                hash(&File::from(nix::unistd::dup(&p).unwrap())).unwrap(),
                sha256(body)
            );
            p.prepare_for_exec().unwrap();
            let flags = FdFlag::from_bits_truncate(fcntl(&p, FcntlArg::F_GETFD).unwrap());
            assert!(
                !flags.contains(FdFlag::FD_CLOEXEC),
                "scripts keep their fd for /dev/fd/N"
            );
        }
    }

    #[test]
    fn a_script_only_root_can_change_runs_by_its_path_and_no_other() {
        let tmp = TempDir::new(); // root's, under the sticky, root-owned temp directory
        let body = b"#!/bin/sh\necho hi\n";
        let path = program(&tmp, "script", body, 0o755);
        let p = open(&path, &sha256(body), &root()).unwrap();
        assert_eq!(
            p.by_path.as_deref().and_then(|p| p.to_str().ok()),
            Some(path.as_str())
        );
        p.prepare_for_exec().unwrap();
        let flags = FdFlag::from_bits_truncate(fcntl(&p, FcntlArg::F_GETFD).unwrap());
        assert!(
            flags.contains(FdFlag::FD_CLOEXEC),
            "run by path: the descriptor is not passed on"
        );
        // A binary is always run through its descriptor.
        let binary = program(&tmp, "binary", b"\x7fELF pretend", 0o755);
        let b = open(&binary, &sha256(b"\x7fELF pretend"), &root()).unwrap();
        assert!(b.by_path.is_none());
        // Someone else could replace it through a directory above: the descriptor it is.
        let sub = tmp.path().join("shared");
        std::fs::create_dir(&sub).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o775)).unwrap();
        let shared = sub.join("script");
        std::fs::write(&shared, body).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = open(shared.to_str().unwrap(), &sha256(body), &root()).unwrap();
        assert!(
            !p.copied && p.by_path.is_none(),
            "a group-writable directory"
        );
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
        chown(&sub, 1000);
        let p = open(shared.to_str().unwrap(), &sha256(body), &root()).unwrap();
        assert!(p.by_path.is_none(), "a directory another user owns");
        // A script others can write runs from its sealed copy, through the descriptor.
        let theirs = program(&tmp, "theirs", body, 0o755);
        chown(Path::new(&theirs), 1000);
        let p = open(&theirs, &sha256(body), &root()).unwrap();
        assert!(p.copied && p.by_path.is_none());
    }

    #[test]
    fn the_target_must_be_allowed_to_execute_the_original() {
        let tmp = TempDir::new();
        let body = b"#!/bin/sh\necho hi\n";
        let path = program(&tmp, "private", body, 0o700);
        chown(Path::new(&path), 1000);
        let stranger = stranger();
        let err = open(&path, &sha256(body), &stranger).unwrap_err();
        assert!(err.contains("cannot be entered by stranger"), "{err}");
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let err = open(&path, &sha256(body), &stranger).unwrap_err();
        assert!(err.contains("is not executable by stranger"), "{err}");
        let p = open(&path, &sha256(body), &root()).expect("root may run it");
        assert!(p.copied, "owned by uid 1000, so copied");
    }
}
