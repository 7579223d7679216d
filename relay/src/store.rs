//! The relay's memory: pending requests until their deadline (or until their agent withdraws
//! them), the decision kept for each until then (so a shim that reconnects and re-submits gets
//! it, and the approvers hear that it was delivered), the ids of dropped requests for a while
//! longer (so no other request can take an id an approver may still have in mind), and the
//! latest status of each approver's consoles ([`crate::streams`]).
//!
//! [`Store`] is plain data driven by explicit times; each operation returns the messages it
//! causes as [`Delivery`]s, so the routing rules are unit-tested without sockets.
//! [`SharedStore`] puts it behind one mutex together with every connection's outbox, so that
//! messages reach each connection in the order the store produced them.

use std::collections::VecDeque;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::streams::{Published, Streams};
use assent_protocol::{
    Claimed, Decision, Envelope, PublicKey, Request, RequestId, Sha256Digest, Signed, Status,
    Withdraw,
};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::limits::Limits;
use assent_relay_client::message::ServerMessage;

/// Identifies one connection for the lifetime of the relay.
pub type ConnId = u64;

/// One message for a set of connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub to: Vec<ConnId>,
    pub message: ServerMessage,
}

impl Delivery {
    fn one(to: ConnId, message: ServerMessage) -> Self {
        Delivery {
            to: vec![to],
            message,
        }
    }
}

/// Why something a client sent was not accepted. A fatal refusal closes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub request_id: Option<RequestId>,
    pub reason: String,
    pub fatal: bool,
}

impl Refusal {
    pub fn new(request_id: Option<RequestId>, reason: impl Into<String>) -> Self {
        Refusal {
            request_id,
            reason: reason.into(),
            fatal: false,
        }
    }

    pub fn fatal(request_id: Option<RequestId>, reason: impl Into<String>) -> Self {
        Refusal {
            request_id,
            reason: reason.into(),
            fatal: true,
        }
    }
}

#[derive(Debug)]
struct Decided {
    envelope: Envelope,
    sha256: Sha256Digest,
    approver: String,
    /// Handed to at least one agent connection that submitted the request.
    delivered: bool,
}

/// An agent key as its 32 raw bytes: a compact map key (a parsed `PublicKey` is six times
/// larger, and the relay may track thousands).
type AgentKey = [u8; 32];

/// What the relay keeps of a request: the envelope to pass on and what it checks decisions
/// against, not the parsed payload.
#[derive(Debug)]
struct Entry {
    envelope: Envelope,
    sha256: Sha256Digest,
    agent: AgentKey,
    cmd_sha256: Sha256Digest,
    /// Unix seconds at which the relay drops it: `expires_at`, capped by the lifetime limit.
    deadline: u64,
    /// Arrival order, so late consoles see requests in the order they came.
    seq: u64,
    decision: Option<Decided>,
    /// Agent connections that submitted this request and get its decision (usually one).
    waiters: Vec<ConnId>,
}

/// What is kept of a dropped request: enough to tell the same request (same bytes, same
/// signer) from another one under its id, and how it ended.
#[derive(Debug)]
struct Dropped {
    sha256: Sha256Digest,
    agent: AgentKey,
    /// Its agent withdrew it (else it reached its deadline).
    withdrawn: bool,
}

/// Pending requests, kept decisions, remembered ids and statuses. Times are unix seconds.
#[derive(Debug)]
pub struct Store {
    limits: Limits,
    requests: HashMap<RequestId, Entry>,
    deadlines: BTreeSet<(u64, RequestId)>,
    undecided_per_agent: HashMap<AgentKey, usize>,
    /// Ids of dropped requests, until they are forgotten.
    dropped: HashMap<RequestId, Dropped>,
    /// When each dropped id is forgotten, oldest first. Requests are dropped in deadline
    /// order, so pushing at the back keeps this sorted.
    forget: VecDeque<(u64, RequestId)>,
    /// Ids remembered per agent key: held requests and dropped ones.
    ids_per_agent: HashMap<AgentKey, usize>,
    /// Agent keys listed in the config: never first-seen.
    listed_agents: HashSet<AgentKey>,
    /// Agent keys an approver has decided for.
    decided_agents: HashSet<AgentKey>,
    approvers: BTreeSet<ConnId>,
    /// Each agent connection's submitted request ids.
    agents: HashMap<ConnId, Vec<RequestId>>,
    statuses: Streams,
    next_seq: u64,
}

impl Store {
    /// `known_agents`: keys never marked first-seen (the config's listed agents).
    pub fn new(limits: Limits, known_agents: impl IntoIterator<Item = PublicKey>) -> Self {
        Store {
            limits,
            requests: HashMap::new(),
            deadlines: BTreeSet::new(),
            undecided_per_agent: HashMap::new(),
            dropped: HashMap::new(),
            forget: VecDeque::new(),
            ids_per_agent: HashMap::new(),
            listed_agents: known_agents.into_iter().map(|k| *k.as_bytes()).collect(),
            decided_agents: HashSet::new(),
            approvers: BTreeSet::new(),
            agents: HashMap::new(),
            statuses: Streams::new(),
            next_seq: 0,
        }
    }

    /// A new configuration: its limits apply from now on (to requests already held too, where
    /// they are checked again), its listed agents replace the old list, and the statuses of
    /// approvers it no longer lists are forgotten.
    pub fn reconfigure(
        &mut self,
        limits: Limits,
        listed_agents: impl IntoIterator<Item = PublicKey>,
        listed_approvers: impl IntoIterator<Item = PublicKey>,
    ) {
        self.limits = limits;
        self.listed_agents = listed_agents.into_iter().map(|k| *k.as_bytes()).collect();
        let approvers: HashSet<[u8; 32]> = listed_approvers
            .into_iter()
            .map(|k| *k.as_bytes())
            .collect();
        self.statuses.retain_keys(|k| approvers.contains(k));
    }

