//! `install.sh` and `demo.sh`, run for real as root inside the setuid harness's private mount
//! namespace: `/etc/assent`, `/var/lib/assent` and `/var/log/assent` are the sandbox's own, and
//! the installation prefix is a scratch directory, so the host's tree is never touched.
//!
//! The demo's console runs in a tmux server of the test's own (`tmux -L NAME`), on a free port,
//! with an agent user of the test's own; every wait polls against a deadline.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use assent_protocol::HostId;
use assent_tests::relay_process::RelayProcess;
use assent_tests::sandbox::{Outcome, Run, Sandbox};
use assent_tests::scratch::ScratchDir;
use assent_tests::users::TestUser;
use nix::fcntl::{Flock, FlockArg};

const TOOLS: [&str; 3] = ["assent", "assent-relay", "assent-console"];
const INSTALL_TIMEOUT: Duration = Duration::from_secs(180);
const WAIT: Duration = Duration::from_secs(30);
/// The lock file `assent_tests::users` holds while it runs `useradd`.
const USERADD_LOCK: &str = "/var/tmp/assent-tests-useradd.lock";

/// The workspace root, where install.sh, demo.sh and packaging/ live.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `install.sh ARGS…` as root inside the sandbox's namespace.
fn install<'a>(sb: &'a Sandbox, args: &[&str]) -> Run<'a> {
    sb.run_as_root("/bin/bash")
        .arg(repo().join("install.sh"))
        .args(args)
        .timeout(INSTALL_TIMEOUT)
}

/// `install.sh --from target/<profile> --prefix PREFIX`, which must succeed.
fn install_from_build(sb: &Sandbox, prefix: &Path) -> Outcome {
    let from = assent_tests::profile_dir();
    let out = install(
        sb,
        &["--from", path_str(&from), "--prefix", path_str(prefix)],
    )
    .run();
    out.assert_success();
    out
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

/// Owner, group and permission bits (with setuid/setgid/sticky), not following a symlink.
fn owner_mode(path: &Path) -> (u32, u32, u32) {
    let meta =
        fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{} is missing: {e}", path.display()));
    (meta.uid(), meta.gid(), meta.mode() & 0o7777)
}

fn assert_root_owned(path: &Path, mode: u32, kind: &str) {
    let meta =
        fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{} is missing: {e}", path.display()));
    match kind {
        "file" => assert!(meta.is_file(), "{} is not a file", path.display()),
        "dir" => assert!(meta.is_dir(), "{} is not a directory", path.display()),
        _ => unreachable!(),
    }
    assert_eq!(
        owner_mode(path),
        (0, 0, mode),
        "{} must be root:root {mode:o} (uid, gid, mode)",
        path.display()
    );
}

/// The lines install.sh prints about each path: `  WORD  PATH…`.
fn actions(out: &Outcome) -> Vec<(String, String)> {
    out.stdout
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("  ")?;
            let (word, path) = rest.split_once(' ')?;
            let word = word.trim();
            let known = [
                "installed",
                "unchanged",
                "linked",
                "ready",
                "skipped",
                "kept",
                "removed",
                "created",
                "replaced",
            ];
            known
                .contains(&word)
                .then(|| (word.to_owned(), path.trim().to_owned()))
        })
        .collect()
}

/// Whether install.sh said `word` about a path starting with `path`.
fn says(out: &Outcome, word: &str, path: &str) -> bool {
    actions(out)
        .iter()
        .any(|(w, p)| w == word && p.starts_with(path))
}

fn inode(path: &Path) -> u64 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{} is missing: {e}", path.display()))
        .ino()
}

/// What a tool generates (`--generate KIND`), or None when it cannot.
fn generates(bin: &Path, kind: &str) -> Option<Vec<u8>> {
    let out = Command::new(bin)
        .args(["--generate", kind])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    (out.status.success() && !out.stdout.is_empty()).then_some(out.stdout)
}

