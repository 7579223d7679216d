//! `assent keygen` and `assent grants`.

use std::path::Path;
use std::process::ExitCode;

use assent_protocol::{Envelope, PrivateKey, Signed, Status};
use serde_json::json;

use crate::cache::{self, CachedGrant, GrantCache, Unusable};
use crate::config::{ELEVATOR_CONFIG, ElevatorFile, ElevatorSettings};
use crate::failure::{Result, say};
use crate::keys;
use crate::output::Out;
use crate::run::{Setup, remaining};
use crate::status::{RELAY_PATIENCE, quote};
use crate::statuses::StatusStore;
use crate::wait;
use assent_common::{clock, duration};

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
    let mut out = Out::stdout();
    outln!(out, "{}", made.public_line);
    outln!(out, "fingerprint: {}", made.key.public().fingerprint());
    outln!(
        out,
        "wrote {} (private, 0600) and {}",
        setup.paths.key().display(),
        setup.paths.public_key().display()
    );
    let elevator_config = Path::new(ELEVATOR_CONFIG);
    let listed = ElevatorFile::read(elevator_config).requester_run_as(&setup.requester.user);
    outln!(out);
    out.text(next_steps(
        &setup.requester.user,
        &setup.config.name,
        &made.public_line,
        listed.as_deref(),
    ));
    Ok(ExitCode::SUCCESS)
}

/// What the agent's user does after `assent keygen`: get listed as a `[[requester]]` (unless
/// `already` says it is, with that `run_as`), maybe get the key allowed on the relay, check,
/// try.
pub fn next_steps(
    user: &str,
    agent: &str,
    public_line: &str,
    already: Option<&[String]>,
) -> String {
    let mut text = String::from("Next:\n");
    match already {
        Some(run_as) => text.push_str(&format!(
            "  1. {user} is already a [[requester]] in {ELEVATOR_CONFIG} (run_as: {}).\n",
            run_as.join(", ")
        )),
        None => text.push_str(&format!(
            "  1. An approver lets {user} ask: as root, add to {ELEVATOR_CONFIG}\n\
             \x20      [[requester]]\n\
             \x20      user = {}\n\
             \x20      run_as = [\"root\"]\n",
            quote(user)
        )),
    }
    text.push_str(&format!(
        "  2. Only if the relay admits listed agents alone ([agents] policy = \"allowlist\"),\n\
         \x20    add to its config:\n\
         \x20      [[agent]]\n\
         \x20      name = {}\n\
         \x20      key = {}\n\
         \x20 3. Check the set-up:  assent status\n\
         \x20 4. Try it:            assent run --reason \"first try\" -- id -u\n",
        quote(agent),
        quote(public_line)
    ));
    text
}

/// Every cached grant with its host and its state, as the approver's console would see it:
/// live, waiting for a fresh status of the console that approved it, revoked, expired, or
/// unusable here (its program changed, or the elevator no longer lists its approver). The
/// relay is asked for the latest statuses first; when it cannot answer, the states come from
/// the statuses kept, and a line on stderr says so.
pub fn grants(as_json: bool) -> Result<ExitCode> {
    list_grants(as_json, false)
}

/// `sudo -l`: the caller's live grants only, the commands that run now without asking.
pub fn live_grants() -> Result<ExitCode> {
    list_grants(false, true)
}

fn list_grants(as_json: bool, live_only: bool) -> Result<ExitCode> {
    let setup = Setup::load()?;
    let key = keys::load(&setup.paths.key())?;
    let cache = GrantCache::new(setup.paths.grants());
    let kept = StatusStore::new(setup.paths.statuses());
    let entries = cache.entries(&key.public());
    let elevator_file = ElevatorFile::read(Path::new(ELEVATOR_CONFIG));
    let settings = ElevatorSettings::from_file(&elevator_file, Path::new(ELEVATOR_CONFIG));
    let approvers = elevator_file.approvers();
    let now = clock::now();
    let open = |g: &CachedGrant| cache::check_window(&g.decision.payload, now).is_ok();
    let served = if entries.iter().any(|(_, g)| g.as_ref().is_ok_and(open)) {
        relay_statuses(&setup, &key)
    } else {
        None
    };
    let mut out = Out::stdout();
    if live_only {
        outln!(
            out,
            "{} on {} may run these without asking, until each ends (every other command is asked for):",
            setup.requester.user,
            setup.requester.host
        );
    } else if entries.is_empty() && !as_json {
        outln!(out, "no cached grants in {}", cache.dir().display());
    }
    let mut shown = 0;
    for (path, entry) in entries {
        if out.closed() {
            break;
        }
        let grant = match entry {
            Ok(grant) => grant,
            Err(_) if live_only => continue,
            Err(why) => {
                if as_json {
                    outln!(out, "{}", json!({"file": path, "error": why}));
                } else {
                    outln!(out, "{}: unusable: {why}\n", path.display());
                }
                continue;
            }
        };
        let status = match &served {
            Some(served) => kept.update(&grant.decision, served, now),
            None => kept.kept(&grant.decision),
        };
        let judged = cache::check_grant(
            &grant,
            status,
            approvers.as_deref(),
            now,
            settings.status_max_age_s,
        );
        if live_only && judged.is_err() {
            continue;
        }
        shown += 1;
        let r = &grant.request.payload;
        let d = &grant.decision.payload;
        let (state, why) = match &judged {
            Ok(_) => ("live", None),
            Err(why) => (why.state(), Some(why.to_string())),
        };
        if as_json {
            outln!(
                out,
                "{}",
                json!({
                    "file": path,
                    "state": state,
                    "why": why,
                    "cmd_sha256": d.cmd_sha256,
                    "program": r.program,
                    "program_sha256": r.program_sha256,
                    "argv": r.argv,
                    "cwd": r.cwd,
                    "env": r.env,
                    "run_as": r.run_as,
                    "host": r.host,
                    "host_id": r.host_id,
                    "grant": d.grant,
                    "approver": d.approver,
                    "approver_key": grant.decision.signer.fingerprint().as_str(),
                    "console": d.console,
                    "decision_sha256": grant.decision.sha256,
                    "not_before": d.not_before,
                    "not_after": d.not_after,
                    "remaining_s": d.not_after.map(|end| end.saturating_sub(now)),
                })
            );
        } else {
            outln!(out, "{}", r.argv.join(" "));
            outln!(out, "  program  {}", r.program);
            outln!(out, "  host     {} (host id {})", r.host, r.host_id.short());
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
            outln!(out, "  state    {}", state_line(&judged, now));
            outln!(out);
        }
    }
    if live_only && shown == 0 {
        outln!(out, "  (none)");
    }
    Ok(ExitCode::SUCCESS)
}

