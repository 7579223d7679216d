//! `assent run` (and the `sudo` entry): from what the agent typed to the elevator's exec.

use std::convert::Infallible;
use std::ffi::OsString;
use std::path::Path;

use assent_common::elevator_config::Approver;
use assent_protocol::{Grant, HostId, MAX_PAYLOAD_LEN, Payload as _, Request};
use assent_relay_client::CA_ENV;

use crate::cache::{self, CachedGrant, GrantCache};
use crate::config::{
    self, Config, ELEVATOR_CONFIG, ElevatorFile, ElevatorSettings, HOST_ID, Paths,
};
use crate::elevate;
use crate::failure::{Exit, Failure, Result, inform, say};
use crate::keys;
use crate::preflight;
use crate::program;
use crate::progress::Progress;
use crate::request::{self, Ask, Command, Requester};
use crate::statuses::StatusStore;
use crate::wait::{Approved, Wait};
use crate::workdir;
use assent_common::{clock, duration};

/// Everything `assent run` and `sudo` ask for, before any of it is looked up.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub run_as: String,
    pub reason: Option<String>,
    pub grant: Grant,
    pub ttl_s: Option<u64>,
    pub env: Vec<(String, String)>,
    pub timeout_s: Option<u64>,
    pub relay: Option<String>,
    pub command: Vec<OsString>,
    /// `sudo -n`: run on a usable cached grant, else exit 1; never ask a human.
    pub never_ask: bool,
}

fn check_user_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 256 || name.chars().any(|c| c.is_control() || c == '/') {
        return Err(Failure::usage(format!("{name:?} is not a user name")));
    }
    Ok(())
}

/// The shim's settings and identity, as every subcommand needs them.
pub struct Setup {
    pub paths: Paths,
    pub requester: Requester,
    pub config: Config,
}

impl Setup {
    pub fn load() -> Result<Setup> {
        let paths = Paths::from_env()?;
        let requester = Requester::current()?;
        let mut config = Config::load(
            &paths.agent_toml(),
            std::env::var("ASSENT_RELAY").ok(),
            &requester.user,
        )?;
        config.apply_env_ca(std::env::var(CA_ENV).ok())?;
        Ok(Setup {
            paths,
            requester,
            config,
        })
    }
}

/// Ask, wait, and exec the elevator. Returns only when nothing will run.
pub fn run(plan: RunPlan) -> Result<Infallible> {
    let Setup {
        paths,
        requester,
        mut config,
    } = Setup::load()?;
    if let Some(url) = &plan.relay {
        config.override_relay(url)?;
    }
    crate::failure::set_quiet(
        config.quiet || crate::failure::quiet_from_env(std::env::var_os("ASSENT_QUIET").as_deref()),
    );
    check_user_name(&plan.run_as)?;
    let key = keys::load(&paths.key())?;
    let host_id = config::read_host_id(Path::new(HOST_ID)).map_err(Failure::config)?;
    let elevator = elevate::locate(
        config.elevator.as_deref(),
        std::env::var_os("PATH").as_deref(),
    )?;
    let elevator_file = ElevatorFile::read(Path::new(ELEVATOR_CONFIG));
    let settings = ElevatorSettings::from_file(&elevator_file, Path::new(ELEVATOR_CONFIG));
    let approvers = elevator_file.approvers();

    let command = command(&plan.command, &plan.run_as, plan.env, &settings.secure_path)?;

    let timeout_s = plan.timeout_s.unwrap_or(config.timeout_s);
    let ask = Ask {
        agent: config.name.clone(),
        reason: plan.reason.unwrap_or_default(),
        grant: plan.grant,
        ttl_s: plan.ttl_s,
        timeout_s,
    };
    let payload = request::build(&requester, host_id, &command, &ask, clock::now());
    check_size(&payload)?;
    // What no approval can fix stops here, before anyone is asked.
    preflight::check_with(preflight::Ask::from(&payload), &elevator, &elevator_file)?;

    let cache = GrantCache::new(paths.grants());
    let kept = StatusStore::new(paths.statuses());
    let cached = match cached_grant(
        &cache,
        &kept,
        (&command, &requester, &host_id),
        &key,
        approvers.as_deref(),
        settings.status_max_age_s,
    ) {
        Cached::Ready(approved) => {
            return exec(&elevator, &approved, &command);
        }
        Cached::Check(grant) => Some(*grant),
        Cached::None => None,
    };
    if plan.never_ask {
        let approved = cached.and_then(|grant| {
            refresh_cached(grant, &config, &key, &kept, approvers.as_deref(), &settings)
        });
        return match approved {
            Some(approved) => exec(&elevator, &approved, &command),
            None => Err(Failure::new(
                Exit::ApprovalRequired,
                "approval required; run without -n to ask the approver",
            )),
        };
    }

    let approved = Fresh {
        config: &config,
        key: &key,
        payload: &payload,
        timeout_s,
        cached,
        cache: &cache,
        kept: &kept,
        status_max_age_s: settings.status_max_age_s,
        approvers,
    }
    .ask()?;
    exec(&elevator, &approved, &command)
}

