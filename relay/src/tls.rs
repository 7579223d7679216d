//! The relay's side of `wss://`: its certificate chain and key, with rustls and the ring
//! provider (the client side is in `assent-relay-client`). The certificate can be replaced
//! while the relay runs (SIGHUP): new handshakes get the new one, open connections are kept.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use assent_relay_client::tls::{invalid, provider, read_certs};
use rustls::ServerConfig;
use rustls::pki_types::PrivateKeyDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The relay's certificate chain and private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn read_key(path: &Path) -> io::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).map_err(|e| invalid(path, format!("cannot read it: {e}")))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| invalid(path, format!("not a PEM private key file: {e}")))?
        .ok_or_else(|| invalid(path, "holds no PEM private key"))
}

/// The chain and key in `files`, checked to belong together.
pub(crate) fn certified_key(files: &TlsFiles) -> io::Result<Arc<CertifiedKey>> {
    let certs = read_certs(&files.cert)?;
    let key = read_key(&files.key)?;
    let certified = CertifiedKey::from_der(certs, key, &provider()).map_err(|e| {
        invalid(
            &files.cert,
            format!("does not go with {}: {e}", files.key.display()),
        )
    })?;
    Ok(Arc::new(certified))
}

/// The certificate the relay serves now.
pub(crate) struct ServedCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for ServedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServedCert").finish_non_exhaustive()
    }
}

impl ServedCert {
    pub(crate) fn new(key: Arc<CertifiedKey>) -> Arc<ServedCert> {
        Arc::new(ServedCert {
            current: RwLock::new(key),
        })
    }

    /// Serve `key` to every handshake from now on.
    pub(crate) fn replace(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = key;
    }
}

impl ResolvesServerCert for ServedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// The server side, serving whatever `served` holds.
pub(crate) fn server_config(served: Arc<ServedCert>) -> io::Result<Arc<ServerConfig>> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_cert_resolver(served);
    Ok(Arc::new(config))
}
