//! One `run_privileged` call: `assent run` as a child process, so the call goes through exactly
//! the flow the command line does (pre-flight, request, wait, elevator and its monitor), with
//! its output captured and bounded, its milestones read from the report file, and a cancel
//! turned into SIGTERM: while it waits, the run withdraws its request; once the command runs,
//! the monitor (running with the caller's real uid, so it may be signalled) passes the signal
//! on to the command.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::report::{self, Milestone, REPORT_ENV};
use super::tools::{Outcome, RunResult};

/// Each output stream is cut at this many bytes.
pub const OUTPUT_LIMIT: usize = 64 * 1024;
/// How long a cancelled run has to end after SIGTERM before it is killed.
const TERM_GRACE: Duration = Duration::from_secs(10);
/// How long output is still read after the run ended (a background process may keep the pipes).
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// What the tool was asked, checked: the `assent run` command line to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunArgs {
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
}

/// The arguments of `assent run` for one call; a one-line reason when they cannot be used.
pub fn run_args(
    argv: &[String],
    reason: &str,
    run_as: Option<&str>,
    cwd: Option<&str>,
    env: &BTreeMap<String, String>,
    grant: Option<&str>,
    timeout_s: Option<u64>,
) -> Result<RunArgs, String> {
    if argv.is_empty() || argv[0].is_empty() {
        return Err(
            "argv is empty: give the program and its arguments, e.g. [\"id\", \"-u\"]".into(),
        );
    }
    if reason.trim().is_empty() {
        return Err("reason is empty: say what the command is for, so the human can decide".into());
    }
    // `--option=VALUE`, so that a value starting with `-` stays a value.
    let mut args = vec!["run".to_owned()];
    if let Some(user) = run_as {
        args.push(format!("--as={user}"));
    }
    args.push(format!("--reason={reason}"));
    if let Some(grant) = grant {
        assent_common::grant::parse(grant).map_err(|e| format!("grant: {e}"))?;
        args.push(format!("--grant={grant}"));
    }
    if let Some(seconds) = timeout_s {
        if seconds == 0 {
            return Err("timeout_s is 0: give the seconds to wait for a decision, e.g. 300".into());
        }
        args.push(format!("--timeout={seconds}s"));
    }
    for (name, value) in env {
        crate::request::parse_env_assignment(&format!("{name}={value}"))
            .map_err(|e| format!("env: {e}"))?;
        args.push(format!("--env={name}={value}"));
    }
    let cwd = match cwd {
        Some(dir) if !Path::new(dir).is_absolute() => {
            return Err(format!(
                "cwd {dir:?} is not an absolute path; give the full path of the directory"
            ));
        }
        Some(dir) => Some(PathBuf::from(dir)),
        None => None,
    };
    args.push("--".to_owned());
    args.extend(argv.iter().cloned());
    Ok(RunArgs { args, cwd })
}

/// Where the run is, as the progress notifications say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Asking,
    Waiting { reference: String, expires_at: u64 },
    Running { approver: String, grant: String },
}

impl Phase {
    pub fn from_milestones(milestones: &[Milestone]) -> Phase {
        let mut phase = Phase::Asking;
        for m in milestones {
            match m {
                Milestone::Waiting {
                    reference,
                    expires_at,
                } => {
                    phase = Phase::Waiting {
                        reference: reference.clone(),
                        expires_at: *expires_at,
                    }
                }
                Milestone::Approved {
                    approver, grant, ..
                } => {
                    phase = Phase::Running {
                        approver: approver.clone(),
                        grant: grant.clone(),
                    }
                }
                Milestone::Denied { .. } => {}
            }
        }
        phase
    }

    /// The progress message, at `now` (Unix seconds).
    pub fn message(&self, now: u64) -> String {
        match self {
            Phase::Asking => "asking for approval".into(),
            Phase::Waiting {
                reference,
                expires_at,
            } => {
                let left = expires_at.saturating_sub(now);
                format!(
                    "waiting for approval of request {reference}, {}:{:02} left",
                    left / 60,
                    left % 60
                )
            }
            Phase::Running { approver, grant } => {
                format!("approved by {approver} ({grant}); running")
            }
        }
    }
}

/// How a run ended, as far as its parent can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub milestones: Vec<Milestone>,
    pub status: ExitStatus,
    /// The call was cancelled (and the run signalled).
    pub cancelled: bool,
    pub stderr: String,
}

