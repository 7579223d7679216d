//! An exclusive `flock` that waits a bounded time.
//!
//! The elevator takes its locks only after `process::shut_out_caller` has made its real and
//! saved uids root, so the caller can no longer stop it while it holds one. A lock holder can
//! still be stopped by root, or stall on a slow disk; waiting forever would then hang every
//! other elevation on the host, so a waiter gives up after a deadline and its attempt is
//! refused, leaving nothing run and nothing spent.

use std::io;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, Flockable};

/// How long an elevation waits for the ledger or the audit log.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Take an exclusive lock on `file` (a file or directory), polling until `wait` has passed.
pub fn exclusive<T: Flockable>(file: T, wait: Duration) -> io::Result<Flock<T>> {
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_micros(100);
    let mut file = file;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((back, Errno::EWOULDBLOCK | Errno::EINTR)) => file = back,
            Err((_, errno)) => return Err(io::Error::from(errno)),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "another elevation has held its lock for over {} s; try again",
                    wait.as_secs_f64()
                ),
            ));
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn a_held_lock_is_waited_for_then_given_up() {
        let tmp = TempDir::new();
        let path = tmp.path().join("f");
        std::fs::write(&path, "").unwrap();
        let held = exclusive(File::open(&path).unwrap(), LOCK_WAIT).unwrap();
        let started = Instant::now();
        let err = exclusive(File::open(&path).unwrap(), Duration::from_millis(50)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(err.to_string().contains("try again"), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(50));
        drop(held);
        exclusive(File::open(&path).unwrap(), Duration::from_millis(50))
            .expect("free once the holder lets go");
    }

    #[test]
    fn a_lock_released_while_waiting_is_taken() {
        let tmp = TempDir::new();
        let path = tmp.path().join("f");
        std::fs::write(&path, "").unwrap();
        let held = exclusive(File::open(&path).unwrap(), LOCK_WAIT).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            drop(held);
        });
        exclusive(File::open(&path).unwrap(), Duration::from_secs(5)).expect("taken");
        release.join().unwrap();
    }
}
