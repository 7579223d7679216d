//! `assent-elevate`: the setuid-root verifier and executor of assent (SPEC §6).
//!
//! It runs one command as another user only when a listed approver's signed decision covers
//! exactly that command, on this host, in that directory, for the calling user; it audits
//! every attempt, and starts the program in a child it stays behind to monitor (relaying
//! signals, recording how it ended). It has no network, no async runtime, and all
//! of its `unsafe` lives in [`sys`].
#![deny(unsafe_code)]

pub mod audit;
pub mod checks;
pub mod config;
pub mod exec;
pub mod identity;
pub mod ledger;
pub mod limits;
pub mod lock;
pub mod monitor;
pub mod process;
pub mod program;
pub mod run;
pub mod sys;
pub mod time;
pub mod trusted;

#[cfg(test)]
mod testutil;

/// A check failed, or the caller may not do this.
pub const EXIT_REFUSED: i32 = 77;
/// The configuration is bad or unsafe.
pub const EXIT_CONFIG: i32 = 78;
/// The command line is wrong.
pub const EXIT_USAGE: i32 = 64;
/// Every check passed, but the program could not be started.
pub const EXIT_EXEC_FAILED: i32 = 126;
