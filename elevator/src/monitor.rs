//! The monitor: after the ledger entry and the `exec` audit line, the elevator forks. The
//! child becomes the target user and execs the command ([`Launch::exec`]); the parent stays
//! behind as the command's monitor, so that the agent can stop what it started, as with sudo:
//!
//! - it holds no lock, and its real uid is the caller's again, so the caller may signal it
//!   (its effective and saved uids stay root, so it can signal the command, and the caller
//!   cannot trace it or change its limits);
//! - it relays SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH and SIGCONT to the
//!   command. A group signal from the agent (its timeout killing the process group) reaches
//!   the monitor but not the root command, so relaying is what stops it. A signal the
//!   terminal sent (^C) reached the command already and is not sent twice, nor one the
//!   command sent itself;
//! - the command dies with it: the child sets its parent-death signal to SIGKILL once it is
//!   the target user (a change of identity clears it) and checks that the monitor is still
//!   its parent;
//! - when the command ends, the monitor shuts the caller out again, appends the `exit`
//!   receipt (status or signal, wall and CPU time) and exits with the command's status, or
//!   128 + N for signal N, as a shell reports it.
//!
//! No signal handler is ever installed: every signal stays blocked and the monitor takes the
//! ones it relays, and SIGCHLD, with sigwaitinfo(2).

use std::io::Read as _;
use std::time::Instant;

use nix::fcntl::OFlag;
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, Uid, getpid, pipe2, setresuid};

use crate::audit::{AuditLog, AuditRecord, Ending, ExitReceipt};
use crate::exec::Launch;
use crate::process::shut_out_caller;
use crate::time::now_unix;

/// The signals relayed to the command.
pub const RELAYED: [Signal; 8] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

/// Start the command and monitor it. In the monitor this never returns: it exits with the
/// command's status. It returns (one line) only in the child when exec failed, or when the
/// fork itself failed.
pub fn run(launch: Launch, caller_uid: u32, audit: &mut AuditLog, record: &AuditRecord) -> String {
    // Signals the caller left pending are its own business, not the command's: discard them
    // (every disposition back to the default, SIGCHLD's too, so the kernel never reaps the
    // command for us), and keep SIGXFSZ away from the receipt's write.
    if let Err(e) = crate::sys::reset_all_signal_dispositions()
        .and_then(|()| crate::sys::ignore_signal(libc::SIGXFSZ))
    {
        return format!("cannot prepare the monitor's signals: {e}");
    }
    // Closed by the child's exec (close-on-exec): the monitor relays nothing before, since
    // the child discards pending signals right before exec.
    let (exec_seen, exec_done) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(ends) => ends,
        Err(e) => return format!("cannot start the command: pipe: {}", e.desc()),
    };
    let monitor = getpid();
    let started = Instant::now();
    let child = match crate::sys::fork() {
        Err(e) => return format!("cannot start the command: fork: {e}"),
        Ok(ForkResult::Child) => {
            drop(exec_seen);
            let why = launch.exec(monitor);
            drop(exec_done);
            return why;
        }
        Ok(ForkResult::Parent { child }) => child,
    };
    drop(exec_done);
    drop(launch);
    // From here the caller may signal the monitor (kill(2) allows it when the sender's uid is
    // the target's real uid).
    let root = Uid::from_raw(0);
    let _ = setresuid(Uid::from_raw(caller_uid), root, root);
    // Changing ids can make the process dumpable again; it must stay closed to the caller.
    let _ = nix::sys::prctl::set_dumpable(false);
    // Until the child has exec'd (or died trying), there is nothing to relay to.
    let _ = std::fs::File::from(exec_seen).read(&mut [0u8; 1]);
    let ending = watch(child);
    let cpu_ms = getrusage(UsageWho::RUSAGE_CHILDREN)
        .map(|usage| millis(usage.user_time()) + millis(usage.system_time()))
        .unwrap_or(0);
    let wall_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    // No one may stop the monitor while it holds the audit log's lock.
    shut_out_caller();
    let mut receipt = ExitReceipt::for_exec(record, child.as_raw(), ending);
    receipt.wall_ms = wall_ms;
    receipt.cpu_ms = cpu_ms;
    if let Err(why) = audit.append_receipt(&receipt, now_unix()) {
        // The command has run; its status is still the caller's to see.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("assent-elevate: the command ended, but its exit receipt is missing: {why}\n")
                .as_bytes(),
        );
    }
    std::process::exit(ending.exit_code());
}

/// Relay signals to `child` until it ends; how it ended.
fn watch(child: Pid) -> Ending {
    let mut set = SigSet::empty();
    for signal in RELAYED {
        set.add(signal);
    }
    set.add(Signal::SIGCHLD);
    loop {
        let info = match crate::sys::wait_signal(&set) {
            Ok(info) => info,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            // Cannot happen with a valid set; still wait for the command, without relaying.
            Err(_) => return wait_blocking(child),
        };
        if info.signal == libc::SIGCHLD {
            match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => return Ending::Exited(code),
                Ok(WaitStatus::Signaled(_, signal, _)) => return Ending::Killed(signal as i32),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return wait_blocking(child),
            }
        }
        if relays(&info, child) {
            if let Ok(signal) = Signal::try_from(info.signal) {
                let _ = kill(child, signal);
            }
        }
    }
}

/// Whether a signal the monitor took goes on to the command: not one the kernel sent to the
/// whole foreground process group (the command, in the monitor's group, had it already), and
/// not one the command sent itself.
fn relays(info: &crate::sys::SignalInfo, child: Pid) -> bool {
    info.from_process() && info.sender != child.as_raw()
}

fn wait_blocking(child: Pid) -> Ending {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ending::Exited(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ending::Killed(signal as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            // The command is gone and its status with it: report what sudo would for a
            // command it could not wait for.
            Err(_) => return Ending::Exited(crate::EXIT_EXEC_FAILED),
        }
    }
}

fn millis(t: nix::sys::time::TimeVal) -> u64 {
    let ms = t.tv_sec() * 1000 + t.tv_usec() / 1000;
    u64::try_from(ms).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::SignalInfo;

    #[test]
    fn what_is_relayed() {
        let child = Pid::from_raw(4242);
        let from = |code, sender| SignalInfo {
            signal: libc::SIGTERM,
            code,
            sender,
        };
        assert!(relays(&from(libc::SI_USER, 1000), child), "kill(2)");
        assert!(relays(&from(libc::SI_TKILL, 1000), child), "tkill(2)");
        assert!(relays(&from(libc::SI_QUEUE, 1000), child), "sigqueue(3)");
        assert!(
            !relays(&from(libc::SI_KERNEL, 0), child),
            "the terminal's ^C reached the command already"
        );
        assert!(
            !relays(&from(libc::SI_USER, 4242), child),
            "the command's own kill(0, …) is not sent back"
        );
    }

    #[test]
    fn a_signal_is_reported_as_a_shell_does() {
        assert_eq!(Ending::Exited(3).exit_code(), 3);
        assert_eq!(Ending::Killed(libc::SIGTERM).exit_code(), 143);
        assert_eq!(Ending::Killed(libc::SIGINT).exit_code(), 130);
    }
}