/// A request must fit in a relay's frame, whatever the agent put in it.
fn check_size(payload: &Request) -> Result<()> {
    if payload.to_bytes().len() > MAX_PAYLOAD_LEN {
        return Err(Failure::usage(format!(
            "the request is larger than {} KiB; shorten the arguments or the environment",
            MAX_PAYLOAD_LEN / 1024
        )));
    }
    Ok(())
}

/// The command as the agent typed it, resolved: its program found on the secure path (or
/// from the working directory) and hashed, the working directory, the environment asked for.
fn command(
    typed: &[OsString],
    run_as: &str,
    env: Vec<(String, String)>,
    secure_path: &str,
) -> Result<Command> {
    let argv = request::utf8_argv(typed)?;
    let cwd = workdir::current()?;
    let program = program::resolve(&argv[0], Path::new(&cwd), secure_path)?;
    Ok(Command {
        run_as: run_as.to_owned(),
        program_sha256: program::hash(&program)?,
        program,
        argv,
        cwd,
        env: request::collect_env(env).map_err(Failure::usage)?,
    })
}

/// A request to send and wait on, with what the wait needs.
struct Fresh<'a> {
    config: &'a Config,
    key: &'a assent_protocol::PrivateKey,
    payload: &'a Request,
    timeout_s: u64,
    /// A cached grant for this command that a fresh status of its console would make usable.
    cached: Option<CachedGrant>,
    cache: &'a GrantCache,
    kept: &'a StatusStore,
    status_max_age_s: u64,
    approvers: Option<Vec<Approver>>,
}

