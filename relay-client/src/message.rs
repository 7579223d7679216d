//! The relay's wire messages, version 1 with the v1.1 additions (docs/relay-protocol.md): one
//! JSON object per WebSocket text frame, tagged by `"type"`.
//!
//! Messages from clients are parsed strictly (unknown types or fields close the connection);
//! signed content travels as protocol envelopes, unchanged, so every party verifies it itself.

use assent_protocol::{Envelope, RequestId, Role, Sha256Digest, Verdict};
use serde::{Deserialize, Serialize};

/// The relay protocol version announced in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// The answer to `hello`: a `Login` payload signed under `relay-auth@assent`.
    Login { login: Envelope },
    /// Agent: queue a signed request (idempotent by request id).
    Submit { request: Envelope },
    /// Approver: a signed decision for a pending request.
    Decide { decision: Envelope },
    /// Approver: a signed status (revocation list).
    PublishStatus { status: Envelope },
    /// Agent: take back a request it no longer waits for (a `Withdraw` payload signed under
    /// `withdraw@assent` by the key that signed the request).
    Withdraw { withdraw: Envelope },
    /// Anyone: ask for the latest status of every console of every approver.
    GetStatuses {},
}

/// What the relay sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First frame on every connection: the protocol version and the login challenge.
    Hello {
        v: u32,
        relay: String,
        /// 64 lowercase hex digits to sign in a `Login` payload.
        nonce: String,
        max_frame_bytes: usize,
        login_timeout_s: u64,
    },
    /// Login accepted.
    Welcome {
        role: Role,
        /// The logged-in key's fingerprint.
        key: String,
        /// The key's name in the relay config, when it is listed there.
        name: Option<String>,
    },
    /// Agent: the relay holds this request now.
    Queued { request_id: RequestId },
    /// Approver: a pending request.
    Request { request: Envelope, first_seen: bool },
    /// Agent: the decision for a request this connection submitted.
    Decision { decision: Envelope },
    /// Approver: a request was decided (by anyone, including this connection), and the
    /// winning decision, as the relay verified it.
    Decided {
        request_id: RequestId,
        approver: String,
        verdict: Verdict,
        decision: Envelope,
    },
    /// Approver: the decision was handed to an agent connection that submitted the request.
    Delivered {
        request_id: RequestId,
        decision_sha256: Sha256Digest,
    },
    /// Agent and approver: the request was withdrawn by its agent and is gone.
    Withdrawn { request_id: RequestId },
    /// A request reached its deadline undecided and was dropped.
    Expired { request_id: RequestId },
    /// The latest status of each console of each approver that published one.
    Statuses { statuses: Vec<Envelope> },
    /// Something this connection sent was not accepted; the connection stays open.
    Refused {
        request_id: Option<RequestId>,
        reason: String,
    },
    /// The relay is closing this connection, and why.
    Error { reason: String },
}

impl ServerMessage {
    pub fn to_json(&self) -> String {
        // Sized up front: growing the buffer while writing a ~1 KiB request frame took
        // several reallocations per message.
        let mut json = Vec::with_capacity(self.json_size_hint());
        serde_json::to_writer(&mut json, self).expect("server messages always serialise");
        String::from_utf8(json).expect("serde_json writes UTF-8")
    }

    /// A little more than the serialised length of the usual messages.
    fn json_size_hint(&self) -> usize {
        let envelope = |e: &Envelope| e.payload.len() + e.sig.len() + 32;
        128 + match self {
            ServerMessage::Request { request, .. } => envelope(request),
            ServerMessage::Decision { decision } => envelope(decision),
            ServerMessage::Decided {
                decision, approver, ..
            } => envelope(decision) + approver.len(),
            ServerMessage::Statuses { statuses } => statuses.iter().map(envelope).sum(),
            ServerMessage::Refused { reason, .. } | ServerMessage::Error { reason } => reason.len(),
            _ => 0,
        }
    }
}

