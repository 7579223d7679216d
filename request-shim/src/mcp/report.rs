//! What an `assent run` started by `assent mcp` tells its parent, besides its exit status.
//!
//! The exit status alone is ambiguous: 77 is both a denial and a command that exited 77. So
//! the MCP server names a file in [`REPORT_ENV`], and the run appends one JSON line to it at
//! each milestone: waiting for a human, denied (with the human's note, word for word), and
//! approved (just before the elevator replaces the process). Without the variable nothing is
//! written. The file belongs to the agent, as the run does: nothing here is a privilege.

use std::io::Write as _;

use serde::{Deserialize, Serialize};

/// The environment variable naming the report file.
pub const REPORT_ENV: &str = "ASSENT_MCP_REPORT";

/// One milestone of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Milestone {
    /// The request reached the relay; a human is asked.
    Waiting {
        /// The request's reference, as the console shows it.
        reference: String,
        /// When the request expires (Unix seconds).
        expires_at: u64,
    },
    /// A human denied the request.
    Denied {
        approver: String,
        note: Option<String>,
    },
    /// Approved (or a cached grant applies): the elevator runs next.
    Approved {
        approver: String,
        grant: String,
        cached: bool,
    },
}

/// Append `milestone` to the report file, when there is one. Failures are ignored: the report
/// only informs, and the run must not change because nobody can read it.
pub fn note(milestone: &Milestone) {
    let Some(path) = std::env::var_os(REPORT_ENV) else {
        return;
    };
    let Ok(line) = serde_json::to_string(milestone) else {
        return;
    };
    if let Ok(mut file) = std::fs::OpenOptions::new().append(true).open(path) {
        let _ = file.write_all(format!("{line}\n").as_bytes());
    }
}

/// The milestones in a report file's text; lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Milestone> {
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milestones_round_trip_as_lines() {
        let all = vec![
            Milestone::Waiting {
                reference: "ab12".into(),
                expires_at: 9,
            },
            Milestone::Denied {
                approver: "alice".into(),
                note: Some("not on prod: use staging".into()),
            },
            Milestone::Approved {
                approver: "alice".into(),
                grant: "once".into(),
                cached: false,
            },
        ];
        let text: String = all
            .iter()
            .map(|m| serde_json::to_string(m).unwrap() + "\n")
            .collect();
        assert!(text.starts_with("{\"event\":\"waiting\""), "{text}");
        assert_eq!(parse(&format!("{text}garbage\n")), all);
    }
}
