//! `assent mcp`: an MCP server on stdio, for agents whose shell cannot gain privileges (a
//! sandbox with no_new_privs, where no setuid program works) and for agents that should ask
//! with a structured reason and get a structured answer.
//!
//! The harness starts the server outside its command sandbox. Each `run_privileged` call runs
//! `assent run` itself as a child ([`call`]), so the flow is the command line's own; the child
//! tells the server its milestones through a report file ([`report`]). `list_grants` reads
//! `assent grants --json`.

pub mod call;
pub mod report;
pub mod tools;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use rmcp::ServiceExt as _;
use tokio::sync::mpsc;

use crate::failure::{Failure, Result};

/// How long calls still running when the client goes away get to end their runs.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Serve MCP on stdin and stdout until the client closes the session.
pub fn serve() -> Result<ExitCode> {
    let shim = std::env::current_exe()
        .map_err(|e| Failure::config(format!("cannot find this program's own path: {e}")))?;
    let reports = report_dir(&std::env::temp_dir())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::config(format!("cannot start the I/O runtime: {e}")))?;
    let served = runtime.block_on(async {
        let (in_flight, mut ended) = mpsc::channel::<()>(1);
        let server = tools::Assent::new(shim, reports.clone(), in_flight);
        let running = server
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| Failure::usage(format!("the MCP session did not start: {e}")))?;
        let _ = running.waiting().await;
        // The session's end cancelled every call: let each one end its run (withdraw the
        // request, or stop the command) before the process goes.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, ended.recv()).await;
        Ok(())
    });
    drop(runtime);
    let _ = std::fs::remove_dir_all(&reports);
    served.map(|()| ExitCode::SUCCESS)
}

/// A new directory only this user can enter, for the runs' report files.
fn report_dir(parent: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt as _;
    let pid = std::process::id();
    let mut last = None;
    for n in 0..100 {
        let dir = parent.join(format!("assent-mcp-{pid}-{n}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) => last = Some(e),
        }
    }
    Err(Failure::config(format!(
        "cannot make a directory in {} ({}); set TMPDIR to a directory you can write",
        parent.display(),
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}
