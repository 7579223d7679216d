//! The only room with `unsafe`: thin wrappers over the few system calls that neither `std`
//! nor `nix` offer safely. Each wrapper is small enough to check by eye, and each `unsafe`
//! block says why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Take ownership of a descriptor the caller passed in (`--grant-fd N`).
///
/// Must be called at startup, before this process opens anything itself, so that `fd` can
/// only be one the caller handed over and never one of ours. Descriptors 0–2 belong to
/// `std`'s standard streams and are refused here.
pub fn claim_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    if fd <= 2 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: F_GETFD only reads the descriptor flags; any integer is a valid argument.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is open (checked above), above 2, and nothing else in this process owns it:
    // it was inherited across exec and the caller claims it before opening any file, so no
    // other `OwnedFd` or `File` refers to it. Ownership moves to the returned value.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Mark every descriptor from 3 upwards except `keep` (the program to execute) close-on-exec,
/// so the program inherits none of them.
///
/// Marking instead of closing leaves every descriptor this process still owns valid: if exec
/// then fails, dropping them is still sound, and the kernel closes them all at a successful
/// exec anyway.
pub fn close_descriptors_on_exec(keep: RawFd) -> io::Result<()> {
    let mut ranges = Vec::with_capacity(2);
    match u32::try_from(keep) {
        Ok(k) if k > 3 => ranges.extend([(3, k - 1), (k + 1, u32::MAX)]),
        Ok(3) => ranges.push((4, u32::MAX)),
        _ => ranges.push((3, u32::MAX)),
    }
    for (first, last) in ranges {
        // SAFETY: close_range(2) takes plain integers; with CLOSE_RANGE_CLOEXEC it only sets
        // the close-on-exec flag and closes nothing, so no descriptor owned elsewhere in this
        // process becomes invalid.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                libc::c_uint::from(first),
                libc::c_uint::from(last),
                libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
            )
        };
        if rc != 0 {
            let err = io::Error::last_os_error();
            // ENOSYS before Linux 5.9, EINVAL for the flag before 5.11.
            if !matches!(err.raw_os_error(), Some(libc::ENOSYS | libc::EINVAL)) {
                return Err(err);
            }
            cloexec_by_listing(first, last)?;
        }
    }
    Ok(())
}

/// Fallback for older kernels: list /proc/self/fd first, then mark what it named.
fn cloexec_by_listing(first: u32, last: u32) -> io::Result<()> {
    let mut open = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        if let Some(fd) = entry?
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        {
            if (first..=last).contains(&fd) {
                open.push(fd);
            }
        }
    }
    for fd in open {
        let Ok(fd) = libc::c_int::try_from(fd) else {
            continue;
        };
        // SAFETY: F_SETFD only changes the descriptor's flags; a number that was the
        // listing's own (closed by now) fails with EBADF, which is fine.
        let rc = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        if rc == -1 && io::Error::last_os_error().raw_os_error() != Some(libc::EBADF) {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Set the disposition of `signal` to `handler` (`SIG_DFL` or `SIG_IGN` only: never a
/// function, so no handler code can ever run in this process).
fn set_disposition(signal: libc::c_int, handler: libc::sighandler_t) -> io::Result<()> {
    debug_assert!(handler == libc::SIG_DFL || handler == libc::SIG_IGN);
    // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags); we set only
    // the handler field to SIG_DFL or SIG_IGN, which install no code. The old action is not
    // requested (null pointer is allowed).
    let rc = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, std::ptr::null_mut())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Ignore `signal` (used for SIGXFSZ while the audit line is written).
pub fn ignore_signal(signal: libc::c_int) -> io::Result<()> {
    set_disposition(signal, libc::SIG_IGN)
}

/// The kernel's number of signals (`_NSIG`) and the size of its signal set in bytes.
#[cfg(not(any(
    target_arch = "mips",
    target_arch = "mips32r6",
    target_arch = "mips64",
    target_arch = "mips64r6"
)))]
const KERNEL_NSIG: libc::c_int = 64;
#[cfg(any(
    target_arch = "mips",
    target_arch = "mips32r6",
    target_arch = "mips64",
    target_arch = "mips64r6"
))]
const KERNEL_NSIG: libc::c_int = 128;

