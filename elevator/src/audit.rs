//! The audit log (SPEC §6, §13.4): one JSON line per attempt, refused ones too, and an `exit`
//! receipt after each command that ran (how it ended, its wall and CPU time), chained by
//! `prev` (the SHA-256 of the previous line, 64 zeros for the first) so that editing,
//! inserting or removing a line before the last is detectable by `assent-elevate audit verify`.
//! Lines cut from the end are not: the chain has nothing after them to break.
//!
//! Appending takes an exclusive `flock` (waiting at most [`crate::lock::LOCK_WAIT`]), reads the
//! last line to chain to, writes the new line with `O_APPEND` and `fdatasync`s it before
//! anything runs (an `exit` receipt is not synced: nothing waits on it, and the next line's
//! sync makes it durable). An append is all or nothing: if the write or the sync fails, the file is
//! truncated back to its size before, still under the lock, and the attempt is refused. (A line
//! cut short by a crash is left in place — verification names it — and the next line starts
//! after a newline.)
//!
//! Every line is bounded, whatever the caller sends: at most [`MAX_STRANGER_LINE`] bytes for a
//! caller that is not a listed requester, [`MAX_REQUESTER_LINE`] for a requester. Every field a
//! caller controls is cut to fit, by its length as JSON (a control byte is six bytes there), and
//! every argument costs at least its quotes and comma, so no number of empty arguments is free.
//! `argc` and `argv_bytes` always say how many arguments there were and how long.
//!
//! `program` and the arguments in `argv` are what the caller invoked (after check 9 they
//! equal what was approved). `argv[0]` is always the signed request's (`null` while no request
//! has been read): the elevator's own command line has no argv[0] for the program. The other
//! request fields are as the signed request states them, once the token has opened.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use assent_protocol::{OpenedGrant, sha256};
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use serde::Serialize;

use crate::checks::Refusal;
use crate::identity::Caller;
use crate::trusted::{Policy, Untrusted, WalkedDir, split_file_path};

/// `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The longest line a caller that is not a listed requester can cause (SPEC §13.4).
pub const MAX_STRANGER_LINE: usize = 4 * 1024;

/// The longest line a listed requester can cause (SPEC §13.4).
pub const MAX_REQUESTER_LINE: usize = 64 * 1024;

/// The longest last line the appender will read back to chain to.
const MAX_LINE_LEN: u64 = 8 * 1024 * 1024;

/// Room kept for the marker that says how many arguments were left out.
const MARKER_ROOM: usize = 96;

/// How long each field a caller controls may be, as JSON, in a line of either kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Budget {
    line: usize,
    detail: usize,
    program: usize,
    /// `cwd`, all `env_keys` together, and each of the request's names.
    field: usize,
}

const STRANGER: Budget = Budget {
    line: MAX_STRANGER_LINE,
    detail: 512,
    program: 512,
    field: 256,
};

const REQUESTER: Budget = Budget {
    line: MAX_REQUESTER_LINE,
    detail: 1024,
    program: 4096,
    field: 4096,
};

/// One attempt, as the elevator learns it. [`AuditLog::append`] turns it into one bounded line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// `exec` or `refused`.
    pub event: &'static str,
    /// The check that refused, `None` for `exec`.
    pub check: Option<&'static str>,
    pub detail: Option<String>,
    /// This host's name.
    pub host: String,
    /// The caller (real uid) and its name.
    pub user: Option<String>,
    pub uid: u32,
    /// PROGRAM as invoked.
    pub program: Vec<u8>,
    /// The arguments after PROGRAM, as invoked.
    pub args: Vec<Vec<u8>>,
    /// What the opened token says, once it has opened.
    pub grant: Option<GrantFacts>,
    budget: Budget,
}

/// The fields of an audit line that come from the grant token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantFacts {
    pub agent: String,
    /// Fingerprint of the key that signed the request.
    pub agent_key: String,
    pub run_as: String,
    pub program_sha256: String,
    pub argv0: String,
    pub cwd: String,
    pub env_keys: Vec<String>,
    pub request_id: String,
    pub decision_sha256: String,
    pub approver: String,
    /// Fingerprint of the key that signed the decision.
    pub approver_key: String,
    pub grant: String,
}

impl AuditRecord {
    /// What is known before the token is read: the caller, the host and the command line.
    /// Until [`AuditRecord::from_requester`], its line is bounded as a stranger's.
    pub fn start(caller: &Caller, host: &str, program: &[u8], args: &[Vec<u8>]) -> AuditRecord {
        AuditRecord {
            event: "refused",
            check: None,
            detail: None,
            host: host.to_owned(),
            user: caller.name.clone(),
            uid: caller.uid,
            program: program.to_vec(),
            args: args.to_vec(),
            grant: None,
            budget: STRANGER,
        }
    }

