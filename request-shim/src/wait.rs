//! Getting an answer through the relay: submit the signed request, wait for a decision that
//! binds it, reconnect and re-send the same envelope when the connection drops, and give up at
//! the request's deadline. Also: fetching a fresh status for a reusable grant.
//!
//! A cached grant is tried first, with the newest status of the console that approved it.
//! When that status is missing or stale, the grant stays cached, the request is asked anew,
//! and the relay is asked again for the status every [`STATUS_POLL`] while the human has not
//! answered: if a fresh one comes first, the request is withdrawn and the cached grant runs.
//!
//! Nothing here trusts the relay. A decision counts only after [`accept_decision`] verified
//! it against our own request; statuses are checked by the elevator again anyway.

use std::time::Duration;

use assent_common::elevator_config::Approver;
use assent_protocol::{
    Decision, Envelope, GrantToken, PrivateKey, Request, Role, Signed, Status, Verdict,
};
use assent_relay_client::text::printable;
use assent_relay_client::{Client, ClientError, ConnectOptions, Event, Fault};
use tokio::time::{Instant, sleep, sleep_until, timeout_at};

use crate::cache::{self, CachedGrant, GrantCache, Unusable};
use crate::failure::{Exit, Failure, Result};
use crate::progress::Progress;
use crate::request;
use crate::statuses::StatusStore;
use assent_common::clock::now;
use assent_common::duration;

const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a fresh approval of a reusable grant waits for the approver's status to show up.
const STATUS_WAIT: Duration = Duration::from_secs(5);
/// How often a wait that holds a cached grant asks the relay again for its console's status.
pub const STATUS_POLL: Duration = Duration::from_secs(2);
/// How long a stopped wait tries to withdraw its request before it exits anyway.
const WITHDRAW_PATIENCE: Duration = Duration::from_secs(2);

