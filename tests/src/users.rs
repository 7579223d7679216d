//! The unprivileged OS users the end-to-end tests run as: `assent-agent` (the requester) and
//! `assent-other` (someone else). Created on first use if missing, under a file lock so that
//! parallel test threads and test processes never race `useradd`.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{Gid, Uid, User};

/// The requester the tests elevate from.
pub const AGENT: &str = "assent-agent";
/// A second unprivileged user, for "someone else used the grant" cases.
pub const OTHER: &str = "assent-other";

const USERADD_LOCK: &str = "/var/tmp/assent-tests-useradd.lock";

/// An OS user as the tests need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub shell: PathBuf,
}

impl TestUser {
    /// `assent-agent`, created if missing.
    pub fn agent() -> TestUser {
        static AGENT_USER: OnceLock<TestUser> = OnceLock::new();
        AGENT_USER.get_or_init(|| ensure_user(AGENT)).clone()
    }

    /// `assent-other`, created if missing.
    pub fn other() -> TestUser {
        static OTHER_USER: OnceLock<TestUser> = OnceLock::new();
        OTHER_USER.get_or_init(|| ensure_user(OTHER)).clone()
    }

    /// root, as the target of most elevations.
    pub fn root() -> TestUser {
        lookup("root").expect("this system has no root user in its passwd database")
    }

    /// An existing user by name, if there is one.
    pub fn lookup(name: &str) -> Option<TestUser> {
        lookup(name)
    }

    /// The user the test process itself runs as (by real uid).
    pub fn current() -> TestUser {
        let uid = nix::unistd::getuid();
        let user = User::from_uid(uid)
            .unwrap_or_else(|e| panic!("cannot look up uid {uid}: {e}"))
            .unwrap_or_else(|| panic!("uid {uid} has no passwd entry"));
        from_nix(user)
    }

    pub fn uid(&self) -> Uid {
        Uid::from_raw(self.uid)
    }

    pub fn gid(&self) -> Gid {
        Gid::from_raw(self.gid)
    }
}

fn from_nix(user: User) -> TestUser {
    TestUser {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        home: user.dir,
        shell: user.shell,
    }
}

fn lookup(name: &str) -> Option<TestUser> {
    User::from_name(name)
        .unwrap_or_else(|e| panic!("cannot look up user {name}: {e}"))
        .map(from_nix)
}

/// Look the user up; if missing, take the lock, look again, and create it.
fn ensure_user(name: &str) -> TestUser {
    if let Some(user) = lookup(name) {
        return user;
    }
    crate::require_root();
    let _lock = lock_file(USERADD_LOCK);
    if let Some(user) = lookup(name) {
        return user;
    }
    let out = Command::new("useradd")
        .args(["--create-home", "--shell", "/bin/sh", "--user-group", name])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run useradd to create test user {name}: {e} (install the passwd package)"
            )
        });
    if !out.status.success() {
        panic!(
            "useradd {name} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    lookup(name).unwrap_or_else(|| panic!("useradd {name} succeeded but the user is not found"))
}

/// An exclusive advisory lock on `path`, held until the returned value is dropped.
pub(crate) fn lock_file(path: &str) -> Flock<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open lock file {path}: {e}"));
    Flock::lock(file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("cannot lock {path}: {e}"))
}