impl ClientMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("client messages always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_are_strict() {
        let ok: ClientMessage = serde_json::from_str(r#"{"type":"get_statuses"}"#).unwrap();
        assert_eq!(ok, ClientMessage::GetStatuses {});
        for bad in [
            r#"{"type":"get_statuses","x":1}"#,
            r#"{"type":"submit","request":{"payload":"","sig":""},"extra":true}"#,
            r#"{"type":"hello"}"#,
            r#"{"request":{"payload":"","sig":""}}"#,
            r#"[1,2]"#,
        ] {
            assert!(
                serde_json::from_str::<ClientMessage>(bad).is_err(),
                "accepted {bad}"
            );
        }
    }

    #[test]
    fn the_size_hint_covers_envelope_messages() {
        let envelope = Envelope {
            payload: "A".repeat(1200),
            sig: "B".repeat(240),
        };
        for m in [
            ServerMessage::Request {
                request: envelope.clone(),
                first_seen: true,
            },
            ServerMessage::Decision {
                decision: envelope.clone(),
            },
            ServerMessage::Statuses {
                statuses: vec![envelope.clone(), envelope.clone()],
            },
            ServerMessage::Decided {
                request_id: RequestId([1; 16]),
                approver: "a".repeat(256),
                verdict: Verdict::Approve,
                decision: envelope.clone(),
            },
        ] {
            assert!(m.to_json().len() <= m.json_size_hint(), "{m:?}");
            assert_eq!(
                serde_json::from_str::<ServerMessage>(&m.to_json()).unwrap(),
                m
            );
        }
    }

    #[test]
    fn messages_round_trip_with_their_type_tag() {
        let m = ClientMessage::Submit {
            request: Envelope {
                payload: "cA==".into(),
                sig: "cw==".into(),
            },
        };
        let json = m.to_json();
        assert_eq!(
            json,
            r#"{"type":"submit","request":{"payload":"cA==","sig":"cw=="}}"#
        );
        assert_eq!(serde_json::from_str::<ClientMessage>(&json).unwrap(), m);

        let id = RequestId([7; 16]);
        let s = ServerMessage::Decided {
            request_id: id,
            approver: "alice".into(),
            verdict: Verdict::Deny,
            decision: Envelope {
                payload: "ZA==".into(),
                sig: "cw==".into(),
            },
        };
        assert_eq!(
            s.to_json(),
            format!(
                r#"{{"type":"decided","request_id":"{id}","approver":"alice","verdict":"deny","decision":{{"payload":"ZA==","sig":"cw=="}}}}"#
            )
        );
        let digest = Sha256Digest([9; 32]);
        for (m, json) in [
            (s.clone(), s.to_json()),
            (
                ServerMessage::Delivered {
                    request_id: id,
                    decision_sha256: digest,
                },
                format!(
                    r#"{{"type":"delivered","request_id":"{id}","decision_sha256":"{digest}"}}"#
                ),
            ),
            (
                ServerMessage::Withdrawn { request_id: id },
                format!(r#"{{"type":"withdrawn","request_id":"{id}"}}"#),
            ),
        ] {
            assert_eq!(m.to_json(), json);
            assert_eq!(serde_json::from_str::<ServerMessage>(&json).unwrap(), m);
        }
        let w = ClientMessage::Withdraw {
            withdraw: Envelope {
                payload: "dw==".into(),
                sig: "cw==".into(),
            },
        };
        assert_eq!(
            w.to_json(),
            r#"{"type":"withdraw","withdraw":{"payload":"dw==","sig":"cw=="}}"#
        );
        assert_eq!(
            serde_json::from_str::<ClientMessage>(&w.to_json()).unwrap(),
            w
        );
        assert!(
            serde_json::from_str::<ClientMessage>(r#"{"type":"withdraw","request_id":"x"}"#)
                .is_err()
        );
    }
}
