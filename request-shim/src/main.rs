//! `assent`: the agent's side of assent. It asks a human to approve one command through the
//! relay, then hands the signed approval to the setuid elevator, which runs exactly that command.
//!
//! Also reachable as `sudo` (a symlink), for agents that type `sudo` by habit.
#![forbid(unsafe_code)]

#[macro_use]
mod output;

mod cache;
mod cli;
mod commands;
mod config;
mod elevate;
mod failure;
mod keys;
mod manual;
mod mcp;
pub mod preflight;
mod program;
mod progress;
mod request;
mod run;
mod status;
mod statuses;
mod sudo;
mod wait;
mod workdir;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use assent_protocol::Grant;

use crate::cli::{Command, Invocation};
use crate::failure::Result;
use crate::output::Out;
use crate::run::RunPlan;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let invoked_as = args
        .first()
        .map(Path::new)
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or("assent");
    let result = if invoked_as == "sudo" {
        sudo_main(&args[1..])
    } else {
        assent_main(args)
    };
    result.unwrap_or_else(|failure| failure.report())
}

fn assent_main(args: Vec<OsString>) -> Result<ExitCode> {
    let command = match cli::parse(args)? {
        None => return Ok(ExitCode::SUCCESS),
        Some(Invocation::Generate(kind)) => {
            Out::stdout().text(manual::generate(kind));
            return Ok(ExitCode::SUCCESS);
        }
        Some(Invocation::Command(command)) => command,
    };
    match command {
        Command::Run(args) => match run::run(RunPlan {
            run_as: args.run_as,
            reason: args.reason,
            grant: args.grant.grant,
            ttl_s: args.grant.ttl_s,
            env: args.env,
            timeout_s: args.timeout,
            relay: args.relay,
            command: args.command,
            never_ask: false,
        })? {},
        Command::Keygen { name, force } => commands::keygen(name, force),
        Command::Grants { json } => commands::grants(json),
        Command::Status => status::status(),
        Command::Mcp => mcp::serve(),
    }
}

fn sudo_main(args: &[OsString]) -> Result<ExitCode> {
    match sudo::parse(args)? {
        sudo::SudoCommand::Help => {
            outln!(
                Out::stdout(),
                "usage: {}\n       sudo -l | -v | -k | -K\n\nThis sudo is assent: each command waits for a human's approval on their console.\nThe reason shown to the approver comes from ASSENT_REASON. -n never asks: it runs on a\nlive cached grant, else exits 1 at once. -l lists the live grants; {} do nothing.\nSee `assent --help` for exit statuses.",
                sudo::USAGE,
                sudo::NO_OPS
            );
            Ok(ExitCode::SUCCESS)
        }
        sudo::SudoCommand::Version => {
            outln!(
                Out::stdout(),
                "assent {} (sudo entry)",
                env!("CARGO_PKG_VERSION")
            );
            Ok(ExitCode::SUCCESS)
        }
        sudo::SudoCommand::NoOp => Ok(ExitCode::SUCCESS),
        sudo::SudoCommand::List => commands::live_grants(),
        sudo::SudoCommand::Run(s) => match run::run(RunPlan {
            run_as: s.user.unwrap_or_else(|| "root".into()),
            reason: std::env::var("ASSENT_REASON")
                .ok()
                .filter(|r| !r.is_empty()),
            grant: Grant::Once,
            ttl_s: None,
            env: s.env,
            timeout_s: None,
            relay: None,
            command: s.command,
            never_ask: s.non_interactive,
        })? {},
    }
}
