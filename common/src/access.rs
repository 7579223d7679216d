//! Who may use a file, judged from its owner, group and mode bits alone: the rules the
//! elevator enforces, written once so that the shim can tell before it asks a human.
//!
//! POSIX ACL entries are not consulted. Where an ACL is set, the group bits hold its mask, so
//! a directory only an ACL opens counts as closed, and a file only an ACL makes writable
//! counts as group-writable: both the safe direction.

/// A user as the kernel checks permissions: uid, primary group and supplementary groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity<'a> {
    pub uid: u32,
    pub gid: u32,
    pub groups: &'a [u32],
}

impl Identity<'_> {
    /// Of the owner, group and other bits in `bits`, the ones that apply to this user: the
    /// first class it belongs to decides, as in the kernel.
    pub fn class_bits(&self, owner: u32, group: u32, bits: u32) -> u32 {
        if owner == self.uid {
            bits & 0o700
        } else if group == self.gid || self.groups.contains(&group) {
            bits & 0o070
        } else {
            bits & 0o007
        }
    }

    /// Whether this user may search (enter, look up names in) a directory with this owner,
    /// group and mode. Root may search any directory.
    pub fn may_search(&self, owner: u32, group: u32, mode: u32) -> bool {
        self.uid == 0 || mode & self.class_bits(owner, group, 0o111) != 0
    }
}

/// Why a file or directory the elevator trusts (its configuration and the directories above
/// it) is not safe, as the elevator says it, with the fix; `None` when it is owned by root and
/// not writable by group or others.
pub fn root_owned_problem(shown: &str, owner: u32, mode: u32) -> Option<String> {
    if owner != 0 {
        return Some(format!(
            "{shown} is owned by uid {owner}, not root; run: chown root {shown}"
        ));
    }
    if mode & 0o022 != 0 {
        return Some(format!(
            "{shown} is writable by group or others (mode {:04o}); run: chmod go-w {shown}",
            mode & 0o7777
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOB: Identity<'static> = Identity {
        uid: 1000,
        gid: 100,
        groups: &[100, 27],
    };

    #[test]
    fn search_permission_follows_the_kernel_rules() {
        assert!(BOB.may_search(1000, 5, 0o700), "owner");
        assert!(!BOB.may_search(1000, 5, 0o077), "the owner class decides");
        assert!(BOB.may_search(0, 27, 0o710), "supplementary group");
        assert!(BOB.may_search(0, 100, 0o750), "primary group");
        assert!(!BOB.may_search(0, 27, 0o701), "the group class decides");
        assert!(BOB.may_search(0, 5, 0o711), "others");
        assert!(!BOB.may_search(0, 5, 0o750), "a private directory");
        let root = Identity { uid: 0, ..BOB };
        assert!(root.may_search(1000, 5, 0o700), "root searches anything");
    }

    #[test]
    fn only_root_owned_and_not_group_or_world_writable_is_safe() {
        assert_eq!(root_owned_problem("/etc/x", 0, 0o100644), None);
        assert_eq!(root_owned_problem("/etc", 0, 0o040755), None);
        assert_eq!(
            root_owned_problem("/etc/x", 0, 0o100666).as_deref(),
            Some("/etc/x is writable by group or others (mode 0666); run: chmod go-w /etc/x")
        );
        assert!(
            root_owned_problem("/etc/x", 0, 0o100664)
                .unwrap()
                .contains("mode 0664")
        );
        assert_eq!(
            root_owned_problem("/etc/x", 1000, 0o100600).as_deref(),
            Some("/etc/x is owned by uid 1000, not root; run: chown root /etc/x")
        );
    }
}
