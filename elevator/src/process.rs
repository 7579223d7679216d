//! The process state the caller hands us — file descriptors, signal mask, dispositions and
//! pending signals, interval timers, resource limits, scheduling, personality, umask — made
//! safe at startup and reset right before exec.
//!
//! The caller may start the elevator with stdio closed, any signal blocked, ignored or
//! pending, a timer armed, tiny or huge resource limits, the idle scheduling class. Nothing of
//! that may change what the elevator does or how the program starts.

use nix::fcntl::{OFlag, open};
use nix::libc::{RLIM_INFINITY, rlim_t};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{Uid, geteuid, setresuid};
use std::os::fd::{AsRawFd as _, IntoRawFd as _};

/// Descriptors the elevator may need at once (config, directories, ledger, audit, program,
/// memory copy, token) with a wide margin.
const MIN_NOFILE: rlim_t = 64;

/// What the startup hardening could not do.
#[derive(Debug, Default)]
pub struct OwnLimits {
    /// A limit of the caller's that the elevator's own writes would run under, because it
    /// cannot be lifted: the refusal, naming it. Nothing is written then.
    pub unliftable: Option<String>,
}

/// Run first thing in `main`, before any check. Nothing here fails the attempt by itself:
/// a limit the elevator needs lifted and cannot is reported in [`OwnLimits::unliftable`] and
/// refused right after check 1, before anything is written.
pub fn harden_at_startup() -> OwnLimits {
    // Files the elevator creates (ledger entries, the audit log) are private whatever the
    // caller's umask; the program gets 022 back before exec.
    umask(Mode::from_bits_truncate(0o077));
    open_missing_stdio();
    // Non-dumpable: no core file, no ptrace by the caller, /proc/self/* owned by root.
    let _ = nix::sys::prctl::set_dumpable(false);
    // Process state that survives exec and that the caller chose: its timers would fire in
    // the elevator or the command, its scheduling would starve a lock holder, its personality
    // flags change what the command sees. Failing to reset it here fails closed later: the
    // same resets run again before exec, and an error there stops the exec.
    let _ = crate::sys::disarm_interval_timers();
    let _ = crate::sys::reset_scheduling();
    let _ = crate::sys::reset_personality();
    // No core dumps of the elevator; the command gets its own limits before exec.
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_CORE) {
        let _ = setrlimit(Resource::RLIMIT_CORE, 0, hard);
    }
    // The ledger and audit writes must never be cut short by a file size limit, nor the
    // elevator killed for CPU time part-way through one (a CPU limit counts the time the
    // caller's process used before exec): both must be lifted, or nothing is written.
    let mut own = OwnLimits::default();
    for (resource, name, what) in [
        (Resource::RLIMIT_FSIZE, "fsize", "file size"),
        (Resource::RLIMIT_CPU, "cpu", "CPU time"),
    ] {
        if let Err(hard) = lift(resource) {
            own.unliftable.get_or_insert_with(|| {
                format!(
                    "the caller's hard {what} limit ({name}) is {hard} and the elevator cannot \
                     lift it (it lacks CAP_SYS_RESOURCE); it writes its ledger and audit log \
                     only under no limit of the caller's, so nothing was written or run: call \
                     assent-elevate from a process without a hard {name} limit"
                )
            });
        }
    }
    // As much memory, stack and real-time CPU as may be had, and a few descriptors.
    for resource in [
        Resource::RLIMIT_AS,
        Resource::RLIMIT_DATA,
        Resource::RLIMIT_STACK,
        Resource::RLIMIT_RTTIME,
    ] {
        let _ = lift(resource);
    }
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < MIN_NOFILE {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, MIN_NOFILE, hard.max(MIN_NOFILE))
                .or_else(|_| setrlimit(Resource::RLIMIT_NOFILE, hard.min(MIN_NOFILE), hard));
        }
    }
    // A write past a file size limit raises SIGXFSZ; it must never kill an audit write.
    let _ = crate::sys::ignore_signal(Signal::SIGXFSZ as i32);
    own
}

