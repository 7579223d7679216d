//! `assent-relay --generate KIND`, run for real: what install.sh installs as the relay's man
//! page and completions.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_assent-relay");

/// Every option `assent-relay --help` documents.
const OPTIONS: [&str; 6] = [
    "listen",
    "config",
    "tls-cert",
    "tls-key",
    "insecure-listen",
    "verbose",
];

fn relay(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

fn stdout(args: &[&str]) -> String {
    let out = relay(args);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{args:?}: {out:?}"
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_man_page_documents_every_option_and_exit_status() {
    let page = stdout(&["--generate", "man"]);
    assert!(page.contains("\n.TH assent-relay 1 "), "{page}");
    for option in OPTIONS {
        // roff escapes the dashes.
        let roff = format!("\\-\\-{}", option.replace('-', "\\-"));
        assert!(page.contains(&roff), "--{option} missing:\n{page}");
    }
    for code in [0, 64, 69, 78] {
        assert!(
            page.contains(&format!(".TP\n\\fB{code}\\fR\n")),
            "exit {code} missing:\n{page}"
        );
    }
    for needle in [
        ".SH CONFIGURATION\n",
        ".SH FILES\n",
        "/etc/assent/relay.toml",
        ".SH \"SEE ALSO\"\n",
    ] {
        assert!(page.contains(needle), "{needle} missing:\n{page}");
    }
    assert!(!page.contains("generate"), "the flag stays hidden:\n{page}");
}

#[test]
fn every_completion_script_names_the_options() {
    for (kind, head) in [
        ("complete-bash", "complete -F _assent__relay"),
        ("complete-zsh", "#compdef assent-relay"),
        ("complete-fish", "complete -c assent-relay"),
    ] {
        let script = stdout(&["--generate", kind]);
        assert!(script.contains(head), "{kind}:\n{script}");
        for option in OPTIONS {
            // fish writes `-l listen`; bash and zsh `--listen`.
            assert!(
                script.contains(&format!("--{option}")) || script.contains(&format!("-l {option}")),
                "{kind} lacks --{option}:\n{script}"
            );
        }
    }
}

#[test]
fn the_flag_is_hidden_and_takes_only_the_known_kinds() {
    let help = stdout(&["--help"]);
    assert!(!help.contains("--generate"), "{help}");
    for code in ["0", "64", "69", "78"] {
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(&format!("{code} "))),
            "--help lacks exit status {code}:\n{help}"
        );
    }
    for args in [&["--generate", "pdf"][..], &["--generate"]] {
        let out = relay(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
}
