//! The interactive console's event loop: the edge where terminal, clock, relay, decision log
//! and notifications meet the pure [`update`] and the [`views`].

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use assent_protocol::Envelope;
use tokio::sync::mpsc;

use assent_common::clock::now;

use crate::app::{App, NotifyState};
use crate::config::Fatal;
use crate::host::HostView;
use crate::log::{DecisionLog, Entry};
use crate::memory::Shown;
use crate::notify::Notifier;
use crate::relay_link::{self, Link};
use crate::scripted::Common;
use crate::sign;
use crate::update::{Action, Event, update};
use crate::views;

/// Restores the terminal however the console ends (ratatui's panic hook covers panics).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Run the console until `q`. With `listen`, host a relay there first.
pub async fn run(common: Common, listen: Option<SocketAddr>, notify: bool) -> Result<(), Fatal> {
    let key = common.key.clone();
    let fingerprint = key.public().fingerprint().to_string();

    // Host the relay before touching the terminal, so a busy port is a plain error line.
    let relay = match listen {
        Some(addr) => Some(host_relay(&common, addr).await?),
        None => None,
    };
    let url = relay
        .as_ref()
        .map(|r| r.url())
        .unwrap_or_else(|| common.url.clone());

    let mut app = App::new(&common.name, &fingerprint, &url, now());
    app.once_window_s = common.once_window_s;
    app.console = Some(common.console);
    app.color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    restore(&mut app, &common)?;

    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let notifier = if notify {
        let tx = tx.clone();
        Notifier::spawn(move |state| {
            let _ = tx.send(Event::Notifications(state));
        })
    } else {
        app.notifications = NotifyState::Disabled;
        Notifier::disabled()
    };
    spawn_input(tx.clone());
    spawn_ticks(tx.clone());
    spawn_signals(tx.clone());
    let host = HostView::new(&common.elevator_config);
    let link = relay_link::spawn(
        url,
        relay.is_some(),
        common.connect_options(),
        key.clone(),
        host,
        tx.clone(),
    );

    let mut terminal = ratatui::try_init()
        .map_err(|e| Fatal::other(format!("cannot set up the terminal: {e}")))?;
    let guard = TerminalGuard;
    let edge = Edge {
        common: &common,
        key: &key,
        link,
        notifier,
        log: &common.log,
    };

    let started = std::time::Instant::now();
    let mut queue: Vec<Event> = Vec::new();
    loop {
        terminal
            .draw(|frame| views::draw(frame, &app))
            .map_err(|e| Fatal::other(format!("cannot draw: {e}")))?;
        let Some(first) = rx.recv().await else { break };
        queue.push(first);
        while let Ok(more) = rx.try_recv() {
            queue.push(more);
        }
        // Dated when taken from the queue, after the frame that showed what came before.
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        update(&mut app, Event::Clock { ms });
        let Some(batch) = run_batch(&mut app, &edge, &mut queue) else {
            break;
        };
        finish_batch(&mut app, &common, batch);
    }
    drop(terminal);
    drop(guard); // the screen is back before the relay winds down
    if let Some(relay) = relay {
        let _ = tokio::time::timeout(Duration::from_secs(3), relay.shutdown()).await;
    }
    Ok(())
}

/// The embedded relay on `addr`, admitting this console's key only.
async fn host_relay(common: &Common, addr: SocketAddr) -> Result<assent_relay::RelayHandle, Fatal> {
    let config =
        assent_relay::RelayConfig::default().with_approver(&common.name, common.key.public());
    assent_relay::start(config, addr, None).await.map_err(|e| {
        Fatal::other(format!(
            "{e}; is another relay or console running there? Connect to it with --relay ws://{addr}, or host on another address with --listen"
        ))
    })
}

/// The app as the console left it: the agents it knows, its decision log, and the requests
/// it has shown.
fn restore(app: &mut App, common: &Common) -> Result<(), Fatal> {
    for (name, fingerprint) in &common.known_agents {
        app.memory.approved(name, fingerprint);
    }
    let loaded = common.load_log()?;
    for entry in &loaded.entries {
        app.apply_entry(entry);
    }
    if loaded.skipped > 0 {
        app.set_warning(format!(
            "decision log: {} unreadable or unverifiable line(s) skipped",
            loaded.skipped
        ));
    }
    for s in common.load_shown()? {
        app.memory.saw(s.id, s.sha256);
    }
    Ok(())
}

/// What one batch of events asks of the terminal and the disk.
#[derive(Default)]
struct Batch {
    bell: bool,
    shown: Vec<Shown>,
}

