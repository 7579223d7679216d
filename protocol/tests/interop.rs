//! Interoperability with the real `ssh-keygen` (SPEC §4.1, §4.2, §11).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assent_protocol::payload::{KindDecision, KindStatus, KindWithdraw, V1};
use assent_protocol::*;

fn ssh_keygen(args: &[&str], stdin: Option<&Path>) -> Output {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(args);
    if let Some(path) = stdin {
        cmd.stdin(std::fs::File::open(path).unwrap());
    }
    cmd.output().unwrap_or_else(|e| {
        panic!("ssh-keygen is required for the interop tests ({e}); install openssh-client")
    })
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("assent-interop-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn keygen(dir: &Scratch, name: &str) -> PathBuf {
    let path = dir.path(name);
    let out = ssh_keygen(
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "alice@laptop",
            "-f",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn decision() -> Decision {
    Decision {
        v: V1,
        kind: KindDecision,
        request_id: RequestId([5; 16]),
        request_sha256: Sha256Digest([6; 32]),
        verdict: Verdict::Approve,
        grant: Grant::Once,
        not_before: 100,
        not_after: Some(220),
        cmd_sha256: Sha256Digest([7; 32]),
        approver: "alice".into(),
        console: ConsoleId([0xc0; 16]),
        decided_at: 100,
        note: None,
    }
}

#[test]
fn ssh_keygen_keys_load_and_fingerprints_match() {
    let dir = Scratch::new("keys");
    let path = keygen(&dir, "k");
    let private = PrivateKey::from_openssh(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let pub_line = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let (public, comment) = PublicKey::parse_with_comment(&pub_line).unwrap();
    assert_eq!(private.public(), public);
    assert_eq!(comment, "alice@laptop");
    assert_eq!(private.comment(), "alice@laptop");

    let out = ssh_keygen(
        &["-l", "-f", path.with_extension("pub").to_str().unwrap()],
        None,
    );
    let listed = String::from_utf8(out.stdout).unwrap();
    let fp = listed.split_whitespace().nth(1).unwrap();
    assert_eq!(public.fingerprint().as_str(), fp);
}

#[test]
fn keys_we_write_load_in_ssh_keygen() {
    let dir = Scratch::new("ours");
    let key = PrivateKey::generate("agent@host");
    let path = dir.path("ours");
    std::fs::write(&path, key.to_openssh()).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = ssh_keygen(&["-y", "-f", path.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let derived = String::from_utf8(out.stdout).unwrap();
    assert_eq!(PublicKey::parse(&derived).unwrap(), key.public());
    // And our own parser reads what we wrote.
    let back = PrivateKey::from_openssh(&key.to_openssh()).unwrap();
    assert_eq!(back.public(), key.public());
    assert_eq!(back.comment(), "agent@host");
}

/// Sign `payload` with `ssh-keygen -Y sign -n NAMESPACE` and wrap the result in an envelope.
fn signed_by_ssh_keygen(
    dir: &Scratch,
    key_path: &Path,
    namespace: &str,
    payload: &[u8],
) -> Envelope {
    let payload_path = dir.path(&format!("{namespace}.payload"));
    std::fs::write(&payload_path, payload).unwrap();
    let out = ssh_keygen(
        &[
            "-Y",
            "sign",
            "-f",
            key_path.to_str().unwrap(),
            "-n",
            namespace,
            payload_path.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let armored = std::fs::read_to_string(payload_path.with_extension("payload.sig")).unwrap();
    let blob = sshsig::dearmor(&armored).unwrap();
    Envelope::from_signature(payload, &blob)
}

/// Whether `ssh-keygen -Y verify -n NAMESPACE` accepts the envelope's signature by `key`.
fn ssh_keygen_verifies(dir: &Scratch, key: &PublicKey, env: &Envelope, namespace: &str) -> bool {
    let payload = dir.path("verify.payload");
    std::fs::write(&payload, env.payload_bytes_unverified().unwrap()).unwrap();
    let sig = dir.path("verify.payload.sig");
    std::fs::write(&sig, env.armored_signature().unwrap()).unwrap();
    let allowed = dir.path("allowed_signers");
    std::fs::write(&allowed, format!("signer {key}\n")).unwrap();
    let out = ssh_keygen(
        &[
            "-Y",
            "verify",
            "-f",
            allowed.to_str().unwrap(),
            "-I",
            "signer",
            "-n",
            namespace,
            "-s",
            sig.to_str().unwrap(),
        ],
        Some(&payload),
    );
    out.status.success()
}

fn public_of(key_path: &Path) -> PublicKey {
    PublicKey::parse(&std::fs::read_to_string(key_path.with_extension("pub")).unwrap()).unwrap()
}

#[test]
fn a_decision_signed_by_ssh_keygen_verifies() {
    let dir = Scratch::new("sign");
    let key_path = keygen(&dir, "alice");
    let env = signed_by_ssh_keygen(&dir, &key_path, "decision@assent", &decision().to_bytes());
    let opened = env.open::<Decision>().unwrap();
    assert_eq!(opened.payload, decision());
    assert_eq!(opened.signer, public_of(&key_path));
    // The same signature is not a status.
    assert!(matches!(
        env.open::<Status>(),
        Err(Error::WrongNamespace { .. })
    ));
}

#[test]
fn our_signatures_pass_ssh_keygen_verify() {
    let dir = Scratch::new("verify");
    let key = PrivateKey::generate("alice@laptop");
    let env = Envelope::seal(&key, &decision());
    assert!(ssh_keygen_verifies(
        &dir,
        &key.public(),
        &env,
        "decision@assent"
    ));
    assert!(
        !ssh_keygen_verifies(&dir, &key.public(), &env, "request@assent"),
        "another namespace must not verify"
    );
}

fn withdraw() -> Withdraw {
    Withdraw {
        v: V1,
        kind: KindWithdraw,
        request_id: RequestId([5; 16]),
        request_sha256: Sha256Digest([6; 32]),
        withdrawn_at: 150,
    }
}

#[test]
fn withdraws_interoperate_under_their_namespace() {
    let dir = Scratch::new("withdraw");
    let key_path = keygen(&dir, "agent");
    let theirs = signed_by_ssh_keygen(&dir, &key_path, "withdraw@assent", &withdraw().to_bytes());
    let opened = theirs.open::<Withdraw>().unwrap();
    assert_eq!(opened.payload, withdraw());
    assert_eq!(opened.signer, public_of(&key_path));
    assert!(matches!(
        theirs.open::<Request>(),
        Err(Error::WrongNamespace { .. })
    ));

    let key = PrivateKey::generate("agent@host");
    let ours = Envelope::seal(&key, &withdraw());
    assert!(ssh_keygen_verifies(
        &dir,
        &key.public(),
        &ours,
        "withdraw@assent"
    ));
    assert!(!ssh_keygen_verifies(
        &dir,
        &key.public(),
        &ours,
        "request@assent"
    ));
}

#[test]
fn a_status_with_revocations_signed_by_ssh_keygen_verifies() {
    let dir = Scratch::new("status");
    let key_path = keygen(&dir, "alice");
    let status = Status {
        v: V1,
        kind: KindStatus,
        approver: "alice".into(),
        console: ConsoleId([0xc0; 16]),
        issued_at: 300,
        revoked: [Revocation {
            decision_sha256: Sha256Digest([8; 32]),
            until: Some(4000),
        }]
        .into_iter()
        .collect(),
    };
    let env = signed_by_ssh_keygen(&dir, &key_path, "status@assent", &status.to_bytes());
    assert_eq!(env.open::<Status>().unwrap().payload, status);
}

/// The fuzz seeds are written by `fuzz/make-seeds.sh` with `printf`, `sha256sum` and
/// `ssh-keygen -Y sign` only: an implementation of the formats from standard tools. Each of
/// its envelopes opens here under its own namespace, and its host id file reads.
#[test]
fn payloads_made_with_standard_tools_open() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/envelope_payloads");
    let envelope = |name: &str| {
        Envelope::from_json(&std::fs::read_to_string(seeds.join(name)).unwrap()).unwrap()
    };
    let request = envelope("envelope-request.json").open::<Request>().unwrap();
    let decision = envelope("envelope-decision.json")
        .open::<Decision>()
        .unwrap();
    assert_eq!(decision.payload.request_sha256, request.sha256);
    assert_eq!(decision.payload.cmd_sha256, request.payload.cmd_sha256());
    let status = envelope("envelope-status.json").open::<Status>().unwrap();
    assert_eq!(status.payload.console, decision.payload.console);
    assert_eq!(status.payload.revoked.len(), 1);
    let withdraw = envelope("envelope-withdraw.json")
        .open::<Withdraw>()
        .unwrap();
    assert_eq!(withdraw.payload.request_sha256, request.sha256);
    assert_eq!(withdraw.signer, request.signer);
    envelope("envelope-login.json").open::<Login>().unwrap();
    let host_id = HostId::from_file(&std::fs::read(seeds.join("host-id")).unwrap()).unwrap();
    assert_eq!(request.payload.host_id, host_id);
}
