//! assent's approver console: shows agents' requests, signs the approver's decisions, keeps a
//! decision log, and (by default) hosts the relay that agents and consoles meet at.
//!
//! Built in the Elm style: [`app::App`] is plain state, [`update::update`] is the pure
//! transition function, [`views`] only draw, and the terminal, the relay and the files are
//! handled at the edge ([`relay_link`], [`notify`], [`log`], the binary's event loop).
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod command;
pub mod config;
pub mod console_id;
pub mod escape;
pub mod host;
pub mod keys;
pub mod log;
pub mod manual;
pub mod memory;
pub mod notify;
pub mod out;
pub mod relay_link;
pub mod risk;
pub mod scripted;
pub mod setup;
pub mod sign;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trust;
pub mod tui;
pub mod update;
pub mod views;
