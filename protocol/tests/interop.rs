//! Interoperability with the real `ssh-keygen` (SPEC §4.1, §4.2, §11).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assent_protocol::payload::{KindDecision, V1};
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

#[test]
fn a_decision_signed_by_ssh_keygen_verifies() {
    let dir = Scratch::new("sign");
    let key_path = keygen(&dir, "alice");
    let payload_path = dir.path("decision.json");
    std::fs::write(&payload_path, decision().to_bytes()).unwrap();
    let out = ssh_keygen(
        &[
            "-Y",
            "sign",
            "-f",
            key_path.to_str().unwrap(),
            "-n",
            "decision@assent",
            payload_path.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let armored = std::fs::read_to_string(dir.path("decision.json.sig")).unwrap();
    let blob = sshsig::dearmor(&armored).unwrap();
    let env = Envelope::from_signature(&decision().to_bytes(), &blob);

    let opened = env.open::<Decision>().unwrap();
    assert_eq!(opened.payload, decision());
    let public =
        PublicKey::parse(&std::fs::read_to_string(key_path.with_extension("pub")).unwrap())
            .unwrap();
    assert_eq!(opened.signer, public);
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
    let payload = dir.path("payload");
    std::fs::write(&payload, env.payload_bytes_unverified().unwrap()).unwrap();
    let sig = dir.path("payload.sig");
    std::fs::write(&sig, env.armored_signature().unwrap()).unwrap();
    let allowed = dir.path("allowed_signers");
    std::fs::write(&allowed, format!("alice {}\n", key.public())).unwrap();

    let verify = |namespace: &str| {
        ssh_keygen(
            &[
                "-Y",
                "verify",
                "-f",
                allowed.to_str().unwrap(),
                "-I",
                "alice",
                "-n",
                namespace,
                "-s",
                sig.to_str().unwrap(),
            ],
            Some(&payload),
        )
    };
    let good = verify("decision@assent");
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(
        !verify("request@assent").status.success(),
        "another namespace must not verify"
    );
}