/// The signals that stop a wait, each with the status it exits with (128 + its number).
struct Stops {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Stops {
    fn listen() -> Result<Stops> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind| {
            signal(kind).map_err(|e| Failure::config(format!("cannot listen for signals: {e}")))
        };
        Ok(Stops {
            interrupt: listen(SignalKind::interrupt())?,
            terminate: listen(SignalKind::terminate())?,
            hangup: listen(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Exit {
        tokio::select! {
            _ = self.interrupt.recv() => Exit::Interrupted,
            _ = self.terminate.recv() => Exit::Terminated,
            _ = self.hangup.recv() => Exit::HungUp,
        }
    }
}

/// The statuses `url` serves, asked for once within `patience`; why not, when it cannot say.
pub async fn served_statuses(
    url: &str,
    key: &PrivateKey,
    options: &ConnectOptions,
    patience: Duration,
) -> std::result::Result<Vec<Envelope>, String> {
    let ask = async {
        let mut client = Client::connect_with(url, key, Role::Agent, options).await?;
        client.request_statuses().await?;
        let served = loop {
            if let Event::Statuses { statuses } = client.next_event().await? {
                break statuses;
            }
        };
        client.close().await;
        Ok::<_, ClientError>(served)
    };
    match tokio::time::timeout(patience, ask).await {
        Ok(Ok(served)) => Ok(served),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}s", patience.as_secs())),
    }
}

/// A decision envelope that verifies, binds our request (id, payload hash, command), and is
/// signed by an approver the elevator lists (when this user can read that list).
pub fn accept_decision(
    request: &Signed<Request>,
    envelope: &Envelope,
    listed: Option<&[Approver]>,
) -> std::result::Result<Signed<Decision>, String> {
    let decision = envelope.open::<Decision>().map_err(|e| e.to_string())?;
    cache::check_binding(request, &decision)?;
    cache::check_signer(&decision, listed)?;
    Ok(decision)
}

/// What the wait produced: everything the elevator needs.
#[derive(Debug)]
pub struct Approved {
    pub token: GrantToken,
    pub approver: String,
    pub grant: assent_protocol::Grant,
    /// True when an earlier cached grant was used (no prompt).
    pub from_cache: bool,
}

impl Approved {
    /// A cached grant with `status`, the fresh status of its console that vouches for it.
    pub fn from_cache(grant: CachedGrant, status: Signed<Status>) -> Approved {
        Approved {
            approver: grant.decision.payload.approver.clone(),
            grant: grant.decision.payload.grant,
            token: GrantToken {
                request: grant.request.envelope,
                decision: grant.decision.envelope,
                status: Some(status.envelope),
            },
            from_cache: true,
        }
    }
}

/// The end of a line saying nothing ran, when the grant `decision` stays cached for later.
fn kept_for_later(decision: &Decision) -> String {
    format!(
        "; the cached {} grant from {} stays, and runs without asking once the console that approved it publishes a fresh status",
        decision.grant, decision.approver
    )
}

/// One attempt at the relay ended without an answer.
enum Lost {
    /// The connection failed; try again.
    Connection(ClientError),
    /// Final: say this and exit.
    Final(Failure),
}

impl From<ClientError> for Lost {
    fn from(e: ClientError) -> Lost {
        Lost::Connection(e)
    }
}

/// The conversation with the relay for one `assent run`.
pub struct Wait<'a> {
    pub relay: &'a str,
    pub key: &'a PrivateKey,
    pub request: Signed<Request>,
    pub timeout_s: u64,
    /// When the wait ends: the timeout after it started, to the second.
    pub deadline: Instant,
    /// When a relay never reached is given up (`connect_timeout` after the start; the
    /// deadline when that is sooner).
    pub connect_deadline: Instant,
    /// How to connect (the CA files for `wss://`).
    pub connect: ConnectOptions,
    /// A cached grant to try before asking anew, and while the request waits.
    pub cached: Option<CachedGrant>,
    pub cache: &'a GrantCache,
    /// The statuses kept next to the cache.
    pub kept: &'a StatusStore,
    pub status_max_age_s: u64,
    pub progress: Progress,
    /// The elevator's approvers, when this user can read them.
    pub approvers: Option<Vec<Approver>>,
    /// The request was handed to a relay at least once (and may need withdrawing).
    pub submitted: bool,
}

impl Wait<'_> {
    /// Run until approved, denied, expired, or stopped by SIGINT, SIGTERM or SIGHUP; a stopped
    /// wait withdraws its request, so approving it later runs nothing and the console drops it.
    pub async fn run(mut self) -> Result<Approved> {
        let mut stops = Stops::listen()?;
        let outcome = tokio::select! {
            outcome = self.obtain() => Ok(outcome),
            exit = stops.next() => Err(exit),
        };
        self.progress.clear();
        match outcome {
            Ok(outcome) => outcome,
            Err(exit) => Err(self.withdrawn(exit).await),
        }
    }

    /// Withdraw the request after `exit`'s signal, through a connection of its own (the one
    /// the wait held is gone with it), within [`WITHDRAW_PATIENCE`]. The line says whether the
    /// relay confirmed it.
    async fn withdrawn(&mut self, exit: Exit) -> Failure {
        let signal = match exit {
            Exit::HungUp => "hung up (SIGHUP)",
            Exit::Terminated => "terminated (SIGTERM)",
            _ => "interrupted (SIGINT)",
        };
        let reference = self.request.sha256.reference();
        if !self.submitted {
            return Failure::new(exit, format!("{signal}; nothing ran"));
        }
        let withdraw = request::withdraw(self.key, &self.request, now());
        let ours = self.request.payload.id;
        let send = async {
            let mut client =
                Client::connect_with(self.relay, self.key, Role::Agent, &self.connect).await?;
            client.withdraw(&withdraw).await?;
            let answer = loop {
                match client.next_event().await? {
                    Event::Withdrawn { request_id } if request_id == ours => break Ok(()),
                    Event::Refused { request_id, reason }
                        if request_id.is_none_or(|id| id == ours) =>
                    {
                        break Err(reason);
                    }
                    _ => {}
                }
            };
            client.close().await;
            Ok::<_, ClientError>(answer)
        };
        match tokio::time::timeout(WITHDRAW_PATIENCE, send).await {
            Ok(Ok(Ok(()))) => Failure::new(
                exit,
                format!("{signal}; withdrew request {reference}; nothing ran"),
            ),
            Ok(Ok(Err(reason))) => Failure::new(
                exit,
                format!(
                    "{signal}; the relay refused to withdraw request {reference} ({}); nothing ran, and approving it runs nothing",
                    printable(&reason)
                ),
            ),
            Ok(Err(e)) => Failure::new(
                exit,
                format!(
                    "{signal}; could not withdraw request {reference} ({e}); nothing ran, and approving it runs nothing"
                ),
            ),
            Err(_) => Failure::new(
                exit,
                format!(
                    "{signal}; the relay did not confirm the withdrawal of request {reference} within {}s; nothing ran, and approving it runs nothing",
                    WITHDRAW_PATIENCE.as_secs()
                ),
            ),
        }
    }

