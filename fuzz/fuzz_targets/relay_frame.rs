//! One client text frame at the relay (SPEC §7, docs/relay-protocol.md): parsed into a
//! `ClientMessage` exactly as the relay's connection loop parses it
//! (`serde_json::from_str::<ClientMessage>`), then the relay's own checks of what it carries
//! (`auth::check_login`, `check_request`, `check_decision`, `check_status`).
//!
//! An input that holds the byte 0xFF is read as `TYPE 0xFF PAYLOAD`, where TYPE is `login`,
//! `submit`, `decide` or `publish_status`: the payload is signed here with the fixed key for
//! that message, put into a frame, and the frame goes the same way, so the checks behind
//! the signatures are reached. Nothing may panic; a parsed frame serialises and parses back
//! to the same message; a sealed message passes the relay's check exactly when its payload
//! parses and names what the relay expects.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use assent_fuzz::{APPROVER_NAME, NONCE, agent_key, approver_key, seal, sealed_parts};
use assent_protocol::{Decision, Login, Payload, Request, Role, Status, Withdraw};
use assent_relay::RelayConfig;
use assent_relay::auth::{self, Identity};
use assent_relay_client::message::ClientMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The WebSocket layer only hands over text frames that are UTF-8.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = frame(text);
    }
    if let Some(parts) = sealed_parts(data)
        && let [kind, payload, ..] = parts[..]
    {
        sealed(kind, payload);
    }
});

fn config() -> &'static RelayConfig {
    static CONFIG: OnceLock<RelayConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        RelayConfig::default().with_approver(APPROVER_NAME, approver_key().public())
    })
}

fn agent() -> Identity {
    Identity {
        key: agent_key().public(),
        role: Role::Agent,
        name: None,
    }
}

fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40000))
}

/// What the relay does with one text frame up to its store. `None` when the frame does not
/// parse; otherwise whether the relay's check of its content passed.
fn frame(text: &str) -> Option<bool> {
    let message = serde_json::from_str::<ClientMessage>(text).ok()?;
    let json = message.to_json();
    let again: ClientMessage = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("a parsed frame does not parse again: {e}\n{json}"));
    assert_eq!(again, message);
    let config = config();
    Some(match &message {
        ClientMessage::Login { login } => auth::check_login(login, NONCE, config, peer()).is_ok(),
        ClientMessage::Submit { request } => auth::check_request(request, &agent()).is_ok(),
        ClientMessage::Decide { decision } => auth::check_decision(decision, config).is_ok(),
        ClientMessage::PublishStatus { status } => auth::check_status(status, config).is_ok(),
        ClientMessage::Withdraw { withdraw } => auth::check_withdraw(withdraw, &agent()).is_ok(),
        ClientMessage::GetStatuses {} => true,
    })
}

fn sealed(kind: &[u8], payload: &[u8]) {
    let (message, expected) = match kind {
        b"login" => {
            // Each role logs in with its own key: approvers must be listed, agents need not be.
            let login = Login::from_bytes(payload).ok();
            let key = match login.as_ref().map(|l| l.role) {
                Some(Role::Approver) => approver_key(),
                _ => agent_key(),
            };
            (
                ClientMessage::Login {
                    login: seal::<Login>(key, payload),
                },
                login.is_some_and(|l| l.nonce == NONCE),
            )
        }
        b"submit" => (
            ClientMessage::Submit {
                request: seal::<Request>(agent_key(), payload),
            },
            Request::from_bytes(payload).is_ok(),
        ),
        b"decide" => (
            ClientMessage::Decide {
                decision: seal::<Decision>(approver_key(), payload),
            },
            Decision::from_bytes(payload).is_ok_and(|d| d.approver == APPROVER_NAME),
        ),
        b"publish_status" => (
            ClientMessage::PublishStatus {
                status: seal::<Status>(approver_key(), payload),
            },
            Status::from_bytes(payload).is_ok_and(|s| s.approver == APPROVER_NAME),
        ),
        b"withdraw" => (
            ClientMessage::Withdraw {
                withdraw: seal::<Withdraw>(agent_key(), payload),
            },
            Withdraw::from_bytes(payload).is_ok(),
        ),
        _ => return,
    };
    if payload.len() > assent_protocol::MAX_PAYLOAD_LEN {
        return;
    }
    let passed = frame(&message.to_json());
    assert_eq!(
        passed,
        Some(expected),
        "a sealed {} frame passed the relay's check: {passed:?}, expected {expected}",
        String::from_utf8_lossy(kind)
    );
}
