//! Pre-flight: everything a human's approval cannot fix, checked before a request is sent, so
//! nobody is asked to approve what the elevator would refuse anyway.
//!
//! In order: this process may gain privileges at all (no *no_new_privs*, which agent
//! sandboxes set and under which setuid does nothing); the elevator is installed setuid root;
//! its configuration is root's alone and accepted by its own parser; the caller is a listed
//! `[[requester]]` who may become `run_as`; that user exists and may enter the directory the
//! command runs in. Each failure is one line with the fix, and exit 78.
//!
//! Only what this user can see is judged: when the configuration is not readable here, the
//! elevator decides. `assent status` reports the same checks ([`Check`]).

use std::path::Path;

use assent_common::access::Identity;
use assent_protocol::Request;

use crate::config::{ELEVATOR_CONFIG, ElevatorFile};
use crate::elevate;
use crate::failure::{Failure, Result};

/// What the run asks the elevator for, as far as the pre-flight is concerned.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The caller's user name (the real uid's).
    pub user: &'a str,
    pub run_as: &'a str,
    /// The canonical directory the command runs in.
    pub cwd: &'a str,
}

impl<'a> From<&'a Request> for Ask<'a> {
    fn from(request: &'a Request) -> Ask<'a> {
        Ask {
            user: &request.user,
            run_as: &request.run_as,
            cwd: &request.cwd,
        }
    }
}

/// Run every check for `request` and the elevator at `elevator`; the first failure, as the
/// line to exit 78 with. Call it before the request is sent (or a cached grant is used).
pub fn check(request: &Request, elevator: &Path) -> Result<()> {
    let file = ElevatorFile::read(Path::new(ELEVATOR_CONFIG));
    check_with(Ask::from(request), elevator, &file)
}

/// [`check`], with the elevator's configuration already read.
pub fn check_with(ask: Ask<'_>, elevator: &Path, file: &ElevatorFile) -> Result<()> {
    let fail = |why: String| Failure::config(format!("{why}; no request was sent"));
    no_new_privs(current_no_new_privs()).map_err(fail)?;
    if let Some(why) = elevate::install_problem(elevator) {
        return Err(fail(format!("the elevator {}: {why}", elevator.display())));
    }
    config_accepted(file).map_err(fail)?;
    if let Some(config) = file.config() {
        requester(config, ask.user).map_err(fail)?;
        run_as(config, ask.user, ask.run_as).map_err(fail)?;
    }
    cwd_enterable(ask.run_as, Path::new(ask.cwd)).map_err(fail)
}

/// Whether this process has *no_new_privs* set; `false` when the kernel cannot say.
pub fn current_no_new_privs() -> bool {
    nix::sys::prctl::get_no_new_privs().unwrap_or(false)
}

/// The route that works from here, for people: the `sudo` entry, or only the MCP server.
pub fn route_here(no_new_privs: bool) -> &'static str {
    if no_new_privs {
        "MCP only: this process runs with no_new_privs (an agent sandbox), where setuid cannot work; the agent uses the `assent mcp` server, started by its harness outside the sandbox"
    } else {
        "the `sudo` entry and `assent run` work from here (setuid is possible: no_new_privs is not set)"
    }
}

/// Setuid cannot work under *no_new_privs*: the elevator would start without root.
pub fn no_new_privs(set: bool) -> std::result::Result<(), String> {
    if set {
        return Err(
            "this process runs with no_new_privs set (agent sandboxes set it), so the setuid elevator cannot gain root here; fix: use the MCP route (`assent mcp`, started by the agent's harness outside the sandbox), or run this command outside the sandbox (for sudo, exclude it from the sandbox)"
                .into(),
        );
    }
    Ok(())
}

/// The elevator accepts its configuration: it exists, is root's alone, and parses.
pub fn config_accepted(file: &ElevatorFile) -> std::result::Result<(), String> {
    match file {
        ElevatorFile::Parsed(_) | ElevatorFile::Unreadable(_) => Ok(()),
        ElevatorFile::Absent => Err(format!(
            "{ELEVATOR_CONFIG} does not exist, so the elevator refuses every request; fix: as root, create it with an [[approver]] and a [[requester]] block"
        )),
        ElevatorFile::Unsafe(why) => Err(why.clone()),
        ElevatorFile::Unparsable(why) => Err(format!(
            "{why}; the elevator refuses every request until it is fixed (as root; `sudo assent-elevate check` confirms)"
        )),
    }
}

/// The caller is a listed `[[requester]]`.
pub fn requester(
    config: &assent_common::elevator_config::Config,
    user: &str,
) -> std::result::Result<(), String> {
    if config.requester(user).is_some() {
        return Ok(());
    }
    Err(format!(
        "user {user} is not a [[requester]] in {ELEVATOR_CONFIG}, so the elevator refuses whatever is approved; fix: as root, add a [[requester]] block with user = {user:?} and run_as = [\"root\"]"
    ))
}

/// The caller may become `run_as`, and that user exists.
pub fn run_as(
    config: &assent_common::elevator_config::Config,
    user: &str,
    run_as: &str,
) -> std::result::Result<(), String> {
    let Some(listed) = config.requester(user) else {
        return Ok(());
    };
    if !listed.run_as.iter().any(|allowed| allowed == run_as) {
        return Err(format!(
            "{user} may not run commands as {run_as:?}: run_as in {ELEVATOR_CONFIG} allows {}; fix: ask to run as one of those (-u USER, --as USER), or have root add {run_as:?} to run_as",
            listed.run_as.join(", ")
        ));
    }
    if target(run_as).is_none() {
        return Err(format!(
            "there is no user {run_as:?} on this host; fix: name an existing user"
        ));
    }
    Ok(())
}