    /// The caller is a listed requester (check 2 passed): its lines may be longer.
    pub fn from_requester(&mut self) {
        self.budget = REQUESTER;
    }

    /// Add what the opened token says.
    pub fn add_grant(&mut self, grant: &OpenedGrant) {
        let request = &grant.request.payload;
        let decision = &grant.decision.payload;
        self.grant = Some(GrantFacts {
            agent: request.agent.clone(),
            agent_key: grant.request.signer.fingerprint().to_string(),
            run_as: request.run_as.clone(),
            program_sha256: request.program_sha256.to_hex(),
            argv0: request.argv.first().cloned().unwrap_or_default(),
            cwd: request.cwd.clone(),
            env_keys: request.env.iter().map(|(k, _)| k.to_owned()).collect(),
            request_id: request.id.to_hex(),
            decision_sha256: grant.decision.sha256.to_hex(),
            approver: decision.approver.clone(),
            approver_key: grant.decision.signer.fingerprint().to_string(),
            grant: decision.grant.as_str().to_owned(),
        });
    }

    pub fn refused(&mut self, refusal: &Refusal) {
        self.event = "refused";
        self.check = Some(refusal.check.name());
        self.detail = Some(refusal.detail.clone());
    }

    pub fn exec(&mut self) {
        self.event = "exec";
        self.check = None;
        self.detail = None;
    }

    /// The line for this record at `time` chained to `prev`, without its newline, at most
    /// as long as its budget allows. Field order is the order written; unknown values are
    /// `null`.
    pub fn line(&self, time: &str, prev: &str) -> Vec<u8> {
        let b = self.budget;
        let g = self.grant.as_ref();
        fn field(text: &str, b: Budget) -> Cow<'_, str> {
            fit(text, b.field)
        }
        let program = String::from_utf8_lossy(&self.program);
        let mut line = Line {
            time,
            event: self.event,
            check: self.check,
            detail: self.detail.as_deref().map(|d| fit(d, b.detail)),
            host: fit(&self.host, STRANGER.field),
            user: self.user.as_deref().map(|u| fit(u, STRANGER.field)),
            uid: self.uid,
            agent: g.map(|g| field(&g.agent, b)),
            agent_key: g.map(|g| g.agent_key.as_str()),
            run_as: g.map(|g| field(&g.run_as, b)),
            program: fit(&program, b.program),
            program_sha256: g.map(|g| g.program_sha256.as_str()),
            argv: vec![g.map(|g| field(&g.argv0, b))],
            argc: self.args.len() + 1,
            argv_bytes: self.args.iter().map(Vec::len).sum(),
            cwd: g.map(|g| field(&g.cwd, b)),
            env_keys: g.map(|g| fit_list(&g.env_keys, b.field)),
            request_id: g.map(|g| g.request_id.as_str()),
            decision_sha256: g.map(|g| g.decision_sha256.as_str()),
            approver: g.map(|g| field(&g.approver, b)),
            approver_key: g.map(|g| g.approver_key.as_str()),
            grant: g.map(|g| g.grant.as_str()),
            prev,
        };
        // What is left of the line's budget goes to the arguments, in order; each costs its
        // length as JSON plus its quotes and comma.
        let base = serialized(&line).len();
        let mut room = b.line.saturating_sub(base + MARKER_ROOM);
        let args: Vec<Cow<'_, str>> = self
            .args
            .iter()
            .map(|a| String::from_utf8_lossy(a))
            .collect();
        for (i, arg) in args.iter().enumerate() {
            let cost = json_len(arg) + 3;
            if cost <= room {
                room -= cost;
                line.argv.push(Some(fit(arg, usize::MAX)));
                continue;
            }
            // A prefix of the first argument that does not fit, if a useful one does.
            if room > 64 {
                line.argv.push(Some(fit(arg, room - 3)));
            }
            line.argv.push(Some(Cow::Owned(format!(
                "…[{} more arguments not logged]",
                args.len() - i - usize::from(room > 64)
            ))));
            break;
        }
        let text = serialized(&line);
        if text.len() <= b.line {
            return text;
        }
        // Cannot happen with the budgets above; if it did, the arguments go, not the bound.
        line.argv.truncate(1);
        line.argv
            .push(Some(Cow::Borrowed("…[arguments not logged]")));
        serialized(&line)
    }
}

/// How the command ended, as its monitor saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it.
    Killed(i32),
}

impl Ending {
    /// The status a shell reports: the exit status, or 128 + N for signal N.
    pub fn exit_code(self) -> i32 {
        match self {
            Ending::Exited(code) => code,
            Ending::Killed(signal) => 128 + signal,
        }
    }
}

