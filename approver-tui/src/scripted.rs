//! `assent-console list | approve REF | deny REF`: the same decisions without the screen, for
//! scripts. Each connects to the relay as the approver, acts, prints one line and exits.
//!
//! A REF is the start of the request's SHA-256 (what `list` prints), never the id the agent
//! chose. `list` remembers what it printed ([`ShownFile`]), as the console does, and `approve`
//! signs only a request this approver was shown, named by a reference that names nothing else
//! the console has seen. So between `list` and `approve`, the request behind a reference cannot
//! change.

use std::time::Duration;

use assent_protocol::{ConsoleId, Grant, PrivateKey, Request, Role, Signed};
use assent_relay_client::{Client, ClientError, ConnectOptions, Event as Wire, Fault};

use crate::command::Summary;
use crate::config::Fatal;
use crate::escape::visible;
use crate::host::HostView;
use crate::log::{DecisionLog, Entry, Loaded};
use assent_common::clock::now;
use assent_common::duration;
use assent_protocol::REFERENCE_LEN as REF_LEN;

use crate::memory::{Memory, Shown, ShownFile};
use crate::out;
use crate::relay_link::request_event;
use crate::risk::Risk;
use crate::sign::{self, Choice};
use crate::update::RelayEvent;

/// Exit status when the relay cannot be reached (retryable, as for the shim).
pub const EXIT_UNREACHABLE: i32 = 75;
/// How long to wait for the relay's list of pending requests and for confirmations.
const WAIT: Duration = Duration::from_secs(5);

/// What every console mode needs.
#[derive(Debug)]
pub struct Common {
    pub url: String,
    pub key: std::sync::Arc<PrivateKey>,
    pub name: String,
    /// This console's id, put in every decision it signs.
    pub console: ConsoleId,
    pub log: DecisionLog,
    /// The requests shown to this approver.
    pub shown: ShownFile,
    /// This host's elevator.toml, for the "will be refused" flags.
    pub elevator_config: std::path::PathBuf,
    pub once_window_s: u64,
    /// `relay_ca` from console.toml: extra trust roots for a `wss://` relay.
    pub relay_ca: Option<std::path::PathBuf>,
    /// `[[agent]]` of console.toml, as (name, key fingerprint): known, never first-seen.
    pub known_agents: Vec<(String, String)>,
}

impl Common {
    /// How to connect to the relay: the system's roots, `ASSENT_RELAY_CA`'s and `relay_ca`.
    pub fn connect_options(&self) -> ConnectOptions {
        let mut options = ConnectOptions::from_env();
        options.extra_roots.extend(self.relay_ca.iter().cloned());
        options
    }

    /// Every entry of the decision log that verifies (and how many did not).
    pub fn load_log(&self) -> Result<Loaded, Fatal> {
        self.log.load().map_err(|e| {
            Fatal::other(format!(
                "cannot read the decision log {}: {e}",
                self.log.path().display()
            ))
        })
    }

    /// The requests shown to this approver before, still remembered.
    pub fn load_shown(&self) -> Result<Vec<Shown>, Fatal> {
        self.shown.load(now()).map_err(|e| {
            Fatal::other(format!(
                "cannot read the list of requests shown {}: {e}",
                self.shown.path().display()
            ))
        })
    }

    /// The decision log and the requests shown, folded into a memory; unreadable lines of the
    /// log are skipped (the console reports them).
    pub fn memory(&self) -> Result<Memory, Fatal> {
        let mut memory = Memory::new(self.key.public().fingerprint().as_str());
        for (name, fingerprint) in &self.known_agents {
            memory.approved(name, fingerprint);
        }
        for entry in &self.load_log()?.entries {
            memory.learn(entry);
        }
        for s in self.load_shown()? {
            memory.saw(s.id, s.sha256);
        }
        Ok(memory)
    }
}

fn unreachable(e: impl std::fmt::Display) -> Fatal {
    Fatal::unreachable(e.to_string())
}

