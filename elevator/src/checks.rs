//! The checks of SPEC §6, one function each, in the order they run. Each returns a
//! [`Refusal`] naming the check; the first refusal ends the attempt and nothing runs.
//!
//! The functions take what they need as plain values (the configuration, the opened grant,
//! the caller, the hostname, the clock) so that each can be tested on its own; the system
//! look-ups happen in [`crate::run`].

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt as _;
use std::time::Duration;

use nix::libc::{RLIM_INFINITY, rlim_t};

use assent_common::elevator_config::Limit;
use assent_common::paths::{ELEVATOR_CONFIG, HOST_ID};
use assent_protocol::{
    CommandLine, Decision, Envelope, Grant, GrantToken, HostId, OpenedGrant, Request, Status,
    Verdict, cmd_sha256,
};

use crate::config::{Approver, Config, Requester, Settings};
use crate::identity::{Caller, Target};
use crate::ledger::{ClaimError, Ledger};
use crate::limits::{LimitPlan, Pair, Source, Wanted, shown};
use crate::program::{OpenedProgram, ProgramFile};
use crate::time::rfc3339_utc;
use crate::trusted::{Policy, Untrusted, WalkedDir};

/// The checks, by the names the refusal line and the audit log use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Setup,
    Requester,
    Token,
    Approver,
    Verdict,
    Binding,
    Host,
    User,
    RunAs,
    Command,
    Time,
    Cwd,
    Limits,
    SingleUse,
    Status,
    Program,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::Setup => "setup",
            Check::Requester => "requester",
            Check::Token => "token",
            Check::Approver => "approver",
            Check::Verdict => "verdict",
            Check::Binding => "binding",
            Check::Host => "host",
            Check::User => "user",
            Check::RunAs => "run-as",
            Check::Command => "command",
            Check::Time => "time",
            Check::Cwd => "cwd",
            Check::Limits => "limits",
            Check::SingleUse => "single-use",
            Check::Status => "status",
            Check::Program => "program",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why nothing runs: the check that failed and one line of detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub check: Check,
    pub detail: String,
}

/// The longest refusal detail, in bytes: one line a person can read, however much of the
/// caller's input it quotes.
pub const MAX_DETAIL_LEN: usize = 1024;

impl Refusal {
    /// Control characters in the detail (which may quote caller-controlled text) are escaped,
    /// so the refusal is always exactly one line, and a long one is cut to [`MAX_DETAIL_LEN`].
    pub fn new(check: Check, detail: impl Into<String>) -> Refusal {
        let detail: String = detail.into();
        let mut detail = if detail.chars().any(char::is_control) {
            detail
                .chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        } else {
            detail
        };
        cut_to(&mut detail, MAX_DETAIL_LEN);
        Refusal { check, detail }
    }

    /// The same refusal with `note` added at the end, kept whole: the detail gives way.
    pub fn with_note(self, note: &str) -> Refusal {
        let note = Refusal::new(self.check, format!(" (and {note})")).detail;
        let mut detail = self.detail;
        cut_to(&mut detail, MAX_DETAIL_LEN.saturating_sub(note.len()));
        detail.push_str(&note);
        Refusal {
            check: self.check,
            detail,
        }
    }
}

/// Cut `text` to at most `max` bytes, saying how much was left out.
fn cut_to(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max.saturating_sub(32);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("…[{cut} more bytes]"));
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused ({}): {}", self.check, self.detail)
    }
}

type Checked<T = ()> = Result<T, Refusal>;

fn refuse<T>(check: Check, detail: impl Into<String>) -> Checked<T> {
    Err(Refusal::new(check, detail))
}

// 1 ---------------------------------------------------------------------------------------

/// The elevator runs setuid root and its own binary is root's alone.
pub fn setup(
    effective_uid: u32,
    no_new_privs: bool,
    own_binary: &Result<(), Untrusted>,
) -> Checked {
    if effective_uid != 0 && no_new_privs {
        // The kernel ignored the setuid bit: reinstalling would not help, and nothing the
        // human approves can either.
        return refuse(
            Check::Setup,
            "this process runs with no_new_privs (an agent sandbox such as Codex's or Claude \
             Code's sets it), so the kernel ignores assent-elevate's setuid bit and no approval \
             can help; run assent outside the sandbox (e.g. Claude Code's \
             sandbox.excludedCommands) or through `assent mcp`, started by the agent's harness \
             outside the sandbox",
        );
    }
    if effective_uid != 0 {
        return refuse(
            Check::Setup,
            "assent-elevate is not running as root; install it owned by root with mode 4755 \
             (chown root:root FILE && chmod 4755 FILE)",
        );
    }
    match own_binary {
        Ok(()) => Ok(()),
        Err(why) => refuse(Check::Setup, why.0.clone()),
    }
}

// 2 ---------------------------------------------------------------------------------------

/// The real uid is a listed `[[requester]]`. Runs before anything the caller sent is parsed.
pub fn requester<'c>(config: &'c Config, caller: &Caller) -> Checked<&'c Requester> {
    let Some(name) = caller.name.as_deref() else {
        return refuse(
            Check::Requester,
            format!("uid {} has no user name on this host", caller.uid),
        );
    };
    config.requester(name).map_or_else(
        || {
            refuse(
                Check::Requester,
                format!(
                    "user {name} (uid {}) is not a [[requester]] in {}",
                    caller.uid, ELEVATOR_CONFIG
                ),
            )
        },
        Ok,
    )
}

// 3 ---------------------------------------------------------------------------------------

