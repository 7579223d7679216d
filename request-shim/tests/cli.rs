//! The shim's command line as an agent meets it: help, version, usage errors and the `sudo`
//! entry's refusals, none of which needs a relay or a key. (Declaring a test of the binary also
//! makes `cargo test --workspace` build it for the end-to-end tests in `tests/`.)

use std::path::PathBuf;
use std::process::{Command, Output};

const ASSENT: &str = env!("CARGO_BIN_EXE_assent");

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A scratch directory with a `sudo` symlink to the shim.
fn sudo_link(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("assent-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("sudo");
    std::os::unix::fs::symlink(ASSENT, &link).unwrap();
    link
}

#[test]
fn help_documents_every_exit_status() {
    let out = Command::new(ASSENT).arg("--help").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "run", "keygen", "grants", "status", "64", "75", "77", "78", "130",
    ] {
        assert!(help.contains(needle), "help lacks {needle:?}:\n{help}");
    }
}

#[test]
fn usage_errors_exit_64() {
    for args in [
        &["frobnicate"][..],
        &["run"],
        &["run", "--grant", "sometimes", "--", "id"],
    ] {
        let out = Command::new(ASSENT).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn the_sudo_entry_refuses_unsupported_options_by_name() {
    let sudo = sudo_link("sudo");
    for option in ["-i", "-s", "-E"] {
        let out = Command::new(&sudo).args([option, "id"]).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{option}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("assent: sudo option {option} is not supported")),
            "{option}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(sudo.parent().unwrap());
}