/// The outcome, exit code, approver and note of an ended run.
pub fn classify(ended: &Ended) -> (Outcome, Option<i32>, Option<String>, Option<String>) {
    let approved = ended.milestones.iter().find_map(|m| match m {
        Milestone::Approved { approver, .. } => Some(approver.clone()),
        _ => None,
    });
    let denied = ended.milestones.iter().find_map(|m| match m {
        Milestone::Denied { approver, note } => Some((approver.clone(), note.clone())),
        _ => None,
    });
    let code = ended.status.code();
    if let Some(approver) = approved {
        // The elevator refuses with 77 or 78 and a line of its own on stderr; past that point
        // the status is the command's.
        let elevator_refused = matches!(code, Some(77 | 78))
            && ended
                .stderr
                .lines()
                .any(|l| l.starts_with("assent-elevate: "));
        if elevator_refused {
            return (Outcome::Refused, None, Some(approver), None);
        }
        let exit = code.or_else(|| ended.status.signal().map(|s| 128 + s));
        return (Outcome::Ran, exit, Some(approver), None);
    }
    if let Some((approver, note)) = denied {
        return (Outcome::Denied, None, Some(approver), note);
    }
    if ended.cancelled {
        return (Outcome::Withdrawn, None, None, None);
    }
    let outcome = match code {
        Some(75) => Outcome::TimedOut,
        Some(130) | None => Outcome::Withdrawn,
        _ => Outcome::Refused,
    };
    (outcome, None, None, None)
}

/// What was read of one stream so far: the first bytes, and whether more came.
#[derive(Debug, Default)]
struct Captured {
    kept: Vec<u8>,
    truncated: bool,
}

type Shared = Arc<Mutex<Captured>>;

/// Read `from` to its end into `into`, keeping the first `limit` bytes.
async fn capture(mut from: impl AsyncRead + Unpin, limit: usize, into: Shared) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut captured = into.lock().unwrap_or_else(|e| e.into_inner());
        let room = limit - captured.kept.len();
        if n > room {
            captured.truncated = true;
        }
        captured.kept.extend_from_slice(&buf[..n.min(room)]);
    }
}

/// Start reading `from` in the background.
fn start_capture(from: impl AsyncRead + Unpin + Send + 'static) -> (JoinHandle<()>, Shared) {
    let shared = Shared::default();
    (
        tokio::spawn(capture(from, OUTPUT_LIMIT, shared.clone())),
        shared,
    )
}

/// What was read once the stream ended, or [`DRAIN_GRACE`] after the run did (a process the
/// command left in the background may hold the pipe open for ever).
async fn finish_capture((task, shared): (JoinHandle<()>, Shared)) -> (Vec<u8>, bool) {
    if tokio::time::timeout(DRAIN_GRACE, task).await.is_err() {
        // Dropping the handle does not stop the reader; it ends with the pipe.
    }
    let captured = std::mem::take(&mut *shared.lock().unwrap_or_else(|e| e.into_inner()));
    (captured.kept, captured.truncated)
}

/// Bytes as text, without a character cut in half at the end.
pub fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// What a running call needs from the MCP side: a way to tell the client where it is, and
/// whether the client has cancelled.
pub trait Watcher {
    /// Say `message`; called when the phase changes and every few seconds.
    fn progress(&mut self, message: String) -> impl Future<Output = ()> + Send;
    /// Resolves when the call is cancelled.
    fn cancelled(&self) -> impl Future<Output = ()> + Send;
}

/// How often the report is read, and how often an unchanged phase is said again.
const POLL: Duration = Duration::from_millis(250);
const REPEAT: Duration = Duration::from_secs(5);

