//! `assent-bench`: helpers for `bench/run` (never shipped).
//!
//! - `assent-bench mint --user NAME --count N --config FILE --tokens FILE [--program PATH]`
//!   makes a fresh approver and agent key, writes an elevator config that trusts the approver
//!   and lets NAME run as root (and the host id the grants name, `host-id` beside it), and
//!   writes N distinct approved `once` grant tokens for `PROGRAM` (one per line), each usable
//!   exactly once.
//! - `assent-bench time --runs N [--warmup W] [--tokens FILE] -- PROGRAM [ARGS...]` runs the
//!   command W + N times in a row, replacing an argument `{token}` with the next token line,
//!   and prints the timings of the N measured runs as `median_us=… mean_us=… min_us=…
//!   p90_us=… cpu_us=… runs=N` (`cpu_us`: mean user + system CPU time of one run). Any run
//!   that fails stops it with the command's stderr.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use assent_protocol::PrivateKey;
use assent_tests::grants::{DecisionBuilder, RequestBuilder, TokenBuilder};
use assent_tests::sandbox::{DEFAULT_HOST_ID, ElevatorConfig};
use assent_tests::users::TestUser;
use clap::{Parser, Subcommand};

/// Benchmark helpers: mint single-use grants, time a command many times.
#[derive(Parser, Debug)]
#[command(name = "assent-bench")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Write an elevator config and N approved once-grant tokens.
    Mint {
        /// The requesting user (must exist).
        #[arg(long)]
        user: String,
        /// How many tokens.
        #[arg(long)]
        count: usize,
        /// Where to write elevator.toml.
        #[arg(long)]
        config: PathBuf,
        /// Where to write the tokens, one a line.
        #[arg(long)]
        tokens: PathBuf,
        /// The program the grants are for.
        #[arg(long, default_value = "/bin/true")]
        program: PathBuf,
    },
    /// Run a command many times and print its median and other timings.
    Time {
        /// Measured runs.
        #[arg(long)]
        runs: usize,
        /// Unmeasured runs first.
        #[arg(long, default_value_t = 0)]
        warmup: usize,
        /// Tokens to substitute for `{token}`, one a line, each used once.
        #[arg(long)]
        tokens: Option<PathBuf>,
        /// The command.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Mint {
            user,
            count,
            config,
            tokens,
            program,
        } => mint(&user, count, &config, &tokens, &program),
        Cmd::Time {
            runs,
            warmup,
            tokens,
            command,
        } => time(runs, warmup, tokens.as_deref(), &command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("assent-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn mint(
    user: &str,
    count: usize,
    config: &std::path::Path,
    tokens: &std::path::Path,
    program: &std::path::Path,
) -> Result<(), String> {
    let requester = TestUser::lookup(user)
        .ok_or_else(|| format!("no user {user:?}; create it or pass another --user"))?;
    let alice = PrivateKey::generate("alice");
    let agent = PrivateKey::generate("bench-agent");
    let text = ElevatorConfig::new()
        .approver("alice", &alice.public().to_openssh("alice"))
        .requester(&requester.name, &["root"])
        .to_toml();
    std::fs::write(config, text).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let host_id = config.with_file_name("host-id");
    std::fs::write(&host_id, DEFAULT_HOST_ID.to_file())
        .map_err(|e| format!("cannot write {}: {e}", host_id.display()))?;
    let argv0 = program.to_string_lossy().into_owned();
    let mut out = String::new();
    for _ in 0..count {
        let request = RequestBuilder::new(program, &[&argv0])
            .requester(&requester)
            .agent("bench-agent")
            .sign(&agent);
        let decision = DecisionBuilder::approve(&request).sign(&alice);
        out += &TokenBuilder::new(&request, &decision).encode();
        out.push('\n');
    }
    std::fs::write(tokens, out).map_err(|e| format!("cannot write {}: {e}", tokens.display()))
}

fn time(
    runs: usize,
    warmup: usize,
    tokens: Option<&std::path::Path>,
    command: &[String],
) -> Result<(), String> {
    if runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let tokens: Vec<String> = match tokens {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .lines()
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    };
    let needs_token = command.iter().any(|a| a == "{token}");
    if needs_token && tokens.len() < runs + warmup {
        return Err(format!(
            "{} tokens for {} runs; mint at least --runs + --warmup",
            tokens.len(),
            runs + warmup
        ));
    }
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    let mut cpu_before = Duration::ZERO;
    for i in 0..runs + warmup {
        if i == warmup {
            cpu_before = children_cpu()?;
        }
        let token = tokens.get(i).map_or("", String::as_str);
        let args = command[1..]
            .iter()
            .map(|a| if a == "{token}" { token } else { a.as_str() });
        let started = Instant::now();
        let out = Command::new(&command[0])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", command[0]))?;
        let took = started.elapsed();
        if !out.status.success() {
            return Err(format!(
                "run {} of {:?} failed ({}): {}",
                i + 1,
                command.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        if i >= warmup {
            times.push(took);
        }
    }
    let cpu = children_cpu()?.saturating_sub(cpu_before) / runs as u32;
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = times.iter().map(|d| us(*d)).sum::<f64>() / times.len() as f64;
    let median = if times.len() % 2 == 1 {
        us(times[times.len() / 2])
    } else {
        (us(times[times.len() / 2 - 1]) + us(times[times.len() / 2])) / 2.0
    };
    let p90 = us(times[(times.len() * 9 / 10).min(times.len() - 1)]);
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "median_us={median:.1} mean_us={mean:.1} min_us={:.1} p90_us={p90:.1} cpu_us={:.1} \
         runs={runs}",
        us(times[0]),
        us(cpu)
    )
    .map_err(|e| format!("cannot write results: {e}"))
}

/// User plus system CPU time of all waited-for children so far. The mean over the measured
/// runs says how much of a command's wall time was work rather than waiting (for the disk,
/// or for the other core).
fn children_cpu() -> Result<Duration, String> {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map_err(|e| format!("cannot read the children's CPU time: {e}"))?;
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    Ok(tv(usage.user_time()) + tv(usage.system_time()))
}
