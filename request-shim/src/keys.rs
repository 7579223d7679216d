//! The agent key: `assent keygen` writes it, every request is signed with it.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use assent_protocol::PrivateKey;

use crate::failure::{Failure, Result};

/// Read the agent key, refusing one that others could read (as ssh does).
pub fn load(path: &Path) -> Result<PrivateKey> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::config(format!(
                "no agent key at {}; create one with `assent keygen`",
                path.display()
            )));
        }
        Err(e) => {
            return Err(Failure::config(format!(
                "cannot read the agent key {}: {e}",
                path.display()
            )));
        }
    };
    let mode = fs::metadata(path).map(|m| m.mode()).unwrap_or(0);
    if mode & 0o077 != 0 {
        return Err(Failure::config(format!(
            "the agent key {} is readable by others (mode {:04o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o7777,
            path.display()
        )));
    }
    PrivateKey::from_openssh(&text).map_err(|e| {
        Failure::config(format!(
            "{}: {e}; replace it with `assent keygen --force`",
            path.display()
        ))
    })
}

/// Create `dir` (and parents) as 0700 if missing.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let meta = fs::metadata(dir)?;
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Write `bytes` to a new file at `path` with `mode`, never following or replacing anything
/// already there (O_EXCL), then fsync it.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    create_new(path, bytes, mode, true)
}

fn create_new(path: &Path, bytes: &[u8], mode: u32, sync: bool) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)?;
    if sync { file.sync_all() } else { Ok(()) }
}

/// Write a file as a whole: to a fresh temporary name beside it (synced), then rename over
/// `path`.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    replace_file(path, bytes, mode, true)
}

/// [`replace`] without waiting for the disk, for files whose loss after a crash costs only a
/// little time (the next run fetches them again).
pub fn replace_unsynced(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    replace_file(path, bytes, mode, false)
}

fn replace_file(path: &Path, bytes: &[u8], mode: u32, sync: bool) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    let mut suffix = [0u8; 8];
    assent_protocol::random_bytes(&mut suffix);
    tmp.push(format!(".tmp-{}", u64::from_be_bytes(suffix)));
    let tmp = PathBuf::from(tmp);
    create_new(&tmp, bytes, mode, sync)?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// What `assent keygen` made.
#[derive(Debug)]
pub struct Generated {
    pub key: PrivateKey,
    pub public_line: String,
}

/// Make a key and write `key_path` (0600) and `key_path.pub` (0644).
pub fn generate(key_path: &Path, pub_path: &Path, comment: &str, force: bool) -> Result<Generated> {
    let dir = key_path.parent().expect("the key path has a directory");
    private_dir(dir)
        .map_err(|e| Failure::config(format!("cannot create {}: {e}", dir.display())))?;
    let key = PrivateKey::generate(comment);
    let public_line = key.public().to_openssh(comment);
    let private_text = key.to_openssh();
    let written = if force {
        replace(key_path, private_text.as_bytes(), 0o600)
    } else {
        write_new(key_path, private_text.as_bytes(), 0o600)
    };
    written.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::config(format!(
                "{} already exists; keep it, or replace it with `assent keygen --force` (approvers and relays that know the old key must then be told the new one)",
                key_path.display()
            ))
        } else {
            Failure::config(format!("cannot write {}: {e}", key_path.display()))
        }
    })?;
    replace(pub_path, format!("{public_line}\n").as_bytes(), 0o644)
        .map_err(|e| Failure::config(format!("cannot write {}: {e}", pub_path.display())))?;
    Ok(Generated { key, public_line })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Exit;

    #[test]
    fn generate_writes_private_0600_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("config/assent");
        let key = conf.join("agent.key");
        let public = conf.join("agent.key.pub");
        let made = generate(&key, &public, "openclaw@host", false).unwrap();
        assert_eq!(fs::metadata(&conf).unwrap().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
        let loaded = load(&key).unwrap();
        assert_eq!(loaded.public(), made.key.public());
        let line = fs::read_to_string(&public).unwrap();
        assert_eq!(line.trim_end(), made.public_line);
        assert!(line.starts_with("ssh-ed25519 ") && line.trim_end().ends_with(" openclaw@host"));

        let before = fs::read(&key).unwrap();
        let err = generate(&key, &public, "x", false).unwrap_err();
        assert_eq!(err.exit, Exit::Config);
        assert!(err.message.contains("--force"), "{}", err.message);
        assert_eq!(fs::read(&key).unwrap(), before, "nothing was overwritten");

        let again = generate(&key, &public, "x", true).unwrap();
        assert_ne!(again.key.public(), made.key.public());
        assert_eq!(load(&key).unwrap().public(), again.key.public());
        assert_eq!(fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
        let leftovers: Vec<_> = fs::read_dir(&conf).unwrap().collect();
        assert_eq!(leftovers.len(), 2, "no temporary files left behind");
    }

    #[test]
    fn generate_does_not_follow_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        let key = dir.path().join("agent.key");
        std::os::unix::fs::symlink(&target, &key).unwrap();
        assert!(generate(&key, &dir.path().join("agent.key.pub"), "x", false).is_err());
        assert!(!target.exists());
    }

    #[test]
    fn load_explains_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("agent.key");
        let err = load(&key).unwrap_err();
        assert_eq!(err.exit, Exit::Config);
        assert_eq!(
            err.message,
            format!(
                "no agent key at {}; create one with `assent keygen`",
                key.display()
            )
        );
        fs::write(&key, PrivateKey::generate("x").to_openssh()).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load(&key).unwrap_err().message.contains("chmod 600"));
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        load(&key).unwrap();
        fs::write(&key, "not a key").unwrap();
        assert!(
            load(&key)
                .unwrap_err()
                .message
                .contains("unusable OpenSSH private key")
        );
    }
}
