//! What the agent (or the person behind it) sees on stderr while a request waits.
//!
//! On a terminal: one line redrawn in place with the time left. Otherwise: one line when the
//! wait starts and one when it ends, so logs stay short and every line starts `assent: `.

use std::io::{IsTerminal as _, Write as _};

use crate::failure::{is_quiet, say};
use assent_common::duration;

#[derive(Debug)]
pub struct Progress {
    tty: bool,
    /// A countdown line is on screen and must be cleared before other output.
    drawn: bool,
    started: bool,
    /// The request's reference (SPEC §13.1), as the approver's console shows it.
    reference: String,
    relay: String,
    expires_at: u64,
}

impl Progress {
    pub fn new(reference: String, relay: String, expires_at: u64) -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            drawn: false,
            started: false,
            reference,
            relay,
            expires_at,
        }
    }

    pub fn is_tty(&self) -> bool {
        self.tty
    }

    /// The request has reached the relay once.
    pub fn has_started(&self) -> bool {
        self.started
    }

    /// The request reached the relay: say so once.
    pub fn started(&mut self, now: u64) {
        if self.started {
            return;
        }
        self.started = true;
        crate::mcp::report::note(&crate::mcp::report::Milestone::Waiting {
            reference: self.reference.clone(),
            expires_at: self.expires_at,
        });
        if is_quiet() {
            return;
        }
        if self.tty {
            // The relay once, then the countdown below it.
            say(format_args!(
                "asked for approval of request {} via {}",
                self.reference, self.relay
            ));
            self.tick(now);
        } else {
            say(format_args!(
                "waiting for approval of request {} (expires in {}) via {}",
                self.reference,
                duration::format(self.expires_at.saturating_sub(now)),
                self.relay
            ));
        }
    }

    /// Redraw the countdown (terminals only).
    pub fn tick(&mut self, now: u64) {
        if !self.tty || !self.started || is_quiet() {
            return;
        }
        let left = duration::format(self.expires_at.saturating_sub(now));
        let mut err = std::io::stderr().lock();
        // Short enough not to wrap on an 80-column terminal, which `\r` could not redraw.
        let _ = write!(
            err,
            "\r\x1b[2Kassent: waiting for approval of {} ({left} left, Ctrl-C to give up)",
            self.reference
        );
        let _ = err.flush();
        self.drawn = true;
    }

    /// An informational line of its own (reconnects, the cached grant's state); none when
    /// quiet.
    pub fn line(&mut self, text: &str) {
        if !is_quiet() {
            self.warn(text);
        }
    }

    /// A line that stays even when quiet: something went wrong or was ignored.
    pub fn warn(&mut self, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.drawn {
            let _ = write!(err, "\r\x1b[2K");
            self.drawn = false;
        }
        let _ = writeln!(err, "assent: {text}");
    }

    /// Remove the countdown before someone else writes to the terminal.
    pub fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}
