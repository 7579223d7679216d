//! Where the shim keeps its files, `agent.toml`, and what it reads from the elevator's config.
//!
//! `$XDG_CONFIG_HOME/assent/{agent.toml,agent.key,agent.key.pub}`, and the grant cache and the
//! statuses kept for it in `$XDG_STATE_HOME/assent/{grants,statuses}/` (with the usual
//! `~/.config` and `~/.local/state` fallbacks).
//! Every setting is optional; `ASSENT_RELAY` and `--relay` override the relay URL, and
//! `ASSENT_RELAY_CA` the relay CA files (`relay_ca`).

use std::path::{Path, PathBuf};

use assent_common::elevator_config::{Approver, Config as ElevatorConfig, MAX_CONFIG_LEN};
use assent_protocol::HostId;
use assent_relay_client::{CA_ENV, ConnectOptions};
use serde::Deserialize;

use crate::failure::{Failure, Result};
use assent_common::duration;

pub const DEFAULT_RELAY: &str = "ws://127.0.0.1:7447";
pub const DEFAULT_TIMEOUT_S: u64 = 300;
/// How long a relay that cannot be reached at all is tried before the run gives up.
pub const DEFAULT_CONNECT_TIMEOUT_S: u64 = 15;
pub const ELEVATOR_NAME: &str = "assent-elevate";

/// The elevator's config and this install's host id, at the paths the elevator was built with.
pub use assent_common::paths::{ELEVATOR_CONFIG, HOST_ID};
/// The elevator's defaults (SPEC §5), used when its config cannot be read.
pub const DEFAULT_SECURE_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const DEFAULT_STATUS_MAX_AGE_S: u64 = 120;

/// The shim's file names, under `$XDG_CONFIG_HOME/assent` and `$XDG_STATE_HOME/assent`.
pub const AGENT_TOML: &str = "agent.toml";
pub const KEY_FILE: &str = "agent.key";
pub const PUBLIC_KEY_FILE: &str = "agent.key.pub";
pub const GRANTS_DIR: &str = "grants";
pub const STATUSES_DIR: &str = "statuses";

/// The shim's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `$XDG_CONFIG_HOME/assent`
    pub config_dir: PathBuf,
    /// `$XDG_STATE_HOME/assent`
    pub state_dir: PathBuf,
}

impl Paths {
    /// From the XDG variables, else the home directory.
    pub fn from_env() -> Result<Paths> {
        let dirs = directories::BaseDirs::new().ok_or_else(|| {
            Failure::config(
                "cannot find the home directory (HOME is unset and the password database has none); set HOME or XDG_CONFIG_HOME",
            )
        })?;
        let state = dirs
            .state_dir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dirs.home_dir().join(".local/state"));
        Ok(Paths {
            config_dir: dirs.config_dir().join("assent"),
            state_dir: state.join("assent"),
        })
    }

    pub fn agent_toml(&self) -> PathBuf {
        self.config_dir.join(AGENT_TOML)
    }

    pub fn key(&self) -> PathBuf {
        self.config_dir.join(KEY_FILE)
    }

    pub fn public_key(&self) -> PathBuf {
        self.config_dir.join(PUBLIC_KEY_FILE)
    }

    pub fn grants(&self) -> PathBuf {
        self.state_dir.join(GRANTS_DIR)
    }

    pub fn statuses(&self) -> PathBuf {
        self.state_dir.join(STATUSES_DIR)
    }
}

/// `agent.toml` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentToml {
    relay: Option<String>,
    relay_ca: Option<CaFiles>,
    name: Option<String>,
    elevator: Option<PathBuf>,
    timeout: Option<String>,
    connect_timeout: Option<String>,
    quiet: Option<bool>,
}

/// `relay_ca = "/a.pem:/b.pem"` (as in `ASSENT_RELAY_CA`) or `relay_ca = ["/a.pem", "/b.pem"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CaFiles {
    Joined(String),
    List(Vec<String>),
}

impl CaFiles {
    fn paths(self) -> Vec<String> {
        match self {
            CaFiles::Joined(joined) => joined.split(':').map(str::to_owned).collect(),
            CaFiles::List(list) => list,
        }
    }
}

