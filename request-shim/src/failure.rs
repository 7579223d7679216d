//! Why `assent` stopped without running the command, and the exit status that says so.
//!
//! Agents read the status, people read the line: every failure is one line on stderr starting
//! `assent: ` plus one of the statuses documented in `assent --help`.

use std::fmt;
use std::process::ExitCode;

/// The exit statuses of `assent` other than the command's own (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: `sudo -n` and no cached grant covers the command; nobody was asked.
    ApprovalRequired,
    /// 64: the command line was wrong.
    Usage,
    /// 75: no decision before the deadline, or the relay could not be reached. Retryable.
    Retry,
    /// 77: an approver denied the request, or something refused it.
    Denied,
    /// 78: the agent's own set-up (key, config, elevator, relay trust) is missing or wrong.
    Config,
    /// 129: hung up (SIGHUP) while waiting; the request was withdrawn, nothing ran.
    HungUp,
    /// 130: interrupted (SIGINT) while waiting; the request was withdrawn, nothing ran.
    Interrupted,
    /// 143: terminated (SIGTERM) while waiting; the request was withdrawn, nothing ran.
    Terminated,
}

impl Exit {
    /// Every status, in the order `--help` and the man page list them.
    pub const ALL: [Exit; 8] = [
        Exit::ApprovalRequired,
        Exit::Usage,
        Exit::Retry,
        Exit::Denied,
        Exit::Config,
        Exit::HungUp,
        Exit::Interrupted,
        Exit::Terminated,
    ];

    pub fn code(self) -> u8 {
        match self {
            Exit::ApprovalRequired => 1,
            Exit::Usage => 64,
            Exit::Retry => 75,
            Exit::Denied => 77,
            Exit::Config => 78,
            Exit::HungUp => 129,
            Exit::Interrupted => 130,
            Exit::Terminated => 143,
        }
    }

    /// What the status tells the caller, as `--help` and the man page say it.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::ApprovalRequired => {
                "sudo -n only: approval required and no cached grant covers the command; nobody was asked"
            }
            Exit::Usage => {
                "usage: the command line was wrong (unknown option, non-UTF-8 argument, program not found)"
            }
            Exit::Retry => {
                "no decision before the timeout, or the relay was unreachable the whole time (retryable)"
            }
            Exit::Denied => "denied by an approver, or refused by the elevator",
            Exit::Config => {
                "configuration, found before anyone is asked: no agent key, a bad agent.toml, no_new_privs set (a sandbox: use `assent mcp`), an elevator that is not setuid root or whose elevator.toml it would refuse, a caller who is not a [[requester]] or may not become the user asked for, a directory that user cannot enter, or a relay that cannot be used as set up (certificate not trusted or for another name, ws:// to a TLS relay, this key refused)"
            }
            Exit::HungUp => {
                "hung up (SIGHUP) while waiting; the request was withdrawn, nothing ran"
            }
            Exit::Interrupted => {
                "interrupted (SIGINT) while waiting; the request was withdrawn, nothing ran"
            }
            Exit::Terminated => {
                "terminated (SIGTERM) while waiting; the request was withdrawn, nothing ran"
            }
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

/// A one-line reason and the status to exit with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Usage, message)
    }

    pub fn config(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Config, message)
    }

    pub fn retry(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Retry, message)
    }

    pub fn denied(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Denied, message)
    }

    /// Print the line and turn it into the process's exit status.
    pub fn report(&self) -> ExitCode {
        say(&self.message);
        self.exit.into()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type Result<T, E = Failure> = std::result::Result<T, E>;

static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `quiet = true` in agent.toml, or `ASSENT_QUIET=1`: from now on only failures and warnings
/// are written, no informational line.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

pub fn is_quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether the environment asks for quiet: `ASSENT_QUIET` set to anything but empty or `0`.
pub fn quiet_from_env(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

/// An informational line (what is happening, not what went wrong): like [`say`], unless quiet.
pub fn inform(text: impl fmt::Display) {
    if !is_quiet() {
        say(text);
    }
}

/// One line on stderr, `assent: TEXT`. A closed or broken stderr is not a reason to stop
/// (which `eprintln!` would do by panicking).
pub fn say(text: impl fmt::Display) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "assent: {text}");
}
