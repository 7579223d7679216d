//! `assent status`: is everything `assent run` needs in place?
//!
//! One line per item, marked `ok`, `MISSING`, `PROBLEM` or `UNKNOWN`, each wrong one with its
//! fix, then a summary. The exit status sums it up: 0 ready, 78 something to fix, 75 when only
//! the relay is unreachable (which may pass by itself). The relay gets [`RELAY_PATIENCE`], so
//! the whole check stays quick.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use assent_protocol::{PrivateKey, Role};
use assent_relay_client::text::printable;
use assent_relay_client::{Client, ClientError, ConnectOptions, Fault};

use crate::cache::GrantCache;
use crate::config::{
    Config, DEFAULT_RELAY, ELEVATOR_CONFIG, ElevatorFile, ElevatorSettings, HOST_ID, Paths,
    RelaySource, SettingsSource, read_host_id,
};
use crate::elevate;
use crate::failure::{Exit, Result};
use crate::keys;
use crate::output::Out;
use crate::preflight;
use crate::request::Requester;

/// How long the relay has to answer.
pub const RELAY_PATIENCE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Ok,
    /// Something `assent run` needs is not there.
    Missing,
    /// It is there but wrong.
    Problem,
    /// This user cannot tell (the elevator's config is not readable).
    Unknown,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Mark::Ok => "ok",
            Mark::Missing => "MISSING",
            Mark::Problem => "PROBLEM",
            Mark::Unknown => "UNKNOWN",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub mark: Mark,
    pub what: &'static str,
    pub detail: String,
    /// What this item makes `assent status` exit with.
    pub exit: Option<Exit>,
}

impl Item {
    fn new(mark: Mark, what: &'static str, detail: impl Into<String>, exit: Option<Exit>) -> Item {
        Item {
            mark,
            what,
            detail: detail.into(),
            exit,
        }
    }
    pub fn ok(what: &'static str, detail: impl Into<String>) -> Item {
        Item::new(Mark::Ok, what, detail, None)
    }
    pub fn missing(what: &'static str, detail: impl Into<String>) -> Item {
        Item::new(Mark::Missing, what, detail, Some(Exit::Config))
    }
    pub fn problem(what: &'static str, detail: impl Into<String>) -> Item {
        Item::new(Mark::Problem, what, detail, Some(Exit::Config))
    }
    /// A problem that may pass by itself: the relay is not answering.
    pub fn unreachable(what: &'static str, detail: impl Into<String>) -> Item {
        Item::new(Mark::Problem, what, detail, Some(Exit::Retry))
    }
    pub fn unknown(what: &'static str, detail: impl Into<String>) -> Item {
        Item::new(Mark::Unknown, what, detail, None)
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<8} {:<10} {}", self.mark, self.what, self.detail)
    }
}

/// The exit status for these items: configuration first, then the relay, else success.
pub fn exit_for(items: &[Item]) -> Option<Exit> {
    [Exit::Config, Exit::Retry]
        .into_iter()
        .find(|exit| items.iter().any(|item| item.exit == Some(*exit)))
}

/// The last line: ready or not, and what to do.
pub fn summary(items: &[Item]) -> &'static str {
    match exit_for(items) {
        None if items.iter().any(|item| item.mark == Mark::Unknown) => {
            "ready as far as this user can tell: the UNKNOWN lines are for the elevator to check"
        }
        None => "ready: `assent run` has everything it needs",
        Some(Exit::Retry) => {
            "not ready: only the relay is unreachable; start it (or wait for it), then check again"
        }
        Some(_) => {
            "not ready: fix the MISSING and PROBLEM lines above, then run `assent status` again"
        }
    }
}

/// Items are written as they are found, so a slow relay does not hide the rest.
struct Report {
    out: Out,
    items: Vec<Item>,
}

impl Report {
    fn add(&mut self, item: Item) {
        outln!(self.out, "{item}");
        self.items.push(item);
    }
}

