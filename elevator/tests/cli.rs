//! The elevator's command line as a caller meets it, without setuid: help, version, usage
//! errors. (Declaring a test of the binary also makes `cargo test --workspace` build it for the
//! setuid end-to-end tests in `tests/`.)

use std::process::{Command, Output};

fn elevate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_assent-elevate"))
        .args(args)
        .env_clear()
        .output()
        .expect("run assent-elevate")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_documents_usage_and_every_exit_status() {
    let out = elevate(&["--help"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--grant TOKEN",
        "--grant-fd N",
        "check",
        "audit verify",
        "77",
        "78",
        "64",
        "126",
    ] {
        assert!(help.contains(needle), "help lacks {needle:?}:\n{help}");
    }
    // `check` exits 78 for a bad configuration, not 1: the help must not say otherwise.
    let check_codes: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Exit status, check"))
        .collect();
    assert!(
        check_codes
            .iter()
            .any(|l| l.trim_start().starts_with("78") && l.contains("check:")),
        "{help}"
    );
    assert!(!help.contains("0 / 1"), "{help}");
}

#[test]
fn version_names_the_program() {
    let out = elevate(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.trim(),
        format!("assent-elevate {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_64_with_one_line() {
    for args in [
        &[][..],
        &["--grant"],
        &["--grant", "TOKEN"],
        &["--grant-fd", "1", "--", "/bin/true"],
        &["--frobnicate"],
        &["audit", "rotate"],
    ] {
        let out = elevate(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, got {err:?}");
        assert!(err.starts_with("assent-elevate: "), "{args:?}: {err:?}");
    }
}
