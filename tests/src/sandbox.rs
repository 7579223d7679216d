//! The setuid harness (SPEC §11): the real `assent-elevate`, installed setuid root into a
//! fresh directory whose `etc/`, `lib/` and `log/` are bind-mounted over `/etc/assent`,
//! `/var/lib/assent` and `/var/log/assent` inside a private mount namespace, and commands run
//! there as a real unprivileged user via `setpriv`.
//!
//! Every run is `unshare --mount --propagation private [--uts] -- /bin/sh -c SCRIPT sh ARGS…`:
//! the script mounts, optionally sets the hostname, opens any extra fds, changes directory and
//! execs `setpriv [--bounding-set …] --reuid --regid --init-groups -- env -i VARS… PROGRAM ARGS…`.
//!
//! PID 1's resource limits, which the elevator gives commands, are the sandbox's own: a file
//! bind-mounted over `/proc/1/limits` (as lxcfs does for containers), holding this test
//! process's limits unless a test sets others. So what the elevator restores is known to the
//! test, and is within reach of a caller started from here, also where root lacks
//! `CAP_SYS_RESOURCE`. Every value
//! travels as a positional argument; none is pasted into the script. The process that runs
//! the program is the one `unshare` started, so killing it on a timeout kills the program.
//!
//! Every sandbox's `etc/` holds a host id ([`DEFAULT_HOST_ID`] unless a test writes another,
//! [`Sandbox::write_host_id`]): two sandboxes with the same hostname and different host ids are
//! two machines cloned from one image.
//!
//! The host's own `/etc/assent` and friends are never written: only empty mount points are
//! created when missing.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use assent_protocol::HostId;

use crate::scratch::ScratchDir;
use crate::users::TestUser;

/// Where the elevator looks, fixed at its build time.
pub const HOST_CONFIG_DIR: &str = "/etc/assent";
pub const HOST_LEDGER_DIR: &str = "/var/lib/assent";
pub const HOST_AUDIT_DIR: &str = "/var/log/assent";
/// The host id every sandbox starts with, and the one test requests name by default.
pub const DEFAULT_HOST_ID: HostId = HostId([0x5e; 16]);
/// The elevator's default `secure_path`.
pub const DEFAULT_SECURE_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How long one run may take before it is killed and the test fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

const ELEVATOR: &str = "assent-elevate";

/// The script run by `/bin/sh` inside the new namespaces. Positional arguments:
/// 1 etc dir, 2 lib dir, 3 log dir, 4 hostname or "", 5 cwd, 6 uid, 7 gid, 8 the file to
/// mount over /proc/1/limits or "", 9 capabilities to drop from the bounding set (setpriv's
/// `-cap,…`) or "", then (added per run) one path per extra fd, then `VAR=VALUE`… for
/// `env -i`, then the program and its args.
const SCRIPT_HEAD: &str = r#"set -eu
mount --bind "$1" /etc/assent
mount --bind "$2" /var/lib/assent
mount --bind "$3" /var/log/assent
if [ -n "$4" ]; then hostname "$4"; fi
if [ -n "$8" ]; then mount --bind "$8" /proc/1/limits; fi
cd "$5"
uid=$6
gid=$7
bset=$9
shift 9
"#;

const SCRIPT_TAIL: &str = r#"set -- env -i -- "$@"
if [ -n "$bset" ]; then set -- setpriv --bounding-set="$bset" -- "$@"; fi
if [ "$uid" = 0 ]; then exec "$@"; fi
exec setpriv --reuid="$uid" --regid="$gid" --init-groups -- "$@"
"#;

/// The elevator's config (SPEC §5), written as TOML.
#[derive(Debug, Clone, Default)]
pub struct ElevatorConfig {
    approvers: Vec<(String, String)>,
    requesters: Vec<(String, Vec<String>)>,
    settings: Vec<(&'static str, String)>,
    limits: Vec<(String, String)>,
}

impl ElevatorConfig {
    pub fn new() -> ElevatorConfig {
        ElevatorConfig::default()
    }

    /// An `[[approver]]` with its `ssh-ed25519 …` line.
    pub fn approver(mut self, name: &str, key_line: &str) -> Self {
        self.approvers.push((name.into(), key_line.into()));
        self
    }

    /// A `[[requester]]` and whom it may become.
    pub fn requester(mut self, user: &str, run_as: &[&str]) -> Self {
        self.requesters.push((
            user.into(),
            run_as.iter().map(|s| (*s).to_owned()).collect(),
        ));
        self
    }