/// Run `assent run ARGS` (this very binary) and wait for it, telling `watcher` where it is.
pub async fn run(
    shim: &Path,
    report_file: &Path,
    args: &RunArgs,
    watcher: &mut impl Watcher,
) -> Result<RunResult, String> {
    std::fs::write(report_file, b"")
        .map_err(|e| format!("cannot create {}: {e}", report_file.display()))?;
    let mut command = Command::new(shim);
    command
        .args(&args.args)
        .env(REPORT_ENV, report_file)
        .env_remove("ASSENT_REASON")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = &args.cwd {
        command.current_dir(dir);
    }
    let mut child = command.spawn().map_err(|e| match &args.cwd {
        Some(dir) => format!("cannot start {} in {}: {e}", shim.display(), dir.display()),
        None => format!("cannot start {}: {e}", shim.display()),
    })?;
    let stdout = start_capture(child.stdout.take().expect("stdout is piped"));
    let stderr = start_capture(child.stderr.take().expect("stderr is piped"));

    let (status, cancelled) = watch(&mut child, report_file, watcher).await;
    let (out, out_cut) = finish_capture(stdout).await;
    let (err, err_cut) = finish_capture(stderr).await;
    let milestones = report::parse(&std::fs::read_to_string(report_file).unwrap_or_default());
    let _ = std::fs::remove_file(report_file);
    let ended = Ended {
        milestones,
        status,
        cancelled,
        stderr: text(&err),
    };
    let (outcome, exit_code, approver, note) = classify(&ended);
    Ok(RunResult {
        outcome,
        exit_code,
        stdout: text(&out),
        stderr: ended.stderr,
        truncated: out_cut || err_cut,
        approver,
        note,
    })
}

