//! The command line, declared once: the binary parses it, and the man page and the shell
//! completions are generated from it (`--generate`), so they cannot drift from it.

use std::path::PathBuf;

use assent_cli_manual::GenerateFlag;
use clap::{Parser, Subcommand};

/// Review and decide what AI agents ask to run with another user's privileges.
///
/// Without a subcommand it opens the console, hosting the relay on 127.0.0.1:7447 (agents'
/// `assent run` connects there) unless --relay names a standalone relay.
///
/// Files: $XDG_CONFIG_HOME/assent/{approver.key,console.toml},
/// $XDG_STATE_HOME/assent/decisions.jsonl (decision log).
#[derive(Debug, Parser)]
#[command(name = "assent-console", version)]
pub struct Cli {
    /// Connect to this relay (ws:// or wss://) instead of hosting one.
    #[arg(long, global = true, value_name = "URL")]
    pub relay: Option<String>,
    /// Where the hosted relay listens.
    #[arg(long, global = true, value_name = "ADDR", conflicts_with = "relay")]
    pub listen: Option<String>,
    /// The approver key (default $XDG_CONFIG_HOME/assent/approver.key).
    #[arg(long, global = true, value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// Approver name put in decisions; must match elevator.toml (default: console.toml
    /// `name`, else your user name).
    #[arg(long, global = true)]
    pub name: Option<String>,
    /// No desktop notifications (the terminal bell still rings).
    #[arg(long)]
    pub no_notify: bool,
    /// Also list the approver key in this host's elevator.toml before starting (needs root);
    /// with no key yet, the first-run prompt makes one and lists it.
    #[arg(long)]
    pub trust: bool,
    /// For testing only: this host's elevator.toml (what --trust edits and the "will be
    /// refused" flags read).
    #[arg(long, global = true, hide = true, value_name = "PATH")]
    pub elevator_config: Option<PathBuf>,
    #[command(flatten)]
    pub generate: GenerateFlag,
    #[command(subcommand)]
    pub command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Make an approver key and print the [[approver]] block for elevator.toml.
    Keygen {
        /// Replace an existing key.
        #[arg(long)]
        force: bool,
        /// Also add the [[approver]] block to this host's elevator.toml (needs root). With a
        /// key already there (and no --force), lists that key instead of making a new one.
        #[arg(long)]
        trust: bool,
    },
    /// Print the pending requests, one per line, each with its reference (REF).
    List,
    /// Approve a pending request that `list` (or the console) showed you, by its REF.
    ///
    /// REF is the 12-digit reference `list` prints: the start of the SHA-256 of the signed
    /// request, so it names those exact bytes (more digits of the SHA-256 work too).
    Approve {
        #[arg(value_name = "REF")]
        reference: String,
        /// once, timed:DURATION (e.g. timed:15m), or always.
        #[arg(long, default_value = "once")]
        grant: String,
    },
    /// Deny a pending request, by its REF.
    Deny {
        #[arg(value_name = "REF")]
        reference: String,
        /// Why, shown to the agent.
        #[arg(long)]
        note: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use assent_cli_manual::Generate;
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn trust_is_accepted_before_and_after_keygen() {
        let cli = Cli::try_parse_from(["assent-console", "keygen", "--trust"]).unwrap();
        assert!(matches!(cli.command, Some(Sub::Keygen { trust: true, .. })));
        let cli = Cli::try_parse_from(["assent-console", "--trust"]).unwrap();
        assert!(cli.trust && cli.command.is_none());
        let cli = Cli::try_parse_from([
            "assent-console",
            "keygen",
            "--elevator-config",
            "/tmp/e.toml",
        ])
        .unwrap();
        assert_eq!(cli.elevator_config, Some(PathBuf::from("/tmp/e.toml")));
        assert!(Cli::try_parse_from(["assent-console", "list", "--trust"]).is_err());
    }

    #[test]
    fn the_generate_flag_is_taken() {
        let cli = Cli::try_parse_from(["assent-console", "--generate", "complete-zsh"]).unwrap();
        assert_eq!(cli.generate.kind, Some(Generate::CompleteZsh));
        assert!(Cli::try_parse_from(["assent-console", "--generate", "pdf"]).is_err());
    }
}