    /// Requests held, decided or not.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Request ids remembered: held requests and dropped ones not yet forgotten.
    pub fn remembered(&self) -> usize {
        self.requests.len() + self.dropped.len()
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// An approver connection joins: it gets every undecided request, oldest first.
    pub fn connect_approver(&mut self, conn: ConnId, now: u64) -> Vec<ServerMessage> {
        self.approvers.insert(conn);
        let mut pending: Vec<&Entry> = self
            .requests
            .values()
            .filter(|e| e.decision.is_none() && e.deadline > now)
            .collect();
        pending.sort_by_key(|e| e.seq);
        pending
            .into_iter()
            .map(|e| self.request_message(e))
            .collect()
    }

    pub fn disconnect(&mut self, conn: ConnId) {
        self.approvers.remove(&conn);
        for id in self.agents.remove(&conn).unwrap_or_default() {
            if let Some(entry) = self.requests.get_mut(&id) {
                entry.waiters.retain(|w| *w != conn);
            }
        }
    }

    fn request_message(&self, entry: &Entry) -> ServerMessage {
        ServerMessage::Request {
            request: entry.envelope.clone(),
            first_seen: !self.listed_agents.contains(&entry.agent)
                && !self.decided_agents.contains(&entry.agent),
        }
    }

    /// An agent connection submits a request whose SSHSIG names the connection's own key.
    /// Its signature is not verified here (consoles verify what they are shown).
    ///
    /// An id names one request for as long as the relay remembers it: while the request is
    /// held, and `remember_ids_s` after it was dropped. Within that time the identical request
    /// (same bytes, same signer) is idempotent, and anything else under its id is refused.
    pub fn submit(
        &mut self,
        conn: ConnId,
        request: Claimed<Request>,
        now: u64,
    ) -> Result<Vec<Delivery>, Refusal> {
        let id = request.payload.id;
        let agent = *request.claimed_signer.as_bytes();
        let reused = |held: &Sha256Digest| {
            Refusal::new(
                Some(id),
                format!(
                    "request id {id} was already used by request {}; sign a new request with a fresh id",
                    held.reference()
                ),
            )
        };
        if let Some(entry) = self.requests.get(&id) {
            if entry.sha256 != request.sha256 || entry.agent != agent {
                return Err(reused(&entry.sha256));
            }
            return Ok(self.submit_again(conn, id, now));
        }

        self.forget_dropped(now);
        if let Some(dropped) = self.dropped.get(&id) {
            if dropped.sha256 != request.sha256 || dropped.agent != agent {
                return Err(reused(&dropped.sha256));
            }
            let ended = if dropped.withdrawn {
                ServerMessage::Withdrawn { request_id: id }
            } else {
                ServerMessage::Expired { request_id: id }
            };
            return Ok(vec![Delivery::one(conn, ended)]);
        }
        if request.payload.expires_at <= now {
            // Never held, never shown: nothing to remember.
            return Ok(vec![Delivery::one(
                conn,
                ServerMessage::Expired { request_id: id },
            )]);
        }
        self.admit(&agent, id)?;
        Ok(self.hold(conn, request, now))
    }

    /// The request held under `id` submitted again (a reconnecting shim): idempotent, and
    /// `conn` now waits for it too, and gets its decision if it has one.
    fn submit_again(&mut self, conn: ConnId, id: RequestId, now: u64) -> Vec<Delivery> {
        let Some(entry) = self.requests.get_mut(&id) else {
            return Vec::new();
        };
        if entry.deadline <= now {
            return vec![Delivery::one(
                conn,
                ServerMessage::Expired { request_id: id },
            )];
        }
        if !entry.waiters.contains(&conn) {
            entry.waiters.push(conn);
            self.agents.entry(conn).or_default().push(id);
        }
        let mut out = vec![Delivery::one(
            conn,
            ServerMessage::Queued { request_id: id },
        )];
        if let Some(decided) = &mut entry.decision {
            out.push(Delivery::one(
                conn,
                ServerMessage::Decision {
                    decision: decided.envelope.clone(),
                },
            ));
            // Approvers hear it once: that it was delivered, not how often.
            if !decided.delivered {
                decided.delivered = true;
                out.push(Delivery {
                    to: self.approvers.iter().copied().collect(),
                    message: ServerMessage::Delivered {
                        request_id: id,
                        decision_sha256: decided.sha256,
                    },
                });
            }
        }
        out
    }

    /// Whether a new request `id` from `agent` fits the limits. An id is never forgotten
    /// early to make room: when the table is full, new ids wait.
    fn admit(&self, agent: &AgentKey, id: RequestId) -> Result<(), Refusal> {
        let undecided = self.undecided_per_agent.get(agent).copied().unwrap_or(0);
        if undecided >= self.limits.max_pending_per_agent {
            return Err(Refusal::new(
                Some(id),
                format!(
                    "this agent key already has {undecided} requests waiting for an answer (the limit); wait for them to be decided or expire"
                ),
            ));
        }
        if self.requests.len() >= self.limits.max_pending_total {
            return Err(Refusal::new(
                Some(id),
                "the relay holds as many requests as it may; try again later",
            ));
        }
        let used = self.ids_per_agent.get(agent).copied().unwrap_or(0);
        if used >= self.limits.max_remembered_ids_per_agent {
            return Err(Refusal::new(
                Some(id),
                format!(
                    "this agent key has used {used} request ids that the relay still remembers (the limit; each is kept for {} s after its request ends, so that none is reused); try again later",
                    self.limits.remember_ids_s
                ),
            ));
        }
        if self.remembered() >= self.limits.max_remembered_ids {
            return Err(Refusal::new(
                Some(id),
                "the relay remembers as many request ids as it may; try again later",
            ));
        }
        Ok(())
    }

    /// Hold a new, admitted request and announce it to the approvers.
    fn hold(&mut self, conn: ConnId, request: Claimed<Request>, now: u64) -> Vec<Delivery> {
        let id = request.payload.id;
        let agent = *request.claimed_signer.as_bytes();
        let deadline = request
            .payload
            .expires_at
            .min(now.saturating_add(self.limits.max_request_lifetime_s));
        *self.undecided_per_agent.entry(agent).or_default() += 1;
        *self.ids_per_agent.entry(agent).or_default() += 1;
        self.deadlines.insert((deadline, id));
        self.agents.entry(conn).or_default().push(id);
        let entry = Entry {
            cmd_sha256: request.payload.cmd_sha256(),
            envelope: request.envelope,
            sha256: request.sha256,
            agent,
            deadline,
            seq: self.next_seq,
            decision: None,
            waiters: vec![conn],
        };
        self.next_seq += 1;
        let announce = Delivery {
            to: self.approvers.iter().copied().collect(),
            message: self.request_message(&entry),
        };
        self.requests.insert(id, entry);
        vec![
            Delivery::one(conn, ServerMessage::Queued { request_id: id }),
            announce,
        ]
    }

    /// Forget the dropped ids whose time is up.
    fn forget_dropped(&mut self, now: u64) {
        while let Some(&(forget_at, id)) = self.forget.front() {
            if forget_at > now {
                break;
            }
            self.forget.pop_front();
            if let Some(dropped) = self.dropped.remove(&id) {
                if let Some(n) = self.ids_per_agent.get_mut(&dropped.agent) {
                    *n -= 1;
                    if *n == 0 {
                        self.ids_per_agent.remove(&dropped.agent);
                    }
                }
            }
        }
    }

    /// A verified decision, signed by a listed approver whose name it carries, sent by
    /// approver connection `conn`. The first one that binds to a pending request wins.
    pub fn decide(
        &mut self,
        conn: ConnId,
        decision: Signed<Decision>,
        now: u64,
    ) -> Result<Vec<Delivery>, Refusal> {
        let d = &decision.payload;
        let id = d.request_id;
        // Named by the reference of the request the approver signed for.
        let reference = d.request_sha256.reference();
        let Some(entry) = self.requests.get_mut(&id) else {
            return Err(Refusal::new(
                Some(id),
                format!(
                    "no request {reference} (id {id}) is pending here: it expired, or this relay never had it"
                ),
            ));
        };
        binds(entry, d, now)?;
        if let Some(prev) = &entry.decision {
            if prev.sha256 == decision.sha256 {
                // Sent again (a console that reconnected): tell it what it may have missed.
                return Ok(if prev.delivered {
                    vec![Delivery::one(
                        conn,
                        ServerMessage::Delivered {
                            request_id: id,
                            decision_sha256: prev.sha256,
                        },
                    )]
                } else {
                    Vec::new()
                });
            }
            return Err(Refusal::new(
                Some(id),
                format!(
                    "request {reference} was already decided by {}",
                    prev.approver
                ),
            ));
        }
        let verdict = d.verdict;
        let approver = d.approver.clone();
        let agent = entry.agent;
        let waiters = entry.waiters.clone();
        let delivered = !waiters.is_empty();
        entry.decision = Some(Decided {
            envelope: decision.envelope.clone(),
            sha256: decision.sha256,
            approver: approver.clone(),
            delivered,
        });
        self.uncount(&agent);
        self.decided_agents.insert(agent);
        let approvers: Vec<ConnId> = self.approvers.iter().copied().collect();
        let mut out = vec![
            Delivery {
                to: waiters,
                message: ServerMessage::Decision {
                    decision: decision.envelope.clone(),
                },
            },
            Delivery {
                to: approvers.clone(),
                message: ServerMessage::Decided {
                    request_id: id,
                    approver,
                    verdict,
                    decision: decision.envelope,
                },
            },
        ];
        if delivered {
            out.push(Delivery {
                to: approvers,
                message: ServerMessage::Delivered {
                    request_id: id,
                    decision_sha256: decision.sha256,
                },
            });
        }
        Ok(out)
    }

    /// A verified withdraw, signed by the key of agent connection `conn`. An undecided request
    /// of that key with those bytes is dropped, and its approvers, its waiting connections and
    /// `conn` hear `withdrawn`. An id the relay holds nothing under is answered `withdrawn`
    /// too: withdrawing is idempotent.
    pub fn withdraw(
        &mut self,
        conn: ConnId,
        withdraw: Signed<Withdraw>,
        now: u64,
    ) -> Result<Vec<Delivery>, Refusal> {
        let w = &withdraw.payload;
        let id = w.request_id;
        let gone = || Delivery::one(conn, ServerMessage::Withdrawn { request_id: id });
        let Some(entry) = self.requests.get(&id) else {
            return Ok(vec![gone()]);
        };
        let reference = entry.sha256.reference();
        if entry.agent != *withdraw.signer.as_bytes() {
            return Err(Refusal::new(
                Some(id),
                format!(
                    "request {reference} was not submitted by this key; only its agent can withdraw it"
                ),
            ));
        }
        if entry.sha256 != w.request_sha256 {
            return Err(Refusal::new(
                Some(id),
                format!(
                    "the withdraw names request {}, but the request held under id {id} is {reference}",
                    w.request_sha256.reference()
                ),
            ));
        }
        if let Some(decided) = &entry.decision {
            return Err(Refusal::new(
                Some(id),
                format!(
                    "request {reference} was already decided by {}; it cannot be withdrawn",
                    decided.approver
                ),
            ));
        }
        let ended = now.min(entry.deadline);
        let Some(entry) = self.drop_request(id, ended, true) else {
            return Ok(vec![gone()]);
        };
        let mut to = entry.waiters;
        to.extend(self.approvers.iter().copied());
        if !to.contains(&conn) {
            to.push(conn);
        }
        Ok(vec![Delivery {
            to,
            message: ServerMessage::Withdrawn { request_id: id },
        }])
    }

    fn uncount(&mut self, agent: &AgentKey) {
        if let Some(n) = self.undecided_per_agent.get_mut(agent) {
            *n -= 1;
            if *n == 0 {
                self.undecided_per_agent.remove(agent);
            }
        }
    }

    /// Keep a verified status from a listed approver as the latest of its console's stream,
    /// unless it is older than the one held or drops a revocation that still matters
    /// ([`crate::streams`]).
    pub fn publish_status(
        &mut self,
        status: Signed<Status>,
        now: u64,
    ) -> Result<Published, Refusal> {
        self.statuses
            .publish(status, now, self.limits.revocation_grace_s)
            .map_err(|reason| Refusal::new(None, reason))
    }

    /// Every held status: the latest of each console of each approver, ordered by approver
    /// name, then console id.
    pub fn statuses(&self) -> Vec<Envelope> {
        self.statuses.served()
    }

    /// Stop holding request `id`, which ended at `ended` (its deadline, or when it was
    /// withdrawn): remember its id, bytes and signer until `remember_ids_s` after that, and stop
    /// counting it against its agent. Returns what was held.
    fn drop_request(&mut self, id: RequestId, ended: u64, withdrawn: bool) -> Option<Entry> {
        let entry = self.requests.remove(&id)?;
        self.deadlines.remove(&(entry.deadline, id));
        // Requests end in time order; the max keeps the queue sorted even when the clock
        // stepped back or the retention was shortened, by keeping an id longer, never less.
        let forget_at = ended
            .saturating_add(self.limits.remember_ids_s)
            .max(self.forget.back().map_or(0, |(at, _)| *at));
        self.forget.push_back((forget_at, id));
        self.dropped.insert(
            id,
            Dropped {
                sha256: entry.sha256,
                agent: entry.agent,
                withdrawn,
            },
        );
        for waiter in &entry.waiters {
            if let Some(ids) = self.agents.get_mut(waiter) {
                ids.retain(|i| *i != id);
            }
        }
        if entry.decision.is_none() {
            self.uncount(&entry.agent);
        }
        Some(entry)
    }

    /// The earliest deadline held, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.first().map(|(deadline, _)| *deadline)
    }

