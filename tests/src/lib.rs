//! Test support for assent's end-to-end tests: keys made by the real `ssh-keygen`, builders for
//! signed requests, decisions, statuses and grant tokens, and a harness that installs the real
//! setuid elevator into a private mount namespace and runs commands as a real unprivileged user.
//!
//! Nothing here verifies signatures or re-implements the protocol: everything is signed with
//! `assent_protocol::Envelope` and checked by the binaries under test.
#![forbid(unsafe_code)]

pub mod agent_flow;
pub mod approver;
pub mod console;
pub mod grants;
pub mod keys;
pub mod pki;
pub mod relay_process;
pub mod sandbox;
pub mod scratch;
pub mod tmux;
pub mod users;

use std::path::{Path, PathBuf};

/// What the tests say when they are not root.
pub const NEED_ROOT: &str =
    "these tests need root (setuid, namespaces): run as root, e.g. sudo -E cargo test --workspace";

/// Panic unless the effective uid is 0. Tests that need root never skip silently.
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!("{NEED_ROOT}");
    }
}

/// The cargo profile directory the running test executable was built into
/// (`target/debug` for both `target/debug/deps/<test>` and `target/debug/<bin>`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("cannot find the running test executable");
    let dir = exe
        .parent()
        .expect("the test executable has no parent directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent()
            .expect("deps/ has no parent directory")
            .to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// A binary of this workspace, built next to the tests (`target/debug/<name>`).
///
/// # Panics
/// If it has not been built; `cargo test --workspace` builds every binary first.
pub fn built_binary(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    if !path.is_file() {
        panic!(
            "{} is missing: build it first (`cargo build -p PACKAGE`; `cargo test --workspace` builds every binary)",
            path.display()
        );
    }
    path
}

/// The real path of a system program (`/bin/sh` is a symlink on most systems).
pub fn real_path(path: impl AsRef<Path>) -> PathBuf {
    let path = path.as_ref();
    std::fs::canonicalize(path).unwrap_or_else(|e| panic!("cannot resolve {}: {e}", path.display()))
}

/// The fields of line `NAME:` of `/proc/PID/status`, joined by single spaces (`Uid` gives
/// `"1001 0 0 0"`, `VmRSS` `"8412 kB"`); `None` once the process is gone.
pub fn proc_status(pid: u32, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

pub use assent_common::clock::now;

/// This machine's hostname, as the elevator sees it.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .expect("gethostname failed")
        .into_string()
        .expect("the hostname is not UTF-8")
}
