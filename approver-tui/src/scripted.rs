//! `assent-console list | approve ID | deny ID`: the same decisions without the screen, for
//! scripts. Each connects to the relay as the approver, acts, prints one line and exits.

use std::time::Duration;

use assent_protocol::{Grant, PrivateKey, Request, Role, Signed};
use assent_relay_client::{Client, Event as Wire};

use crate::app::{format_countdown, parse_duration, unix_now as now};
use crate::config::Fatal;
use crate::escape::{shell_join, visible};
use crate::log::{DecisionLog, Entry};
use crate::out;
use crate::relay_link::request_event;
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
    pub log: DecisionLog,
    pub once_window_s: u64,
}

fn unreachable(e: impl std::fmt::Display) -> Fatal {
    Fatal {
        message: e.to_string(),
        code: EXIT_UNREACHABLE,
    }
}

/// `once`, `timed:15m`, `always`.
pub fn parse_grant(text: &str) -> Result<(Grant, Option<u64>), Fatal> {
    let usage = || Fatal {
        message: format!(
            "--grant {text:?}: expected once, timed:DURATION (e.g. timed:15m) or always"
        ),
        code: 64,
    };
    match text {
        "once" => Ok((Grant::Once, None)),
        "always" => Ok((Grant::Always, None)),
        _ => {
            let dur = text.strip_prefix("timed:").ok_or_else(usage)?;
            let secs = parse_duration(dur).ok_or_else(usage)?;
            Ok((Grant::Timed, Some(secs)))
        }
    }
}

/// Connect and collect every pending request. The relay sends its backlog right after the
/// login, before it answers anything, so the answer to a status query marks its end.
async fn pending(common: &Common) -> Result<(Client, Vec<(Signed<Request>, RelayEvent)>), Fatal> {
    let mut client = Client::connect(&common.url, &common.key, Role::Approver)
        .await
        .map_err(unreachable)?;
    client.request_statuses().await.map_err(unreachable)?;
    let mut out = Vec::new();
    let collect = async {
        loop {
            match client.next_event().await? {
                Wire::Statuses { .. } => return Ok::<_, assent_relay_client::ClientError>(()),
                Wire::Request {
                    envelope,
                    first_seen,
                } => {
                    let ev = request_event(&envelope, first_seen);
                    if let RelayEvent::Request { request, .. } = &ev {
                        out.push(((**request).clone(), ev));
                    }
                }
                _ => {}
            }
        }
    };
    match tokio::time::timeout(WAIT, collect).await {
        Ok(Ok(())) => Ok((client, out)),
        Ok(Err(e)) => Err(unreachable(e)),
        Err(_) => Err(unreachable(format!(
            "the relay at {} did not list its pending requests within {}s",
            common.url,
            WAIT.as_secs()
        ))),
    }
}

/// One line per pending request.
pub async fn list(common: &Common) -> Result<(), Fatal> {
    let (client, pending) = pending(common).await?;
    client.close().await;
    if pending.is_empty() {
        out::line("no pending requests");
        return Ok(());
    }
    let now = now();
    for (request, ev) in &pending {
        let r = &request.payload;
        let mut tags: Vec<&str> = Vec::new();
        if let RelayEvent::Request {
            first_seen, risks, ..
        } = ev
        {
            if *first_seen {
                tags.push("new-key");
            }
            tags.extend(
                risks
                    .iter()
                    .filter(|r| !r.is_informational())
                    .map(|r| r.tag()),
            );
        }
        let printed = out::line(format_args!(
            "{}  {}@{}  {} -> {}  {} left  {}{}",
            r.id,
            visible(&r.agent),
            visible(&r.host),
            visible(&r.user),
            visible(&r.run_as),
            format_countdown(r.expires_at.saturating_sub(now)),
            shell_join(&r.argv),
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

pub async fn approve(
    common: &Common,
    id: &str,
    grant: Grant,
    ttl_s: Option<u64>,
) -> Result<(), Fatal> {
    decide(common, id, Choice::approve(grant, ttl_s)).await
}

pub async fn deny(common: &Common, id: &str, note: Option<String>) -> Result<(), Fatal> {
    decide(common, id, Choice::deny(note)).await
}

async fn decide(common: &Common, id: &str, choice: Choice) -> Result<(), Fatal> {
    let (mut client, pending) = pending(common).await?;
    let matching: Vec<&Signed<Request>> = pending
        .iter()
        .map(|(r, _)| r)
        .filter(|r| !id.is_empty() && r.payload.id.to_hex().starts_with(id))
        .collect();
    let request = match matching[..] {
        [one] => one.clone(),
        [] => {
            client.close().await;
            return Err(Fatal::other(format!(
                "no pending request with id {}; see `assent-console list`",
                visible(id)
            )));
        }
        _ => {
            client.close().await;
            return Err(Fatal::other(format!(
                "{} pending requests start with {}; give more of the id",
                matching.len(),
                visible(id)
            )));
        }
    };
    let decision = sign::decision(&request, &choice, &common.name, now(), common.once_window_s);
    let signed = sign::seal_decision(&common.key, &decision);
    client.decide(&signed.envelope).await.map_err(unreachable)?;

    // The relay answers every approver with `Decided` (or this one with `Refused`).
    let want = request.payload.id;
    let confirm = async {
        loop {
            match client.next_event().await? {
                Wire::Decided {
                    request_id,
                    approver,
                    verdict,
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
    let what = shell_join(&request.payload.argv);
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
                "{done} {}: {} ({})",
                want,
                what,
                visible(&request.payload.agent)
            ));
            Ok(())
        }
        Ok(Ok(Ok((approver, _)))) => Err(Fatal::other(format!(
            "request {want} was already decided by {}",
            visible(&approver)
        ))),
        Ok(Ok(Err(reason))) => Err(Fatal::other(format!(
            "the relay refused the decision for {want}: {}",
            visible(&reason)
        ))),
        Ok(Err(e)) => Err(unreachable(e)),
        Err(_) => Err(Fatal::other(format!(
            "decision for {want} sent, but the relay did not confirm it within {}s",
            WAIT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_argument() {
        assert_eq!(parse_grant("once").unwrap(), (Grant::Once, None));
        assert_eq!(parse_grant("always").unwrap(), (Grant::Always, None));
        assert_eq!(parse_grant("timed:15m").unwrap(), (Grant::Timed, Some(900)));
        assert_eq!(
            parse_grant("timed:1h30m").unwrap(),
            (Grant::Timed, Some(5400))
        );
        assert_eq!(parse_grant("timed").unwrap_err().code, 64);
        assert_eq!(parse_grant("forever").unwrap_err().code, 64);
    }
}