/// CA files as given: absolute paths, empty entries skipped.
fn ca_paths(paths: impl IntoIterator<Item = String>) -> Result<Vec<PathBuf>, String> {
    paths
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| {
            if p.starts_with('/') {
                Ok(PathBuf::from(p))
            } else {
                Err(format!("{p:?} is not an absolute path to a PEM file"))
            }
        })
        .collect()
}

/// Where the relay URL came from, for `assent status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelaySource {
    Default,
    File,
    Env,
    Flag,
}

/// The settings in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The `agent.toml` path, whether or not it exists.
    pub file: PathBuf,
    pub file_exists: bool,
    pub relay: String,
    pub relay_source: RelaySource,
    /// The agent's display name.
    pub name: String,
    /// Set in `agent.toml`; otherwise the elevator is looked up on PATH.
    pub elevator: Option<PathBuf>,
    pub timeout_s: u64,
    /// How long an unreachable relay is tried before giving up (exit 75).
    pub connect_timeout_s: u64,
    /// Only failure lines on stderr (`ASSENT_QUIET=1` does the same).
    pub quiet: bool,
    /// PEM files of CAs trusted for `wss://` relays besides the system's roots
    /// (`relay_ca`, or `ASSENT_RELAY_CA` which replaces it).
    pub relay_ca: Vec<PathBuf>,
}

impl Config {
    /// Read `agent.toml` (a missing file means all defaults) and apply `ASSENT_RELAY`.
    pub fn load(file: &Path, env_relay: Option<String>, os_user: &str) -> Result<Config> {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Failure::config(format!(
                    "cannot read {}: {e}",
                    file.display()
                )));
            }
        };
        let file_exists = text.is_some();
        let mut config = Config::parse(file, text.as_deref().unwrap_or(""), os_user)?;
        config.file_exists = file_exists;
        config.apply_env_relay(env_relay)?;
        Ok(config)
    }

    /// Every setting at its default, as when `file` is absent.
    pub fn defaults(file: &Path, os_user: &str) -> Config {
        Config {
            file: file.to_path_buf(),
            file_exists: false,
            relay: DEFAULT_RELAY.to_owned(),
            relay_source: RelaySource::Default,
            name: os_user.to_owned(),
            elevator: None,
            timeout_s: DEFAULT_TIMEOUT_S,
            connect_timeout_s: DEFAULT_CONNECT_TIMEOUT_S,
            quiet: false,
            relay_ca: Vec::new(),
        }
    }

    /// `ASSENT_RELAY_CA` (when set and not empty, `:`-separated) replaces `relay_ca`.
    pub fn apply_env_ca(&mut self, env_ca: Option<String>) -> Result<()> {
        if let Some(joined) = env_ca.filter(|v| !v.is_empty()) {
            self.relay_ca = ca_paths(joined.split(':').map(str::to_owned))
                .map_err(|why| Failure::config(format!("{CA_ENV}: {why}")))?;
        }
        Ok(())
    }

    /// How to connect to the relay: the system's roots plus `relay_ca`.
    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            extra_roots: self.relay_ca.clone(),
            ..ConnectOptions::default()
        }
    }

    /// `ASSENT_RELAY` (when set and not empty) beats `agent.toml`.
    pub fn apply_env_relay(&mut self, env_relay: Option<String>) -> Result<()> {
        if let Some(url) = env_relay.filter(|u| !u.is_empty()) {
            self.relay = check_relay_url(&url)
                .map_err(|why| Failure::config(format!("ASSENT_RELAY: {why}")))?;
            self.relay_source = RelaySource::Env;
        }
        Ok(())
    }

    /// Parse `agent.toml` text; errors name `file`.
    pub fn parse(file: &Path, text: &str, os_user: &str) -> Result<Config> {
        let bad = |why: String| Failure::config(format!("{}: {why}", file.display()));
        let raw: AgentToml = toml::from_str(text).map_err(|e| bad(toml_error(text, &e)))?;
        let (relay, relay_source) = match raw.relay {
            Some(url) => (
                check_relay_url(&url).map_err(|why| bad(format!("relay: {why}")))?,
                RelaySource::File,
            ),
            None => (DEFAULT_RELAY.to_owned(), RelaySource::Default),
        };
        let name = raw.name.unwrap_or_else(|| os_user.to_owned());
        if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
            return Err(bad(
                "name must be 1 to 256 characters with no control characters".into(),
            ));
        }
        if let Some(path) = &raw.elevator
            && !path.is_absolute()
        {
            return Err(bad(format!(
                "elevator must be an absolute path, not {:?}",
                path.display()
            )));
        }
        let timeout_s = match raw.timeout {
            Some(t) => duration::parse(&t).map_err(|why| bad(format!("timeout: {why}")))?,
            None => DEFAULT_TIMEOUT_S,
        };
        let connect_timeout_s = match raw.connect_timeout {
            Some(t) => duration::parse(&t).map_err(|why| bad(format!("connect_timeout: {why}")))?,
            None => DEFAULT_CONNECT_TIMEOUT_S,
        };
        let relay_ca = match raw.relay_ca {
            Some(files) => {
                ca_paths(files.paths()).map_err(|why| bad(format!("relay_ca: {why}")))?
            }
            None => Vec::new(),
        };
        Ok(Config {
            file: file.to_path_buf(),
            file_exists: true,
            relay,
            relay_source,
            name,
            elevator: raw.elevator,
            timeout_s,
            connect_timeout_s,
            quiet: raw.quiet.unwrap_or(false),
            relay_ca,
        })
    }

    /// `--relay` beats everything.
    pub fn override_relay(&mut self, url: &str) -> Result<()> {
        self.relay =
            check_relay_url(url).map_err(|why| Failure::usage(format!("--relay: {why}")))?;
        self.relay_source = RelaySource::Flag;
        Ok(())
    }
}

