//! Why a connection to a relay could not be made, in one line that names the fix, and whether
//! trying again can help.
//!
//! An unreachable or restarting relay heals by itself; an untrusted or misnamed certificate,
//! a CA file that cannot be read, `ws://` sent to a TLS port, or a URL that is not a relay's
//! does not, and retrying them only hides the fix until a timeout.

use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError, TlsError, UrlError};

use crate::client::ClientError;

/// Where extra trust roots come from, as the fix names them.
pub const TRUST_FIX: &str = "set relay_ca (in agent.toml or console.toml) or ASSENT_RELAY_CA to the PEM file of the CA that signed it";

/// The error for a failed WebSocket (and TLS) handshake with `url`.
pub fn handshake(url: &str, error: WsError) -> ClientError {
    let plain = url.starts_with("ws://");
    match error {
        WsError::Io(e) => {
            let tls = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>());
            match tls {
                Some(tls) => ClientError::Misconfigured(tls_problem(url, tls)),
                None => ClientError::Connect(format!("{url}: {e}")),
            }
        }
        WsError::Tls(TlsError::Rustls(tls)) => ClientError::Misconfigured(tls_problem(url, &tls)),
        WsError::Tls(e) => ClientError::Misconfigured(format!(
            "{url}: {e}; give the relay's host name as its certificate names it"
        )),
        WsError::Url(e @ UrlError::TlsFeatureNotEnabled | e @ UrlError::UnsupportedUrlScheme) => {
            ClientError::Misconfigured(format!("{url}: {e}; use ws://HOST:PORT or wss://HOST:PORT"))
        }
        WsError::Url(e) => ClientError::Misconfigured(format!(
            "{url} is not a usable relay URL ({e}); use ws://HOST:PORT or wss://HOST:PORT"
        )),
        // Cut off before the handshake finished: a relay going down looks like this.
        WsError::Protocol(ProtocolError::HandshakeIncomplete)
        | WsError::ConnectionClosed
        | WsError::AlreadyClosed => ClientError::Connect(format!("{url}: {error}")),
        // A TLS server answers a plain HTTP request with a TLS alert, which is not HTTP.
        WsError::Protocol(ProtocolError::HttparseError(e)) if plain => {
            ClientError::Misconfigured(format!(
                "{url} did not answer in HTTP ({e}), as a relay serving TLS answers plain ws://; use {}",
                url.replacen("ws://", "wss://", 1)
            ))
        }
        WsError::Protocol(e) => ClientError::Misconfigured(format!(
            "{url} did not answer as a WebSocket relay ({e}); check the host, port and scheme"
        )),
        // A proxy in front of a relay that is down answers 502/503/504.
        WsError::Http(response) if response.status().is_server_error() => {
            ClientError::Connect(format!("{url}: HTTP {}", response.status()))
        }
        WsError::Http(response) => ClientError::Misconfigured(format!(
            "{url} answered HTTP {} instead of a WebSocket upgrade; check the host, port and path",
            response.status()
        )),
        other => ClientError::Connect(format!("{url}: {other}")),
    }
}

/// One line for a TLS failure, with the fix.
fn tls_problem(url: &str, error: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let host = host_of(url);
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer | C::BadSignature => format!(
                "the certificate of {url} is not signed by a CA this host trusts ({error}); {TRUST_FIX}"
            ),
            C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                "the certificate of {url} is not valid for the name {host} ({error}); connect with a name the certificate lists, or have it reissued for {host}"
            ),
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => {
                format!(
                    "the certificate of {url} is expired or not yet valid ({error}); renew it on the relay, or check this host's clock"
                )
            }
            _ => format!("the certificate of {url} was refused ({error}); {TRUST_FIX}"),
        },
        // The peer did not speak TLS at all, e.g. wss:// to a plain ws:// relay.
        rustls::Error::InvalidMessage(_) => format!(
            "{url} did not answer in TLS ({error}); if the relay serves plain ws://, use {}",
            url.replacen("wss://", "ws://", 1)
        ),
        _ => format!(
            "TLS with {url} failed ({error}); check the relay's certificate and {TRUST_FIX}"
        ),
    }
}

/// The host part of a `ws://` or `wss://` URL, for messages.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::client::Fault;

    fn io_with(tls: rustls::Error) -> WsError {
        WsError::Io(io::Error::new(io::ErrorKind::InvalidData, tls))
    }

    #[test]
    fn trust_and_name_errors_are_configuration_with_the_fix() {
        let url = "wss://relay.example:7447";
        let e = handshake(
            url,
            io_with(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        );
        assert_eq!(e.fault(), Fault::Configuration);
        let line = e.to_string();
        for needle in [
            "not signed by a CA this host trusts",
            "relay_ca",
            "ASSENT_RELAY_CA",
        ] {
            assert!(line.contains(needle), "{needle}: {line}");
        }
        let e = handshake(
            url,
            io_with(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            )),
        );
        assert_eq!(e.fault(), Fault::Configuration);
        assert!(
            e.to_string()
                .contains("not valid for the name relay.example"),
            "{e}"
        );
    }

    #[test]
    fn network_failures_are_transient() {
        for error in [
            WsError::Io(io::Error::from(io::ErrorKind::ConnectionRefused)),
            WsError::Io(io::Error::from(io::ErrorKind::ConnectionReset)),
            WsError::Protocol(ProtocolError::HandshakeIncomplete),
            WsError::ConnectionClosed,
        ] {
            let e = handshake("ws://127.0.0.1:7447", error);
            assert_eq!(e.fault(), Fault::Transient, "{e}");
        }
    }

    #[test]
    fn plain_ws_to_a_tls_port_says_to_use_wss() {
        let e = handshake(
            "ws://relay.example:7447",
            WsError::Protocol(ProtocolError::HttparseError(httparse::Error::Version)),
        );
        assert_eq!(e.fault(), Fault::Configuration);
        assert!(
            e.to_string().contains("use wss://relay.example:7447"),
            "{e}"
        );
    }

    #[test]
    fn hosts_for_messages() {
        assert_eq!(host_of("wss://relay.example:7447/x"), "relay.example");
        assert_eq!(host_of("wss://relay.example"), "relay.example");
        assert_eq!(host_of("wss://[::1]:7447"), "::1");
    }
}
