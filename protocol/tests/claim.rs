//! `Envelope::claim`: parsing for routing without verifying. It must refuse everything `open`
//! refuses for its form, accept a bad signature (that is the point), and never let a bad
//! signature through `open`.

use assent_protocol::payload::{KindRequest, KindStatus, V1};
use assent_protocol::*;

fn agent_key() -> PrivateKey {
    PrivateKey::from_seed(&[1; 32], "agent")
}

fn other_key() -> PrivateKey {
    PrivateKey::from_seed(&[3; 32], "other")
}

fn request() -> Request {
    Request {
        v: V1,
        kind: KindRequest,
        id: RequestId([0xab; 16]),
        agent: "openclaw".into(),
        host: "mini.local".into(),
        host_id: HostId([0x3f; 16]),
        user: "openclaw".into(),
        uid: 1001,
        run_as: "root".into(),
        program: "/usr/bin/apt-get".into(),
        program_sha256: Sha256Digest([3; 32]),
        argv: vec!["apt-get".into(), "upgrade".into()],
        cwd: "/home/openclaw/work".into(),
        env: Env::default(),
        reason: "security patch".into(),
        grant: Grant::Once,
        ttl_s: None,
        created_at: 1_763_770_000,
        expires_at: 1_763_770_300,
    }
}

/// The envelope's SSHSIG blob, changed by `change`.
fn with_blob(env: &Envelope, change: impl FnOnce(&mut Vec<u8>)) -> Envelope {
    let armored = env.armored_signature().unwrap();
    let mut blob = sshsig::dearmor(&armored).unwrap();
    change(&mut blob);
    Envelope::from_signature(&env.payload_bytes_unverified().unwrap(), &blob)
}

#[test]
fn a_good_envelope_claims_what_open_verifies() {
    let env = Envelope::seal(&agent_key(), &request());
    let claimed = env.claim::<Request>().unwrap();
    let signed = env.open::<Request>().unwrap();
    assert_eq!(claimed.payload, signed.payload);
    assert_eq!(claimed.bytes, signed.bytes);
    assert_eq!(claimed.sha256, signed.sha256);
    assert_eq!(claimed.sha256, sha256(&claimed.bytes));
    assert!(claimed.claimed_signer.is(&signed.signer));
    assert_eq!(claimed.envelope, env);
}

#[test]
fn a_corrupted_signature_is_claimed_but_refused_by_open() {
    let env = Envelope::seal(&agent_key(), &request());
    let corrupted = with_blob(&env, |blob| {
        let last = blob.len() - 1;
        blob[last] ^= 0x40;
    });
    let claimed = corrupted.claim::<Request>().unwrap();
    assert!(claimed.claimed_signer.is(&agent_key().public()));
    assert_eq!(claimed.payload, request());
    assert_eq!(corrupted.open::<Request>(), Err(Error::BadSignature));

    // Other payload bytes under the original signature: claimed, and refused by open.
    let mut changed = request();
    changed.argv.push("--yes".into());
    let swapped = Envelope {
        payload: Envelope::seal(&agent_key(), &changed).payload,
        sig: env.sig.clone(),
    };
    assert_eq!(swapped.claim::<Request>().unwrap().payload, changed);
    assert_eq!(swapped.open::<Request>(), Err(Error::BadSignature));

    // Another key's blob, signature bytes pasted over: names that key; open refuses.
    let theirs = Envelope::seal(&other_key(), &request());
    let forged = with_blob(&theirs, |blob| {
        let mine = sshsig::dearmor(&env.armored_signature().unwrap()).unwrap();
        let n = blob.len();
        blob[n - 64..].copy_from_slice(&mine[mine.len() - 64..]);
    });
    let claimed = forged.claim::<Request>().unwrap();
    assert!(claimed.claimed_signer.is(&other_key().public()));
    assert_eq!(forged.open::<Request>(), Err(Error::BadSignature));
}

