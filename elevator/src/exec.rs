//! After every check passed and the audit line is durable: set the command's resource limits
//! (PID 1's, see [`crate::limits`]) while still root, become the target user completely, enter
//! the approved directory (the one check `cwd` opened) as that user, build a fresh environment
//! from an allow-list, drop every other descriptor, reset signals, timers, scheduling and
//! umask, and exec the verified program through its open descriptor. This runs in the child
//! of [`crate::monitor`]; the command dies with the monitor.

use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt as _;

use assent_protocol::OpenedGrant;
use nix::sys::signal::Signal;
use nix::unistd::{
    Gid, Pid, Uid, execve, fchdir, fexecve, getppid, getresgid, getresuid, setgid, setgroups,
    setresgid, setresuid, setuid,
};

use crate::identity::{Caller, Target};
use crate::limits::LimitPlan;
use crate::process::reset_process_state;
use crate::program::ProgramFile;
use crate::trusted::WalkedDir;

/// Locale variables passed through when their values are safe.
pub const LOCALE_VARS: [&str; 14] = [
    "LANG",
    "LC_ALL",
    "LC_ADDRESS",
    "LC_COLLATE",
    "LC_CTYPE",
    "LC_IDENTIFICATION",
    "LC_MEASUREMENT",
    "LC_MESSAGES",
    "LC_MONETARY",
    "LC_NAME",
    "LC_NUMERIC",
    "LC_PAPER",
    "LC_TELEPHONE",
    "LC_TIME",
];

const MAX_PASSTHROUGH_LEN: usize = 64;