/// The relay's statuses, or none with a line saying the states come from the kept ones.
fn relay_statuses(setup: &Setup, key: &PrivateKey) -> Option<Vec<Envelope>> {
    let asked = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the network runtime: {e}"))
        .and_then(|runtime| {
            runtime.block_on(wait::served_statuses(
                &setup.config.relay,
                key,
                &setup.config.connect_options(),
                RELAY_PATIENCE,
            ))
        });
    asked
        .inspect_err(|why| {
            say(format_args!(
                "cannot ask the relay {} for statuses ({why}); states are from the statuses this shim kept",
                setup.config.relay
            ));
        })
        .ok()
}

/// The `state` line of `assent grants`.
fn state_line(judged: &std::result::Result<Signed<Status>, Unusable>, now: u64) -> String {
    match judged {
        Ok(status) => format!(
            "live (the status of its console is {} old)",
            duration::format(now.saturating_sub(status.payload.issued_at))
        ),
        Err(why) if why.is_waiting() => format!("waiting for a fresh status: {why}"),
        Err(Unusable::Revoked { by }) => format!("revoked by {by}"),
        Err(why @ Unusable::Expired { .. }) => why.to_string(),
        Err(why) => format!("unusable: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_steps_print_the_requester_block_for_this_user() {
        let text = next_steps(
            "assent-agent",
            "openclaw",
            "ssh-ed25519 AAAA openclaw@host",
            None,
        );
        assert!(text.starts_with("Next:\n"), "{text}");
        assert!(
            text.contains(
                "       [[requester]]\n       user = \"assent-agent\"\n       run_as = [\"root\"]\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "       [[agent]]\n       name = \"openclaw\"\n       key = \"ssh-ed25519 AAAA openclaw@host\"\n"
            ),
            "{text}"
        );
        assert!(text.contains("assent status"), "{text}");
        assert!(text.contains("assent run --reason"), "{text}");
        assert!(text.contains("-- id -u"), "{text}");
        // The blocks are TOML that parses back to what was meant.
        let blocks: String = text
            .lines()
            .filter(|l| l.starts_with("       "))
            .map(|l| format!("{}\n", l.trim()))
            .collect();
        let doc: toml::Table = toml::from_str(&blocks).unwrap();
        assert_eq!(doc["requester"][0]["user"].as_str(), Some("assent-agent"));
        assert_eq!(doc["agent"][0]["name"].as_str(), Some("openclaw"));
    }

    #[test]
    fn the_state_line_names_each_state_and_why() {
        let stale = Unusable::StaleStatus {
            approver: "alice".into(),
            age_s: 300,
            max_age_s: 120,
        };
        assert_eq!(
            state_line(&Err(stale), 0),
            "waiting for a fresh status: status is stale: the latest from the console of alice that approved it is 5m old (at most 2m allowed)"
        );
        let revoked = Unusable::Revoked { by: "alice".into() };
        assert_eq!(state_line(&Err(revoked), 0), "revoked by alice");
        assert_eq!(
            state_line(&Err(Unusable::Expired { ago_s: 90 }), 0),
            "expired 1m30s ago"
        );
        let changed = Unusable::ProgramChanged {
            program: "/usr/bin/x".into(),
        };
        assert_eq!(
            state_line(&Err(changed), 0),
            "unusable: program changed since it was approved (/usr/bin/x)"
        );
    }

    #[test]
    fn next_steps_skip_the_block_when_already_listed() {
        let run_as = ["root".to_owned(), "postgres".to_owned()];
        let text = next_steps(
            "assent-agent",
            "openclaw",
            "ssh-ed25519 AAAA",
            Some(&run_as),
        );
        assert!(
            text.contains("assent-agent is already a [[requester]]"),
            "{text}"
        );
        assert!(text.contains("(run_as: root, postgres)"), "{text}");
        assert!(!text.contains("user = "), "{text}");
        assert!(text.contains("[[agent]]"), "{text}");
    }
}