/// The `exit` record that follows every `exec` record: a receipt saying how the command
/// ended and what it cost. Written by the monitor, whose caller cannot make it long: every
/// field is the elevator's own or was bounded in the `exec` line before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitReceipt {
    pub host: String,
    pub user: Option<String>,
    pub uid: u32,
    pub request_id: Option<String>,
    /// The command's process id.
    pub pid: i32,
    pub ending: Ending,
    /// From fork to the command's end.
    pub wall_ms: u64,
    /// User and system CPU time of the command and the descendants it waited for.
    pub cpu_ms: u64,
}

impl ExitReceipt {
    /// The receipt for the command that `record` (an `exec` record) started.
    pub fn for_exec(record: &AuditRecord, pid: i32, ending: Ending) -> ExitReceipt {
        ExitReceipt {
            host: record.host.clone(),
            user: record.user.clone(),
            uid: record.uid,
            request_id: record.grant.as_ref().map(|g| g.request_id.clone()),
            pid,
            ending,
            wall_ms: 0,
            cpu_ms: 0,
        }
    }

    /// The line for this receipt at `time` chained to `prev`, without its newline.
    pub fn line(&self, time: &str, prev: &str) -> Vec<u8> {
        let (status, signal) = match self.ending {
            Ending::Exited(code) => (Some(code), None),
            Ending::Killed(signal) => (None, Some(signal)),
        };
        serde_json::to_vec(&ExitLine {
            time,
            event: "exit",
            host: fit(&self.host, STRANGER.field),
            user: self.user.as_deref().map(|u| fit(u, STRANGER.field)),
            uid: self.uid,
            request_id: self.request_id.as_deref(),
            pid: self.pid,
            status,
            signal,
            wall_ms: self.wall_ms,
            cpu_ms: self.cpu_ms,
            prev,
        })
        .expect("an exit receipt serialises")
    }
}

/// The serialised form of an `exit` receipt; field order is the order written.
#[derive(Serialize)]
struct ExitLine<'a> {
    time: &'a str,
    event: &'a str,
    host: Cow<'a, str>,
    user: Option<Cow<'a, str>>,
    uid: u32,
    request_id: Option<&'a str>,
    pid: i32,
    /// The exit status, `null` when a signal ended it.
    status: Option<i32>,
    /// The signal that ended it, `null` when it exited.
    signal: Option<i32>,
    wall_ms: u64,
    cpu_ms: u64,
    prev: &'a str,
}

/// The serialised form of one line; field order is the order written.
#[derive(Serialize)]
struct Line<'a> {
    time: &'a str,
    event: &'a str,
    check: Option<&'a str>,
    detail: Option<Cow<'a, str>>,
    host: Cow<'a, str>,
    user: Option<Cow<'a, str>>,
    uid: u32,
    agent: Option<Cow<'a, str>>,
    agent_key: Option<&'a str>,
    run_as: Option<Cow<'a, str>>,
    program: Cow<'a, str>,
    program_sha256: Option<&'a str>,
    argv: Vec<Option<Cow<'a, str>>>,
    argc: usize,
    argv_bytes: usize,
    cwd: Option<Cow<'a, str>>,
    env_keys: Option<Vec<Cow<'a, str>>>,
    request_id: Option<&'a str>,
    decision_sha256: Option<&'a str>,
    approver: Option<Cow<'a, str>>,
    approver_key: Option<&'a str>,
    grant: Option<&'a str>,
    prev: &'a str,
}

fn serialized(line: &Line<'_>) -> Vec<u8> {
    serde_json::to_vec(line).expect("an audit line serialises")
}

/// How long `text` is inside a JSON string: `"` and `\\` take two bytes, control characters
/// two or six, everything else its UTF-8 length.
fn json_len(text: &str) -> usize {
    text.chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum()
}

/// `text`, or as much of its start as fits in `max` bytes of JSON with a note of what was
/// left out.
fn fit(text: &str, max: usize) -> Cow<'_, str> {
    if json_len(text) <= max {
        return Cow::Borrowed(text);
    }
    let note = |rest: usize| format!("…[{rest} more bytes not logged]");
    let room = max.saturating_sub(json_len(&note(text.len())));
    let mut used = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        let cost = json_len(c.encode_utf8(&mut [0; 4]));
        if used + cost > room {
            break;
        }
        used += cost;
        end = i + c.len_utf8();
    }
    Cow::Owned(format!("{}{}", &text[..end], note(text.len() - end)))
}