/// A TOML error as one line: where, the line itself, and what is wrong.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end().replace('\n', "; ");
    match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let line_no = text[..start].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or_default().trim();
            format!("line {line_no} ({line}): {message}")
        }
        None => message,
    }
}

/// `ws://HOST[:PORT][/PATH]` or `wss://…`.
pub fn check_relay_url(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .ok_or_else(|| format!("{url:?} is not a ws:// or wss:// URL (e.g. {DEFAULT_RELAY})"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?} has no host (e.g. {DEFAULT_RELAY})"));
    }
    if let Some((_, port)) = authority.rsplit_once(':')
        && !authority.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(format!("{url:?} has a bad port {port:?}"));
    }
    Ok(url.to_owned())
}

/// The elevator's configuration as this user can see it: checked and parsed as strictly as
/// the elevator checks and parses it (the same parser, [`ElevatorConfig::parse`], and the same
/// rule for the file and the directories above it), so that what the shim and `assent status`
/// say about it is what the elevator will do. The elevator reads it again and decides.
#[derive(Debug, Clone, PartialEq)]
pub enum ElevatorFile {
    /// Safe, read, and accepted by the elevator's parser.
    Parsed(ElevatorConfig),
    /// It does not exist: the elevator refuses everything.
    Absent,
    /// It may exist, but this user cannot read it; why.
    Unreadable(String),
    /// It, or a directory above it, is not root's alone, so the elevator refuses everything;
    /// why, with the fix.
    Unsafe(String),
    /// Read, but the elevator's parser refuses it; why (one line naming the file).
    Unparsable(String),
}

impl ElevatorFile {
    pub fn read(path: &Path) -> ElevatorFile {
        Self::read_from(Path::new("/"), path)
    }

    /// As [`ElevatorFile::read`], judging the directories only from `anchor` down (tests keep
    /// their files under a temporary directory that is not root's alone).
    pub fn read_from(anchor: &Path, path: &Path) -> ElevatorFile {
        match unsafe_path(anchor, path) {
            Ok(()) => {}
            Err(PathProblem::Absent) => return ElevatorFile::Absent,
            Err(PathProblem::Unknown(why)) => return ElevatorFile::Unreadable(why),
            Err(PathProblem::Unsafe(why)) => return ElevatorFile::Unsafe(why),
        }
        Self::parse_file(path)
    }

