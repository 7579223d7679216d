//! TLS for `wss://`, with rustls and the ring provider: the relay's certificate on the server
//! side, and the trust roots (system roots plus any CA files given) on the client side.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The relay's certificate chain and private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(path: &Path, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: {why}", path.display()),
    )
}

fn read_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).map_err(|e| invalid(path, format!("cannot read it: {e}")))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(path, "holds no PEM certificate"));
    }
    Ok(certs)
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

fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, "loaded system trust roots");
        roots
    })
}

/// The client side: the system's roots plus every certificate in `extra_roots`.
pub(crate) fn client_config(extra_roots: &[PathBuf]) -> io::Result<Arc<ClientConfig>> {
    let mut roots = system_roots().clone();
    for path in extra_roots {
        for cert in read_certs(path)? {
            roots
                .add(cert)
                .map_err(|e| invalid(path, format!("not a usable trust root: {e}")))?;
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
