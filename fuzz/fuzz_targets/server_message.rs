//! One text frame from a relay, as the shim and the console read it: network input from a
//! relay that may be hostile (docs/relay-protocol.md §3.2).
//!
//! The frame is parsed into a `ServerMessage` exactly as the client parses it
//! (`serde_json::from_str::<ServerMessage>`), then turned into the client's `Event`
//! (`Event::from_message`, the one place that does so for both), and what each event carries
//! goes where the shim and the console send it: a pending request through the console's
//! `request_event` (signature check, host facts, risk flags) and on to the text the console
//! prints; decisions and statuses through `Envelope::open`.
//!
//! An input that holds the byte 0xFF is read as `TYPE 0xFF PAYLOAD`, where TYPE is `request`,
//! `decision` or `statuses`: the payload is signed here with the fixed key for that message
//! and put into a frame, so the checks behind the signatures are reached. Nothing may panic;
//! a parsed frame serialises and parses back to the same message; a reason the relay wrote
//! reaches the client printable; every argument the console prints is free of control and
//! invisible characters; a sealed request reaches the console exactly when its payload
//! parses.
#![no_main]

use std::sync::Mutex;

use assent_console::escape::{needs_escape, shell_join, visible};
use assent_console::host::HostView;
use assent_console::relay_link::request_event;
use assent_console::update::RelayEvent;
use assent_fuzz::{agent_key, approver_key, seal, sealed_parts};
use assent_protocol::{Decision, Envelope, Payload, Request, RequestId, Status, Verdict};
use assent_relay_client::Event;
use assent_relay_client::message::ServerMessage;
use libfuzzer_sys::fuzz_target;

/// No elevator config here: the console reads it as missing, as on another host.
static HOST: Mutex<Option<HostView>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = frame(text);
    }
    if let Some(parts) = sealed_parts(data)
        && let [kind, payload, ..] = parts[..]
    {
        sealed(kind, payload);
    }
});

/// What a client does with one text frame. `None` when it does not parse or is not an event
/// after login; otherwise whether it carried a request the console would list.
fn frame(text: &str) -> Option<bool> {
    let message = serde_json::from_str::<ServerMessage>(text).ok()?;
    let json = message.to_json();
    let again: ServerMessage = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("a parsed message does not parse again: {e}\n{json}"));
    assert_eq!(again, message);
    let event = Event::from_message(message).ok()?;
    Some(match event {
        Event::Request { envelope, .. } => console_lists(&envelope),
        Event::Decision { envelope } | Event::Decided { envelope, .. } => {
            let _ = envelope.open::<Decision>();
            false
        }
        Event::Statuses { statuses } => {
            for status in &statuses {
                let _ = status.open::<Status>();
            }
            false
        }
        Event::Refused { reason, .. } => {
            assert!(
                !reason.chars().any(needs_escape),
                "a refusal reaches the client unprintable: {reason:?}"
            );
            false
        }
        Event::Queued { .. }
        | Event::Delivered { .. }
        | Event::Withdrawn { .. }
        | Event::Expired { .. } => false,
    })
}

/// The console's intake of a pending request, and the text it prints for it.
fn console_lists(envelope: &Envelope) -> bool {
    let mut host = HOST.lock().unwrap_or_else(|e| e.into_inner());
    let host = host.get_or_insert_with(|| HostView::new("/nonexistent/assent/elevator.toml"));
    match request_event(envelope, host) {
        RelayEvent::Request { request, risks } => {
            let payload = &request.payload;
            for shown in payload
                .argv
                .iter()
                .map(|a| visible(a).into_owned())
                .chain([shell_join(&payload.argv)])
                .chain([visible(&payload.program).into_owned()])
                .chain([visible(&payload.cwd).into_owned()])
            {
                assert!(
                    !shown.chars().any(needs_escape),
                    "the console would print a control or invisible character: {shown:?}"
                );
            }
            for risk in &risks {
                let _ = risk.describe();
            }
            true
        }
        _ => false,
    }
}

fn sealed(kind: &[u8], payload: &[u8]) {
    if payload.len() > assent_protocol::MAX_PAYLOAD_LEN {
        return;
    }
    let id = RequestId([0x5a; 16]);
    let (message, expected) = match kind {
        b"request" => (
            ServerMessage::Request {
                request: seal::<Request>(agent_key(), payload),
                first_seen: false,
            },
            Request::from_bytes(payload).is_ok(),
        ),
        b"decision" => (
            ServerMessage::Decided {
                request_id: id,
                approver: "alice".into(),
                verdict: Verdict::Approve,
                decision: seal::<Decision>(approver_key(), payload),
            },
            false,
        ),
        b"statuses" => (
            ServerMessage::Statuses {
                statuses: vec![seal::<Status>(approver_key(), payload)],
            },
            false,
        ),
        _ => return,
    };
    let listed = frame(&message.to_json());
    assert_eq!(
        listed,
        Some(expected),
        "a sealed {} frame: listed {listed:?}, expected {expected}",
        String::from_utf8_lossy(kind)
    );
}
