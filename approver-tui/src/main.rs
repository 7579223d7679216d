//! `assent-console`: the approver's terminal console, and its scripted commands.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use assent_console::cli::{Cli, Sub};
use assent_console::config::{self, ConsoleToml, DEFAULT_LISTEN, Dirs, ELEVATOR_CONFIG, Fatal};
use assent_console::{manual, out, scripted, setup, tui};
use clap::Parser as _;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                _ => {
                    eprintln!(
                        "assent-console: {}",
                        assent_cli_manual::usage_line(&e, "assent-console")
                    );
                    ExitCode::from(64)
                }
            };
        }
    };
    if let Some(kind) = cli.generate.kind {
        // As the shim does: a reader that went away (`| head`) is not an error.
        out::print(manual::generate(kind));
        return ExitCode::SUCCESS;
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(fatal) => {
            eprintln!("assent-console: {}", fatal.message());
            ExitCode::from(u8::try_from(fatal.code()).unwrap_or(1))
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

    let elevator = cli
        .elevator_config
        .clone()
        .unwrap_or_else(|| PathBuf::from(ELEVATOR_CONFIG));
    let console_toml = dirs.console_toml();
    let keygen = |force: bool, trust: bool| setup::Keygen {
        key: &key_path,
        name: &name,
        force,
        console_toml: Some(&console_toml),
        trust: trust.then_some(elevator.as_path()),
    };

    match &cli.command {
        Some(Sub::Keygen { force, trust }) => {
            out::print(setup::keygen(&keygen(*force, *trust || cli.trust))?);
            return Ok(());
        }
        None => setup::before_console(
            &keygen(false, cli.trust),
            std::io::stdin().is_terminal(),
            &mut std::io::stdin().lock(),
            &mut std::io::stdout(),
        )?,
        Some(_) if cli.trust => {
            return Err(Fatal::usage(
                "--trust goes with keygen or the console itself, not with list, approve or deny",
            ));
        }
        Some(_) => {}
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

    let console = assent_console::console_id::load_or_create(&dirs.console_id())?;
    let common = scripted::Common {
        url: relay.clone().unwrap_or_else(|| format!("ws://{listen}")),
        key: std::sync::Arc::new(key),
        name,
        console,
        log: assent_console::log::DecisionLog::new(dirs.decision_log()),
        shown: assent_console::memory::ShownFile::new(dirs.shown_requests()),
        elevator_config: elevator.clone(),
        relay_ca: toml.relay_ca.clone(),
        known_agents: toml.known_agents(&console_toml)?,
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
        Some(Sub::Approve { reference, grant }) => {
            let (grant, ttl) = assent_common::grant::parse(&grant)
                .map_err(|e| Fatal::usage(format!("--grant: {e}")))?;
            runtime.block_on(scripted::approve(&common, &reference, grant, ttl))
        }
        Some(Sub::Deny { reference, note }) => {
            runtime.block_on(scripted::deny(&common, &reference, note))
        }
        Some(Sub::Keygen { .. }) => unreachable!("handled above"),
    };
    // Do not wait for stray tasks (a relay connection in backoff) at exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}