/// As many of `items` as fit in `max` bytes of JSON, then a note of how many were left out.
fn fit_list(items: &[String], max: usize) -> Vec<Cow<'_, str>> {
    let mut out = Vec::new();
    let mut used = 0;
    for (i, item) in items.iter().enumerate() {
        let cost = json_len(item) + 3;
        if used + cost > max {
            out.push(Cow::Owned(format!(
                "…[{} more not logged]",
                items.len() - i
            )));
            break;
        }
        used += cost;
        out.push(Cow::Borrowed(item.as_str()));
    }
    out
}

/// Whether an append waits until its line is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durable {
    Synced,
    Later,
}

/// The open audit log.
#[derive(Debug)]
pub struct AuditLog {
    file: File,
    path: PathBuf,
}

impl AuditLog {
    /// Open the log at the absolute `path` for appending, creating it (0600, in a 0700
    /// directory) if missing. Directories and file must be root-owned and not writable by
    /// group or others.
    pub fn open(path: &Path) -> Result<AuditLog, Untrusted> {
        Self::open_from(Path::new("/"), path)
    }

    pub fn open_from(anchor: &Path, path: &Path) -> Result<AuditLog, Untrusted> {
        let (dir, name) = split_file_path(path)?;
        let dir = WalkedDir::open_from(anchor, dir, Some(Mode::S_IRWXU), Policy::RootOwned)?;
        let flags = OFlag::O_RDWR | OFlag::O_APPEND | OFlag::O_CREAT;
        let file = dir.open_trusted_file(name, flags, Mode::S_IRUSR | Mode::S_IWUSR)?;
        Ok(AuditLog {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Chain `record` to the last line, append it and make it durable. `now` is unix seconds.
    pub fn append(&mut self, record: &mut AuditRecord, now: u64) -> Result<(), String> {
        self.append_line(|time, prev| record.line(time, prev), now, Durable::Synced)
    }

    /// Chain the `exit` receipt to the last line and append it, without waiting for the disk:
    /// the command has run, nothing waits on the receipt, and the next line's sync makes it
    /// durable. A crash before that loses the receipt; the `exec` line stays.
    pub fn append_receipt(&mut self, receipt: &ExitReceipt, now: u64) -> Result<(), String> {
        self.append_line(|time, prev| receipt.line(time, prev), now, Durable::Later)
    }

    fn append_line(
        &mut self,
        line: impl FnOnce(&str, &str) -> Vec<u8>,
        now: u64,
        durable: Durable,
    ) -> Result<(), String> {
        self.append_inner(line, now, durable)
            .map_err(|e| format!("cannot write the audit log {}: {e}", self.path.display()))
    }

    fn append_inner(
        &mut self,
        make_line: impl FnOnce(&str, &str) -> Vec<u8>,
        now: u64,
        durable: Durable,
    ) -> io::Result<()> {
        let lock = crate::lock::exclusive(self.file.try_clone()?, crate::lock::LOCK_WAIT)?;
        let file: &File = &lock;
        let size = file.metadata()?.len();
        let (prev, terminated) = match last_line(file, size)? {
            None => (GENESIS.to_owned(), true),
            Some((line, terminated)) => (sha256(&line).to_hex(), terminated),
        };
        let mut line = Vec::with_capacity(1024);
        if !terminated {
            line.push(b'\n');
        }
        line.extend(make_line(&crate::time::rfc3339_utc(now), &prev));
        line.push(b'\n');
        let written = (&*file).write_all(&line).and_then(|()| match durable {
            Durable::Synced => file.sync_data(),
            Durable::Later => Ok(()),
        });
        if let Err(e) = written {
            // All or nothing: take back whatever part of the line reached the file.
            let undone = file.set_len(size).and_then(|()| file.sync_data());
            return Err(match undone {
                Ok(()) => e,
                Err(u) => io::Error::other(format!("{e}, and taking the line back failed: {u}")),
            });
        }
        drop(lock);
        Ok(())
    }
}

/// The last line of the first `size` bytes of `file` without its newline, and whether it
/// ended with one. `None` for an empty file.
fn last_line(file: &File, size: u64) -> io::Result<Option<(Vec<u8>, bool)>> {
    if size == 0 {
        return Ok(None);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, size - 1)?;
    let terminated = last[0] == b'\n';
    let end = if terminated { size - 1 } else { size };
    // Read backwards in chunks until the newline before the last line (or the start).
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut pos = end;
    while pos > 0 {
        if end - pos >= MAX_LINE_LEN {
            return Err(io::Error::other(format!(
                "its last line is longer than {MAX_LINE_LEN} bytes; \
                 check it with `assent-elevate audit verify`"
            )));
        }
        let chunk_len = pos.min(64 * 1024);
        let mut chunk = vec![0u8; usize::try_from(chunk_len).map_err(io::Error::other)?];
        file.read_exact_at(&mut chunk, pos - chunk_len)?;
        pos -= chunk_len;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            chunk.drain(..=i);
            chunks.push(chunk);
            break;
        }
        chunks.push(chunk);
    }
    chunks.reverse();
    let tail = chunks.concat();
    Ok(Some((tail, terminated)))
}

/// Where the chain breaks: the first bad line (1-based) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub line: usize,
    pub why: String,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.why)
    }
}

