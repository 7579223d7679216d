//! Who called and whom the program runs as: two types that cannot be mixed up.

use std::ffi::OsString;

use assent_common::access::Identity;
use nix::unistd::{Uid, User, getgid, getgrouplist, getuid};

/// The invoking user: the **real** uid and gid (under setuid the effective uid is always 0,
/// only the real ids say who called) and its name from the user database, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub name: Option<String>,
}

impl Caller {
    /// Read once at startup, before the elevator changes any of its own ids.
    pub fn current() -> Caller {
        let uid = getuid();
        let name = User::from_uid(uid).ok().flatten().map(|u| u.name);
        Caller {
            uid: uid.as_raw(),
            gid: getgid().as_raw(),
            name,
        }
    }
}

/// A user id as the kernel stores it in a file's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserId(pub u32);

/// A group id as the kernel stores it in a file's group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupId(pub u32);

/// A file's owner, group and mode, as one `fstat` reported them: what the kernel judges
/// access by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub owner: UserId,
    pub group: GroupId,
    pub mode: u32,
}

impl From<&nix::sys::stat::FileStat> for Access {
    fn from(stat: &nix::sys::stat::FileStat) -> Access {
        Access {
            owner: UserId(stat.st_uid),
            group: GroupId(stat.st_gid),
            mode: stat.st_mode,
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
    pub fn may_execute(&self, file: Access) -> bool {
        // Root may execute a file only if someone may.
        let bits = if self.uid == 0 {
            0o111
        } else {
            self.class_bits(file, 0o111)
        };
        file.mode & bits != 0
    }

    /// Whether the kernel would let this user search (enter, look up names in) a directory
    /// with this owner, group and mode. Root may search any directory. As for
    /// [`Target::may_execute`], the mode bits decide: where a POSIX ACL is set, the group bits
    /// are its mask.
    pub fn may_search(&self, dir: Access) -> bool {
        let (UserId(owner), GroupId(group)) = (dir.owner, dir.group);
        self.identity().may_search(owner, group, dir.mode)
    }

    /// Of the owner, group and other bits in `bits`, the ones that apply to this user: the
    /// first class it belongs to decides, as in the kernel.
    fn class_bits(&self, file: Access, bits: u32) -> u32 {
        let (UserId(owner), GroupId(group)) = (file.owner, file.group);
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

    fn access(owner: u32, group: u32, mode: u32) -> Access {
        Access {
            owner: UserId(owner),
            group: GroupId(group),
            mode,
        }
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
        assert!(t.may_execute(access(1000, 0, 0o700)), "owner");
        assert!(
            !t.may_execute(access(1000, 27, 0o070)),
            "the owner class decides for the owner"
        );
        assert!(t.may_execute(access(0, 27, 0o710)), "supplementary group");
        assert!(t.may_execute(access(0, 100, 0o750)), "primary group");
        assert!(!t.may_execute(access(0, 5, 0o770)), "another group");
        assert!(t.may_execute(access(0, 5, 0o771)), "others");
        let root = Target { uid: 0, ..t };
        assert!(root.may_execute(access(1000, 5, 0o100)));
        assert!(
            !root.may_execute(access(1000, 5, 0o644)),
            "not even root runs a file without x"
        );
    }

    #[test]
    fn search_permission_follows_the_kernel_rules() {
        let t = bob();
        assert!(t.may_search(access(1000, 5, 0o700)), "owner");
        assert!(
            !t.may_search(access(1000, 5, 0o077)),
            "the owner class decides for the owner"
        );
        assert!(t.may_search(access(0, 27, 0o710)), "supplementary group");
        assert!(
            !t.may_search(access(0, 27, 0o701)),
            "the group class decides for members"
        );
        assert!(t.may_search(access(0, 5, 0o711)), "others");
        assert!(!t.may_search(access(0, 5, 0o750)), "a private directory");
        let root = Target { uid: 0, ..t };
        assert!(
            root.may_search(access(1000, 5, 0o700)),
            "root searches anything"
        );
    }

    #[test]
    fn the_caller_is_the_real_uid() {
        let caller = Caller::current();
        assert_eq!(caller.uid, getuid().as_raw());
        assert_eq!(caller.gid, getgid().as_raw());
        if caller.uid == 0 {
            assert_eq!(caller.name.as_deref(), Some("root"));
        }
    }
}