/// Reset every signal's disposition to the default, so the program does not inherit the
/// caller's (or `std`'s) ignored signals. A signal still pending (pending signals survive
/// exec, and the caller may have left some blocked for the command) is set to ignored first,
/// which discards it.
///
/// This uses the raw `rt_sigaction` system call: the C library's `sigaction` refuses the
/// signals it reserves for itself (32 and 33 on glibc), yet a caller can leave those ignored
/// too, and an ignored disposition survives exec.
pub fn reset_all_signal_dispositions() -> io::Result<()> {
    // An all-zero kernel `struct sigaction` is SIG_DFL with no flags and an empty mask on
    // every architecture, whatever its field order; this buffer is larger than any of them.
    let default = [0u64; 8];
    // The handler is the first field of the kernel's struct sigaction on every architecture
    // Linux supports except MIPS, where it follows the flags.
    let mut ignore = [0u64; 8];
    let handler_field = usize::from(cfg!(any(
        target_arch = "mips",
        target_arch = "mips32r6",
        target_arch = "mips64",
        target_arch = "mips64r6"
    )));
    ignore[handler_field] = libc::SIG_IGN as u64;
    let sigset_size = (KERNEL_NSIG / 8) as libc::size_t;
    let mut pending = [0u64; 2];
    // SAFETY: rt_sigpending writes `sigset_size` (8 or 16) bytes into `pending`, 16 bytes long.
    let rc = unsafe { libc::syscall(libc::SYS_rt_sigpending, pending.as_mut_ptr(), sigset_size) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    for signal in 1..=KERNEL_NSIG {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        let bit = (signal - 1) as usize;
        let actions: &[&[u64; 8]] = if pending[bit / 64] >> (bit % 64) & 1 == 1 {
            &[&ignore, &default]
        } else {
            &[&default]
        };
        for action in actions {
            // SAFETY: rt_sigaction reads one kernel sigaction from `action` (64 readable
            // bytes, more than the kernel's struct on any architecture, zero but for the
            // handler) and writes nothing (old action pointer is null). SIG_IGN and SIG_DFL
            // install no code in this process.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signal,
                    action.as_ptr(),
                    std::ptr::null_mut::<libc::c_void>(),
                    sigset_size,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Disarm the three interval timers. They survive exec: one the caller armed would otherwise
/// deliver SIGALRM, SIGVTALRM or SIGPROF to the elevator or, later, to the command.
pub fn disarm_interval_timers() -> io::Result<()> {
    for which in [libc::ITIMER_REAL, libc::ITIMER_VIRTUAL, libc::ITIMER_PROF] {
        // SAFETY: an all-zero itimerval disarms the timer; setitimer reads it and, with a null
        // old-value pointer, writes nothing.
        let rc = unsafe {
            let zero: libc::itimerval = std::mem::zeroed();
            libc::setitimer(which, &zero, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The default scheduling a process gets from init: SCHED_OTHER, niceness 0, and the I/O
/// class that follows from them. The caller's (SCHED_IDLE, nice 19, idle I/O) would let it
/// starve the elevator while it holds a lock every elevation needs, and reach the command.
pub fn reset_scheduling() -> io::Result<()> {
    // SAFETY: sched_setscheduler reads one sched_param (priority 0, valid for SCHED_OTHER)
    // for this process (pid 0).
    let rc = unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_OTHER, &param)
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: setpriority takes plain integers; PRIO_PROCESS with who 0 is this process.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // IOPRIO_WHO_PROCESS (1), this process (0), IOPRIO_CLASS_NONE (0): the I/O priority
    // follows the niceness again.
    // SAFETY: ioprio_set(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Clear every personality flag (keeping the base personality, e.g. PER_LINUX32): exec of a
/// setuid program clears only some of them, and the rest change what the command sees, like
/// the kernel version uname(2) reports.
pub fn reset_personality() -> io::Result<()> {
    // SAFETY: personality(0xffffffff) only queries; the second call sets a plain value.
    let current = unsafe { libc::personality(0xffff_ffff) };
    if current == -1 {
        return Err(io::Error::last_os_error());
    }
    let base = (current as libc::c_ulong) & 0xff;
    // SAFETY: as above.
    if unsafe { libc::personality(base) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Fork this process. The elevator never starts a thread, so the child is a complete copy in
/// which any code may run (not only async-signal-safe functions).
pub fn fork() -> io::Result<nix::unistd::ForkResult> {
    // SAFETY: fork(2) in a single-threaded process: no other thread can hold a lock (the
    // allocator's, stdio's) that the child would find taken and never released. The elevator
    // and `std` start no threads; the only threads in this crate are in unit tests, which do
    // not call this.
    unsafe { nix::unistd::fork() }.map_err(io::Error::from)
}

/// A signal taken by [`wait_signal`]: its number, how it was sent (`si_code`) and by whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalInfo {
    pub signal: libc::c_int,
    /// `SI_USER`, `SI_QUEUE` and `SI_TKILL` (zero or below) for a process's kill(2), tkill(2)
    /// or sigqueue(3); `SI_KERNEL` for one the kernel sent (a terminal's ^C).
    pub code: libc::c_int,
    /// The sending process, for signals a process sent; 0 otherwise.
    pub sender: libc::pid_t,
}

impl SignalInfo {
    /// Sent by a process with kill(2), tkill(2) or sigqueue(3).
    pub fn from_process(&self) -> bool {
        self.code <= 0
    }
}

/// Wait until one of the signals in `set` (which must be blocked) is pending, and take it.
pub fn wait_signal(set: &nix::sys::signal::SigSet) -> io::Result<SignalInfo> {
    // SAFETY: an all-zero siginfo_t is a valid value to be overwritten; sigwaitinfo reads the
    // set (a valid sigset_t borrowed from `set`) and writes one siginfo_t into `info`.
    let (rc, info) = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::sigwaitinfo(set.as_ref(), &mut info);
        (rc, info)
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    let from_process = info.si_code <= 0;
    // SAFETY: si_pid is the union member the kernel fills for signals a process sent
    // (si_code SI_USER, SI_QUEUE, SI_TKILL) and for SIGCHLD; for the others it reads
    // whatever the kernel left there (zeros at worst) and is not used.
    let sender = if from_process || rc == libc::SIGCHLD {
        unsafe { info.si_pid() }
    } else {
        0
    };
    Ok(SignalInfo {
        signal: rc,
        code: info.si_code,
        sender,
    })
}

/// `MFD_EXEC` (Linux 6.3): ask for an executable memory file even where the
/// `vm.memfd_noexec` sysctl would otherwise seal it non-executable.
pub const MFD_EXEC: libc::c_uint = libc::MFD_EXEC;

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn descriptors_are_marked_close_on_exec_except_the_program() {
        use nix::fcntl::{FcntlArg, FdFlag, fcntl};

        let flags =
            |fd: &OwnedFd| FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap());
        let file = std::fs::File::open("/dev/null").unwrap();
        let inherited = claim_inherited_fd(fcntl(&file, FcntlArg::F_DUPFD(800)).unwrap()).unwrap();
        let program = claim_inherited_fd(fcntl(&file, FcntlArg::F_DUPFD(810)).unwrap()).unwrap();
        assert!(!flags(&inherited).contains(FdFlag::FD_CLOEXEC));
        close_descriptors_on_exec(program.as_raw_fd()).unwrap();
        assert!(flags(&inherited).contains(FdFlag::FD_CLOEXEC));
        assert!(
            !flags(&program).contains(FdFlag::FD_CLOEXEC),
            "the program's descriptor is kept"
        );
        cloexec_by_listing(810, 810).unwrap();
        assert!(
            flags(&program).contains(FdFlag::FD_CLOEXEC),
            "the fallback marks too"
        );
    }

    /// A signal set of this thread from /proc (`SigIgn:`, `SigPnd:`…); bit n-1 is signal n.
    fn signal_set(label: &str) -> u64 {
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with(label)).unwrap();
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    }

    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn every_signal_including_the_c_librarys_own_is_reset() {
        let ignored = || signal_set("SigIgn:");
        // Ignore SIGURG and the C library's signal 32 the way a hostile caller could.
        ignore_signal(libc::SIGURG).unwrap();
        let action = [0u64; 8];
        let mut ign = action;
        ign[0] = libc::SIG_IGN as u64; // the handler is the first field on these targets
        // SAFETY: as in reset_all_signal_dispositions; SIG_IGN installs no code.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                32,
                ign.as_ptr(),
                std::ptr::null_mut::<libc::c_void>(),
                8usize,
            )
        };
        assert_eq!(rc, 0);
        let urg = 1u64 << (libc::SIGURG - 1);
        assert_eq!(ignored() & (urg | 1 << 31), urg | 1 << 31);
        reset_all_signal_dispositions().unwrap();
        assert_eq!(
            ignored() & (urg | 1 << 31),
            0,
            "SIGURG and signal 32 are default again"
        );
        // Give the test process back the SIGPIPE handling `std` set up for it.
        ignore_signal(libc::SIGPIPE).unwrap();
    }

    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn a_pending_signal_is_discarded_with_the_reset() {
        use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask, raise};
        let pending = || signal_set("SigPnd:");
        let usr2 = 1u64 << (libc::SIGUSR2 - 1);
        let mut set = SigSet::empty();
        set.add(Signal::SIGUSR2);
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).unwrap();
        raise(Signal::SIGUSR2).unwrap();
        assert_eq!(pending() & usr2, usr2);
        reset_all_signal_dispositions().unwrap();
        assert_eq!(pending() & usr2, 0, "SIGUSR2 is no longer pending");
        pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None).unwrap();
        ignore_signal(libc::SIGPIPE).unwrap();
    }

    #[test]
    fn timers_scheduling_and_personality_are_reset() {
        // SAFETY: getitimer writes one itimerval into `t`, a valid local.
        let armed = |which| unsafe {
            let mut t: libc::itimerval = std::mem::zeroed();
            libc::getitimer(which, &mut t);
            t.it_value.tv_sec > 0
        };
        // SAFETY: setitimer reads one itimerval (a local) and writes nothing; personality takes
        // a plain value.
        unsafe {
            let mut t: libc::itimerval = std::mem::zeroed();
            t.it_value.tv_sec = 600;
            libc::setitimer(libc::ITIMER_PROF, &t, std::ptr::null_mut());
            libc::personality(0x0020000); // UNAME26
        }
        assert!(armed(libc::ITIMER_PROF));
        disarm_interval_timers().unwrap();
        assert!(!armed(libc::ITIMER_PROF));
        reset_personality().unwrap();
        // SAFETY: these only query this process's personality and scheduling policy.
        let (personality, policy) =
            unsafe { (libc::personality(0xffff_ffff), libc::sched_getscheduler(0)) };
        assert_eq!(personality & !0xff, 0);
        reset_scheduling().unwrap();
        assert_eq!(policy, libc::SCHED_OTHER);
    }

    #[test]
    fn claim_refuses_standard_streams_and_closed_descriptors() {
        use nix::fcntl::{FcntlArg, fcntl};

        assert!(claim_inherited_fd(0).is_err());
        assert!(claim_inherited_fd(2).is_err());
        // A high number that no other test thread will be handed meanwhile.
        let file = std::fs::File::open("/dev/null").unwrap();
        let raw = fcntl(&file, FcntlArg::F_DUPFD_CLOEXEC(900)).unwrap();
        let owned = claim_inherited_fd(raw).expect("an open descriptor can be claimed");
        assert_eq!(owned.as_raw_fd(), raw);
        drop(owned);
        assert!(claim_inherited_fd(raw).is_err(), "closed now");
    }
}