/// The token decodes and all three envelopes verify, each under its own namespace.
pub fn token(text: &[u8]) -> Checked<OpenedGrant> {
    let text = std::str::from_utf8(text)
        .map_err(|_| Refusal::new(Check::Token, "the grant token is not UTF-8 text"))?;
    let token = GrantToken::decode(text).map_err(|e| Refusal::new(Check::Token, e.to_string()))?;
    let opened =
        |what: &str, e: assent_protocol::Error| Refusal::new(Check::Token, format!("{what}: {e}"));
    let request = token
        .request
        .open::<Request>()
        .map_err(|e| opened("request", e))?;
    let decision = token
        .decision
        .open::<Decision>()
        .map_err(|e| opened("decision", e))?;
    let status = token
        .status
        .as_ref()
        .map(Envelope::open::<Status>)
        .transpose()
        .map_err(|e| opened("status", e))?;
    Ok(OpenedGrant {
        request,
        decision,
        status,
    })
}

// 4 ---------------------------------------------------------------------------------------

/// The decision is signed by a listed approver key and names that approver.
pub fn approver<'c>(config: &'c Config, grant: &OpenedGrant) -> Checked<&'c Approver> {
    let signer = &grant.decision.signer;
    let Some(approver) = config.approver_by_key(signer) else {
        return refuse(
            Check::Approver,
            format!(
                "the decision is signed by {}, which is not an [[approver]] in {}",
                signer.fingerprint(),
                ELEVATOR_CONFIG
            ),
        );
    };
    let named = &grant.decision.payload.approver;
    if *named != approver.name {
        return refuse(
            Check::Approver,
            format!(
                "the decision names approver {named:?} but is signed by {}'s key {}",
                approver.name,
                signer.fingerprint()
            ),
        );
    }
    Ok(approver)
}

// 5 ---------------------------------------------------------------------------------------

/// The approver approved.
pub fn verdict(grant: &OpenedGrant) -> Checked {
    let decision = &grant.decision.payload;
    match decision.verdict {
        Verdict::Approve => Ok(()),
        Verdict::Deny => refuse(
            Check::Verdict,
            match &decision.note {
                Some(note) => format!("denied by {}: {note}", decision.approver),
                None => format!("denied by {}", decision.approver),
            },
        ),
    }
}

/// The decision is for exactly this request: its id and the hash of its payload bytes.
pub fn binding(grant: &OpenedGrant) -> Checked {
    if grant.decision_binds_request() {
        return Ok(());
    }
    let decision = &grant.decision.payload;
    refuse(
        Check::Binding,
        if decision.request_id != grant.request.payload.id {
            format!(
                "the decision is for request {}, not {}",
                decision.request_id, grant.request.payload.id
            )
        } else {
            format!(
                "the decision's request_sha256 {} is not the hash of the enclosed request {}",
                decision.request_sha256, grant.request.sha256
            )
        },
    )
}

// 6 ---------------------------------------------------------------------------------------

/// The request is for this host: its hostname and this install's host id. The hostname alone
/// is not enough: a cloned image or a container may share it.
pub fn host(grant: &OpenedGrant, hostname: &str, host_id: &HostId) -> Checked {
    let request = &grant.request.payload;
    let wanted = &request.host;
    if wanted != hostname {
        return refuse(
            Check::Host,
            format!("the request is for host {wanted:?}; this is {hostname:?}"),
        );
    }
    if request.host_id != *host_id {
        return refuse(
            Check::Host,
            format!(
                "the request is for host {wanted:?} with host id {}; this is {hostname:?} with host id {host_id} ({HOST_ID})",
                request.host_id
            ),
        );
    }
    Ok(())
}

// 7 ---------------------------------------------------------------------------------------

/// The request was made by the calling user: same uid, same name.
pub fn user(grant: &OpenedGrant, caller: &Caller) -> Checked {
    let request = &grant.request.payload;
    let name = caller.name.as_deref().unwrap_or_default();
    if request.uid == caller.uid && request.user == name {
        return Ok(());
    }
    refuse(
        Check::User,
        format!(
            "the request is for user {} (uid {}); the caller is {name} (uid {})",
            request.user, request.uid, caller.uid
        ),
    )
}

// 8 ---------------------------------------------------------------------------------------

/// The requester may become `run_as`, and that user exists here. (That `run_as` is what the
/// decision covers is part of its `cmd_sha256`, recomputed in [`command`].)
pub fn run_as(
    grant: &OpenedGrant,
    requester: &Requester,
    lookup: impl FnOnce(&str) -> Option<Target>,
) -> Checked<Target> {
    let wanted = &grant.request.payload.run_as;
    if !requester.run_as.iter().any(|allowed| allowed == wanted) {
        return refuse(
            Check::RunAs,
            format!(
                "{} may not run commands as {wanted:?}; run_as allows {}",
                requester.user,
                requester.run_as.join(", ")
            ),
        );
    }
    lookup(wanted).map_or_else(
        || {
            refuse(
                Check::RunAs,
                format!("there is no user {wanted:?} on this host"),
            )
        },
        Ok,
    )
}

// 9 ---------------------------------------------------------------------------------------

