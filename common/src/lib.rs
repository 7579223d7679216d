//! What several of assent's binaries share that is not protocol, written once.
//!
//! - [`elevator_config`]: the schema of `/etc/assent/elevator.toml` and its strict parser.
//!   The elevator loads the file through its own trusted walk; the shim's pre-flight and the
//!   console's "would be refused" flags parse the same text with the same code, so what they
//!   say is what the elevator will do.
//! - [`access`]: who may enter a directory, and what makes a root-owned file safe, judged
//!   from mode bits as the elevator judges them, so the shim can tell before it asks.
//! - [`paths`]: the fixed paths of an install (elevator config, host id, ledger, audit log),
//!   fixed at build time, so every binary reads and names the same files.
//! - [`duration`] and [`grant`]: durations (`90s`, `1h30m`) and grants (`timed:15m`) as
//!   people type and read them, one spelling for every command line and screen.
//! - [`clock`]: Unix seconds, as payloads state time.
//! - [`text`]: which characters from someone else's text may reach a terminal as themselves.
//!
//! It reads no files, and links nothing a setuid binary should not carry.
#![forbid(unsafe_code)]

pub mod access;
pub mod clock;
pub mod duration;
pub mod elevator_config;
pub mod grant;
pub mod paths;
pub mod text;