pub fn status() -> Result<ExitCode> {
    let paths = Paths::from_env()?;
    let requester = Requester::current()?;
    let mut report = Report {
        out: Out::stdout(),
        items: Vec::new(),
    };

    let (item, config) = check_config(
        &paths.agent_toml(),
        std::env::var("ASSENT_RELAY").ok(),
        std::env::var(assent_relay_client::CA_ENV).ok(),
        &requester.user,
    );
    report.add(item);
    report.add(Item::ok(
        "agent",
        format!(
            "{:?}, as OS user {} (uid {}) on {}",
            config.name, requester.user, requester.uid, requester.host
        ),
    ));

    report.add(check_host_id(Path::new(HOST_ID)));
    let (item, key) = check_key(&paths.key());
    report.add(item);
    report.add(check_relay(&config, key.as_ref()));
    report.add(check_route(preflight::current_no_new_privs()));
    report.add(check_elevator(&config));

    let elevator_config = Path::new(ELEVATOR_CONFIG);
    let file = ElevatorFile::read(elevator_config);
    report.add(check_requester(&file, elevator_config, &requester.user));
    report.add(check_approvers(&file, elevator_config));

    let settings = ElevatorSettings::from_file(&file, elevator_config);
    let from = match &settings.source {
        SettingsSource::File(path) => format!("from {}", path.display()),
        SettingsSource::Default(why) => format!("default; {why}"),
    };
    report.add(Item::ok(
        "secure",
        format!("{} ({from})", settings.secure_path),
    ));
    if let Some(key) = &key {
        let cache = GrantCache::new(paths.grants());
        let count = cache.entries(&key.public()).len();
        report.add(Item::ok(
            "grants",
            format!("{count} cached in {}", cache.dir().display()),
        ));
    }

    let exit = exit_for(&report.items);
    outln!(report.out, "{}", summary(&report.items));
    Ok(exit.map_or(ExitCode::SUCCESS, ExitCode::from))
}

/// This install's host id, which every request must name.
pub fn check_host_id(path: &Path) -> Item {
    match read_host_id(path) {
        Ok(id) => Item::ok("host id", format!("{id} (from {})", path.display())),
        Err(why) if !path.exists() => Item::missing("host id", why),
        Err(why) => Item::problem("host id", why),
    }
}

/// `agent.toml`, `ASSENT_RELAY` and `ASSENT_RELAY_CA`; the settings to check the rest with
/// (defaults for a bad file, so the other lines still say something).
pub fn check_config(
    file: &Path,
    env_relay: Option<String>,
    env_ca: Option<String>,
    os_user: &str,
) -> (Item, Config) {
    let (mut item, mut config) = match Config::load(file, None, os_user) {
        Ok(config) => {
            let absent = if config.file_exists {
                ""
            } else {
                " (absent: all defaults)"
            };
            (
                Item::ok("config", format!("{}{absent}", file.display())),
                config,
            )
        }
        Err(e) => (
            Item::problem(
                "config",
                format!(
                    "{}; fix the file (every field is optional: relay, relay_ca, name, elevator, timeout, connect_timeout, quiet); the lines below use the defaults",
                    e.message
                ),
            ),
            Config::defaults(file, os_user),
        ),
    };
    let env = [
        (
            config.apply_env_relay(env_relay),
            "set ASSENT_RELAY to a ws:// or wss:// URL, or unset it",
        ),
        (
            config.apply_env_ca(env_ca),
            "set ASSENT_RELAY_CA to absolute paths of PEM files, separated by ':', or unset it",
        ),
    ];
    for (applied, fix) in env {
        let Err(e) = applied else { continue };
        if item.mark == Mark::Ok {
            item = Item::problem("config", format!("{}; fix: {fix}", e.message));
        } else {
            item.detail.push_str(&format!("; also {}", e.message));
        }
    }
    (item, config)
}

/// The agent key: there, private, and an OpenSSH Ed25519 key.
pub fn check_key(path: &Path) -> (Item, Option<PrivateKey>) {
    match keys::load(path) {
        Ok(key) => {
            let line = Item::ok(
                "key",
                format!("{} {}", path.display(), key.public().fingerprint()),
            );
            (line, Some(key))
        }
        // The messages name the fix: `assent keygen`, `chmod 600 …`, `assent keygen --force`.
        Err(e) if path.symlink_metadata().is_err() => (Item::missing("key", e.message), None),
        Err(e) => (Item::problem("key", e.message), None),
    }
}

/// What happened when the relay was tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayProbe {
    /// Logged in with the agent key.
    LoggedIn,
    /// Answered, but refused this key's login.
    Refused(String),
    /// Cannot be used as configured (trust, certificate name, scheme); the line names the fix.
    Misconfigured(String),
    /// Accepts connections; login not tried (no key).
    Open,
    /// Nothing usable answered in time.
    Unreachable(String),
}