    /// Drop every request whose deadline has come. Undecided ones are announced as expired to
    /// their shims and to every approver; decided ones have been delivered and go quietly.
    pub fn expire(&mut self, now: u64) -> Vec<Delivery> {
        self.forget_dropped(now);
        let mut out = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            let Some(entry) = self.drop_request(id, deadline, false) else {
                self.deadlines.pop_first();
                continue;
            };
            if entry.decision.is_none() {
                let mut to = entry.waiters;
                to.extend(self.approvers.iter().copied());
                out.push(Delivery {
                    to,
                    message: ServerMessage::Expired { request_id: id },
                });
            }
        }
        out
    }
}

/// Messages waiting to be written to one connection. Bounded: a connection that lets it fill
/// up is cut off. (Lighter than a channel: nothing is allocated while it is empty, which is
/// what thousands of idle shims' outboxes are.)
#[derive(Debug)]
pub struct Outbox {
    queue: Mutex<VecDeque<Utf8Bytes>>,
    capacity: usize,
    ready: Notify,
    cut: AtomicBool,
}

impl Outbox {
    pub fn new(capacity: usize) -> Arc<Outbox> {
        Arc::new(Outbox {
            queue: Mutex::new(VecDeque::new()),
            capacity,
            ready: Notify::new(),
            cut: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Utf8Bytes>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue a message; false when the outbox is full or cut off.
    pub fn push(&self, message: Utf8Bytes) -> bool {
        let mut queue = self.lock();
        if queue.len() >= self.capacity || self.cut.load(Ordering::Relaxed) {
            return false;
        }
        queue.push_back(message);
        drop(queue);
        self.ready.notify_one();
        true
    }

    /// Take a queued message without waiting.
    pub fn try_pop(&self) -> Option<Utf8Bytes> {
        let mut queue = self.lock();
        let message = queue.pop_front();
        if queue.is_empty() && queue.capacity() > 64 {
            queue.shrink_to_fit();
        }
        message
    }

    /// The next message; `None` once the outbox was cut off and is empty.
    /// Cancel-safe: a message is only taken when it is returned.
    pub async fn pop(&self) -> Option<Utf8Bytes> {
        loop {
            if let Some(message) = self.try_pop() {
                return Some(message);
            }
            if self.cut.load(Ordering::Relaxed) {
                return None;
            }
            self.ready.notified().await;
        }
    }

    /// Stop accepting messages; the connection ends once it has written what is queued.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::Relaxed);
        self.ready.notify_one();
    }
}

/// The store and every logged-in connection's outbox, behind one lock.
pub struct SharedStore {
    state: Mutex<State>,
    /// Woken when a new deadline may be earlier than the one the expiry task sleeps for.
    pub(crate) deadline_changed: Notify,
}

struct State {
    store: Store,
    outboxes: HashMap<ConnId, Arc<Outbox>>,
}

impl SharedStore {
    pub fn new(store: Store) -> Self {
        SharedStore {
            state: Mutex::new(State {
                store,
                outboxes: HashMap::new(),
            }),
            deadline_changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug; the data is still consistent enough
        // to keep serving, so recover rather than take every connection down.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register a connection's outbox. An approver gets the pending requests to send first;
    /// registering and taking that snapshot happen under one lock so nothing is missed.
    pub fn connect(
        &self,
        conn: ConnId,
        approver: bool,
        outbox: Arc<Outbox>,
        now: u64,
    ) -> Vec<ServerMessage> {
        let mut state = self.lock();
        state.outboxes.insert(conn, outbox);
        if approver {
            state.store.connect_approver(conn, now)
        } else {
            Vec::new()
        }
    }

    pub fn disconnect(&self, conn: ConnId) {
        let mut state = self.lock();
        state.outboxes.remove(&conn);
        state.store.disconnect(conn);
    }

    pub fn submit(&self, conn: ConnId, request: Claimed<Request>, now: u64) -> Result<(), Refusal> {
        let mut state = self.lock();
        let before = state.store.next_deadline();
        let deliveries = state.store.submit(conn, request, now)?;
        let after = state.store.next_deadline();
        state.dispatch(deliveries);
        drop(state);
        if after != before {
            self.deadline_changed.notify_one();
        }
        Ok(())
    }

    pub fn decide(
        &self,
        conn: ConnId,
        decision: Signed<Decision>,
        now: u64,
    ) -> Result<(), Refusal> {
        let mut state = self.lock();
        let deliveries = state.store.decide(conn, decision, now)?;
        state.dispatch(deliveries);
        Ok(())
    }

    pub fn withdraw(
        &self,
        conn: ConnId,
        withdraw: Signed<Withdraw>,
        now: u64,
    ) -> Result<(), Refusal> {
        let mut state = self.lock();
        let deliveries = state.store.withdraw(conn, withdraw, now)?;
        state.dispatch(deliveries);
        Ok(())
    }

    pub fn publish_status(&self, status: Signed<Status>, now: u64) -> Result<Published, Refusal> {
        self.lock().store.publish_status(status, now)
    }

    /// See [`Store::reconfigure`].
    pub fn reconfigure(
        &self,
        limits: Limits,
        listed_agents: impl IntoIterator<Item = PublicKey>,
        listed_approvers: impl IntoIterator<Item = PublicKey>,
    ) {
        self.lock()
            .store
            .reconfigure(limits, listed_agents, listed_approvers);
    }

    pub fn statuses(&self) -> Vec<Envelope> {
        self.lock().store.statuses()
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.lock().store.next_deadline()
    }

    pub fn expire(&self, now: u64) {
        let mut state = self.lock();
        let deliveries = state.store.expire(now);
        state.dispatch(deliveries);
    }
}

impl State {
    /// Queue each message for its connections. A connection whose outbox is full is not
    /// keeping up: its outbox is cut, which ends that connection, and nobody else waits.
    fn dispatch(&mut self, deliveries: Vec<Delivery>) {
        let mut cut = Vec::new();
        for delivery in deliveries {
            if delivery.to.is_empty() {
                continue;
            }
            let text = Utf8Bytes::from(delivery.message.to_json());
            for conn in delivery.to {
                let Some(outbox) = self.outboxes.get(&conn) else {
                    continue;
                };
                if !outbox.push(text.clone()) {
                    cut.push(conn);
                }
            }
        }
        for conn in cut {
            if let Some(outbox) = self.outboxes.remove(&conn) {
                outbox.cut();
                tracing::warn!(
                    conn,
                    "connection is not reading its messages; cutting it off"
                );
            }
            self.store.disconnect(conn);
        }
    }
}

/// Whether decision `d` may decide the held `entry`: not expired, and naming exactly that
/// request and its command.
fn binds(entry: &Entry, d: &Decision, now: u64) -> Result<(), Refusal> {
    let id = d.request_id;
    let reference = d.request_sha256.reference();
    if entry.deadline <= now {
        return Err(Refusal::new(
            Some(id),
            format!("request {reference} has expired"),
        ));
    }
    if d.request_sha256 != entry.sha256 {
        return Err(Refusal::new(
            Some(id),
            format!(
                "decision does not bind to the request held under id {id} ({}): its request_sha256 names request {reference}",
                entry.sha256.reference()
            ),
        ));
    }
    if d.cmd_sha256 != entry.cmd_sha256 {
        return Err(Refusal::new(
            Some(id),
            format!(
                "decision does not bind to request {reference}: its cmd_sha256 is not that request's command hash"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use assent_protocol::{Grant, PrivateKey, Status, Verdict, Withdraw};

    const NOW: u64 = 1_763_770_000;

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::from_seed(&[seed; 32], "")
    }

    fn request_payload(id: u8, expires_at: u64) -> Request {
        let json = serde_json::json!({
            "v": 1, "kind": "request", "id": RequestId([id; 16]).to_hex(),
            "agent": "openclaw", "host": "mini", "host_id": "3f".repeat(16),
            "user": "openclaw", "uid": 1001,
            "run_as": "root", "program": "/usr/bin/true", "program_sha256": "ab".repeat(32),
            "argv": ["true"], "cwd": "/tmp", "env": {}, "reason": "test",
            "grant": "once", "ttl_s": null, "created_at": NOW - 1, "expires_at": expires_at,
        });
        serde_json::from_value(json).unwrap()
    }

    fn request(agent: &PrivateKey, id: u8, expires_at: u64) -> Claimed<Request> {
        Envelope::seal(agent, &request_payload(id, expires_at))
            .claim()
            .unwrap()
    }

    fn decision(
        approver: &PrivateKey,
        name: &str,
        req: &Claimed<Request>,
        verdict: Verdict,
    ) -> Signed<Decision> {
        let json = serde_json::json!({
            "v": 1, "kind": "decision", "request_id": req.payload.id,
            "request_sha256": req.sha256, "verdict": verdict, "grant": "once",
            "not_before": NOW, "not_after": NOW + 120,
            "cmd_sha256": req.payload.cmd_sha256(), "approver": name,
            "console": "c0".repeat(16), "decided_at": NOW, "note": null,
        });
        let d: Decision = serde_json::from_value(json).unwrap();
        assert_eq!(d.grant, Grant::Once);
        Envelope::seal(approver, &d).open().unwrap()
    }

    fn status(approver: &PrivateKey, name: &str, issued_at: u64) -> Signed<Status> {
        let s: Status = serde_json::from_value(serde_json::json!({
            "v": 1, "kind": "status", "approver": name, "console": "c0".repeat(16),
            "issued_at": issued_at, "revoked": [],
        }))
        .unwrap();
        Envelope::seal(approver, &s).open().unwrap()
    }

    fn store() -> Store {
        Store::new(Limits::default(), [])
    }

    fn types(deliveries: &[Delivery]) -> Vec<(Vec<ConnId>, &'static str)> {
        deliveries
            .iter()
            .map(|d| {
                let kind = match d.message {
                    ServerMessage::Queued { .. } => "queued",
                    ServerMessage::Request { .. } => "request",
                    ServerMessage::Decision { .. } => "decision",
                    ServerMessage::Decided { .. } => "decided",
                    ServerMessage::Expired { .. } => "expired",
                    ServerMessage::Delivered { .. } => "delivered",
                    ServerMessage::Withdrawn { .. } => "withdrawn",
                    _ => "other",
                };
                let mut to = d.to.clone();
                to.sort();
                (to, kind)
            })
            .collect()
    }

    #[test]
    fn request_goes_to_every_approver_and_late_ones_get_it_on_connect() {
        let mut s = store();
        assert!(s.connect_approver(10, NOW).is_empty());
        s.connect_approver(11, NOW);
        let agent = key(1);
        let out = s.submit(1, request(&agent, 1, NOW + 60), NOW).unwrap();
        assert_eq!(
            types(&out),
            [(vec![1], "queued"), (vec![10, 11], "request")]
        );
        match &out[1].message {
            ServerMessage::Request { first_seen, .. } => assert!(*first_seen),
            m => panic!("{m:?}"),
        }
        let late = s.connect_approver(12, NOW + 1);
        assert_eq!(late.len(), 1);
        assert!(
            matches!(&late[0], ServerMessage::Request { request, .. } if *request == out[1].message_envelope())
        );
    }

    impl Delivery {
        fn message_envelope(&self) -> Envelope {
            match &self.message {
                ServerMessage::Request { request, .. } => request.clone(),
                ServerMessage::Decision { decision } => decision.clone(),
                m => panic!("no envelope in {m:?}"),
            }
        }
    }

    #[test]
    fn first_decision_wins_and_everyone_is_told() {
        let mut s = store();
        s.connect_approver(10, NOW);
        s.connect_approver(11, NOW);
        let (alice, bob) = (key(20), key(21));
        let req = request(&key(1), 1, NOW + 60);
        s.submit(1, req.clone(), NOW).unwrap();

        let first = decision(&alice, "alice", &req, Verdict::Approve);
        let out = s.decide(10, first.clone(), NOW + 1).unwrap();
        assert_eq!(
            types(&out),
            [
                (vec![1], "decision"),
                (vec![10, 11], "decided"),
                (vec![10, 11], "delivered")
            ]
        );
        assert_eq!(out[0].message_envelope(), first.envelope);
        assert!(matches!(
            &out[1].message,
            ServerMessage::Decided { approver, verdict: Verdict::Approve, decision, .. }
                if approver == "alice" && *decision == first.envelope
        ));
        assert_eq!(
            out[2].message,
            ServerMessage::Delivered {
                request_id: req.payload.id,
                decision_sha256: first.sha256
            }
        );

        let second = decision(&bob, "bob", &req, Verdict::Deny);
        let refused = s.decide(99, second, NOW + 2).unwrap_err();
        assert!(
            refused.reason.contains("already decided by alice"),
            "{refused:?}"
        );
        assert!(!refused.fatal);
        // The same decision again is idempotent; its sender hears that it was delivered.
        let again = s.decide(11, first, NOW + 3).unwrap();
        assert_eq!(types(&again), [(vec![11], "delivered")]);
        // A decided request is no longer shown to consoles that connect later.
        assert!(s.connect_approver(12, NOW + 3).is_empty());
    }

    #[test]
    fn decision_waits_for_a_reconnecting_shim_until_expiry() {
        let mut s = store();
        let agent = key(1);
        let req = request(&agent, 1, NOW + 60);
        s.submit(1, req.clone(), NOW).unwrap();
        s.disconnect(1);
        s.connect_approver(10, NOW);
        let d = decision(&key(20), "alice", &req, Verdict::Approve);
        let out = s.decide(10, d.clone(), NOW + 5).unwrap();
        assert_eq!(
            types(&out),
            [(vec![], "decision"), (vec![10], "decided")],
            "nobody is waiting right now, so nothing is delivered"
        );
        // Sent again (a console that reconnected): still not delivered, nothing to say.
        assert!(s.decide(10, d.clone(), NOW + 6).unwrap().is_empty());

        // The shim comes back on a new connection and re-submits the same signed request.
        let out = s.submit(2, req.clone(), NOW + 10).unwrap();
        assert_eq!(
            types(&out),
            [
                (vec![2], "queued"),
                (vec![2], "decision"),
                (vec![10], "delivered")
            ]
        );
        assert_eq!(out[1].message_envelope(), d.envelope);
        // Handed over again: approvers were told already.
        let out = s.submit(3, req.clone(), NOW + 11).unwrap();
        assert_eq!(types(&out), [(vec![3], "queued"), (vec![3], "decision")]);
        assert_eq!(
            s.decide(10, d.clone(), NOW + 11).unwrap()[0].message,
            ServerMessage::Delivered {
                request_id: req.payload.id,
                decision_sha256: d.sha256
            }
        );

        // After the deadline the decision is gone quietly and a re-submission hears "expired".
        assert!(s.expire(NOW + 60).is_empty());
        assert!(s.is_empty());
        let out = s.submit(3, req, NOW + 61).unwrap();
        assert_eq!(types(&out), [(vec![3], "expired")]);
    }

    fn withdraw_of(agent: &PrivateKey, req: &Claimed<Request>) -> Signed<Withdraw> {
        let w = Withdraw {
            v: Default::default(),
            kind: Default::default(),
            request_id: req.payload.id,
            request_sha256: req.sha256,
            withdrawn_at: NOW,
        };
        Envelope::seal(agent, &w).open().unwrap()
    }

    #[test]
    fn a_withdrawn_request_is_dropped_and_everyone_is_told() {
        let limits = Limits {
            max_pending_per_agent: 1,
            ..Limits::default()
        };
        let mut s = Store::new(limits, []);
        s.connect_approver(10, NOW);
        let agent = key(1);
        let req = request(&agent, 1, NOW + 60);
        s.submit(1, req.clone(), NOW).unwrap();
        s.submit(2, req.clone(), NOW).unwrap();
        let out = s.withdraw(3, withdraw_of(&agent, &req), NOW + 1).unwrap();
        assert_eq!(types(&out), [(vec![1, 2, 3, 10], "withdrawn")]);
        assert!(s.is_empty());
        assert_eq!(s.next_deadline(), None);
        assert!(
            s.connect_approver(11, NOW + 2).is_empty(),
            "not shown any more"
        );
        // Its slot is free again; its id stays taken, and says how it ended.
        s.submit(1, request(&agent, 2, NOW + 60), NOW + 2).unwrap();
        let again = s.submit(4, req.clone(), NOW + 3).unwrap();
        assert_eq!(types(&again), [(vec![4], "withdrawn")]);
        let r = s
            .submit(
                4,
                request_running(&agent, 1, "/usr/bin/bash", NOW + 60),
                NOW + 3,
            )
            .unwrap_err();
        assert!(r.reason.contains("already used by request"), "{r:?}");
        // Withdrawing again, or an id never held, is answered the same, to the sender only.
        let out = s.withdraw(3, withdraw_of(&agent, &req), NOW + 4).unwrap();
        assert_eq!(types(&out), [(vec![3], "withdrawn")]);
        let never = request(&agent, 9, NOW + 60);
        let out = s.withdraw(3, withdraw_of(&agent, &never), NOW + 4).unwrap();
        assert_eq!(types(&out), [(vec![3], "withdrawn")]);
        // Remembered as long as an expired id.
        let limit = Limits::default().remember_ids_s;
        assert!(
            s.submit(
                4,
                request_running(&agent, 1, "/x", NOW + 9_999_999),
                NOW + limit
            )
            .is_err()
        );
        s.expire(NOW + 1 + limit);
        assert!(
            s.submit(
                4,
                request_running(&agent, 1, "/x", NOW + 9_999_999),
                NOW + 1 + limit
            )
            .is_ok()
        );
    }

    #[test]
    fn only_its_agent_withdraws_an_undecided_request() {
        let mut s = store();
        s.connect_approver(10, NOW);
        let agent = key(1);
        let req = request(&agent, 1, NOW + 60);
        s.submit(1, req.clone(), NOW).unwrap();

        let r = s.withdraw(5, withdraw_of(&key(2), &req), NOW).unwrap_err();
        assert!(r.reason.contains("was not submitted by this key"), "{r:?}");
        assert!(!r.fatal);

        let other = request(&agent, 2, NOW + 60);
        let mut w = withdraw_of(&agent, &req).payload;
        w.request_sha256 = other.sha256;
        let r = s
            .withdraw(1, Envelope::seal(&agent, &w).open().unwrap(), NOW)
            .unwrap_err();
        assert!(r.reason.contains("the withdraw names request"), "{r:?}");

        s.decide(10, decision(&key(20), "alice", &req, Verdict::Approve), NOW)
            .unwrap();
        let r = s.withdraw(1, withdraw_of(&agent, &req), NOW).unwrap_err();
        assert!(
            r.reason
                .contains("already decided by alice; it cannot be withdrawn"),
            "{r:?}"
        );
        assert_eq!(s.len(), 1, "the decided request is still held");
    }

    #[test]
    fn duplicates_are_idempotent_and_a_reused_id_is_refused() {
        let mut s = store();
        s.connect_approver(10, NOW);
        let agent = key(1);
        let req = request(&agent, 1, NOW + 60);
        s.submit(1, req.clone(), NOW).unwrap();
        let again = s.submit(1, req.clone(), NOW + 1).unwrap();
        assert_eq!(
            types(&again),
            [(vec![1], "queued")],
            "approvers are not told twice"
        );
        assert_eq!(s.len(), 1);

        // Same id, different content (here: another deadline) is not a duplicate.
        let other = request(&agent, 1, NOW + 61);
        let r = s.submit(1, other, NOW + 1).unwrap_err();
        assert!(r.reason.contains("already used by request"), "{r:?}");
        // Same bytes from another key cannot exist (the signer differs), but the same id can.
        let foreign = request(&key(2), 1, NOW + 60);
        assert!(s.submit(5, foreign, NOW + 1).is_err());
    }

    /// A request with `id` and `program`, so that two of them differ in their bytes.
    fn request_running(
        agent: &PrivateKey,
        id: u8,
        program: &str,
        expires_at: u64,
    ) -> Claimed<Request> {
        let mut payload = request_payload(id, expires_at);
        payload.program = program.into();
        Envelope::seal(agent, &payload).claim().unwrap()
    }

    #[test]
    fn a_dropped_request_id_is_never_taken_by_another_request() {
        let mut s = store();
        s.connect_approver(10, NOW);
        let agent = key(1);
        let harmless = request_running(&agent, 1, "/usr/bin/apt-get", NOW + 5);
        s.submit(1, harmless.clone(), NOW).unwrap();
        assert_eq!(types(&s.expire(NOW + 5)), [(vec![1, 10], "expired")]);
        assert!(s.is_empty());

        // Other content, or the same content from another key, under the expired id.
        for other in [
            request_running(&agent, 1, "/usr/bin/bash", NOW + 600),
            request_running(&key(2), 1, "/usr/bin/apt-get", NOW + 5),
        ] {
            let r = s.submit(2, other, NOW + 6).unwrap_err();
            assert!(r.reason.contains("already used by request"), "{r:?}");
            assert!(r.reason.contains(&harmless.sha256.reference()), "{r:?}");
            assert!(!r.fatal);
        }
        // The identical envelope is still idempotent: it has expired.
        let out = s.submit(3, harmless.clone(), NOW + 7).unwrap();
        assert_eq!(types(&out), [(vec![3], "expired")]);

        // Decided and dropped at its deadline: the same.
        let decided = request_running(&agent, 2, "/usr/bin/true", NOW + 20);
        s.submit(1, decided.clone(), NOW + 10).unwrap();
        s.decide(
            99,
            decision(&key(20), "alice", &decided, Verdict::Approve),
            NOW + 11,
        )
        .unwrap();
        assert!(s.expire(NOW + 20).is_empty(), "decided ones go quietly");
        let r = s
            .submit(
                1,
                request_running(&agent, 2, "/usr/bin/bash", NOW + 600),
                NOW + 21,
            )
            .unwrap_err();
        assert!(r.reason.contains("already used"), "{r:?}");

        // Only after the retention is the id forgotten.
        let limit = Limits::default().remember_ids_s;
        let later = NOW + 5 + limit;
        let r = s
            .submit(
                2,
                request_running(&agent, 1, "/usr/bin/bash", later + 600),
                later - 1,
            )
            .unwrap_err();
        assert!(r.reason.contains("already used"), "{r:?}");
        let again = request_running(&agent, 1, "/usr/bin/bash", later + 600);
        assert_eq!(
            types(&s.submit(2, again, later).unwrap()),
            [(vec![2], "queued"), (vec![10], "request")]
        );
    }

    #[test]
    fn a_full_id_table_refuses_new_ids_and_forgets_none() {
        let limits = Limits {
            max_remembered_ids: 10,
            max_pending_per_agent: 100,
            ..Limits::default()
        };
        let mut s = Store::new(limits, []);
        let agent = key(1);
        let first = request_running(&agent, 0, "/usr/bin/apt-get", NOW + 1);
        s.submit(1, first.clone(), NOW).unwrap();
        s.expire(NOW + 1);
        // Many other ids: the table fills, and then new ids are refused.
        let mut refused = 0;
        for i in 1..=50 {
            let other = request_running(&key(2 + i % 3), i, "/usr/bin/true", NOW + 2);
            match s.submit(2, other, NOW + 1) {
                Ok(_) => {}
                Err(r) => {
                    assert!(r.reason.contains("remembers as many request ids"), "{r:?}");
                    refused += 1;
                }
            }
            s.expire(NOW + 2);
        }
        assert_eq!(refused, 41);
        assert_eq!(s.remembered(), 10);
        // The first id is still remembered.
        let r = s
            .submit(
                1,
                request_running(&agent, 0, "/usr/bin/bash", NOW + 600),
                NOW + 3,
            )
            .unwrap_err();
        assert!(r.reason.contains("already used"), "{r:?}");
    }

    #[test]
    fn one_agent_key_cannot_use_up_the_id_table() {
        let limits = Limits {
            max_remembered_ids_per_agent: 3,
            ..Limits::default()
        };
        let mut s = Store::new(limits, []);
        let (greedy, other) = (key(1), key(2));
        for i in 0..3 {
            s.submit(1, request(&greedy, i, NOW + 1), NOW).unwrap();
        }
        s.expire(NOW + 1);
        let r = s
            .submit(1, request(&greedy, 3, NOW + 60), NOW + 2)
            .unwrap_err();
        assert!(
            r.reason.contains("this agent key has used 3 request ids"),
            "{r:?}"
        );
        s.submit(2, request(&other, 4, NOW + 60), NOW + 2).unwrap();
        // Once its ids are forgotten, the key may ask again.
        let later = NOW + 1 + Limits::default().remember_ids_s;
        s.submit(1, request(&greedy, 3, later + 60), later).unwrap();
    }

    #[test]
    fn a_shorter_retention_never_forgets_an_id_early() {
        let mut s = store();
        let agent = key(1);
        s.submit(1, request(&agent, 1, NOW + 1), NOW).unwrap();
        s.expire(NOW + 1);
        let short = Limits {
            remember_ids_s: 10,
            ..Limits::default()
        };
        s.reconfigure(short, [], []);
        s.submit(1, request(&agent, 2, NOW + 2), NOW + 1).unwrap();
        s.expire(NOW + 2);
        // The second id is kept as long as the first, not forgotten before it.
        assert!(
            s.submit(1, request_running(&agent, 2, "/x", NOW + 900), NOW + 100)
                .is_err()
        );
        let long = Limits::default().remember_ids_s;
        s.expire(NOW + 1 + long);
        assert_eq!(s.remembered(), 0);
    }

    #[test]
    fn expiry_tells_the_shim_and_every_console() {
        let mut s = store();
        s.connect_approver(10, NOW);
        let req = request(&key(1), 1, NOW + 30);
        s.submit(1, req.clone(), NOW).unwrap();
        s.submit(2, req, NOW + 1).unwrap();
        assert_eq!(s.next_deadline(), Some(NOW + 30));
        assert!(s.expire(NOW + 29).is_empty());
        let out = s.expire(NOW + 30);
        assert_eq!(types(&out), [(vec![1, 2, 10], "expired")]);
        assert!(s.is_empty());
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn decisions_that_do_not_bind_are_refused() {
        let mut s = store();
        let req = request(&key(1), 1, NOW + 60);
        s.submit(1, req.clone(), NOW).unwrap();
        let other = request(&key(1), 2, NOW + 60);
        // Names request 1's id but hashes another request.
        let mut payload = decision(&key(20), "alice", &req, Verdict::Approve).payload;
        payload.request_sha256 = other.sha256;
        let r = s
            .decide(99, Envelope::seal(&key(20), &payload).open().unwrap(), NOW)
            .unwrap_err();
        assert!(r.reason.contains("request_sha256"), "{r:?}");
        let mut payload = decision(&key(20), "alice", &req, Verdict::Approve).payload;
        payload.cmd_sha256 = other.sha256;
        let r = s
            .decide(99, Envelope::seal(&key(20), &payload).open().unwrap(), NOW)
            .unwrap_err();
        assert!(r.reason.contains("cmd_sha256"), "{r:?}");
        // For a request the relay does not hold.
        let r = s
            .decide(
                99,
                decision(&key(20), "alice", &other, Verdict::Approve),
                NOW,
            )
            .unwrap_err();
        assert!(r.reason.contains("no request"), "{r:?}");
        // Past the deadline, even before the expiry sweep ran.
        let r = s
            .decide(
                99,
                decision(&key(20), "alice", &req, Verdict::Approve),
                NOW + 60,
            )
            .unwrap_err();
        assert!(r.reason.contains("expired"), "{r:?}");
    }

    #[test]
    fn pending_limits_per_agent_and_in_total() {
        let limits = Limits {
            max_pending_per_agent: 2,
            max_pending_total: 3,
            ..Limits::default()
        };
        let mut s = Store::new(limits, []);
        let (a, b) = (key(1), key(2));
        let r1 = request(&a, 1, NOW + 60);
        s.submit(1, r1.clone(), NOW).unwrap();
        s.submit(1, request(&a, 2, NOW + 60), NOW).unwrap();
        let r = s.submit(1, request(&a, 3, NOW + 60), NOW).unwrap_err();
        assert!(r.reason.contains("limit"), "{r:?}");
        // A duplicate of a held request is still fine at the limit.
        s.submit(1, r1.clone(), NOW).unwrap();
        // Deciding one frees a slot for that agent.
        s.decide(99, decision(&key(20), "alice", &r1, Verdict::Deny), NOW)
            .unwrap();
        s.submit(1, request(&a, 3, NOW + 60), NOW).unwrap();
        // But the decided one is still held, so the relay as a whole is full.
        let r = s.submit(2, request(&b, 4, NOW + 60), NOW).unwrap_err();
        assert!(r.reason.contains("as many requests"), "{r:?}");
    }

    #[test]
    fn far_future_expiry_is_capped_by_the_lifetime_limit() {
        let limits = Limits {
            max_request_lifetime_s: 100,
            ..Limits::default()
        };
        let mut s = Store::new(limits, []);
        s.connect_approver(10, NOW);
        s.submit(1, request(&key(1), 1, u64::MAX), NOW).unwrap();
        assert_eq!(s.next_deadline(), Some(NOW + 100));
        assert_eq!(types(&s.expire(NOW + 100)), [(vec![1, 10], "expired")]);
    }

    #[test]
    fn first_seen_until_an_approver_decided_for_that_key() {
        let listed = key(3);
        let mut s = Store::new(Limits::default(), [listed.public()]);
        s.connect_approver(10, NOW);
        let agent = key(1);
        let first_seen = |out: &[Delivery]| match &out[1].message {
            ServerMessage::Request { first_seen, .. } => *first_seen,
            m => panic!("{m:?}"),
        };
        let r1 = request(&agent, 1, NOW + 60);
        assert!(first_seen(&s.submit(1, r1.clone(), NOW).unwrap()));
        assert!(first_seen(
            &s.submit(1, request(&agent, 2, NOW + 60), NOW).unwrap()
        ));
        s.decide(99, decision(&key(20), "alice", &r1, Verdict::Approve), NOW)
            .unwrap();
        assert!(!first_seen(
            &s.submit(1, request(&agent, 3, NOW + 60), NOW).unwrap()
        ));
        assert!(!first_seen(
            &s.submit(2, request(&listed, 4, NOW + 60), NOW).unwrap()
        ));
    }

    #[test]
    fn disconnect_stops_deliveries_to_that_connection() {
        let mut s = store();
        s.connect_approver(10, NOW);
        s.connect_approver(11, NOW);
        s.disconnect(11);
        let req = request(&key(1), 1, NOW + 60);
        let out = s.submit(1, req, NOW).unwrap();
        assert_eq!(types(&out), [(vec![1], "queued"), (vec![10], "request")]);
        s.disconnect(1);
        assert_eq!(types(&s.expire(NOW + 60)), [(vec![10], "expired")]);
    }

    #[test]
    fn the_latest_status_per_console_is_kept_under_the_configured_grace() {
        let limits = Limits {
            revocation_grace_s: 10,
            ..Limits::default()
        };
        let mut s = Store::new(limits, []);
        let (alice, bob) = (key(20), key(21));
        s.publish_status(status(&alice, "alice", NOW), NOW).unwrap();
        s.publish_status(status(&bob, "bob", NOW), NOW).unwrap();
        let newer = status(&alice, "alice", NOW + 30);
        s.publish_status(newer.clone(), NOW).unwrap();
        let r = s
            .publish_status(status(&alice, "alice", NOW + 10), NOW)
            .unwrap_err();
        assert!(r.reason.contains("newer status"), "{r:?}");
        assert!(!r.fatal);
        let held = s.statuses();
        assert_eq!(held.len(), 2);
        assert_eq!(held[0], newer.envelope);
        assert_eq!(held[1].open::<Status>().unwrap().payload.approver, "bob");

        // A revocation until NOW + 60 may be dropped from NOW + 70 on, not before.
        let revoked = Sha256Digest([7; 32]);
        let mut payload = newer.payload.clone();
        payload.issued_at = NOW + 40;
        payload.revoked.insert(assent_protocol::Revocation {
            decision_sha256: revoked,
            until: Some(NOW + 60),
        });
        s.publish_status(Envelope::seal(&alice, &payload).open().unwrap(), NOW + 40)
            .unwrap();
        let dropping = status(&alice, "alice", NOW + 50);
        let r = s.publish_status(dropping.clone(), NOW + 69).unwrap_err();
        assert!(r.reason.contains(&revoked.reference()), "{r:?}");
        assert!(r.reason.contains("until 1763770060"), "{r:?}");
        s.publish_status(dropping, NOW + 70).unwrap();

        // An approver no longer listed after a reload: its statuses go.
        s.reconfigure(Limits::default(), [], [alice.public()]);
        assert_eq!(s.statuses().len(), 1);
    }

    #[tokio::test]
    async fn a_connection_that_does_not_read_is_cut_off_without_blocking_others() {
        let shared = SharedStore::new(Store::new(Limits::default(), []));
        let (slow, fast) = (Outbox::new(2), Outbox::new(100));
        shared.connect(10, true, slow.clone(), NOW);
        shared.connect(11, true, fast.clone(), NOW);
        let agent = key(1);
        shared.connect(1, false, Outbox::new(100), NOW);
        for i in 0..5 {
            shared
                .submit(1, request(&agent, i, NOW + 60_000_000_000), NOW)
                .unwrap();
        }
        let mut received = 0;
        while fast.try_pop().is_some() {
            received += 1;
        }
        assert_eq!(received, 5);
        // The slow one got what fit, then its outbox was cut: it ends after those.
        assert!(slow.pop().await.is_some());
        assert!(slow.pop().await.is_some());
        assert!(slow.pop().await.is_none());
        // A cut connection is no longer an approver: new requests do not go to it.
        shared.submit(1, request(&agent, 9, NOW + 60), NOW).unwrap();
        assert!(slow.try_pop().is_none());
        assert!(fast.try_pop().is_some());
    }
}
