//! `keygen --trust`: list the approver key in this host's elevator.toml, so the elevator
//! accepts the decisions it signs. Root only; idempotent; the file is replaced atomically
//! and only with text that still parses.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use assent_protocol::PublicKey;

use crate::config::{ELEVATOR_CONFIG, Fatal, approver_block};

/// What [`trust`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trusted {
    /// The block was appended.
    Added,
    /// The same name with the same key was already listed; nothing changed.
    AlreadyListed,
}

/// Refuse unless the real user is root: only root may edit elevator.toml.
/// `key` and `name` make the suggested command exact.
pub fn require_root(key: &Path, name: &str) -> Result<(), Fatal> {
    if nix::unistd::getuid().is_root() {
        return Ok(());
    }
    let first = if crate::config::key_missing(key) {
        "make the key as yourself (`assent-console keygen`), then run "
    } else {
        "run "
    };
    Err(Fatal::other(format!(
        "--trust writes {ELEVATOR_CONFIG} and needs root; {first}`sudo assent-console keygen --trust --key {} --name {name}`, or paste the [[approver]] block yourself",
        key.display()
    )))
}

/// List approver `name` with the key `public` (an OpenSSH public key line) in the
/// elevator configuration at `path`, creating the file (0644 root:root) if it is missing.
pub fn trust(path: &Path, name: &str, public: &str, now: u64) -> Result<Trusted, Fatal> {
    let existing = read_existing(path)?;
    let text = match plan(
        existing.as_ref().map(|(text, _)| text.as_str()),
        name,
        public,
        now,
    )
    .map_err(|why| why.fatal(path))?
    {
        None => return Ok(Trusted::AlreadyListed),
        Some(text) => text,
    };
    // Keep an existing file's mode, minus any write access for group and others.
    let mode = existing.map_or(0o644, |(_, mode)| mode & 0o755);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    replace(path, &text, mode).map_err(|e| {
        Fatal::other(format!(
            "cannot write {}: {e}; nothing changed",
            path.display()
        ))
    })?;
    Ok(Trusted::Added)
}

/// Why a plan was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The existing file does not parse, or would not after the append.
    Parse(String),
    /// The name or the key is already listed with something else.
    Conflict(String),
}

impl Refusal {
    /// What stops `--trust`: a file that does not parse is configuration, a conflict a failure.
    fn fatal(&self, path: &Path) -> Fatal {
        let message = format!("{}: {self}; nothing changed", path.display());
        match self {
            Refusal::Parse(_) => Fatal::config(message),
            Refusal::Conflict(_) => Fatal::other(message),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Parse(why) | Refusal::Conflict(why) => f.write_str(why),
        }
    }
}

/// The new text of the file (None: already listed), from the current text (None: no file).
pub fn plan(
    existing: Option<&str>,
    name: &str,
    public: &str,
    now: u64,
) -> Result<Option<String>, Refusal> {
    let key = PublicKey::parse(public)
        .map_err(|e| Refusal::Conflict(format!("the key to add does not parse: {e}")))?;
    let existing = existing.unwrap_or("");
    let before = approvers(existing)
        .map_err(|why| Refusal::Parse(format!("does not parse ({why}); fix it first")))?;
    for (listed_name, listed_key) in &before {
        let same_key = PublicKey::parse(listed_key).is_ok_and(|k| k == key);
        match (listed_name == name, same_key) {
            (true, true) => return Ok(None),
            (true, false) => {
                return Err(Refusal::Conflict(format!(
                    "approver {name:?} is already listed with another key ({}); to use this key, replace that entry by hand",
                    fingerprint(listed_key)
                )));
            }
            (false, true) => {
                return Err(Refusal::Conflict(format!(
                    "this key is already listed as approver {listed_name:?}; use --name {listed_name:?}, or rename that entry by hand"
                )));
            }
            (false, false) => {}
        }
    }

    let mut text = existing.to_string();
    if !text.is_empty() {
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "# added by assent-console keygen --trust on {} UTC\n",
        crate::views::format_utc(now)
    ));
    text.push_str(&approver_block(name, public));

    // The result must parse and list exactly one more approver: this one.
    let after = approvers(&text).map_err(|why| {
        Refusal::Parse(format!(
            "adding the [[approver]] block would not parse ({why})"
        ))
    })?;
    let added = after.len() == before.len() + 1
        && after.last().is_some_and(|(n, k)| n == name && k == public);
    if !added {
        return Err(Refusal::Parse(
            "adding the [[approver]] block would not list it as a new approver".into(),
        ));
    }
    Ok(Some(text))
}

