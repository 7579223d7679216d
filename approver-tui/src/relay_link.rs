//! The edge to the relay: one approver connection, kept up with backoff, turning relay events
//! into verified [`update::Event`]s and sending what the console signed.
//!
//! Requests are opened here with [`Envelope::open`] (the only verifier) and dropped when they
//! fail; the risk flags that need this host's files and elevator configuration are computed
//! here too, so [`update::update`] stays pure. The relay's own `first_seen` hint is not used:
//! whether an agent key is new is the decision log's to say ([`crate::memory`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use assent_protocol::{Envelope, PrivateKey, Request, Role};
use assent_relay_client::{Client, Event as RelayWire};
use tokio::sync::mpsc;

use crate::app::RelayState;
use crate::host::HostView;
use crate::risk;
use crate::update::{Event, RelayEvent};

/// What the console asks the link to send.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Decide(Envelope),
    PublishStatus(Envelope),
}

/// Handle to the link task.
#[derive(Debug, Clone)]
pub struct Link {
    tx: mpsc::UnboundedSender<Outgoing>,
}

impl Link {
    /// Send a decision (kept and re-sent after a reconnect until the relay has it).
    pub fn decide(&self, decision: Envelope) {
        let _ = self.tx.send(Outgoing::Decide(decision));
    }

    /// Publish a status (only the newest unsent one is kept while disconnected).
    pub fn publish_status(&self, status: Envelope) {
        let _ = self.tx.send(Outgoing::PublishStatus(status));
    }
}

/// Backoff before reconnect attempt `attempt` (1-based): 0.5 s doubling to 10 s.
pub fn backoff(attempt: u32) -> Duration {
    let ms = 500u64.saturating_mul(1 << attempt.saturating_sub(1).min(5));
    Duration::from_millis(ms.min(10_000))
}

/// Verify a request and compute its risk flags; `Invalid` if it does not verify.
pub fn request_event(envelope: &Envelope, host: &mut HostView) -> RelayEvent {
    match envelope.open::<Request>() {
        Ok(request) => {
            let facts = host.facts_for(&request.payload);
            let risks = risk::assess(&request.payload, facts.as_ref());
            RelayEvent::Request {
                request: Box::new(request),
                risks,
            }
        }
        Err(e) => RelayEvent::Invalid {
            reason: e.to_string(),
        },
    }
}

/// Map one relay event to a console event; events meant for agents are ignored.
fn translate(event: RelayWire, host: &mut HostView) -> Option<RelayEvent> {
    Some(match event {
        RelayWire::Request { envelope, .. } => request_event(&envelope, host),
        RelayWire::Decided {
            request_id,
            approver,
            verdict,
            ..
        } => RelayEvent::Decided {
            request_id,
            approver,
            verdict,
        },
        RelayWire::Expired { request_id } => RelayEvent::Expired { request_id },
        RelayWire::Refused { request_id, reason } => RelayEvent::Refused { request_id, reason },
        RelayWire::Queued { .. }
        | RelayWire::Decision { .. }
        | RelayWire::Statuses { .. }
        | RelayWire::Delivered { .. }
        | RelayWire::Withdrawn { .. } => {
            return None;
        }
    })
}

/// Start the link task on the current tokio runtime.
pub fn spawn(
    url: String,
    embedded: bool,
    key: Arc<PrivateKey>,
    host: HostView,
    events: mpsc::UnboundedSender<Event>,
) -> Link {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(url, embedded, key, host, events, rx));
    Link { tx }
}

/// Messages waiting for a connection.
#[derive(Default)]
struct Outbox {
    decisions: VecDeque<Envelope>,
    status: Option<Envelope>,
}

impl Outbox {
    fn push(&mut self, out: Outgoing) {
        match out {
            Outgoing::Decide(d) => self.decisions.push_back(d),
            Outgoing::PublishStatus(s) => self.status = Some(s),
        }
    }