/// PROGRAM and ARGS are exactly the approved ones, and the decision's `cmd_sha256` is the
/// hash of this invocation (SPEC §4.7). Like its environment, the caller's own current
/// directory carries no authority: the program runs in the approved `cwd`, entered as the
/// target user, wherever the elevator was started.
pub fn command(grant: &OpenedGrant, program: &OsStr, args: &[&OsStr]) -> Checked {
    let request = &grant.request.payload;
    let program = program.to_str().ok_or_else(|| {
        Refusal::new(
            Check::Command,
            format!(
                "PROGRAM {:?} is not UTF-8",
                program.as_bytes().escape_ascii().to_string()
            ),
        )
    })?;
    if program != request.program {
        return refuse(
            Check::Command,
            format!(
                "PROGRAM {program:?} is not the approved {:?}",
                request.program
            ),
        );
    }
    let mut argv = Vec::with_capacity(args.len() + 1);
    argv.push(request.argv[0].clone());
    for (i, arg) in args.iter().enumerate() {
        let arg = arg.to_str().ok_or_else(|| {
            Refusal::new(Check::Command, format!("argument {} is not UTF-8", i + 1))
        })?;
        argv.push(arg.to_owned());
    }
    if argv.len() != request.argv.len() {
        return refuse(
            Check::Command,
            format!(
                "{} arguments given, {} approved",
                argv.len() - 1,
                request.argv.len() - 1
            ),
        );
    }
    if let Some(i) = (1..argv.len()).find(|&i| argv[i] != request.argv[i]) {
        return refuse(
            Check::Command,
            format!(
                "argument {i} is {:?}; the approved one is {:?}",
                argv[i], request.argv[i]
            ),
        );
    }
    let invoked = cmd_sha256(&CommandLine {
        run_as: &request.run_as,
        program,
        program_sha256: &request.program_sha256,
        argv: &argv,
        cwd: &request.cwd,
        env: &request.env,
    });
    if invoked != grant.decision.payload.cmd_sha256 {
        return refuse(
            Check::Command,
            "the decision's cmd_sha256 does not cover this command (run_as, program, argv, cwd \
             or env differ from what was approved)",
        );
    }
    Ok(())
}

// 10 --------------------------------------------------------------------------------------

/// Now is inside the decision's window (with the configured clock skew), and the window is no
/// longer than this host allows for its grant type.
pub fn time(grant: &OpenedGrant, settings: &Settings, now: u64) -> Checked {
    let decision = &grant.decision.payload;
    let skew = settings.clock_skew_s;
    let max = match decision.grant {
        Grant::Once => Some(("once", settings.once_window_s, "once_window_s")),
        Grant::Timed => Some(("timed", settings.max_ttl_s, "max_ttl_s")),
        Grant::Always => None,
    };
    if let (Some((kind, max, setting)), Some(window)) = (max, decision.window_s()) {
        if window > max {
            return refuse(
                Check::Time,
                format!(
                    "the {kind} grant lasts {window}s; this host allows at most {max}s ({setting})"
                ),
            );
        }
    }
    if decision.not_before > now.saturating_add(skew) {
        return refuse(
            Check::Time,
            format!(
                "the grant is not valid before {} (now {}, clock skew allowed {skew}s)",
                rfc3339_utc(decision.not_before),
                rfc3339_utc(now)
            ),
        );
    }
    if let Some(not_after) = decision.not_after {
        if now > not_after.saturating_add(skew) {
            return refuse(
                Check::Time,
                format!(
                    "the grant expired at {} (now {}, clock skew allowed {skew}s)",
                    rfc3339_utc(not_after),
                    rfc3339_utc(now)
                ),
            );
        }
    }
    Ok(())
}

// Before 11: what the command will use, opened now (SPEC §13.2) ----------------------------

/// The approved `cwd` is a canonical absolute path, opened from `/` one component at a time
/// without following a symbolic link, and the target user may search every directory on it
/// (as `chdir` as that user would require). The command starts in the directory opened here,
/// never in one looked up again by name. Runs before the grant is spent.
pub fn cwd(grant: &OpenedGrant, target: &Target) -> Checked<WalkedDir> {
    let cwd = std::path::Path::new(&grant.request.payload.cwd);
    WalkedDir::open(cwd, Policy::SearchableBy(target))
        .map_err(|why| Refusal::new(Check::Cwd, format!("the approved directory: {why}")))
}

/// The approved `program` is a canonical absolute path outside /proc, /dev and /sys, opened
/// by a walk that follows no symbolic link, through directories the target may search, and is
/// a regular file the target may execute. Its bytes are checked by [`program`] (check 12), on
/// this same open file. Runs before the grant is spent.
pub fn program_path(grant: &OpenedGrant, target: &Target) -> Checked<OpenedProgram> {
    OpenedProgram::open(&grant.request.payload.program, target)
        .map_err(|why| Refusal::new(Check::Program, why))
}

/// The command can get every limit it should (SPEC §13.3): PID 1's or the configured ones,
/// never the caller's. A hard limit above the current one is raised now (`raise_hard`, which
/// needs `CAP_SYS_RESOURCE`); where that is refused, the soft limit wanted must still fit
/// under the caller's hard one, or the attempt is refused here, before the grant is spent.
///
/// A finite CPU limit counts the CPU time this process used before it became the elevator
/// (`cpu_used_s`), so a caller that burnt it first would cut the command short: refused too.
pub fn limits(
    wanted: &[Wanted],
    current: impl Fn(Limit) -> Pair,
    mut raise_hard: impl FnMut(Limit, rlim_t) -> bool,
    cpu_used_s: u64,
) -> Checked<LimitPlan> {
    let mut plan = Vec::with_capacity(wanted.len());
    for w in wanted {
        let now = current(w.limit);
        let hard_now = now.1;
        let from = match w.source {
            Source::Pid1 => "PID 1's soft limit",
            Source::Settings => "[settings.limits]",
        };
        let hard = if w.hard <= hard_now || raise_hard(w.limit, w.hard) {
            w.hard
        } else if w.soft <= hard_now {
            hard_now
        } else {
            return refuse(
                Check::Limits,
                format!(
                    "the caller's hard {limit} limit is {}, below the {} ({}) that commands get \
                     here ({from}), and the elevator cannot raise it (it lacks \
                     CAP_SYS_RESOURCE); call assent-elevate from a process whose hard {limit} \
                     limit is {}, or set {limit} in [settings.limits] of {}",
                    shown(hard_now),
                    shown(w.soft),
                    w.limit.unit(),
                    if w.soft == RLIM_INFINITY {
                        "unlimited".to_owned()
                    } else {
                        format!("at least {}", w.soft)
                    },
                    ELEVATOR_CONFIG,
                    limit = w.limit,
                ),
            );
        };
        if w.limit == Limit::Cpu && w.soft != RLIM_INFINITY && cpu_used_s >= 1 {
            return refuse(
                Check::Limits,
                format!(
                    "this process has already used {cpu_used_s} s of CPU time, which counts \
                     against the command's cpu limit of {} s; call assent-elevate from a fresh \
                     process",
                    w.soft
                ),
            );
        }
        // Only what differs needs setting (a raised hard limit differs from `now`).
        if (w.soft, hard) != now {
            plan.push((w.limit, (w.soft, hard)));
        }
    }
    Ok(LimitPlan(plan))
}