    /// Read and parse `path`, whoever owns it.
    fn parse_file(path: &Path) -> ElevatorFile {
        use std::io::Read as _;
        let mut bytes = Vec::new();
        let read = std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CONFIG_LEN + 1).read_to_end(&mut bytes));
        match read {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ElevatorFile::Absent,
            Err(e) => {
                return ElevatorFile::Unreadable(format!(
                    "{} is not readable: {e}",
                    path.display()
                ));
            }
        }
        if bytes.len() as u64 > MAX_CONFIG_LEN {
            return ElevatorFile::Unparsable(format!(
                "{}: larger than {MAX_CONFIG_LEN} bytes",
                path.display()
            ));
        }
        let Ok(text) = String::from_utf8(bytes) else {
            return ElevatorFile::Unparsable(format!("{}: not UTF-8 text", path.display()));
        };
        match ElevatorConfig::parse(&text, path) {
            Ok(config) => ElevatorFile::Parsed(config),
            Err(why) => ElevatorFile::Unparsable(why),
        }
    }

    /// The configuration, when the elevator would accept it.
    pub fn config(&self) -> Option<&ElevatorConfig> {
        match self {
            ElevatorFile::Parsed(config) => Some(config),
            _ => None,
        }
    }

    /// The approvers it lists; `None` when only the elevator can tell.
    pub fn approvers(&self) -> Option<Vec<Approver>> {
        self.config().map(|c| c.approvers.clone())
    }

    /// The `run_as` list of `user`'s `[[requester]]` entry, when `user` is listed.
    pub fn requester_run_as(&self, user: &str) -> Option<Vec<String>> {
        self.config()?.requester(user).map(|r| r.run_as.clone())
    }
}

/// Why the elevator's configuration cannot be judged, or is not safe.
enum PathProblem {
    Absent,
    /// This user cannot look (a directory it may not search); why.
    Unknown(String),
    Unsafe(String),
}

/// The file at `path` and every directory from `anchor` down to it are owned by root and not
/// writable by group or others, and none is a symbolic link: the elevator's own rule for its
/// configuration (it opens each with `O_NOFOLLOW` and checks the open descriptor).
fn unsafe_path(anchor: &Path, path: &Path) -> std::result::Result<(), PathProblem> {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
    let mut dirs: Vec<&Path> = path
        .ancestors()
        .skip(1)
        .take_while(|dir| dir.starts_with(anchor))
        .collect();
    dirs.reverse();
    for (at, kind) in dirs
        .into_iter()
        .map(|dir| (dir, "directory"))
        .chain([(path, "file")])
    {
        let meta = match std::fs::symlink_metadata(at) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(PathProblem::Absent),
            Err(e) => {
                return Err(PathProblem::Unknown(format!(
                    "cannot inspect {}: {e}",
                    at.display()
                )));
            }
        };
        let shown = at.display().to_string();
        let file_type = meta.file_type();
        if file_type.is_symlink() {
            return Err(PathProblem::Unsafe(format!(
                "{shown} is a symbolic link; the elevator follows none, so it refuses every request; fix: as root, put the real {kind} there"
            )));
        }
        let right_kind = match kind {
            "directory" => file_type.is_dir(),
            _ => file_type.is_file() && !file_type.is_fifo(),
        };
        if !right_kind {
            return Err(PathProblem::Unsafe(format!(
                "{shown} is not a {kind}, so the elevator refuses every request"
            )));
        }
        if let Some(why) =
            assent_common::access::root_owned_problem(&shown, meta.uid(), meta.mode())
        {
            return Err(PathProblem::Unsafe(format!(
                "{why} (as root); until then the elevator refuses every request"
            )));
        }
    }
    Ok(())
}

/// This install's host id, which every request names beside the hostname: read from the file
/// the elevator reads (plainly: the elevator checks the file and the id again). The error
/// says what is wrong and how to fix it.
pub fn read_host_id(path: &Path) -> std::result::Result<HostId, String> {
    use std::io::Read as _;
    let make = || assent_common::paths::new_host_id_command();
    let mut bytes = Vec::new();
    match std::fs::File::open(path).and_then(|f| f.take(64).read_to_end(&mut bytes)) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{} does not exist, so this host has no host id; make one as root: {}",
                path.display(),
                make()
            ));
        }
        Err(e) => {
            return Err(format!(
                "cannot read {}: {e}; it must be readable by everyone (as root: chmod 644 {})",
                path.display(),
                path.display()
            ));
        }
    }
    HostId::from_file(&bytes).ok_or_else(|| {
        format!(
            "{} does not hold a host id (one line of 32 lowercase hex digits); make a new one as root: {}",
            path.display(),
            make()
        )
    })
}

/// Where `secure_path` came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsSource {
    /// Read from the elevator's config.
    File(PathBuf),
    /// The SPEC default, and why the file was not used.
    Default(String),
}

/// The parts of the elevator's config that shape a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElevatorSettings {
    pub secure_path: String,
    pub status_max_age_s: u64,
    pub source: SettingsSource,
}