    fn setting(mut self, key: &'static str, value: String) -> Self {
        self.settings.retain(|(k, _)| *k != key);
        self.settings.push((key, value));
        self
    }
    pub fn secure_path(self, path: &str) -> Self {
        self.setting("secure_path", quote(path))
    }
    pub fn once_window_s(self, s: u64) -> Self {
        self.setting("once_window_s", s.to_string())
    }
    pub fn max_ttl_s(self, s: u64) -> Self {
        self.setting("max_ttl_s", s.to_string())
    }
    pub fn status_max_age_s(self, s: u64) -> Self {
        self.setting("status_max_age_s", s.to_string())
    }
    pub fn clock_skew_s(self, s: u64) -> Self {
        self.setting("clock_skew_s", s.to_string())
    }

    /// A `[settings.limits]` entry, `value` written as TOML (e.g. `"1024"`, `"[0, \"unlimited\"]"`).
    pub fn limit(mut self, name: &str, value: &str) -> Self {
        self.limits.retain(|(n, _)| n != name);
        self.limits.push((name.into(), value.into()));
        self
    }

    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        for (name, key) in &self.approvers {
            out += &format!(
                "[[approver]]\nname = {}\nkey = {}\n\n",
                quote(name),
                quote(key)
            );
        }
        for (user, run_as) in &self.requesters {
            let list: Vec<String> = run_as.iter().map(|s| quote(s)).collect();
            out += &format!(
                "[[requester]]\nuser = {}\nrun_as = [{}]\n\n",
                quote(user),
                list.join(", ")
            );
        }
        if !self.settings.is_empty() {
            out += "[settings]\n";
            for (k, v) in &self.settings {
                out += &format!("{k} = {v}\n");
            }
        }
        if !self.limits.is_empty() {
            out += "\n[settings.limits]\n";
            for (k, v) in &self.limits {
                out += &format!("{k} = {v}\n");
            }
        }
        out
    }
}

/// A TOML basic string. JSON's string escapes are a subset of TOML's.
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// One test's private installation of the elevator.
#[derive(Debug)]
pub struct Sandbox {
    dir: ScratchDir,
}

impl Default for Sandbox {
    fn default() -> Sandbox {
        Sandbox::new()
    }
}

impl Sandbox {
    /// A fresh sandbox with the freshly built elevator installed setuid root and no config.
    ///
    /// # Panics
    /// When not root (the message says how to run the tests), or when the elevator has not
    /// been built.
    pub fn new() -> Sandbox {
        crate::require_root();
        ensure_host_mount_points();
        let elevator = crate::built_binary(ELEVATOR);
        let dir = ScratchDir::new("sandbox");
        let sandbox = Sandbox { dir };
        for (sub, mode) in [
            ("etc", 0o755),
            ("lib", 0o700),
            ("log", 0o700),
            ("bin", 0o755),
            ("work", 0o755),
            ("keys", 0o700),
            ("agent", 0o755),
            ("markers", 0o1777),
        ] {
            make_dir(&sandbox.dir.join(sub), mode);
        }
        let agent = TestUser::agent();
        let agent_dir = sandbox.agent_dir();
        std::os::unix::fs::chown(&agent_dir, Some(agent.uid), Some(agent.gid))
            .unwrap_or_else(|e| panic!("cannot chown {}: {e}", agent_dir.display()));
        sandbox.install_bin(ELEVATOR, &elevator, 0o4755);
        let limits = fs::read_to_string("/proc/self/limits")
            .unwrap_or_else(|e| panic!("cannot read /proc/self/limits: {e}"));
        sandbox.write_root_limits(&limits);
        sandbox.write_host_id(DEFAULT_HOST_ID);
        sandbox
    }

    /// A sandbox with `config` already written.
    pub fn with_config(config: &ElevatorConfig) -> Sandbox {
        let sandbox = Sandbox::new();
        sandbox.write_config(config);
        sandbox
    }

