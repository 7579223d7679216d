//! assent's relay: a WebSocket server that carries signed requests from agents' shims to
//! approvers' consoles and signed decisions back (SPEC §7). The client both sides use, and
//! the wire messages, are in `assent-relay-client`.
//!
//! The relay holds no secrets and authorises nothing. It verifies logins, decisions and
//! statuses (so a forged decision never reaches a shim); requests it parses strictly and
//! routes by the connection's logged-in key, leaving their signatures to the consoles, which
//! verify every request they show. Its wire protocol is documented in
//! `docs/relay-protocol.md`.
//!
//! Embedding (the console hosts one):
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let config = assent_relay::RelayConfig::default();
//! let relay = assent_relay::start(config, "127.0.0.1:0".parse().unwrap(), None).await?;
//! println!("relay at {}", relay.url());
//! relay.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod connection;
pub mod limits;
mod server;
pub mod store;
pub mod streams;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{AgentPolicy, ConfigError, NamedKey, RelayConfig};
pub use limits::Limits;
pub use tls::TlsFiles;

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7447";

/// A running relay. Dropping it stops the relay too; [`RelayHandle::shutdown`] also waits
/// for the connections to close.
pub struct RelayHandle {
    local_addr: SocketAddr,
    shared: Arc<server::Shared>,
    /// The certificate served, for `wss://`.
    served: Option<Arc<tls::ServedCert>>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RelayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayHandle")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.served.is_some())
            .finish_non_exhaustive()
    }
}

impl RelayHandle {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `ws://ADDR` or `wss://ADDR` for the bound address.
    pub fn url(&self) -> String {
        let scheme = if self.served.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Put a new configuration in force and, for `wss://`, serve the certificate and key in
    /// `tls` read afresh, without dropping anything: pending requests, decisions, remembered
    /// ids, statuses and open connections all stay. All or nothing: if the config or the
    /// certificate is unusable, nothing changes and the error says why.
    pub fn reload(&self, config: RelayConfig, tls: Option<&TlsFiles>) -> Result<(), String> {
        config.validate().map_err(|e| e.to_string())?;
        if !self.local_addr.ip().is_loopback() && self.served.is_none() && !config.insecure_listen {
            return Err(format!(
                "plain ws:// on {} needs insecure_listen, which the new configuration does not allow",
                self.local_addr
            ));
        }
        let key = match (&self.served, tls) {
            (Some(_), Some(files)) => Some(tls::certified_key(files).map_err(|e| e.to_string())?),
            (None, None) => None,
            (Some(_), None) => {
                return Err("this relay serves wss://; give its certificate and key".into());
            }
            (None, Some(_)) => {
                return Err(
                    "this relay was started without TLS; restart it to serve wss://".into(),
                );
            }
        };
        self.shared.reconfigure(config);
        if let (Some(served), Some(key)) = (&self.served, key) {
            served.replace(key);
        }
        Ok(())
    }

    /// Stop accepting, close every connection (telling clients the relay is going away),
    /// and wait for that to finish (a few seconds at most).
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Start a relay on `listen` (port 0 picks a free port). With `tls`, it serves `wss://`.
/// Plain `ws://` is refused on addresses that are not loopback unless
/// `config.insecure_listen` is set.
pub async fn start(
    config: RelayConfig,
    listen: SocketAddr,
    tls: Option<TlsFiles>,
) -> io::Result<RelayHandle> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    if tls.is_none() && !listen.ip().is_loopback() && !config.insecure_listen {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "refusing plain ws:// on {listen}, which is not a loopback address; \
                 give a TLS certificate and key, or allow it explicitly (--insecure-listen)"
            ),
        ));
    }
    let served = tls
        .as_ref()
        .map(|files| tls::certified_key(files).map(tls::ServedCert::new))
        .transpose()?;
    let acceptor = served
        .clone()
        .map(tls::server_config)
        .transpose()?
        .map(tokio_rustls::TlsAcceptor::from);
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}")))?;
    let local_addr = listener.local_addr()?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let shared = Arc::new(server::Shared::new(config));
    let task = tokio::spawn(server::run(listener, shared.clone(), acceptor, shutdown_rx));
    tracing::info!(%local_addr, tls = tls.is_some(), "relay listening");
    Ok(RelayHandle {
        local_addr,
        shared,
        served,
        shutdown,
        task: Some(task),
    })
}