impl ElevatorSettings {
    /// The settings in `file`, read from `path`, else the defaults.
    pub fn from_file(file: &ElevatorFile, path: &Path) -> ElevatorSettings {
        let default = |why: String| ElevatorSettings {
            secure_path: DEFAULT_SECURE_PATH.to_owned(),
            status_max_age_s: DEFAULT_STATUS_MAX_AGE_S,
            source: SettingsSource::Default(why),
        };
        match file {
            ElevatorFile::Parsed(config) => ElevatorSettings {
                secure_path: config.settings.secure_path.clone(),
                status_max_age_s: config.settings.status_max_age_s,
                source: SettingsSource::File(path.to_path_buf()),
            },
            ElevatorFile::Absent => default(format!(
                "{} is not readable: it does not exist",
                path.display()
            )),
            ElevatorFile::Unreadable(why)
            | ElevatorFile::Unsafe(why)
            | ElevatorFile::Unparsable(why) => default(why.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Exit;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(
            Path::new("/home/a/.config/assent/agent.toml"),
            text,
            "openclaw",
        )
    }

    #[test]
    fn empty_file_means_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.relay, DEFAULT_RELAY);
        assert_eq!(c.relay_source, RelaySource::Default);
        assert_eq!(c.name, "openclaw");
        assert_eq!(c.elevator, None);
        assert_eq!(c.timeout_s, 300);
        assert_eq!(c.connect_timeout_s, 15);
        assert!(!c.quiet);
    }

    #[test]
    fn every_field() {
        let c = parse(
            r#"
relay = "wss://relay.example:8443/assent"
relay_ca = ["/etc/assent/ca.pem", "/opt/ca/second.pem"]
name = "builder"
elevator = "/opt/assent/bin/assent-elevate"
timeout = "90s"
connect_timeout = "5s"
quiet = true
"#,
        )
        .unwrap();
        assert_eq!(c.relay, "wss://relay.example:8443/assent");
        assert_eq!(c.relay_source, RelaySource::File);
        assert_eq!(c.name, "builder");
        assert_eq!(
            c.elevator.as_deref(),
            Some(Path::new("/opt/assent/bin/assent-elevate"))
        );
        assert_eq!(c.timeout_s, 90);
        assert_eq!(c.connect_timeout_s, 5);
        assert!(c.quiet);
        assert_eq!(
            c.relay_ca,
            [
                Path::new("/etc/assent/ca.pem"),
                Path::new("/opt/ca/second.pem")
            ]
        );
        // The same as one string, `:`-separated like ASSENT_RELAY_CA.
        let c = parse("relay_ca = \"/etc/assent/ca.pem:/opt/ca/second.pem\"\n").unwrap();
        assert_eq!(c.relay_ca.len(), 2);
        assert_eq!(c.connect_options().extra_roots, c.relay_ca);
    }

    #[test]
    fn the_ca_variable_replaces_relay_ca() {
        let mut c = parse("relay_ca = \"/etc/assent/ca.pem\"\n").unwrap();
        c.apply_env_ca(None).unwrap();
        c.apply_env_ca(Some(String::new())).unwrap();
        assert_eq!(c.relay_ca, [Path::new("/etc/assent/ca.pem")]);
        c.apply_env_ca(Some("/tmp/a.pem::/tmp/b.pem".into()))
            .unwrap();
        assert_eq!(
            c.relay_ca,
            [Path::new("/tmp/a.pem"), Path::new("/tmp/b.pem")]
        );
        let err = c.apply_env_ca(Some("ca.pem".into())).unwrap_err();
        assert_eq!(err.exit, Exit::Config);
        assert!(
            err.message
                .starts_with("ASSENT_RELAY_CA: \"ca.pem\" is not an absolute path")
        );
    }

    #[test]
    fn unknown_field_is_refused_naming_the_file() {
        let err = parse("relay_url = \"ws://x\"\n").unwrap_err();
        assert_eq!(err.exit, Exit::Config);
        assert!(
            err.message
                .starts_with("/home/a/.config/assent/agent.toml: "),
            "{}",
            err.message
        );
        assert!(err.message.contains("relay_url"), "{}", err.message);
        assert!(!err.message.contains('\n'));
    }

