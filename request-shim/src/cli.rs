//! The `assent` command line.

use std::ffi::OsString;

use assent_protocol::Grant;
use clap::{Args, Parser, Subcommand};

use crate::duration;
use crate::failure::{Failure, Result};
use crate::request::{parse_env_assignment, parse_grant};

pub const EXIT_STATUS: &str = "\
Exit status of `assent run`:
  N    the command's own status: it ran (the elevator replaced assent with it)
  64   usage: the command line was wrong
  75   no decision before the timeout, or the relay was unreachable (retryable)
  77   denied by an approver, or refused by the elevator
  78   configuration: no agent key, a bad agent.toml, no elevator
  130  interrupted while waiting; nothing ran

Files: $XDG_CONFIG_HOME/assent/{agent.toml,agent.key,agent.key.pub} and the grant cache in
$XDG_STATE_HOME/assent/grants/. Invoked through a symlink named `sudo`, assent accepts
`sudo [-u USER] [-n] [--] COMMAND...` with the reason taken from ASSENT_REASON.";

/// Ask a human to approve one command, then run it with another user's privileges.
#[derive(Debug, Parser)]
#[command(name = "assent", version, after_help = EXIT_STATUS)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask for approval of one command and run it through the elevator when approved.
    #[command(after_help = EXIT_STATUS)]
    Run(RunArgs),
    /// Create the agent key (agent.key, agent.key.pub) and show its fingerprint.
    Keygen {
        /// Name in the key's comment (NAME@HOST); defaults to the agent name.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Replace an existing key.
        #[arg(long)]
        force: bool,
    },
    /// List cached timed and always grants and their windows.
    Grants {
        /// One JSON object per grant, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Show the configuration, the key, and whether the relay and the elevator are usable.
    Status,
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
    parse_grant(text).map(|(grant, ttl_s)| GrantArg { grant, ttl_s })
}

fn env_arg(text: &str) -> Result<(String, String), String> {
    parse_env_assignment(text)
}

/// What the command line asks for: `Ok(None)` when help or the version was printed.
pub fn parse(args: Vec<OsString>) -> Result<Option<Cli>> {
    match Cli::try_parse_from(args) {
        Ok(cli) => Ok(Some(cli)),
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp
            | clap::error::ErrorKind::DisplayVersion
            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                let _ = e.print();
                Ok(None)
            }
            _ => Err(Failure::usage(usage_line(&e))),
        },
    }
}

/// clap's message as one line, with where to look next.
fn usage_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    // The message is the first paragraph; usage and tips follow after a blank line.
    let message: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    format!("{message}; see `assent --help`")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Exit;

    fn parse_words(line: &str) -> Result<Option<Cli>> {
        parse(
            std::iter::once("assent")
                .chain(line.split_whitespace())
                .map(OsString::from)
                .collect(),
        )
    }

    fn run(line: &str) -> RunArgs {
        match parse_words(line) {
            Ok(Some(Cli {
                command: Command::Run(args),
            })) => args,
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
        let help = Cli::command().render_long_help().to_string();
        for needle in ["64", "75", "77", "78", "retryable", "denied"] {
            assert!(help.contains(needle), "{needle}");
        }
        Cli::command().debug_assert();
    }

    #[test]
    fn other_subcommands() {
        assert!(matches!(
            parse_words("keygen --name bot --force"),
            Ok(Some(Cli { command: Command::Keygen { name: Some(ref n), force: true } })) if n == "bot"
        ));
        assert!(matches!(
            parse_words("grants --json"),
            Ok(Some(Cli {
                command: Command::Grants { json: true }
            }))
        ));
        assert!(matches!(
            parse_words("status"),
            Ok(Some(Cli {
                command: Command::Status
            }))
        ));
    }
}
