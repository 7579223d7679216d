//! The client side of assent's relay protocol (`docs/relay-protocol.md`): the wire messages
//! both ends speak, and the WebSocket client that shims and consoles use to log in, send
//! signed envelopes and receive events. It links no server: only `assent-relay` does.
//!
//! Everything received is passed on as the relay sent it; envelopes still have to be opened
//! (verified) by whoever uses them. The relay is trusted for delivery only.
#![forbid(unsafe_code)]

pub mod client;
pub mod diagnosis;
pub mod message;
pub mod text;
pub mod tls;

pub use client::{CA_ENV, Client, ClientError, ConnectOptions, Event, Fault};
