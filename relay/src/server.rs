//! The listener and one handler per connection.
//!
//! A semaphore caps open connections; each accepted socket gets its own task that runs the
//! TLS and WebSocket handshakes and the login under one deadline, then serves the session
//! until the client leaves, misbehaves, or the relay shuts down. Shutdown is a watch channel
//! every task listens to; the listener waits (bounded) for the tasks to finish.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use assent_protocol::{Envelope, Role};
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::auth::{self, Identity};
use crate::config::RelayConfig;
use crate::connection::{Connection, ReadError};
use crate::limits::{Limits, RateLimiter, TokenBucket};
use crate::store::{ConnId, Outbox, Refusal, SharedStore, Store};
use crate::streams::Published;
use assent_relay_client::message::{ClientMessage, PROTOCOL_VERSION, ServerMessage};
use assent_relay_client::text::printable;

/// Unix time in seconds, as the protocol's timestamps are.
pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// State every connection task shares.
pub(crate) struct Shared {
    /// Replaced as a whole on reload; each use takes the one in force at that moment.
    config: RwLock<Arc<RelayConfig>>,
    store: SharedStore,
    /// Submission buckets by agent key bytes.
    submissions: Mutex<RateLimiter<[u8; 32]>>,
    next_conn: AtomicU64,
}

impl Shared {
    pub(crate) fn new(config: RelayConfig) -> Self {
        let known = config.agents.iter().map(|a| a.key);
        let store = Store::new(config.limits.clone(), known);
        Shared {
            submissions: Mutex::new(RateLimiter::new(&config.limits, Limits::request_bucket)),
            store: SharedStore::new(store),
            config: RwLock::new(Arc::new(config)),
            next_conn: AtomicU64::new(1),
        }
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> Arc<RelayConfig> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn limits(&self) -> Limits {
        self.config().limits.clone()
    }

    /// Put `config` in force, keeping every request, decision, status and connection.
    /// Connections already open keep the per-connection limits they started with; who may
    /// log in, who may decide, and the limits on requests apply at once.
    pub(crate) fn reconfigure(&self, config: RelayConfig) {
        let old = self.config();
        if config.limits.max_connections != old.limits.max_connections {
            tracing::warn!(
                "limits.max_connections changes only when the relay restarts; keeping {}",
                old.limits.max_connections
            );
        }
        self.store.reconfigure(
            config.limits.clone(),
            config.agents.iter().map(|a| a.key),
            config.approvers.iter().map(|a| a.key),
        );
        self.submissions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_limits(&config.limits);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }
}

/// Accept connections until shutdown, then wait (at most a few seconds) for them to close.
pub(crate) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(shared.limits().max_connections));
    // Each task holds a clone; when all are dropped, every connection has finished.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let expiry = tokio::spawn(expire_requests(shared.clone(), shutdown.clone()));

    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Usually out of file descriptors; back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; refusing connection");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = Handler {
            shared: shared.clone(),
            peer,
            shutdown: shutdown.clone(),
        };
        let done = done_tx.clone();
        let deadline = tokio::time::Instant::now() + shared.limits().login_timeout();
        // One task per connection, kept small: each phase's future is boxed only while it
        // runs, and plain and TLS connections are separate task types.
        match &tls {
            None => tokio::spawn(async move {
                handler.serve(stream, deadline).await;
                drop((slot, done));
            }),
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    handler.serve_tls(stream, acceptor, deadline).await;
                    drop((slot, done));
                })
            }
        };
    }

    drop(listener);
    drop(done_tx);
    let open = shared.limits().max_connections - slots.available_permits();
    tracing::info!(open, "shutting down; closing connections");
    let _ = tokio::time::timeout(Duration::from_secs(5), done_rx.recv()).await;
    expiry.abort();
}

/// Most queued messages written in one batch, so a connection with a long backlog still gets
/// round to reading its client between batches; and most of a client's messages taken at once.
const MAX_BATCH: usize = 64;

/// A decision's signature check: the verified decision, or why it was refused.
type Checked = Result<assent_protocol::Signed<assent_protocol::Decision>, String>;