/// Where a tool's man page and completions go under `prefix`.
fn generated_paths(prefix: &Path, tool: &str) -> [(&'static str, PathBuf); 4] {
    let share = prefix.join("share");
    [
        ("man", share.join(format!("man/man1/{tool}.1"))),
        (
            "complete-bash",
            share.join(format!("bash-completion/completions/{tool}")),
        ),
        (
            "complete-zsh",
            share.join(format!("zsh/site-functions/_{tool}")),
        ),
        (
            "complete-fish",
            share.join(format!("fish/vendor_completions.d/{tool}.fish")),
        ),
    ]
}

#[test]
fn install_sets_up_the_tree_then_changes_nothing_and_uninstall_keeps_the_config() {
    let sb = Sandbox::new();
    let prefix = sb.root().join("prefix");
    // Wrong modes on the fixed directories: install must put them right.
    fs::set_permissions(sb.etc_dir(), fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(sb.ledger_dir(), fs::Permissions::from_mode(0o755)).unwrap();

    let first = install_from_build(&sb, &prefix);
    let bin = prefix.join("bin");
    for tool in TOOLS {
        let path = bin.join(tool);
        assert_root_owned(&path, 0o755, "file");
        let version = Command::new(&path).arg("--version").output().unwrap();
        assert!(
            version.status.success() && String::from_utf8_lossy(&version.stdout).contains("0."),
            "the installed {tool} does not run: {version:?}"
        );
    }
    let elevator = bin.join("assent-elevate");
    assert_root_owned(&elevator, 0o4755, "file");
    for dir in [
        "bin",
        "lib/assent",
        "lib/assent/agent-bin",
        "share/man/man8",
    ] {
        assert_root_owned(&prefix.join(dir), 0o755, "dir");
    }
    let check = Command::new(&elevator).arg("--version").output().unwrap();
    assert!(check.status.success(), "{check:?}");

    // The agent's sudo entry resolves to the installed shim.
    let sudo = prefix.join("lib/assent/agent-bin/sudo");
    assert!(
        fs::symlink_metadata(&sudo)
            .unwrap()
            .file_type()
            .is_symlink(),
        "{} is not a symlink",
        sudo.display()
    );
    assert_eq!(
        fs::canonicalize(&sudo).unwrap(),
        fs::canonicalize(bin.join("assent")).unwrap()
    );

    // Man pages and completions: present exactly for the tools that can generate them.
    let mut generating = Vec::new();
    for tool in TOOLS {
        let installed = bin.join(tool);
        for (kind, path) in generated_paths(&prefix, tool) {
            match generates(&installed, kind) {
                Some(text) => {
                    assert_root_owned(&path, 0o644, "file");
                    assert_eq!(
                        fs::read(&path).unwrap(),
                        text,
                        "{} differs from `{tool} --generate {kind}`",
                        path.display()
                    );
                    generating.push(tool);
                }
                None => assert!(
                    !path.exists(),
                    "{} exists though {tool} cannot generate it",
                    path.display()
                ),
            }
        }
        if generates(&installed, "man").is_none() {
            assert!(
                first
                    .stdout
                    .contains(&format!("skipped    man page and completions of {tool}")),
                "install must say it skipped {tool}'s man page:\n{first}"
            );
        }
    }
    assert!(
        generating.contains(&"assent-console"),
        "assent-console generates its man page; it must be installed:\n{first}"
    );
    let man8 = prefix.join("share/man/man8/assent-elevate.8");
    assert_root_owned(&man8, 0o644, "file");
    assert_eq!(
        fs::read(&man8).unwrap(),
        fs::read(repo().join("packaging/assent-elevate.8")).unwrap()
    );
    let unit = prefix.join("lib/systemd/system/assent-relay.service");
    assert_root_owned(&unit, 0o644, "file");
    let unit_text = fs::read_to_string(&unit).unwrap();
    assert!(
        unit_text.contains(&format!("ExecStart={}/bin/assent-relay ", prefix.display())),
        "the unit must start the relay from this prefix:\n{unit_text}"
    );
    for line in [
        "ExecReload=/bin/kill -HUP $MAINPID",
        "CapabilityBoundingSet=\n",
        "SystemCallArchitectures=native",
        "ProtectClock=yes",
        "ProtectKernelLogs=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "ProcSubset=pid",
        "RestrictRealtime=yes",
        "UMask=0077",
    ] {
        assert!(
            unit_text.contains(line),
            "the unit lacks {line:?}:\n{unit_text}"
        );
    }
    // systemd does not look in a scratch prefix: install says so, with what to do.
    let unit_dir = prefix.join("lib/systemd/system");
    assert!(
        first.stderr.contains(&format!(
            "install.sh: warning: systemd does not look for units in {}",
            unit_dir.display()
        )) && first.stderr.contains("ln -s "),
        "{first}"
    );
    // Without --relay, no relay config is made.
    assert!(!sb.etc_dir().join("relay.toml").exists());

    // The fixed paths (the sandbox's, mounted over them).
    assert_root_owned(&sb.etc_dir(), 0o755, "dir");
    assert_root_owned(&sb.host_id_path(), 0o644, "file");
    assert_root_owned(&sb.ledger_dir(), 0o700, "dir");
    assert_root_owned(&sb.log_dir(), 0o700, "dir");
    let config = sb.config_path();
    assert_root_owned(&config, 0o644, "file");
    let template = fs::read(repo().join("packaging/elevator.toml")).unwrap();
    assert_eq!(fs::read(&config).unwrap(), template);
    let said = actions(&first);
    for word in ["installed", "linked", "ready"] {
        assert!(
            said.iter().any(|(w, _)| w == word),
            "the first run says what it did ({word}):\n{first}"
        );
    }
    assert!(
        said.iter()
            .any(|(w, p)| w == "installed" && p.starts_with("/etc/assent/elevator.toml")),
        "{first}"
    );

    // Second run: nothing changes, and it says so.
    let inodes: Vec<u64> = TOOLS
        .iter()
        .map(|t| inode(&bin.join(t)))
        .chain([inode(&elevator), inode(&config), inode(&sb.host_id_path())])
        .collect();
    let second = install_from_build(&sb, &prefix);
    let said = actions(&second);
    assert!(!said.is_empty(), "{second}");
    for (word, path) in &said {
        assert!(
            word == "unchanged" || word == "skipped",
            "the second run changed {path} ({word}):\n{second}"
        );
    }
    assert!(
        said.iter()
            .any(|(w, p)| w == "unchanged" && p == "/etc/assent/elevator.toml"),
        "the second run says the config is unchanged:\n{second}"
    );
    assert!(
        second.stdout.contains("\n0 changed, "),
        "the second run sums up no change:\n{second}"
    );
    assert_eq!(fs::read(&config).unwrap(), template);
    let again: Vec<u64> = TOOLS
        .iter()
        .map(|t| inode(&bin.join(t)))
        .chain([inode(&elevator), inode(&config), inode(&sb.host_id_path())])
        .collect();
    assert_eq!(inodes, again, "the second run rewrote files");
    assert_root_owned(&elevator, 0o4755, "file");

    // An edited config survives a third run, byte for byte.
    let mut edited = template.clone();
    edited.extend_from_slice(b"\n# edited here: this line must survive install.sh\n");
    sb.write_config_text(std::str::from_utf8(&edited).unwrap());
    let third = install_from_build(&sb, &prefix);
    assert_eq!(fs::read(&config).unwrap(), edited);
    assert_root_owned(&config, 0o644, "file");
    assert!(
        actions(&third)
            .iter()
            .any(|(w, p)| w == "kept" && p.starts_with("/etc/assent/elevator.toml")),
        "the third run says it kept the edited config:\n{third}"
    );

    // Uninstall: the installed files go; the config, ledger and log directories stay.
    let removed = install(&sb, &["--uninstall", "--prefix", path_str(&prefix)]).run();
    removed.assert_success();
    for tool in TOOLS {
        assert!(!bin.join(tool).exists(), "{tool} survived --uninstall");
        for (_, path) in generated_paths(&prefix, tool) {
            assert!(!path.exists(), "{} survived --uninstall", path.display());
        }
    }
    for path in [&elevator, &man8, &unit] {
        assert!(!path.exists(), "{} survived --uninstall", path.display());
    }
    assert!(
        fs::symlink_metadata(&sudo).is_err(),
        "the sudo link survived --uninstall"
    );
    assert_eq!(
        fs::read(&config).unwrap(),
        edited,
        "--uninstall must keep the config"
    );
    assert!(sb.ledger_dir().is_dir() && sb.log_dir().is_dir());
    assert!(removed.stdout.contains("Kept /etc/assent"), "{removed}");
    let nothing = install(&sb, &["--uninstall", "--prefix", path_str(&prefix)]).run();
    nothing.assert_success();
    assert!(nothing.stdout.contains("Nothing to remove"), "{nothing}");
}

/// The host id: made when missing, never overwritten, replaced only on request (after cloning
/// an image), and always one the elevator accepts.
#[test]
fn install_makes_the_host_id_once_and_new_host_id_replaces_it() {
    let sb = Sandbox::new();
    let prefix = sb.root().join("prefix");
    let path = sb.host_id_path();
    fs::remove_file(&path).unwrap();

    let first = install_from_build(&sb, &prefix);
    assert_root_owned(&path, 0o644, "file");
    let made = sb.host_id();
    assert_ne!(made, assent_tests::sandbox::DEFAULT_HOST_ID);
    assert!(
        says(&first, "created", &format!("/etc/assent/host-id ({made})")),
        "{first}"
    );
    // With approvers listed, the elevator reads the id install.sh made.
    let alice = assent_tests::keys::KeyPair::generate(&sb.keys_dir(), "alice");
    sb.write_config(
        &assent_tests::sandbox::ElevatorConfig::new()
            .approver("alice", &alice.public_line)
            .requester(&TestUser::agent().name, &["root"]),
    );
    let checked = sb.check();
    checked.assert_success();
    assert!(
        checked.stdout.contains(&format!("host id {made} ")),
        "the elevator reads the id install.sh made: {checked}"
    );

    let second = install_from_build(&sb, &prefix);
    assert!(
        says(&second, "unchanged", "/etc/assent/host-id"),
        "{second}"
    );
    assert_eq!(sb.host_id(), made);

    // An unusable one is kept as it is, with a warning that names the fix.
    sb.write_host_id_text("cloned-from-golden-image\n");
    let kept = install_from_build(&sb, &prefix);
    assert!(says(&kept, "kept", "/etc/assent/host-id"), "{kept}");
    assert!(
        kept.stderr
            .contains("host-id must be one line of 32 lowercase hex digits"),
        "{kept}"
    );
    assert!(kept.stderr.contains("--new-host-id"), "{kept}");
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "cloned-from-golden-image\n"
    );

    // --new-host-id replaces it, and does nothing else.
    sb.write_host_id(made);
    let renewed = install(&sb, &["--new-host-id"]).run();
    renewed.assert_success();
    let new = sb.host_id();
    assert_ne!(new, made);
    assert_root_owned(&path, 0o644, "file");
    assert!(
        says(
            &renewed,
            "replaced",
            &format!("/etc/assent/host-id ({new}; was {made})")
        ),
        "{renewed}"
    );
    assert_eq!(actions(&renewed).len(), 1, "nothing else: {renewed}");
    assert!(sb.check().stdout.contains(&format!("host id {new} ")));
    assert!(
        !sb.etc_dir().read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".new")),
        "no temporary file is left"
    );
}

