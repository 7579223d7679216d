//! The audit log (SPEC §6): one JSON line per attempt, refused ones too, chained by `prev`
//! (the SHA-256 of the previous line, 64 zeros for the first) so that editing, inserting or
//! removing a line in the middle is detectable by `assent-elevate audit verify`.
//!
//! Appending takes an exclusive `flock` (waiting at most [`crate::lock::LOCK_WAIT`]), reads the last line to chain to, writes the new line
//! with `O_APPEND` and `fdatasync`s it before anything runs. A line cut short by a crash is
//! left in place (verification names it) and the next line starts after a newline.
//!
//! `program` and `argv` are what the caller invoked (bounded, so a hostile caller cannot grow
//! one line without limit); after check 9 they equal what was approved. The other request
//! fields are as the signed request states them, once the token has opened.

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

/// The longest last line the appender will read back to chain to.
const MAX_LINE_LEN: u64 = 8 * 1024 * 1024;

/// How much of the invoked command line is logged, in bytes.
const MAX_LOGGED_ARGV: usize = 64 * 1024;

/// One audit line. Field order is the order written; unknown values are `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// RFC 3339, UTC.
    pub time: String,
    /// `exec` or `refused`.
    pub event: &'static str,
    /// The check that refused, `null` for `exec`.
    pub check: Option<&'static str>,
    pub detail: Option<String>,
    /// This host's name.
    pub host: Option<String>,
    /// The caller (real uid) and its name.
    pub user: Option<String>,
    pub uid: Option<u32>,
    pub agent: Option<String>,
    /// Fingerprint of the key that signed the request.
    pub agent_key: Option<String>,
    pub run_as: Option<String>,
    pub program: Option<String>,
    pub program_sha256: Option<String>,
    pub argv: Option<Vec<String>>,
    pub cwd: Option<String>,
    pub env_keys: Option<Vec<String>>,
    pub request_id: Option<String>,
    pub decision_sha256: Option<String>,
    pub approver: Option<String>,
    /// Fingerprint of the key that signed the decision.
    pub approver_key: Option<String>,
    pub grant: Option<String>,
    /// SHA-256 (hex) of the previous line.
    pub prev: String,
}

impl AuditRecord {
    /// What is known before the token is read: the caller, the host and the command line.
    pub fn start(caller: &Caller, host: &str, program: &[u8], args: &[Vec<u8>]) -> AuditRecord {
        let argv = std::iter::once(program).chain(args.iter().map(Vec::as_slice));
        AuditRecord {
            host: Some(host.to_owned()),
            user: caller.name.clone(),
            uid: Some(caller.uid),
            program: Some(bounded(program, MAX_LOGGED_ARGV)),
            argv: Some(bounded_argv(argv)),
            ..AuditRecord::default()
        }
    }

    /// Add what the opened token says.
    pub fn add_grant(&mut self, grant: &OpenedGrant) {
        let request = &grant.request.payload;
        let decision = &grant.decision.payload;
        self.agent = Some(request.agent.clone());
        self.agent_key = Some(grant.request.signer.fingerprint().to_string());
        self.run_as = Some(request.run_as.clone());
        self.program_sha256 = Some(request.program_sha256.to_hex());
        // argv[0] is not on the elevator's command line; the approved one is what runs.
        if let (Some(argv), Some(first)) = (self.argv.as_mut(), request.argv.first()) {
            argv[0] = first.clone();
        }
        self.cwd = Some(request.cwd.clone());
        self.env_keys = Some(request.env.iter().map(|(k, _)| k.to_owned()).collect());
        self.request_id = Some(request.id.to_hex());
        self.decision_sha256 = Some(grant.decision.sha256.to_hex());
        self.approver = Some(decision.approver.clone());
        self.approver_key = Some(grant.decision.signer.fingerprint().to_string());
        self.grant = Some(decision.grant.as_str().to_owned());
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
}

fn bounded(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= max {
        return text.into_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}…[{} more bytes not logged]",
        &text[..end],
        text.len() - end
    )
}

fn bounded_argv<'a>(items: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    let items: Vec<&[u8]> = items.collect();
    let mut budget = MAX_LOGGED_ARGV;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if item.len() > budget {
            out.push(format!("…[{} more arguments not logged]", items.len() - i));
            break;
        }
        budget -= item.len();
        out.push(String::from_utf8_lossy(item).into_owned());
    }
    out
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
        self.append_inner(record, now)
            .map_err(|e| format!("cannot write the audit log {}: {e}", self.path.display()))
    }

    fn append_inner(&mut self, record: &mut AuditRecord, now: u64) -> io::Result<()> {
        let lock = crate::lock::exclusive(self.file.try_clone()?, crate::lock::LOCK_WAIT)?;
        let file: &File = &lock;
        let size = file.metadata()?.len();
        let (prev, terminated) = match last_line(file, size)? {
            None => (GENESIS.to_owned(), true),
            Some((line, terminated)) => (sha256(&line).to_hex(), terminated),
        };
        record.time = crate::time::rfc3339_utc(now);
        record.prev = prev;
        let mut line = Vec::with_capacity(1024);
        if !terminated {
            line.push(b'\n');
        }
        serde_json::to_writer(&mut line, record).map_err(io::Error::other)?;
        line.push(b'\n');
        (&*file).write_all(&line)?;
        file.sync_data()?;
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
        if !matches!(event, Some("exec" | "refused")) {
            return Err(bad(
                "not an audit record: event is not exec or refused".into()
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
        assert_eq!(first["argv"], serde_json::json!(["/usr/bin/true", "0"]));
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
        let tmp = TempDir::new();
        let mut log = log(&tmp);
        let big = vec![b'x'; 60 * 1024];
        for i in 0..3 {
            let mut r =
                AuditRecord::start(&caller(), "h", b"/bin/echo", &[big.clone(), big.clone()]);
            r.exec();
            log.append(&mut r, i).unwrap();
        }
        assert_eq!(verify_tmp(&tmp), Ok(3));
    }

    #[test]
    fn hostile_command_lines_are_bounded() {
        let huge = vec![vec![b'a'; 40 * 1024]; 5];
        let r = AuditRecord::start(&caller(), "h", b"/bin/echo", &huge);
        let argv = r.argv.unwrap();
        assert_eq!(
            argv.len(),
            3,
            "program + one argument fit the budget: {:?}",
            argv.len()
        );
        assert_eq!(argv[2], "…[4 more arguments not logged]");
        assert!(
            bounded(&[b'a'; 70_000], MAX_LOGGED_ARGV).ends_with("…[4464 more bytes not logged]")
        );
        assert_eq!(bounded(b"caf\xc3\xa9 \xff", 100), "café \u{fffd}");
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
