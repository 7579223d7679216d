//! `assent-relay`: the standalone relay for shims and consoles on several hosts.
#![forbid(unsafe_code)]

mod manual;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use assent_cli_manual::GenerateFlag;
use assent_relay::{RelayConfig, TlsFiles};
use clap::Parser;

/// Exit status for a bad or unreadable configuration (sysexits EX_CONFIG).
const EXIT_CONFIG: u8 = 78;
/// Exit status for a usage error (sysexits EX_USAGE).
const EXIT_USAGE: u8 = 64;
/// Exit status when the relay cannot run (address in use, …) (sysexits EX_UNAVAILABLE).
const EXIT_UNAVAILABLE: u8 = 69;

/// Every status the relay exits with, and what it means (for `--help` and the man page).
const EXIT_STATUSES: [(u8, &str); 4] = [
    (
        0,
        "Stopped by SIGINT or SIGTERM. (SIGHUP reloads the config and the certificate.)",
    ),
    (
        EXIT_USAGE,
        "Usage error, or plain ws:// off loopback without --insecure-listen.",
    ),
    (
        EXIT_UNAVAILABLE,
        "Cannot listen (address in use or not this host's), or cannot start.",
    ),
    (
        EXIT_CONFIG,
        "Bad configuration: the --config file, or the TLS certificate or key.",
    ),
];

/// What `--help` says after the options: the exit statuses, from the man page's table.
fn after_help() -> String {
    let mut text = String::from("Exit status:\n");
    for (code, meaning) in EXIT_STATUSES {
        text.push_str(&format!("  {code:<4} {meaning}\n"));
    }
    text
}

/// WebSocket relay between agents' `assent` shims and approvers' consoles.
///
/// It carries signed requests to every logged-in approver and signed decisions back to the
/// waiting shim. It holds no secrets and authorises nothing: the elevator checks every
/// signature again. Plain ws:// is served only on loopback unless --insecure-listen is
/// given; use --tls-cert and --tls-key for wss:// across hosts.
///
/// On start it prints one line to stdout: `assent-relay listening on ws://ADDR`. SIGHUP
/// reloads the --config file and the TLS certificate and key, keeping pending requests,
/// decisions, statuses and connections; if either is unusable, the old ones stay in force.
#[derive(Parser, Debug)]
#[command(name = "assent-relay", version, after_help = after_help())]
struct Cli {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = assent_relay::DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// Relay config (TOML): [[approver]] name/key, [agents] policy, [[agent]], [limits].
    /// Without one: any agent key on loopback, and no approver can log in.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// PEM certificate chain for wss://.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key for wss://.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Allow plain ws:// on an address that is not loopback (traffic is readable and
    /// connections can be cut by anyone on the path; signatures still protect decisions).
    #[arg(long)]
    insecure_listen: bool,

    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(flatten)]
    generate: GenerateFlag,
}

/// Write to stdout, ignoring failure: a reader that went away (`| head`, a supervisor that
/// closed the pipe) must neither stop a running relay nor panic as `print!` would.
fn print_quietly(text: impl std::fmt::Display) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{text}").and_then(|()| out.flush());
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("assent-relay: {message}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Some(kind) = cli.generate.kind {
        print_quietly(manual::generate(kind));
        return ExitCode::SUCCESS;
    }
    init_logging(cli.verbose);

    let mut config = match &cli.config {
        Some(path) => match RelayConfig::load(path) {
            Ok(config) => config,
            Err(e) => return fail(EXIT_CONFIG, e),
        },
        None => RelayConfig::default(),
    };
    config.insecure_listen = cli.insecure_listen;
    let tls = match (cli.tls_cert, cli.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
    };
    if tls.is_none() && !cli.listen.ip().is_loopback() && !cli.insecure_listen {
        return fail(
            EXIT_USAGE,
            format!(
                "refusing plain ws:// on {}, which is not loopback; give --tls-cert and --tls-key, or --insecure-listen",
                cli.listen
            ),
        );
    }
    raise_fd_limit();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(EXIT_UNAVAILABLE, format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(serve(config, cli.config, cli.listen, tls))
}

async fn serve(
    config: RelayConfig,
    config_file: Option<PathBuf>,
    listen: SocketAddr,
    tls: Option<TlsFiles>,
) -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};
    // Before anything is announced, so that no signal finds the default action (which for
    // SIGHUP is to die).
    let signals = signal(SignalKind::terminate()).and_then(|term| {
        let hangup = signal(SignalKind::hangup())?;
        Ok((term, hangup))
    });
    let (mut term, mut hangup) = match signals {
        Ok(signals) => signals,
        Err(e) => return fail(EXIT_UNAVAILABLE, format!("cannot handle signals: {e}")),
    };
    let insecure_listen = config.insecure_listen;
    let tls_given = tls.is_some();
    let relay = match assent_relay::start(config, listen, tls.clone()).await {
        Ok(relay) => relay,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput && tls_given => {
            return fail(EXIT_CONFIG, format!("TLS: {e}"));
        }
        Err(e) => return fail(EXIT_UNAVAILABLE, e),
    };
    // The line scripts wait for.
    print_quietly(format_args!("assent-relay listening on {}\n", relay.url()));

    let stop = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break "SIGINT",
            _ = term.recv() => break "SIGTERM",
            _ = hangup.recv() => reload(&relay, config_file.as_deref(), insecure_listen, tls.as_ref()),
        }
    };
    tracing::info!("{stop}; shutting down");
    relay.shutdown().await;
    ExitCode::SUCCESS
}

/// SIGHUP: read the config file and the certificate again and put them in force, keeping
/// everything the relay holds; if either is unusable, say why and keep the old ones.
fn reload(
    relay: &assent_relay::RelayHandle,
    config_file: Option<&Path>,
    insecure_listen: bool,
    tls: Option<&TlsFiles>,
) {
    let loaded = match config_file {
        Some(path) => RelayConfig::load(path).map_err(|e| e.to_string()),
        None => Ok(RelayConfig::default()),
    };
    let result = loaded.and_then(|mut config| {
        config.insecure_listen = insecure_listen;
        relay.reload(config, tls)
    });
    match result {
        Ok(()) => tracing::info!(
            "SIGHUP: reloaded the configuration{}",
            if tls.is_some() {
                " and the certificate"
            } else {
                ""
            }
        ),
        Err(e) => tracing::error!(
            "SIGHUP: reload failed, keeping the previous configuration and certificate: {e}"
        ),
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colour only for a person at a terminal; journald and log files get plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Each connection is a file descriptor; allow as many as the hard limit permits.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}
