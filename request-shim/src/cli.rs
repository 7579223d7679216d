//! The `assent` command line.

use std::ffi::OsString;

use assent_cli_manual::{Generate, GenerateFlag};
use assent_protocol::Grant;
use clap::{Args, Parser, Subcommand};

use crate::failure::{Exit, Failure, Result};
use crate::request::parse_env_assignment;
use assent_common::duration;

/// What `--help` says after the options: the exit statuses, the files and the `sudo` entry.
/// Written from the same tables as the man page.
pub fn after_help() -> String {
    let mut text = String::from("Exit status of `assent run`:\n");
    for (code, meaning) in exit_statuses() {
        text.push_str(&format!("  {code:<4} {meaning}\n"));
    }
    text.push_str(&format!(
        "\n`assent status` exits 0 when `assent run` has everything it needs, {} when something is\n\
         missing, {} when only the relay is unreachable.\n\
         \n\
         Files: $XDG_CONFIG_HOME/assent/{{agent.toml,agent.key,agent.key.pub}} and the grant cache in\n\
         $XDG_STATE_HOME/assent/grants/. Invoked through a symlink named `sudo`, assent accepts\n\
         `{}` with the reason taken from ASSENT_REASON.",
        Exit::Config.code(),
        Exit::Retry.code(),
        crate::sudo::USAGE,
    ));
    text
}

/// Every status `assent run` exits with, and what it means.
pub fn exit_statuses() -> Vec<(String, &'static str)> {
    let mut table = vec![(
        "N".to_owned(),
        "the command's own status (128+N when signal N killed it): it ran, and the elevator, which waits for it and passes SIGINT, SIGTERM and SIGHUP on to it, exits with that status",
    )];
    table.extend(
        Exit::ALL
            .iter()
            .map(|exit| (exit.code().to_string(), exit.meaning())),
    );
    table
}

/// Ask a human to approve one command, then run it with another user's privileges.
#[derive(Debug, Parser)]
#[command(
    name = "assent",
    version,
    override_usage = "assent <COMMAND>",
    after_help = after_help(),
    arg_required_else_help = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(flatten)]
    pub generate: GenerateFlag,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// `--generate KIND`
    Generate(Generate),
    Command(Command),
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask for approval of one command and run it through the elevator when approved.
    #[command(after_help = after_help())]
    Run(RunArgs),
    /// Create the agent key (agent.key, agent.key.pub) and show its fingerprint and what to do next.
    Keygen {
        /// Name in the key's comment (NAME@HOST); defaults to the agent name.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Replace an existing key.
        #[arg(long)]
        force: bool,
    },
    /// List cached timed and always grants: host, window and state (live, waiting, revoked,
    /// expired or unusable).
    Grants {
        /// One JSON object per grant, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Check that everything `assent run` needs is in place; one line per item, with the fix.
    ///
    /// Checks the agent.toml, the agent key (present, private), the relay (reachable, and
    /// accepting this key's login, within 2 s), the elevator (found, setuid root), and, when
    /// the elevator's configuration is readable, that this user is a [[requester]] and that an
    /// [[approver]] is listed. Each line is marked ok, MISSING, PROBLEM or UNKNOWN. Exits 0 when
    /// `assent run` has everything it needs, 78 when something is missing, 75 when only the
    /// relay is unreachable.
    Status,
    /// Serve MCP on stdin and stdout: the tools run_privileged and list_grants, for agents
    /// whose harness starts MCP servers (and whose sandboxed shell cannot use sudo).
    ///
    /// Each run_privileged call goes through the same flow as `assent run`: a human approves
    /// it on their console, then the elevator runs it. See docs/agents.md for the set-up.
    Mcp,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// User to run the command as.
    #[arg(long = "as", value_name = "USER", default_value = "root")]
    pub run_as: String,
    /// Why: shown to the approver.
    #[arg(
        long,
        value_name = "TEXT",
        env = "ASSENT_REASON",
        hide_env_values = true
    )]
    pub reason: Option<String>,
    /// Grant to ask for: once, timed:DURATION (e.g. timed:1h) or always; the approver decides.
    #[arg(long, value_name = "GRANT", default_value = "once", value_parser = grant_arg)]
    pub grant: GrantArg,
    /// Extra environment variable for the command (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = env_arg)]
    pub env: Vec<(String, String)>,
    /// How long to wait for a decision, e.g. 90s, 5m, 1h [default: 5m or agent.toml's timeout].
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    pub timeout: Option<u64>,
    /// Relay URL [default: agent.toml's relay, ASSENT_RELAY, or ws://127.0.0.1:7447].
    #[arg(long, value_name = "URL")]
    pub relay: Option<String>,
    /// The program and its arguments (after `--`).
    #[arg(
        value_name = "PROGRAM",
        required = true,
        trailing_var_arg = true,
        num_args = 1..
    )]
    pub command: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantArg {
    pub grant: Grant,
    pub ttl_s: Option<u64>,
}

fn grant_arg(text: &str) -> Result<GrantArg, String> {
    assent_common::grant::parse(text).map(|(grant, ttl_s)| GrantArg { grant, ttl_s })
}

fn env_arg(text: &str) -> Result<(String, String), String> {
    parse_env_assignment(text)
}

