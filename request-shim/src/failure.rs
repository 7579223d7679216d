//! Why `assent` stopped without running the command, and the exit status that says so.
//!
//! Agents read the status, people read the line: every failure is one line on stderr starting
//! `assent: ` plus one of the statuses documented in `assent --help`.

use std::fmt;
use std::process::ExitCode;

/// The exit statuses of `assent` other than the command's own (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 64: the command line was wrong.
    Usage,
    /// 75: no decision before the deadline, or the relay could not be reached. Retryable.
    Retry,
    /// 77: an approver denied the request, or something refused it.
    Denied,
    /// 78: the agent's own set-up (key, config, elevator, relay trust) is missing or wrong.
    Config,
    /// 130: interrupted while waiting; nothing ran.
    Interrupted,
}

impl Exit {
    /// Every status, in the order `--help` and the man page list them.
    pub const ALL: [Exit; 5] = [
        Exit::Usage,
        Exit::Retry,
        Exit::Denied,
        Exit::Config,
        Exit::Interrupted,
    ];

    pub fn code(self) -> u8 {
        match self {
            Exit::Usage => 64,
            Exit::Retry => 75,
            Exit::Denied => 77,
            Exit::Config => 78,
            Exit::Interrupted => 130,
        }
    }

    /// What the status tells the caller, as `--help` and the man page say it.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Usage => {
                "usage: the command line was wrong (unknown option, non-UTF-8 argument, program not found)"
            }
            Exit::Retry => {
                "no decision before the timeout, or the relay was unreachable the whole time (retryable)"
            }
            Exit::Denied => "denied by an approver, or refused by the elevator",
            Exit::Config => {
                "configuration: no agent key, a bad agent.toml, no elevator, or a relay that cannot be used as set up (certificate not trusted or for another name, ws:// to a TLS relay, this key refused)"
            }
            Exit::Interrupted => "interrupted while waiting; nothing ran",
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

/// One line on stderr, `assent: TEXT`. A closed or broken stderr is not a reason to stop
/// (which `eprintln!` would do by panicking).
pub fn say(text: impl fmt::Display) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "assent: {text}");
}