/// `run_as` as permission checks see it: uid, primary group, supplementary groups. `None`
/// when there is no such user (by that exact name).
fn target(run_as: &str) -> Option<(u32, u32, Vec<u32>)> {
    let user = nix::unistd::User::from_name(run_as).ok().flatten()?;
    if user.name != run_as {
        return None;
    }
    let groups = std::ffi::CString::new(user.name.as_str())
        .ok()
        .and_then(|name| nix::unistd::getgrouplist(&name, user.gid).ok())
        .map(|groups| groups.into_iter().map(|g| g.as_raw()).collect())
        .unwrap_or_else(|| vec![user.gid.as_raw()]);
    Some((user.uid.as_raw(), user.gid.as_raw(), groups))
}

/// `run_as` may search every directory from `/` to `cwd`, as `chdir` as that user requires.
/// What this user cannot inspect is left for the elevator to judge.
pub fn cwd_enterable(run_as: &str, cwd: &Path) -> std::result::Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    let Some((uid, gid, groups)) = target(run_as) else {
        return Ok(()); // named by the run_as check when the configuration is readable
    };
    let who = Identity {
        uid,
        gid,
        groups: &groups,
    };
    let mut dirs: Vec<&Path> = cwd.ancestors().collect();
    dirs.reverse();
    for dir in dirs {
        let Ok(meta) = std::fs::metadata(dir) else {
            return Ok(());
        };
        if !who.may_search(meta.uid(), meta.gid(), meta.mode()) {
            return Err(format!(
                "{run_as} cannot enter {} (owner uid {}, group {}, mode {:04o}), where the command would start; fix: cd to a directory {run_as} can enter (e.g. /tmp) and run it from there",
                dir.display(),
                meta.uid(),
                meta.gid(),
                meta.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use assent_common::elevator_config::Config;

    fn config() -> Config {
        let key = assent_protocol::PrivateKey::generate("alice@h")
            .public()
            .to_openssh("alice@h");
        Config::parse(
            &format!(
                "[[approver]]\nname = \"alice\"\nkey = \"{key}\"\n[[requester]]\nuser = \"openclaw\"\nrun_as = [\"root\", \"no-such-user-assent\"]\n"
            ),
            Path::new(ELEVATOR_CONFIG),
        )
        .unwrap()
    }

    #[test]
    fn no_new_privs_names_the_mcp_route_and_never_chmod() {
        no_new_privs(false).unwrap();
        let why = no_new_privs(true).unwrap_err();
        assert!(why.contains("no_new_privs"), "{why}");
        assert!(why.contains("`assent mcp`"), "{why}");
        assert!(why.contains("outside the sandbox"), "{why}");
        assert!(!why.contains("chmod"), "{why}");
        assert!(route_here(true).starts_with("MCP only"));
        assert!(route_here(false).contains("`sudo` entry"));
    }

    #[test]
    fn requester_and_run_as_follow_the_configuration() {
        let config = config();
        requester(&config, "openclaw").unwrap();
        let why = requester(&config, "mallory").unwrap_err();
        assert!(
            why.starts_with("user mallory is not a [[requester]] in "),
            "{why}"
        );
        assert!(
            why.contains("fix: as root, add a [[requester]] block"),
            "{why}"
        );
        run_as(&config, "openclaw", "root").unwrap();
        let why = run_as(&config, "openclaw", "postgres").unwrap_err();
        assert!(
            why.contains("may not run commands as \"postgres\": run_as in ")
                && why.contains("allows root, no-such-user-assent"),
            "{why}"
        );
        let why = run_as(&config, "openclaw", "no-such-user-assent").unwrap_err();
        assert!(why.contains("there is no user"), "{why}");
    }

    #[test]
    fn a_missing_unsafe_or_bad_configuration_is_named() {
        config_accepted(&ElevatorFile::Parsed(config())).unwrap();
        config_accepted(&ElevatorFile::Unreadable("no".into())).expect("the elevator decides");
        assert!(
            config_accepted(&ElevatorFile::Absent)
                .unwrap_err()
                .contains("does not exist")
        );
        assert_eq!(
            config_accepted(&ElevatorFile::Unsafe("x is writable".into())),
            Err("x is writable".into())
        );
        let why = config_accepted(&ElevatorFile::Unparsable("f: unknown field".into()));
        assert!(why.unwrap_err().starts_with("f: unknown field; "));
    }

    #[test]
    fn root_enters_anything_and_an_unknown_user_is_left_to_the_run_as_check() {
        cwd_enterable("root", Path::new("/root")).unwrap();
        cwd_enterable("no-such-user-assent", Path::new("/root")).unwrap();
    }

    #[test]
    fn a_directory_nobody_may_search_is_named() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let closed = dir.path().canonicalize().unwrap().join("closed");
        std::fs::create_dir(&closed).unwrap();
        std::fs::create_dir(closed.join("inner")).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // "nobody" owns nothing here, so the 0700 directory is closed to it.
        let why = cwd_enterable("nobody", &closed.join("inner")).unwrap_err();
        assert!(
            why.starts_with(&format!(
                "nobody cannot enter {} (owner uid",
                closed.display()
            )),
            "{why}"
        );
        assert!(why.contains("mode 0700"), "{why}");
        assert!(
            why.contains("fix: cd to a directory nobody can enter"),
            "{why}"
        );
    }
}
