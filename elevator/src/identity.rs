//! Who called and whom the program runs as: two types that cannot be mixed up.

use std::ffi::OsString;

use nix::unistd::{Uid, User, getuid};

/// The invoking user: the **real** uid (under setuid the effective uid is always 0, only the
/// real uid says who called) and its name from the user database, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub name: Option<String>,
}

impl Caller {
    pub fn current() -> Caller {
        let uid = getuid();
        let name = User::from_uid(uid).ok().flatten().map(|u| u.name);
        Caller {
            uid: uid.as_raw(),
            name,
        }
    }
}

/// The user the approved program runs as, from the user database of this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: OsString,
    pub shell: OsString,
}

impl Target {
    /// Look up a user by name; `None` when there is no such user.
    pub fn lookup(name: &str) -> Option<Target> {
        let user = User::from_name(name).ok().flatten()?;
        // The database may map a name to another spelling (e.g. case-folding NSS modules);
        // only an exact match is the user that was approved.
        if user.name != name {
            return None;
        }
        let shell = if user.shell.as_os_str().is_empty() {
            OsString::from("/bin/sh")
        } else {
            user.shell.into_os_string()
        };
        Some(Target {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home: user.dir.into_os_string(),
            shell,
        })
    }

    pub fn is_root(&self) -> bool {
        Uid::from_raw(self.uid).is_root()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_and_strangers_are_not() {
        let root = Target::lookup("root").expect("every host has root");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.is_root());
        assert!(!root.home.is_empty());
        assert!(Target::lookup("no-such-user-assent").is_none());
        assert!(Target::lookup("").is_none());
    }

    #[test]
    fn the_caller_is_the_real_uid() {
        let caller = Caller::current();
        assert_eq!(caller.uid, getuid().as_raw());
        if caller.uid == 0 {
            assert_eq!(caller.name.as_deref(), Some("root"));
        }
    }
}
