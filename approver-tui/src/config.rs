//! Where the console's files live, `console.toml`, and the approver key (loading it safely and
//! making a new one).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use assent_protocol::PrivateKey;
use serde::Deserialize;

/// Exit status for bad or unsafe configuration (shared with the shim and the elevator).
pub const EXIT_CONFIG: i32 = 78;
/// Exit status for a command line that cannot be used (EX_USAGE, as the shim's).
pub const EXIT_USAGE: i32 = 64;

/// The elevator's configuration on this host, at the path the elevator was built with.
pub use assent_common::paths::ELEVATOR_CONFIG;

/// The default relay address, hosted by the console itself unless `--relay` is given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7447";

/// What stops the console (or a scripted command), each kind with its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fatal {
    /// The command line cannot be used (64).
    Usage(String),
    /// The command failed: no such request, the relay refused the decision, a key that
    /// exists already (1).
    Failed(String),
    /// The relay could not be reached; trying again later may work (75).
    Unreachable(String),
    /// Bad or unsafe configuration, which no retry fixes (78).
    Config(String),
}

impl Fatal {
    pub fn usage(message: impl Into<String>) -> Fatal {
        Fatal::Usage(message.into())
    }
    pub fn other(message: impl Into<String>) -> Fatal {
        Fatal::Failed(message.into())
    }
    pub fn unreachable(message: impl Into<String>) -> Fatal {
        Fatal::Unreachable(message.into())
    }
    pub fn config(message: impl Into<String>) -> Fatal {
        Fatal::Config(message.into())
    }

    /// The exit status for it.
    pub fn code(&self) -> i32 {
        match self {
            Fatal::Usage(_) => EXIT_USAGE,
            Fatal::Failed(_) => 1,
            Fatal::Unreachable(_) => crate::scripted::EXIT_UNREACHABLE,
            Fatal::Config(_) => EXIT_CONFIG,
        }
    }

    /// The one line that says what went wrong and what to do.
    pub fn message(&self) -> &str {
        match self {
            Fatal::Usage(m) | Fatal::Failed(m) | Fatal::Unreachable(m) | Fatal::Config(m) => m,
        }
    }
}

/// `console.toml` (all optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleToml {
    /// The approver name put in decisions (must match elevator.toml's `[[approver]] name`).
    pub name: Option<String>,
    /// Where the embedded relay listens.
    pub listen: Option<String>,
    /// Use this relay instead of hosting one.
    pub relay: Option<String>,
    /// Desktop notifications on or off (default on).
    pub notify: Option<bool>,
    /// Once-grant window in seconds (default 120, the elevator's default `once_window_s`).
    pub once_window_s: Option<u64>,
    /// A PEM file of CA certificates to trust for a `wss://` relay, besides the system's (and
    /// those `ASSENT_RELAY_CA` names).
    pub relay_ca: Option<PathBuf>,
    /// Agent keys this approver knows already (as a relay's `[[agent]]` list does): their
    /// requests are not flagged first-seen.
    #[serde(default)]
    pub agent: Vec<AgentEntry>,
}

/// One `[[agent]]` of console.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    pub name: String,
    /// `ssh-ed25519 AAAA…`, as in the agent's `.pub` file.
    pub key: String,
}

impl ConsoleToml {
    /// The `[[agent]]` entries as (name, key fingerprint); a key that does not parse is a
    /// configuration error naming it.
    pub fn known_agents(&self, path: &Path) -> Result<Vec<(String, String)>, Fatal> {
        self.agent
            .iter()
            .map(|a| {
                let key = assent_protocol::PublicKey::parse(&a.key).map_err(|e| {
                    Fatal::config(format!(
                        "{}: [[agent]] {:?}: {e}; give the line of the agent's .pub file",
                        path.display(),
                        a.name
                    ))
                })?;
                Ok((a.name.clone(), key.fingerprint().to_string()))
            })
            .collect()
    }
}

/// The directories the console uses.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// `$XDG_CONFIG_HOME/assent`
    pub config: PathBuf,
    /// `$XDG_STATE_HOME/assent`
    pub state: PathBuf,
}