fn check_relay(config: &Config, key: Option<&PrivateKey>) -> Item {
    let probe = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(probe_relay(
            &config.relay,
            &config.connect_options(),
            key,
            RELAY_PATIENCE,
        )),
        Err(e) => RelayProbe::Unreachable(format!("cannot start the network runtime: {e}")),
    };
    relay_item(&config.relay, &config.relay_source, &probe)
}

/// Log in with `key` (or, without one, just connect) within `patience`.
pub async fn probe_relay(
    url: &str,
    options: &ConnectOptions,
    key: Option<&PrivateKey>,
    patience: Duration,
) -> RelayProbe {
    let Some(key) = key else {
        let address = relay_address(url);
        return match tokio::time::timeout(patience, tokio::net::TcpStream::connect(&address)).await
        {
            Ok(Ok(_)) => RelayProbe::Open,
            Ok(Err(e)) => RelayProbe::Unreachable(format!("cannot connect to {address}: {e}")),
            Err(_) => RelayProbe::Unreachable(format!(
                "no answer from {address} within {}s",
                patience.as_secs()
            )),
        };
    };
    let deadline = tokio::time::Instant::now() + patience;
    let connect = Client::connect_with(url, key, Role::Agent, options);
    match tokio::time::timeout_at(deadline, connect).await {
        Ok(Ok(client)) => {
            let _ = tokio::time::timeout_at(deadline, client.close()).await;
            RelayProbe::LoggedIn
        }
        Ok(Err(ClientError::Refused(why))) => RelayProbe::Refused(printable(&why).into_owned()),
        Ok(Err(e)) if e.fault() == Fault::Configuration => RelayProbe::Misconfigured(e.to_string()),
        Ok(Err(e)) => RelayProbe::Unreachable(e.to_string()),
        Err(_) => RelayProbe::Unreachable(format!("no answer within {}s", patience.as_secs())),
    }
}

/// `HOST:PORT` of a `ws://` or `wss://` URL, with the scheme's default port when none is given.
pub fn relay_address(url: &str) -> String {
    let (rest, port) = match url.strip_prefix("wss://") {
        Some(rest) => (rest, 443),
        None => (url.strip_prefix("ws://").unwrap_or(url), 80),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let has_port = match authority.rfind(']') {
        Some(end) => authority[end..].contains(':'),
        None => authority.contains(':'),
    };
    if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{port}")
    }
}

pub fn relay_item(url: &str, source: &RelaySource, probe: &RelayProbe) -> Item {
    let source = match source {
        RelaySource::Default => "default",
        RelaySource::File => "from agent.toml",
        RelaySource::Env => "from ASSENT_RELAY",
        RelaySource::Flag => "from --relay",
    };
    let at = format!("{url} ({source})");
    match probe {
        RelayProbe::LoggedIn => Item::ok("relay", format!("{at}: reachable, logged in")),
        RelayProbe::Open => Item::ok(
            "relay",
            format!("{at}: reachable (login not tried without a key)"),
        ),
        RelayProbe::Refused(why) => Item::problem(
            "relay",
            format!(
                "{at}: reachable, but it refused this key's login ({why}); fix: the relay does not allow this key: its operator adds it as an [[agent]] (the block `assent keygen` printed; the key is in agent.key.pub)"
            ),
        ),
        RelayProbe::Misconfigured(why) => Item::problem("relay", format!("{at}: {why}")),
        RelayProbe::Unreachable(why) => Item::unreachable(
            "relay",
            format!(
                "{at}: NOT reachable: {why}; fix: start `assent-console` (it hosts a relay on {}) or `assent-relay`, or point ASSENT_RELAY or relay = in agent.toml at a running one",
                DEFAULT_RELAY.trim_start_matches("ws://")
            ),
        ),
    }
}

/// Which way to root works from this process: the `sudo` entry (and `assent run`), or, under
/// no_new_privs, only the MCP server started outside the sandbox.
pub fn check_route(no_new_privs: bool) -> Item {
    let route = preflight::route_here(no_new_privs);
    match preflight::no_new_privs(no_new_privs) {
        Ok(()) => Item::ok("route", route),
        Err(why) => Item::problem("route", format!("{route}; {why}")),
    }
}

