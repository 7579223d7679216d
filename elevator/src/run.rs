//! One elevation attempt from start to exec, in the order of SPEC §6, and the two root-only
//! admin commands. Every refusal after the audit log is open leaves an audit line.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use assent_protocol::{HostId, MAX_TOKEN_LEN};
use nix::unistd::{Gid, geteuid, gethostname, getuid, setegid};

use crate::audit::{AuditLog, AuditRecord};
use crate::checks::{self, Check, Refusal};
use crate::config::{self, Config};
use crate::exec::{Launch, environment, passthrough_vars};
use crate::identity::{Caller, Target};
use crate::ledger::Ledger;
use crate::limits;
use crate::process::{OwnLimits, shut_out_caller};
use crate::time::now_unix;
use crate::trusted::check_own_binary;
use assent_common::paths::{AUDIT_LOG, ELEVATOR_CONFIG, HOST_ID, LEDGER_DIR};

/// Where the grant token comes from.
#[derive(Debug)]
pub enum GrantSource {
    /// `--grant TOKEN`
    Inline(OsString),
    /// `--grant-fd N`, claimed at startup before anything else was opened.
    Fd(OwnedFd),
    /// `--grant-fd 0`: standard input, replaced by /dev/null once read.
    Stdin,
}

/// An elevation request as invoked.
#[derive(Debug)]
pub struct Invocation {
    pub grant: GrantSource,
    pub program: OsString,
    pub args: Vec<OsString>,
}

/// How an attempt ended when it did not exec.
#[derive(Debug)]
pub enum Failure {
    /// A check failed: exit 77.
    Refused(Refusal),
    /// The configuration is bad or unsafe: exit 78.
    Config(String),
    /// All checks passed but the switch or exec failed: exit 126.
    Exec(String),
}

impl Failure {
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Refused(_) => crate::EXIT_REFUSED,
            Failure::Config(_) => crate::EXIT_CONFIG,
            Failure::Exec(_) => crate::EXIT_EXEC_FAILED,
        }
    }

    /// The one stderr line, without the `assent-elevate: ` prefix.
    pub fn message(&self) -> String {
        match self {
            Failure::Refused(r) => r.to_string(),
            Failure::Config(why) => format!("config: {why}"),
            Failure::Exec(why) => {
                format!("{why} (all checks passed; the audit log records the attempt)")
            }
        }
    }
}

/// Check everything and exec; returns only when nothing runs.
pub fn elevate(invocation: Invocation, own_limits: OwnLimits) -> Failure {
    let caller = Caller::current();
    let hostname = gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let args: Vec<Vec<u8>> = invocation
        .args
        .iter()
        .map(|a| a.as_bytes().to_vec())
        .collect();
    let mut record = AuditRecord::start(&caller, &hostname, invocation.program.as_bytes(), &args);

    // 1: setuid root, own binary safe; then the audit log, then the configuration.
    if let Err(refusal) = checks::setup(geteuid().as_raw(), no_new_privs(), &check_own_binary()) {
        return Failure::Refused(refusal);
    }
    // Nothing is written under a limit the caller chose (SPEC §13.3): not even the refusal.
    if let Some(why) = own_limits.unliftable {
        return Failure::Refused(Refusal::new(Check::Limits, why));
    }
    // Files and directories the elevator creates belong to root's group, not the caller's.
    if let Err(e) = setegid(Gid::from_raw(0)) {
        return Failure::Refused(Refusal::new(
            Check::Setup,
            format!("cannot switch to group root: {}", e.desc()),
        ));
    }
    let mut audit = match AuditLog::open(Path::new(AUDIT_LOG)) {
        Ok(audit) => audit,
        Err(why) => {
            return Failure::Refused(Refusal::new(
                Check::Setup,
                format!("{why}; nothing runs unaudited"),
            ));
        }
    };
    let mut attempt = Attempt {
        audit: &mut audit,
        record: &mut record,
    };
    let config = match config::load(Path::new(ELEVATOR_CONFIG)) {
        Ok(config) => config,
        // SPEC §6.1: a bad or unsafe configuration, its directories included, is exit 78.
        Err(why) => {
            let why = why.to_string();
            attempt.log_refusal(&Refusal::new(Check::Setup, format!("config: {why}")));
            return Failure::Config(why);
        }
    };
    // Read with the configuration: like it, a missing or unsafe one is the set-up's fault.
    let host_id = match config::load_host_id(Path::new(HOST_ID)) {
        Ok(id) => id,
        Err(why) => {
            let why = why.to_string();
            attempt.log_refusal(&Refusal::new(Check::Setup, format!("host id: {why}")));
            return Failure::Config(why);
        }
    };
    let here = Here {
        hostname: &hostname,
        host_id,
    };
    let Err(failure) = attempt.checks(&config, &caller, &here, invocation);
    failure
}