#[test]
fn install_relay_puts_the_relay_template_in_place_once_and_never_overwrites_it() {
    let sb = Sandbox::new();
    let prefix = sb.root().join("prefix");
    let from = assent_tests::profile_dir();
    let with_relay = |sb: &Sandbox| {
        let out = install(
            sb,
            &[
                "--from",
                path_str(&from),
                "--prefix",
                path_str(&prefix),
                "--relay",
            ],
        )
        .run();
        out.assert_success();
        out
    };
    let relay_toml = sb.etc_dir().join("relay.toml");
    let template = fs::read(repo().join("packaging/relay.toml")).unwrap();

    let first = with_relay(&sb);
    assert_root_owned(&relay_toml, 0o644, "file");
    assert_eq!(fs::read(&relay_toml).unwrap(), template);
    assert!(
        says(&first, "installed", "/etc/assent/relay.toml"),
        "{first}"
    );
    assert!(
        first.stdout.contains("systemctl reload assent-relay"),
        "{first}"
    );
    // The relay starts with it as it is.
    let mut relay = RelayProcess::start(&relay_toml, &sb.root().join("relay.log"), "127.0.0.1:0");
    assert!(relay.is_running());
    relay.kill();

    let second = with_relay(&sb);
    assert!(
        says(&second, "unchanged", "/etc/assent/relay.toml"),
        "{second}"
    );
    // An edited one is kept, byte for byte.
    let mut edited = template.clone();
    edited.extend_from_slice(b"\n[[agent]]\nname = \"kept\"\nkey = \"edited here\"\n");
    fs::write(&relay_toml, &edited).unwrap();
    let third = with_relay(&sb);
    assert_eq!(fs::read(&relay_toml).unwrap(), edited);
    assert!(says(&third, "kept", "/etc/assent/relay.toml"), "{third}");
}