// 11 --------------------------------------------------------------------------------------

/// A once-grant was never used on this host; a reusable grant has a fresh, unrevoked status.
pub fn single_use_or_status(
    grant: &OpenedGrant,
    settings: &Settings,
    ledger: &Ledger,
    now: u64,
) -> Checked {
    match grant.decision.payload.grant {
        Grant::Once => single_use(grant, settings, ledger, now),
        Grant::Timed | Grant::Always => status(grant, settings, now),
    }
}

/// Claim the once-grant in the ledger: exactly one attempt ever wins. Its line is kept at
/// least twice as long as any once-grant can be valid (and at least a day).
pub fn single_use(grant: &OpenedGrant, settings: &Settings, ledger: &Ledger, now: u64) -> Checked {
    let note = format!(
        "request {} by {} (uid {}) at {}",
        grant.request.payload.id,
        grant.request.payload.user,
        grant.request.payload.uid,
        rfc3339_utc(now)
    );
    let keep = (settings.clock_skew_s.saturating_mul(2))
        .saturating_add(settings.once_window_s)
        .saturating_mul(2);
    ledger
        .claim(
            &grant.decision.sha256,
            &note,
            now,
            Duration::from_secs(keep),
        )
        .map_err(|e: ClaimError| Refusal::new(Check::SingleUse, e.to_string()))
}

/// A reusable grant comes with a status from the same approver key, fresh, not revoking it.
pub fn status(grant: &OpenedGrant, settings: &Settings, now: u64) -> Checked {
    let decision = &grant.decision.payload;
    let kind = decision.grant;
    let Some(status) = &grant.status else {
        return refuse(
            Check::Status,
            format!(
                "this {kind} grant needs a fresh status from {}; none was sent",
                decision.approver
            ),
        );
    };
    if status.signer != grant.decision.signer {
        return refuse(
            Check::Status,
            format!(
                "the status is signed by {}, not by the decision's key {}",
                status.signer.fingerprint(),
                grant.decision.signer.fingerprint()
            ),
        );
    }
    if status.payload.console != decision.console {
        return refuse(
            Check::Status,
            format!(
                "the status is from console {}, not from console {} that approved this grant; only that console's statuses vouch for it",
                status.payload.console, decision.console
            ),
        );
    }
    if status.payload.approver != decision.approver {
        return refuse(
            Check::Status,
            format!(
                "the status is from {:?}; the decision is from {:?}",
                status.payload.approver, decision.approver
            ),
        );
    }
    let issued = status.payload.issued_at;
    if issued > now.saturating_add(settings.clock_skew_s) {
        return refuse(
            Check::Status,
            format!(
                "the status is issued in the future ({}; now {})",
                rfc3339_utc(issued),
                rfc3339_utc(now)
            ),
        );
    }
    let age = now.saturating_sub(issued);
    if age > settings.status_max_age_s {
        return refuse(
            Check::Status,
            format!(
                "the status from {} is {age}s old; at most {}s is accepted (status_max_age_s)",
                decision.approver, settings.status_max_age_s
            ),
        );
    }
    if status.payload.revoked.contains(&grant.decision.sha256) {
        return refuse(
            Check::Status,
            format!(
                "the grant was revoked by {} (status of {})",
                decision.approver,
                rfc3339_utc(issued)
            ),
        );
    }
    Ok(())
}

// 12 --------------------------------------------------------------------------------------