impl Dirs {
    pub fn from_env() -> Result<Dirs, Fatal> {
        let base = directories::BaseDirs::new()
            .ok_or_else(|| Fatal::config("cannot find the home directory; set HOME"))?;
        let state = base
            .state_dir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| base.home_dir().join(".local/state"));
        Ok(Dirs {
            config: base.config_dir().join("assent"),
            state: state.join("assent"),
        })
    }

    pub fn key(&self) -> PathBuf {
        self.config.join("approver.key")
    }
    pub fn console_toml(&self) -> PathBuf {
        self.config.join("console.toml")
    }
    pub fn decision_log(&self) -> PathBuf {
        self.state.join("decisions.jsonl")
    }
    pub fn shown_requests(&self) -> PathBuf {
        self.state.join("shown-requests")
    }
    pub fn console_id(&self) -> PathBuf {
        self.state.join("console-id")
    }
}

impl ConsoleToml {
    /// Read `path`; a missing file is the defaults.
    pub fn load(path: &Path) -> Result<ConsoleToml, Fatal> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                let why = e.to_string();
                let why = why
                    .lines()
                    .last()
                    .unwrap_or("invalid TOML")
                    .trim()
                    .to_string();
                Fatal::config(format!("{}: {why}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConsoleToml::default()),
            Err(e) => Err(Fatal::config(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }
}

/// The OS user name, the default approver name.
pub fn os_user_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "approver".into())
}

/// The error for a missing approver key: what to run to make one.
pub fn missing_key(path: &Path) -> Fatal {
    Fatal::config(format!(
        "no approver key at {}; create one with `assent-console keygen`",
        path.display()
    ))
}

/// Load the approver key, refusing one that group or others can access: another account
/// (such as the agent's) that can read it can approve its own requests.
pub fn load_key(path: &Path) -> Result<PrivateKey, Fatal> {
    read_key(path, true)
}

/// Read a private key that group and others cannot access; with `mine`, it must also be
/// owned by this user (root lists another user's key in elevator.toml with `--trust`).
fn read_key(path: &Path, mine: bool) -> Result<PrivateKey, Fatal> {
    let meta = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            missing_key(path)
        } else {
            Fatal::config(format!(
                "cannot read the approver key {}: {e}",
                path.display()
            ))
        }
    })?;
    if meta.mode() & 0o077 != 0 {
        return Err(Fatal::config(format!(
            "the approver key {} is accessible by group or others (mode {:03o}); fix it with: chmod 600 {}",
            path.display(),
            meta.mode() & 0o777,
            path.display()
        )));
    }
    if mine && meta.uid() != nix::unistd::getuid().as_raw() {
        return Err(Fatal::config(format!(
            "the approver key {} is owned by uid {}, not by you; use your own key",
            path.display(),
            meta.uid()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        Fatal::config(format!(
            "cannot read the approver key {}: {e}",
            path.display()
        ))
    })?;
    PrivateKey::from_openssh(&text).map_err(|e| Fatal::config(format!("{}: {e}", path.display())))
}

/// Whether nothing at all is at `path` (a dangling symlink is something).
pub fn key_missing(path: &Path) -> bool {
    matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// An approver key that `keygen` made or found.
#[derive(Debug)]
pub struct KeyReport {
    /// The public key line, `ssh-ed25519 AAAA… name@host`.
    pub public: String,
    /// What was done, for the user (ends with a blank line).
    pub text: String,
}

/// The `[[approver]]` block for elevator.toml, with both values quoted as TOML strings.
pub fn approver_block(name: &str, public: &str) -> String {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    format!(
        "[[approver]]\nname = {}\nkey  = {}\n",
        quote(name),
        quote(public)
    )
}

/// What to paste where, after the key is made or found.
pub fn approver_instructions(name: &str, public: &str) -> String {
    format!(
        "Add this to {ELEVATOR_CONFIG} on every host you approve for:\n\n{}",
        approver_block(name, public)
    )
}

/// What `keygen` (without `--trust`, see [`crate::setup::keygen`]) prints after writing
/// the key. Writes `name` into `console_toml` too when that file does not exist yet.
pub fn keygen(
    path: &Path,
    name: &str,
    force: bool,
    console_toml: Option<&Path>,
) -> Result<String, Fatal> {
    let made = make_key(path, name, force, console_toml)?;
    Ok(made.text + &approver_instructions(name, &made.public))
}

/// The key already at `path` (not regenerated), for listing it in elevator.toml.
pub fn existing_key(path: &Path) -> Result<KeyReport, Fatal> {
    let key = read_key(path, false)?;
    let public = key.public().to_openssh(key.comment());
    Ok(KeyReport {
        text: format!(
            "using the existing key {}\n\
             public key:  {public}\n\
             fingerprint: {}\n\n",
            path.display(),
            key.public().fingerprint()
        ),
        public,
    })
}

/// Write a new key to `path` (and `.pub`), remembering `name` in `console_toml` if that
/// file does not exist yet.
pub fn make_key(
    path: &Path,
    name: &str,
    force: bool,
    console_toml: Option<&Path>,
) -> Result<KeyReport, Fatal> {
    if path.exists() && !force {
        return Err(Fatal::config(format!(
            "{} already exists; keep it, or replace it with --force (every elevator.toml that lists it must then be updated)",
            path.display()
        )));
    }
    if let Some(dir) = path.parent() {
        refuse_root_key_in_users_dir(path, dir, name)?;
        std::fs::create_dir_all(dir)
            .map_err(|e| Fatal::other(format!("cannot create {}: {e}", dir.display())))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    let key = PrivateKey::generate(&format!("{name}@{host}"));
    let public = key.public().to_openssh(key.comment());
    let write = |p: &Path, text: &str, mode: u32| -> Result<(), Fatal> {
        let _ = std::fs::remove_file(p);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(p)
            .map_err(|e| Fatal::other(format!("cannot write {}: {e}", p.display())))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| Fatal::other(format!("cannot write {}: {e}", p.display())))
    };
    write(path, &key.to_openssh(), 0o600)?;
    // Remember the name for decisions, unless a console.toml already says something.
    let remembered = console_toml.filter(|toml| {
        !toml.exists()
            && std::fs::write(
                toml,
                format!("name = \"{}\"\n", name.replace(['"', '\\'], "")),
            )
            .is_ok()
    });
    let pub_path = PathBuf::from(format!("{}.pub", path.display()));
    write(&pub_path, &format!("{public}\n"), 0o644)?;
    Ok(KeyReport {
        text: format!(
            "wrote {} (private, 0600) and {}\n\
             public key:  {public}\n\
             fingerprint: {}\n\n\
             {}",
            path.display(),
            pub_path.display(),
            key.public().fingerprint(),
            match remembered {
                Some(toml) => format!("wrote {} (name = \"{name}\")\n", toml.display()),
                None => String::new(),
            },
        ),
        public,
    })
}

/// Root making a key in another user's directory (`sudo -E assent-console keygen`) would
/// leave a key that user's console refuses as not theirs: say how to do it instead.
fn refuse_root_key_in_users_dir(path: &Path, dir: &Path, name: &str) -> Result<(), Fatal> {
    if !nix::unistd::getuid().is_root() {
        return Ok(());
    }
    // The nearest directory that exists is where the new files (or directories) would go.
    let owner = dir
        .ancestors()
        .find_map(|d| std::fs::metadata(d).ok().map(|m| (d, m.uid())));
    match owner {
        Some((owned, uid)) if uid != 0 => Err(Fatal::other(format!(
            "{} belongs to uid {uid}: a key made there by root would be refused by that user's console; run `assent-console keygen` as that user, then `sudo assent-console keygen --trust --key {} --name {name}`",
            owned.display(),
            path.display()
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_listed_in_console_toml_are_known_by_fingerprint() {
        let key = crate::testing::agent_key(1).public();
        let text = format!(
            "relay = \"wss://relay.example:7447\"\nrelay_ca = \"/etc/assent/ca.pem\"\n\n[[agent]]\nname = \"openclaw\"\nkey = \"{key}\"\n"
        );
        let toml: ConsoleToml = toml::from_str(&text).unwrap();
        assert_eq!(toml.relay_ca, Some(PathBuf::from("/etc/assent/ca.pem")));
        let path = Path::new("console.toml");
        assert_eq!(
            toml.known_agents(path).unwrap(),
            vec![("openclaw".to_string(), key.fingerprint().to_string())]
        );
        let bad: ConsoleToml =
            toml::from_str("[[agent]]\nname = \"x\"\nkey = \"ssh-rsa AAAA\"\n").unwrap();
        let err = bad.known_agents(path).unwrap_err();
        assert_eq!(err.code(), EXIT_CONFIG);
        assert!(
            err.message().starts_with("console.toml: [[agent]] \"x\": "),
            "{}",
            err.message()
        );
    }

    #[test]
    fn keygen_writes_a_private_key_and_refuses_to_overwrite() {
        let dir = std::env::temp_dir().join(format!("assent-keygen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("approver.key");
        let out = keygen(&path, "alice", false, Some(&dir.join("console.toml"))).unwrap();
        assert_eq!(
            ConsoleToml::load(&dir.join("console.toml"))
                .unwrap()
                .name
                .as_deref(),
            Some("alice")
        );
        assert!(
            out.contains("[[approver]]\nname = \"alice\"\nkey  = \"ssh-ed25519 "),
            "{out}"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let key = load_key(&path).unwrap();
        assert!(out.contains(key.public().fingerprint().as_str()));
        let public = std::fs::read_to_string(dir.join("approver.key.pub")).unwrap();
        assert!(public.starts_with(&key.public().to_openssh("")[..60]));

        let again = keygen(&path, "alice", false, None).unwrap_err();
        assert!(again.message().contains("--force"));
        assert_eq!(
            load_key(&path).unwrap().public(),
            key.public(),
            "not overwritten"
        );
        keygen(&path, "alice", true, None).unwrap();
        assert_ne!(
            load_key(&path).unwrap().public(),
            key.public(),
            "--force replaces"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_key_readable_by_others_is_refused_with_the_fix() {
        let dir = std::env::temp_dir().join(format!("assent-keymode-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("approver.key");
        keygen(&path, "alice", false, None).unwrap();
        for mode in [0o640, 0o604, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = load_key(&path).unwrap_err();
            assert_eq!(err.code(), EXIT_CONFIG);
            assert!(
                err.message()
                    .contains(&format!("chmod 600 {}", path.display())),
                "{}",
                err.message()
            );
        }
        let missing = load_key(&dir.join("nope")).unwrap_err();
        assert!(missing.message().contains("assent-console keygen"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn root_does_not_make_a_key_in_another_users_directory() {
        assert!(
            nix::unistd::getuid().is_root(),
            "this test needs root (it chowns a directory to nobody)"
        );
        let dir = std::env::temp_dir().join(format!("assent-keyowner-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        let path = dir.join("config/assent/approver.key");
        let err = keygen(&path, "alice", false, None).unwrap_err();
        assert!(
            err.message().contains("belongs to uid 65534"),
            "{}",
            err.message()
        );
        assert!(err.message().contains("--trust --key"), "{}", err.message());
        assert!(!dir.join("config").exists(), "nothing made");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn console_toml_is_strict() {
        let dir = std::env::temp_dir().join(format!("assent-ctoml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("console.toml");
        std::fs::write(&p, "name = \"alice\"\nlisten = \"127.0.0.1:9000\"\n").unwrap();
        let c = ConsoleToml::load(&p).unwrap();
        assert_eq!(c.name.as_deref(), Some("alice"));
        std::fs::write(&p, "nmae = \"alice\"\n").unwrap();
        assert_eq!(ConsoleToml::load(&p).unwrap_err().code(), EXIT_CONFIG);
        assert!(
            ConsoleToml::load(&dir.join("missing"))
                .unwrap()
                .name
                .is_none()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