    /// The sandbox's root directory (root-owned, 0755).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    /// Mounted over `/etc/assent`.
    pub fn etc_dir(&self) -> PathBuf {
        self.dir.join("etc")
    }
    pub fn config_path(&self) -> PathBuf {
        self.etc_dir().join("elevator.toml")
    }
    /// Mounted as `/etc/assent/host-id`.
    pub fn host_id_path(&self) -> PathBuf {
        self.etc_dir().join("host-id")
    }
    /// The host id this sandbox's elevator and shim read.
    pub fn host_id(&self) -> HostId {
        let path = self.host_id_path();
        let bytes =
            fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        HostId::from_file(&bytes)
            .unwrap_or_else(|| panic!("{} does not hold a host id", path.display()))
    }
    /// Mounted over `/var/lib/assent`.
    pub fn ledger_dir(&self) -> PathBuf {
        self.dir.join("lib")
    }
    /// Mounted over `/var/log/assent`.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }
    pub fn audit_path(&self) -> PathBuf {
        self.log_dir().join("audit.jsonl")
    }
    /// Holds the setuid elevator and anything else installed; first on the test user's PATH.
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.join("bin")
    }
    pub fn elevator_path(&self) -> PathBuf {
        self.bin_dir().join(ELEVATOR)
    }
    /// A root-owned 0755 directory: the default cwd of runs.
    pub fn work_dir(&self) -> PathBuf {
        self.dir.join("work")
    }
    /// Owned by the agent test user: for files the requester can write.
    pub fn agent_dir(&self) -> PathBuf {
        self.dir.join("agent")
    }
    /// root-only 0700: for key files.
    pub fn keys_dir(&self) -> PathBuf {
        self.dir.join("keys")
    }

    /// The file mounted over `/proc/1/limits` in every run: "PID 1's limits" for the elevator.
    pub fn root_limits_path(&self) -> PathBuf {
        self.dir.join("root-limits")
    }

    /// Replace the sandbox's PID 1 limits with `text` (the format of `/proc/PID/limits`),
    /// root-owned 0444 like the kernel's.
    pub fn write_root_limits(&self, text: &str) {
        let path = self.root_limits_path();
        let _ = fs::remove_file(&path);
        fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
    }

    /// Set one limit of the sandbox's PID 1, by its label in `/proc/PID/limits` (e.g.
    /// `"Max open files"`); values are numbers or `unlimited`.
    pub fn set_root_limit(&self, label: &str, soft: &str, hard: &str) {
        let text = fs::read_to_string(self.root_limits_path()).expect("the root limits file");
        let mut found = false;
        let edited: String = text
            .lines()
            .map(|line| match line.strip_prefix(label) {
                Some(rest) if rest.starts_with(' ') => {
                    found = true;
                    let unit = rest.split_whitespace().nth(2).unwrap_or("");
                    format!("{label:<26}{soft:<21}{hard:<21}{unit:<10}\n")
                }
                _ => format!("{line}\n"),
            })
            .collect();
        assert!(found, "no {label:?} line in the root limits");
        self.write_root_limits(&edited);
    }

    /// One limit of the sandbox's PID 1 as (soft, hard) text.
    pub fn root_limit(&self, label: &str) -> (String, String) {
        let text = fs::read_to_string(self.root_limits_path()).expect("the root limits file");
        text.lines()
            .find_map(|line| {
                let rest = line.strip_prefix(label).filter(|r| r.starts_with(' '))?;
                let mut words = rest.split_whitespace();
                Some((words.next()?.to_owned(), words.next()?.to_owned()))
            })
            .unwrap_or_else(|| panic!("no {label:?} line in the root limits"))
    }

    /// Write the elevator config: root-owned, 0644.
    pub fn write_config(&self, config: &ElevatorConfig) {
        self.write_config_text(&config.to_toml());
    }

    /// Write the config file verbatim (for malformed configs), root-owned, 0644.
    pub fn write_config_text(&self, text: &str) {
        write_root_file(&self.config_path(), text);
    }

    /// Make this sandbox another install: write `id` as its host id, root-owned, 0644.
    pub fn write_host_id(&self, id: HostId) {
        self.write_host_id_text(&id.to_file());
    }

    /// Write the host id file verbatim (for malformed ones), root-owned, 0644.
    pub fn write_host_id_text(&self, text: &str) {
        write_root_file(&self.host_id_path(), text);
    }

    /// Copy `src` into the bin dir as `name`, root:root with `mode` (e.g. 0o4755 for setuid).
    pub fn install_bin(&self, name: &str, src: &Path, mode: u32) -> PathBuf {
        let dest = self.bin_dir().join(name);
        let _ = fs::remove_file(&dest);
        // Copy in a child process, never here: a file this process held open for writing would
        // be inherited by any child another test thread forks meanwhile, and exec'ing the copy
        // would then fail with "Text file busy" until that child execs.
        let copied = Command::new("cp")
            .arg("--")
            .arg(src)
            .arg(&dest)
            .status()
            .unwrap_or_else(|e| panic!("cannot run cp: {e}"));
        assert!(
            copied.success(),
            "cannot copy {} to {}: cp {copied}",
            src.display(),
            dest.display()
        );
        std::os::unix::fs::chown(&dest, Some(0), Some(0))
            .unwrap_or_else(|e| panic!("cannot chown {}: {e}", dest.display()));
        // chmod after chown: chown clears the setuid bit.
        fs::set_permissions(&dest, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", dest.display()));
        dest
    }

    /// Run `program` as the agent test user inside the sandbox's namespace, with the
    /// sandbox's bin dir first on PATH and the work dir as cwd.
    pub fn run_as_agent(&self, program: impl AsRef<OsStr>) -> Run<'_> {
        self.run_as(&TestUser::agent(), program)
    }

    /// Run `program` as any user inside the sandbox's namespace.
    pub fn run_as(&self, user: &TestUser, program: impl AsRef<OsStr>) -> Run<'_> {
        Run::new(self, user.clone(), program.as_ref().to_owned())
    }

    /// Run `program` as root inside the sandbox's namespace.
    pub fn run_as_root(&self, program: impl AsRef<OsStr>) -> Run<'_> {
        self.run_as(&TestUser::root(), program)
    }

    /// `assent-elevate --grant TOKEN -- PROGRAM ARGS…` as the agent test user.
    pub fn elevate<I, S>(&self, token: &str, program: impl AsRef<OsStr>, args: I) -> Run<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_as_agent(self.elevator_path())
            .args(["--grant", token, "--"])
            .arg(program)
            .args(args)
    }

    /// `assent-elevate audit verify`, as root in the namespace.
    pub fn audit_verify(&self) -> Outcome {
        self.run_as_root(self.elevator_path())
            .args(["audit", "verify"])
            .run()
    }

    /// `assent-elevate check`, as root in the namespace.
    pub fn check(&self) -> Outcome {
        self.run_as_root(self.elevator_path()).arg("check").run()
    }

    /// The audit log as it is on disk ("" when the elevator has not written one).
    pub fn audit_text(&self) -> String {
        match fs::read_to_string(self.audit_path()) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => panic!("cannot read {}: {e}", self.audit_path().display()),
        }
    }

    /// The audit log, one parsed JSON value per line.
    pub fn audit_lines(&self) -> Vec<AuditLine> {
        self.audit_text()
            .lines()
            .enumerate()
            .map(|(i, line)| AuditLine::parse(line, i + 1))
            .collect()
    }

    /// The lines of attempts (`exec` and `refused`), without the `exit` receipts that follow
    /// each `exec` once its command has ended.
    pub fn audit_attempts(&self) -> Vec<AuditLine> {
        self.audit_lines()
            .into_iter()
            .filter(|line| line.event() != "exit")
            .collect()
    }

    /// A path for a marker file a command may create, in a directory anyone can write (mode
    /// 1777), so a command that runs at all — as root or, wrongly, as anyone else — leaves it.
    pub fn marker(&self, name: &str) -> PathBuf {
        self.dir.join("markers").join(format!("marker-{name}"))
    }
}

