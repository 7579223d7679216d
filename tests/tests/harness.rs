//! The setuid harness itself: if it lied (ran as root, leaked the host's paths, mangled
//! arguments), every elevator test built on it would prove nothing.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use assent_tests::keys::KeyPair;
use assent_tests::sandbox::{ElevatorConfig, Sandbox};
use assent_tests::users::TestUser;

#[test]
fn commands_run_as_the_unprivileged_test_user() {
    let sb = Sandbox::new();
    let agent = TestUser::agent();
    assert_ne!(agent.uid, 0);
    let out = sb.run_as_agent("/usr/bin/id").run();
    out.assert_success();
    let expected = format!("uid={}({}) gid={}(", agent.uid, agent.name, agent.gid);
    assert!(out.stdout.starts_with(&expected), "{out}");
    assert!(!out.stdout.contains("euid="), "{out}");

    let other = TestUser::other();
    assert_ne!(other.uid, agent.uid);
    let out = sb.run_as(&other, "/usr/bin/id").arg("-u").run();
    assert_eq!(out.stdout.trim(), other.uid.to_string(), "{out}");
}

#[test]
fn the_fixed_paths_are_the_sandbox_inside_and_untouched_outside() {
    let sb = Sandbox::new();
    let alice = KeyPair::generate(&sb.keys_dir(), "alice");
    let config = ElevatorConfig::new()
        .approver("alice", &alice.public_line)
        .requester("assent-agent", &["root"])
        .once_window_s(30);
    sb.write_config(&config);
    let out = sb
        .run_as_agent("/bin/cat")
        .arg("/etc/assent/elevator.toml")
        .run();
    out.assert_success();
    assert_eq!(out.stdout, config.to_toml());
    assert!(out.stdout.contains("once_window_s = 30"), "{}", out.stdout);

    fs::write(sb.ledger_dir().join("probe"), "ledger").unwrap();
    fs::write(sb.log_dir().join("probe"), "log").unwrap();
    let out = sb
        .run_as_root("/bin/cat")
        .args(["/var/lib/assent/probe", "/var/log/assent/probe"])
        .run();
    assert_eq!(out.stdout, "ledgerlog", "{out}");
    // The host's own directories never see the sandbox's files.
    assert!(!std::path::Path::new("/var/lib/assent/probe").exists());
    assert!(!std::path::Path::new("/var/log/assent/probe").exists());
}

#[test]
fn the_elevator_is_installed_setuid_root() {
    let sb = Sandbox::new();
    let meta = fs::metadata(sb.elevator_path()).unwrap();
    assert_eq!(meta.uid(), 0);
    assert_eq!(meta.gid(), 0);
    assert_eq!(meta.permissions().mode() & 0o7777, 0o4755);
    for (dir, mode) in [
        (sb.etc_dir(), 0o755),
        (sb.ledger_dir(), 0o700),
        (sb.log_dir(), 0o700),
        (sb.root().to_path_buf(), 0o755),
        (sb.marker("x").parent().unwrap().to_path_buf(), 0o1777),
    ] {
        let meta = fs::metadata(&dir).unwrap();
        assert_eq!(meta.uid(), 0, "{}", dir.display());
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            mode,
            "{}",
            dir.display()
        );
    }
    // Setuid works where the sandbox lives (no nosuid mount): a setuid copy of `id` reports
    // euid 0 when the test user runs it.
    let id = sb.install_bin("setuid-id", std::path::Path::new("/usr/bin/id"), 0o4755);
    let out = sb.run_as_agent(&id).run();
    assert!(out.stdout.contains("euid=0(root)"), "{out}");
}

#[test]
fn arguments_pass_through_unchanged() {
    let sb = Sandbox::new();
    let args = [
        "plain",
        "with space",
        "'single'",
        "\"double\"",
        "$HOME",
        "`id`",
        "$(id)",
        "; touch /tmp/nope",
        "*",
        "",
        "a=b",
        "-- --",
    ];
    let out = sb
        .run_as_agent("/bin/sh")
        .args(["-c", "printf '<%s>\\n' \"$@\"", "sh"])
        .args(args)
        .run();
    out.assert_success();
    let expected: String = args.iter().map(|a| format!("<{a}>\n")).collect();
    assert_eq!(out.stdout, expected);
}

#[test]
fn the_environment_is_exactly_what_the_test_sets() {
    let sb = Sandbox::new();
    let out = sb
        .run_as_agent("/usr/bin/env")
        .env("LD_PRELOAD", "/nonexistent/evil.so")
        .env("SPACED", "a b  c")
        .env_remove("SHELL")
        .run();
    out.assert_success();
    let mut keys: Vec<&str> = out
        .stdout
        .lines()
        .map(|l| l.split_once('=').unwrap().0)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["HOME", "LD_PRELOAD", "LOGNAME", "PATH", "SPACED", "USER"],
        "{out}"
    );
    assert!(out.stdout.contains("SPACED=a b  c\n"), "{out}");
    let path_line = format!("PATH={}:", sb.bin_dir().display());
    assert!(out.stdout.contains(&path_line), "{out}");
    // The elevator is found on PATH.
    let out = sb
        .run_as_agent("/bin/sh")
        .args(["-c", "command -v assent-elevate"])
        .run();
    assert_eq!(
        out.stdout.trim(),
        sb.elevator_path().to_str().unwrap(),
        "{out}"
    );
}

#[test]
fn cwd_stdin_and_hostname_are_applied() {
    let sb = Sandbox::new();
    let out = sb
        .run_as_agent("/bin/sh")
        .args(["-c", "pwd; hostname; cat"])
        .cwd(sb.agent_dir())
        .hostname("assent-harness")
        .stdin("from stdin\n")
        .run();
    out.assert_success();
    let expected = format!("{}\nassent-harness\nfrom stdin\n", sb.agent_dir().display());
    assert_eq!(out.stdout, expected);
    // The UTS namespace was private: the host keeps its name.
    assert_ne!(assent_tests::hostname(), "assent-harness");
}

#[test]
fn a_run_that_hangs_is_killed_at_its_timeout() {
    let sb = Sandbox::new();
    let started = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sb.run_as_agent("/bin/sleep")
            .arg("30")
            .timeout(Duration::from_millis(300))
            .run()
    }));
    assert!(result.is_err(), "a hanging run must fail the test");
    assert!(started.elapsed() < Duration::from_secs(10));
}
