//! A real `assent-relay` process for end-to-end tests: started from the built binary with a
//! config file (and, for `wss://`, a certificate and key), its address read from its first
//! line, signalled, killed (SIGKILL, as a crash would) and restarted on the same address.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::built_binary;
use crate::pki::Leaf;

/// How long a restart keeps trying while the old process's port is released.
const RESTART_PATIENCE: Duration = Duration::from_secs(30);

/// A real `assent-relay` process, killed when dropped. It logs at debug level to its log file.
pub struct RelayProcess {
    child: Child,
    addr: SocketAddr,
    scheme: String,
    config: PathBuf,
    log: PathBuf,
    tls: Option<Leaf>,
}

impl RelayProcess {
    /// A plain `ws://` relay.
    pub fn start(config: &Path, log: &Path, listen: &str) -> RelayProcess {
        Self::spawn(config, log, listen, None)
    }

    /// A `wss://` relay serving `leaf`.
    pub fn start_tls(config: &Path, log: &Path, listen: &str, leaf: &Leaf) -> RelayProcess {
        Self::spawn(config, log, listen, Some(leaf.clone()))
    }

    fn spawn(config: &Path, log: &Path, listen: &str, tls: Option<Leaf>) -> RelayProcess {
        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("cannot open the relay log");
        let mut command = Command::new(built_binary("assent-relay"));
        command.args(["--listen", listen, "--config"]).arg(config);
        if let Some(leaf) = &tls {
            command
                .arg("--tls-cert")
                .arg(&leaf.cert)
                .arg("--tls-key")
                .arg(&leaf.key);
        }
        let mut child = command
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("cannot start assent-relay");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout is piped"))
            .read_line(&mut line)
            .expect("cannot read the relay's first line");
        let Some((scheme, addr)) = line
            .trim()
            .strip_prefix("assent-relay listening on ")
            .and_then(|url| url.split_once("://"))
        else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "assent-relay did not start: {line:?}; log: {}",
                fs::read_to_string(log).unwrap_or_default()
            );
        };
        RelayProcess {
            addr: addr.parse().expect("the relay printed a bad address"),
            scheme: scheme.to_owned(),
            child,
            config: config.to_owned(),
            log: log.to_owned(),
            tls,
        }
    }

    /// The address it listens on; a restart keeps it.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The config file it reads, again at each restart and on SIGHUP.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// Its log (stderr), appended to across restarts.
    pub fn log(&self) -> &Path {
        &self.log
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `ws://ADDR` or `wss://ADDR`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The URL with `host` for the address (a `wss://` client checks the certificate's names
    /// against it).
    pub fn url_with_host(&self, host: &str) -> String {
        format!("{}://{host}:{}", self.scheme, self.addr.port())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Send SIGHUP: reload the config and the certificate.
    pub fn sighup(&self) {
        let sent = Command::new("kill")
            .args(["-HUP", &self.pid().to_string()])
            .status()
            .expect("cannot run kill");
        assert!(sent.success(), "kill -HUP failed");
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
                RelayProcess::spawn(
                    &self.config,
                    &self.log,
                    &self.addr.to_string(),
                    self.tls.clone(),
                )
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
