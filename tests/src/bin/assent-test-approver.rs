//! `assent-test-approver`: a scripted approver for end-to-end tests (never shipped).
//!
//! Logs in to a relay as an approver, decides every pending request the same way, and prints
//! each decision as one JSON line on stdout. With `--revoke-file`, the file's lines (decision
//! SHA-256s) are published as revocations whenever it changes; a fresh status is published
//! at start and every `--status-every`.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use assent_common::{duration, grant};
use assent_protocol::{PrivateKey, Sha256Digest};
use assent_relay_client::ConnectOptions;
use assent_tests::approver::{Choice, ScriptedApprover};
use clap::Parser;

/// Scripted approver for tests: approves (or denies) every request it sees.
///
/// Exit status: 0 after --count decisions, 64 usage, 75 relay unreachable, 78 unusable key.
#[derive(Parser, Debug)]
#[command(name = "assent-test-approver")]
struct Cli {
    /// Relay URL (ws://… or wss://…).
    #[arg(long, value_name = "URL")]
    relay: String,
    /// Approver private key (OpenSSH, unencrypted).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Approver name, as listed in the relay's and the elevator's config.
    #[arg(long, value_name = "NAME")]
    name: String,
    /// Deny every request with this note instead of approving.
    #[arg(long, value_name = "NOTE")]
    deny: Option<String>,
    /// Grant type to give: once, timed:DURATION or always (default: what was asked for).
    #[arg(long, value_name = "GRANT", value_parser = grant::parse)]
    grant: Option<(assent_protocol::Grant, Option<u64>)>,
    /// Exit after this many decisions.
    #[arg(long, value_name = "N")]
    count: Option<usize>,
    /// File of decision SHA-256s (one per line) to publish as revoked when it changes.
    #[arg(long, value_name = "FILE")]
    revoke_file: Option<PathBuf>,
    /// Publish a fresh status this often.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration::parse)]
    status_every: u64,
    /// Keep trying to (re)connect for this long before giving up.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration::parse)]
    reconnect_for: u64,
    /// Extra PEM trust root for wss:// (repeatable).
    #[arg(long, value_name = "FILE")]
    ca: Vec<PathBuf>,
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("assent-test-approver: {message}");
    ExitCode::from(code)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(64);
        }
    };
    let key = match std::fs::read_to_string(&cli.key)
        .map_err(|e| e.to_string())
        .and_then(|text| PrivateKey::from_openssh(&text).map_err(|e| e.to_string()))
    {
        Ok(key) => key,
        Err(e) => return fail(78, format!("key {}: {e}", cli.key.display())),
    };
    let mut choice = match &cli.deny {
        Some(note) => Choice::deny(note),
        None => Choice::approve(),
    };
    if let Some((grant, ttl)) = cli.grant {
        choice = choice.grant(grant);
        choice.ttl_s = ttl;
    }
    let mut options = ConnectOptions::from_env();
    options.extra_roots.extend(cli.ca.iter().cloned());
    let patience = Duration::from_secs(cli.reconnect_for);

    let mut approver = match connect(&cli, key, options, patience).await {
        Ok(a) => a,
        Err(e) => return fail(75, e),
    };
    let mut revoked = read_revocations(cli.revoke_file.as_deref());
    let mut publish = true;
    let mut made = 0;
    let mut status_tick = tokio::time::interval(Duration::from_secs(cli.status_every));
    let mut revoke_poll = tokio::time::interval(Duration::from_millis(200));

    loop {
        if publish {
            match approver.publish_status(&revoked).await {
                Ok(_) => eprintln!(
                    "assent-test-approver: published status revoking {}",
                    revoked.len()
                ),
                Err(e) => eprintln!("assent-test-approver: status not published: {e}"),
            }
            publish = false;
        }
        if cli.count.is_some_and(|n| made >= n) {
            return ExitCode::SUCCESS;
        }
        tokio::select! {
            next = approver.next_request() => match next {
                Ok((request, first_seen)) => {
                    match approver.decide(request, first_seen, &choice).await {
                        Ok(decided) => {
                            if !decided.resent {
                                made += 1;
                            }
                            let mut out = std::io::stdout().lock();
                            let _ = writeln!(out, "{}", decided.to_json());
                            let _ = out.flush();
                        }
                        Err(e) => eprintln!("assent-test-approver: {e}"),
                    }
                }
                Err(e) => {
                    eprintln!("assent-test-approver: {e}; reconnecting");
                    if let Err(e) = approver.reconnect(patience).await {
                        return fail(75, e);
                    }
                    publish = true;
                }
            },
            _ = status_tick.tick() => publish = true,
            _ = revoke_poll.tick(), if cli.revoke_file.is_some() => {
                let now = read_revocations(cli.revoke_file.as_deref());
                if now != revoked {
                    revoked = now;
                    publish = true;
                }
            }
        }
    }
}

async fn connect(
    cli: &Cli,
    key: PrivateKey,
    options: ConnectOptions,
    patience: Duration,
) -> Result<ScriptedApprover, assent_relay_client::ClientError> {
    let give_up = tokio::time::Instant::now() + patience;
    let seed = key.to_openssh();
    loop {
        let key = PrivateKey::from_openssh(&seed).expect("the key was just parsed");
        match ScriptedApprover::connect_with(&cli.relay, key, &cli.name, options.clone()).await {
            Ok(a) => return Ok(a),
            Err(e) if tokio::time::Instant::now() >= give_up => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Decision SHA-256s, one per line; blank lines and `#` comments ignored. A missing file
/// revokes nothing.
fn read_revocations(path: Option<&Path>) -> Vec<Sha256Digest> {
    let Some(path) = path else {
        return Vec::new();
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let digest = Sha256Digest::from_hex(l);
            if digest.is_none() {
                eprintln!(
                    "assent-test-approver: {}: ignoring {l:?}: not 64 lowercase hex digits",
                    path.display()
                );
            }
            digest
        })
        .collect()
}