/// Apply `queue`, and every event its actions lead to, until none is left; `None` when the
/// user quits (the rest of the batch is dropped).
fn run_batch(app: &mut App, edge: &Edge<'_>, queue: &mut Vec<Event>) -> Option<Batch> {
    let mut batch = Batch::default();
    while !queue.is_empty() {
        for event in std::mem::take(queue) {
            for action in update(app, event) {
                match action {
                    Action::Quit => return None,
                    Action::Bell => batch.bell = true,
                    Action::RememberShown(s) => batch.shown.push(s),
                    other => queue.extend(edge.carry_out(other, app)),
                }
            }
        }
    }
    Some(batch)
}

/// Record the requests `batch` showed, and ring the bell once if it asked to.
fn finish_batch(app: &mut App, common: &Common, batch: Batch) {
    if let Err(e) = common.shown.append(&batch.shown) {
        update(
            app,
            Event::Failure(format!(
                "could not record the requests shown in {}: {e}; `assent-console approve` will not accept their references",
                common.shown.path().display()
            )),
        );
    }
    if batch.bell {
        // BEL makes tmux mark the window; one per batch however many requests arrived.
        let mut out = std::io::stdout();
        let _ = out.write_all(b"\x07").and_then(|()| out.flush());
    }
}

/// Carries out actions; returns follow-up events (log entries written).
struct Edge<'a> {
    common: &'a Common,
    key: &'a assent_protocol::PrivateKey,
    link: Link,
    notifier: Notifier,
    log: &'a DecisionLog,
}

impl Edge<'_> {
    fn carry_out(&self, action: Action, app: &App) -> Vec<Event> {
        match action {
            Action::SignDecision { request, choice } => {
                let decision = sign::decision(
                    &request,
                    &choice,
                    &self.common.name,
                    self.common.console,
                    now(),
                    app.once_window_s,
                );
                let signed = sign::seal_decision(self.key, &decision);
                self.link.decide(signed.envelope.clone());
                self.record(Entry::Decided {
                    request: *request,
                    decision: signed,
                })
            }
            Action::Revoke { decision_sha256 } => self.record(Entry::Revoked {
                at: now(),
                decision_sha256,
            }),
            Action::RecordOwnDecision { request, decision } => self.record(Entry::Decided {
                request: *request,
                decision: *decision,
            }),
            Action::Resend(decisions) => {
                for decision in decisions {
                    self.link.decide(decision);
                }
                Vec::new()
            }
            Action::RecordDelivered {
                request_id,
                decision_sha256,
            } => self.record(Entry::Delivered {
                at: now(),
                request_id,
                decision_sha256,
            }),
            Action::RecordDecidedElsewhere {
                request,
                approver,
                verdict,
            } => self.record(Entry::DecidedElsewhere {
                at: now(),
                request: *request,
                approver,
                verdict,
            }),
            Action::PublishStatus { revoked } => {
                let status = sign::status(&self.common.name, self.common.console, now(), revoked);
                self.link.publish_status(Envelope::seal(self.key, &status));
                Vec::new()
            }
            Action::Notify { summary, body } => {
                self.notifier.notify(&summary, &body);
                Vec::new()
            }
            Action::Bell | Action::Quit | Action::RememberShown(_) => Vec::new(),
        }
    }

    /// Append to the decision log; the entry reaches the state even if the disk fails, and
    /// the approver is told.
    fn record(&self, entry: Entry) -> Vec<Event> {
        let mut events = Vec::new();
        if let Err(e) = self.log.append(&entry.record()) {
            events.push(Event::Failure(format!(
                "could not write the decision log {}: {e}",
                self.log.path().display()
            )));
        }
        events.insert(0, Event::Logged(Box::new(entry)));
        events
    }
}

/// Terminal input on its own thread (crossterm's reader blocks).
fn spawn_input(tx: mpsc::UnboundedSender<Event>) {
    std::thread::Builder::new()
        .name("input".into())
        .spawn(move || {
            use crossterm::event::{Event as Term, read};
            while let Ok(ev) = read() {
                let ev = match ev {
                    Term::Key(k) => Event::Key(k),
                    Term::Resize(width, height) => Event::Resize { width, height },
                    _ => continue,
                };
                if tx.send(ev).is_err() {
                    return;
                }
            }
        })
        .expect("cannot start the input thread");
}

fn spawn_ticks(tx: mpsc::UnboundedSender<Event>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            every.tick().await;
            if tx.send(Event::Tick { now: now() }).is_err() {
                return;
            }
        }
    });
}

/// SIGTERM and SIGHUP (tmux kill-session) quit like `q`: nothing is signed.
fn spawn_signals(tx: mpsc::UnboundedSender<Event>) {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
        let _ = tx.send(Event::Shutdown);
    });
}
