//! The elevator's check 3 (SPEC §6): `assent_elevate::checks::token` on the bytes the caller
//! hands over, then the checks after it that need no system state (approver, verdict,
//! binding, host, user, run-as, command, time, status) on whatever opens.
//!
//! Every input is tried three ways: as the token bytes themselves; as the JSON inside a
//! token (base64-encoded here, so the fuzzer works on the JSON); and, when it holds the byte
//! 0xFF, as `request 0xFF decision [0xFF status]` payloads that are signed here with fixed
//! keys and put into a token, so the checks behind the signatures are reached. In a sealed
//! decision `@REQUEST_SHA256@` and `@CMD_SHA256@` are replaced by the request's hashes, in
//! a sealed status `@DECISION_SHA256@` by the decision's, so the fuzzer can start from grants
//! that pass every check and mutate them.
//!
//! Nothing may panic, every refusal is one line, and a sealed token opens exactly when each
//! of its payloads parses.
#![no_main]

use std::ffi::OsStr;
use std::path::Path;
use std::sync::OnceLock;

use assent_elevate::checks::{self, Refusal};
use assent_elevate::config::Config;
use assent_elevate::identity::Caller;
use assent_fuzz::{
    CALLER_NAME, CALLER_UID, CMD_SHA256_MARK, DECISION_SHA256_MARK, HOST, HOST_ID,
    REQUEST_SHA256_MARK, agent_key, approver_key, replace, seal, sealed_parts,
};
use assent_protocol::{
    Decision, GrantToken, MAX_PAYLOAD_LEN, OpenedGrant, Payload, Request, Status, sha256,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = run_checks(data);
    let _ = run_checks(STANDARD.encode(data).as_bytes());
    if let Some(parts) = sealed_parts(data) {
        sealed(&parts);
    }
});

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let text = format!(
            "[[approver]]\nname = \"{}\"\nkey = \"{}\"\n\n\
             [[requester]]\nuser = \"{CALLER_NAME}\"\nrun_as = [\"root\", \"www-data\"]\n",
            assent_fuzz::APPROVER_NAME,
            approver_key().public().to_openssh("")
        );
        Config::parse(&text, Path::new("/etc/assent/elevator.toml"))
            .unwrap_or_else(|e| panic!("the fixed configuration does not parse: {e}"))
    })
}

fn one_line(refusal: Refusal) {
    let line = refusal.to_string();
    assert!(
        !line.contains(['\n', '\r']),
        "a refusal is not one line: {line:?}"
    );
}

fn check<T>(result: Result<T, Refusal>) {
    if let Err(refusal) = result {
        one_line(refusal);
    }
}

/// Check 3, then every pure check after it, whatever the earlier ones said.
fn run_checks(bytes: &[u8]) -> Result<(), ()> {
    let grant = match checks::token(bytes) {
        Ok(grant) => grant,
        Err(refusal) => {
            one_line(refusal);
            return Err(());
        }
    };
    later_checks(&grant);
    Ok(())
}

fn later_checks(grant: &OpenedGrant) {
    let config = config();
    let caller = Caller {
        uid: CALLER_UID,
        gid: CALLER_UID,
        name: Some(CALLER_NAME.to_owned()),
    };
    check(checks::approver(config, grant));
    check(checks::verdict(grant));
    check(checks::binding(grant));
    check(checks::host(grant, HOST, &HOST_ID));
    check(checks::user(grant, &caller));
    check(checks::run_as(grant, &config.requesters[0], |_| None));

    let request = &grant.request.payload;
    let args: Vec<&OsStr> = request.argv.iter().skip(1).map(OsStr::new).collect();
    check(checks::command(grant, OsStr::new(&request.program), &args));
    // The same command with one argument fewer, and another program.
    check(checks::command(
        grant,
        OsStr::new(&request.program),
        &args[..args.len().saturating_sub(1)],
    ));
    check(checks::command(grant, OsStr::new("/bin/false"), &args));

    let decision = &grant.decision.payload;
    let settings = &config.settings;
    for now in [
        0,
        decision.not_before,
        decision.not_after.unwrap_or(u64::MAX),
        decision.decided_at,
        u64::MAX,
    ] {
        check(checks::time(grant, settings, now));
        check(checks::status(grant, settings, now));
    }
    if let Some(status) = &grant.status {
        check(checks::status(grant, settings, status.payload.issued_at));
    }
}

fn sealed(parts: &[&[u8]]) {
    let request = parts[0];
    let mut decision = parts.get(1).copied().unwrap_or_default().to_vec();
    let mut status = parts.get(2).map(|s| s.to_vec());

    let parsed_request = Request::from_bytes(request).ok();
    decision = replace(
        &decision,
        REQUEST_SHA256_MARK,
        sha256(request).to_hex().as_bytes(),
    );
    if let Some(r) = &parsed_request {
        decision = replace(
            &decision,
            CMD_SHA256_MARK,
            r.cmd_sha256().to_hex().as_bytes(),
        );
    }
    if let Some(s) = &mut status {
        *s = replace(
            s,
            DECISION_SHA256_MARK,
            sha256(&decision).to_hex().as_bytes(),
        );
    }
    let status = status.as_deref();

    let token = GrantToken {
        request: seal::<Request>(agent_key(), request),
        decision: seal::<Decision>(approver_key(), &decision),
        status: status.map(|s| seal::<Status>(approver_key(), s)),
    };
    let opened = run_checks(token.encode().as_bytes()).is_ok();
    if [request, &decision[..], status.unwrap_or_default()]
        .iter()
        .any(|p| p.len() > MAX_PAYLOAD_LEN)
    {
        return;
    }
    let parses = parsed_request.is_some()
        && Decision::from_bytes(&decision).is_ok()
        && status.is_none_or(|s| Status::from_bytes(s).is_ok());
    assert_eq!(
        opened, parses,
        "a sealed token opened={opened} but its payloads parse={parses}"
    );
}
