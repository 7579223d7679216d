//! The client side of the relay protocol, for shims and consoles: connect over `ws://` or
//! `wss://`, log in by signing the relay's nonce, then send signed envelopes and receive
//! [`Event`]s.
//!
//! Everything received is passed on as the relay sent it: envelopes still have to be opened
//! (verified) by whoever uses them. The relay is trusted for delivery only.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use assent_protocol::{Envelope, Login, PrivateKey, RequestId, Role, Sha256Digest, Verdict};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::diagnosis;
use crate::message::{ClientMessage, PROTOCOL_VERSION, ServerMessage};
use crate::text::printable;

/// Environment variable naming extra PEM trust roots (`:`-separated) for `wss://` relays,
/// for relays with a private CA or a self-signed certificate.
pub const CA_ENV: &str = "ASSENT_RELAY_CA";

/// Largest message a client accepts from the relay (status lists can be long).
const MAX_INCOMING: usize = 16 * 1024 * 1024;

/// Why talking to the relay failed. Each displays as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// No connection could be made: the relay is unreachable, or went away mid-handshake.
    Connect(String),
    /// The connection ended during the login, before the relay said yes or no.
    Login(String),
    /// The relay refused the login and said why (a key it does not admit).
    Refused(String),
    /// The relay cannot be used as configured: its certificate is not trusted or names
    /// another host, a CA file cannot be read, the scheme or URL is wrong, or it speaks
    /// another protocol version. The text names the fix.
    Misconfigured(String),
    /// The connection ended; the text says why when the relay said so.
    Closed(String),
    /// The relay sent something this client does not understand.
    Protocol(String),
}

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The relay is unreachable, restarting, or went away: it may work later.
    Transient,
    /// The set-up is wrong (trust, certificate name, scheme, URL, a refused login, the
    /// protocol): no retry will fix it, the configuration must change.
    Configuration,
}

impl ClientError {
    /// What kind of failure this is, for deciding whether to try again.
    pub fn fault(&self) -> Fault {
        match self {
            ClientError::Connect(_) | ClientError::Login(_) | ClientError::Closed(_) => {
                Fault::Transient
            }
            ClientError::Refused(_) | ClientError::Misconfigured(_) | ClientError::Protocol(_) => {
                Fault::Configuration
            }
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The texts quote what the relay sent: printed escaped, never raw.
        match self {
            ClientError::Connect(why) => {
                write!(f, "cannot connect to the relay: {}", printable(why))
            }
            ClientError::Login(why) => write!(
                f,
                "the relay connection ended during the login: {}",
                printable(why)
            ),
            ClientError::Refused(why) => {
                write!(f, "the relay refused the login: {}", printable(why))
            }
            ClientError::Misconfigured(why) => {
                write!(f, "cannot use the relay: {}", printable(why))
            }
            ClientError::Closed(why) => write!(f, "relay connection closed: {}", printable(why)),
            ClientError::Protocol(why) => write!(f, "relay protocol error: {}", printable(why)),
        }
    }
}

impl std::error::Error for ClientError {}

/// What the relay tells a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Agent: the relay accepted the request.
    Queued { request_id: RequestId },
    /// Approver: a pending request (on connect, every pending one).
    Request {
        envelope: Envelope,
        first_seen: bool,
    },
    /// Agent: the decision for a request this connection submitted.
    Decision { envelope: Envelope },
    /// Approver: someone (possibly this connection) decided the request; `envelope` is the
    /// winning decision (verified by the relay, which is not the authority: open it).
    Decided {
        request_id: RequestId,
        approver: String,
        verdict: Verdict,
        envelope: Envelope,
    },
    /// Approver: the decision with this `decision_sha256` reached an agent connection that
    /// submitted the request.
    Delivered {
        request_id: RequestId,
        decision_sha256: Sha256Digest,
    },
    /// The request's agent withdrew it; it is gone.
    Withdrawn { request_id: RequestId },
    /// The request expired undecided and was dropped.
    Expired { request_id: RequestId },
    /// The latest status of each console of each approver key.
    Statuses { statuses: Vec<Envelope> },
    /// The relay refused something this client sent; the connection stays open.
    Refused {
        request_id: Option<RequestId>,
        reason: String,
    },
}