/// This host as check 6 sees it.
struct Here<'a> {
    hostname: &'a str,
    host_id: HostId,
}

struct Attempt<'a> {
    audit: &'a mut AuditLog,
    record: &'a mut AuditRecord,
}

impl Attempt<'_> {
    /// Record a refusal. If even that fails, the refusal stands and says so.
    fn log_refusal(&mut self, refusal: &Refusal) -> Option<String> {
        shut_out_caller();
        self.record.refused(refusal);
        self.audit.append(self.record, now_unix()).err()
    }

    fn refuse(&mut self, refusal: Refusal) -> Failure {
        match self.log_refusal(&refusal) {
            None => Failure::Refused(refusal),
            Some(why) => Failure::Refused(refusal.with_note(&why)),
        }
    }

    fn checks(
        &mut self,
        config: &Config,
        caller: &Caller,
        here: &Here<'_>,
        invocation: Invocation,
    ) -> Result<std::convert::Infallible, Failure> {
        macro_rules! check {
            ($e:expr) => {
                match $e {
                    Ok(value) => value,
                    Err(refusal) => return Err(self.refuse(refusal)),
                }
            };
        }
        let now = now_unix();
        let settings = &config.settings;
        // 2: before anything the caller sent is parsed.
        let requester = check!(checks::requester(config, caller));
        self.record.from_requester();
        // 3
        let text = check!(read_token(invocation.grant));
        let grant = check!(checks::token(&text));
        self.record.add_grant(&grant);
        // 4 – 10
        check!(checks::approver(config, &grant));
        check!(checks::verdict(&grant));
        check!(checks::binding(&grant));
        check!(checks::host(&grant, here.hostname, &here.host_id));
        check!(checks::user(&grant, caller));
        let target = check!(checks::run_as(&grant, requester, Target::lookup));
        let args: Vec<&OsStr> = invocation.args.iter().map(OsString::as_os_str).collect();
        check!(checks::command(&grant, &invocation.program, &args));
        check!(checks::time(&grant, settings, now));
        // Before 11, so that what cannot run does not spend a once-grant (SPEC §13.2).
        let cwd = check!(checks::cwd(&grant, &target));
        let opened = check!(checks::program_path(&grant, &target));
        let wanted = check!(
            limits::wanted(&settings.limits, limits::read_root_limits)
                .map_err(|why| Refusal::new(Check::Limits, why))
        );
        let limits = check!(checks::limits(
            &wanted,
            limits::current,
            limits::raise_hard,
            limits::cpu_used_s()
        ));
        // 11: from here a once-grant is spent; nothing the caller does may interrupt until exec.
        shut_out_caller();
        let ledger = check!(
            Ledger::open(Path::new(LEDGER_DIR)).map_err(|why| Refusal::new(Check::Setup, why.0))
        );
        check!(checks::single_use_or_status(&grant, settings, &ledger, now));
        // The monitor that stays behind keeps nothing of the ledger open.
        drop(ledger);
        // 12
        let program = check!(checks::program(opened, &grant));

        let env = environment(
            &target,
            &settings.secure_path,
            &grant,
            caller,
            passthrough_vars(|name| std::env::var_os(name)),
        );
        let launch = Launch::new(program, &grant, env, target, cwd, limits);
        self.record.exec();
        if let Err(why) = self.audit.append(self.record, now_unix()) {
            return Err(Failure::Refused(Refusal::new(
                Check::Setup,
                format!("{why}; nothing runs unaudited"),
            )));
        }
        Err(Failure::Exec(crate::monitor::run(
            launch,
            caller.uid,
            self.audit,
            self.record,
        )))
    }
}

/// Whether this process runs with no_new_privs (then the kernel ignored the setuid bit). An
/// error reading it counts as no: the refusal then gives the general fix.
fn no_new_privs() -> bool {
    nix::sys::prctl::get_no_new_privs().unwrap_or(false)
}

/// Read the token (check 3): from the command line, or from the descriptor (which is then
/// closed) up to a newline or end of file, whichever comes first, so a writer that keeps
/// its end open cannot hang the elevator once the token is through.
fn read_token(source: GrantSource) -> Result<Vec<u8>, Refusal> {
    let unreadable =
        |e: std::io::Error| Refusal::new(Check::Token, format!("cannot read the grant: {e}"));
    match source {
        GrantSource::Inline(text) => Ok(text.into_encoded_bytes()),
        GrantSource::Fd(fd) => read_line_bounded(std::fs::File::from(fd)).map_err(unreadable),
        GrantSource::Stdin => {
            let text = read_line_bounded(std::io::stdin().lock()).map_err(unreadable)?;
            // "Closed" like any other grant descriptor, without leaving 0 free for a later open.
            std::fs::File::open("/dev/null")
                .and_then(|null| nix::unistd::dup2_stdin(&null).map_err(std::io::Error::from))
                .map_err(|e| {
                    Refusal::new(
                        Check::Token,
                        format!("cannot close standard input after reading the grant: {e}"),
                    )
                })?;
            Ok(text)
        }
    }
}