impl Fresh<'_> {
    /// Sign the request, send it, and wait for a decision (or for the cached grant to become
    /// usable). Signed only now: a cached grant needs no request, and the signature is not free.
    fn ask(self) -> Result<Approved> {
        let Fresh {
            config,
            key,
            payload,
            timeout_s,
            cached,
            cache,
            kept,
            status_max_age_s,
            approvers,
        } = self;
        let request = request::seal(key, payload)
            .open::<Request>()
            .map_err(|e| Failure::usage(format!("cannot build the request: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::config(format!("cannot start the I/O runtime: {e}")))?;
        let started = runtime.block_on(async { tokio::time::Instant::now() });
        runtime.block_on(
            Wait {
                relay: &config.relay,
                key,
                progress: Progress::new(
                    request.sha256.reference(),
                    config.relay.clone(),
                    request.payload.expires_at,
                ),
                request,
                timeout_s,
                deadline: started + std::time::Duration::from_secs(timeout_s),
                connect_deadline: started
                    + std::time::Duration::from_secs(config.connect_timeout_s),
                connect: config.connect_options(),
                cached,
                cache,
                kept,
                status_max_age_s,
                approvers,
                submitted: false,
            }
            .run(),
        )
    }
}

/// A cached grant waiting for a fresh status of its console, judged once more with what the
/// relay serves now (asked once, briefly); its approval when that makes it usable.
fn refresh_cached(
    grant: CachedGrant,
    config: &Config,
    key: &assent_protocol::PrivateKey,
    kept: &StatusStore,
    approvers: Option<&[Approver]>,
    settings: &ElevatorSettings,
) -> Option<Approved> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let served = runtime
        .block_on(crate::wait::served_statuses(
            &config.relay,
            key,
            &config.connect_options(),
            crate::status::RELAY_PATIENCE,
        ))
        .ok()?;
    let now = clock::now();
    let status = kept.update(&grant.decision, &served, now);
    cache::check_grant(&grant, status, approvers, now, settings.status_max_age_s)
        .ok()
        .map(|status| Approved::from_cache(grant, status))
}

/// Hand the approval to the elevator. A cached grant runs silently; a fresh approval says who
/// approved (unless quiet).
fn exec(elevator: &Path, approved: &Approved, command: &Command) -> Result<Infallible> {
    if !approved.from_cache {
        inform(format_args!(
            "approved by {} ({})",
            approved.approver, approved.grant
        ));
    }
    crate::mcp::report::note(&crate::mcp::report::Milestone::Approved {
        approver: approved.approver.clone(),
        grant: approved.grant.to_string(),
        cached: approved.from_cache,
    });
    elevate::exec(
        elevator,
        &approved.token,
        &command.program,
        &command.argv[1..],
    )
}

/// The cached grant for this exact command, judged with the status kept for its console.
enum Cached {
    /// It runs now: the kept status is fresh enough to spare the relay round trip.
    Ready(Approved),
    /// It may run, once the relay has served a fresh status of its console.
    Check(Box<CachedGrant>),
    None,
}

/// Find the cached grant for this command and judge it with the kept status of its console.
/// It is dropped, with a line saying why, only when it expired or that status revokes it; any
/// other reason leaves it cached.
fn cached_grant(
    cache: &GrantCache,
    kept: &StatusStore,
    lookup: (&Command, &Requester, &HostId),
    key: &assent_protocol::PrivateKey,
    approvers: Option<&[Approver]>,
    status_max_age_s: u64,
) -> Cached {
    let (command, requester, host_id) = lookup;
    let agent = key.public();
    let Some(grant) = cache.find(command, requester, host_id, &agent) else {
        if cache
            .find_changed_program(command, requester, host_id, &agent)
            .is_some()
        {
            say(format_args!(
                "cached grant not usable: {}",
                cache::Unusable::ProgramChanged {
                    program: command.program.clone()
                }
            ));
        }
        return Cached::None;
    };
    let now = clock::now();
    let fresh = kept.fresh_enough(&grant.decision, now, status_max_age_s);
    let spares_relay = fresh.is_some();
    let status = fresh.or_else(|| kept.kept(&grant.decision));
    match cache::check_grant(&grant, status, approvers, now, status_max_age_s) {
        Ok(status) if spares_relay => Cached::Ready(Approved::from_cache(grant, status)),
        Ok(_) => Cached::Check(Box::new(grant)),
        Err(why) if why.is_waiting() => Cached::Check(Box::new(grant)),
        Err(why) => {
            say(format_args!("cached grant not usable: {why}"));
            if why.is_final() {
                cache.remove(&grant.path);
            }
            Cached::None
        }
    }
}

/// How long is left, for people.
pub fn remaining(not_after: Option<u64>, now: u64) -> String {
    match not_after {
        None => "until revoked".into(),
        Some(end) if end >= now => format!("{} left", duration::format(end - now)),
        Some(end) => format!("expired {} ago", duration::format(now - end)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Exit;

    #[test]
    fn remaining_time_for_people() {
        assert_eq!(remaining(None, 100), "until revoked");
        assert_eq!(remaining(Some(400), 100), "5m left");
        assert_eq!(remaining(Some(100), 100), "0s left");
        assert_eq!(remaining(Some(100), 190), "expired 1m30s ago");
    }

    #[test]
    fn run_as_must_be_a_user_name() {
        check_user_name("root").unwrap();
        check_user_name("postgres").unwrap();
        for bad in ["", "a/b", "x\ny", &"u".repeat(257)] {
            assert_eq!(
                check_user_name(bad).unwrap_err().exit,
                Exit::Usage,
                "{bad:?}"
            );
        }
    }
}