/// Remove `resource`'s limit for this process: both to unlimited, or (without
/// `CAP_SYS_RESOURCE`) the soft one up to the hard one, which is then returned as the error.
fn lift(resource: Resource) -> Result<(), u64> {
    let (soft, hard) = getrlimit(resource).unwrap_or((0, 0));
    if (soft, hard) == (RLIM_INFINITY, RLIM_INFINITY)
        || setrlimit(resource, RLIM_INFINITY, RLIM_INFINITY).is_ok()
    {
        return Ok(());
    }
    let _ = setrlimit(resource, hard, hard);
    Err(hard)
}

/// If the caller closed 0, 1 or 2, put /dev/null there, so that no file the elevator opens
/// later lands on a standard stream (where the program would inherit it).
fn open_missing_stdio() {
    // open() returns the lowest free number: while that is 0–2, keep it (leak it on purpose).
    for _ in 0..3 {
        let Ok(fd) = open("/dev/null", OFlag::O_RDWR, Mode::empty()) else {
            // Without /dev/null, refuse to go on rather than risk descriptor confusion.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"assent-elevate: refused (setup): cannot open /dev/null\n",
            );
            std::process::exit(crate::EXIT_REFUSED);
        };
        if fd.as_raw_fd() > 2 {
            return; // dropping closes it
        }
        let _ = fd.into_raw_fd();
    }
}

/// Shut the caller out, from the moment a grant is about to be spent (or a refusal recorded)
/// until exec or exit, so it cannot stop the elevator half-way between claiming a once-grant,
/// writing the audit line and starting the program, nor while it holds the ledger's or the
/// audit log's lock (which would hold up every other elevation until their wait runs out):
///
/// - every signal that can be blocked is blocked, the terminal's SIGINT and SIGTSTP included;
/// - the real and saved uids become root too. kill(2) lets a user signal a process whose real
///   or saved uid is theirs, which until now was the caller's: after this only root can send
///   the elevator SIGSTOP or SIGKILL. The caller's uid was read at startup ([`Caller`]) and
///   nothing later asks the kernel for it.
///
/// Only when the effective uid is already root (check 1 passed); a failure leaves the uids as
/// they were, which is no worse than before: a caller that stops its own elevator only delays
/// others by the locks' bounded wait, and being killed only means nothing runs.
///
/// [`Caller`]: crate::identity::Caller
pub fn shut_out_caller() {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), None);
    let root = Uid::from_raw(0);
    if geteuid().is_root() {
        let _ = setresuid(root, root, root);
        // Until now the caller could renice this process or make it SCHED_IDLE (a user may
        // do that to processes whose real uid is theirs): undo it before taking a lock.
        let _ = crate::sys::reset_scheduling();
    }
}

/// Default dispositions for every signal, none pending and an empty mask, as a freshly
/// started program expects; no interval timer, default scheduling and personality; umask 022.
pub fn reset_process_state() -> std::io::Result<()> {
    crate::sys::disarm_interval_timers()?;
    crate::sys::reset_scheduling()?;
    crate::sys::reset_personality()?;
    crate::sys::reset_all_signal_dispositions()?;
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    umask(Mode::from_bits_truncate(0o022));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_lifted_as_far_as_the_hard_limit_allows() {
        // Limits are process-wide: only lower the core limit's soft value and put it back.
        let (soft, hard) = getrlimit(Resource::RLIMIT_CORE).unwrap();
        setrlimit(Resource::RLIMIT_CORE, 0, hard).unwrap();
        let lifted = lift(Resource::RLIMIT_CORE);
        let now = getrlimit(Resource::RLIMIT_CORE).unwrap();
        match lifted {
            Ok(()) => assert_eq!(now, (RLIM_INFINITY, RLIM_INFINITY)),
            // No CAP_SYS_RESOURCE and a finite hard limit: the soft one goes that far.
            Err(reported) => assert_eq!((reported, now), (hard, (hard, hard))),
        }
        setrlimit(Resource::RLIMIT_CORE, soft, now.1).unwrap();
    }
}