fn check_elevator(config: &Config) -> Item {
    match elevate::locate(
        config.elevator.as_deref(),
        std::env::var_os("PATH").as_deref(),
    ) {
        // The messages name the fix: install it, or set elevator = in agent.toml.
        Err(e) => Item::missing("elevator", e.message),
        Ok(path) => match elevate::install_problem(&path) {
            None => Item::ok("elevator", format!("{} (setuid root)", path.display())),
            Some(why) => Item::problem("elevator", format!("{}: {why}", path.display())),
        },
    }
}

pub fn check_requester(file: &ElevatorFile, path: &Path, user: &str) -> Item {
    let path = path.display();
    let block = format!(
        "[[requester]] block (user = {}, run_as = [\"root\"])",
        quote(user)
    );
    match file {
        ElevatorFile::Parsed(_) => match file.requester_run_as(user) {
            Some(run_as) => Item::ok(
                "requester",
                format!(
                    "{user} is a [[requester]] in {path} (run_as: {})",
                    run_as.join(", ")
                ),
            ),
            None => Item::missing(
                "requester",
                format!(
                    "{user} is not a [[requester]] in {path}, so the elevator refuses it; fix: as root, add a {block}"
                ),
            ),
        },
        ElevatorFile::Absent => Item::missing(
            "requester",
            format!(
                "{path} does not exist, so the elevator refuses everything; fix: as root, create it with a {block} and an [[approver]] block"
            ),
        ),
        ElevatorFile::Unreadable(why) => Item::unknown(
            "requester",
            format!(
                "cannot tell whether {user} is a [[requester]]: {why}; `sudo assent-elevate check` shows the elevator's view"
            ),
        ),
        ElevatorFile::Unparsable(why) => Item::problem(
            "requester",
            format!(
                "{why}, so the elevator refuses everything; fix: correct it as root, then run `sudo assent-elevate check`"
            ),
        ),
        ElevatorFile::Unsafe(why) => Item::problem("requester", why.clone()),
    }
}

pub fn check_approvers(file: &ElevatorFile, path: &Path) -> Item {
    let path = path.display();
    let fix = "fix: an approver makes a key with `assent-console keygen` and, as root, adds the [[approver]] block it prints (`sudo assent-console keygen --trust --key …` does that)";
    match file {
        ElevatorFile::Parsed(config) => {
            let names: Vec<&str> = config.approvers.iter().map(|a| a.name.as_str()).collect();
            if names.is_empty() {
                Item::missing(
                    "approvers",
                    format!("no [[approver]] in {path}, so nobody can approve; {fix}"),
                )
            } else {
                Item::ok(
                    "approvers",
                    format!("{} listed in {path}: {}", names.len(), names.join(", ")),
                )
            }
        }
        ElevatorFile::Absent => {
            Item::missing("approvers", format!("none: {path} does not exist; {fix}"))
        }
        ElevatorFile::Unreadable(_) => Item::unknown(
            "approvers",
            format!("cannot tell whether an [[approver]] is listed: {path} is not readable"),
        ),
        ElevatorFile::Unparsable(_) | ElevatorFile::Unsafe(_) => Item::unknown(
            "approvers",
            format!("cannot tell until the elevator accepts {path}"),
        ),
    }
}

