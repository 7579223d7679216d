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

use assent_protocol::{Decision, Envelope, PrivateKey, Request, Role};
use assent_relay_client::{Client, ClientError, ConnectOptions, Event as RelayWire, Fault};
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
            envelope,
        } => RelayEvent::Decided {
            request_id,
            approver,
            verdict,
            // Verified here: a decision whose signature does not verify is nobody's.
            decision: envelope.open::<Decision>().ok().map(Box::new),
        },
        RelayWire::Delivered {
            request_id,
            decision_sha256,
        } => RelayEvent::Delivered {
            request_id,
            decision_sha256,
        },
        RelayWire::Withdrawn { request_id } => RelayEvent::Withdrawn { request_id },
        RelayWire::Expired { request_id } => RelayEvent::Expired { request_id },
        RelayWire::Refused { request_id, reason } => RelayEvent::Refused { request_id, reason },
        RelayWire::Queued { .. } | RelayWire::Decision { .. } | RelayWire::Statuses { .. } => {
            return None;
        }
    })
}

/// Start the link task on the current tokio runtime.
pub fn spawn(
    url: String,
    embedded: bool,
    options: ConnectOptions,
    key: Arc<PrivateKey>,
    host: HostView,
    events: mpsc::UnboundedSender<Event>,
) -> Link {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(url, embedded, options, key, host, events, rx));
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
    options: ConnectOptions,
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
        // Only a failed connection or login can be a configuration error: once logged in,
        // the set-up worked, and a broken connection is worth trying again.
        let (error, fault) = match Client::connect_with(&url, &key, Role::Approver, &options).await
        {
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
                    Some(e) => (e, Fault::Transient),
                }
            }
            Err(e) => {
                let fault = e.fault();
                (e, fault)
            }
        };
        if fault == Fault::Configuration {
            // No retry can fix this: say so once, in full, and stop trying.
            if !state(RelayState::Misconfigured {
                url: url.clone(),
                error: visible_error(&error),
            }) {
                return;
            }
            while rx.recv().await.is_some() {}
            return;
        }
        let delay = backoff(attempt.max(1));
        if !state(RelayState::Disconnected {
            url: url.clone(),
            error: visible_error(&error),
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
) -> Option<ClientError> {
    if let Err(e) = outbox.flush(client).await {
        return Some(e);
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
                Err(e) => return Some(e),
            },
            out = rx.recv() => match out {
                Some(out) => {
                    outbox.push(out);
                    if let Err(e) = outbox.flush(client).await {
                        return Some(e);
                    }
                }
                None => return None,
            },
        }
    }
}

/// The whole error, every character visible (the views wrap it; nothing is cut).
fn visible_error(error: &ClientError) -> String {
    crate::escape::visible(&error.to_string()).into_owned()
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

    #[tokio::test]
    async fn a_configuration_error_is_said_in_full_once_and_not_retried() {
        let (tx, mut events) = mpsc::unbounded_channel();
        let url = "https://relay.example:7447/a-long-path-so-the-error-is-long".to_string();
        let _link = spawn(
            url.clone(),
            false,
            ConnectOptions::default(),
            Arc::new(testing::approver_key()),
            HostView::new("/nonexistent/elevator.toml"),
            tx,
        );
        let mut states = Vec::new();
        while let Ok(Some(Event::Relay(RelayEvent::State(state)))) =
            tokio::time::timeout(Duration::from_secs(3), events.recv()).await
        {
            states.push(state);
        }
        assert_eq!(states.len(), 2, "{states:?}");
        assert!(matches!(
            states[0],
            RelayState::Connecting { attempt: 1, .. }
        ));
        let RelayState::Misconfigured { error, .. } = &states[1] else {
            panic!("{states:?}")
        };
        assert!(error.contains(&url), "{error}");
        assert!(
            error.ends_with("use ws://HOST:PORT or wss://HOST:PORT"),
            "{error}"
        );
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