/// At most `MAX_TOKEN_LEN` + 2 bytes (room for a CR LF), stopping after the first newline.
fn read_line_bounded(mut reader: impl Read) -> std::io::Result<Vec<u8>> {
    let limit = MAX_TOKEN_LEN + 2;
    let mut text = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    while text.len() < limit {
        let want = buf.len().min(limit - text.len());
        let n = match reader.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        text.extend_from_slice(&buf[..n]);
        if buf[..n].contains(&b'\n') {
            break;
        }
    }
    Ok(text)
}

/// `assent-elevate check`: validate the configuration as the elevator would and list it.
pub fn check_config() -> Result<String, Failure> {
    require_real_root("check")?;
    // The same checks an elevation runs first: the binary, then the configuration.
    checks::setup(geteuid().as_raw(), no_new_privs(), &check_own_binary())
        .map_err(|refusal| Failure::Config(refusal.detail))?;
    let config =
        config::load(Path::new(ELEVATOR_CONFIG)).map_err(|e| Failure::Config(e.to_string()))?;
    let host_id =
        config::load_host_id(Path::new(HOST_ID)).map_err(|e| Failure::Config(e.to_string()))?;
    let mut out = format!("{ELEVATOR_CONFIG}: ok\nhost id {host_id} ({HOST_ID})\n");
    for a in &config.approvers {
        out.push_str(&format!("approver {} {}\n", a.name, a.key.fingerprint()));
    }
    for r in &config.requesters {
        out.push_str(&format!(
            "requester {} -> {}\n",
            r.user,
            r.run_as.join(", ")
        ));
    }
    let s = &config.settings;
    out.push_str(&format!(
        "settings secure_path={} once_window_s={} max_ttl_s={} status_max_age_s={} \
         clock_skew_s={}\n",
        s.secure_path, s.once_window_s, s.max_ttl_s, s.status_max_age_s, s.clock_skew_s
    ));
    let configured: Vec<String> = s
        .limits
        .0
        .iter()
        .map(|(limit, pair)| format!("{limit}={}:{}", pair.soft, pair.hard))
        .collect();
    out.push_str(&if configured.is_empty() {
        format!("limits PID 1's (from {})\n", limits::ROOT_LIMITS)
    } else {
        format!(
            "limits {}, the rest PID 1's (from {})\n",
            configured.join(" "),
            limits::ROOT_LIMITS
        )
    });
    Ok(out)
}

/// `assent-elevate audit verify`: walk the chain. `Ok` holds the report line; a broken chain
/// is `Err` with the first bad line named.
pub fn verify_audit() -> Result<Result<String, String>, Failure> {
    require_real_root("audit verify")?;
    Ok(crate::audit::verify_file(Path::new(AUDIT_LOG)).map(|n| format!("ok: {n} lines")))
}

fn require_real_root(command: &str) -> Result<(), Failure> {
    if getuid().is_root() {
        return Ok(());
    }
    Err(Failure::Refused(Refusal::new(
        Check::Requester,
        format!("only root (real uid 0) may run `assent-elevate {command}`"),
    )))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn the_token_is_read_up_to_the_newline_even_if_the_writer_stays() {
        let (reader, writer) = nix::unistd::pipe().unwrap();
        let mut writer = std::fs::File::from(writer);
        writer.write_all(b"dG9rZW4=\n").unwrap();
        // `writer` is still open: reading must not wait for end of file.
        let text = read_token(GrantSource::Fd(reader)).unwrap();
        assert_eq!(text, b"dG9rZW4=\n");
        drop(writer);
    }

    #[test]
    fn reading_is_bounded() {
        let big = vec![b'A'; MAX_TOKEN_LEN * 2];
        let text = read_line_bounded(&big[..]).unwrap();
        assert_eq!(text.len(), MAX_TOKEN_LEN + 2);
        let grant = checks::token(&text).unwrap_err();
        assert_eq!(grant.check, Check::Token);
        assert!(grant.detail.contains("longer than"), "{grant}");
        assert_eq!(
            read_line_bounded(&b"no newline"[..]).unwrap(),
            b"no newline"
        );
    }

    #[test]
    fn failures_map_to_the_documented_exit_codes() {
        let refused = Failure::Refused(Refusal::new(Check::Host, "x"));
        assert_eq!(
            (refused.exit_code(), refused.message().as_str()),
            (77, "refused (host): x")
        );
        let config = Failure::Config("/etc/assent/elevator.toml: bad".into());
        assert_eq!(config.exit_code(), 78);
        assert_eq!(config.message(), "config: /etc/assent/elevator.toml: bad");
        assert_eq!(Failure::Exec("cannot execute".into()).exit_code(), 126);
    }
}
