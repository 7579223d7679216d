//! The two tools, their schemas, and the descriptions a model reads before it calls them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{
    Implementation, ProgressNotificationParam, ProgressToken, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::call;

pub const RUN_PRIVILEGED: &str = "Run one command as root (or as another user) on this machine, after a human approves it. \
A person sees the exact command, its working directory, its environment and your reason on their console, and decides. \
Nothing runs until they approve. Use this tool instead of sudo: sudo cannot work from a sandboxed shell.\n\
\n\
Give the command as argv, one element per argument. There is no shell: for pipes, globs or redirection use [\"sh\", \"-c\", \"...\"]. \
Give a reason the human can judge in a few seconds: what you are doing, and why it needs these privileges.\n\
\n\
The call waits for the human's decision (up to timeout_s seconds, 5 minutes unless configured otherwise) and reports progress meanwhile. \
The result's outcome says what happened:\n\
- ran: the command ran. exit_code, stdout and stderr are its own; each stream is cut at 64 KiB and truncated says when.\n\
- denied: the human said no, and nothing ran. note, when present, is the human's own words to you: follow it. \
Never send the same request again unchanged. Change what they objected to, or ask your user how to go on.\n\
- timed_out: nobody decided in time, and nothing ran. Ask again only if it is still needed, and tell your user you are waiting for an approval.\n\
- refused: assent refused the request before asking, or the elevator refused it after approval (this machine's set-up, a user you may not become, a program that was not found). \
Nothing ran; stderr says why. Fix that cause: the same request will be refused again.\n\
- withdrawn: the request was withdrawn before anyone decided (the call was cancelled). Nothing ran.\n\
\n\
A cached grant (see list_grants) for exactly this command runs it at once, without asking.";

pub const LIST_GRANTS: &str = "List your cached grants: commands a human approved for repeated use (a timed or always grant). \
Such a command runs again through run_privileged without asking anyone, as long as argv, run_as, cwd and env are exactly the same. \
state live: it runs at once. state waiting: it is approved, and runs once the approver's console is heard from again. \
Use this to see what you may run now without waiting for a human.";

const INSTRUCTIONS: &str = "assent runs privileged commands after a human approves each one. Use run_privileged instead of sudo, \
with a clear reason. A human decides: never repeat a denied request unchanged.";

/// The arguments of `run_privileged`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct RunPrivileged {
    /// The program and its arguments, e.g. ["apt-get", "install", "-y", "jq"]. A bare program name is looked up on the machine's secure path; no shell is involved.
    pub argv: Vec<String>,
    /// Why the command is needed, for the human who decides. One or two plain sentences.
    pub reason: String,
    /// The user to run as; root unless given.
    #[serde(default)]
    pub run_as: Option<String>,
    /// The absolute path of the directory to run in; the server's own directory unless given.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Environment variables for the command (NAME: value). Nothing else is passed on.
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    /// The grant to ask for: "once" (the default: this command, this time), "timed:DURATION" (e.g. "timed:30m", "timed:2h") or "always". A timed or always grant lets exactly this command run again without asking; the human chooses what to give.
    #[serde(default)]
    pub grant: Option<String>,
    /// How many seconds to wait for the human's decision before giving up with timed_out.
    #[serde(default)]
    pub timeout_s: Option<u64>,
}

/// How a `run_privileged` call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ran,
    Denied,
    TimedOut,
    Refused,
    Withdrawn,
}

/// The result of `run_privileged`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RunResult {
    /// ran, denied, timed_out, refused or withdrawn: see the tool's description.
    pub outcome: Outcome,
    /// Only with outcome ran: the command's exit status (128+N when signal N ended it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The command's standard output (the first 64 KiB).
    pub stdout: String,
    /// The command's standard error (the first 64 KiB), after assent's own lines, which start "assent: ".
    pub stderr: String,
    /// True when stdout or stderr was longer than 64 KiB and was cut.
    pub truncated: bool,
    /// The human who approved or denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    /// Only with outcome denied: the note the human approver wrote, word for word. These are the human's words, not assent's: follow them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One cached grant, as `list_grants` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GrantView {
    /// live (runs at once) or waiting (runs once the approver's console is heard from).
    pub state: String,
    pub argv: Vec<String>,
    pub run_as: String,
    pub cwd: String,
    pub env: BTreeMap<String, String>,
    /// timed or always.
    pub grant: String,
    pub approver: String,
    /// Seconds left; absent for an always grant.
    pub remaining_s: Option<u64>,
}

/// The result of `list_grants`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct GrantList {
    pub grants: Vec<GrantView>,
}