    #[test]
    fn bad_values_are_refused() {
        for (text, needle) in [
            (
                "relay = \"http://127.0.0.1:7447\"",
                "not a ws:// or wss:// URL",
            ),
            ("relay = \"ws://\"", "has no host"),
            ("relay = \"ws://host:port\"", "bad port"),
            ("relay = \"ws://ho st\"", "has no host"),
            ("relay = 7447", "relay"),
            ("timeout = \"5\"", "timeout"),
            ("timeout = \"0s\"", "at least 1s"),
            ("connect_timeout = \"soon\"", "connect_timeout"),
            ("quiet = \"yes\"", "quiet"),
            ("name = \"\"", "name must be"),
            ("elevator = \"bin/assent-elevate\"", "absolute path"),
            (
                "relay_ca = \"ca.pem\"",
                "relay_ca: \"ca.pem\" is not an absolute path",
            ),
            ("relay_ca = 3", "relay_ca"),
            ("relay = ", "agent.toml"),
        ] {
            let err = parse(text).expect_err(text);
            assert_eq!(err.exit, Exit::Config, "{text}");
            assert!(err.message.contains(needle), "{text}: {}", err.message);
        }
    }

    #[test]
    fn relay_urls() {
        for ok in [
            "ws://127.0.0.1:7447",
            "ws://localhost",
            "wss://relay.example/x?y",
            "ws://[::1]:7447",
        ] {
            assert_eq!(check_relay_url(ok).as_deref(), Ok(ok));
        }
    }