impl Event {
    /// What a message the relay sent after login means to a client: every text the relay
    /// chose is made printable here, and a message that belongs before login (`hello`,
    /// `welcome`) is a protocol error. (`error` never gets here: reading it closes the
    /// connection.)
    pub fn from_message(message: ServerMessage) -> Result<Event, ClientError> {
        let event = match message {
            ServerMessage::Queued { request_id } => Event::Queued { request_id },
            ServerMessage::Request {
                request,
                first_seen,
            } => Event::Request {
                envelope: request,
                first_seen,
            },
            ServerMessage::Decision { decision } => Event::Decision { envelope: decision },
            ServerMessage::Decided {
                request_id,
                approver,
                verdict,
                decision,
            } => Event::Decided {
                request_id,
                approver,
                verdict,
                envelope: decision,
            },
            ServerMessage::Delivered {
                request_id,
                decision_sha256,
            } => Event::Delivered {
                request_id,
                decision_sha256,
            },
            ServerMessage::Withdrawn { request_id } => Event::Withdrawn { request_id },
            ServerMessage::Expired { request_id } => Event::Expired { request_id },
            ServerMessage::Statuses { statuses } => Event::Statuses { statuses },
            ServerMessage::Refused { request_id, reason } => Event::Refused {
                request_id,
                reason: printable(&reason).into_owned(),
            },
            other => {
                return Err(ClientError::Protocol(format!(
                    "unexpected {} after login",
                    kind(&other)
                )));
            }
        };
        Ok(event)
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// PEM files whose certificates are trusted in addition to the system's roots.
    pub extra_roots: Vec<PathBuf>,
    /// Limit for connecting and logging in.
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            extra_roots: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl ConnectOptions {
    /// The defaults, plus trust roots named by `ASSENT_RELAY_CA`.
    pub fn from_env() -> Self {
        let extra_roots = std::env::var_os(CA_ENV)
            .map(|v| {
                std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        ConnectOptions {
            extra_roots,
            ..ConnectOptions::default()
        }
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One logged-in WebSocket connection to a relay.
pub struct Client {
    ws: Socket,
    url: String,
    role: Role,
    name: Option<String>,
    /// Set once the connection has ended, with why.
    closed: Option<String>,
    /// The reason the relay gave in an `error` message, if it sent one.
    refusal: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url)
            .field("role", &self.role)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connect to a `ws://` or `wss://` URL and log in with `key` in `role`.
    /// `wss://` trusts the system's roots plus any named by `ASSENT_RELAY_CA`.
    pub async fn connect(url: &str, key: &PrivateKey, role: Role) -> Result<Client, ClientError> {
        Self::connect_with(url, key, role, &ConnectOptions::from_env()).await
    }

    /// [`Client::connect`] with explicit options.
    pub async fn connect_with(
        url: &str,
        key: &PrivateKey,
        role: Role,
        options: &ConnectOptions,
    ) -> Result<Client, ClientError> {
        let connector = if url.starts_with("wss://") {
            let config = crate::tls::client_config(&options.extra_roots).map_err(|e| {
                ClientError::Misconfigured(format!(
                    "cannot use a relay CA file: {e}; fix relay_ca (in agent.toml or console.toml) or ASSENT_RELAY_CA"
                ))
            })?;
            Connector::Rustls(config)
        } else if url.starts_with("ws://") {
            Connector::Plain
        } else {
            return Err(ClientError::Misconfigured(format!(
                "{url:?} is not a relay URL; use ws://HOST:PORT or wss://HOST:PORT"
            )));
        };
        let login = async {
            let config = WebSocketConfig::default()
                .read_buffer_size(16 * 1024)
                .max_message_size(Some(MAX_INCOMING))
                .max_frame_size(Some(MAX_INCOMING));
            let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
                url,
                Some(config),
                true,
                Some(connector),
            )
            .await
            .map_err(|e| diagnosis::handshake(url, e))?;
            let mut client = Client {
                ws,
                url: url.to_owned(),
                role,
                name: None,
                closed: None,
                refusal: None,
            };
            client.log_in(key, role).await?;
            Ok(client)
        };
        tokio::time::timeout(options.timeout, login)
            .await
            .unwrap_or_else(|_| {
                Err(ClientError::Connect(format!(
                    "{url}: no login within {} s",
                    options.timeout.as_secs_f32()
                )))
            })
    }

    async fn log_in(&mut self, key: &PrivateKey, role: Role) -> Result<(), ClientError> {
        let nonce = match self.read().await.map_err(|e| self.login_error(e))? {
            ServerMessage::Hello { v, nonce, .. } if v == PROTOCOL_VERSION => nonce,
            ServerMessage::Hello { v, .. } => {
                return Err(ClientError::Misconfigured(format!(
                    "the relay speaks protocol version {v}; this client speaks {PROTOCOL_VERSION}: use a relay and clients of the same assent release"
                )));
            }
            other => {
                return Err(ClientError::Protocol(format!(
                    "expected hello, got {}",
                    kind(&other)
                )));
            }
        };
        let login = Login {
            v: Default::default(),
            kind: Default::default(),
            nonce,
            role,
        };
        self.send(ClientMessage::Login {
            login: Envelope::seal(key, &login),
        })
        .await
        .map_err(|e| self.login_error(e))?;
        match self.read().await.map_err(|e| self.login_error(e))? {
            ServerMessage::Welcome { name, .. } => {
                self.name = name;
                Ok(())
            }
            other => Err(ClientError::Protocol(format!(
                "expected welcome, got {}",
                kind(&other)
            ))),
        }
    }

    pub fn relay_url(&self) -> &str {
        &self.url
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// This key's name in the relay's config, when it is listed there.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Agent: submit a signed request. Idempotent by request id: send the same envelope again
    /// after reconnecting to be told its decision.
    pub async fn submit(&mut self, request: &Envelope) -> Result<(), ClientError> {
        self.send(ClientMessage::Submit {
            request: request.clone(),
        })
        .await
    }

    /// Approver: send a signed decision.
    pub async fn decide(&mut self, decision: &Envelope) -> Result<(), ClientError> {
        self.send(ClientMessage::Decide {
            decision: decision.clone(),
        })
        .await
    }

    /// Approver: publish a signed status.
    pub async fn publish_status(&mut self, status: &Envelope) -> Result<(), ClientError> {
        self.send(ClientMessage::PublishStatus {
            status: status.clone(),
        })
        .await
    }

    /// Agent: withdraw a request this key submitted (a signed `Withdraw` payload). The relay
    /// answers [`Event::Withdrawn`], or [`Event::Refused`] when it was already decided.
    pub async fn withdraw(&mut self, withdraw: &Envelope) -> Result<(), ClientError> {
        self.send(ClientMessage::Withdraw {
            withdraw: withdraw.clone(),
        })
        .await
    }

    /// Ask for the latest statuses; they arrive as [`Event::Statuses`].
    pub async fn request_statuses(&mut self) -> Result<(), ClientError> {
        self.send(ClientMessage::GetStatuses {}).await
    }

    /// The next event. Cancel-safe: dropping the future loses nothing.
    pub async fn next_event(&mut self) -> Result<Event, ClientError> {
        let message = self.read().await?;
        Event::from_message(message)
    }

    /// Close the connection politely.
    pub async fn close(mut self) {
        let close = async {
            if self.ws.close(None).await.is_ok() {
                while let Some(Ok(_)) = self.ws.next().await {}
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
    }

    async fn send(&mut self, message: ClientMessage) -> Result<(), ClientError> {
        if let Some(why) = &self.closed {
            return Err(ClientError::Closed(why.clone()));
        }
        self.ws
            .send(Message::text(message.to_json()))
            .await
            .map_err(|e| ClientError::Closed(e.to_string()))
    }

    /// The next server message; an `error` from the relay becomes `Closed` with its reason.
    async fn read(&mut self) -> Result<ServerMessage, ClientError> {
        if let Some(why) = &self.closed {
            return Err(ClientError::Closed(why.clone()));
        }
        loop {
            let frame = match self.ws.next().await {
                None => return Err(self.mark_closed("the relay went away".into())),
                Some(Err(e)) => return Err(self.mark_closed(e.to_string())),
                Some(Ok(frame)) => frame,
            };
            match frame {
                Message::Text(text) => {
                    let message = serde_json::from_str::<ServerMessage>(text.as_str())
                        .map_err(|e| ClientError::Protocol(format!("unreadable message: {e}")))?;
                    if let ServerMessage::Error { reason } = message {
                        let said = format!("the relay said: {reason}");
                        self.refusal = Some(reason);
                        return Err(self.mark_closed(said));
                    }
                    return Ok(message);
                }
                Message::Close(frame) => {
                    let why = match frame {
                        Some(f) if !f.reason.is_empty() => {
                            format!("the relay closed it: {}", f.reason)
                        }
                        _ => "the relay closed it".to_owned(),
                    };
                    return Err(self.mark_closed(why));
                }
                Message::Binary(_) => {
                    return Err(ClientError::Protocol("unexpected binary frame".into()));
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            }
        }
    }

    fn mark_closed(&mut self, why: String) -> ClientError {
        ClientError::Closed(self.closed.get_or_insert(why).clone())
    }

    /// A failure while logging in: a refusal when the relay said why it closed, else the
    /// connection was lost.
    fn login_error(&self, e: ClientError) -> ClientError {
        match (e, &self.refusal) {
            (ClientError::Closed(_), Some(reason)) => ClientError::Refused(reason.clone()),
            (ClientError::Closed(why), None) => ClientError::Login(why),
            (other, _) => other,
        }
    }
}

fn kind(message: &ServerMessage) -> &'static str {
    match message {
        ServerMessage::Hello { .. } => "hello",
        ServerMessage::Welcome { .. } => "welcome",
        ServerMessage::Queued { .. } => "queued",
        ServerMessage::Request { .. } => "request",
        ServerMessage::Decision { .. } => "decision",
        ServerMessage::Decided { .. } => "decided",
        ServerMessage::Delivered { .. } => "delivered",
        ServerMessage::Withdrawn { .. } => "withdrawn",
        ServerMessage::Expired { .. } => "expired",
        ServerMessage::Statuses { .. } => "statuses",
        ServerMessage::Refused { .. } => "refused",
        ServerMessage::Error { .. } => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_relay_said_is_printed_on_one_line_without_escapes() {
        let hostile = "bye\n\u{1b}]0;owned\u{7}assent: approved by alice".to_owned();
        for e in [
            ClientError::Closed(hostile.clone()),
            ClientError::Refused(hostile.clone()),
            ClientError::Protocol(hostile.clone()),
        ] {
            let line = e.to_string();
            assert!(!line.contains(['\n', '\u{1b}', '\u{7}']), "{line:?}");
            assert!(line.contains("\\n"), "{line:?}");
        }
    }

    #[test]
    fn only_an_unreachable_relay_is_worth_retrying() {
        assert_eq!(
            ClientError::Connect("refused".into()).fault(),
            Fault::Transient
        );
        assert_eq!(ClientError::Login("gone".into()).fault(), Fault::Transient);
        assert_eq!(ClientError::Closed("gone".into()).fault(), Fault::Transient);
        assert_eq!(
            ClientError::Refused("not listed".into()).fault(),
            Fault::Configuration
        );
        assert_eq!(
            ClientError::Misconfigured("untrusted".into()).fault(),
            Fault::Configuration
        );
    }
}