/// The bytes that will run hash to the approved `program_sha256`, read from the file check
/// `program` opened before the grant was spent (copied first if others than root can change
/// it).
pub fn program(opened: OpenedProgram, grant: &OpenedGrant) -> Checked<ProgramFile> {
    ProgramFile::verify(opened, &grant.request.payload.program_sha256)
        .map_err(|why| Refusal::new(Check::Program, why))
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt as _;

    use assent_protocol::{ConsoleId, Envelope, Payload as _, PrivateKey, Revocation, sha256};

    use super::*;
    use crate::testutil::{
        CONSOLE_HERE, HOST_ID_HERE, NOW, TempDir, approver_key, caller, config, fixture, stranger,
    };

    fn args(items: &[&str]) -> Vec<OsString> {
        items.iter().map(OsString::from).collect()
    }

    fn refs(v: &[OsString]) -> Vec<&OsStr> {
        v.iter().map(OsString::as_os_str).collect()
    }

    /// The fixture's grant with the request edited and the decision bound to it again.
    fn bound(edit: impl FnOnce(&mut assent_protocol::Request)) -> OpenedGrant {
        let mut fx = fixture();
        edit(&mut fx.request);
        fx.bind();
        fx.opened()
    }

    fn refused<T: fmt::Debug>(result: Checked<T>, check: Check, needle: &str) {
        let err = result.expect_err("the check must refuse");
        assert_eq!(err.check, check, "{err}");
        assert!(err.detail.contains(needle), "{needle:?} not in {err}");
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn names_match_the_refusal_contract() {
        let names: Vec<&str> = [
            Check::Setup,
            Check::Requester,
            Check::Token,
            Check::Approver,
            Check::Verdict,
            Check::Binding,
            Check::Host,
            Check::User,
            Check::RunAs,
            Check::Command,
            Check::Time,
            Check::Cwd,
            Check::Limits,
            Check::SingleUse,
            Check::Status,
            Check::Program,
        ]
        .iter()
        .map(|c| c.name())
        .collect();
        assert_eq!(
            names,
            [
                "setup",
                "requester",
                "token",
                "approver",
                "verdict",
                "binding",
                "host",
                "user",
                "run-as",
                "command",
                "time",
                "cwd",
                "limits",
                "single-use",
                "status",
                "program"
            ]
        );
        let r = Refusal::new(Check::Verdict, "denied by alice: not\nnow");
        assert_eq!(
            r.to_string(),
            "refused (verdict): denied by alice: not\\nnow"
        );
        let long = Refusal::new(
            Check::Command,
            format!("argument 1 is {:?}", "\u{1}é".repeat(50_000)),
        );
        assert!(long.detail.len() <= MAX_DETAIL_LEN, "{}", long.detail.len());
        assert!(
            long.detail.starts_with("argument 1 is \"\\u{1}é"),
            "{}",
            &long.detail[..40]
        );
        assert!(long.detail.ends_with("more bytes]"), "{long}");
        let noted = long.with_note("cannot write the audit log: No space left on device");
        assert!(
            noted.detail.len() <= MAX_DETAIL_LEN,
            "{}",
            noted.detail.len()
        );
        assert!(
            noted
                .detail
                .ends_with("more bytes] (and cannot write the audit log: No space left on device)"),
            "{noted}"
        );
    }

    #[test]
    fn check_1_setup() {
        refused(
            setup(1001, false, &Ok(())),
            Check::Setup,
            "not running as root",
        );
        let sandboxed = setup(1001, true, &Ok(())).unwrap_err();
        assert!(sandboxed.detail.contains("no_new_privs"), "{sandboxed}");
        assert!(!sandboxed.detail.contains("chmod"), "{sandboxed}");
        setup(0, true, &Ok(())).expect("no_new_privs set after the setuid exec is harmless");
        let unsafe_binary = Err(Untrusted(
            "the assent-elevate binary is owned by uid 1001".into(),
        ));
        refused(
            setup(0, false, &unsafe_binary),
            Check::Setup,
            "owned by uid 1001",
        );
        setup(0, false, &Ok(())).unwrap();
    }

    #[test]
    fn check_2_requester() {
        let config = config();
        assert_eq!(requester(&config, &caller()).unwrap().user, "openclaw");
        let stranger = Caller {
            uid: 1002,
            gid: 1002,
            name: Some("mallory".into()),
        };
        refused(
            requester(&config, &stranger),
            Check::Requester,
            "user mallory (uid 1002) is not a [[requester]]",
        );
        let nameless = Caller {
            uid: 4242,
            gid: 4242,
            name: None,
        };
        refused(
            requester(&config, &nameless),
            Check::Requester,
            "uid 4242 has no user name",
        );
    }

    #[test]
    fn check_3_token() {
        let fx = fixture();
        let good = fx.token().encode();
        let grant = token(good.as_bytes()).unwrap();
        assert_eq!(grant.request.payload, fx.request);
        assert!(
            token(format!("{good}\n").as_bytes()).is_ok(),
            "a trailing newline is fine"
        );

        refused(token(b"\xff\xfe"), Check::Token, "not UTF-8");
        refused(token(b"not base64!"), Check::Token, "malformed grant token");
        refused(
            token("A".repeat(assent_protocol::MAX_TOKEN_LEN + 4).as_bytes()),
            Check::Token,
            "longer than",
        );

        // One flipped byte in the signed request.
        let mut t = fx.token();
        let mut bytes = t.request.payload_bytes_unverified().unwrap();
        let at = bytes.iter().position(|&b| b == b'u').unwrap();
        bytes[at] = b'v';
        t.request = Envelope {
            payload: Envelope::from_signature(&bytes, b"").payload,
            sig: t.request.sig,
        };
        refused(token(t.encode().as_bytes()), Check::Token, "request: ");

        // A decision signed under another namespace (as a status) does not verify.
        let mut t = fx.token();
        t.decision = Envelope::seal_bytes(
            &fx.approver,
            assent_protocol::Namespace::Status,
            &fx.decision.to_bytes(),
        );
        refused(
            token(t.encode().as_bytes()),
            Check::Token,
            "decision: signature was made for namespace",
        );

        let mut t = fx.token();
        t.status = Some(Envelope {
            payload: "e30=".into(),
            sig: t.decision.sig.clone(),
        });
        refused(token(t.encode().as_bytes()), Check::Token, "status: ");
    }

    #[test]
    fn check_4_approver() {
        let config = config();
        let fx = fixture();
        assert_eq!(approver(&config, &fx.opened()).unwrap().name, "alice");

        let mut stranger = fixture();
        stranger.approver = PrivateKey::from_seed(&[99; 32], "mallory");
        refused(
            approver(&config, &stranger.opened()),
            Check::Approver,
            "which is not an [[approver]]",
        );

        let mut misnamed = fixture();
        misnamed.decision.approver = "bob".into();
        refused(
            approver(&config, &misnamed.opened()),
            Check::Approver,
            "names approver \"bob\" but is signed by alice's key",
        );
    }

    #[test]
    fn check_5_verdict_and_binding() {
        let fx = fixture();
        verdict(&fx.opened()).unwrap();
        binding(&fx.opened()).unwrap();

        let mut denied = fixture();
        denied.decision.verdict = Verdict::Deny;
        denied.decision.note = Some("not during the freeze".into());
        refused(
            verdict(&denied.opened()),
            Check::Verdict,
            "denied by alice: not during the freeze",
        );
        denied.decision.note = None;
        refused(verdict(&denied.opened()), Check::Verdict, "denied by alice");

        let mut other_id = fixture();
        other_id.decision.request_id = assent_protocol::RequestId([7; 16]);
        refused(
            binding(&other_id.opened()),
            Check::Binding,
            "the decision is for request 0707",
        );

        let mut other_hash = fixture();
        other_hash.decision.request_sha256 = sha256(b"another request");
        refused(
            binding(&other_hash.opened()),
            Check::Binding,
            "is not the hash of the enclosed request",
        );
    }

    #[test]
    fn check_6_host() {
        let grant = fixture().opened();
        host(&grant, "mini.local", &HOST_ID_HERE).unwrap();
        refused(
            host(&grant, "prod-db", &HOST_ID_HERE),
            Check::Host,
            "the request is for host \"mini.local\"; this is \"prod-db\"",
        );
        refused(
            host(&grant, "mini.local.", &HOST_ID_HERE),
            Check::Host,
            "this is",
        );
    }

    #[test]
    fn check_6_host_id() {
        // A clone: the same hostname, another install.
        let grant = fixture().opened();
        let clone = HostId([0x77; 16]);
        refused(
            host(&grant, "mini.local", &clone),
            Check::Host,
            &format!(
                "the request is for host \"mini.local\" with host id {HOST_ID_HERE}; this is \"mini.local\" with host id {clone} ({HOST_ID})"
            ),
        );
        let other = bound(|r| r.host_id = clone);
        host(&other, "mini.local", &clone).unwrap();
        refused(
            host(&other, "mini.local", &HOST_ID_HERE),
            Check::Host,
            "with host id",
        );
    }

    #[test]
    fn check_7_user() {
        let grant = fixture().opened();
        user(&grant, &caller()).unwrap();
        refused(
            user(
                &grant,
                &Caller {
                    uid: 1002,
                    gid: 1002,
                    name: Some("openclaw".into()),
                },
            ),
            Check::User,
            "the caller is openclaw (uid 1002)",
        );
        refused(
            user(
                &grant,
                &Caller {
                    uid: 1001,
                    gid: 1001,
                    name: Some("other".into()),
                },
            ),
            Check::User,
            "the request is for user openclaw (uid 1001)",
        );
    }

    #[test]
    fn check_8_run_as() {
        let config = config();
        let requester = config.requester("openclaw").unwrap();
        let root = run_as(&fixture().opened(), requester, Target::lookup).unwrap();
        assert_eq!(root.uid, 0);

        let mut postgres = fixture();
        postgres.request.run_as = "postgres".into();
        postgres.bind();
        refused(
            run_as(&postgres.opened(), requester, Target::lookup),
            Check::RunAs,
            "openclaw may not run commands as \"postgres\"; run_as allows root",
        );

        let ghost = crate::config::Requester {
            user: "openclaw".into(),
            run_as: vec!["root".into(), "ghost".into()],
        };
        let mut fx = fixture();
        fx.request.run_as = "ghost".into();
        fx.bind();
        refused(
            run_as(&fx.opened(), &ghost, Target::lookup),
            Check::RunAs,
            "there is no user \"ghost\"",
        );
    }

    #[test]
    fn check_9_command() {
        let grant = fixture().opened();
        let ok = args(&["upgrade"]);
        command(&grant, OsStr::new("/usr/bin/apt-get"), &refs(&ok)).unwrap();

        refused(
            command(&grant, OsStr::new("apt-get"), &refs(&ok)),
            Check::Command,
            "is not the approved \"/usr/bin/apt-get\"",
        );
        refused(
            command(&grant, OsStr::new("/usr/bin/apt-get2"), &refs(&ok)),
            Check::Command,
            "not the approved",
        );
        refused(
            command(
                &grant,
                OsStr::new("/usr/bin/apt-get"),
                &refs(&args(&["upgrade", "-y"])),
            ),
            Check::Command,
            "2 arguments given, 1 approved",
        );
        refused(
            command(&grant, OsStr::new("/usr/bin/apt-get"), &refs(&args(&[]))),
            Check::Command,
            "0 arguments given",
        );
        refused(
            command(
                &grant,
                OsStr::new("/usr/bin/apt-get"),
                &refs(&args(&["dist-upgrade"])),
            ),
            Check::Command,
            "argument 1 is \"dist-upgrade\"",
        );
        let bad = [OsString::from_vec(b"up\xffgrade".to_vec())];
        refused(
            command(&grant, OsStr::new("/usr/bin/apt-get"), &refs(&bad)),
            Check::Command,
            "argument 1 is not UTF-8",
        );
        let bad_program = OsString::from_vec(b"/usr/bin/\xff".to_vec());
        refused(
            command(&grant, &bad_program, &refs(&ok)),
            Check::Command,
            "is not UTF-8",
        );

        // The approver approved another cwd / env / run_as than the request states.
        for change in [
            |fx: &mut crate::testutil::Fixture| fx.request.cwd = "/".into(),
            |fx: &mut crate::testutil::Fixture| {
                fx.request
                    .env
                    .0
                    .insert("LD_PRELOAD".into(), "/tmp/x.so".into());
            },
            |fx: &mut crate::testutil::Fixture| fx.request.run_as = "postgres".into(),
            |fx: &mut crate::testutil::Fixture| fx.request.program_sha256 = sha256(b"other"),
        ] {
            let mut fx = fixture();
            let approved = fx.decision.cmd_sha256;
            change(&mut fx);
            fx.bind();
            fx.decision.cmd_sha256 = approved;
            refused(
                command(&fx.opened(), OsStr::new("/usr/bin/apt-get"), &refs(&ok)),
                Check::Command,
                "cmd_sha256 does not cover this command",
            );
        }
    }

    #[test]
    fn check_10_time() {
        let settings = config().settings;
        let grant = fixture().opened(); // not_before NOW, not_after NOW + 120
        time(&grant, &settings, NOW).unwrap();
        time(&grant, &settings, NOW - 60).expect("within the clock skew before");
        time(&grant, &settings, NOW + 180).expect("within the clock skew after");
        refused(
            time(&grant, &settings, NOW - 61),
            Check::Time,
            "not valid before 2025-11-22T00:06:50Z",
        );
        refused(
            time(&grant, &settings, NOW + 181),
            Check::Time,
            "expired at 2025-11-22T00:08:50Z",
        );

        let mut long_once = fixture();
        long_once.decision.not_after = Some(NOW + 121);
        refused(
            time(&long_once.opened(), &settings, NOW),
            Check::Time,
            "the once grant lasts 121s; this host allows at most 120s",
        );

        let mut timed = fixture().reusable(Grant::Timed);
        timed.decision.not_after = Some(NOW + 86_400);
        time(&timed.opened(), &settings, NOW + 1000).unwrap();
        timed.decision.not_after = Some(NOW + 86_401);
        refused(
            time(&timed.opened(), &settings, NOW),
            Check::Time,
            "max_ttl_s",
        );

        let always = fixture().reusable(Grant::Always);
        time(&always.opened(), &settings, NOW + 10 * 365 * 86_400).expect("always has no end");
        refused(
            time(&always.opened(), &settings, NOW - 3600),
            Check::Time,
            "not valid before",
        );
    }

    #[test]
    fn check_cwd_before_11() {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let tmp = TempDir::new();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let real = tmp.path().join("proj");
        std::fs::create_dir(&real).unwrap();
        let with_cwd = |cwd: &str| bound(|r| r.cwd = cwd.into());
        let root = Target::lookup("root").unwrap();
        let opened = cwd(&with_cwd(real.to_str().unwrap()), &root).unwrap();
        assert_eq!(opened.path(), real);

        symlink(&real, tmp.path().join("link")).unwrap();
        let link = tmp.path().join("link");
        refused(
            cwd(&with_cwd(link.to_str().unwrap()), &root),
            Check::Cwd,
            "is a symbolic link",
        );
        let dotted = format!("{}/../proj", real.display());
        refused(cwd(&with_cwd(&dotted), &root), Check::Cwd, "not canonical");
        refused(
            cwd(&with_cwd(&format!("{}/missing", real.display())), &root),
            Check::Cwd,
            "cannot open",
        );

        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        let stranger = stranger();
        refused(
            cwd(&with_cwd(real.to_str().unwrap()), &stranger),
            Check::Cwd,
            "cannot be entered by stranger",
        );
    }

    #[test]
    fn check_program_path_before_11() {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let tmp = TempDir::new();
        let real = tmp.path().join("tool");
        std::fs::write(&real, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink(&real, tmp.path().join("link")).unwrap();
        let root = Target::lookup("root").unwrap();
        let with_program = |path: &str| bound(|r| r.program = path.into());
        program_path(&with_program(real.to_str().unwrap()), &root).unwrap();
        let link = tmp.path().join("link");
        refused(
            program_path(&with_program(link.to_str().unwrap()), &root),
            Check::Program,
            "is a symbolic link",
        );
        for pseudo in [
            "/dev/stdin",
            "/proc/self/exe",
            "/dev/fd/3",
            "/sys/kernel/notes",
        ] {
            refused(
                program_path(&with_program(pseudo), &root),
                Check::Program,
                "programs from /proc, /dev or /sys are refused",
            );
        }
        let dotted = format!("{}/./tool", tmp.path().display());
        refused(
            program_path(&with_program(&dotted), &root),
            Check::Program,
            "not canonical",
        );
        refused(
            program_path(&with_program("/"), &root),
            Check::Program,
            "not a path to a file",
        );
        refused(
            program_path(&with_program(tmp.path().to_str().unwrap()), &root),
            Check::Program,
            "not a regular file",
        );
    }

    #[test]
    fn check_limits_before_11() {
        use crate::limits::Source;
        const INF: rlim_t = RLIM_INFINITY;
        let want = |limit, soft, hard| Wanted {
            limit,
            soft,
            hard,
            source: Source::Pid1,
        };
        let wanted = [
            want(Limit::Fsize, INF, INF),
            want(Limit::Nofile, 1024, 4096),
            want(Limit::Cpu, INF, INF),
        ];
        // The caller lowered soft limits only: everything is raised back.
        let soft_only = |l| match l {
            Limit::Fsize => (100, INF),
            Limit::Nofile => (10, 4096),
            _ => (5, INF),
        };
        let plan = limits(&wanted, soft_only, |_, _| panic!("no raise needed"), 0).unwrap();
        assert_eq!(
            plan.0,
            [
                (Limit::Fsize, (INF, INF)),
                (Limit::Nofile, (1024, 4096)),
                (Limit::Cpu, (INF, INF))
            ]
        );

        // Hard limits lowered too: raised where the elevator may.
        let hard_too = |l| match l {
            Limit::Nofile => (10, 2048),
            _ => (100, 100),
        };
        let plan = limits(&wanted, hard_too, |_, _| true, 0).unwrap();
        assert_eq!(plan.0[0], (Limit::Fsize, (INF, INF)));
        assert_eq!(plan.0[1], (Limit::Nofile, (1024, 4096)));

        // Limits the process already has are left alone.
        let as_wanted = |l| match l {
            Limit::Nofile => (1024, 4096),
            _ => (INF, INF),
        };
        let plan = limits(&wanted, as_wanted, |_, _| panic!("no raise needed"), 0).unwrap();
        assert!(plan.0.is_empty(), "{plan:?}");

        // Without CAP_SYS_RESOURCE: a soft limit that still fits under the caller's hard one
        // is given with that hard one; one that does not is refused, naming it.
        let plan = limits(&wanted[1..2], hard_too, |_, _| false, 0).unwrap();
        assert_eq!(plan.0, [(Limit::Nofile, (1024, 2048))]);
        refused(
            limits(&wanted, hard_too, |_, _| false, 0),
            Check::Limits,
            "the caller's hard fsize limit is 100, below the unlimited (bytes) that commands \
             get here (PID 1's soft limit), and the elevator cannot raise it",
        );
        let configured = [Wanted {
            source: Source::Settings,
            ..want(Limit::Nofile, 4096, 4096)
        }];
        refused(
            limits(&configured, hard_too, |_, _| false, 0),
            Check::Limits,
            "hard nofile limit is 2048, below the 4096 (files) that commands get here \
             ([settings.limits])",
        );

        // CPU time already used counts against a finite CPU limit, not against none.
        let cpu = [want(Limit::Cpu, 60, 60)];
        limits(&cpu, soft_only, |_, _| true, 0).unwrap();
        refused(
            limits(&cpu, soft_only, |_, _| true, 3),
            Check::Limits,
            "already used 3 s of CPU time",
        );
        limits(&wanted, soft_only, |_, _| true, 3).expect("no cpu limit: nothing to cut short");
    }

    #[test]
    fn check_11_single_use() {
        let tmp = TempDir::new();
        let ledger = Ledger::open_from(tmp.path(), &tmp.path().join("ledger")).unwrap();
        let settings = config().settings;
        let grant = fixture().opened();
        single_use_or_status(&grant, &settings, &ledger, NOW).unwrap();
        refused(
            single_use_or_status(&grant, &settings, &ledger, NOW),
            Check::SingleUse,
            "already used on this host",
        );
        let other = fixture().reusable(Grant::Timed).opened();
        single_use_or_status(&other, &settings, &ledger, NOW)
            .expect("reusable grants are not claimed");
        single_use_or_status(&other, &settings, &ledger, NOW).expect("and can be used again");
    }

    #[test]
    fn check_11_status() {
        let settings = config().settings;
        for kind in [Grant::Timed, Grant::Always] {
            let fx = fixture().reusable(kind);
            status(&fx.opened(), &settings, NOW).unwrap();
            status(&fx.opened(), &settings, NOW + 120).expect("exactly status_max_age_s old");

            let mut none = fixture().reusable(kind);
            none.status = None;
            refused(
                status(&none.opened(), &settings, NOW),
                Check::Status,
                &format!("this {kind} grant needs a fresh status from alice; none was sent"),
            );

            let mut foreign = fixture().reusable(kind);
            foreign.status_key = approver_key(2);
            refused(
                status(&foreign.opened(), &settings, NOW),
                Check::Status,
                "not by the decision's key",
            );

            // Same key, another console: it never saw this grant, so cannot vouch for it.
            let mut elsewhere = fixture().reusable(kind);
            elsewhere.status.as_mut().unwrap().console = ConsoleId([0x99; 16]);
            refused(
                status(&elsewhere.opened(), &settings, NOW),
                Check::Status,
                &format!(
                    "the status is from console {}, not from console {} that approved this grant",
                    ConsoleId([0x99; 16]),
                    CONSOLE_HERE
                ),
            );

            let mut renamed = fixture().reusable(kind);
            renamed.status.as_mut().unwrap().approver = "bob".into();
            refused(
                status(&renamed.opened(), &settings, NOW),
                Check::Status,
                "the status is from \"bob\"",
            );

            refused(
                status(&fx.opened(), &settings, NOW + 121),
                Check::Status,
                "is 121s old; at most 120s",
            );

            let mut future = fixture().reusable(kind);
            future.status.as_mut().unwrap().issued_at = NOW + 61;
            refused(
                status(&future.opened(), &settings, NOW),
                Check::Status,
                "issued in the future",
            );

            let mut revoked = fixture().reusable(kind);
            let decision_sha = revoked.opened().decision.sha256;
            revoked.status.as_mut().unwrap().revoked = [
                Revocation {
                    decision_sha256: sha256(b"something else"),
                    until: None,
                },
                Revocation {
                    decision_sha256: decision_sha,
                    until: revoked.decision.not_after,
                },
            ]
            .into_iter()
            .collect();
            refused(
                status(&revoked.opened(), &settings, NOW),
                Check::Status,
                "revoked by alice",
            );
        }
    }

    #[test]
    fn check_12_program() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new();
        let path = tmp.path().join("tool");
        std::fs::write(&path, b"approved bytes").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut fx = fixture();
        fx.request.program = path.to_str().unwrap().into();
        fx.request.program_sha256 = sha256(b"approved bytes");
        fx.bind();
        let root = Target::lookup("root").unwrap();
        let grant = fx.opened();
        let p = program(program_path(&grant, &root).unwrap(), &grant).unwrap();
        assert!(!p.copied);
        let opened = program_path(&grant, &root).unwrap();
        std::fs::write(&path, b"swapped bytes").unwrap();
        refused(
            program(opened, &grant),
            Check::Program,
            "the program changed after approval",
        );
    }
}
