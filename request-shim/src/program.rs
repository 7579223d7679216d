//! Which file the elevator will execute, and its SHA-256.
//!
//! A name without `/` is looked up in the **elevator's** secure path, never the agent's `PATH`
//! (which the agent controls). A name with `/` is taken relative to the current directory.
//! Either way the path is resolved one component at a time (symlinks followed, at most
//! [`MAX_LINKS`]) so the approver sees the very file that will run, and the elevator opens
//! that same path: `/bin/true` may therefore be shown as `/usr/bin/true`. `argv[0]` stays as
//! the agent typed it, so multi-call programs still see the name they were called by.
//!
//! Nothing under `/proc`, `/dev` or `/sys` is a program, wherever the walk passes through
//! them: `/dev/stdin`, `/dev/fd/3` and `/proc/self/fd/0` name whatever the caller has open,
//! which would make the approver review one thing while the caller decides what it is.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use assent_protocol::Sha256Digest;
use sha2::Digest as _;

use crate::failure::{Failure, Result};

/// Trees whose files are views of processes, devices and the kernel, never program files.
const PSEUDO_TREES: [&str; 3] = ["/proc", "/dev", "/sys"];

/// Symlinks followed in one resolution before giving up (the kernel's own limit).
pub const MAX_LINKS: usize = 40;

/// Find `typed` as the elevator would run it. `cwd` must be absolute and canonical.
pub fn resolve(typed: &str, cwd: &Path, secure_path: &str) -> Result<String> {
    if typed.is_empty() {
        return Err(Failure::usage("the program name is empty"));
    }
    let found = if typed.contains('/') {
        cwd.join(typed)
    } else {
        search(typed, secure_path).ok_or_else(|| {
            Failure::usage(format!(
                "{typed}: command not found in the elevator's secure path ({secure_path}); give its full path"
            ))
        })?
    };
    let canonical = real_path(typed, &found)?;
    if let Ok(fs) = nix::sys::statfs::statfs(&canonical) {
        let kind = fs.filesystem_type();
        if kind == nix::sys::statfs::PROC_SUPER_MAGIC || kind == nix::sys::statfs::SYSFS_MAGIC {
            return Err(pseudo(typed, &canonical, "a proc or sys file system"));
        }
    }
    let meta = canonical
        .metadata()
        .map_err(|e| Failure::usage(format!("{}: {e}", canonical.display())))?;
    if !meta.is_file() {
        return Err(Failure::usage(format!(
            "{typed}: {} is not a regular file; give the path of the program file itself",
            canonical.display()
        )));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(Failure::usage(format!(
            "{typed}: {} is not executable",
            canonical.display()
        )));
    }
    canonical.into_os_string().into_string().map_err(|p| {
        Failure::usage(format!(
            "{typed}: its path {} is not valid UTF-8",
            p.to_string_lossy()
        ))
    })
}

fn pseudo(typed: &str, path: &Path, tree: &str) -> Failure {
    Failure::usage(format!(
        "{typed}: refusing {}: it is under {tree}, whose files are views of processes, devices or open descriptors, not programs; give the path of the program file itself",
        path.display()
    ))
}

/// `path` (absolute) with every symlink resolved and no `.` or `..`, walked one component at
/// a time so that no step through a pseudo tree goes unnoticed (a resolver that only looks at
/// the end result would follow `/proc/self/fd/0` to whatever file stdin is).
fn real_path(typed: &str, path: &Path) -> Result<PathBuf> {
    let mut resolved = PathBuf::from("/");
    // What is left to walk, last component first.
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, path);
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.to_str() {
            Some("" | ".") => continue,
            Some("..") => {
                // `resolved` holds no symlink, so its parent is the real parent.
                resolved.pop();
                continue;
            }
            _ => resolved.push(&part),
        }
        if let Some(tree) = PSEUDO_TREES.iter().find(|t| resolved.starts_with(t)) {
            return Err(pseudo(typed, &resolved, tree));
        }
        let meta = std::fs::symlink_metadata(&resolved).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Failure::usage(format!(
                    "{typed}: no such file ({} is missing)",
                    resolved.display()
                ))
            } else {
                Failure::usage(format!(
                    "{typed}: cannot resolve {}: {e}",
                    resolved.display()
                ))
            }
        })?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(Failure::usage(format!(
                    "{typed}: more than {MAX_LINKS} symlinks on the way to the program; give its real path"
                )));
            }
            let target = std::fs::read_link(&resolved).map_err(|e| {
                Failure::usage(format!(
                    "{typed}: cannot read the symlink {}: {e}",
                    resolved.display()
                ))
            })?;
            resolved.pop();
            if target.is_absolute() {
                resolved = PathBuf::from("/");
            }
            push_components(&mut pending, &target);
        }
    }
    Ok(resolved)
}

