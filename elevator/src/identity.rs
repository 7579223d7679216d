//! Who called and whom the program runs as: two types that cannot be mixed up.

use std::ffi::OsString;

use assent_common::access::Identity;
use nix::unistd::{Uid, User, getgrouplist, getuid};

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
    /// Supplementary groups from the group database (what `initgroups` will set).
    pub groups: Vec<u32>,
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
        let groups = std::ffi::CString::new(user.name.as_str())
            .ok()
            .and_then(|name| getgrouplist(&name, user.gid).ok())
            .map(|groups| groups.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_else(|| vec![user.gid.as_raw()]);
        Some(Target {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home: user.dir.into_os_string(),
            shell,
            groups,
        })
    }

    pub fn is_root(&self) -> bool {
        Uid::from_raw(self.uid).is_root()
    }

    /// Whether the kernel would let this user execute a file with this owner, group and mode.
    /// POSIX ACL entries are not consulted, so a file that only an ACL makes executable for
    /// this user is refused: the safe direction.
    pub fn may_execute(&self, owner: u32, group: u32, mode: u32) -> bool {
        // Root may execute a file only if someone may.
        let bits = if self.uid == 0 {
            0o111
        } else {
            self.class_bits(owner, group, 0o111)
        };
        mode & bits != 0
    }

    /// Whether the kernel would let this user search (enter, look up names in) a directory
    /// with this owner, group and mode. Root may search any directory. As for
    /// [`Target::may_execute`], the mode bits decide: where a POSIX ACL is set, the group bits
    /// are its mask.
    pub fn may_search(&self, owner: u32, group: u32, mode: u32) -> bool {
        self.identity().may_search(owner, group, mode)
    }

    /// Of the owner, group and other bits in `bits`, the ones that apply to this user.
    fn class_bits(&self, owner: u32, group: u32, bits: u32) -> u32 {
        self.identity().class_bits(owner, group, bits)
    }

    /// This user as permission checks see it, judged by the rules shared with the shim.
    fn identity(&self) -> Identity<'_> {
        Identity {
            uid: self.uid,
            gid: self.gid,
            groups: &self.groups,
        }
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
        assert!(root.groups.contains(&0));
        assert!(Target::lookup("no-such-user-assent").is_none());
        assert!(Target::lookup("").is_none());
    }

    /// uid 1000, primary group 100, also in group 27.
    fn bob() -> Target {
        Target {
            name: "bob".into(),
            uid: 1000,
            gid: 100,
            home: "/home/bob".into(),
            shell: "/bin/sh".into(),
            groups: vec![100, 27],
        }
    }

    #[test]
    fn execute_permission_follows_the_kernel_rules() {
        let t = bob();
        assert!(t.may_execute(1000, 0, 0o700), "owner");
        assert!(
            !t.may_execute(1000, 27, 0o070),
            "the owner class decides for the owner"
        );
        assert!(t.may_execute(0, 27, 0o710), "supplementary group");
        assert!(t.may_execute(0, 100, 0o750), "primary group");
        assert!(!t.may_execute(0, 5, 0o770), "another group");
        assert!(t.may_execute(0, 5, 0o771), "others");
        let root = Target { uid: 0, ..t };
        assert!(root.may_execute(1000, 5, 0o100));
        assert!(
            !root.may_execute(1000, 5, 0o644),
            "not even root runs a file without x"
        );
    }

    #[test]
    fn search_permission_follows_the_kernel_rules() {
        let t = bob();
        assert!(t.may_search(1000, 5, 0o700), "owner");
        assert!(
            !t.may_search(1000, 5, 0o077),
            "the owner class decides for the owner"
        );
        assert!(t.may_search(0, 27, 0o710), "supplementary group");
        assert!(
            !t.may_search(0, 27, 0o701),
            "the group class decides for members"
        );
        assert!(t.may_search(0, 5, 0o711), "others");
        assert!(!t.may_search(0, 5, 0o750), "a private directory");
        let root = Target { uid: 0, ..t };
        assert!(root.may_search(1000, 5, 0o700), "root searches anything");
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
