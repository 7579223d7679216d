//! The process state the caller hands us — file descriptors, signal mask and dispositions,
//! resource limits, umask — made safe at startup and reset right before exec.
//!
//! The caller may start the elevator with stdio closed, any signal blocked or ignored, tiny
//! or huge resource limits. Nothing of that may change what the elevator does or how the
//! program starts.

use nix::fcntl::{OFlag, open};
use nix::libc::rlim_t;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{Uid, geteuid, setresuid};
use std::os::fd::{AsRawFd as _, IntoRawFd as _};

/// Descriptors the elevator may need at once (config, directories, ledger, audit, program,
/// memory copy, token) with a wide margin.
const MIN_NOFILE: rlim_t = 64;

/// The caller's values of the limits we changed, to hand back to the program.
#[derive(Debug, Default)]
pub struct CallerLimits {
    saved: Vec<(Resource, rlim_t, rlim_t)>,
}

/// Run first thing in `main`, before any check. Failures here are not fatal: an elevator
/// that cannot raise a limit later fails closed at the step that needs it.
pub fn harden_at_startup() -> CallerLimits {
    // Files the elevator creates (ledger entries, the audit log) are private whatever the
    // caller's umask; the program gets 022 back before exec.
    umask(Mode::from_bits_truncate(0o077));
    open_missing_stdio();
    // Non-dumpable: no core file, no ptrace by the caller, /proc/self/* owned by root.
    let _ = nix::sys::prctl::set_dumpable(false);
    let mut limits = CallerLimits::default();
    // No core dumps (soft limit only, so the program can get the caller's value back).
    limits.set(Resource::RLIMIT_CORE, |_, hard| (0, hard));
    // The audit line must not be cut short by a file size limit, the elevator must not be
    // killed for CPU time mid-way, and it needs a few descriptors and some memory.
    let inf = nix::libc::RLIM_INFINITY;
    limits.set(Resource::RLIMIT_FSIZE, |_, _| (inf, inf));
    limits.set(Resource::RLIMIT_CPU, |_, _| (inf, inf));
    limits.set(Resource::RLIMIT_AS, |_, _| (inf, inf));
    limits.set(Resource::RLIMIT_DATA, |_, _| (inf, inf));
    limits.set(Resource::RLIMIT_NOFILE, |soft, hard| {
        (soft.max(MIN_NOFILE), hard.max(MIN_NOFILE))
    });
    // A write past a file size limit raises SIGXFSZ; it must never kill an audit write.
    let _ = crate::sys::ignore_signal(Signal::SIGXFSZ as i32);
    limits
}

impl CallerLimits {
    fn set(&mut self, resource: Resource, new: impl FnOnce(rlim_t, rlim_t) -> (rlim_t, rlim_t)) {
        let Ok((soft, hard)) = getrlimit(resource) else {
            return;
        };
        let (new_soft, new_hard) = new(soft, hard);
        if (new_soft, new_hard) == (soft, hard) {
            return;
        }
        // Raising a hard limit needs CAP_SYS_RESOURCE, which a restricted bounding set may
        // withhold even from root; then go as far as the caller's hard limit allows.
        let changed = setrlimit(resource, new_soft, new_hard).is_ok()
            || (new_soft.min(hard) != soft
                && setrlimit(resource, new_soft.min(hard), hard).is_ok());
        if changed {
            self.saved.push((resource, soft, hard));
        }
    }

    /// Give the caller's values back (only lowering, which any user may do).
    pub fn restore(&self) -> nix::Result<()> {
        for &(resource, soft, hard) in &self.saved {
            setrlimit(resource, soft, hard)?;
        }
        Ok(())
    }

    pub fn changed(&self) -> usize {
        self.saved.len()
    }
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
    }
}

/// Default dispositions for every signal and an empty mask, as a freshly started program
/// expects; umask 022.
pub fn reset_signals_and_umask() -> std::io::Result<()> {
    crate::sys::reset_all_signal_dispositions()?;
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    umask(Mode::from_bits_truncate(0o022));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_recorded_and_restored() {
        // Limits are process-wide: this only lowers the core limit and puts it back.
        let (soft, hard) = getrlimit(Resource::RLIMIT_CORE).unwrap();
        let mut limits = CallerLimits::default();
        limits.set(Resource::RLIMIT_CORE, |_, hard| (0, hard));
        assert_eq!(getrlimit(Resource::RLIMIT_CORE).unwrap(), (0, hard));
        assert_eq!(limits.changed(), usize::from(soft != 0));
        limits.restore().unwrap();
        assert_eq!(getrlimit(Resource::RLIMIT_CORE).unwrap(), (soft, hard));
    }
}