/// A relay error: retryable (75) when the relay may work later, a configuration error (78)
/// when no retry can help (trust, certificate name, scheme, a refused login); its text names
/// the fix.
fn relay_error(e: ClientError) -> Fatal {
    match e.fault() {
        Fault::Transient => unreachable(e),
        Fault::Configuration => Fatal::config(e.to_string()),
    }
}

/// A pending request as the relay listed it, verified, with its flags.
struct Listed {
    request: Signed<Request>,
    risks: Vec<Risk>,
}

/// Connect and collect every pending request. The relay sends its backlog right after the
/// login, before it answers anything, so the answer to a status query marks its end.
async fn pending(common: &Common) -> Result<(Client, Vec<Listed>), Fatal> {
    let mut client = Client::connect_with(
        &common.url,
        &common.key,
        Role::Approver,
        &common.connect_options(),
    )
    .await
    .map_err(relay_error)?;
    client.request_statuses().await.map_err(relay_error)?;
    let mut host = HostView::new(&common.elevator_config);
    let mut out = Vec::new();
    let collect = async {
        loop {
            match client.next_event().await? {
                Wire::Statuses { .. } => return Ok::<_, assent_relay_client::ClientError>(()),
                Wire::Request { envelope, .. } => match request_event(&envelope, &mut host) {
                    RelayEvent::Request { request, risks } => out.push(Listed {
                        request: *request,
                        risks,
                    }),
                    RelayEvent::Invalid { reason } => eprintln!(
                        "assent-console: warning: dropped an invalid request: {}",
                        visible(&reason)
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    };
    match tokio::time::timeout(WAIT, collect).await {
        Ok(Ok(())) => Ok((client, out)),
        Ok(Err(e)) => Err(relay_error(e)),
        Err(_) => Err(unreachable(format!(
            "the relay at {} did not list its pending requests within {}s",
            common.url,
            WAIT.as_secs()
        ))),
    }
}

/// Drop (with a warning on stderr) every request whose id or reference already named other
/// bytes, remembering the others.
fn admit(memory: &mut Memory, listed: Vec<Listed>) -> Vec<Listed> {
    let mut kept = Vec::new();
    for l in listed {
        let r = &l.request;
        if let Some(why) = memory.conflict(r.payload.id, &r.sha256) {
            eprintln!(
                "assent-console: warning: refused a request from {}: {why}",
                visible(&r.payload.agent)
            );
            continue;
        }
        memory.saw(r.payload.id, r.sha256);
        kept.push(l);
    }
    kept
}

/// One line per pending request.
pub async fn list(common: &Common) -> Result<(), Fatal> {
    let before = common.memory()?;
    let mut memory = before.clone();
    let (client, pending) = pending(common).await?;
    client.close().await;
    let pending = admit(&mut memory, pending);
    if pending.is_empty() {
        out::line("no pending requests");
        return Ok(());
    }
    // Remember before printing: a reference on the screen must already be bound.
    let shown: Vec<Shown> = pending
        .iter()
        .filter(|l| !before.shown(&l.request.sha256))
        .map(|l| Shown::of(&l.request))
        .collect();
    if let Err(e) = common.shown.append(&shown) {
        return Err(Fatal::other(format!(
            "cannot record the requests listed in {}: {e}; nothing listed (approve needs it)",
            common.shown.path().display()
        )));
    }
    let now = now();
    for l in &pending {
        let r = &l.request.payload;
        let mut risks = memory.agent_flags(&l.request);
        risks.extend(l.risks.iter().cloned());
        let tags: Vec<&str> = risks
            .iter()
            .filter(|r| !r.is_informational())
            .map(|r| r.tag())
            .collect();
        let printed = out::line(format_args!(
            "{}  {}@{}  {} -> {}  {} left  {}{}",
            l.request.sha256.reference(),
            visible(&r.agent),
            visible(&r.host),
            visible(&r.user),
            visible(&r.run_as),
            duration::countdown(r.expires_at.saturating_sub(now)),
            Summary::of(r).full(),
            if tags.is_empty() {
                String::new()
            } else {
                format!("  [{}]", tags.join(" "))
            }
        ));
        if !printed {
            break; // the reader has gone (`| head`)
        }
    }
    Ok(())
}

/// The one request `reference` names, or why there is none.
///
/// `pending` is what the relay holds now; `memory` every request this approver was shown or
/// decided, and those pending. A reference that starts more than one of them is ambiguous,
/// even when only one is pending: the other is what the approver may have read. Approving
/// also needs the request to be among those shown before (`shown_before`).
fn resolve<'a>(
    reference_text: &str,
    pending: &'a [Listed],
    memory: &Memory,
    shown_before: Option<&Memory>,
) -> Result<&'a Signed<Request>, Fatal> {
    let prefix = reference_text.to_ascii_lowercase();
    if prefix.len() < REF_LEN || prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(Fatal::usage(format!(
            "{}: give the {REF_LEN}-digit reference that `assent-console list` prints (or more of the request's SHA-256)",
            visible(reference_text)
        )));
    }
    let matching: Vec<&Signed<Request>> = pending
        .iter()
        .map(|l| &l.request)
        .filter(|r| r.sha256.to_hex().starts_with(&prefix))
        .collect();
    let mut candidates: Vec<String> = memory
        .matching(&prefix)
        .iter()
        .map(|d| d.to_hex())
        .chain(matching.iter().map(|r| r.sha256.to_hex()))
        .collect();
    candidates.sort();
    candidates.dedup();
    if candidates.len() > 1 {
        let named: Vec<String> = candidates
            .iter()
            .map(|hex| {
                let what = matching
                    .iter()
                    .find(|r| r.sha256.to_hex() == *hex)
                    .map(|r| format!(" (pending: {})", Summary::of(&r.payload).fit(60)))
                    .unwrap_or_else(|| " (shown before, no longer pending)".into());
                format!("{}{what}", &hex[..24])
            })
            .collect();
        return Err(Fatal::other(format!(
            "reference {prefix} is ambiguous: it starts {}; nothing signed",
            named.join(", ")
        )));
    }
    let [request] = matching[..] else {
        return Err(Fatal::other(format!(
            "no pending request with reference {prefix}; see `assent-console list`"
        )));
    };
    if shown_before.is_some_and(|before| !before.shown(&request.sha256)) {
        return Err(Fatal::other(format!(
            "request {prefix} was never shown to you; run `assent-console list`, read it, then approve it"
        )));
    }
    Ok(request)
}

pub async fn approve(
    common: &Common,
    reference: &str,
    grant: Grant,
    ttl_s: Option<u64>,
) -> Result<(), Fatal> {
    decide(common, reference, Choice::approve(grant, ttl_s)).await
}

pub async fn deny(common: &Common, reference: &str, note: Option<String>) -> Result<(), Fatal> {
    decide(common, reference, Choice::deny(note)).await
}

async fn decide(common: &Common, reference_text: &str, choice: Choice) -> Result<(), Fatal> {
    let before = common.memory()?;
    let mut memory = before.clone();
    let (mut client, pending) = pending(common).await?;
    let pending = admit(&mut memory, pending);
    let approving = choice.verdict == assent_protocol::Verdict::Approve;
    let request = match resolve(
        reference_text,
        &pending,
        &memory,
        approving.then_some(&before),
    ) {
        Ok(request) => request.clone(),
        Err(fatal) => {
            client.close().await;
            return Err(fatal);
        }
    };
    let decision = sign::decision(
        &request,
        &choice,
        &common.name,
        common.console,
        now(),
        common.once_window_s,
    );
    let signed = sign::seal_decision(&common.key, &decision);
    client.decide(&signed.envelope).await.map_err(relay_error)?;

    // The relay answers every approver with `Decided` (or this one with `Refused`).
    let want = request.payload.id;
    let confirm = async {
        loop {
            match client.next_event().await? {
                Wire::Decided {
                    request_id,
                    approver,
                    verdict,
                    ..
                } if request_id == want => {
                    return Ok::<_, assent_relay_client::ClientError>(Ok((approver, verdict)));
                }
                Wire::Refused { request_id, reason } if request_id.is_none_or(|r| r == want) => {
                    return Ok(Err(reason));
                }
                _ => {}
            }
        }
    };
    let outcome = tokio::time::timeout(WAIT, confirm).await;
    client.close().await;
    let what = Summary::of(&request.payload).full();
    let want_ref = request.sha256.reference();
    match outcome {
        Ok(Ok(Ok((approver, verdict)))) if approver == common.name && verdict == choice.verdict => {
            let entry = Entry::Decided {
                request: request.clone(),
                decision: signed,
            };
            if let Err(e) = common.log.append(&entry.record()) {
                eprintln!(
                    "assent-console: warning: could not write the decision log {}: {e}",
                    common.log.path().display()
                );
            }
            let done = choice.describe();
            out::line(format_args!(
                "{done} {want_ref}: {what} ({})",
                visible(&request.payload.agent)
            ));
            Ok(())
        }
        Ok(Ok(Ok((approver, _)))) => Err(Fatal::other(format!(
            "request {want_ref} was already decided by {}",
            visible(&approver)
        ))),
        Ok(Ok(Err(reason))) => Err(Fatal::other(format!(
            "the relay refused the decision for {want_ref}: {}",
            visible(&reason)
        ))),
        Ok(Err(e)) => Err(relay_error(e)),
        Err(_) => Err(Fatal::other(format!(
            "decision for {want_ref} sent, but the relay did not confirm it within {}s",
            WAIT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn listed(argv: &str, n: u32) -> Listed {
        Listed {
            request: testing::signed(testing::request(argv, &[]), n, 1),
            risks: Vec::new(),
        }
    }

    #[test]
    fn a_reference_names_one_request_or_none() {
        let pending = vec![listed("apt-get update", 1), listed("ls", 2)];
        let mut before = Memory::new("SHA256:me");
        before.saw(pending[0].request.payload.id, pending[0].request.sha256);
        let mut memory = before.clone();
        memory.saw(pending[1].request.payload.id, pending[1].request.sha256);
        let first = pending[0].request.sha256.to_hex();

        let found = resolve(&first[..12], &pending, &memory, Some(&before)).unwrap();
        assert_eq!(found.sha256, pending[0].request.sha256);
        let found = resolve(
            &first.to_uppercase()[..20],
            &pending,
            &memory,
            Some(&before),
        );
        assert!(found.is_ok(), "longer, any case");
        // Not shown before: denying is fine, approving is not.
        let second = pending[1].request.sha256.to_hex();
        assert!(resolve(&second[..12], &pending, &memory, None).is_ok());
        let err = resolve(&second[..12], &pending, &memory, Some(&before)).unwrap_err();
        assert!(err.message().contains("never shown"), "{}", err.message());

        for bad in ["", "abc", "xyzxyzxyzxyz", &"a".repeat(65)] {
            let err = resolve(bad, &pending, &memory, None).unwrap_err();
            assert_eq!(err.code(), 64, "{bad:?}: {}", err.message());
        }
        let err = resolve("000000000000", &pending, &memory, None).unwrap_err();
        assert!(
            err.message().contains("no pending request"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn a_reference_that_starts_two_digests_is_ambiguous() {
        let pending = vec![listed("bash -c evil", 1)];
        let sha = pending[0].request.sha256;
        // Another request shown before whose digest starts the same (made up here: a real
        // pair takes a collision search over 48 bits).
        let mut other = sha;
        other.0[20] ^= 0xff;
        let mut memory = Memory::new("SHA256:me");
        memory.saw(assent_protocol::RequestId([3; 16]), other);
        // `saw` keeps the first digest per reference; record the pending one by id only.
        memory.saw(pending[0].request.payload.id, sha);
        let err = resolve(&sha.to_hex()[..12], &pending, &memory, None).unwrap_err();
        assert!(err.message().contains("is ambiguous"), "{}", err.message());
        assert!(
            err.message().contains("(pending: bash -c evil)"),
            "{}",
            err.message()
        );
        assert!(
            err.message().contains("(shown before, no longer pending)"),
            "{}",
            err.message()
        );
        // More digits tell them apart.
        let found = resolve(&sha.to_hex()[..48], &pending, &memory, None).unwrap();
        assert_eq!(found.sha256, sha);
    }
}
