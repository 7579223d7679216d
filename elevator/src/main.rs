//! The `assent-elevate` command line, parsed by hand (no parser crate in a setuid binary).
#![deny(unsafe_code)]

use std::ffi::OsString;
use std::io::Write as _;

use assent_common::paths::{AUDIT_LOG, ELEVATOR_CONFIG, HOST_ID, LEDGER_DIR};
use assent_elevate::run::{self, GrantSource, Invocation};
use assent_elevate::{EXIT_REFUSED, EXIT_USAGE, process, sys};

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Help,
    Version,
    Check,
    AuditVerify,
    Elevate {
        grant: GrantArg,
        program: OsString,
        args: Vec<OsString>,
    },
}

#[derive(Debug, PartialEq, Eq)]
enum GrantArg {
    Inline(OsString),
    Fd(i32),
}

fn usage_text() -> String {
    format!(
        "\
assent-elevate {version}: run one approved command as another user (setuid root)

Usage:
  assent-elevate --grant TOKEN -- PROGRAM [ARGS...]
  assent-elevate --grant-fd N -- PROGRAM [ARGS...]
  assent-elevate check           validate the configuration, list approvers (root only)
  assent-elevate audit verify    check the audit log's hash chain (root only)
  assent-elevate --help | --version

PROGRAM is the absolute path that was approved; PATH is never searched. ARGS must be
exactly the approved arguments. --grant-fd reads the token from descriptor N (0, or 3 and
above, e.g. a pipe) and closes it, so the token never shows in ps.

Files (fixed when the elevator was built):
  {ELEVATOR_CONFIG}    configuration: approvers, requesters, settings
  {HOST_ID}          this install's host id (a request must name it)
  {LEDGER_DIR}              ledger of used once-grants
  {AUDIT_LOG}  audit log, a hash-chained JSON line per attempt and exit

Exit status, elevating:
  the program's own     it ran; 128+N when signal N ended it
  77                    refused: the line on stderr names the check that failed
  78                    the configuration is bad or unsafe
  64                    usage error
  126                   every check passed but the program could not be started

Exit status, check and audit verify:
  0                     the configuration is valid / the audit chain is intact
  1                     audit verify: the chain is broken or the log unreadable (stderr
                        names the first bad line)
  78                    check: the configuration or the elevator's install is bad or unsafe
  77                    not run by root (real uid 0)
  64                    usage error
",
        version = env!("CARGO_PKG_VERSION")
    )
}

fn parse(args: Vec<OsString>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let Some(first) = args.next() else {
        return Err("no arguments; see assent-elevate --help".into());
    };
    let first_str = first.to_str().unwrap_or_default().to_owned();
    let rest: Vec<OsString> = args.collect();
    let no_more = |command: Command, rest: &[OsString]| {
        if rest.is_empty() {
            Ok(command)
        } else {
            Err(format!("unexpected argument {:?}", rest[0]))
        }
    };
    match first_str.as_str() {
        "--help" | "-h" => return no_more(Command::Help, &rest),
        "--version" | "-V" => return no_more(Command::Version, &rest),
        "check" => return no_more(Command::Check, &rest),
        "audit" => {
            return match rest.first().and_then(|a| a.to_str()) {
                Some("verify") => no_more(Command::AuditVerify, &rest[1..]),
                _ => Err("usage: assent-elevate audit verify".into()),
            };
        }
        _ => {}
    }
    let mut rest = rest.into_iter();
    let grant = match first_str.split_once('=') {
        Some(("--grant", token)) => GrantArg::Inline(token.into()),
        Some(("--grant-fd", n)) => GrantArg::Fd(parse_fd(n)?),
        _ if first_str == "--grant" => {
            GrantArg::Inline(rest.next().ok_or("--grant needs a TOKEN")?)
        }
        _ if first_str == "--grant-fd" => {
            let n = rest.next().ok_or("--grant-fd needs a descriptor number")?;
            GrantArg::Fd(parse_fd(n.to_str().unwrap_or_default())?)
        }
        _ => {
            return Err(format!(
                "unknown argument {first:?}; see assent-elevate --help"
            ));
        }
    };
    let mut program = rest
        .next()
        .ok_or("PROGRAM is missing: -- PROGRAM [ARGS...]")?;
    if program == "--" {
        program = rest.next().ok_or("PROGRAM is missing after --")?;
    } else if program.to_str().is_some_and(|p| p.starts_with('-')) {
        return Err(format!(
            "unknown option {program:?}; options go before -- PROGRAM, see assent-elevate --help"
        ));
    }
    Ok(Command::Elevate {
        grant,
        program,
        args: rest.collect(),
    })
}