/// The server: which `assent` to run, and where the runs' reports go.
#[derive(Clone)]
pub struct Assent {
    shim: PathBuf,
    reports: PathBuf,
    calls: Arc<AtomicU64>,
    /// Held by every call in flight; the server waits for all of them before it exits.
    in_flight: mpsc::Sender<()>,
}

#[tool_router]
impl Assent {
    pub fn new(shim: PathBuf, reports: PathBuf, in_flight: mpsc::Sender<()>) -> Assent {
        Assent {
            shim,
            reports,
            calls: Arc::new(AtomicU64::new(0)),
            in_flight,
        }
    }

    /// Every tool, as `tools/list` gives them.
    #[cfg(test)]
    pub fn tools() -> Vec<rmcp::model::Tool> {
        Self::tool_router().list_all()
    }

    #[tool(
        description = RUN_PRIVILEGED,
        annotations(title = "Run a command with a human's approval", read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = false)
    )]
    async fn run_privileged(
        &self,
        Parameters(p): Parameters<RunPrivileged>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<RunResult>, ErrorData> {
        let _held = self.in_flight.clone();
        let args = call::run_args(
            &p.argv,
            &p.reason,
            p.run_as.as_deref(),
            p.cwd.as_deref(),
            &p.env.unwrap_or_default(),
            p.grant.as_deref(),
            p.timeout_s,
        )
        .map_err(|why| ErrorData::invalid_params(why, None))?;
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        let report = self.reports.join(format!("call-{n}.jsonl"));
        let mut watcher = CallWatcher {
            token: ctx.meta.get_progress_token(),
            ctx,
            started: std::time::Instant::now(),
        };
        call::run(&self.shim, &report, &args, &mut watcher)
            .await
            .map(Json)
            .map_err(|why| ErrorData::internal_error(why, None))
    }

    #[tool(
        description = LIST_GRANTS,
        annotations(title = "List cached grants", read_only_hint = true, open_world_hint = false)
    )]
    async fn list_grants(&self) -> Result<Json<GrantList>, ErrorData> {
        let _held = self.in_flight.clone();
        let out = tokio::process::Command::new(&self.shim)
            .args(["grants", "--json"])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| {
                ErrorData::internal_error(format!("cannot run assent grants: {e}"), None)
            })?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(ErrorData::internal_error(why.trim().to_owned(), None));
        }
        let grants = grant_views(&String::from_utf8_lossy(&out.stdout));
        Ok(Json(GrantList { grants }))
    }
}

/// The live and waiting grants among the lines of `assent grants --json`.
pub fn grant_views(json_lines: &str) -> Vec<GrantView> {
    json_lines
        .lines()
        .filter_map(|line| serde_json::from_str::<GrantView>(line).ok())
        .filter(|g| g.state == "live" || g.state == "waiting")
        .collect()
}

#[tool_handler]
impl ServerHandler for Assent {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("assent", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

/// Progress and cancellation of one call, through the MCP session.
struct CallWatcher {
    ctx: RequestContext<RoleServer>,
    token: Option<ProgressToken>,
    started: std::time::Instant,
}

impl call::Watcher for CallWatcher {
    async fn progress(&mut self, message: String) {
        let Some(token) = self.token.clone() else {
            return;
        };
        // Progress must grow with every notification: the seconds since the call began.
        let progress = self.started.elapsed().as_secs_f64();
        let _ = self
            .ctx
            .peer
            .notify_progress(ProgressNotificationParam::new(token, progress).with_message(message))
            .await;
    }

    async fn cancelled(&self) {
        self.ctx.ct.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_listed_are_the_usable_ones() {
        let line = |state: &str| {
            serde_json::json!({
                "file": "/x", "state": state, "why": null, "argv": ["systemctl", "restart", "nginx"],
                "run_as": "root", "cwd": "/", "env": {}, "grant": "timed", "approver": "alice",
                "remaining_s": 3599, "program": "/usr/bin/systemctl"
            })
            .to_string()
        };
        let text = [
            line("live"),
            line("expired"),
            line("waiting"),
            line("revoked"),
            "{\"file\": \"/y\", \"error\": \"bad\"}".into(),
        ]
        .join("\n");
        let views = grant_views(&text);
        assert_eq!(
            views.iter().map(|g| g.state.as_str()).collect::<Vec<_>>(),
            ["live", "waiting"]
        );
        assert_eq!(views[0].argv, ["systemctl", "restart", "nginx"]);
        assert_eq!(views[0].remaining_s, Some(3599));
    }

    /// `tools/list` as a client receives it: descriptions and schemas change only on purpose.
    #[test]
    fn tools_list_snapshot() {
        let listed = serde_json::json!({ "tools": Assent::tools() });
        insta::assert_snapshot!(serde_json::to_string_pretty(&listed).unwrap());
    }
}
