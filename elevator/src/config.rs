//! Loading the elevator's configuration (SPEC §5) and this install's host id without trusting
//! any path: the file and every directory above it are opened with `O_NOFOLLOW` and checked on
//! the open descriptor (root-owned, not writable by group or others) before the text is parsed:
//! the configuration by the one parser in [`assent_common::elevator_config`], the host id by
//! [`HostId::from_file`].

use std::fmt;
use std::io::Read as _;
use std::path::Path;

pub use assent_common::elevator_config::{
    Approver, Config, MAX_CLOCK_SKEW_S, MAX_CONFIG_LEN, Requester, Settings,
};
use assent_common::paths::new_host_id_command;
use assent_protocol::HostId;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::trusted::{Policy, Untrusted, WalkedDir, split_file_path};

/// What is wrong with the configuration, as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The directory holding the configuration (or one above it) cannot be trusted.
    Directory(Untrusted),
    /// The file itself is unsafe, unreadable or invalid.
    File(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Directory(why) => write!(f, "{why}"),
            ConfigError::File(why) => f.write_str(why),
        }
    }
}

/// Open, check and parse the configuration at the absolute `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_from(Path::new("/"), path)
}

/// As [`load`], trusting the walk only from `anchor` (which is checked too).
pub fn load_from(anchor: &Path, path: &Path) -> Result<Config, ConfigError> {
    let bytes = read_trusted(anchor, path, MAX_CONFIG_LEN)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| ConfigError::File(format!("{}: not UTF-8 text", path.display())))?;
    Config::parse(&text, path).map_err(ConfigError::File)
}

/// Open, check and parse the host id file at the absolute `path`.
pub fn load_host_id(path: &Path) -> Result<HostId, ConfigError> {
    load_host_id_from(Path::new("/"), path)
}

/// As [`load_host_id`], trusting the walk only from `anchor`.
pub fn load_host_id_from(anchor: &Path, path: &Path) -> Result<HostId, ConfigError> {
    // A line and a bit: anything longer is not a host id, and need not be read to say so.
    let bytes = read_trusted(anchor, path, 64).map_err(|e| {
        // Only the wording depends on this look-up; what was read was checked on its fd.
        match std::fs::symlink_metadata(path) {
            Err(missing) if missing.kind() == std::io::ErrorKind::NotFound => {
                ConfigError::File(format!(
                    "{} does not exist, so this install has no host id; make one as root: {}",
                    path.display(),
                    new_host_id_command()
                ))
            }
            _ => e,
        }
    })?;
    HostId::from_file(&bytes).ok_or_else(|| {
        ConfigError::File(format!(
            "{} does not hold a host id (one line of 32 lowercase hex digits); make a new one as root: {}",
            path.display(),
            new_host_id_command()
        ))
    })
}

/// The bytes of the root-owned file at `path`, reached by the trusted walk from `anchor`;
/// more than `max` bytes is an error.
fn read_trusted(anchor: &Path, path: &Path, max: u64) -> Result<Vec<u8>, ConfigError> {
    let (dir, name) = split_file_path(path).map_err(|e| ConfigError::File(e.0))?;
    let dir = WalkedDir::open_from(anchor, dir, None, Policy::RootOwned)
        .map_err(ConfigError::Directory)?;
    let file = dir
        .open_trusted_file(name, OFlag::O_RDONLY, Mode::empty())
        .map_err(|e| ConfigError::File(e.0))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ConfigError::File(format!("{}: cannot read: {e}", path.display())))?;
    if bytes.len() as u64 > max {
        return Err(ConfigError::File(format!(
            "{}: larger than {max} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::testutil::{TempDir, approver_key, chown};

    fn good() -> String {
        format!(
            "[[approver]]\nname = \"alice\"\nkey = \"{}\"\n\n[[requester]]\nuser = \"openclaw\"\nrun_as = [\"root\"]\n",
            approver_key(1).public()
        )
    }

    #[test]
    fn loading_checks_the_file_and_its_directories() {
        let tmp = TempDir::new();
        let dir = tmp.path().join("etc/assent");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("elevator.toml");
        std::fs::write(&path, good()).unwrap();
        let load = || load_from(tmp.path(), &path);
        assert_eq!(load().unwrap().approvers.len(), 1);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = load().unwrap_err();
        assert!(
            matches!(&err, ConfigError::File(m) if m.contains("writable by group or others")),
            "{err}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        chown(&path, 65534);
        assert!(matches!(load().unwrap_err(), ConfigError::File(m) if m.contains("not root")));
        chown(&path, 0);

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(
            matches!(load().unwrap_err(), ConfigError::Directory(m) if m.0.contains("writable")),
            "an unsafe directory is named as such"
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();

        std::fs::write(&path, "[[approver]]\nname = 1\n").unwrap();
        let err = load().unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: ", path.display())), "{err}");

        std::fs::remove_file(&path).unwrap();
        let err = load().unwrap_err().to_string();
        assert!(
            err.contains("cannot open") && err.contains("No such file"),
            "{err}"
        );

        std::fs::write(&path, "#".repeat(MAX_CONFIG_LEN as usize + 1)).unwrap();
        assert!(load().unwrap_err().to_string().contains("larger than"));
    }

    #[test]
    fn the_host_id_is_read_through_the_trusted_walk() {
        use std::os::unix::fs::symlink;
        let tmp = TempDir::new();
        let dir = tmp.path().join("etc/assent");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("host-id");
        let load = || load_host_id_from(tmp.path(), &path);
        let id = HostId([0x3f; 16]);

        let err = load().unwrap_err().to_string();
        assert!(
            err.contains(
                "does not exist, so this install has no host id; make one as root: (umask 022;"
            ),
            "{err}"
        );

        std::fs::write(&path, id.to_file()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(load().unwrap(), id);

        for bad in ["", "3F3F\n", "not a host id\n"] {
            std::fs::write(&path, bad).unwrap();
            let err = load().unwrap_err().to_string();
            assert!(
                err.contains("does not hold a host id (one line of 32 lowercase hex digits); make a new one as root: "),
                "{bad:?}: {err}"
            );
        }
        std::fs::write(&path, "0".repeat(4096)).unwrap();
        assert!(
            load()
                .unwrap_err()
                .to_string()
                .contains("larger than 64 bytes")
        );

        std::fs::write(&path, id.to_file()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = load().unwrap_err().to_string();
        assert!(err.contains("writable by group or others"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        chown(&path, 65534);
        assert!(load().unwrap_err().to_string().contains("not root"));
        chown(&path, 0);

        let real = dir.join("real-id");
        std::fs::rename(&path, &real).unwrap();
        symlink(&real, &path).unwrap();
        let err = load().unwrap_err().to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        std::fs::remove_file(&path).unwrap();
        std::fs::rename(&real, &path).unwrap();

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(load().unwrap_err(), ConfigError::Directory(_)));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(load().unwrap(), id);
    }
}
