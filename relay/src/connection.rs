//! One WebSocket connection seen from the relay: JSON text frames in and out.
//!
//! Anything that is not a well-formed client message in a text frame within the size limit
//! (binary frames, garbage JSON, unknown message types, oversized frames) is a [`ReadError`],
//! and the caller closes that connection and only that one.

use std::fmt;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::limits::Limits;
use assent_relay_client::message::{ClientMessage, ServerMessage};

/// Why reading from a client failed. Every one ends the connection.
#[derive(Debug)]
pub enum ReadError {
    TooBig(String),
    Binary,
    Garbage(String),
    Broken(String),
}

impl ReadError {
    /// The WebSocket close code that fits.
    pub fn close_code(&self) -> CloseCode {
        match self {
            ReadError::TooBig(_) => CloseCode::Size,
            ReadError::Binary => CloseCode::Unsupported,
            ReadError::Garbage(_) => CloseCode::Invalid,
            ReadError::Broken(_) => CloseCode::Protocol,
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::TooBig(why) => write!(f, "frame too large: {why}"),
            ReadError::Binary => {
                f.write_str("binary frames are not part of the protocol; send JSON text frames")
            }
            ReadError::Garbage(why) => write!(f, "not a valid client message: {why}"),
            ReadError::Broken(why) => write!(f, "broken WebSocket stream: {why}"),
        }
    }
}

/// A WebSocket stream with the relay's limits applied.
pub struct Connection<S> {
    ws: WebSocketStream<S>,
    write_timeout: Duration,
    last_heard: Instant,
}

/// The WebSocket settings for the relay side: small read buffers (many idle connections),
/// and frames and messages bounded by `max_frame_bytes`.
pub fn server_ws_config(limits: &Limits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .max_message_size(Some(limits.max_frame_bytes))
        .max_frame_size(Some(limits.max_frame_bytes))
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Run the server side of the WebSocket handshake.
    pub async fn accept(stream: S, limits: &Limits) -> Result<Self, String> {
        let ws =
            tokio_tungstenite::accept_async_with_config(stream, Some(server_ws_config(limits)))
                .await
                .map_err(|e| format!("WebSocket handshake failed: {e}"))?;
        Ok(Connection {
            ws,
            write_timeout: limits.write_timeout(),
            last_heard: Instant::now(),
        })
    }

    /// When the client last sent anything at all (pongs included).
    pub fn last_heard(&self) -> Instant {
        self.last_heard
    }

    /// The next client message; `Ok(None)` when the client closed the connection.
    ///
    /// Cancel-safe: everything consumed before an await point has been handled.
    pub async fn read_message(&mut self) -> Result<Option<ClientMessage>, ReadError> {
        loop {
            let frame = match self.ws.next().await {
                None => return Ok(None),
                Some(frame) => frame,
            };
            self.last_heard = Instant::now();
            match frame {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str::<ClientMessage>(text.as_str())
                        .map(Some)
                        .map_err(|e| ReadError::Garbage(e.to_string()));
                }
                Ok(Message::Binary(_)) => return Err(ReadError::Binary),
                // Pings are answered by tungstenite itself; pongs only prove liveness.
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Ok(Message::Close(_)) => return Ok(None),
                Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size })) => {
                    return Err(ReadError::TooBig(format!(
                        "{size} bytes, the limit is {max_size}"
                    )));
                }
                Err(WsError::Capacity(e)) => return Err(ReadError::TooBig(e.to_string())),
                // The client vanished (killed, network gone): nothing left to tell it.
                Err(
                    WsError::ConnectionClosed
                    | WsError::AlreadyClosed
                    | WsError::Io(_)
                    | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake),
                ) => return Ok(None),
                Err(WsError::Utf8(e)) => {
                    return Err(ReadError::Garbage(format!("text frame is not UTF-8: {e}")));
                }
                Err(e) => return Err(ReadError::Broken(e.to_string())),
            }
        }
    }

    /// Send one message as a JSON text frame.
    pub async fn send(&mut self, message: &ServerMessage) -> Result<(), String> {
        self.send_text(Utf8Bytes::from(message.to_json())).await
    }

    /// Send an already serialised message.
    pub async fn send_text(&mut self, text: Utf8Bytes) -> Result<(), String> {
        self.send_texts(std::iter::once(text)).await
    }

    /// Send already serialised messages as one batch: frames are buffered (tungstenite writes
    /// the buffer out early only past its `write_buffer_size`) and the socket is flushed once
    /// at the end, so a burst costs one write system call rather than one per frame.
    pub async fn send_texts(
        &mut self,
        texts: impl Iterator<Item = Utf8Bytes>,
    ) -> Result<(), String> {
        let ws = &mut self.ws;
        let write = async move {
            for text in texts {
                ws.feed(Message::Text(text)).await?;
            }
            ws.flush().await
        };
        timed(self.write_timeout, write).await
    }

    pub async fn ping(&mut self) -> Result<(), String> {
        let ping = self.ws.send(Message::Ping(Default::default()));
        timed(self.write_timeout, ping).await
    }

    /// Tell the client why (an `error` message and a close frame), then wait briefly for its
    /// close so the last frames are not lost to a TCP reset. Best effort throughout.
    pub async fn close_with_error(mut self, code: CloseCode, reason: &str) {
        let _ = self
            .send(&ServerMessage::Error {
                reason: reason.to_owned(),
            })
            .await;
        self.close(code, reason).await;
    }

    /// Send a close frame and wait briefly for the client to close too.
    pub async fn close(mut self, code: CloseCode, reason: &str) {
        // Close frame reasons are limited to 123 bytes.
        let mut short = reason.to_owned();
        if short.len() > 120 {
            let mut end = 120;
            while !short.is_char_boundary(end) {
                end -= 1;
            }
            short.truncate(end);
        }
        let frame = CloseFrame {
            code,
            reason: short.into(),
        };
        let drain = async {
            if self.ws.close(Some(frame)).await.is_err() {
                return;
            }
            while let Some(Ok(_)) = self.ws.next().await {}
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    }
}

/// A write, given up after `limit`.
async fn timed(
    limit: Duration,
    write: impl Future<Output = Result<(), WsError>>,
) -> Result<(), String> {
    match tokio::time::timeout(limit, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write failed: {e}")),
        Err(_) => Err(format!(
            "the client did not take a frame within {} s",
            limit.as_secs()
        )),
    }
}