    #[test]
    fn env_and_flag_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.toml");
        std::fs::write(&file, "relay = \"ws://10.0.0.1:7447\"\n").unwrap();
        let c = Config::load(&file, None, "u").unwrap();
        assert!(c.file_exists);
        assert_eq!(c.relay, "ws://10.0.0.1:7447");
        let mut c = Config::load(&file, Some("ws://127.0.0.2:1".into()), "u").unwrap();
        assert_eq!(
            (c.relay.as_str(), &c.relay_source),
            ("ws://127.0.0.2:1", &RelaySource::Env)
        );
        c.override_relay("ws://127.0.0.3:2").unwrap();
        assert_eq!(
            (c.relay.as_str(), &c.relay_source),
            ("ws://127.0.0.3:2", &RelaySource::Flag)
        );
        assert_eq!(c.override_relay("nope").unwrap_err().exit, Exit::Usage);
        let err = Config::load(&file, Some("tcp://x".into()), "u").unwrap_err();
        assert!(err.message.starts_with("ASSENT_RELAY: "));
        // A missing file is all defaults.
        let c = Config::load(&dir.path().join("absent.toml"), None, "u").unwrap();
        assert!(!c.file_exists);
        assert_eq!(c.relay, DEFAULT_RELAY);
    }

    /// A valid `elevator.toml` listing approver alice, requester openclaw, and `extra`.
    fn elevator_toml(extra: &str) -> String {
        let key = assent_protocol::PrivateKey::generate("alice@h")
            .public()
            .to_openssh("alice@h");
        format!(
            "[[approver]]\nname = \"alice\"\nkey = \"{key}\"\n[[requester]]\nuser = \"openclaw\"\nrun_as = [\"root\", \"postgres\"]\n{extra}"
        )
    }

    #[test]
    fn elevator_settings_from_file_or_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("elevator.toml");
        let settings = || ElevatorSettings::from_file(&ElevatorFile::parse_file(&file), &file);
        let s = settings();
        assert_eq!(s.secure_path, DEFAULT_SECURE_PATH);
        assert!(
            matches!(s.source, SettingsSource::Default(ref why) if why.contains("not readable"))
        );
        std::fs::write(
            &file,
            elevator_toml(
                "[settings]\nsecure_path = \"/opt/bin:/usr/bin\"\nstatus_max_age_s = 60\n",
            ),
        )
        .unwrap();
        let s = settings();
        assert_eq!(s.secure_path, "/opt/bin:/usr/bin");
        assert_eq!(s.status_max_age_s, 60);
        assert_eq!(s.source, SettingsSource::File(file.clone()));
        std::fs::write(&file, elevator_toml("[settings]\nclock_skew_s = 5\n")).unwrap();
        let s = settings();
        assert_eq!(s.secure_path, DEFAULT_SECURE_PATH);
        assert_eq!(s.source, SettingsSource::File(file.clone()));
        std::fs::write(&file, "[settings\n").unwrap();
        assert!(matches!(
            settings().source,
            SettingsSource::Default(ref why) if why.starts_with(&file.display().to_string())
        ));
    }

    #[test]
    fn elevator_file_is_parsed_as_strictly_as_the_elevator_parses_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("elevator.toml");
        assert_eq!(ElevatorFile::parse_file(&file), ElevatorFile::Absent);
        std::fs::write(&file, "[[requester]\n").unwrap();
        assert!(matches!(
            ElevatorFile::parse_file(&file),
            ElevatorFile::Unparsable(_)
        ));
        std::fs::write(&file, elevator_toml("")).unwrap();
        let parsed = ElevatorFile::parse_file(&file);
        let names: Vec<String> = parsed
            .approvers()
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, ["alice"]);
        assert_eq!(
            parsed.requester_run_as("openclaw"),
            Some(vec!["root".to_owned(), "postgres".to_owned()])
        );
        assert_eq!(parsed.requester_run_as("open"), None);
        // What a lenient TOML reading would take: a misspelt key, a key that is not a key.
        for typo in [
            elevator_toml("").replace("run_as", "run-as"),
            elevator_toml("[settings]\nsecure-path = \"/bin\"\n"),
            elevator_toml("").replace("ssh-ed25519 ", "ssh-ed25519 x"),
        ] {
            std::fs::write(&file, &typo).unwrap();
            let ElevatorFile::Unparsable(why) = ElevatorFile::parse_file(&file) else {
                panic!("{typo} was accepted")
            };
            assert!(why.starts_with(&format!("{}: ", file.display())), "{why}");
            assert!(!why.contains('\n'), "{why}");
            assert_eq!(parsed.approvers().map(|a| a.len()), Some(1));
        }
    }

    #[test]
    fn an_elevator_file_not_roots_alone_is_unsafe() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let etc = root.join("etc");
        std::fs::create_dir(&etc).unwrap();
        let file = etc.join("elevator.toml");
        let read = || ElevatorFile::read_from(&root, &file);
        assert_eq!(read(), ElevatorFile::Absent);
        std::fs::write(&file, elevator_toml("")).unwrap();
        let mode = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        mode(&root, 0o755);
        mode(&etc, 0o755);
        mode(&file, 0o644);
        if !nix::unistd::geteuid().is_root() {
            let ElevatorFile::Unsafe(why) = read() else {
                panic!("a file not owned by root is unsafe")
            };
            assert!(why.contains("not root; run: chown root"), "{why}");
            return;
        }
        assert!(matches!(read(), ElevatorFile::Parsed(_)));
        mode(&file, 0o666);
        let ElevatorFile::Unsafe(why) = read() else {
            panic!("0666 is unsafe")
        };
        assert_eq!(
            why,
            format!(
                "{0} is writable by group or others (mode 0666); run: chmod go-w {0} (as root); until then the elevator refuses every request",
                file.display()
            )
        );
        mode(&file, 0o644);
        mode(&etc, 0o775);
        let ElevatorFile::Unsafe(why) = read() else {
            panic!("a group-writable directory is unsafe")
        };
        assert!(
            why.starts_with(&format!("{} is writable", etc.display())),
            "{why}"
        );
        mode(&etc, 0o755);
        std::fs::rename(&file, etc.join("real.toml")).unwrap();
        std::os::unix::fs::symlink(etc.join("real.toml"), &file).unwrap();
        let ElevatorFile::Unsafe(why) = read() else {
            panic!("a symlink is unsafe")
        };
        assert!(why.contains("is a symbolic link"), "{why}");
    }

    #[test]
    fn the_host_id_file_is_read_or_its_fix_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host-id");
        let err = read_host_id(&path).unwrap_err();
        assert!(
            err.contains(
                "does not exist, so this host has no host id; make one as root: (umask 022;"
            ),
            "{err}"
        );
        std::fs::write(&path, "3f".repeat(16) + "\n").unwrap();
        assert_eq!(read_host_id(&path), Ok(HostId([0x3f; 16])));
        std::fs::write(&path, "3F".repeat(16) + "\n").unwrap();
        let err = read_host_id(&path).unwrap_err();
        assert!(err.contains("does not hold a host id"), "{err}");
        std::fs::write(&path, "3f".repeat(40)).unwrap();
        assert!(read_host_id(&path).is_err(), "too long");
    }
}