    /// The connect timeout, in whole seconds, for the line that gives up.
    fn connect_timeout_s(&self) -> u64 {
        let total = self
            .connect_deadline
            .saturating_duration_since(self.started());
        total.as_secs_f64().round() as u64
    }

    /// When the wait started.
    fn started(&self) -> Instant {
        self.deadline - Duration::from_secs(self.timeout_s)
    }

    fn timed_out(&self) -> Failure {
        Failure::retry(format!(
            "no decision on request {} within {}; nothing ran{}",
            self.request.sha256.reference(),
            duration::format(self.timeout_s),
            self.still_cached()
        ))
    }

    /// What the agent should know when it gives up while a cached grant waits for a status.
    fn still_cached(&self) -> String {
        match &self.cached {
            Some(grant) => kept_for_later(&grant.decision.payload),
            None => String::new(),
        }
    }

    /// A connection failure that no retry can fix, as the line to exit 78 with.
    fn misconfigured(&self, e: &ClientError) -> Failure {
        match e {
            ClientError::Refused(why) => Failure::config(format!(
                "the relay {} refused this agent's key ({}): {}; ask its operator to list agent.key.pub as an [[agent]] in its relay.toml",
                self.relay,
                self.key.public().fingerprint(),
                printable(why)
            )),
            other => Failure::config(format!("{other}; nothing ran")),
        }
    }

