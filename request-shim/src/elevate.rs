//! Handing an approved grant to the setuid elevator, which replaces this process.
//!
//! The token travels through a pipe (`--grant-fd N`) so it never shows in `ps`: the read end
//! is the only descriptor this process leaves open across exec, the write end is closed first.

use std::convert::Infallible;
use std::ffi::OsStr;
use std::io::Write as _;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use assent_protocol::GrantToken;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};

use crate::config::ELEVATOR_NAME;
use crate::failure::{Failure, Result};

/// The elevator named in `agent.toml`, else the first `assent-elevate` on PATH.
pub fn locate(configured: Option<&Path>, path_var: Option<&OsStr>) -> Result<PathBuf> {
    if let Some(path) = configured {
        return if is_executable(path) {
            Ok(path.to_path_buf())
        } else {
            Err(Failure::config(format!(
                "the elevator {} set in agent.toml is missing or not executable; install assent-elevate there or fix the path",
                path.display()
            )))
        };
    }
    path_var
        .into_iter()
        .flat_map(std::env::split_paths)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(ELEVATOR_NAME))
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            Failure::config(format!(
                "{ELEVATOR_NAME} was not found on PATH; install it (setuid root) or set elevator = \"/path/to/{ELEVATOR_NAME}\" in agent.toml"
            ))
        })
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Why the elevator at `path` cannot work as installed, with the fix; `None` when it can.
/// It must be owned by root and setuid, on a file system that honours setuid.
pub fn install_problem(path: &Path) -> Option<String> {
    let meta = match path.metadata() {
        Ok(meta) => meta,
        Err(e) => return Some(format!("cannot inspect it: {e}")),
    };
    let mut wrong = Vec::new();
    if meta.uid() != 0 {
        wrong.push(format!("owned by uid {}, not root", meta.uid()));
    }
    if meta.mode() & 0o4000 == 0 {
        wrong.push("not setuid".to_owned());
    }
    if !wrong.is_empty() {
        let path = path.display();
        return Some(format!(
            "{}, so it will refuse every request; fix: `sudo chown root:root {path} && sudo chmod 4755 {path}`",
            wrong.join(" and ")
        ));
    }
    let nosuid = nix::sys::statvfs::statvfs(path)
        .is_ok_and(|fs| fs.flags().contains(nix::sys::statvfs::FsFlags::ST_NOSUID));
    nosuid.then(|| {
        "its file system is mounted nosuid, where setuid has no effect; fix: install it on another (e.g. /usr/local/bin) and set elevator = in agent.toml".to_owned()
    })
}

/// A pipe whose read end holds `bytes` and survives exec; the write end is already closed.
pub fn token_pipe(bytes: &[u8]) -> std::io::Result<OwnedFd> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    if bytes.len() >= 64 * 1024 {
        // Nobody reads before exec, so everything must fit in the pipe's buffer.
        let size = i32::try_from(bytes.len() + 4096).unwrap_or(i32::MAX);
        fcntl(&write, FcntlArg::F_SETPIPE_SZ(size))?;
    }
    let mut write = std::fs::File::from(write);
    write.write_all(bytes)?;
    drop(write);
    fcntl(&read, FcntlArg::F_SETFD(FdFlag::empty()))?;
    Ok(read)
}

/// Replace this process with `elevator --grant-fd N -- program args…`. Returns only on failure.
pub fn exec(
    elevator: &Path,
    token: &GrantToken,
    program: &str,
    args: &[String],
) -> Result<Infallible> {
    let encoded = token.encode();
    let fd = token_pipe(encoded.as_bytes())
        .map_err(|e| Failure::config(format!("cannot make a pipe for the grant token: {e}")))?;
    let err = std::process::Command::new(elevator)
        .arg("--grant-fd")
        .arg(fd.as_raw_fd().to_string())
        .arg("--")
        .arg(program)
        .args(args)
        .exec();
    Err(Failure::config(format!(
        "cannot run the elevator {}: {err}",
        elevator.display()
    )))
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::fs;
    use std::io::Read as _;

    use super::*;
    use crate::failure::Exit;

    #[test]
    fn token_pipe_holds_the_bytes_and_stays_open_across_exec() {
        let body = vec![b'x'; 200_000];
        let fd = token_pipe(&body).unwrap();
        let flags = fcntl(&fd, FcntlArg::F_GETFD).unwrap();
        assert_eq!(flags & libc_cloexec(), 0, "the read end is inherited");
        let mut read = Vec::new();
        std::fs::File::from(fd).read_to_end(&mut read).unwrap();
        assert_eq!(
            read, body,
            "all bytes, then EOF because the write end is closed"
        );
    }

    fn libc_cloexec() -> i32 {
        FdFlag::FD_CLOEXEC.bits()
    }

    #[test]
    fn locate_prefers_the_configured_path_then_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        let elevator = bin.join(ELEVATOR_NAME);
        fs::write(&elevator, b"#!/bin/sh\n").unwrap();
        fs::set_permissions(&elevator, fs::Permissions::from_mode(0o755)).unwrap();
        let path: OsString = format!("/nonexistent:relative:{}", bin.display()).into();
        assert_eq!(locate(None, Some(&path)).unwrap(), elevator);
        assert_eq!(locate(Some(&elevator), None).unwrap(), elevator);
        let err = locate(Some(&dir.path().join("absent")), Some(&path)).unwrap_err();
        assert_eq!(err.exit, Exit::Config);
        assert!(err.message.contains("agent.toml"));
        let err = locate(None, Some(OsStr::new("/nonexistent"))).unwrap_err();
        assert_eq!(err.exit, Exit::Config);
        assert!(err.message.contains("not found on PATH"));
    }

    #[test]
    fn install_problem_names_what_is_wrong_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let elevator = dir.path().join(ELEVATOR_NAME);
        fs::write(&elevator, b"#!/bin/sh\n").unwrap();
        fs::set_permissions(&elevator, fs::Permissions::from_mode(0o755)).unwrap();
        let owner = fs::metadata(&elevator).unwrap().uid();
        let why = install_problem(&elevator).expect("not setuid");
        assert!(why.contains("not setuid"), "{why}");
        assert!(
            why.contains(&format!(
                "fix: `sudo chown root:root {0} && sudo chmod 4755 {0}`",
                elevator.display()
            )),
            "{why}"
        );
        assert_eq!(why.contains("not root"), owner != 0, "{why}");
        fs::set_permissions(&elevator, fs::Permissions::from_mode(0o4755)).unwrap();
        match install_problem(&elevator) {
            Some(why) if owner != 0 => {
                assert!(
                    why.starts_with(&format!("owned by uid {owner}, not root")),
                    "{why}"
                );
                assert!(!why.contains("not setuid"), "{why}");
            }
            // Root-owned and setuid: fine, unless this file system ignores setuid.
            Some(why) => assert!(why.contains("nosuid"), "{why}"),
            None => assert_eq!(owner, 0),
        }
        let why = install_problem(&dir.path().join("absent")).unwrap();
        assert!(why.starts_with("cannot inspect it"), "{why}");
    }
}