    /// Send everything waiting; on failure the unsent rest stays.
    async fn flush(&mut self, client: &mut Client) -> Result<(), assent_relay_client::ClientError> {
        while let Some(d) = self.decisions.front() {
            client.decide(d).await?;
            self.decisions.pop_front();
        }
        if let Some(s) = &self.status {
            client.publish_status(s).await?;
            self.status = None;
        }
        Ok(())
    }
}

async fn run(
    url: String,
    embedded: bool,
    key: Arc<PrivateKey>,
    mut host: HostView,
    events: mpsc::UnboundedSender<Event>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    let state = |s: RelayState| events.send(Event::Relay(RelayEvent::State(s))).is_ok();
    let mut outbox = Outbox::default();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        if !state(RelayState::Connecting {
            url: url.clone(),
            attempt,
        }) {
            return;
        }
        let error = match Client::connect(&url, &key, Role::Approver).await {
            Ok(mut client) => {
                attempt = 0;
                state(RelayState::Connected {
                    url: url.clone(),
                    embedded,
                });
                let error = serve(&mut client, &mut outbox, &mut host, &events, &mut rx).await;
                match error {
                    None => {
                        client.close().await;
                        return; // the console is quitting
                    }
                    Some(e) => e,
                }
            }
            Err(e) => e.to_string(),
        };
        let delay = backoff(attempt.max(1));
        if !state(RelayState::Disconnected {
            url: url.clone(),
            error: short(&error),
            retry_in_s: delay.as_secs().max(1),
        }) {
            return;
        }
        // Keep collecting what to send while waiting.
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                out = rx.recv() => match out {
                    Some(out) => outbox.push(out),
                    None => return,
                },
            }
        }
    }
}

/// Talk to a connected relay until the connection fails (`Some(why)`) or the console quits
/// (`None`).
async fn serve(
    client: &mut Client,
    outbox: &mut Outbox,
    host: &mut HostView,
    events: &mpsc::UnboundedSender<Event>,
    rx: &mut mpsc::UnboundedReceiver<Outgoing>,
) -> Option<String> {
    if let Err(e) = outbox.flush(client).await {
        return Some(e.to_string());
    }
    loop {
        tokio::select! {
            ev = client.next_event() => match ev {
                Ok(ev) => {
                    if let Some(ev) = translate(ev, host) {
                        if events.send(Event::Relay(ev)).is_err() {
                            return None;
                        }
                    }
                }
                Err(e) => return Some(e.to_string()),
            },
            out = rx.recv() => match out {
                Some(out) => {
                    outbox.push(out);
                    if let Err(e) = outbox.flush(client).await {
                        return Some(e.to_string());
                    }
                }
                None => return None,
            },
        }
    }
}

/// The first line of an error, shortened for the status bar.
fn short(error: &str) -> String {
    let line = error.lines().next().unwrap_or(error);
    crate::escape::truncate(&crate::escape::visible(line), 80).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_millis(1000));
        assert_eq!(backoff(5), Duration::from_millis(8000));
        assert_eq!(backoff(6), Duration::from_millis(10_000));
        assert_eq!(backoff(60), Duration::from_millis(10_000));
    }

    #[test]
    fn invalid_requests_are_dropped() {
        let mut host = HostView::new("/nonexistent/elevator.toml");
        let good = testing::signed(testing::request("ls", &[]), 1, 1);
        assert!(matches!(
            request_event(&good.envelope, &mut host),
            RelayEvent::Request { .. }
        ));
        let mut tampered = good.envelope.clone();
        let other = testing::signed(testing::request("rm -rf /", &[]), 1, 1);
        tampered.payload = other.envelope.payload.clone();
        assert!(matches!(
            request_event(&tampered, &mut host),
            RelayEvent::Invalid { .. }
        ));
        // A decision envelope is not a request (wrong namespace).
        let d = crate::sign::decision(
            &good,
            &crate::sign::Choice::deny(None),
            "alice",
            crate::testing::CONSOLE,
            1,
            120,
        );
        let d = Envelope::seal(&testing::approver_key(), &d);
        assert!(matches!(
            request_event(&d, &mut host),
            RelayEvent::Invalid { .. }
        ));
    }
}