#[test]
fn install_stages_under_destdir_and_refuses_without_root() {
    let sb = Sandbox::new();
    let stage = sb.root().join("stage");
    let from = assent_tests::profile_dir();
    let out = install(
        &sb,
        &[
            "--from",
            path_str(&from),
            "--destdir",
            path_str(&stage),
            "--prefix",
            "/opt/assent",
        ],
    )
    .run();
    out.assert_success();
    assert_root_owned(&stage.join("opt/assent/bin/assent-elevate"), 0o4755, "file");
    assert_root_owned(&stage.join("etc/assent/elevator.toml"), 0o644, "file");
    let staged_id = stage.join("etc/assent/host-id");
    assert_root_owned(&staged_id, 0o644, "file");
    assert!(HostId::from_file(&fs::read(&staged_id).unwrap()).is_some());
    assert_root_owned(&stage.join("var/lib/assent"), 0o700, "dir");
    let unit = fs::read_to_string(stage.join("opt/assent/lib/systemd/system/assent-relay.service"))
        .unwrap();
    assert!(
        unit.contains("ExecStart=/opt/assent/bin/assent-relay "),
        "the unit names the installed path, not the staging one:\n{unit}"
    );
    // Nothing went to the (sandbox's) real /etc/assent.
    assert!(!sb.config_path().exists(), "{out}");

    // The agent runs a copy, from binaries it can read (the staged ones): the checkout may be
    // in a directory only root can read (a 0700 home or `mktemp -d`), and what is tested is
    // install.sh's own refusal.
    let script = sb.install_bin("install.sh", &repo().join("install.sh"), 0o755);
    let staged_bins = stage.join("opt/assent/bin");
    let refused = sb
        .run_as_agent("/bin/bash")
        .arg(&script)
        .args(["--from", path_str(&staged_bins), "--prefix", "/opt/assent"])
        .run();
    refused.assert_code(77);
    assert!(refused.stderr.contains("run as root"), "{refused}");
}