/// A `TERM` value names a terminfo entry: letters, digits and `.+-_` only, so it can never be
/// a path.
fn safe_term(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= MAX_PASSTHROUGH_LEN
        && value
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

/// A locale name like `en_US.UTF-8`, `de_DE@euro` or `C`: never a path (glibc loads a locale
/// from a file when the name holds a `/`), no `..`, printable, short.
fn safe_locale(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= MAX_PASSTHROUGH_LEN
        && !value.windows(2).any(|w| w == b"..")
        && value
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
}

/// The only variables read from the caller's environment, each by name: `TERM`, `LANG` and
/// `LC_*`, and only when their values are safe. `lookup` is `std::env::var_os` in production.
pub fn passthrough_vars(lookup: impl Fn(&str) -> Option<OsString>) -> Vec<(String, OsString)> {
    let mut out = Vec::new();
    if let Some(term) = lookup("TERM").filter(|v| safe_term(v.as_bytes())) {
        out.push(("TERM".to_owned(), term));
    }
    for name in LOCALE_VARS {
        if let Some(value) = lookup(name).filter(|v| safe_locale(v.as_bytes())) {
            out.push((name.to_owned(), value));
        }
    }
    out
}

/// The longest `SUDO_COMMAND`, as sudo truncates it.
const MAX_SUDO_COMMAND: usize = 4096;

/// The program's whole environment, built from nothing: `PATH` = secure_path, the target's
/// `HOME`, `USER`, `LOGNAME`, `SHELL`, the safe pass-through variables, the approved `env`
/// entries, and last the facts that the approved entries cannot override: `ASSENT_*`, and
/// `SUDO_USER`, `SUDO_UID`, `SUDO_GID` and `SUDO_COMMAND` as sudo sets them (installers read
/// them to find the invoking user).
pub fn environment(
    target: &Target,
    secure_path: &str,
    grant: &OpenedGrant,
    caller: &Caller,
    passthrough: Vec<(String, OsString)>,
) -> Vec<CString> {
    let request = &grant.request.payload;
    let mut env: BTreeMap<String, OsString> = BTreeMap::new();
    env.insert("PATH".into(), secure_path.into());
    env.insert("HOME".into(), target.home.clone());
    env.insert("USER".into(), target.name.clone().into());
    env.insert("LOGNAME".into(), target.name.clone().into());
    env.insert("SHELL".into(), target.shell.clone());
    env.extend(passthrough);
    for (key, value) in request.env.iter() {
        env.insert(key.to_owned(), value.into());
    }
    env.insert("ASSENT_REQUEST_ID".into(), request.id.to_hex().into());
    env.insert(
        "ASSENT_APPROVER".into(),
        grant.decision.payload.approver.clone().into(),
    );
    env.insert("ASSENT_AGENT".into(), request.agent.clone().into());
    env.insert(
        "ASSENT_USER".into(),
        caller.name.clone().unwrap_or_default().into(),
    );
    env.insert("ASSENT_UID".into(), caller.uid.to_string().into());
    match &caller.name {
        Some(name) => env.insert("SUDO_USER".into(), name.into()),
        // A caller without a name cannot pass check 2; an approved entry must not stand in.
        None => env.remove("SUDO_USER"),
    };
    env.insert("SUDO_UID".into(), caller.uid.to_string().into());
    env.insert("SUDO_GID".into(), caller.gid.to_string().into());
    env.insert("SUDO_COMMAND".into(), sudo_command(request).into());
    env.into_iter()
        .filter_map(|(key, value)| {
            let mut entry = key.into_bytes();
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            // Values with NUL cannot be passed; the protocol refuses them, passwd has none.
            CString::new(entry).ok()
        })
        .collect()
}

/// The approved program and its arguments joined by spaces, at most [`MAX_SUDO_COMMAND`]
/// bytes (cut at a character boundary), as sudo's `SUDO_COMMAND`.
fn sudo_command(request: &assent_protocol::Request) -> String {
    let mut command = request.program.clone();
    for arg in request.argv.iter().skip(1) {
        command.push(' ');
        command.push_str(arg);
    }
    if command.len() > MAX_SUDO_COMMAND {
        let mut end = MAX_SUDO_COMMAND;
        while !command.is_char_boundary(end) {
            end -= 1;
        }
        command.truncate(end);
    }
    command
}

/// Everything exec needs, prepared while still root.
#[derive(Debug)]
pub struct Launch {
    pub program: ProgramFile,
    /// The approved path, for messages only: exec goes through the descriptor.
    pub path: String,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    /// The approved directory, opened by check `cwd`.
    pub cwd: WalkedDir,
    pub target: Target,
    /// The command's resource limits, checked by check `limits`.
    pub limits: LimitPlan,
}

impl Launch {
    /// `argv` is the approved one (argv[0] included).
    pub fn new(
        program: ProgramFile,
        grant: &OpenedGrant,
        env: Vec<CString>,
        target: Target,
        cwd: WalkedDir,
        limits: LimitPlan,
    ) -> Launch {
        let request = &grant.request.payload;
        let c = |s: &str| CString::new(s).expect("the protocol refuses NUL bytes in argv and cwd");
        Launch {
            program,
            path: request.program.clone(),
            argv: request.argv.iter().map(|a| c(a)).collect(),
            env,
            cwd,
            target,
            limits,
        }
    }

    /// In the child of `monitor`: switch identity, tie this process's life to the monitor's,
    /// reset the process and exec. Returns only on failure, with one line.
    pub fn exec(self, monitor: Pid) -> String {
        let Err(why) = self.exec_inner(monitor);
        why
    }

    fn exec_inner(self, monitor: Pid) -> Result<std::convert::Infallible, String> {
        let t = &self.target;
        // While still root: raising a hard limit needs CAP_SYS_RESOURCE, which the switch to
        // another user drops. Nothing after this writes anything.
        self.limits.apply()?;
        become_user(t)?;
        // After the switch: a change of identity clears the parent-death signal. Then make
        // sure the monitor did not end before it was set (this process would have been
        // reparented, and no signal would ever come).
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
            .map_err(|e| format!("cannot tie the command to its monitor: {}", e.desc()))?;
        if getppid() != monitor {
            return Err("the elevator's monitor ended before the command started".into());
        }
        // The directory check `cwd` opened, entered as the target: the kernel checks that
        // this user may search it, and no name is looked up again.
        fchdir(&self.cwd).map_err(|e| {
            format!(
                "cannot enter the approved directory {} as {}: {}",
                self.cwd.path().display(),
                t.name,
                e.desc()
            )
        })?;
        self.program
            .prepare_for_exec()
            .map_err(|e| format!("cannot prepare the program descriptor: {}", e.desc()))?;
        crate::sys::close_descriptors_on_exec(self.program.raw_fd())
            .map_err(|e| format!("cannot close inherited descriptors: {e}"))?;
        reset_process_state().map_err(|e| format!("cannot reset the process state: {e}"))?;
        let program = self.program;
        // A script only root can change runs by its path, so its `$0` is that path; anything
        // else runs through the descriptor that was hashed.
        let Err(err) = match &program.by_path {
            Some(path) => execve(path, &self.argv, &self.env),
            None => fexecve(&program, &self.argv, &self.env),
        };
        Err(format!("cannot execute {}: {}", self.path, err.desc()))
    }
}

/// The supplementary groups looked up with the user (the ones check 12 judged the program
/// by), then gid, then uid — real, effective and saved — and prove it stuck.
fn become_user(t: &Target) -> Result<(), String> {
    let fail = |what: &str, e: nix::errno::Errno| {
        format!("cannot become {}: {what}: {}", t.name, e.desc())
    };
    let (uid, gid) = (Uid::from_raw(t.uid), Gid::from_raw(t.gid));
    let groups: Vec<Gid> = t.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&groups).map_err(|e| fail("setgroups", e))?;
    setresgid(gid, gid, gid).map_err(|e| fail("setresgid", e))?;
    setresuid(uid, uid, uid).map_err(|e| fail("setresuid", e))?;
    let ids = getresuid().map_err(|e| fail("getresuid", e))?;
    let gids = getresgid().map_err(|e| fail("getresgid", e))?;
    if (ids.real, ids.effective, ids.saved) != (uid, uid, uid)
        || (gids.real, gids.effective, gids.saved) != (gid, gid, gid)
    {
        return Err(format!(
            "cannot become {}: the identity did not change completely",
            t.name
        ));
    }
    if !uid.is_root()
        && (setuid(Uid::from_raw(0)).is_ok()
            || (gid.as_raw() != 0 && setgid(Gid::from_raw(0)).is_ok()))
    {
        // Regaining root must be impossible once it is dropped. Exit without running anything.
        return Err(format!(
            "cannot become {}: root could be regained after dropping it",
            t.name
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;
    use crate::testutil::{caller, fixture};

    fn root() -> Target {
        Target {
            name: "root".into(),
            uid: 0,
            gid: 0,
            home: "/root".into(),
            shell: "/bin/bash".into(),
            groups: vec![0],
        }
    }

    fn as_map(env: &[CString]) -> HashMap<String, String> {
        env.iter()
            .map(|e| {
                let (k, v) = e.to_str().unwrap().split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    /// A hostile caller environment: every variable set, most of them to something nasty.
    fn hostile(name: &str) -> Option<OsString> {
        Some(OsString::from(match name {
            "TERM" => "xterm-256color",
            "LANG" => "en_US.UTF-8",
            "LC_ALL" => "../../../tmp/evil",
            "LC_CTYPE" => "/tmp/evil",
            "LC_TIME" => "C.UTF-8\n",
            "LC_NUMERIC" => "de_DE@euro",
            "LC_PAPER" => "x".repeat(65).leak(),
            _ => "/tmp/evil.so",
        }))
    }

    #[test]
    fn only_allow_listed_names_are_ever_read() {
        let asked = RefCell::new(Vec::new());
        let _ = passthrough_vars(|name| {
            asked.borrow_mut().push(name.to_owned());
            hostile(name)
        });
        let asked = asked.into_inner();
        assert!(
            asked
                .iter()
                .all(|n| n == "TERM" || n == "LANG" || n.starts_with("LC_")),
            "{asked:?}"
        );
        for name in [
            "PATH",
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "BASH_ENV",
            "ENV",
            "IFS",
            "HOME",
            "PYTHONPATH",
        ] {
            assert!(!asked.iter().any(|n| n == name), "{name} must not be read");
        }
    }

    #[test]
    fn the_environment_is_built_from_the_allow_list_only() {
        let fx = fixture();
        let grant = fx.opened();
        let env = environment(
            &root(),
            "/usr/sbin:/usr/bin",
            &grant,
            &caller(),
            passthrough_vars(hostile),
        );
        let map = as_map(&env);
        assert_eq!(map["PATH"], "/usr/sbin:/usr/bin", "the caller's PATH never");
        assert_eq!(map["HOME"], "/root");
        assert_eq!(map["USER"], "root");
        assert_eq!(map["LOGNAME"], "root");
        assert_eq!(map["SHELL"], "/bin/bash");
        assert_eq!(map["TERM"], "xterm-256color");
        assert_eq!(map["LANG"], "en_US.UTF-8");
        assert_eq!(map["LC_NUMERIC"], "de_DE@euro");
        for unsafe_locale in ["LC_ALL", "LC_CTYPE", "LC_TIME", "LC_PAPER"] {
            assert!(
                !map.contains_key(unsafe_locale),
                "{unsafe_locale} is unsafe and dropped"
            );
        }
        for never in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "BASH_ENV",
            "ENV",
            "IFS",
            "PYTHONPATH",
        ] {
            assert!(!map.contains_key(never), "{never}");
        }
        assert_eq!(
            map["DEBIAN_FRONTEND"], "noninteractive",
            "approved env entries are set"
        );
        assert_eq!(map["ASSENT_REQUEST_ID"], fx.request.id.to_hex());
        assert_eq!(map["ASSENT_APPROVER"], "alice");
        assert_eq!(map["ASSENT_AGENT"], "openclaw");
        assert_eq!(map["ASSENT_USER"], "openclaw");
        assert_eq!(map["ASSENT_UID"], "1001");
        assert_eq!(map["SUDO_USER"], "openclaw");
        assert_eq!(map["SUDO_UID"], "1001");
        assert_eq!(map["SUDO_GID"], "1001");
        let request = &fx.request;
        assert_eq!(
            map["SUDO_COMMAND"],
            format!("{} {}", request.program, request.argv[1..].join(" "))
        );
        assert_eq!(map.len(), 18, "{map:?}");
    }

    #[test]
    fn approved_entries_cannot_forge_the_assent_facts() {
        let mut fx = fixture();
        fx.request
            .env
            .0
            .insert("ASSENT_APPROVER".into(), "bob".into());
        fx.request
            .env
            .0
            .insert("PATH".into(), "/opt/tool/bin".into());
        for forged in ["SUDO_USER", "SUDO_UID", "SUDO_GID", "SUDO_COMMAND"] {
            fx.request.env.0.insert(forged.into(), "root".into());
        }
        fx.bind();
        let map = as_map(&environment(
            &root(),
            "/usr/bin",
            &fx.opened(),
            &caller(),
            vec![],
        ));
        assert_eq!(map["ASSENT_APPROVER"], "alice");
        assert_eq!(map["SUDO_USER"], "openclaw");
        assert_eq!(map["SUDO_UID"], "1001");
        assert_eq!(map["SUDO_GID"], "1001");
        assert_ne!(map["SUDO_COMMAND"], "root");
        let nameless = Caller {
            name: None,
            ..caller()
        };
        let map = as_map(&environment(
            &root(),
            "/usr/bin",
            &fx.opened(),
            &nameless,
            vec![],
        ));
        assert!(!map.contains_key("SUDO_USER"), "{map:?}");
        let map = as_map(&environment(
            &root(),
            "/usr/bin",
            &fx.opened(),
            &caller(),
            vec![],
        ));
        assert_eq!(
            map["PATH"], "/opt/tool/bin",
            "an approved PATH is what the approver saw"
        );
    }

    #[test]
    fn terminal_and_locale_values_are_validated() {
        assert!(safe_term(b"screen.xterm-256color"));
        assert!(!safe_term(b"../../tmp/x"));
        assert!(!safe_term(b""));
        assert!(safe_locale(b"C"));
        assert!(safe_locale(b"en_US.utf8"));
        assert!(!safe_locale(b"en_US..utf8"));
        assert!(!safe_locale(b"en US"));
        assert!(!safe_locale(b"%s%s%s"));
    }
}