/// Push `path`'s components onto `pending` so that its first component is popped first.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some("..".into()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect();
    pending.extend(parts.into_iter().rev());
}

/// The first executable regular file named `name` in the absolute entries of `secure_path`.
fn search(name: &str, secure_path: &str) -> Option<PathBuf> {
    secure_path
        .split(':')
        .filter(|dir| dir.starts_with('/'))
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// SHA-256 of the file's bytes, streamed.
pub fn hash(path: &str) -> Result<Sha256Digest> {
    let cannot = |e: std::io::Error| {
        Failure::usage(format!(
            "cannot read {path} to hash it for the approver: {e}"
        ))
    };
    let mut file = File::open(path).map_err(cannot)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(cannot)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Sha256Digest(hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::failure::Exit;

    fn executable(path: &Path, body: &[u8]) {
        fs::write(path, body).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    struct Tree {
        dir: tempfile::TempDir,
    }

    impl Tree {
        fn new() -> Tree {
            let dir = tempfile::tempdir().unwrap();
            // canonical root so expectations compare equal
            Tree { dir }
        }
        fn root(&self) -> PathBuf {
            self.dir.path().canonicalize().unwrap()
        }
        fn path(&self, rel: &str) -> PathBuf {
            self.root().join(rel)
        }
        fn s(&self, rel: &str) -> String {
            self.path(rel).to_str().unwrap().to_owned()
        }
    }

    #[test]
    fn absolute_path_is_kept() {
        let t = Tree::new();
        fs::create_dir(t.path("bin")).unwrap();
        executable(&t.path("bin/tool"), b"#!/bin/sh\n");
        assert_eq!(
            resolve(&t.s("bin/tool"), Path::new("/"), "").unwrap(),
            t.s("bin/tool")
        );
    }

    #[test]
    fn relative_path_is_made_absolute_against_cwd() {
        let t = Tree::new();
        fs::create_dir(t.path("work")).unwrap();
        executable(&t.path("work/run.sh"), b"#!/bin/sh\n");
        assert_eq!(
            resolve("./run.sh", &t.path("work"), "").unwrap(),
            t.s("work/run.sh")
        );
        assert_eq!(
            resolve("work/run.sh", &t.root(), "").unwrap(),
            t.s("work/run.sh")
        );
        assert_eq!(
            resolve("../work/run.sh", &t.path("work"), "").unwrap(),
            t.s("work/run.sh")
        );
    }

    #[test]
    fn symlinks_are_resolved_to_the_file_that_runs() {
        let t = Tree::new();
        executable(&t.path("real"), b"x");
        symlink(t.path("real"), t.path("link")).unwrap();
        assert_eq!(
            resolve(&t.s("link"), Path::new("/"), "").unwrap(),
            t.s("real")
        );
        let dirs = format!("{}", t.root().display());
        assert_eq!(resolve("link", Path::new("/"), &dirs).unwrap(), t.s("real"));
    }

    #[test]
    fn bare_names_are_searched_in_the_secure_path_in_order() {
        let t = Tree::new();
        for d in ["a", "b", "c"] {
            fs::create_dir(t.path(d)).unwrap();
        }
        executable(&t.path("b/tool"), b"b");
        executable(&t.path("c/tool"), b"c");
        // Not executable, or a directory: skipped.
        fs::write(t.path("a/tool"), b"a").unwrap();
        let secure = format!("{}:relative/dir::{}:{}", t.s("a"), t.s("b"), t.s("c"));
        assert_eq!(
            resolve("tool", Path::new("/"), &secure).unwrap(),
            t.s("b/tool")
        );
    }

    #[test]
    fn the_agents_path_is_never_searched() {
        let t = Tree::new();
        fs::create_dir(t.path("agent-bin")).unwrap();
        executable(&t.path("agent-bin/assent-test-only-tool"), b"x");
        // Even with PATH pointing there, a bare name is looked up in the secure path only.
        let err = resolve(
            "assent-test-only-tool",
            &t.path("agent-bin"),
            "/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .unwrap_err();
        assert_eq!(err.exit, Exit::Usage);
        assert!(
            err.message
                .contains("command not found in the elevator's secure path")
        );
        // Nor the current directory.
        assert!(resolve("assent-test-only-tool", &t.path("agent-bin"), "").is_err());
    }

    #[test]
    fn system_programs_resolve() {
        let sh = resolve("sh", Path::new("/"), "/usr/bin:/bin").unwrap();
        assert!(sh.starts_with('/'));
        assert_eq!(Path::new(&sh), Path::new(&sh).canonicalize().unwrap());
    }

    #[test]
    fn missing_and_unusable_programs_are_refused() {
        let t = Tree::new();
        let missing = resolve(&t.s("nope"), Path::new("/"), "").unwrap_err();
        assert_eq!(missing.exit, Exit::Usage);
        assert!(missing.message.contains("no such file"));
        fs::write(t.path("data"), b"x").unwrap();
        assert!(
            resolve(&t.s("data"), Path::new("/"), "")
                .unwrap_err()
                .message
                .contains("not executable")
        );
        fs::create_dir(t.path("dir")).unwrap();
        assert!(
            resolve(&t.s("dir"), Path::new("/"), "")
                .unwrap_err()
                .message
                .contains("is not a regular file")
        );
        assert!(resolve("", Path::new("/"), "/bin").is_err());
    }

    #[test]
    fn pseudo_files_are_refused_however_they_are_reached() {
        let t = Tree::new();
        symlink("/dev/stdin", t.path("stdin-link")).unwrap();
        symlink("/proc/self/fd/0", t.path("fd-link")).unwrap();
        fs::create_dir(t.path("dir")).unwrap();
        symlink("/proc/self", t.path("dir/self")).unwrap();
        let root = t.root();
        for (typed, cwd, tree) in [
            ("/dev/stdin", Path::new("/"), "/dev"),
            ("/dev/fd/3", Path::new("/"), "/dev"),
            ("/proc/self/fd/0", Path::new("/"), "/proc"),
            ("/sys/kernel/notes", Path::new("/"), "/sys"),
            ("../dev/null", Path::new("/tmp"), "/dev"),
            ("./stdin", Path::new("/dev"), "/dev"),
            ("./stdin-link", root.as_path(), "/dev"),
            ("./fd-link", root.as_path(), "/proc"),
            ("dir/self/exe", root.as_path(), "/proc"),
        ] {
            let err = resolve(typed, cwd, "").unwrap_err();
            assert_eq!(err.exit, Exit::Usage, "{typed}");
            assert!(
                err.message.contains(&format!("is under {tree}")),
                "{typed}: {}",
                err.message
            );
            assert!(
                err.message
                    .ends_with("give the path of the program file itself"),
                "{typed}: {}",
                err.message
            );
            assert!(!err.message.contains('\n'));
        }
    }

    #[test]
    fn dot_dot_after_a_symlink_is_taken_from_the_link_target() {
        let t = Tree::new();
        for d in ["a/b", "c"] {
            fs::create_dir_all(t.path(d)).unwrap();
        }
        executable(&t.path("a/tool"), b"a");
        executable(&t.path("tool"), b"top");
        symlink(t.path("a/b"), t.path("c/link")).unwrap();
        // c/link/.. is a (the target's parent), not c.
        assert_eq!(
            resolve("c/link/../tool", &t.root(), "").unwrap(),
            t.s("a/tool")
        );
        // A loop ends with one line.
        symlink(t.path("loop"), t.path("loop")).unwrap();
        let err = resolve("./loop", &t.root(), "").unwrap_err();
        assert!(
            err.message.contains("more than 40 symlinks"),
            "{}",
            err.message
        );
    }

    #[test]
    fn hash_is_sha256_of_the_bytes() {
        let t = Tree::new();
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        executable(&t.path("big"), &body);
        assert_eq!(hash(&t.s("big")).unwrap(), assent_protocol::sha256(&body));
        // The empty file's well-known digest.
        executable(&t.path("empty"), b"");
        assert_eq!(
            hash(&t.s("empty")).unwrap().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(
            hash(&t.s("absent"))
                .unwrap_err()
                .message
                .contains("cannot read")
        );
    }
}