/// Send a direct answer after everything already queued for this connection, so a client
/// sees events in the order they happened; in batches of at most [`MAX_BATCH`] frames.
async fn reply<S>(
    conn: &mut Connection<S>,
    outbox: &Outbox,
    message: &ServerMessage,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let answer = Utf8Bytes::from(message.to_json());
    loop {
        let mut batch: Vec<Utf8Bytes> = std::iter::from_fn(|| outbox.try_pop())
            .take(MAX_BATCH)
            .collect();
        if batch.len() < MAX_BATCH {
            batch.push(answer);
            return conn.send_texts(batch.into_iter()).await;
        }
        conn.send_texts(batch.into_iter()).await?;
    }
}

/// Drop requests when their deadline comes.
async fn expire_requests(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let wait = match shared.store.next_deadline() {
            Some(deadline) => (UNIX_EPOCH + Duration::from_secs(deadline))
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = shared.store.deadline_changed.notified() => continue,
            _ = tokio::time::sleep(wait) => {}
        }
        shared.store.expire(now_unix());
    }
}

struct Handler {
    shared: Arc<Shared>,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
}

/// How a session ended.
enum End {
    /// The socket broke; nothing more to say.
    Gone,
    /// The client closed it.
    Closed,
    Shutdown,
    /// The relay ends it, and tells the client why.
    Refused(CloseCode, String),
}

/// Why handling a client's message ends the session.
enum Stop {
    End(End),
    /// Writing to the client failed.
    Write(String),
}

/// One logged-in connection's state while its session runs.
struct Session<'a> {
    id: ConnId,
    who: &'a Identity,
    outbox: &'a Outbox,
    /// Messages from this client, per second.
    messages: TokenBucket,
}

impl Handler {
    async fn serve_tls(
        self,
        stream: TcpStream,
        acceptor: TlsAcceptor,
        deadline: tokio::time::Instant,
    ) {
        let mut stop = self.shutdown.clone();
        let handshake = Box::pin(tokio::time::timeout_at(deadline, acceptor.accept(stream)));
        let stream = tokio::select! {
            _ = stop.changed() => return,
            handshake = handshake => match handshake {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return tracing::debug!(peer = %self.peer, "TLS handshake failed: {}", printable(&e.to_string())),
                Err(_) => return tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
            },
        };
        self.serve(stream, deadline).await;
    }

