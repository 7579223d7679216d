//! The relay's side of `wss://`: its certificate chain and key, with rustls and the ring
//! provider (the client side is in `assent-relay-client`).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use assent_relay_client::tls::{invalid, provider, read_certs};
use rustls::ServerConfig;
use rustls::pki_types::PrivateKeyDer;

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

/// The server side: certificate chain and key from `files`.
pub(crate) fn server_config(files: &TlsFiles) -> io::Result<Arc<ServerConfig>> {
    let certs = read_certs(&files.cert)?;
    let key = read_key(&files.key)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            invalid(
                &files.cert,
                format!("does not go with {}: {e}", files.key.display()),
            )
        })?;
    Ok(Arc::new(config))
}
