//! The `assent-console` binary: key safety, and the scripted `list | approve | deny` against a
//! real relay with a real agent connection on the other side.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assent_console::testing;
use assent_protocol::{Decision, Envelope, Grant, PrivateKey, Request, RequestId, Role, Verdict};
use assent_relay::{Client, Event, RelayConfig};

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

    let (code, _, err) = home.run(&["keygen"]).await;
    assert_ne!(code, 0);
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

/// A relay with `approver` listed, an agent connected to it, and a request it submitted.
async fn relay_with_request(
    approver: &PrivateKey,
    argv: &str,
) -> (assent_relay::RelayHandle, Client, Request) {
    let config = RelayConfig::default().with_approver("alice", approver.public());
    let relay = assent_relay::start(config, "127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let agent_key = testing::agent_key(9);
    let mut agent = Client::connect(&relay.url(), &agent_key, Role::Agent)
        .await
        .unwrap();
    let mut request = testing::request(argv, &[]);
    request.id = RequestId::random();
    request.created_at = now();
    request.expires_at = now() + 300;
    agent
        .submit(&Envelope::seal(&agent_key, &request))
        .await
        .unwrap();
    loop {
        if let Event::Queued { .. } = agent.next_event().await.unwrap() {
            break;
        }
    }
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
    let id = request.id.to_hex();

    let (code, out, err) = home.run(&["list", "--relay", &url]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&id) && out.contains("systemctl restart nginx"),
        "{out}"
    );
    assert!(out.contains("[new-key root]"), "{out}");

    let (code, _, err) = home.run(&["approve", "ffff", "--relay", &url]).await;
    assert_eq!(code, 1);
    assert!(err.contains("no pending request with id ffff"), "{err}");

    let (code, out, err) = home
        .run(&[
            "approve",
            &id[..10],
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
        out.starts_with(&format!("approved timed 15m {id}")),
        "{out}"
    );

    let decision = decision_for(&mut agent).await;
    assert_eq!(decision.signer, key.public());
    let d = &decision.payload;
    assert_eq!((d.verdict, d.grant), (Verdict::Approve, Grant::Timed));
    assert_eq!(d.window_s(), Some(900));
    assert_eq!(d.request_id, request.id);
    assert_eq!(d.cmd_sha256, request.cmd_sha256());
    assert_eq!(d.approver, "alice");
    assert_eq!(log_lines(&home.0).len(), 1, "logged");
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_deny_with_note() {
    let home = Home::new("deny");
    assert_eq!(home.run(&["keygen", "--name", "alice"]).await.0, 0);
    let key = home.private_key();
    let (relay, mut agent, request) = relay_with_request(&key, "rm -rf /srv").await;
    let url = relay.url();
    let id = request.id.to_hex();
    let (code, out, err) = home
        .run(&[
            "deny",
            &id,
            "--note",
            "not during the freeze",
            "--relay",
            &url,
            "--name",
            "alice",
        ])
        .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("denied {id}")), "{out}");
    let decision = decision_for(&mut agent).await;
    assert_eq!(decision.payload.verdict, Verdict::Deny);
    assert_eq!(
        decision.payload.note.as_deref(),
        Some("not during the freeze")
    );

    // Decided: it is no longer pending.
    let (code, _, err) = home.run(&["deny", &id, "--relay", &url]).await;
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