/// The demo's tmux server and agent user, removed whatever happens.
struct DemoWorld {
    socket: String,
    agent: String,
}

impl DemoWorld {
    fn tmux(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-u")
            .arg("-L")
            .arg(&self.socket)
            .env("LC_ALL", "C.UTF-8")
            .env_remove("TMUX")
            .env_remove("TMUX_TMPDIR");
        cmd
    }

    fn has_session(&self) -> bool {
        self.tmux()
            .args(["has-session", "-t", "=assent-demo"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-t", "=assent-demo:"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        let mut pause = Duration::from_millis(20);
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the console shows:\n{screen}"
            );
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

impl Drop for DemoWorld {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
        // tmux leaves its socket file behind.
        let _ = fs::remove_file(format!("/tmp/tmux-0/{}", self.socket));
        if TestUser::lookup(&self.agent).is_some() {
            users_locked(|| {
                let _ = Command::new("userdel")
                    .args(["--remove", &self.agent])
                    .output();
            });
        }
    }
}

/// Run `f` holding the lock the harness takes around `useradd`, so that user databases are
/// never edited by two processes at once.
fn users_locked<T>(f: impl FnOnce() -> T) -> T {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(USERADD_LOCK)
        .unwrap_or_else(|e| panic!("cannot open {USERADD_LOCK}: {e}"));
    let _lock = Flock::lock(file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("cannot lock {USERADD_LOCK}: {e}"));
    f()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn demo_goes_up_asks_as_the_agent_is_approved_in_tmux_and_goes_down() {
    let sb = Sandbox::new();
    let prefix = sb.root().join("prefix");
    install_from_build(&sb, &prefix);
    let home = ScratchDir::new("demo-approver");
    // Names of this process's own, so two test runs at once never share a user or a server.
    let world = DemoWorld {
        socket: format!("assent-demo-test-{}", std::process::id()),
        agent: format!("assent-demo-{}", std::process::id()),
    };
    let listen = format!("127.0.0.1:{}", free_port());
    let demo = |sub: &str| {
        sb.run_as_root("/bin/bash")
            .arg(repo().join("demo.sh"))
            .arg(sub)
            .args(["--prefix", path_str(&prefix), "--listen", &listen])
            .env("HOME", home.path())
            .env("ASSENT_DEMO_TMUX_SOCKET", &world.socket)
            .env("ASSENT_DEMO_AGENT", &world.agent)
    };

    // up: agent user and key, approver key listed, requester block, console in tmux.
    let up = users_locked(|| demo("up").run());
    up.assert_success();
    let agent = TestUser::lookup(&world.agent)
        .unwrap_or_else(|| panic!("up did not create {}:\n{up}", world.agent));
    assert!(
        up.stderr
            .contains(&format!("requester {} -> root", world.agent)),
        "up runs assent-elevate check, which lists the requester:\n{up}"
    );
    let approver_key = home.join(".config/assent/approver.key");
    assert_eq!(owner_mode(&approver_key), (0, 0, 0o600));
    let agent_key = agent.home.join(".config/assent/agent.key");
    assert_eq!(owner_mode(&agent_key), (agent.uid, agent.gid, 0o600));
    let config = sb.config_path();
    let after_up = fs::read_to_string(&config).unwrap();
    assert_root_owned(&config, 0o644, "file");
    assert_eq!(after_up.matches("\n# >>> assent demo\n").count(), 1);
    assert!(after_up.contains("name = \"root\""), "{after_up}");
    assert!(world.has_session(), "no console session after up:\n{up}");
    world.wait_for("the console", |s| s.contains("Pending 0"));

    // The agent cannot reach the approver's tmux socket.
    let socket = PathBuf::from(format!("/tmp/tmux-0/{}", world.socket));
    assert!(socket.exists(), "{} is missing", socket.display());
    let reach = sb
        .run_as(&agent, "/usr/bin/tmux")
        .arg("-S")
        .arg(&socket)
        .args(["send-keys", "-t", "=assent-demo:", "a"])
        .run();
    assert!(
        !reach.success(),
        "the agent reached the console's tmux socket: {reach}"
    );

    // up again changes nothing.
    let again = demo("up").run();
    again.assert_success();
    assert_eq!(fs::read_to_string(&config).unwrap(), after_up);
    for said in ["already in", "already running", "(kept)"] {
        assert!(again.stderr.contains(said), "{said:?} missing:\n{again}");
    }

    // agent: the request appears in the console; `a` approves it (once the console takes
    // keys for it: it holds them a second after a request lands); the agent sees 0.
    let asking = demo("agent").spawn();
    let screen = world.wait_for("the demo's request", |s| {
        s.contains("Pending 1/1")
            && s.lines().any(|l| l.contains('▶') && l.contains("id -u"))
            && !s.contains(assent_tests::console::GUARD_TITLE)
    });
    assert!(
        screen.contains("assent demo: who am I as root?"),
        "{screen}"
    );
    assert!(screen.contains(&world.agent), "{screen}");
    let keys = world
        .tmux()
        .args(["send-keys", "-t", "=assent-demo:", "a"])
        .output()
        .unwrap();
    assert!(keys.status.success(), "{keys:?}");
    let asked = asking.wait();
    asked.assert_success();
    assert_eq!(asked.stdout.trim_end().lines().last(), Some("0"), "{asked}");
    assert!(asked.stderr.contains("press a to approve"), "{asked}");
    assert!(asked.stderr.contains("approved by root"), "{asked}");
    let last = sb
        .audit_attempts()
        .pop()
        .expect("the elevator wrote no audit line");
    assert_eq!(last.event(), "exec", "{}", last.raw);
    assert!(last.mentions(&world.agent), "{}", last.raw);

    // down: console stopped, block removed, agent user gone; approver key and trust kept.
    let down = users_locked(|| demo("down").run());
    down.assert_success();
    assert!(!world.has_session(), "the console survived down:\n{down}");
    let after_down = fs::read_to_string(&config).unwrap();
    let block = after_up
        .strip_prefix(after_down.as_str())
        .unwrap_or_else(|| {
            panic!("down changed more than the block:\n{after_up}\n---\n{after_down}")
        });
    assert!(
        block.starts_with("\n# >>> assent demo\n") && block.ends_with("# <<< assent demo\n"),
        "down removed exactly the marked block: {block:?}"
    );
    assert!(after_down.contains("name = \"root\""), "{after_down}");
    assert_root_owned(&config, 0o644, "file");
    assert!(TestUser::lookup(&world.agent).is_none(), "{down}");
    assert!(!agent.home.exists(), "the agent's home survived down");
    assert!(approver_key.exists(), "down must keep the approver key");
    assert!(down.stderr.contains("kept: the approver key"), "{down}");

    // down again is harmless.
    let twice = demo("down").run();
    twice.assert_success();
    assert!(twice.stderr.contains("already gone"), "{twice}");
    assert_eq!(fs::read_to_string(&config).unwrap(), after_down);
}

#[test]
fn demo_refuses_a_busy_port_before_it_makes_anything() {
    let sb = Sandbox::new();
    let prefix = sb.root().join("prefix");
    install_from_build(&sb, &prefix);
    let home = ScratchDir::new("demo-busy");
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = busy.local_addr().unwrap().to_string();
    let agent = format!("assent-demo-busy-{}", std::process::id());
    let up = users_locked(|| {
        sb.run_as_root("/bin/bash")
            .arg(repo().join("demo.sh"))
            .arg("up")
            .args(["--prefix", path_str(&prefix), "--listen", &listen])
            .env("HOME", home.path())
            .env(
                "ASSENT_DEMO_TMUX_SOCKET",
                format!("assent-demo-busy-{}", std::process::id()),
            )
            .env("ASSENT_DEMO_AGENT", &agent)
            .run()
    });
    assert!(!up.success(), "up went ahead on a busy port: {up}");
    assert!(
        up.stderr
            .contains(&format!("something already listens on {listen}")),
        "{up}"
    );
    let made = TestUser::lookup(&agent).is_some();
    if made {
        users_locked(|| {
            let _ = Command::new("userdel").args(["--remove", &agent]).output();
        });
    }
    assert!(
        !made,
        "up created the agent user before it found the port busy: {up}"
    );
    assert!(
        !home.join(".config/assent/approver.key").exists(),
        "up made the approver key before it found the port busy: {up}"
    );
    drop(busy);
}