/// One line of the audit log.
#[derive(Debug, Clone)]
pub struct AuditLine {
    pub raw: String,
    pub json: serde_json::Value,
}

impl AuditLine {
    fn parse(raw: &str, number: usize) -> AuditLine {
        let json = serde_json::from_str(raw)
            .unwrap_or_else(|e| panic!("audit line {number} is not JSON ({e}): {raw}"));
        AuditLine {
            raw: raw.to_owned(),
            json,
        }
    }

    /// `exec`, `refused` or `exit`.
    pub fn event(&self) -> &str {
        self.json["event"]
            .as_str()
            .unwrap_or_else(|| panic!("audit line has no string `event`: {}", self.raw))
    }

    /// The failed check, `None` for `exec`.
    pub fn check(&self) -> Option<&str> {
        self.json["check"].as_str()
    }

    /// Whether `text` appears anywhere in the raw line (ids, digests, names).
    pub fn mentions(&self, text: &str) -> bool {
        self.raw.contains(text)
    }
}

/// Write `text` to `path`, root:root, 0644.
fn write_root_file(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    std::os::unix::fs::chown(path, Some(0), Some(0))
        .unwrap_or_else(|e| panic!("cannot chown {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}

fn make_dir(path: &Path, mode: u32) {
    fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
}

/// The fixed paths must exist on the host to be mount points. Created empty if missing;
/// existing ones are left exactly as they are.
fn ensure_host_mount_points() {
    for (dir, mode) in [
        (HOST_CONFIG_DIR, 0o755),
        (HOST_LEDGER_DIR, 0o700),
        (HOST_AUDIT_DIR, 0o700),
    ] {
        match fs::DirBuilder::new().recursive(true).mode(mode).create(dir) {
            Ok(()) => {}
            Err(e) => panic!("cannot create mount point {dir}: {e}"),
        }
    }
}

/// A command about to run in a sandbox (builder).
#[derive(Debug)]
pub struct Run<'a> {
    sandbox: &'a Sandbox,
    user: TestUser,
    program: OsString,
    args: Vec<OsString>,
    cwd: PathBuf,
    env: Vec<(String, OsString)>,
    fds: Vec<(u32, PathBuf)>,
    stdin: Option<Vec<u8>>,
    hostname: Option<String>,
    root_limits: bool,
    bounding_set: Option<String>,
    timeout: Duration,
}

impl<'a> Run<'a> {
    fn new(sandbox: &'a Sandbox, user: TestUser, program: OsString) -> Run<'a> {
        let path = format!(
            "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            sandbox.bin_dir().display()
        );
        let env = vec![
            ("PATH".to_owned(), path.into()),
            ("HOME".to_owned(), user.home.clone().into()),
            ("USER".to_owned(), user.name.clone().into()),
            ("LOGNAME".to_owned(), user.name.clone().into()),
            ("SHELL".to_owned(), user.shell.clone().into()),
        ];
        Run {
            cwd: sandbox.work_dir(),
            sandbox,
            user,
            program,
            args: Vec::new(),
            env,
            fds: Vec::new(),
            stdin: None,
            hostname: None,
            root_limits: true,
            bounding_set: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// The directory the command starts in (default: the sandbox's work dir).
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = dir.as_ref().to_owned();
        self
    }

    /// Set one variable in the command's environment (replacing a default like PATH).
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        assert!(
            !key.is_empty() && !key.contains('='),
            "bad environment variable name {key:?}"
        );
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Remove a default variable from the command's environment.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// Open `path` read-only as descriptor `fd` (> 2) in the command, as a caller could.
    pub fn fd(mut self, fd: u32, path: impl AsRef<Path>) -> Self {
        assert!((3..=99).contains(&fd), "extra fds must be 3..=99, not {fd}");
        self.fds.push((fd, path.as_ref().to_owned()));
        self
    }

    /// Bytes for the command's stdin (default: /dev/null).
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    /// Run in a new UTS namespace with this hostname.
    pub fn hostname(mut self, name: &str) -> Self {
        assert!(
            !name.is_empty() && !name.starts_with('-'),
            "bad hostname {name:?}"
        );
        self.hostname = Some(name.to_owned());
        self
    }

    /// Let the elevator see this host's real `/proc/1/limits`, not the sandbox's.
    pub fn host_root_limits(mut self) -> Self {
        self.root_limits = false;
        self
    }

    /// Drop `CAP_SYS_RESOURCE` from the bounding set before becoming the user, as container
    /// runtimes do: the setuid elevator then cannot raise a hard resource limit.
    pub fn without_cap_sys_resource(mut self) -> Self {
        self.bounding_set = Some("-sys_resource".into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn command(&self) -> Command {
        let mut script = String::from(SCRIPT_HEAD);
        for (fd, _) in &self.fds {
            // Only the fd number (an integer we checked) is written into the script.
            script += &format!("exec {fd}<\"$1\"\nshift\n");
        }
        script += SCRIPT_TAIL;

        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private"]);
        if self.hostname.is_some() {
            cmd.arg("--uts");
        }
        cmd.args(["--", "/bin/sh", "-c", &script, "sh"]);
        cmd.arg(self.sandbox.etc_dir())
            .arg(self.sandbox.ledger_dir())
            .arg(self.sandbox.log_dir())
            .arg(self.hostname.as_deref().unwrap_or(""))
            .arg(&self.cwd)
            .arg(self.user.uid.to_string())
            .arg(self.user.gid.to_string())
            .arg(if self.root_limits {
                self.sandbox.root_limits_path().into_os_string()
            } else {
                OsString::new()
            })
            .arg(self.bounding_set.as_deref().unwrap_or(""));
        for (_, path) in &self.fds {
            cmd.arg(path);
        }
        for (key, value) in &self.env {
            let mut assignment = OsString::from(format!("{key}="));
            assignment.push(value);
            cmd.arg(assignment);
        }
        assert!(
            !self.program.as_encoded_bytes().contains(&b'='),
            "program paths with '=' cannot pass through env(1): {:?}",
            self.program
        );
        cmd.arg(&self.program).args(&self.args);
        // The root half (unshare, sh, mount, setpriv) gets a minimal environment of its own;
        // the command's environment is exactly what `env -i` is given.
        cmd.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LC_ALL", "C");
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd
    }

    /// Start the command; collect it with [`Running::wait`].
    pub fn spawn(self) -> Running {
        let mut child = self
            .command()
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run unshare (install util-linux): {e}"));
        let stdin = child.stdin.take().map(|mut pipe| {
            let data = self.stdin.clone().unwrap_or_default();
            std::thread::spawn(move || {
                // The command may exit without reading: a broken pipe is its business.
                let _ = pipe.write_all(&data);
            })
        });
        let stdout = reader(child.stdout.take().expect("stdout is piped"));
        let stderr = reader(child.stderr.take().expect("stderr is piped"));
        Running {
            child,
            stdin,
            stdout,
            stderr,
            deadline: Instant::now() + self.timeout,
            description: format!("{:?} {:?} as {}", self.program, self.args, self.user.name),
        }
    }

    /// Run to completion.
    pub fn run(self) -> Outcome {
        self.spawn().wait()
    }
}

fn reader(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// A command started by [`Run::spawn`].
#[derive(Debug)]
pub struct Running {
    child: Child,
    stdin: Option<JoinHandle<()>>,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
    deadline: Instant,
    description: String,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited (without collecting it).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Kill it (SIGKILL) and collect what it printed.
    pub fn kill(mut self) -> Outcome {
        let _ = self.child.kill();
        self.collect()
    }

    /// Wait for it to exit; kill it and panic if it outlives its timeout.
    pub fn wait(mut self) -> Outcome {
        let mut pause = Duration::from_millis(1);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return self.collect(),
                Ok(None) if Instant::now() >= self.deadline => {
                    let description = self.description.clone();
                    let outcome = self.kill();
                    panic!("timed out running {description}; killed it. {outcome}");
                }
                Ok(None) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot wait for {}: {e}", self.description),
            }
        }
    }

    fn collect(mut self) -> Outcome {
        let status = self.child.wait().expect("cannot collect the child");
        if let Some(handle) = self.stdin.take() {
            let _ = handle.join();
        }
        let stdout = self.stdout.join().expect("stdout reader panicked");
        let stderr = self.stderr.join().expect("stderr reader panicked");
        Outcome {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

/// How a run ended and what it printed.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}--- stderr ---\n{}--------------",
            self.status, self.stdout, self.stderr
        )
    }
}

impl Outcome {
    /// The exit code, `None` when killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Exit 0, or panic showing everything.
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "expected success, got {self}");
        self
    }

    /// Exit `code`, or panic showing everything.
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), Some(code), "expected exit {code}, got {self}");
        self
    }

    /// The stderr lines that are not empty.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    /// Exit 77 and exactly one stderr line `assent-elevate: refused (CHECK): DETAIL`; returns
    /// DETAIL.
    pub fn assert_refused(&self, check: &str) -> &str {
        self.assert_code(77);
        let lines = self.stderr_lines();
        assert_eq!(
            lines.len(),
            1,
            "a refusal is exactly one stderr line, got {self}"
        );
        let prefix = format!("assent-elevate: refused ({check}): ");
        let detail = lines[0]
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("expected a line starting {prefix:?}, got {self}"));
        assert!(
            !detail.trim().is_empty(),
            "the refusal names no detail: {self}"
        );
        detail
    }

    /// Exit 78 and exactly one stderr line `assent-elevate: config: DETAIL`; returns DETAIL.
    pub fn assert_config_error(&self) -> &str {
        self.assert_code(78);
        let lines = self.stderr_lines();
        assert_eq!(
            lines.len(),
            1,
            "a config error is exactly one stderr line, got {self}"
        );
        lines[0]
            .strip_prefix("assent-elevate: config: ")
            .unwrap_or_else(|| {
                panic!("expected a line starting \"assent-elevate: config: \", got {self}")
            })
    }
}
