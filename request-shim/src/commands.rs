//! `assent keygen`, `assent grants` and `assent status`.

use std::process::ExitCode;
use std::time::Duration;

use assent_protocol::Role;
use serde_json::json;

use crate::cache::GrantCache;
use crate::config::{ElevatorSettings, RelaySource, SettingsSource};
use crate::elevate;
use crate::failure::{Exit, Result};
use crate::keys;
use crate::output::Out;
use crate::run::{Setup, remaining};
use crate::wait;

pub fn keygen(name: Option<String>, force: bool) -> Result<ExitCode> {
    let setup = Setup::load()?;
    let name = name.unwrap_or_else(|| setup.config.name.clone());
    let comment = format!("{name}@{}", setup.requester.host);
    let made = keys::generate(
        &setup.paths.key(),
        &setup.paths.public_key(),
        &comment,
        force,
    )?;
    let fingerprint = made.key.public().fingerprint();
    let mut out = Out::stdout();
    outln!(out, "{}", made.public_line);
    outln!(out, "fingerprint: {fingerprint}");
    outln!(
        out,
        "wrote {} (private, 0600) and {}",
        setup.paths.key().display(),
        setup.paths.public_key().display()
    );
    outln!(
        out,
        "next: approvers will see requests from agent {:?} with key {fingerprint}.",
        setup.config.name
    );
    outln!(
        out,
        "      A relay with `[agents] policy = \"allowlist\"` needs this entry in its config:"
    );
    outln!(out, "        [[agent]]");
    outln!(out, "        name = {:?}", setup.config.name);
    outln!(out, "        key = {:?}", made.public_line);
    outln!(out, "      Then check the set-up with `assent status`.");
    Ok(ExitCode::SUCCESS)
}

pub fn grants(as_json: bool) -> Result<ExitCode> {
    let setup = Setup::load()?;
    let key = keys::load(&setup.paths.key())?;
    let cache = GrantCache::new(setup.paths.grants());
    let entries = cache.entries(&key.public());
    let now = wait::now();
    let mut out = Out::stdout();
    if entries.is_empty() && !as_json {
        outln!(out, "no cached grants in {}", cache.dir().display());
    }
    for (path, entry) in entries {
        if out.closed() {
            break;
        }
        let grant = match entry {
            Ok(grant) => grant,
            Err(why) => {
                if as_json {
                    outln!(out, "{}", json!({"file": path, "error": why}));
                } else {
                    outln!(out, "{}: unusable: {why}\n", path.display());
                }
                continue;
            }
        };
        let r = &grant.request.payload;
        let d = &grant.decision.payload;
        if as_json {
            outln!(
                out,
                "{}",
                json!({
                    "file": path,
                    "cmd_sha256": d.cmd_sha256,
                    "program": r.program,
                    "program_sha256": r.program_sha256,
                    "argv": r.argv,
                    "cwd": r.cwd,
                    "env": r.env,
                    "run_as": r.run_as,
                    "host": r.host,
                    "grant": d.grant,
                    "approver": d.approver,
                    "approver_key": grant.decision.signer.fingerprint().as_str(),
                    "decision_sha256": grant.decision.sha256,
                    "not_before": d.not_before,
                    "not_after": d.not_after,
                    "remaining_s": d.not_after.map(|end| end.saturating_sub(now)),
                })
            );
        } else {
            outln!(out, "{}", r.argv.join(" "));
            outln!(out, "  program  {}", r.program);
            outln!(out, "  run as   {}, in {}", r.run_as, r.cwd);
            if !r.env.is_empty() {
                let env: Vec<String> = r.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                outln!(out, "  env      {}", env.join(" "));
            }
            outln!(
                out,
                "  grant    {} by {} ({}), {}",
                d.grant,
                d.approver,
                grant.decision.signer.fingerprint(),
                remaining(d.not_after, now)
            );
            outln!(out);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn status() -> Result<ExitCode> {
    let setup = Setup::load()?;
    let config = &setup.config;
    let mut worst: Option<Exit> = None;
    let mut problem = |exit: Exit| {
        if worst.is_none() {
            worst = Some(exit);
        }
    };

    let mut out = Out::stdout();
    let state = if config.file_exists {
        ""
    } else {
        " (absent: all defaults)"
    };
    outln!(out, "config     {}{state}", config.file.display());
    outln!(
        out,
        "agent      {} (as {} uid {} on {})",
        config.name,
        setup.requester.user,
        setup.requester.uid,
        setup.requester.host
    );

    let key = match keys::load(&setup.paths.key()) {
        Ok(key) => {
            outln!(
                out,
                "key        {} {}",
                setup.paths.key().display(),
                key.public().fingerprint()
            );
            Some(key)
        }
        Err(e) => {
            outln!(out, "key        {e}");
            problem(e.exit);
            None
        }
    };

    let source = match config.relay_source {
        RelaySource::Default => "default",
        RelaySource::File => "from agent.toml",
        RelaySource::Env => "from ASSENT_RELAY",
        RelaySource::Flag => "from --relay",
    };
    let reach = match &key {
        None => "not tried without a key".to_owned(),
        Some(key) => match relay_reachable(&config.relay, key) {
            Ok(()) => "reachable, logged in".to_owned(),
            Err(why) => {
                problem(Exit::Retry);
                format!("NOT reachable: {why}")
            }
        },
    };
    outln!(out, "relay      {} ({source}): {reach}", config.relay);

    match elevate::locate(
        config.elevator.as_deref(),
        std::env::var_os("PATH").as_deref(),
    ) {
        Ok(path) => {
            let setuid = if elevate::is_setuid_root(&path) {
                "setuid root"
            } else {
                problem(Exit::Config);
                "NOT setuid root: it will refuse every request"
            };
            outln!(out, "elevator   {} ({setuid})", path.display());
        }
        Err(e) => {
            outln!(out, "elevator   {e}");
            problem(e.exit);
        }
    }

    let settings = ElevatorSettings::read();
    let from = match &settings.source {
        SettingsSource::File(path) => format!("from {}", path.display()),
        SettingsSource::Default(why) => format!("default; {why}"),
    };
    outln!(out, "secure     {} ({from})", settings.secure_path);
    if let Some(key) = &key {
        let cache = GrantCache::new(setup.paths.grants());
        let count = cache.entries(&key.public()).len();
        outln!(
            out,
            "grants     {count} cached in {}",
            cache.dir().display()
        );
    }
    Ok(worst.map_or(ExitCode::SUCCESS, ExitCode::from))
}

/// Connect and log in, then hang up.
fn relay_reachable(
    url: &str,
    key: &assent_protocol::PrivateKey,
) -> std::result::Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        match tokio::time::timeout(
            Duration::from_secs(5),
            assent_relay::client::Client::connect(url, key, Role::Agent),
        )
        .await
        {
            Err(_) => Err("no answer within 5s".to_owned()),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(client)) => {
                client.close().await;
                Ok(())
            }
        }
    })
}