fn parse_fd(text: &str) -> Result<i32, String> {
    match text.parse::<i32>() {
        Ok(n) if n == 0 || n >= 3 => Ok(n),
        _ => Err(format!(
            "--grant-fd {text:?}: use descriptor 0 or a number of 3 or more (e.g. a pipe)"
        )),
    }
}

/// Exactly one line on stderr, errors writing it ignored (the caller may have closed it).
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "assent-elevate: {line}");
}

fn main() {
    // A panic must never leave anything half done: one line, exit 77, nothing runs.
    std::panic::set_hook(Box::new(|info| {
        let what = info.payload();
        let text = what
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| what.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        say(&format!(
            "refused (setup): internal error: {text}; nothing was run"
        ));
        std::process::exit(EXIT_REFUSED);
    }));
    let own_limits = process::harden_at_startup();

    let command = match parse(std::env::args_os().skip(1).collect()) {
        Ok(command) => command,
        Err(why) => {
            say(&why);
            std::process::exit(EXIT_USAGE);
        }
    };
    match command {
        Command::Help => print!("{}", usage_text()),
        Command::Version => println!("assent-elevate {}", env!("CARGO_PKG_VERSION")),
        Command::Check => match run::check_config() {
            Ok(report) => print!("{report}"),
            Err(failure) => {
                say(&failure.message());
                std::process::exit(failure.exit_code());
            }
        },
        Command::AuditVerify => match run::verify_audit() {
            Ok(Ok(report)) => println!("{report}"),
            Ok(Err(broken)) => {
                say(&format!("audit: {broken}"));
                std::process::exit(1);
            }
            Err(failure) => {
                say(&failure.message());
                std::process::exit(failure.exit_code());
            }
        },
        Command::Elevate {
            grant,
            program,
            args,
        } => {
            // Claim the token descriptor before this process opens anything of its own.
            let grant = match grant {
                GrantArg::Inline(token) => GrantSource::Inline(token),
                GrantArg::Fd(0) => GrantSource::Stdin,
                GrantArg::Fd(n) => match sys::claim_inherited_fd(n) {
                    Ok(fd) => GrantSource::Fd(fd),
                    Err(e) => {
                        say(&format!("--grant-fd {n}: not an open descriptor ({e})"));
                        std::process::exit(EXIT_USAGE);
                    }
                },
            };
            let failure = run::elevate(
                Invocation {
                    grant,
                    program,
                    args,
                },
                own_limits,
            );
            say(&failure.message());
            std::process::exit(failure.exit_code());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(OsString::from).collect())
    }

    fn elevate(grant: GrantArg, program: &str, args: &[&str]) -> Command {
        Command::Elevate {
            grant,
            program: program.into(),
            args: args.iter().map(OsString::from).collect(),
        }
    }

    #[test]
    fn the_documented_forms_parse() {
        assert_eq!(p(&["--help"]), Ok(Command::Help));
        assert_eq!(p(&["--version"]), Ok(Command::Version));
        assert_eq!(p(&["check"]), Ok(Command::Check));
        assert_eq!(p(&["audit", "verify"]), Ok(Command::AuditVerify));
        assert_eq!(
            p(&[
                "--grant",
                "TOK",
                "--",
                "/usr/bin/apt-get",
                "upgrade",
                "-y",
                "--",
                "--grant"
            ]),
            Ok(elevate(
                GrantArg::Inline("TOK".into()),
                "/usr/bin/apt-get",
                &["upgrade", "-y", "--", "--grant"]
            ))
        );
        assert_eq!(
            p(&["--grant-fd", "3", "--", "/bin/true"]),
            Ok(elevate(GrantArg::Fd(3), "/bin/true", &[]))
        );
        assert_eq!(
            p(&["--grant-fd=0", "/bin/true"]),
            Ok(elevate(GrantArg::Fd(0), "/bin/true", &[]))
        );
        assert_eq!(
            p(&["--grant=T", "--", "/bin/echo", "-n"]),
            Ok(elevate(GrantArg::Inline("T".into()), "/bin/echo", &["-n"]))
        );
    }

    #[test]
    fn mistakes_are_usage_errors() {
        for bad in [
            &[][..],
            &["--grant"],
            &["--grant", "T"],
            &["--grant", "T", "--"],
            &["--grant", "T", "-x", "/bin/true"],
            &["--grant-fd", "1", "--", "/bin/true"],
            &["--grant-fd", "x", "--", "/bin/true"],
            &["--grant-fd", "-3", "--", "/bin/true"],
            &["/bin/true"],
            &["check", "extra"],
            &["audit"],
            &["audit", "show"],
            &["--help", "me"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }
}
