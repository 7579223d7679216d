//! Desktop notifications, best effort and off the UI thread.
//!
//! A worker thread owns notify-rust. The first failure (no D-Bus, no notification daemon) is
//! reported once as [`NotifyState::Unavailable`] and the worker stops trying; the console works
//! the same either way. Sending never blocks: a full queue drops the notification.

use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use crate::app::NotifyState;

/// Handle to the notification worker.
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: Option<SyncSender<(String, String)>>,
}

impl Notifier {
    /// A notifier that never notifies (`--no-notify`, tests).
    pub fn disabled() -> Notifier {
        Notifier { tx: None }
    }

    /// Start the worker; `report` hears about unavailability once.
    pub fn spawn(report: impl Fn(NotifyState) + Send + 'static) -> Notifier {
        let (tx, rx) = sync_channel::<(String, String)>(16);
        let spawned = std::thread::Builder::new()
            .name("notify".into())
            .spawn(move || {
                for (summary, body) in rx {
                    let shown = notify_rust::Notification::new()
                        .appname("assent")
                        .summary(&summary)
                        .body(&body)
                        .timeout(notify_rust::Timeout::Milliseconds(10_000))
                        .show();
                    if let Err(e) = shown {
                        let why = e.to_string();
                        let why = why
                            .lines()
                            .next()
                            .unwrap_or("no notification service")
                            .to_string();
                        report(NotifyState::Unavailable(why));
                        return; // said once; do not keep trying
                    }
                }
            });
        match spawned {
            Ok(_) => Notifier { tx: Some(tx) },
            Err(_) => Notifier { tx: None },
        }
    }

    /// Queue a notification; never waits. The texts arrive escaped ([`crate::escape`]); the
    /// body is also escaped as markup, which many notification servers interpret there.
    pub fn notify(&self, summary: &str, body: &str) {
        if let Some(tx) = &self.tx {
            match tx.try_send((summary.to_string(), markup_escaped(body))) {
                Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }
}

/// `text` with the characters that notification body markup gives meaning to as entities.
pub fn markup_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_markup_is_escaped() {
        assert_eq!(
            markup_escaped("rm <b>x</b> & <a href=\"y\">"),
            "rm &lt;b&gt;x&lt;/b&gt; &amp; &lt;a href=\"y\"&gt;"
        );
    }
}
