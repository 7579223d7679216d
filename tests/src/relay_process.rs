//! A real `assent-relay` process for end-to-end tests: started from the built binary with a
//! config file, its address read from its first line, killed (SIGKILL, as a crash would) and
//! restarted on the same address.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::built_binary;

/// How long a restart keeps trying while the old process's port is released.
const RESTART_PATIENCE: Duration = Duration::from_secs(30);

/// A real `assent-relay` process, killed when dropped.
pub struct RelayProcess {
    child: Child,
    addr: SocketAddr,
    config: PathBuf,
    log: PathBuf,
}

impl RelayProcess {
    pub fn start(config: &Path, log: &Path, listen: &str) -> RelayProcess {
        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("cannot open the relay log");
        let mut child = Command::new(built_binary("assent-relay"))
            .args(["--listen", listen, "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("cannot start assent-relay");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout is piped"))
            .read_line(&mut line)
            .expect("cannot read the relay's first line");
        let Some(url) = line.trim().strip_prefix("assent-relay listening on ws://") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "assent-relay did not start: {line:?}; log: {}",
                fs::read_to_string(log).unwrap_or_default()
            );
        };
        RelayProcess {
            addr: url.parse().expect("the relay printed a bad address"),
            child,
            config: config.to_owned(),
            log: log.to_owned(),
        }
    }

    /// The address it listens on; a restart keeps it.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The config file it reads, again at each restart.
    pub fn config(&self) -> &Path {
        &self.config
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A new relay process on the same address (nothing of the old one's memory survives).
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// Start a new process on the same address after [`RelayProcess::kill`].
    pub fn start_again(&mut self) {
        let deadline = Instant::now() + RESTART_PATIENCE;
        loop {
            // The port may take a moment to be free again.
            let attempt = std::panic::catch_unwind(|| {
                RelayProcess::start(&self.config, &self.log, &self.addr.to_string())
            });
            match attempt {
                Ok(fresh) => {
                    *self = fresh;
                    return;
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => std::panic::resume_unwind(e),
            }
        }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
