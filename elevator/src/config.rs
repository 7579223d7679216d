//! Loading the elevator's configuration (SPEC §5) without trusting any path: the file and
//! every directory above it are opened with `O_NOFOLLOW` and checked on the open descriptor
//! (root-owned, not writable by group or others) before the text is parsed by the one parser
//! in [`assent_common::elevator_config`].

use std::fmt;
use std::io::Read as _;
use std::path::Path;

pub use assent_common::elevator_config::{
    Approver, Config, MAX_CLOCK_SKEW_S, MAX_CONFIG_LEN, Requester, Settings,
};
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
    let (dir, name) = split_file_path(path).map_err(|e| ConfigError::File(e.0))?;
    let dir = WalkedDir::open_from(anchor, dir, None, Policy::RootOwned)
        .map_err(ConfigError::Directory)?;
    let file = dir
        .open_trusted_file(name, OFlag::O_RDONLY, Mode::empty())
        .map_err(|e| ConfigError::File(e.0))?;
    let mut text = String::new();
    file.take(MAX_CONFIG_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|e| ConfigError::File(format!("{}: cannot read: {e}", path.display())))?;
    if text.len() as u64 > MAX_CONFIG_LEN {
        return Err(ConfigError::File(format!(
            "{}: larger than {MAX_CONFIG_LEN} bytes",
            path.display()
        )));
    }
    Config::parse(&text, path).map_err(ConfigError::File)
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
}