#[test]
fn the_claimed_signer_is_the_key_named_in_the_blob() {
    let env = Envelope::seal(&other_key(), &request());
    let claimed = env.claim::<Request>().unwrap();
    assert!(claimed.claimed_signer.is(&other_key().public()));
    assert!(!claimed.claimed_signer.is(&agent_key().public()));
    assert_eq!(
        claimed.claimed_signer.fingerprint(),
        other_key().public().fingerprint()
    );
    assert_eq!(
        claimed.claimed_signer.as_bytes(),
        other_key().public().as_bytes()
    );
}

#[test]
fn another_namespace_is_refused() {
    let status = Status {
        v: V1,
        kind: KindStatus,
        approver: "alice".into(),
        console: ConsoleId([0xc0; 16]),
        issued_at: 1,
        revoked: Revocations::new(),
    };
    let env = Envelope::seal(&agent_key(), &status);
    assert!(matches!(
        env.claim::<Request>(),
        Err(Error::WrongNamespace { .. })
    ));
    // Request bytes signed under the decision namespace are not a request.
    let env = Envelope::seal_bytes(&agent_key(), Namespace::Decision, &request().to_bytes());
    assert!(matches!(
        env.claim::<Request>(),
        Err(Error::WrongNamespace { .. })
    ));
}

#[test]
fn malformed_blobs_are_refused() {
    let env = Envelope::seal(&agent_key(), &request());
    let blob = sshsig::dearmor(&env.armored_signature().unwrap()).unwrap();
    for cut in 0..blob.len() {
        let short = with_blob(&env, |b| b.truncate(cut));
        assert!(short.claim::<Request>().is_err(), "cut at {cut}");
    }
    let longer = with_blob(&env, |b| b.push(0));
    assert!(matches!(
        longer.claim::<Request>(),
        Err(Error::SignatureFormat(_))
    ));
    let not_sshsig = with_blob(&env, |b| b[0] = b'X');
    assert!(matches!(
        not_sshsig.claim::<Request>(),
        Err(Error::SignatureFormat(_))
    ));
    // "sha512" → "sha511": the hash algorithm is part of the form.
    let wrong_hash = with_blob(&env, |b| {
        let at = b.windows(6).position(|w| w == b"sha512").unwrap();
        b[at + 5] = b'1';
    });
    assert!(matches!(
        wrong_hash.claim::<Request>(),
        Err(Error::SignatureFormat(_))
    ));
    let garbage = Envelope {
        payload: env.payload.clone(),
        sig: "not base64!".into(),
    };
    assert!(matches!(
        garbage.claim::<Request>(),
        Err(Error::Envelope(_))
    ));
    let too_long = Envelope {
        payload: env.payload.clone(),
        sig: "A".repeat(2048),
    };
    assert!(matches!(
        too_long.claim::<Request>(),
        Err(Error::Envelope(_))
    ));
}

#[test]
fn malformed_payloads_are_refused() {
    let sealed = |bytes: &[u8]| Envelope::seal_bytes(&agent_key(), Namespace::Request, bytes);
    // Signed properly, but not a valid request.
    let mut json: serde_json::Value = serde_json::from_slice(&request().to_bytes()).unwrap();
    json["surprise"] = serde_json::json!(true);
    let unknown_field = sealed(json.to_string().as_bytes());
    assert!(matches!(
        unknown_field.claim::<Request>(),
        Err(Error::Payload(_))
    ));
    assert!(matches!(
        sealed(b"not json").claim::<Request>(),
        Err(Error::Payload(_))
    ));
    let mut json: serde_json::Value = serde_json::from_slice(&request().to_bytes()).unwrap();
    json["kind"] = serde_json::json!("decision");
    assert!(matches!(
        sealed(json.to_string().as_bytes()).claim::<Request>(),
        Err(Error::Payload(_))
    ));
    let env = Envelope::seal(&agent_key(), &request());
    let not_base64 = Envelope {
        payload: "%%%".into(),
        sig: env.sig.clone(),
    };
    assert!(matches!(
        not_base64.claim::<Request>(),
        Err(Error::Envelope(_))
    ));
    let oversized = Envelope {
        payload: "A".repeat(MAX_PAYLOAD_LEN * 2),
        sig: env.sig,
    };
    assert!(matches!(
        oversized.claim::<Request>(),
        Err(Error::Envelope(_))
    ));
}