    async fn obtain(&mut self) -> Result<Approved> {
        let mut backoff = BACKOFF_FIRST;
        let mut reached = false;
        let mut last_error = None;
        loop {
            // Until the relay answers once, it gets connect_timeout; then the whole wait.
            let deadline = if reached {
                self.deadline
            } else {
                self.connect_deadline.min(self.deadline)
            };
            let connect = Client::connect_with(self.relay, self.key, Role::Agent, &self.connect);
            let connected = match timeout_at(deadline, connect).await {
                Err(_) => break,
                Ok(c) => c,
            };
            match connected {
                Ok(mut client) => {
                    if !reached && last_error.is_some() {
                        self.progress
                            .line(&format!("reached the relay {}", self.relay));
                    } else if reached {
                        self.progress.line(&format!(
                            "reconnected to {}; re-sent the request",
                            self.relay
                        ));
                    }
                    reached = true;
                    backoff = BACKOFF_FIRST;
                    let attempt = timeout_at(self.deadline, self.converse(&mut client)).await;
                    // Closing politely never outlasts the deadline.
                    let _ = timeout_at(self.deadline, client.close()).await;
                    match attempt {
                        Err(_) => break,
                        Ok(Ok(approved)) => return Ok(approved),
                        Ok(Err(Lost::Final(failure))) => return Err(failure),
                        Ok(Err(Lost::Connection(e))) => {
                            self.progress
                                .line(&format!("lost the relay {}: {e}; reconnecting", self.relay));
                            last_error = Some(e.to_string());
                        }
                    }
                }
                // Only an unreachable or restarting relay is worth waiting for.
                Err(e) if e.fault() == Fault::Configuration => {
                    return Err(self.misconfigured(&e));
                }
                Err(e) => {
                    if last_error.is_none() && !reached {
                        self.progress.line(&format!(
                            "relay {} unreachable ({e}); retrying for up to {}",
                            self.relay,
                            duration::format(self.connect_timeout_s().min(self.timeout_s))
                        ));
                    }
                    last_error = Some(e.to_string());
                }
            }
            if timeout_at(deadline, sleep(backoff)).await.is_err() {
                break;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        if reached || self.connect_deadline >= self.deadline {
            if !reached {
                return Err(Failure::retry(format!(
                    "relay {} unreachable for the whole wait ({}); nothing ran{}",
                    self.relay,
                    last_error.as_deref().unwrap_or("no answer"),
                    self.still_cached()
                )));
            }
            Err(self.timed_out())
        } else {
            Err(Failure::retry(format!(
                "relay {} unreachable for {} ({}); nothing ran{}; fix: start `assent-console` (it hosts a relay) or `assent-relay`, or point relay = in agent.toml or ASSENT_RELAY at a running one, then run it again",
                self.relay,
                duration::format(self.connect_timeout_s()),
                last_error.as_deref().unwrap_or("no answer"),
                self.still_cached()
            )))
        }
    }

    /// One connection: try the cached grant, else submit and wait for the decision (or, for a
    /// cached grant still waiting, for a fresh status of its console).
    async fn converse(&mut self, client: &mut Client) -> std::result::Result<Approved, Lost> {
        if self.cached.is_some() {
            client.request_statuses().await?;
            let served = loop {
                if let Event::Statuses { statuses } = client.next_event().await? {
                    break statuses;
                }
            };
            if let Some(approved) = self.try_cached(&served) {
                return Ok(approved);
            }
        }

        self.submitted = true;
        client.submit(&self.request.envelope).await?;
        self.progress.started(now());
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        let mut poll = tokio::time::interval_at(Instant::now() + STATUS_POLL, STATUS_POLL);
        loop {
            let event = tokio::select! {
                event = client.next_event() => event?,
                _ = ticks.tick(), if self.progress.is_tty() => {
                    self.progress.tick(now());
                    continue;
                }
                _ = poll.tick(), if self.cached.is_some() => {
                    client.request_statuses().await?;
                    continue;
                }
            };
            let ours = self.request.payload.id;
            match event {
                Event::Statuses { statuses } => {
                    if let Some(approved) = self.try_cached(&statuses) {
                        // Nobody needs to answer any more. If someone already did, the relay
                        // refuses the withdraw and that decision goes unused: harmless.
                        let withdraw = request::withdraw(self.key, &self.request, now());
                        let _ = client.withdraw(&withdraw).await;
                        self.progress.line(&format!(
                            "a fresh status came from the console of {} that approved the cached grant; withdrew request {}",
                            approved.approver,
                            self.request.sha256.reference()
                        ));
                        return Ok(approved);
                    }
                }
                Event::Decision { envelope } => {
                    match accept_decision(&self.request, &envelope, self.approvers.as_deref()) {
                        Ok(decision) => return self.decided(client, decision).await,
                        Err(why) => self.progress.warn(&format!(
                            "ignoring a decision the elevator would refuse: {why}"
                        )),
                    }
                }
                Event::Expired { request_id } if request_id == ours => {
                    return Err(Lost::Final(self.timed_out()));
                }
                Event::Refused { request_id, reason } if request_id.is_none_or(|id| id == ours) => {
                    return Err(Lost::Final(Failure::retry(format!(
                        "the relay {} refused request {}: {}; nothing ran",
                        self.relay,
                        self.request.sha256.reference(),
                        reason
                    ))));
                }
                _ => {}
            }
        }
    }

    /// Judge the cached grant with the newest status of its console (`served` by the relay
    /// now, or kept from before). Usable: its approval. Expired or revoked: it is dropped from
    /// the cache. Waiting for a fresh status: it stays cached, the request is asked, and the
    /// status is asked for again while the request waits.
    fn try_cached(&mut self, served: &[Envelope]) -> Option<Approved> {
        let grant = self.cached.clone()?;
        let status = self.kept.update(&grant.decision, served, now());
        let judged = cache::check_grant(
            &grant,
            status,
            self.approvers.as_deref(),
            now(),
            self.status_max_age_s,
        );
        let why = match judged {
            Ok(status) => {
                self.cached = None;
                return Some(Approved::from_cache(grant, status));
            }
            Err(why) => why,
        };
        if why.is_waiting() {
            // Said once: a reconnect asks again, quietly.
            if !self.progress.has_started() {
                let d = &grant.decision.payload;
                self.progress.line(&format!(
                    "the cached {} grant from {} is waiting for a fresh status ({why}); it stays cached and is used as soon as one comes; asking anew meanwhile",
                    d.grant, d.approver
                ));
            }
            return None;
        }
        self.progress
            .warn(&format!("cached grant not usable: {why}"));
        if why.is_final() {
            self.cache.remove(&grant.path);
        }
        self.cached = None;
        None
    }

    /// A verified decision for our request: deny ends here, approve builds the token.
    async fn decided(
        &mut self,
        client: &mut Client,
        decision: Signed<Decision>,
    ) -> std::result::Result<Approved, Lost> {
        let d = &decision.payload;
        if d.verdict == Verdict::Deny {
            crate::mcp::report::note(&crate::mcp::report::Milestone::Denied {
                approver: d.approver.clone(),
                note: d.note.clone(),
            });
            let note = d.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
            return Err(Lost::Final(Failure::denied(match note {
                Some(note) => format!("denied by {}: {note}", d.approver),
                None => format!("denied by {}", d.approver),
            })));
        }
        let approver = d.approver.clone();
        let grant = d.grant;
        // Answered: a cached grant that was waiting is not needed for this run.
        self.cached = None;
        let status = if grant.is_reusable() {
            if let Err(e) = self.cache.store(&self.request, &decision) {
                self.progress.warn(&format!(
                    "approved, but the grant could not be cached in {}: {e}",
                    self.cache.dir().display()
                ));
            }
            let wait_until = Instant::now() + STATUS_WAIT;
            match self.fresh_status_for(client, &decision, wait_until).await? {
                Ok(status) => Some(status.envelope),
                Err(why) if why.is_waiting() => {
                    return Err(Lost::Final(Failure::retry(format!(
                        "approved by {approver} ({grant}), but {why}; nothing ran{}",
                        kept_for_later(&decision.payload)
                    ))));
                }
                Err(why) => {
                    return Err(Lost::Final(Failure::denied(format!(
                        "approved by {approver} ({grant}), but {why}; nothing ran"
                    ))));
                }
            }
        } else {
            None
        };
        Ok(Approved {
            token: GrantToken {
                request: self.request.envelope.clone(),
                decision: decision.envelope,
                status,
            },
            approver,
            grant,
            from_cache: false,
        })
    }

    /// Ask the relay for statuses and judge the decision with the newest of its console's (or
    /// the one kept). Until `retry_until`, a missing or stale status is asked for again (the
    /// console may publish one any moment).
    async fn fresh_status_for(
        &mut self,
        client: &mut Client,
        decision: &Signed<Decision>,
        retry_until: Instant,
    ) -> std::result::Result<std::result::Result<Signed<Status>, Unusable>, Lost> {
        loop {
            client.request_statuses().await?;
            let served = loop {
                if let Event::Statuses { statuses } = client.next_event().await? {
                    break statuses;
                }
            };
            let status = self.kept.update(decision, &served, now());
            let judged = cache::check_window(&decision.payload, now())
                .and_then(|()| cache::check_status(decision, status, now(), self.status_max_age_s));
            match judged {
                Err(why)
                    if why.is_waiting()
                        && Instant::now() + Duration::from_millis(500) < retry_until =>
                {
                    sleep_until(Instant::now() + Duration::from_millis(500)).await;
                }
                other => return Ok(other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use assent_protocol::{Grant, PrivateKey};

    use super::*;
    use crate::cache::tests::{command, decide, signed_request};

    #[test]
    fn only_decisions_that_bind_our_request_are_accepted() {
        let agent = PrivateKey::generate("agent");
        let alice = PrivateKey::generate("alice");
        let ours = signed_request(&agent, &command(1), Grant::Once);
        let theirs = signed_request(&agent, &command(1), Grant::Once);
        let good = decide(&alice, &ours, Verdict::Approve, Grant::Once, Some(1120));
        assert_eq!(
            accept_decision(&ours, &good.envelope, None).unwrap().sha256,
            good.sha256
        );
        let foreign = decide(&alice, &theirs, Verdict::Approve, Grant::Once, Some(1120));
        assert!(
            accept_decision(&ours, &foreign.envelope, None)
                .unwrap_err()
                .contains("another request")
        );
        // A status is not a decision (namespace), and garbage is garbage.
        let status = crate::cache::tests::status(&alice, 1, vec![]);
        assert!(accept_decision(&ours, &status, None).is_err());
        // A decision signed over a different command hash.
        let mut wrong = good.payload.clone();
        wrong.cmd_sha256 = command(2).cmd_sha256();
        let wrong = Envelope::seal(&alice, &wrong);
        assert!(
            accept_decision(&ours, &wrong, None)
                .unwrap_err()
                .contains("cmd_sha256")
        );
    }

    #[test]
    fn decisions_from_keys_the_elevator_does_not_list_are_refused() {
        let agent = PrivateKey::generate("agent");
        let (alice, mallory) = (PrivateKey::generate("alice"), PrivateKey::generate("m"));
        let listed = [Approver {
            name: "alice".into(),
            key: alice.public(),
        }];
        let ours = signed_request(&agent, &command(1), Grant::Once);
        let good = decide(&alice, &ours, Verdict::Approve, Grant::Once, Some(1120));
        accept_decision(&ours, &good.envelope, Some(&listed)).unwrap();
        // Another key calling itself alice: a relay can deliver it, the elevator never runs it.
        let forged = decide(&mallory, &ours, Verdict::Approve, Grant::Once, Some(1120));
        let why = accept_decision(&ours, &forged.envelope, Some(&listed)).unwrap_err();
        assert!(why.contains("is not an [[approver]]"), "{why}");
        accept_decision(&ours, &forged.envelope, None).expect("unknown list: the elevator decides");
        // Alice's key under another name.
        let mut renamed = good.payload.clone();
        renamed.approver = "bob".into();
        let renamed = Envelope::seal(&alice, &renamed);
        let why = accept_decision(&ours, &renamed, Some(&listed)).unwrap_err();
        assert!(why.contains("listed as \"alice\""), "{why}");
    }

    /// Wait for a decision from `relay` with `--timeout 5s`; how long it took (in the
    /// runtime's clock, which the test pauses) and how it ended.
    async fn wait_five_seconds(relay: &str, connect_timeout: Duration) -> (Duration, Failure) {
        let agent = PrivateKey::generate("agent");
        let ask = crate::request::Ask {
            agent: "openclaw".into(),
            reason: String::new(),
            grant: Grant::Once,
            ttl_s: None,
            timeout_s: 5,
        };
        let payload = crate::request::build(
            &crate::cache::tests::requester(),
            crate::cache::tests::HOST_ID,
            &command(1),
            &ask,
            now(),
        );
        let request = Envelope::seal(&agent, &payload).open::<Request>().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = GrantCache::new(dir.path().join("grants"));
        let kept = StatusStore::new(dir.path().join("statuses"));
        let started = Instant::now();
        let outcome = Wait {
            relay,
            key: &agent,
            progress: Progress::new(request.sha256.reference(), relay.into(), payload.expires_at),
            request,
            timeout_s: 5,
            deadline: started + Duration::from_secs(5),
            connect_deadline: started + connect_timeout,
            connect: ConnectOptions::default(),
            cached: None,
            cache: &cache,
            kept: &kept,
            status_max_age_s: 120,
            approvers: None,
            submitted: false,
        }
        .obtain()
        .await;
        (started.elapsed(), outcome.unwrap_err())
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_ends_at_the_timeout_to_the_second() {
        // Nobody listens: every attempt fails at once, and backoff fills the time.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        // Listens, but never answers: the attempt hangs until the deadline.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        for relay in [
            format!("ws://{closed}"),
            format!("ws://{}", silent.local_addr().unwrap()),
        ] {
            let (took, failure) = wait_five_seconds(&relay, Duration::from_secs(15)).await;
            assert_eq!(failure.exit, Exit::Retry, "{failure}");
            assert!(
                failure.message.contains("unreachable for the whole wait"),
                "{failure}"
            );
            assert!(
                took >= Duration::from_secs(5) && took < Duration::from_millis(5_010),
                "{relay}: the wait took {took:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_relay_is_given_up_after_the_connect_timeout() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        for relay in [
            format!("ws://{closed}"),
            format!("ws://{}", silent.local_addr().unwrap()),
        ] {
            let (took, failure) = wait_five_seconds(&relay, Duration::from_secs(2)).await;
            assert_eq!(failure.exit, Exit::Retry, "{failure}");
            assert!(
                failure
                    .message
                    .starts_with(&format!("relay {relay} unreachable for 2s (")),
                "{failure}"
            );
            assert!(
                failure.message.contains("fix: start `assent-console`"),
                "{failure}"
            );
            assert!(
                took >= Duration::from_secs(2) && took < Duration::from_millis(2_010),
                "{relay}: the wait took {took:?}"
            );
        }
    }
}
