//! The `assent-console` binary: key safety, and the scripted `list | approve | deny` against a
//! real relay with a real agent connection on the other side.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assent_console::testing;
use assent_protocol::{
    Decision, Envelope, Grant, PrivateKey, Request, RequestId, Role, Signed, Verdict,
};
use assent_relay::RelayConfig;
use assent_relay_client::{Client, Event};

const BIN: &str = env!("CARGO_BIN_EXE_assent-console");

struct Home(PathBuf);

impl Home {
    fn new(label: &str) -> Home {
        let dir = std::env::temp_dir().join(format!("assent-cli-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Home(dir)
    }

    fn key(&self) -> PathBuf {
        self.0.join("config/assent/approver.key")
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("HOME", &self.0)
            .env("XDG_CONFIG_HOME", self.0.join("config"))
            .env("XDG_STATE_HOME", self.0.join("state"));
        cmd
    }

    async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.command(args).output().await.unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn private_key(&self) -> PrivateKey {
        PrivateKey::from_openssh(&std::fs::read_to_string(self.key()).unwrap()).unwrap()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn keygen_and_key_safety() {
    let home = Home::new("keys");
    let (code, out, err) = home.run(&["keygen", "--name", "alice"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("[[approver]]\nname = \"alice\""), "{out}");
    assert!(out.contains("fingerprint: SHA256:"), "{out}");
    assert!(home.key().with_extension("key.pub").exists());

    // An existing key is kept, with exit 78 as `assent keygen` gives.
    let (code, _, err) = home.run(&["keygen"]).await;
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("--force"), "{err}");

    std::fs::set_permissions(home.key(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = home.run(&["list"]).await;
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains(&format!("chmod 600 {}", home.key().display())),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    let empty = Home::new("nokey");
    let (code, _, err) = empty.run(&[]).await;
    assert_eq!(code, 78);
    assert!(err.contains("assent-console keygen"), "{err}");
}

/// A relay with `approver` listed.
async fn relay_for(approver: &PrivateKey) -> assent_relay::RelayHandle {
    let config = RelayConfig::default().with_approver("alice", approver.public());
    assent_relay::start(config, "127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap()
}

/// Connect as agent key 9 and submit `request`; wait until the relay queued it.
async fn submit(relay: &assent_relay::RelayHandle, request: &Request) -> (Client, Signed<Request>) {
    let agent_key = testing::agent_key(9);
    let mut agent = Client::connect(&relay.url(), &agent_key, Role::Agent)
        .await
        .unwrap();
    let envelope = Envelope::seal(&agent_key, request);
    agent.submit(&envelope).await.unwrap();
    loop {
        if let Event::Queued { .. } = agent.next_event().await.unwrap() {
            break;
        }
    }
    (agent, envelope.open().unwrap())
}

/// A fresh request for `argv`, created now.
fn fresh(argv: &str) -> Request {
    let mut request = testing::request(argv, &[]);
    request.id = RequestId::random();
    request.created_at = now();
    request.expires_at = now() + 300;
    request
}

/// A relay with `approver` listed, an agent connected to it, and a request it submitted.
async fn relay_with_request(
    approver: &PrivateKey,
    argv: &str,
) -> (assent_relay::RelayHandle, Client, Signed<Request>) {
    let relay = relay_for(approver).await;
    let (agent, request) = submit(&relay, &fresh(argv)).await;
    (relay, agent, request)
}

async fn decision_for(agent: &mut Client) -> assent_protocol::Signed<Decision> {
    let wait = async {
        loop {
            if let Event::Decision { envelope } = agent.next_event().await.unwrap() {
                return envelope.open::<Decision>().unwrap();
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("no decision reached the agent")
}

fn log_lines(home: &Path) -> Vec<String> {
    std::fs::read_to_string(home.join("state/assent/decisions.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_list_and_approve() {
    let home = Home::new("approve");
    assert_eq!(home.run(&["keygen", "--name", "alice"]).await.0, 0);
    let key = home.private_key();
    let (relay, mut agent, request) = relay_with_request(&key, "systemctl restart nginx").await;
    let url = relay.url();
    let reference = &request.sha256.to_hex()[..12];

    let (code, _, err) = home.run(&["approve", reference, "--relay", &url]).await;
    assert_eq!(code, 1, "never listed: {err}");
    assert!(err.contains("was never shown to you"), "{err}");

    let (code, out, err) = home.run(&["list", "--relay", &url]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("{reference}  openclaw@mini.local")),
        "the reference leads: {out}"
    );
    assert!(out.contains("systemctl restart nginx"), "{out}");
    assert!(out.contains("[new-key root]"), "{out}");

    // The id the agent chose is not a reference.
    let id = request.payload.id.to_hex();
    let (code, _, err) = home.run(&["approve", &id, "--relay", &url]).await;
    assert_eq!(code, 1);
    assert!(err.contains("no pending request with reference"), "{err}");
    let (code, _, err) = home.run(&["approve", "ffff", "--relay", &url]).await;
    assert_eq!(code, 64, "too short: {err}");
    assert!(err.contains("12-digit reference"), "{err}");
    // Usage errors: one line, exit 64.
    for args in [
        &["approve", reference, "--grant", "forever", "--relay", &url][..],
        &[
            "approve",
            reference,
            "--grant",
            "timed:900",
            "--relay",
            &url,
        ][..],
        &["list", "--no-such-option"][..],
        &["list", "--trust", "--relay", &url][..],
    ] {
        let (code, _, err) = home.run(args).await;
        assert_eq!(code, 64, "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }

    let (code, out, err) = home
        .run(&[
            "approve",
            reference,
            "--grant",
            "timed:15m",
            "--relay",
            &url,
            "--name",
            "alice",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "one line: {out}");
    assert!(
        out.starts_with(&format!(
            "approved timed 15m {reference}: systemctl restart nginx"
        )),
        "{out}"
    );

    let decision = decision_for(&mut agent).await;
    assert_eq!(decision.signer, key.public());
    let d = &decision.payload;
    assert_eq!((d.verdict, d.grant), (Verdict::Approve, Grant::Timed));
    assert_eq!(d.window_s(), Some(900));
    assert_eq!(d.request_id, request.payload.id);
    assert_eq!(d.request_sha256, request.sha256);
    assert_eq!(d.cmd_sha256, request.payload.cmd_sha256());
    assert_eq!(d.approver, "alice");
    assert_eq!(log_lines(&home.0).len(), 1, "logged");
    relay.shutdown().await;
}

/// What `list` prints names what runs: the program when argv[0] does not name it, and the
/// argv0-differs flag; agent text is escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_list_names_the_program_and_escapes() {
    let home = Home::new("list-program");
    assert_eq!(home.run(&["keygen", "--name", "alice"]).await.0, 0);
    let key = home.private_key();
    let relay = relay_for(&key).await;
    let mut request = fresh("systemctl restart nginx");
    request.program = "/usr/bin/bash".into();
    request.agent = "open\u{e0100}claw\u{a0}".into();
    let (_agent, signed) = submit(&relay, &request).await;
    let (code, out, err) = home.run(&["list", "--relay", &relay.url()]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("[/usr/bin/bash] systemctl restart nginx"),
        "{out}"
    );
    assert!(out.contains("argv0-differs"), "{out}");
    assert!(out.contains("open\\u{e0100}claw\\xa0@"), "{out}");
    assert!(
        !out.contains('\u{e0100}') && !out.contains('\u{a0}'),
        "{out}"
    );
    assert!(out.starts_with(&signed.sha256.to_hex()[..12]), "{out}");
    relay.shutdown().await;
}

/// The attack on v1: the approver lists `apt-get update`; that request goes away and the
/// agent sends `bash -c …` under the same id. `approve` with what was listed must not sign it,
/// and neither `list` nor `approve` accepts the reused id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_id_never_gets_the_listed_reference_signed() {
    let home = Home::new("reuse");
    assert_eq!(home.run(&["keygen", "--name", "alice"]).await.0, 0);
    let key = home.private_key();
    let first = relay_for(&key).await;
    let listed = fresh("apt-get update");
    let (agent, listed_signed) = submit(&first, &listed).await;
    let (code, out, err) = home.run(&["list", "--relay", &first.url()]).await;
    assert_eq!(code, 0, "{err}");
    let reference = out.split_whitespace().next().unwrap().to_string();
    assert_eq!(reference, listed_signed.sha256.to_hex()[..12]);
    drop(agent);
    first.shutdown().await;

    // A relay that no longer holds it (restarted, or forgot the expired id) gets new content
    // under the same id.
    let second = relay_for(&key).await;
    let mut evil = fresh("bash -c id");
    evil.id = listed.id;
    let (agent, _) = submit(&second, &evil).await;
    let url = second.url();

    for verb in ["approve", "deny"] {
        let (code, out, err) = home.run(&[verb, &reference, "--relay", &url]).await;
        assert_eq!(code, 1, "{verb}: {out}");
        assert!(
            err.contains("warning: refused a request from openclaw: its id"),
            "{verb}: {err}"
        );
        assert!(
            err.contains(&format!("no pending request with reference {reference}")),
            "{verb}: {err}"
        );
    }
    let (code, out, err) = home.run(&["list", "--relay", &url]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "no pending requests", "{out}");
    assert!(err.contains("already used by another request"), "{err}");
    // Nothing was signed: the decision log is empty.
    assert!(log_lines(&home.0).is_empty());
    drop(agent);
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_deny_with_note() {
    let home = Home::new("deny");
    assert_eq!(home.run(&["keygen", "--name", "alice"]).await.0, 0);
    let key = home.private_key();
    let (relay, mut agent, request) = relay_with_request(&key, "rm -rf /srv").await;
    let url = relay.url();
    let reference = &request.sha256.to_hex()[..12];
    let (code, out, err) = home
        .run(&[
            "deny",
            reference,
            "--note",
            "not during the freeze",
            "--relay",
            &url,
            "--name",
            "alice",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("denied {reference}")), "{out}");
    let decision = decision_for(&mut agent).await;
    assert_eq!(decision.payload.verdict, Verdict::Deny);
    assert_eq!(
        decision.payload.note.as_deref(),
        Some("not during the freeze")
    );

    // Decided: it is no longer pending.
    let (code, _, err) = home.run(&["deny", reference, "--relay", &url]).await;
    assert_eq!(code, 1, "{err}");
    relay.shutdown().await;
}

#[tokio::test]
async fn unreachable_relay_is_75() {
    let home = Home::new("unreachable");
    assert_eq!(home.run(&["keygen"]).await.0, 0);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, err) = home
        .run(&["list", "--relay", &format!("ws://127.0.0.1:{port}")])
        .await;
    assert_eq!(code, 75, "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

/// `keygen --trust` against a temporary elevator.toml.
#[tokio::test]
async fn keygen_trust_lists_the_key_once() {
    assert!(
        nix::unistd::getuid().is_root(),
        "this test needs root: --trust refuses otherwise"
    );
    let home = Home::new("trust");
    let elevator = home.0.join("etc/assent/elevator.toml");
    let elevator_arg = elevator.to_str().unwrap();
    let trust = [
        "keygen",
        "--trust",
        "--name",
        "alice",
        "--elevator-config",
        elevator_arg,
    ];

    let (code, out, err) = home.run(&trust).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("added approver \"alice\""), "{out}");
    assert!(out.contains("sudo assent-elevate check"), "{out}");
    let text = std::fs::read_to_string(&elevator).unwrap();
    let public = home.private_key().public();
    let table: toml::Table = text.parse().expect("parses");
    let approvers = table["approver"].as_array().unwrap();
    assert_eq!(approvers.len(), 1);
    assert_eq!(approvers[0]["name"].as_str(), Some("alice"));
    let listed = assent_protocol::PublicKey::parse(approvers[0]["key"].as_str().unwrap());
    assert_eq!(listed.unwrap(), public);
    assert!(
        text.starts_with("# added by assent-console keygen --trust on "),
        "{text}"
    );
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&elevator).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o644, 0, 0)
    );
    let dir = std::fs::metadata(elevator.parent().unwrap()).unwrap();
    assert_eq!(dir.mode() & 0o7777, 0o755);

    // Again: the existing key is reused (not regenerated), and nothing changes.
    let (code, out, err) = home.run(&trust).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("using the existing key"), "{out}");
    assert!(out.contains("nothing changed"), "{out}");
    assert_eq!(home.private_key().public(), public, "not regenerated");
    assert_eq!(std::fs::read_to_string(&elevator).unwrap(), text);

    // Another home whose approver is also called alice, with another key: refused.
    let other = Home::new("trust-other");
    let (code, _, err) = other.run(&trust).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already listed with another key"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_eq!(
        std::fs::read_to_string(&elevator).unwrap(),
        text,
        "unchanged"
    );

    // Under another name it is added next to alice, and the file still parses.
    let (code, _, err) = other
        .run(&[
            "keygen",
            "--trust",
            "--name",
            "bob",
            "--elevator-config",
            elevator_arg,
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    let after = std::fs::read_to_string(&elevator).unwrap();
    assert!(after.starts_with(&text), "appended: {after}");
    let table: toml::Table = after.parse().expect("still parses");
    assert_eq!(table["approver"].as_array().unwrap().len(), 2);
    assert_eq!(std::fs::metadata(&elevator).unwrap().mode() & 0o7777, 0o644);

    // A file that does not parse is left alone.
    std::fs::write(&elevator, "[settings\n").unwrap();
    let third = Home::new("trust-third");
    let (code, _, err) = third
        .run(&[
            "keygen",
            "--trust",
            "--name",
            "carol",
            "--elevator-config",
            elevator_arg,
        ])
        .await;
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("does not parse"), "{err}");
    assert_eq!(std::fs::read_to_string(&elevator).unwrap(), "[settings\n");
}

#[tokio::test]
async fn keygen_trust_is_refused_when_not_root() {
    let home = Home::new("trust-nobody");
    let elevator = home.0.join("elevator.toml");
    std::fs::write(&elevator, "# kept\n").unwrap();
    // nobody must be able to look into the home (and find no console.toml there).
    std::fs::set_permissions(&home.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = tokio::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(["keygen", "--trust", "--name", "alice", "--elevator-config"])
        .arg(&elevator)
        .env_clear()
        .env("HOME", &home.0)
        .env("XDG_CONFIG_HOME", home.0.join("config"))
        .env("XDG_STATE_HOME", home.0.join("state"));
    let out = cmd
        .output()
        .await
        .expect("setpriv (util-linux) is needed to run the binary as nobody");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("needs root"), "{err}");
    assert!(
        err.contains("sudo assent-console keygen --trust --key"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_eq!(std::fs::read_to_string(&elevator).unwrap(), "# kept\n");
    assert!(!home.key().exists(), "refused before making a key");
}

#[tokio::test]
async fn first_run_without_a_terminal_names_the_missing_key() {
    let home = Home::new("first-notty");
    let (code, out, err) = home.run(&["--relay", "ws://127.0.0.1:1"]).await;
    assert_eq!(code, 78, "{err}");
    assert_eq!(
        err,
        format!(
            "assent-console: no approver key at {}; create one with `assent-console keygen`\n",
            home.key().display()
        )
    );
    assert!(out.is_empty(), "no prompt: {out}");
    assert!(!home.key().exists());
}

/// Read the child's output into `seen` until it contains `needle`.
async fn read_until(out: &mut tokio::process::ChildStdout, seen: &mut String, needle: &str) {
    use tokio::io::AsyncReadExt;
    let wait = async {
        let mut buf = [0u8; 4096];
        while !seen.contains(needle) {
            let n = out.read(&mut buf).await.unwrap();
            assert!(n > 0, "ended before {needle:?}: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    if tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .is_err()
    {
        panic!("no {needle:?} in: {seen}");
    }
}

/// On a terminal (a pseudo-terminal from `script`), the console offers to make the key,
/// makes it (listing it with --trust), and opens; `q` quits.
#[tokio::test]
async fn first_run_on_a_terminal_offers_keygen_then_opens() {
    use tokio::io::AsyncWriteExt;
    assert!(
        nix::unistd::getuid().is_root(),
        "this test needs root: it uses --trust"
    );
    let home = Home::new("first-tty");
    let elevator = home.0.join("elevator.toml");
    let console = format!(
        "'{BIN}' --relay ws://127.0.0.1:1 --name alice --trust --elevator-config '{}'",
        elevator.display()
    );
    let mut proc = tokio::process::Command::new("script")
        .args(["-qec", &console, "/dev/null"])
        .env_clear()
        .env("HOME", &home.0)
        .env("XDG_CONFIG_HOME", home.0.join("config"))
        .env("XDG_STATE_HOME", home.0.join("state"))
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("script (util-linux) is needed for a pseudo-terminal");
    let mut stdin = proc.stdin.take().unwrap();
    let mut stdout = proc.stdout.take().unwrap();
    let mut seen = String::new();
    read_until(&mut stdout, &mut seen, "Create an approver key now? [Y/n]").await;
    assert!(seen.contains(&home.key().display().to_string()), "{seen}");
    stdin.write_all(b"y\n").await.unwrap();
    read_until(&mut stdout, &mut seen, "Press Enter to open the console.").await;
    assert!(seen.contains("[[approver]]"), "{seen}");
    assert!(seen.contains("added approver \"alice\""), "{seen}");
    stdin.write_all(b"\n").await.unwrap();
    read_until(&mut stdout, &mut seen, "\x1b[?1049h").await; // the console took the screen
    stdin.write_all(b"q").await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), proc.wait())
        .await
        .expect("q quits the console")
        .unwrap();
    assert_eq!(status.code(), Some(0), "{seen}");

    let public = home.private_key().public();
    let table: toml::Table = std::fs::read_to_string(&elevator).unwrap().parse().unwrap();
    let listed = table["approver"][0]["key"].as_str().unwrap();
    assert_eq!(assent_protocol::PublicKey::parse(listed).unwrap(), public);
}

#[tokio::test]
async fn man_page_and_completions_are_generated() {
    use clap::CommandFactory;
    let home = Home::new("generate");
    let (code, man, err) = home.run(&["--generate", "man"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(man.contains(".TH assent-console 1"), "{man}");
    assert!(man.contains(".SH KEYS"), "{man}");
    assert!(man.contains("EXIT STATUS"), "{man}");
    let cli = assent_console::cli::Cli::command();
    let subs: Vec<&str> = cli.get_subcommands().map(|s| s.get_name()).collect();
    assert_eq!(subs, ["keygen", "list", "approve", "deny"]);
    for sub in subs {
        assert!(
            man.contains(&format!("\\fBassent\\-console {sub}\\fR")),
            "{sub} missing"
        );
    }
    for shell in ["bash", "zsh", "fish"] {
        let (code, script, err) = home
            .run(&["--generate", &format!("complete-{shell}")])
            .await;
        assert_eq!(code, 0, "{err}");
        assert!(!script.trim().is_empty(), "{shell}");
        assert!(script.contains("keygen"), "{shell}: {script}");
    }
    let (code, _, _) = home.run(&["--generate", "pdf"]).await;
    assert_eq!(code, 64, "an unknown kind is a usage error");
}

#[test]
fn generating_into_a_closed_pipe_is_quiet() {
    use std::io::Read as _;
    use std::process::{Command, Stdio};
    let mut console = Command::new(BIN)
        .args(["--generate", "man"])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(console.stdout.take());
    let status = console.wait().unwrap();
    let mut stderr = String::new();
    console
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stderr, "");
}
