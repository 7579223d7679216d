//! `assent-console`: the approver's terminal console, and its scripted commands.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use assent_console::config::{self, ConsoleToml, DEFAULT_LISTEN, Dirs, Fatal};
use assent_console::{scripted, tui};
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
struct Cli {
    /// Connect to this relay (ws:// or wss://) instead of hosting one.
    #[arg(long, global = true, value_name = "URL")]
    relay: Option<String>,
    /// Where the hosted relay listens.
    #[arg(long, global = true, value_name = "ADDR", conflicts_with = "relay")]
    listen: Option<String>,
    /// The approver key (default $XDG_CONFIG_HOME/assent/approver.key).
    #[arg(long, global = true, value_name = "PATH")]
    key: Option<PathBuf>,
    /// Approver name put in decisions; must match elevator.toml (default: console.toml
    /// `name`, else your user name).
    #[arg(long, global = true)]
    name: Option<String>,
    /// No desktop notifications (the terminal bell still rings).
    #[arg(long)]
    no_notify: bool,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Make an approver key and print the [[approver]] block for elevator.toml.
    Keygen {
        /// Replace an existing key.
        #[arg(long)]
        force: bool,
    },
    /// Print the pending requests, one per line.
    List,
    /// Approve a pending request (ID or a unique prefix of it).
    Approve {
        id: String,
        /// once, timed:DURATION (e.g. timed:15m), or always.
        #[arg(long, default_value = "once")]
        grant: String,
    },
    /// Deny a pending request.
    Deny {
        id: String,
        /// Why, shown to the agent.
        #[arg(long)]
        note: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(fatal) => {
            eprintln!("assent-console: {}", fatal.message);
            ExitCode::from(u8::try_from(fatal.code).unwrap_or(1))
        }
    }
}

fn run(cli: Cli) -> Result<(), Fatal> {
    let dirs = Dirs::from_env()?;
    let toml = ConsoleToml::load(&dirs.console_toml())?;
    let name = cli
        .name
        .clone()
        .or_else(|| toml.name.clone())
        .unwrap_or_else(config::os_user_name);
    let key_path = cli.key.clone().unwrap_or_else(|| dirs.key());

    if let Some(Sub::Keygen { force }) = &cli.command {
        print!(
            "{}",
            config::keygen(&key_path, &name, *force, Some(&dirs.console_toml()))?
        );
        return Ok(());
    }

    let key = config::load_key(&key_path)?;
    let relay = cli.relay.clone().or_else(|| toml.relay.clone());
    let listen = cli
        .listen
        .clone()
        .or_else(|| toml.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Fatal::other(format!("cannot start the async runtime: {e}")))?;

    let common = scripted::Common {
        url: relay.clone().unwrap_or_else(|| format!("ws://{listen}")),
        key: std::sync::Arc::new(key),
        name,
        log: assent_console::log::DecisionLog::new(dirs.decision_log()),
        once_window_s: toml
            .once_window_s
            .unwrap_or(assent_console::app::ONCE_WINDOW_S),
    };
    let result = match cli.command {
        None => {
            let listen: Option<SocketAddr> = match relay {
                Some(_) => None,
                None => Some(listen.parse().map_err(|_| {
                    Fatal::config(format!(
                        "--listen {listen}: expected an address like 127.0.0.1:7447"
                    ))
                })?),
            };
            let notify = !cli.no_notify && toml.notify.unwrap_or(true);
            runtime.block_on(tui::run(common, listen, notify))
        }
        Some(Sub::List) => runtime.block_on(scripted::list(&common)),
        Some(Sub::Approve { id, grant }) => {
            let (grant, ttl) = scripted::parse_grant(&grant)?;
            runtime.block_on(scripted::approve(&common, &id, grant, ttl))
        }
        Some(Sub::Deny { id, note }) => runtime.block_on(scripted::deny(&common, &id, note)),
        Some(Sub::Keygen { .. }) => unreachable!("handled above"),
    };
    // Do not wait for stray tasks (a relay connection in backoff) at exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}