/// Wait for the child, saying each phase; on cancel, SIGTERM it (SIGKILL after a grace).
async fn watch(
    child: &mut Child,
    report_file: &Path,
    watcher: &mut impl Watcher,
) -> (ExitStatus, bool) {
    let mut said: Option<(Phase, Instant)> = None;
    let mut poll = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            status = child.wait() => {
                return (status.unwrap_or_else(|_| ExitStatus::from_raw(1 << 8)), false);
            }
            () = watcher.cancelled() => break,
            _ = poll.tick() => {
                let text = std::fs::read_to_string(report_file).unwrap_or_default();
                let phase = Phase::from_milestones(&report::parse(&text));
                let due = match &said {
                    None => true,
                    Some((last, at)) => *last != phase || at.elapsed() >= REPEAT,
                };
                if due {
                    watcher.progress(phase.message(assent_common::clock::now())).await;
                    said = Some((phase, Instant::now()));
                }
            }
        }
    }
    // Cancelled: the run withdraws its request, or its monitor passes the signal on.
    if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let status = match tokio::time::timeout(TERM_GRACE, child.wait()).await {
        Ok(Ok(status)) => status,
        _ => {
            let _ = child.start_kill();
            child
                .wait()
                .await
                .unwrap_or_else(|_| ExitStatus::from_raw(9))
        }
    };
    (status, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    #[test]
    fn the_call_becomes_an_assent_run_command_line() {
        let env = BTreeMap::from([("LANG".to_owned(), "C".to_owned())]);
        let args = run_args(
            &["apt-get".into(), "install".into(), "-y".into(), "jq".into()],
            "install jq for the build",
            Some("root"),
            Some("/srv"),
            &env,
            Some("timed:30m"),
            Some(90),
        )
        .unwrap();
        assert_eq!(
            args.args,
            [
                "run",
                "--as=root",
                "--reason=install jq for the build",
                "--grant=timed:30m",
                "--timeout=90s",
                "--env=LANG=C",
                "--",
                "apt-get",
                "install",
                "-y",
                "jq"
            ]
        );
        assert_eq!(args.cwd.as_deref(), Some(Path::new("/srv")));
        // Options in argv belong to the program, after `--`.
        let args = run_args(&["--as".into()], "x", None, None, &no_env(), None, None).unwrap();
        assert_eq!(args.args, ["run", "--reason=x", "--", "--as"]);
    }

    #[test]
    fn values_that_look_like_options_stay_values() {
        use crate::cli::{Command, Invocation};
        let env = BTreeMap::from([("X".to_owned(), "--as=postgres".to_owned())]);
        let args = run_args(
            &["id".into(), "-u".into()],
            "--as postgres",
            Some("root"),
            None,
            &env,
            None,
            None,
        )
        .unwrap();
        let words = std::iter::once("assent".into())
            .chain(args.args.iter().map(Into::into))
            .collect();
        match crate::cli::parse(words) {
            Ok(Some(Invocation::Command(Command::Run(run)))) => {
                assert_eq!(run.reason.as_deref(), Some("--as postgres"));
                assert_eq!(run.run_as, "root");
                assert_eq!(run.env, [("X".to_owned(), "--as=postgres".to_owned())]);
                assert_eq!(run.command, ["id", "-u"].map(std::ffi::OsString::from));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_calls_get_one_line_saying_what_to_give() {
        let id = ["id".to_owned()];
        for (got, needle) in [
            (
                run_args(&[], "r", None, None, &no_env(), None, None),
                "argv is empty",
            ),
            (
                run_args(&id, " ", None, None, &no_env(), None, None),
                "reason is empty",
            ),
            (
                run_args(&id, "r", None, Some("tmp"), &no_env(), None, None),
                "not an absolute path",
            ),
            (
                run_args(&id, "r", None, None, &no_env(), Some("forever"), None),
                "grant:",
            ),
            (
                run_args(&id, "r", None, None, &no_env(), None, Some(0)),
                "timeout_s is 0",
            ),
            (
                run_args(
                    &id,
                    "r",
                    None,
                    None,
                    &BTreeMap::from([("1X".to_owned(), "y".to_owned())]),
                    None,
                    None,
                ),
                "not a variable name",
            ),
        ] {
            let why = got.unwrap_err();
            assert!(why.contains(needle), "{why}");
            assert!(!why.contains('\n'), "{why}");
        }
    }

    fn ended(milestones: Vec<Milestone>, status: i32, cancelled: bool, stderr: &str) -> Ended {
        Ended {
            milestones,
            status: ExitStatus::from_raw(status),
            cancelled,
            stderr: stderr.into(),
        }
    }

    fn approved() -> Milestone {
        Milestone::Approved {
            approver: "alice".into(),
            grant: "once".into(),
            cached: false,
        }
    }

    #[test]
    fn outcomes_follow_the_milestones_then_the_status() {
        let exit = |code: i32| code << 8;
        // Past approval, the status is the command's, 77 included.
        assert_eq!(
            classify(&ended(vec![approved()], exit(77), false, "boom\n")),
            (Outcome::Ran, Some(77), Some("alice".into()), None)
        );
        // Killed by SIGTERM (15) after a cancel: as a shell reports it.
        assert_eq!(
            classify(&ended(vec![approved()], 15, true, "")).1,
            Some(143)
        );
        assert_eq!(
            classify(&ended(
                vec![approved()],
                exit(77),
                false,
                "assent-elevate: refused: no_new_privs\n"
            ))
            .0,
            Outcome::Refused
        );
        let denied = Milestone::Denied {
            approver: "alice".into(),
            note: Some("  not on prod: use staging ".into()),
        };
        assert_eq!(
            classify(&ended(vec![denied], exit(77), false, "")),
            (
                Outcome::Denied,
                None,
                Some("alice".into()),
                Some("  not on prod: use staging ".into())
            )
        );
        assert_eq!(
            classify(&ended(vec![], exit(75), false, "")).0,
            Outcome::TimedOut
        );
        assert_eq!(
            classify(&ended(vec![], exit(75), true, "")).0,
            Outcome::Withdrawn
        );
        assert_eq!(
            classify(&ended(vec![], exit(130), false, "")).0,
            Outcome::Withdrawn
        );
        for code in [64, 77, 78] {
            assert_eq!(
                classify(&ended(vec![], exit(code), false, "")).0,
                Outcome::Refused,
                "{code}"
            );
        }
    }

    #[test]
    fn the_phase_is_said_with_the_time_left() {
        let waiting = Milestone::Waiting {
            reference: "ab12-cd34".into(),
            expires_at: 1_000,
        };
        let phase = Phase::from_milestones(std::slice::from_ref(&waiting));
        assert_eq!(
            phase.message(748),
            "waiting for approval of request ab12-cd34, 4:12 left"
        );
        assert_eq!(
            Phase::from_milestones(&[waiting, approved()]).message(0),
            "approved by alice (once); running"
        );
        assert_eq!(
            Phase::from_milestones(&[]).message(0),
            "asking for approval"
        );
    }

    #[tokio::test]
    async fn output_is_cut_at_the_limit_and_says_so() {
        for (len, cut) in [(100, true), (64, false)] {
            let shared = Shared::default();
            capture(&vec![b'x'; len][..], 64, shared.clone()).await;
            let captured = shared.lock().unwrap();
            assert_eq!(
                (captured.kept.len(), captured.truncated),
                (64, cut),
                "{len}"
            );
        }
        // A character cut in half at the limit is dropped, not mangled.
        assert_eq!(text("aé".as_bytes()[..2].as_ref()), "a");
    }
}