/// What the command line asks for: `Ok(None)` when help or the version was printed.
pub fn parse(args: Vec<OsString>) -> Result<Option<Invocation>> {
    match Cli::try_parse_from(args) {
        Ok(Cli {
            generate: GenerateFlag { kind: Some(kind) },
            ..
        }) => Ok(Some(Invocation::Generate(kind))),
        Ok(Cli {
            command: Some(command),
            ..
        }) => Ok(Some(Invocation::Command(command))),
        // Not reachable (an empty command line shows the help), but harmless: show it.
        Ok(Cli { .. }) => {
            use clap::CommandFactory as _;
            let _ = Cli::command().print_help();
            Ok(None)
        }
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp
            | clap::error::ErrorKind::DisplayVersion
            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                let _ = e.print();
                Ok(None)
            }
            _ => Err(Failure::usage(assent_cli_manual::usage_line(&e, "assent"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Exit;

    fn parse_words(line: &str) -> Result<Option<Invocation>> {
        parse(
            std::iter::once("assent")
                .chain(line.split_whitespace())
                .map(OsString::from)
                .collect(),
        )
    }

    fn run(line: &str) -> RunArgs {
        match parse_words(line) {
            Ok(Some(Invocation::Command(Command::Run(args)))) => args,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn run_defaults() {
        let r = run("run -- /bin/true");
        assert_eq!(r.run_as, "root");
        assert_eq!(
            r.grant,
            GrantArg {
                grant: Grant::Once,
                ttl_s: None
            }
        );
        assert!(r.env.is_empty());
        assert_eq!(r.timeout, None);
        assert_eq!(r.relay, None);
        assert_eq!(r.command, [OsString::from("/bin/true")]);
    }

    #[test]
    fn run_every_option() {
        let r = run(
            "run --as postgres --reason patch --grant timed:1h --env A=1 --env B=2 --timeout 90s --relay ws://127.0.0.1:9 -- psql -c select",
        );
        assert_eq!(r.run_as, "postgres");
        assert_eq!(r.reason.as_deref(), Some("patch"));
        assert_eq!(
            r.grant,
            GrantArg {
                grant: Grant::Timed,
                ttl_s: Some(3600)
            }
        );
        assert_eq!(r.env, [("A".into(), "1".into()), ("B".into(), "2".into())]);
        assert_eq!(r.timeout, Some(90));
        assert_eq!(r.relay.as_deref(), Some("ws://127.0.0.1:9"));
        assert_eq!(r.command, ["psql", "-c", "select"].map(OsString::from));
    }

    #[test]
    fn options_after_the_program_belong_to_the_program() {
        let r = run("run -- ls --as root -l");
        assert_eq!(r.run_as, "root");
        assert_eq!(r.command, ["ls", "--as", "root", "-l"].map(OsString::from));
        let r = run("run ls -l --timeout 5m");
        assert_eq!(r.timeout, None);
        assert_eq!(
            r.command,
            ["ls", "-l", "--timeout", "5m"].map(OsString::from)
        );
    }

    #[test]
    fn usage_errors_are_one_line_and_exit_64() {
        for (line, needle) in [
            ("run", "PROGRAM"),
            ("run --grant forever -- x", "once, timed:DURATION"),
            ("run --env 1X=y -- x", "not a variable name"),
            ("run --timeout 5 -- x", "not a duration"),
            ("run --bogus -- x", "--bogus"),
            ("frobnicate", "frobnicate"),
        ] {
            let err = parse_words(line).expect_err(line);
            assert_eq!(err.exit, Exit::Usage, "{line}");
            assert!(err.message.contains(needle), "{line}: {}", err.message);
            assert!(!err.message.contains('\n'), "{line}: {}", err.message);
            assert!(err.message.ends_with("see `assent --help`"));
        }
    }

    #[test]
    fn help_documents_exit_codes() {
        use clap::CommandFactory as _;
        for help in [
            Cli::command().render_long_help().to_string(),
            Cli::command()
                .find_subcommand_mut("run")
                .unwrap()
                .render_long_help()
                .to_string(),
        ] {
            for needle in ["64", "75", "77", "78", "130", "retryable", "denied"] {
                assert!(help.contains(needle), "{needle}");
            }
            assert!(!help.contains("--generate"), "a hidden flag stays hidden");
        }
        Cli::command().debug_assert();
    }

    #[test]
    fn generate_takes_each_kind_and_nothing_else() {
        use clap::ValueEnum as _;
        for kind in Generate::ALL {
            let word = kind.to_possible_value().expect("every kind has a name");
            let line = format!("--generate {}", word.get_name());
            assert!(
                matches!(parse_words(&line), Ok(Some(Invocation::Generate(k))) if k == kind),
                "{line}"
            );
        }
        for line in ["--generate pdf", "--generate", "--generate man status"] {
            assert_eq!(
                parse_words(line).expect_err(line).exit,
                Exit::Usage,
                "{line}"
            );
        }
    }

    #[test]
    fn other_subcommands() {
        assert!(matches!(
            parse_words("keygen --name bot --force"),
            Ok(Some(Invocation::Command(Command::Keygen { name: Some(ref n), force: true }))) if n == "bot"
        ));
        assert!(matches!(
            parse_words("grants --json"),
            Ok(Some(Invocation::Command(Command::Grants { json: true })))
        ));
        assert!(matches!(
            parse_words("status"),
            Ok(Some(Invocation::Command(Command::Status)))
        ));
    }
}