/// `(name, key)` of every `[[approver]]`; entries without both as strings are skipped
/// (the elevator itself reports them).
fn approvers(text: &str) -> Result<Vec<(String, String)>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| one_line(&e))?;
    let Some(list) = table.get("approver") else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or("`approver` is not a list of [[approver]] tables")?;
    Ok(list
        .iter()
        .filter_map(|entry| {
            let entry = entry.as_table()?;
            let name = entry.get("name")?.as_str()?;
            let key = entry.get("key")?.as_str()?;
            Some((name.to_string(), key.to_string()))
        })
        .collect())
}

fn fingerprint(line: &str) -> String {
    PublicKey::parse(line).map_or_else(
        |_| "a key that does not parse".into(),
        |k| k.fingerprint().to_string(),
    )
}

/// The parser's first line and the line number it names.
fn one_line(e: &toml::de::Error) -> String {
    let text = e.to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let head = lines.next().unwrap_or("invalid TOML").to_string();
    match text.lines().last().map(str::trim) {
        Some(last) if last != head && !last.is_empty() => format!("{head}: {last}"),
        _ => head,
    }
}

/// The current text and mode, or None when there is no file yet.
fn read_existing(path: &Path) -> Result<Option<(String, u32)>, Fatal> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Fatal::config(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    if !meta.file_type().is_file() {
        return Err(Fatal::config(format!(
            "{} is not a regular file; nothing changed",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Fatal::config(format!("cannot read {}: {e}", path.display())))?;
    Ok(Some((text, meta.mode() & 0o7777)))
}

/// Create the directory 0755 root:root if it is missing; an existing one is left alone.
fn create_dir(dir: &Path) -> Result<(), Fatal> {
    if dir.exists() {
        return Ok(());
    }
    let fail = |e: std::io::Error| Fatal::other(format!("cannot create {}: {e}", dir.display()));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(fail)?;
    std::os::unix::fs::chown(dir, Some(0), Some(0)).map_err(fail)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(fail)
}

/// Replace `path` with `text`: a temporary file in the same directory, root:root and
/// `mode`, synced, then renamed over it, so readers see the old file or the new one.
fn replace(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().map_or_else(
        || "elevator.toml".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        std::os::unix::fs::fchown(&f, Some(0), Some(0))?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    std::fs::File::open(&dir)?.sync_all()
}

/// The lines `keygen` prints after [`trust`].
pub fn report(path: &Path, name: &str, outcome: &Trusted) -> String {
    let what = match outcome {
        Trusted::Added => format!(
            "added approver {name:?} to {} on this host (other hosts still need the block above)",
            path.display()
        ),
        Trusted::AlreadyListed => format!(
            "{} already lists approver {name:?} with this key; nothing changed",
            path.display()
        ),
    };
    format!("\n{what}\ncheck it with: sudo assent-elevate check\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NOW, agent_key, approver_key};

    fn public(key: &assent_protocol::PrivateKey) -> String {
        key.public().to_openssh(key.comment())
    }

    #[test]
    fn a_new_file_gets_the_comment_and_the_block() {
        let text = plan(None, "alice", &public(&approver_key()), NOW)
            .unwrap()
            .unwrap();
        assert!(
            text.starts_with(
                "# added by assent-console keygen --trust on 2025-11-22 00:06 UTC\n[[approver]]\nname = \"alice\"\n"
            ),
            "{text}"
        );
        assert_eq!(approvers(&text).unwrap().len(), 1);
    }

    #[test]
    fn appending_keeps_what_was_there_and_is_idempotent() {
        let existing = "[[requester]]\nuser = \"openclaw\"\nrun_as = [\"root\"]\n\n[settings]\nonce_window_s = 60";
        let alice = public(&approver_key());
        let text = plan(Some(existing), "alice", &alice, NOW).unwrap().unwrap();
        assert!(text.starts_with(existing), "kept: {text}");
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(table["settings"]["once_window_s"].as_integer(), Some(60));
        assert_eq!(table["approver"][0]["key"].as_str(), Some(alice.as_str()));
        assert_eq!(plan(Some(&text), "alice", &alice, NOW).unwrap(), None);
        // The same key without its comment is the same key.
        let bare = approver_key().public().to_openssh("");
        assert_eq!(plan(Some(&text), "alice", bare.trim(), NOW).unwrap(), None);

        let bob = public(&agent_key(2));
        let both = plan(Some(&text), "bob", &bob, NOW).unwrap().unwrap();
        assert_eq!(approvers(&both).unwrap().len(), 2);
    }

    #[test]
    fn conflicts_are_refused() {
        let alice = public(&approver_key());
        let text = plan(None, "alice", &alice, NOW).unwrap().unwrap();
        let other = public(&agent_key(3));
        let err = plan(Some(&text), "alice", &other, NOW).unwrap_err();
        assert!(
            matches!(&err, Refusal::Conflict(w) if w.contains("another key")),
            "{err}"
        );
        let err = plan(Some(&text), "bob", &alice, NOW).unwrap_err();
        assert!(
            matches!(&err, Refusal::Conflict(w) if w.contains("\"alice\"")),
            "{err}"
        );
    }

    #[test]
    fn text_that_does_not_parse_is_refused() {
        let alice = public(&approver_key());
        let err = plan(Some("[settings\n"), "alice", &alice, NOW).unwrap_err();
        assert!(
            matches!(&err, Refusal::Parse(w) if w.contains("fix it first")),
            "{err}"
        );
        assert_eq!(
            err.fatal(Path::new("elevator.toml")).code(),
            crate::config::EXIT_CONFIG
        );
        // Parses alone, but an [[approver]] table cannot be appended to it.
        let err = plan(Some("approver = []\n"), "alice", &alice, NOW).unwrap_err();
        assert!(
            matches!(&err, Refusal::Parse(w) if w.contains("would not")),
            "{err}"
        );
        // A name with quotes is quoted, not injected.
        let text = plan(None, "al\"ice\nx = 1", &alice, NOW).unwrap().unwrap();
        assert_eq!(approvers(&text).unwrap()[0].0, "al\"ice\nx = 1");
    }

    #[test]
    fn trust_writes_atomically_with_root_ownership() {
        assert!(
            nix::unistd::getuid().is_root(),
            "this test needs root (it writes files owned by root:root)"
        );
        let dir = std::env::temp_dir().join(format!("assent-trust-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("etc/elevator.toml");
        let alice = public(&approver_key());
        assert_eq!(trust(&path, "alice", &alice, NOW).unwrap(), Trusted::Added);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (meta.mode() & 0o7777, meta.uid(), meta.gid()),
            (0o644, 0, 0)
        );
        let dmeta = std::fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!(dmeta.mode() & 0o7777, 0o755);
        assert_eq!(
            trust(&path, "alice", &alice, NOW).unwrap(),
            Trusted::AlreadyListed
        );
        // A stricter mode is kept; group/other write is dropped.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        trust(&path, "bob", &public(&agent_key(4)), NOW).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        trust(&path, "carol", &public(&agent_key(5)), NOW).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o644);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
        // A symlink is not followed or replaced.
        let link = dir.join("link.toml");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = trust(&link, "dave", &public(&agent_key(6)), NOW).unwrap_err();
        assert!(
            err.message().contains("not a regular file"),
            "{}",
            err.message()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