/// Walk the chain; `Ok(number of lines)` when every line is intact and linked.
pub fn verify(reader: impl io::Read) -> Result<usize, ChainBreak> {
    let mut reader = BufReader::new(reader);
    let mut expected = GENESIS.to_owned();
    let mut line = Vec::new();
    let mut n = 0;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| ChainBreak {
                line: n + 1,
                why: format!("cannot read: {e}"),
            })?;
        if read == 0 {
            return Ok(n);
        }
        n += 1;
        let bad = |why: String| ChainBreak { line: n, why };
        if line.pop() != Some(b'\n') {
            return Err(bad(
                "incomplete line (no newline): a write was cut short".into()
            ));
        }
        let value: serde_json::Value = serde_json::from_slice(&line)
            .map_err(|e| bad(format!("not a JSON audit record: {e}")))?;
        let prev = value.get("prev").and_then(serde_json::Value::as_str);
        let event = value.get("event").and_then(serde_json::Value::as_str);
        if !matches!(event, Some("exec" | "refused" | "exit")) {
            return Err(bad(
                "not an audit record: event is not exec, refused or exit".into(),
            ));
        }
        match prev {
            Some(prev) if prev == expected => {}
            _ if n == 1 => {
                return Err(bad(
                    "prev is not 64 zeros: lines were removed from the start of the log".into(),
                ));
            }
            _ => {
                return Err(bad(format!(
                    "prev is not the SHA-256 of line {}: line {} was changed, or lines were \
                     removed or inserted before line {n}",
                    n - 1,
                    n - 1
                )));
            }
        }
        expected = sha256(&line).to_hex();
    }
}

