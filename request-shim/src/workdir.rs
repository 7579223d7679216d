//! The directory the command starts in, as the request names it (SPEC §13.2).
//!
//! The elevator opens the request's `cwd` from `/` one component at a time and refuses any
//! symlink on the way, so the shim names the directory by its real path: the kernel's answer
//! to getcwd(2), confirmed to lead, without a symlink, to the very directory the shim runs in.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::failure::{Failure, Result};

/// The real path of the current directory, as UTF-8.
pub fn current() -> Result<String> {
    let cwd = std::env::current_dir().map_err(|e| {
        Failure::usage(format!(
            "cannot tell the current directory ({e}); cd to an existing directory"
        ))
    })?;
    let here = std::fs::metadata(".").map_err(|e| {
        Failure::usage(format!(
            "cannot inspect the current directory ({e}); cd to a directory you can read"
        ))
    })?;
    check(&cwd, here.dev(), here.ino())?;
    cwd.into_os_string().into_string().map_err(|path| {
        Failure::usage(format!(
            "the current directory {} is not valid UTF-8; cd to a directory whose path is",
            path.to_string_lossy()
        ))
    })
}

/// `path` is absolute, free of symlinks, `.` and `..`, and names the directory with this
/// device and inode number.
fn check(path: &Path, dev: u64, ino: u64) -> Result<()> {
    let moved = || {
        Failure::usage(format!(
            "the current directory is no longer at {} (moved, or replaced by a symlink); cd to its real path",
            path.display()
        ))
    };
    let real = std::fs::canonicalize(path).map_err(|_| moved())?;
    if real != path {
        return Err(Failure::usage(format!(
            "the current directory {} is reached through a symlink; cd to its real path {}",
            path.display(),
            real.display()
        )));
    }
    let there = std::fs::metadata(&real).map_err(|_| moved())?;
    if (there.dev(), there.ino()) != (dev, ino) {
        return Err(moved());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::failure::Exit;

    fn id(path: &Path) -> (u64, u64) {
        let meta = fs::metadata(path).unwrap();
        (meta.dev(), meta.ino())
    }

    #[test]
    fn a_real_path_to_the_directory_passes() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        let (dev, ino) = id(&real);
        check(&real, dev, ino).unwrap();
    }

    #[test]
    fn a_path_through_a_symlink_is_refused_with_the_real_one() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir(root.join("real")).unwrap();
        symlink(root.join("real"), root.join("link")).unwrap();
        let (dev, ino) = id(&root.join("real"));
        let err = check(&root.join("link"), dev, ino).unwrap_err();
        assert_eq!(err.exit, Exit::Usage);
        assert!(
            err.message.ends_with(&format!(
                "cd to its real path {}",
                root.join("real").display()
            )),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_path_that_now_names_another_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir(root.join("a")).unwrap();
        fs::create_dir(root.join("b")).unwrap();
        let (dev, ino) = id(&root.join("a"));
        let err = check(&root.join("b"), dev, ino).unwrap_err();
        assert!(err.message.contains("no longer at"), "{}", err.message);
        let err = check(&root.join("gone"), dev, ino).unwrap_err();
        assert!(err.message.contains("no longer at"), "{}", err.message);
    }
}