    /// Admit the client (before `deadline`), then serve its session.
    async fn serve<S>(self, stream: S, deadline: tokio::time::Instant)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        // The block ends the admission's locals before the session is awaited, so this
        // future holds only a pointer to the session while it lasts.
        let session = {
            let mut stop = self.shutdown.clone();
            let admitted = tokio::select! {
                _ = stop.changed() => None,
                admitted = Box::pin(self.admit(stream, deadline)) => admitted,
            };
            match admitted {
                Some((conn, who)) => Box::pin(self.session(conn, who)),
                None => return,
            }
        };
        session.await;
    }

    /// The WebSocket handshake and the login.
    async fn admit<S>(
        &self,
        stream: S,
        deadline: tokio::time::Instant,
    ) -> Option<(Connection<S>, Identity)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let limits = self.shared.limits();
        let mut conn =
            match tokio::time::timeout_at(deadline, Connection::accept(stream, &limits)).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    tracing::debug!(peer = %self.peer, "{}", printable(&e));
                    return None;
                }
                Err(_) => {
                    tracing::debug!(peer = %self.peer, "WebSocket handshake timed out");
                    return None;
                }
            };
        match self.login(&mut conn, deadline).await {
            Ok(who) => Some((conn, who)),
            Err((code, reason)) => {
                // Clients choose much of what parser errors quote.
                tracing::info!(peer = %self.peer, "login refused: {}", printable(&reason));
                Box::pin(conn.close_with_error(code, &reason)).await;
                None
            }
        }
    }

    /// Send the challenge and check the answer, all before `deadline`.
    async fn login<S>(
        &self,
        conn: &mut Connection<S>,
        deadline: tokio::time::Instant,
    ) -> Result<Identity, (CloseCode, String)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let limits = self.shared.limits();
        let nonce = auth::new_nonce();
        let hello = ServerMessage::Hello {
            v: PROTOCOL_VERSION,
            relay: format!("assent-relay/{}", env!("CARGO_PKG_VERSION")),
            nonce: nonce.clone(),
            max_frame_bytes: limits.max_frame_bytes,
            login_timeout_s: limits.login_timeout_s,
        };
        let policy = |reason: String| (CloseCode::Policy, reason);
        conn.send(&hello).await.map_err(policy)?;
        let answer = tokio::time::timeout_at(deadline, conn.read_message())
            .await
            .map_err(|_| {
                policy(format!(
                    "no login within {} s of connecting",
                    limits.login_timeout_s
                ))
            })?;
        match answer {
            Ok(Some(ClientMessage::Login { login })) => {
                auth::check_login(&login, &nonce, &self.shared.config(), self.peer).map_err(policy)
            }
            Ok(Some(_)) => Err(policy("the first message must be a login".into())),
            Ok(None) => Err(policy("closed before logging in".into())),
            Err(e) => Err((e.close_code(), e.to_string())),
        }
    }

    async fn session<S>(mut self, mut conn: Connection<S>, who: Identity)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let limits = self.shared.limits();
        let id: ConnId = self.shared.next_conn.fetch_add(1, Ordering::Relaxed);
        let fingerprint = who.key.fingerprint();
        tracing::info!(
            conn = id, peer = %self.peer, role = ?who.role, key = %fingerprint,
            name = who.name.as_deref().unwrap_or("-"), "logged in"
        );
        let outbox = Outbox::new(limits.outbound_queue);
        let mut end = End::Gone;
        let mut sent = self.welcome(&mut conn, id, &who, &outbox).await;

        let mut ping = tokio::time::interval(limits.ping_interval());
        ping.tick().await;
        let mut session = Session {
            id,
            who: &who,
            outbox: &outbox,
            messages: limits.message_bucket(Instant::now()),
        };
        while sent.is_ok() {
            tokio::select! {
                _ = self.shutdown.changed() => {
                    end = End::Shutdown;
                    break;
                }
                queued = outbox.pop() => match queued {
                    Some(text) => {
                        // Whatever else is queued goes out in the same write.
                        let more = std::iter::from_fn(|| outbox.try_pop()).take(MAX_BATCH - 1);
                        let texts = std::iter::once(text).chain(more);
                        sent = Box::pin(conn.send_texts(texts)).await;
                    }
                    None => {
                        end = End::Refused(
                            CloseCode::Policy,
                            "this connection fell too far behind reading its messages".into(),
                        );
                        break;
                    }
                },
                read = conn.read_message() => {
                    // Boxed: only while it runs, so idle sessions stay small.
                    let handled = Box::pin(self.on_reads(&mut session, &mut conn, read)).await;
                    match handled {
                        Ok(()) => sent = Ok(()),
                        Err(Stop::End(why)) => {
                            end = why;
                            break;
                        }
                        Err(Stop::Write(e)) => sent = Err(e),
                    }
                },
                _ = ping.tick() => {
                    if conn.last_heard().elapsed() > limits.idle_timeout() {
                        end = End::Refused(CloseCode::Away, format!(
                            "nothing heard for {} s", limits.idle_timeout_s
                        ));
                        break;
                    }
                    sent = conn.ping().await;
                }
            }
        }
        self.shared.store.disconnect(id);
        if let Err(e) = sent {
            tracing::debug!(conn = id, "{}", printable(&e));
        }
        match end {
            End::Gone | End::Closed => tracing::debug!(conn = id, "connection closed"),
            End::Shutdown => Box::pin(conn.close(CloseCode::Away, "relay shutting down")).await,
            End::Refused(code, reason) => {
                tracing::warn!(conn = id, peer = %self.peer, key = %fingerprint, "closing connection: {}", printable(&reason));
                Box::pin(conn.close_with_error(code, &reason)).await;
            }
        }
    }

    /// Register connection `id` with the store, then send `welcome` and what the store holds
    /// for it (an approver's pending requests), in batches.
    async fn welcome<S>(
        &self,
        conn: &mut Connection<S>,
        id: ConnId,
        who: &Identity,
        outbox: &Arc<Outbox>,
    ) -> Result<(), String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let backlog =
            self.shared
                .store
                .connect(id, who.role == Role::Approver, outbox.clone(), now_unix());
        let welcome = ServerMessage::Welcome {
            role: who.role,
            key: who.key.fingerprint().to_string(),
            name: who.name.clone(),
        };
        conn.send(&welcome).await?;
        for batch in backlog.chunks(MAX_BATCH) {
            let texts = batch.iter().map(|m| Utf8Bytes::from(m.to_json()));
            conn.send_texts(texts).await?;
        }
        Ok(())
    }

    /// `first`, and whatever else the client has already sent: all of it handled before
    /// anything is written, so the frames it causes for this connection go out in one batch,
    /// and its decisions checked together.
    async fn on_reads<S>(
        &self,
        session: &mut Session<'_>,
        conn: &mut Connection<S>,
        first: Result<Option<ClientMessage>, ReadError>,
    ) -> Result<(), Stop>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut reads = vec![first];
        while reads.len() < MAX_BATCH && matches!(reads.last(), Some(Ok(Some(_)))) {
            match conn.read_message().now_or_never() {
                Some(read) => reads.push(read),
                None => break,
            }
        }
        let checked = self.check_decisions(session.who, &reads);
        for (read, checked) in reads.into_iter().zip(checked) {
            self.on_message(session, conn, read, checked).await?;
        }
        Ok(())
    }

    /// The decisions among what an approver connection sent at once (two or more), checked
    /// in one batch: for each read, its decision's result, or `None` (checked when handled).
    fn check_decisions(
        &self,
        who: &Identity,
        reads: &[Result<Option<ClientMessage>, ReadError>],
    ) -> Vec<Option<Checked>> {
        let mut checked: Vec<Option<Checked>> = reads.iter().map(|_| None).collect();
        if who.role != Role::Approver {
            return checked;
        }
        let (at, decisions): (Vec<usize>, Vec<&Envelope>) = reads
            .iter()
            .enumerate()
            .filter_map(|(i, read)| match read {
                Ok(Some(ClientMessage::Decide { decision })) => Some((i, decision)),
                _ => None,
            })
            .unzip();
        if decisions.len() < 2 {
            return checked;
        }
        let results = auth::check_decisions(&decisions, &self.shared.config());
        for (i, result) in at.into_iter().zip(results) {
            checked[i] = Some(result);
        }
        checked
    }

    /// One read from the client: act on it, and send a direct answer (after what is queued).
    /// `checked` is its decision's signature check, when made already.
    async fn on_message<S>(
        &self,
        session: &mut Session<'_>,
        conn: &mut Connection<S>,
        read: Result<Option<ClientMessage>, ReadError>,
        checked: Option<Checked>,
    ) -> Result<(), Stop>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let message = match read {
            Ok(Some(message)) => message,
            Ok(None) => return Err(Stop::End(End::Closed)),
            Err(e) => return Err(Stop::End(End::Refused(e.close_code(), e.to_string()))),
        };
        if !session.messages.try_take(Instant::now()) {
            return Err(Stop::End(End::Refused(
                CloseCode::Policy,
                format!(
                    "more than {} messages a second on this connection; slow down",
                    self.shared.limits().messages_per_connection_per_second
                ),
            )));
        }
        let answer = match self.handle(session.id, session.who, message, checked) {
            Ok(None) => return Ok(()),
            Ok(Some(answer)) => answer,
            Err(refusal) if refusal.fatal => {
                return Err(Stop::End(End::Refused(CloseCode::Policy, refusal.reason)));
            }
            Err(refusal) => {
                tracing::info!(conn = session.id, "refused: {}", printable(&refusal.reason));
                ServerMessage::Refused {
                    request_id: refusal.request_id,
                    reason: refusal.reason,
                }
            }
        };
        reply(conn, session.outbox, &answer)
            .await
            .map_err(Stop::Write)
    }

    /// An agent's request: within its key's rate, well formed, and signed (by its SSHSIG's
    /// claim) by the connection's own key; then held.
    fn submit(&self, conn: ConnId, who: &Identity, request: &Envelope) -> Result<(), Refusal> {
        let shared = &self.shared;
        if who.role != Role::Agent {
            return Err(Refusal::fatal(
                None,
                "only agent connections submit requests",
            ));
        }
        let allowed = shared
            .submissions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_take(who.key.as_bytes(), Instant::now());
        if !allowed {
            return Err(Refusal::fatal(
                None,
                format!(
                    "more than {} requests a minute from this agent key; slow down",
                    shared.limits().requests_per_agent_per_minute
                ),
            ));
        }
        let request = auth::check_request(request, who).map_err(|e| Refusal::fatal(None, e))?;
        // Named by its reference, as the shim and the consoles name it; the agent's
        // strings are quoted and escaped (a program path may hold a newline).
        tracing::info!(
            conn, request = %request.sha256.reference(), id = %request.payload.id,
            agent = ?request.payload.agent, program = ?request.payload.program, "request"
        );
        shared.store.submit(conn, request, now_unix())?;
        Ok(())
    }

    /// Act on one message (a decision's signature check made already in `checked`).
    /// `Ok(Some)` is a direct reply; refusals are sent (or, when fatal, end the connection) by
    /// the caller.
    fn handle(
        &self,
        conn: ConnId,
        who: &Identity,
        message: ClientMessage,
        checked: Option<Checked>,
    ) -> Result<Option<ServerMessage>, Refusal> {
        let shared = &self.shared;
        match message {
            ClientMessage::Login { .. } => Err(Refusal::fatal(None, "already logged in")),
            ClientMessage::Submit { request } => {
                self.submit(conn, who, &request)?;
                Ok(None)
            }
            ClientMessage::Decide { decision } => {
                if who.role != Role::Approver {
                    return Err(Refusal::fatal(None, "only approver connections decide"));
                }
                let decision = checked
                    .unwrap_or_else(|| auth::check_decision(&decision, &shared.config()))
                    .map_err(|e| Refusal::fatal(None, e))?;
                let (request, approver, verdict) = (
                    decision.payload.request_sha256.reference(),
                    decision.payload.approver.clone(),
                    decision.payload.verdict,
                );
                shared.store.decide(conn, decision, now_unix())?;
                tracing::info!(conn, %request, %approver, ?verdict, "decided");
                Ok(None)
            }
            ClientMessage::PublishStatus { status } => {
                if who.role != Role::Approver {
                    return Err(Refusal::fatal(
                        None,
                        "only approver connections publish statuses",
                    ));
                }
                let status = auth::check_status(&status, &shared.config())
                    .map_err(|e| Refusal::fatal(None, e))?;
                let (approver, console) = (status.payload.approver.clone(), status.payload.console);
                tracing::debug!(conn, %approver, %console, "status");
                if let Published::Evicted(evicted) =
                    shared.store.publish_status(status, now_unix())?
                {
                    tracing::info!(
                        %approver, %console, %evicted,
                        "status streams full for this key; dropped the one issued longest ago"
                    );
                }
                Ok(None)
            }
            ClientMessage::Withdraw { withdraw } => {
                if who.role != Role::Agent {
                    return Err(Refusal::fatal(
                        None,
                        "only agent connections withdraw requests",
                    ));
                }
                let withdraw =
                    auth::check_withdraw(&withdraw, who).map_err(|e| Refusal::fatal(None, e))?;
                let (request, id) = (
                    withdraw.payload.request_sha256.reference(),
                    withdraw.payload.request_id,
                );
                shared.store.withdraw(conn, withdraw, now_unix())?;
                tracing::info!(conn, %request, %id, "withdrawn");
                Ok(None)
            }
            ClientMessage::GetStatuses {} => Ok(Some(ServerMessage::Statuses {
                statuses: shared.store.statuses(),
            })),
        }
    }
}