/// A TOML string, for blocks to paste into a config file.
pub fn quote(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// An `elevator.toml` the elevator accepts: `approvers` (each with a key of its own) and
    /// the requester `openclaw` with `run_as`.
    fn parsed(approvers: &[&str], run_as: &str) -> ElevatorFile {
        let mut text = String::new();
        for name in approvers {
            let key = PrivateKey::generate(name).public().to_openssh(name);
            text += &format!(
                "[[approver]]\nname = {}\nkey = {}\n",
                quote(name),
                quote(&key)
            );
        }
        text += &format!("[[requester]]\nuser = \"openclaw\"\nrun_as = {run_as}\n");
        let config = assent_common::elevator_config::Config::parse(&text, Path::new(ETC));
        ElevatorFile::Parsed(config.unwrap())
    }

    const ETC: &str = "/etc/assent/elevator.toml";

    #[test]
    fn lines_keep_their_columns() {
        assert_eq!(
            Item::ok("key", "/k SHA256:x").to_string(),
            "ok       key        /k SHA256:x"
        );
        assert_eq!(
            Item::missing("requester", "why").to_string(),
            "MISSING  requester  why"
        );
        assert_eq!(
            Item::unreachable("relay", "why").to_string(),
            "PROBLEM  relay      why"
        );
        assert_eq!(
            Item::unknown("approvers", "why").to_string(),
            "UNKNOWN  approvers  why"
        );
    }

    #[test]
    fn configuration_beats_the_relay_in_the_exit_status() {
        let ok = Item::ok("a", "");
        let relay = Item::unreachable("relay", "");
        let missing = Item::missing("key", "");
        let unknown = Item::unknown("requester", "");
        assert_eq!(exit_for(&[ok.clone(), unknown.clone()]), None);
        assert_eq!(exit_for(&[ok.clone(), relay.clone()]), Some(Exit::Retry));
        assert_eq!(
            exit_for(&[relay.clone(), missing.clone(), ok]),
            Some(Exit::Config)
        );
        assert_eq!(
            exit_for(&[Item::problem("elevator", ""), relay.clone()]),
            Some(Exit::Config)
        );
        assert!(summary(&[Item::ok("a", "")]).starts_with("ready: "));
        assert!(summary(&[Item::ok("a", ""), unknown.clone()]).starts_with("ready as far as"));
        assert!(summary(&[unknown.clone(), relay.clone()]).contains("only the relay"));
        assert!(summary(&[relay, missing, unknown]).contains("MISSING and PROBLEM"));
    }

    #[test]
    fn config_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.toml");
        let (item, config) = check_config(&file, None, None, "openclaw");
        assert_eq!(item.mark, Mark::Ok);
        assert!(item.detail.ends_with("(absent: all defaults)"), "{item}");
        assert_eq!(config.relay, DEFAULT_RELAY);

        let (item, config) = check_config(&file, Some("ws://10.1.1.1:9".into()), None, "openclaw");
        assert_eq!(item.mark, Mark::Ok);
        assert_eq!(
            (config.relay.as_str(), &config.relay_source),
            ("ws://10.1.1.1:9", &RelaySource::Env)
        );

        let (item, _) = check_config(&file, Some("http://x".into()), None, "openclaw");
        assert_eq!((item.mark, item.exit), (Mark::Problem, Some(Exit::Config)));
        assert!(item.detail.starts_with("ASSENT_RELAY: "), "{item}");
        assert!(item.detail.contains("fix: set ASSENT_RELAY"), "{item}");

        fs::write(&file, "relay_url = \"ws://x\"\nname = \"bot\"\n").unwrap();
        let (item, config) = check_config(&file, Some("ws://10.1.1.1:9".into()), None, "openclaw");
        assert_eq!((item.mark, item.exit), (Mark::Problem, Some(Exit::Config)));
        assert!(item.detail.contains("relay_url"), "{item}");
        assert!(
            item.detail.contains("the lines below use the defaults"),
            "{item}"
        );
        assert_eq!(config.name, "openclaw", "defaults, not half the bad file");
        assert_eq!(config.relay, "ws://10.1.1.1:9", "ASSENT_RELAY still counts");
    }

    #[test]
    fn key_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.key");
        let (item, key) = check_key(&path);
        assert_eq!((item.mark, item.exit), (Mark::Missing, Some(Exit::Config)));
        assert!(item.detail.contains("`assent keygen`"), "{item}");
        assert!(key.is_none());

        let made = keys::generate(&path, &dir.path().join("agent.key.pub"), "a@h", false).unwrap();
        let (item, key) = check_key(&path);
        assert_eq!(item.mark, Mark::Ok);
        assert!(
            item.detail
                .ends_with(&made.key.public().fingerprint().to_string()),
            "{item}"
        );
        assert_eq!(key.unwrap().public(), made.key.public());

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let (item, key) = check_key(&path);
        assert_eq!((item.mark, item.exit), (Mark::Problem, Some(Exit::Config)));
        assert!(
            item.detail
                .contains(&format!("chmod 600 {}", path.display())),
            "{item}"
        );
        assert!(key.is_none());
    }

    #[test]
    fn relay_lines() {
        let at = "ws://127.0.0.1:7447";
        let item = relay_item(at, &RelaySource::File, &RelayProbe::LoggedIn);
        assert_eq!(
            item.to_string(),
            "ok       relay      ws://127.0.0.1:7447 (from agent.toml): reachable, logged in"
        );
        let item = relay_item(at, &RelaySource::Default, &RelayProbe::Open);
        assert_eq!(item.mark, Mark::Ok);
        assert!(item.detail.contains("login not tried"), "{item}");
        let item = relay_item(
            at,
            &RelaySource::Env,
            &RelayProbe::Refused("key SHA256:x is not admitted".into()),
        );
        assert_eq!((item.mark, item.exit), (Mark::Problem, Some(Exit::Config)));
        assert!(item.detail.contains("(from ASSENT_RELAY)"), "{item}");
        assert!(item.detail.contains("[[agent]]"), "{item}");
        let item = relay_item(
            at,
            &RelaySource::Default,
            &RelayProbe::Unreachable("refused".into()),
        );
        assert_eq!((item.mark, item.exit), (Mark::Problem, Some(Exit::Retry)));
        for needle in [
            "NOT reachable: refused",
            "assent-console",
            "assent-relay",
            "ASSENT_RELAY",
        ] {
            assert!(item.detail.contains(needle), "{needle}: {item}");
        }
    }

    #[test]
    fn relay_addresses() {
        for (url, address) in [
            ("ws://127.0.0.1:7447", "127.0.0.1:7447"),
            ("ws://relay.example/assent", "relay.example:80"),
            ("wss://relay.example", "relay.example:443"),
            ("wss://relay.example:8443/x?y", "relay.example:8443"),
            ("ws://[::1]:7447", "[::1]:7447"),
            ("ws://[::1]", "[::1]:80"),
        ] {
            assert_eq!(relay_address(url), address, "{url}");
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn probing_a_closed_port_or_a_silent_one_is_quick() {
        let rt = runtime();
        let key = PrivateKey::generate("a@h");
        // A port nobody listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("ws://127.0.0.1:{port}");
        let patience = Duration::from_millis(500);
        for key in [None, Some(&key)] {
            let probe = rt.block_on(probe_relay(&url, &ConnectOptions::default(), key, patience));
            assert!(matches!(probe, RelayProbe::Unreachable(_)), "{probe:?}");
        }
        // Listening but never answering: the login gives up after the patience.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}", silent.local_addr().unwrap());
        let started = std::time::Instant::now();
        let probe = rt.block_on(probe_relay(
            &url,
            &ConnectOptions::default(),
            Some(&key),
            patience,
        ));
        assert!(
            matches!(probe, RelayProbe::Unreachable(ref why) if why.contains("no answer")),
            "{probe:?}"
        );
        assert!(started.elapsed() < patience * 4, "{:?}", started.elapsed());
        // Without a key, an open port is all that is asked.
        assert_eq!(
            rt.block_on(probe_relay(
                &url,
                &ConnectOptions::default(),
                None,
                patience
            )),
            RelayProbe::Open
        );
    }

    #[test]
    fn probing_a_relay_tells_a_login_from_a_refusal() {
        let rt = runtime();
        let approver = PrivateKey::generate("alice@h");
        let allowed = PrivateKey::generate("bot@h");
        let stranger = PrivateKey::generate("other@h");
        let config = assent_relay::RelayConfig::from_toml_str(&format!(
            "[[approver]]\nname = \"alice\"\nkey = {}\n[agents]\npolicy = \"allowlist\"\n[[agent]]\nname = \"bot\"\nkey = {}\n",
            quote(&approver.public().to_openssh("alice@h")),
            quote(&allowed.public().to_openssh("bot@h")),
        ))
        .unwrap();
        rt.block_on(async {
            let relay = assent_relay::start(config, "127.0.0.1:0".parse().unwrap(), None)
                .await
                .unwrap();
            let url = format!("ws://{}", relay.local_addr());
            let patience = Duration::from_secs(5);
            assert_eq!(
                probe_relay(&url, &ConnectOptions::default(), Some(&allowed), patience).await,
                RelayProbe::LoggedIn
            );
            let probe =
                probe_relay(&url, &ConnectOptions::default(), Some(&stranger), patience).await;
            assert!(matches!(probe, RelayProbe::Refused(_)), "{probe:?}");
            relay.shutdown().await;
        });
    }

    #[test]
    fn host_id_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host-id");
        let missing = check_host_id(&path);
        assert_eq!(missing.mark, Mark::Missing);
        assert!(missing.detail.contains("make one as root"), "{missing}");
        std::fs::write(&path, "nonsense\n").unwrap();
        let bad = check_host_id(&path);
        assert_eq!(bad.mark, Mark::Problem);
        assert!(bad.detail.contains("does not hold a host id"), "{bad}");
        std::fs::write(&path, "3f".repeat(16) + "\n").unwrap();
        assert_eq!(
            check_host_id(&path).to_string(),
            format!(
                "ok       host id    {} (from {})",
                "3f".repeat(16),
                path.display()
            )
        );
    }

    #[test]
    fn requester_lines() {
        let path = Path::new(ETC);
        let listed = parsed(&["alice"], "[\"root\", \"pg\"]");
        let item = check_requester(&listed, path, "openclaw");
        assert_eq!(item.mark, Mark::Ok);
        assert!(item.detail.contains("(run_as: root, pg)"), "{item}");

        let item = check_requester(&listed, path, "other");
        assert_eq!((item.mark, item.exit), (Mark::Missing, Some(Exit::Config)));
        assert!(
            item.detail.contains(
                "fix: as root, add a [[requester]] block (user = \"other\", run_as = [\"root\"])"
            ),
            "{item}"
        );

        let item = check_requester(&ElevatorFile::Absent, path, "openclaw");
        assert_eq!((item.mark, item.exit), (Mark::Missing, Some(Exit::Config)));
        assert!(item.detail.contains("does not exist"), "{item}");

        let unreadable = ElevatorFile::Unreadable(format!("{ETC} is not readable: denied"));
        let item = check_requester(&unreadable, path, "openclaw");
        assert_eq!((item.mark, item.exit), (Mark::Unknown, None));
        assert!(item.detail.starts_with("cannot tell"), "{item}");

        let bad = ElevatorFile::Unparsable(format!("{ETC} does not parse: line 1"));
        let item = check_requester(&bad, path, "openclaw");
        assert_eq!((item.mark, item.exit), (Mark::Problem, Some(Exit::Config)));

        let open = ElevatorFile::Unsafe(format!("{ETC} is writable by group or others"));
        let item = check_requester(&open, path, "openclaw");
        assert_eq!((item.mark, item.exit), (Mark::Problem, Some(Exit::Config)));
        assert!(
            item.detail.contains("writable by group or others"),
            "{item}"
        );
    }

    #[test]
    fn the_route_line_names_mcp_under_no_new_privs() {
        let item = check_route(false);
        assert_eq!((item.mark, item.exit), (Mark::Ok, None));
        assert!(item.detail.contains("`sudo` entry"), "{item}");
        let item = check_route(true);
        assert_eq!((item.mark, item.exit), (Mark::Problem, Some(Exit::Config)));
        assert!(item.detail.starts_with("MCP only"), "{item}");
        assert!(item.detail.contains("`assent mcp`"), "{item}");
    }

    #[test]
    fn approver_lines() {
        let path = Path::new(ETC);
        let two = parsed(&["alice", "bob"], "[\"root\"]");
        let item = check_approvers(&two, path);
        assert_eq!(item.mark, Mark::Ok);
        assert_eq!(item.detail, format!("2 listed in {ETC}: alice, bob"));

        let item = check_approvers(&ElevatorFile::Absent, path);
        assert_eq!(item.mark, Mark::Missing);
        let item = check_approvers(&ElevatorFile::Unreadable("no".into()), path);
        assert_eq!((item.mark, item.exit), (Mark::Unknown, None));
        let item = check_approvers(&ElevatorFile::Unparsable("no".into()), path);
        assert_eq!(
            (item.mark, item.exit),
            (Mark::Unknown, None),
            "the requester line already reports it"
        );
    }

    #[test]
    fn toml_quoting_survives_a_round_trip() {
        for text in [
            "openclaw",
            "with \"quotes\"",
            "back\\slash",
            "ssh-ed25519 AAAA x@y",
        ] {
            let doc: toml::Table = toml::from_str(&format!("v = {}", quote(text))).unwrap();
            assert_eq!(doc["v"].as_str(), Some(text));
        }
    }
}
