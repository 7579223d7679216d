//! A private tmux server for driving a terminal program: started detached at a fixed size,
//! driven with `send-keys`, read with `capture-pane`. Every wait polls the screen against a
//! deadline; nothing sleeps a fixed time to let something happen.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a wait for the screen may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);
/// The default pane size.
pub const WIDTH: u16 = 120;
pub const HEIGHT: u16 = 40;

/// A private tmux server with one session running the console.
pub struct Tmux {
    socket: String,
    config: PathBuf,
    size: (u16, u16),
}

impl Tmux {
    /// A server of its own, with its config file in `scratch`, at the default size.
    pub fn new(scratch: &Path) -> Tmux {
        Self::with_size(scratch, WIDTH, HEIGHT)
    }

    /// As [`Tmux::new`], with panes of `width` × `height`.
    pub fn with_size(scratch: &Path, width: u16, height: u16) -> Tmux {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let config = scratch.join("tmux.conf");
        // Keep the pane after the program exits, so an exit can be seen and read.
        std::fs::write(&config, "set -g remain-on-exit on\n").unwrap();
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Tmux {
            socket: format!("assent-e2e-{}-{n}", std::process::id()),
            config,
            size: (width, height),
        }
    }

    pub fn tmux(&self) -> Command {
        let mut cmd = Command::new("tmux");
        // UTF-8 whatever the caller's locale: the screen is matched on characters like ▶.
        cmd.arg("-u").env("LC_ALL", "C.UTF-8");
        cmd.arg("-L").arg(&self.socket).arg("-f").arg(&self.config);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = self
            .tmux()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run tmux (install it): {e}"));
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Start `argv` in a new detached WIDTH×HEIGHT session (replacing a dead pane).
    pub fn start(&self, argv: &[String]) {
        let (w, h) = (self.size.0.to_string(), self.size.1.to_string());
        let mut args: Vec<&str> = if self.has_session() {
            vec!["respawn-pane", "-k", "-t", "console"]
        } else {
            vec!["new-session", "-d", "-s", "console", "-x", &w, "-y", &h]
        };
        args.extend(argv.iter().map(String::as_str));
        self.run(&args);
    }

    pub fn has_session(&self) -> bool {
        self.tmux()
            .args(["has-session", "-t", "console"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    pub fn capture(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "console"])
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "console"];
        args.extend(keys);
        self.run(&args);
    }

    pub fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "console", "-l", text]);
    }

    pub fn pane_dead(&self) -> bool {
        self.run(&["display-message", "-p", "-t", "console", "#{pane_dead}"])
            .trim()
            == "1"
    }

    /// Poll the screen until `ok` holds on a settled screen; panic with the last screen after
    /// WAIT.
    ///
    /// A capture can catch the console half-way through drawing a frame (a popup drawn, the
    /// status line not yet), so a screen is judged only when two captures in a row agree.
    pub fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        let mut pause = Duration::from_millis(20);
        let mut previous: Option<String> = None;
        loop {
            let screen = self.capture();
            if previous.as_deref() == Some(screen.as_str()) && ok(&screen) {
                return screen;
            }
            if Instant::now() >= deadline {
                panic!("timed out waiting for {what}; the console shows:\n{screen}");
            }
            if previous.as_deref() != Some(screen.as_str()) && ok(&screen) {
                // Looks done: look again soon, to see that it has settled.
                pause = Duration::from_millis(20);
            } else {
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            previous = Some(screen);
            std::thread::sleep(pause);
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
    }
}