/// Open the log read-only (checked like for appending) and verify it under a shared lock.
pub fn verify_file(path: &Path) -> Result<usize, String> {
    let (dir, name) = split_file_path(path).map_err(|e| e.0)?;
    let dir = WalkedDir::open(dir, Policy::RootOwned).map_err(|e| e.0)?;
    let file = dir
        .open_trusted_file(name, OFlag::O_RDONLY, Mode::empty())
        .map_err(|e| e.0)?;
    let lock = Flock::lock(file, FlockArg::LockShared)
        .map_err(|(_, e)| format!("cannot lock {}: {}", path.display(), e.desc()))?;
    verify(&*lock).map_err(|b| format!("{}: {b}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Check;
    use crate::testutil::{TempDir, caller, fixture};

    fn record(i: u32) -> AuditRecord {
        let mut r = AuditRecord::start(
            &caller(),
            "mini.local",
            b"/usr/bin/true",
            &[format!("{i}").into_bytes()],
        );
        r.exec();
        r
    }

    fn log(tmp: &TempDir) -> AuditLog {
        AuditLog::open_from(tmp.path(), &tmp.path().join("log/audit.jsonl")).unwrap()
    }

    fn lines(tmp: &TempDir) -> Vec<String> {
        std::fs::read_to_string(tmp.path().join("log/audit.jsonl"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn write_lines(tmp: &TempDir, lines: &[String]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(tmp.path().join("log/audit.jsonl"), text).unwrap();
    }

    fn verify_tmp(tmp: &TempDir) -> Result<usize, ChainBreak> {
        verify(File::open(tmp.path().join("log/audit.jsonl")).unwrap())
    }

    #[test]
    fn an_exit_receipt_follows_its_exec_line_in_the_chain() {
        let tmp = TempDir::new();
        let mut log = log(&tmp);
        let fx = fixture();
        let mut exec = record(1);
        exec.from_requester();
        exec.add_grant(&fx.opened());
        exec.exec();
        log.append(&mut exec, 1_763_770_000).unwrap();
        let receipt = ExitReceipt {
            wall_ms: 1500,
            cpu_ms: 20,
            ..ExitReceipt::for_exec(&exec, 4242, Ending::Killed(libc::SIGTERM))
        };
        log.append_receipt(&receipt, 1_763_770_002).unwrap();
        let exited = ExitReceipt::for_exec(&exec, 4243, Ending::Exited(3));
        log.append_receipt(&exited, 1_763_770_003).unwrap();
        let lines = lines(&tmp);
        let line: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(
            line,
            serde_json::json!({
                "time": "2025-11-22T00:06:42Z",
                "event": "exit",
                "host": "mini.local",
                "user": "openclaw",
                "uid": 1001,
                "request_id": fx.request.id.to_hex(),
                "pid": 4242,
                "status": null,
                "signal": 15,
                "wall_ms": 1500,
                "cpu_ms": 20,
                "prev": sha256(lines[0].as_bytes()).to_hex(),
            })
        );
        let line: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
        assert_eq!(
            (&line["status"], &line["signal"]),
            (&3.into(), &serde_json::Value::Null)
        );
        assert_eq!(verify_tmp(&tmp), Ok(3));
        assert_eq!(Ending::Killed(libc::SIGTERM).exit_code(), 143);
    }

    #[test]
    fn appended_lines_chain_and_verify() {
        let tmp = TempDir::new();
        let mut log = log(&tmp);
        for i in 0..5 {
            log.append(&mut record(i), 1_763_770_000 + u64::from(i))
                .unwrap();
        }
        let lines = lines(&tmp);
        assert_eq!(lines.len(), 5);
        let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(first["prev"], GENESIS);
        assert_eq!(first["time"], "2025-11-22T00:06:40Z");
        assert_eq!(first["event"], "exec");
        assert_eq!(first["check"], serde_json::Value::Null);
        assert_eq!(first["uid"], 1001);
        assert_eq!(first["user"], "openclaw");
        assert_eq!(
            first["argv"],
            serde_json::json!([null, "0"]),
            "no request was read: argv[0] is unknown"
        );
        assert_eq!(first["program"], "/usr/bin/true");
        assert_eq!(
            (first["argc"].as_u64(), first["argv_bytes"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!(
            first["request_id"],
            serde_json::Value::Null,
            "unknown is null"
        );
        let second: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(second["prev"], sha256(lines[0].as_bytes()).to_hex());
        assert_eq!(verify_tmp(&tmp), Ok(5));

        // Reopening continues the same chain.
        let mut again =
            AuditLog::open_from(tmp.path(), &tmp.path().join("log/audit.jsonl")).unwrap();
        again.append(&mut record(9), 1_763_770_100).unwrap();
        assert_eq!(verify_tmp(&tmp), Ok(6));
    }

    #[test]
    fn every_field_of_a_refusal_is_written_in_order() {
        let tmp = TempDir::new();
        let mut log = log(&tmp);
        let fx = fixture();
        let grant = fx.opened();
        let mut r = AuditRecord::start(
            &caller(),
            "mini.local",
            b"/usr/bin/apt-get",
            &[b"upgrade".to_vec()],
        );
        r.add_grant(&grant);
        r.refused(&Refusal::new(Check::Host, "this is not mini.local"));
        log.append(&mut r, 0).unwrap();
        let line = &lines(&tmp)[0];
        let keys: Vec<String> =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line)
                .unwrap()
                .keys()
                .cloned()
                .collect();
        let mut expected = [
            "time",
            "event",
            "check",
            "detail",
            "host",
            "user",
            "uid",
            "agent",
            "agent_key",
            "run_as",
            "program",
            "program_sha256",
            "argv",
            "argc",
            "argv_bytes",
            "cwd",
            "env_keys",
            "request_id",
            "decision_sha256",
            "approver",
            "approver_key",
            "grant",
            "prev",
        ];
        expected.sort_unstable();
        assert_eq!(
            keys, expected,
            "serde_json's map is sorted; every field is present"
        );
        assert!(line.starts_with(
            "{\"time\":\"1970-01-01T00:00:00Z\",\"event\":\"refused\",\"check\":\"host\","
        ));
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            v["argv"],
            serde_json::json!(["apt-get", "upgrade"]),
            "argv[0] as approved"
        );
        assert_eq!(v["agent_key"], fx.agent.public().fingerprint().to_string());
        assert_eq!(
            v["approver_key"],
            fx.approver.public().fingerprint().to_string()
        );
        assert_eq!(v["decision_sha256"], grant.decision.sha256.to_hex());
        assert_eq!(v["request_id"], fx.request.id.to_hex());
        assert_eq!(v["env_keys"], serde_json::json!(["DEBIAN_FRONTEND"]));
        assert_eq!(v["grant"], "once");
        assert_eq!(v["detail"], "this is not mini.local");
    }

    #[test]
    fn concurrent_appenders_keep_one_unbroken_chain() {
        let tmp = TempDir::new();
        drop(log(&tmp));
        let anchor = tmp.path().to_path_buf();
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let anchor = anchor.clone();
                std::thread::spawn(move || {
                    // Each thread opens the log itself, like separate elevator processes.
                    let mut log =
                        AuditLog::open_from(&anchor, &anchor.join("log/audit.jsonl")).unwrap();
                    for i in 0..20 {
                        log.append(&mut record(t * 100 + i), 100).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(verify_tmp(&tmp), Ok(320));
    }

    #[test]
    fn an_edited_line_is_detected() {
        let tmp = TempDir::new();
        let mut log = log(&tmp);
        for i in 0..4 {
            log.append(&mut record(i), 100).unwrap();
        }
        let mut edited = lines(&tmp);
        edited[1] = edited[1].replace("\"1\"]", "\"rm -rf /\"]");
        write_lines(&tmp, &edited);
        let err = verify_tmp(&tmp).unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.to_string().contains("line 2 was changed"), "{err}");
    }

    #[test]
    fn a_deleted_line_is_detected() {
        let tmp = TempDir::new();
        let mut log = log(&tmp);
        for i in 0..4 {
            log.append(&mut record(i), 100).unwrap();
        }
        let mut all = lines(&tmp);
        all.remove(2);
        write_lines(&tmp, &all);
        assert_eq!(verify_tmp(&tmp).unwrap_err().line, 3);

        let mut all = lines(&tmp);
        all.remove(0);
        write_lines(&tmp, &all);
        let err = verify_tmp(&tmp).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.why.contains("removed from the start"), "{err}");
    }

    #[test]
    fn a_torn_last_line_is_named_and_the_next_append_starts_fresh() {
        let tmp = TempDir::new();
        let mut log = log(&tmp);
        log.append(&mut record(0), 100).unwrap();
        let path = tmp.path().join("log/audit.jsonl");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"time\":\"19").unwrap();
        assert_eq!(verify_tmp(&tmp).unwrap_err().line, 2);
        log.append(&mut record(1), 100).unwrap();
        let all = lines(&tmp);
        assert_eq!(all.len(), 3);
        let third: serde_json::Value = serde_json::from_str(&all[2]).unwrap();
        assert_eq!(
            third["prev"],
            sha256(b"{\"time\":\"19").to_hex(),
            "chained to the fragment"
        );
        let err = verify_tmp(&tmp).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.why.contains("not a JSON audit record"), "{err}");
    }

    #[test]
    fn long_lines_are_read_back_across_chunks() {
        // New lines are at most 64 KiB; a log written before that may hold longer ones.
        let tmp = TempDir::new();
        let mut log = log(&tmp);
        let old = format!(
            "{{\"event\":\"exec\",\"prev\":\"{GENESIS}\",\"argv\":[\"{}\"]}}",
            "x".repeat(200 * 1024)
        );
        write_lines(&tmp, &[old]);
        for i in 0..3 {
            let mut r = AuditRecord::start(&caller(), "h", b"/bin/echo", &[vec![b'x'; 60 * 1024]]);
            r.from_requester();
            r.exec();
            log.append(&mut r, i).unwrap();
        }
        assert_eq!(verify_tmp(&tmp), Ok(4));
    }

    fn line_of(record: &AuditRecord) -> (String, serde_json::Value) {
        let line = String::from_utf8(record.line("2025-11-22T00:06:40Z", GENESIS)).unwrap();
        let value = serde_json::from_str(&line).unwrap();
        (line, value)
    }

    #[test]
    fn a_strangers_line_is_bounded_and_counts_every_argument() {
        let empty = vec![Vec::new(); 300_000];
        let mut r = AuditRecord::start(&caller(), "h", b"/bin/true", &empty);
        r.refused(&Refusal::new(Check::Requester, "not a requester"));
        let (line, v) = line_of(&r);
        assert!(line.len() <= MAX_STRANGER_LINE, "{}", line.len());
        assert_eq!(v["argc"], 300_001);
        assert_eq!(v["argv_bytes"], 0);
        let argv = v["argv"].as_array().unwrap();
        assert!(argv.len() > 100, "a prefix of the arguments is logged");
        let last = argv.last().unwrap().as_str().unwrap();
        assert!(last.ends_with("more arguments not logged]"), "{last}");
        let logged = argv.len() - 2;
        assert_eq!(
            last,
            format!("…[{} more arguments not logged]", 300_000 - logged)
        );

        // Escaped bytes count as what they become: a control byte is six bytes of JSON.
        let control = vec![vec![1u8; 100_000]; 3];
        let huge = vec![b'/'; 128 * 1024];
        let r = AuditRecord::start(&caller(), "h", &huge, &control);
        let (line, v) = line_of(&r);
        assert!(line.len() <= MAX_STRANGER_LINE, "{}", line.len());
        assert!(
            v["program"]
                .as_str()
                .unwrap()
                .ends_with("more bytes not logged]")
        );
        assert_eq!(v["argv_bytes"], 300_000);
    }

    #[test]
    fn a_requesters_line_is_bounded_whatever_the_token_holds() {
        let mut fx = fixture();
        fx.request.cwd = format!("/{}", "\u{1}".repeat(5_000));
        for i in 0..600 {
            fx.request
                .env
                .0
                .insert(format!("VARIABLE_{i:05}"), String::new());
        }
        fx.request.argv[0] = "a".repeat(2_000);
        fx.bind();
        let args = vec![vec![b'"'; 120 * 1024]; 20];
        let mut r = AuditRecord::start(&caller(), "h", b"/usr/bin/apt-get", &args);
        r.from_requester();
        r.add_grant(&fx.opened());
        r.refused(&Refusal::new(Check::Command, "x".repeat(100_000)));
        let (line, v) = line_of(&r);
        assert!(line.len() <= MAX_REQUESTER_LINE, "{}", line.len());
        assert!(
            line.len() > MAX_REQUESTER_LINE - 2 * MARKER_ROOM,
            "the room is used"
        );
        assert!(
            v["cwd"]
                .as_str()
                .unwrap()
                .ends_with("more bytes not logged]")
        );
        assert!(
            v["env_keys"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()
                .as_str()
                .unwrap()
                .ends_with("more not logged]")
        );
        assert!(v["detail"].as_str().unwrap().len() <= REQUESTER.detail);
        assert_eq!(v["argc"], 21);
        assert_eq!(v["argv_bytes"], 20 * 120 * 1024);
    }

    #[test]
    fn argv0_is_the_requests_in_every_line() {
        let fx = fixture();
        let mut r = AuditRecord::start(&caller(), "h", b"/usr/bin/apt-get", &[b"upgrade".to_vec()]);
        assert_eq!(line_of(&r).1["argv"], serde_json::json!([null, "upgrade"]));
        r.add_grant(&fx.opened());
        r.refused(&Refusal::new(Check::Host, "x"));
        assert_eq!(
            line_of(&r).1["argv"],
            serde_json::json!(["apt-get", "upgrade"])
        );
        r.exec();
        assert_eq!(
            line_of(&r).1["argv"],
            serde_json::json!(["apt-get", "upgrade"])
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever the arguments, program and detail, the line is JSON within its budget, and
        /// says exactly how many arguments and bytes there were.
        #[test]
        fn every_line_is_bounded_json_that_counts_its_arguments(
            args in proptest::collection::vec(
                proptest::collection::vec(proptest::num::u8::ANY, 0..3000), 0..200),
            program in proptest::collection::vec(proptest::num::u8::ANY, 0..6000),
            detail in "\\PC{0,3000}",
            requester in proptest::bool::ANY,
        ) {
            let mut r = AuditRecord::start(&caller(), "h", &program, &args);
            if requester {
                r.from_requester();
                r.add_grant(&fixture().opened());
            }
            r.refused(&Refusal::new(Check::Command, detail));
            let (line, v) = line_of(&r);
            let max = if requester { MAX_REQUESTER_LINE } else { MAX_STRANGER_LINE };
            proptest::prop_assert!(line.len() <= max, "{} > {max}", line.len());
            proptest::prop_assert_eq!(v["argc"].as_u64(), Some(args.len() as u64 + 1));
            let bytes: usize = args.iter().map(Vec::len).sum();
            proptest::prop_assert_eq!(v["argv_bytes"].as_u64(), Some(bytes as u64));
            proptest::prop_assert!(!line.contains('\n'));
        }
    }

    #[test]
    fn fitting_keeps_whole_characters_and_says_what_was_cut() {
        assert_eq!(fit("café", 10), "café");
        let long = "é".repeat(100);
        let cut = fit(&long, 60);
        assert!(json_len(&cut) <= 60, "{cut}");
        assert!(
            cut.starts_with("éé") && cut.ends_with("more bytes not logged]"),
            "{cut}"
        );
        assert_eq!(json_len("a\"\\\n\u{1}\u{7f}"), 1 + 2 + 2 + 2 + 6 + 1);
        for text in ["\u{1}\u{2}\"x", "\n\t", "plain"] {
            assert_eq!(
                json_len(text) + 2,
                serde_json::to_string(text).unwrap().len()
            );
        }
    }

    #[test]
    fn an_unsafe_log_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new();
        drop(log(&tmp));
        let path = tmp.path().join("log/audit.jsonl");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "created private");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = AuditLog::open_from(tmp.path(), &path).unwrap_err();
        assert!(err.0.contains("writable by group or others"), "{err}");
    }
}
