//! This console's id (`$XDG_STATE_HOME/assent/console-id`): made once per state directory and
//! put in every decision and status the console signs, so that only the statuses of the
//! console that approved a reusable grant vouch for it. The TUI and the scripted commands of
//! one account share the file, and so the id.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use assent_protocol::ConsoleId;

use crate::config::Fatal;

/// The id in `path`, made there first if there is none. A new id is written to a private
/// temporary file and linked into place, which fails if another process got there first: then
/// that one's id is read, so two consoles starting at once still end up with one id.
pub fn load_or_create(path: &Path) -> Result<ConsoleId, Fatal> {
    match std::fs::read(path) {
        Ok(bytes) => return parse(path, &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Fatal::config(format!(
                "cannot read the console id {}: {e}",
                path.display()
            )));
        }
    }
    let cannot = |e: std::io::Error| {
        Fatal::config(format!(
            "cannot create the console id {}: {e}",
            path.display()
        ))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(cannot)?;
    }
    let id = ConsoleId::random();
    let mut suffix = [0u8; 8];
    assent_protocol::random_bytes(&mut suffix);
    let tmp = path.with_extension(format!("tmp-{}", u64::from_be_bytes(suffix)));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(id.to_file().as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok(id),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let bytes = std::fs::read(path).map_err(cannot)?;
            parse(path, &bytes)
        }
        Err(e) => Err(cannot(e)),
    }
}

fn parse(path: &Path, bytes: &[u8]) -> Result<ConsoleId, Fatal> {
    ConsoleId::from_file(bytes).ok_or_else(|| {
        Fatal::config(format!(
            "{} does not hold a console id (one line of 32 lowercase hex digits); remove it to make a new one (the timed and always grants approved here then stop working until approved again)",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/assent/console-id");
        let id = load_or_create(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), id.to_file());
        assert_eq!(load_or_create(&path).unwrap(), id, "the same id every time");
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["console-id"], "no temporary file is left");
    }

    #[test]
    fn consoles_starting_together_share_one_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console-id");
        let ids: Vec<ConsoleId> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create(&path).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    }

    #[test]
    fn a_damaged_file_is_a_configuration_error_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console-id");
        std::fs::write(&path, "not an id\n").unwrap();
        let fatal = load_or_create(&path).unwrap_err();
        assert_eq!(fatal.code(), crate::config::EXIT_CONFIG);
        assert!(
            fatal.message().contains("remove it to make a new one"),
            "{}",
            fatal.message()
        );
    }
}
