//! Strict parsing, round trips and tamper detection for every payload and the envelope.

use assent_protocol::payload::{KindDecision, KindRequest, KindStatus, V1};
use assent_protocol::*;
use proptest::prelude::*;

fn agent_key() -> PrivateKey {
    PrivateKey::from_seed(&[1; 32], "agent")
}

fn approver_key() -> PrivateKey {
    PrivateKey::from_seed(&[2; 32], "alice")
}

fn request() -> Request {
    Request {
        v: V1,
        kind: KindRequest,
        id: RequestId([0xab; 16]),
        agent: "openclaw".into(),
        host: "mini.local".into(),
        user: "openclaw".into(),
        uid: 1001,
        run_as: "root".into(),
        program: "/usr/bin/apt-get".into(),
        program_sha256: Sha256Digest([3; 32]),
        argv: vec!["apt-get".into(), "upgrade".into()],
        cwd: "/home/openclaw/work".into(),
        env: Env([("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string())].into()),
        reason: "security patch".into(),
        grant: Grant::Once,
        ttl_s: None,
        created_at: 1_763_770_000,
        expires_at: 1_763_770_300,
    }
}

fn decision(req: &Signed<Request>) -> Decision {
    Decision {
        v: V1,
        kind: KindDecision,
        request_id: req.payload.id,
        request_sha256: req.sha256,
        verdict: Verdict::Approve,
        grant: Grant::Once,
        not_before: 1_763_770_010,
        not_after: Some(1_763_770_130),
        cmd_sha256: req.payload.cmd_sha256(),
        approver: "alice".into(),
        decided_at: 1_763_770_010,
        note: None,
    }
}

fn status() -> Status {
    Status {
        v: V1,
        kind: KindStatus,
        approver: "alice".into(),
        issued_at: 1_763_770_500,
        revoked: vec![Sha256Digest([9; 32])],
    }
}

/// Replace one top-level field of a payload's JSON and re-parse it.
fn with_field<T: Payload>(payload: &T, field: &str, value: serde_json::Value) -> Result<T, Error> {
    let mut json: serde_json::Value = serde_json::from_slice(&payload.to_bytes()).unwrap();
    json[field] = value;
    T::from_bytes(serde_json::to_string(&json).unwrap().as_bytes())
}

#[test]
fn the_spec_example_request_parses() {
    let text = r#"{"v":1, "kind":"request",
     "id":"0123456789abcdef0123456789abcdef",
     "agent":"openclaw", "host":"mini.local", "user":"openclaw", "uid":1001,
     "run_as":"root", "program":"/usr/bin/apt-get",
     "program_sha256":"0000000000000000000000000000000000000000000000000000000000000000",
     "argv":["apt-get","upgrade"], "cwd":"/home/openclaw/work",
     "env":{"DEBIAN_FRONTEND":"noninteractive"}, "reason":"security patch",
     "grant":"once", "ttl_s":null, "created_at":1763770000, "expires_at":1763770300}"#;
    let req = Request::from_bytes(text.as_bytes()).unwrap();
    assert_eq!(req.argv, ["apt-get", "upgrade"]);
    assert_eq!(req.env.0["DEBIAN_FRONTEND"], "noninteractive");
}

#[test]
fn payloads_round_trip_through_envelopes() {
    let req = Envelope::seal(&agent_key(), &request())
        .open::<Request>()
        .unwrap();
    assert_eq!(req.payload, request());
    assert_eq!(req.signer, agent_key().public());
    assert_eq!(req.sha256, sha256(&req.bytes));

    let dec = Envelope::seal(&approver_key(), &decision(&req))
        .open::<Decision>()
        .unwrap();
    assert_eq!(dec.payload, decision(&req));
    assert_eq!(dec.signer, approver_key().public());

    let st = Envelope::seal(&approver_key(), &status())
        .open::<Status>()
        .unwrap();
    assert_eq!(st.payload, status());

    let env = Envelope::seal(&agent_key(), &request());
    assert_eq!(Envelope::from_json(&env.to_json()).unwrap(), env);
}

#[test]
fn an_envelope_opened_as_the_wrong_kind_is_refused() {
    let env = Envelope::seal(&approver_key(), &status());
    let err = env.open::<Decision>().unwrap_err();
    assert!(matches!(err, Error::WrongNamespace { .. }), "{err}");
}

#[test]
fn unknown_fields_version_and_kind_are_refused() {
    let req = request();
    assert!(with_field(&req, "extra", 1.into()).is_err());
    assert!(with_field(&req, "v", 2.into()).is_err());
    assert!(with_field(&req, "v", "1".into()).is_err());
    assert!(with_field(&req, "kind", "decision".into()).is_err());
    assert!(with_field(&req, "id", "ABAB".into()).is_err());
    assert!(
        with_field(&req, "id", "AB".repeat(16).into()).is_err(),
        "upper-case hex"
    );
    assert!(with_field(&req, "program_sha256", "00".into()).is_err());
    assert!(with_field(&req, "uid", (-1).into()).is_err());
    assert!(with_field(&req, "grant", "forever".into()).is_err());
    assert!(with_field(&status(), "revoked", serde_json::json!(["zz"])).is_err());
}

#[test]
fn duplicate_fields_and_env_keys_are_refused() {
    let text = String::from_utf8(request().to_bytes()).unwrap();
    let dup_field = text.replacen("\"user\":", "\"user\":\"root\",\"user\":", 1);
    assert!(Request::from_bytes(dup_field.as_bytes()).is_err());
    let dup_env = text.replacen("\"env\":{", "\"env\":{\"DEBIAN_FRONTEND\":\"x\",", 1);
    assert!(
        Request::from_bytes(dup_env.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("duplicate")
    );
}

#[test]
fn structural_rules_are_enforced() {
    let req = request();
    assert!(with_field(&req, "argv", serde_json::json!([])).is_err());
    assert!(with_field(&req, "argv", serde_json::json!(["a\u{0}b"])).is_err());
    assert!(with_field(&req, "program", "apt-get".into()).is_err());
    assert!(with_field(&req, "cwd", "work".into()).is_err());
    assert!(with_field(&req, "env", serde_json::json!({"A=B": "c"})).is_err());
    assert!(with_field(&req, "env", serde_json::json!({"1A": "c"})).is_err());
    assert!(with_field(&req, "env", serde_json::json!({"A": "c\u{0}"})).is_err());
    assert!(with_field(&req, "host", "".into()).is_err());
    assert!(with_field(&req, "user", "a\nb".into()).is_err());
    assert!(
        with_field(&req, "ttl_s", 60.into()).is_err(),
        "ttl_s on a once request"
    );
    assert!(with_field(&req, "expires_at", 1.into()).is_err());
    let mut timed = request();
    timed.grant = Grant::Timed;
    assert!(
        Request::from_bytes(&timed.to_bytes()).is_err(),
        "timed without ttl_s"
    );
    timed.ttl_s = Some(900);
    assert!(Request::from_bytes(&timed.to_bytes()).is_ok());

    let signed = Envelope::seal(&agent_key(), &request())
        .open::<Request>()
        .unwrap();
    let dec = decision(&signed);
    assert!(with_field(&dec, "not_after", serde_json::Value::Null).is_err());
    assert!(
        with_field(&dec, "not_after", 5.into()).is_err(),
        "ends before it starts"
    );
    let mut always = dec.clone();
    always.grant = Grant::Always;
    assert!(
        Decision::from_bytes(&always.to_bytes()).is_err(),
        "always with not_after"
    );
    always.not_after = None;
    assert!(Decision::from_bytes(&always.to_bytes()).is_ok());
}

#[test]
fn non_utf8_payloads_are_refused() {
    let mut bytes = request().to_bytes();
    let at = bytes.windows(8).position(|w| w == b"openclaw").unwrap();
    bytes[at] = 0xff;
    assert!(Request::from_bytes(&bytes).is_err());
}

#[test]
fn grant_tokens_round_trip_and_bind() {
    let req_env = Envelope::seal(&agent_key(), &request());
    let req = req_env.open::<Request>().unwrap();
    let token = GrantToken {
        request: req_env,
        decision: Envelope::seal(&approver_key(), &decision(&req)),
        status: Some(Envelope::seal(&approver_key(), &status())),
    };
    let decoded = GrantToken::decode(&token.encode()).unwrap();
    assert_eq!(decoded, token);
    let opened = decoded.open().unwrap();
    assert!(opened.decision_binds_request());
    assert_eq!(opened.status.unwrap().payload, status());

    // A decision for another request does not bind.
    let mut other = request();
    other.reason = "something else".into();
    let other_env = Envelope::seal(&agent_key(), &other);
    let swapped = GrantToken {
        request: other_env,
        ..token.clone()
    };
    assert!(!swapped.open().unwrap().decision_binds_request());

    // A status in the decision's slot is refused by namespace.
    let wrong = GrantToken {
        decision: token.status.clone().unwrap(),
        ..token
    };
    assert!(wrong.open().is_err());

    assert!(GrantToken::decode("not base64!").is_err());
    assert!(GrantToken::decode(&"A".repeat(MAX_TOKEN_LEN + 4)).is_err());
}

fn sealed_token() -> GrantToken {
    let req_env = Envelope::seal(&agent_key(), &request());
    let req = req_env.open::<Request>().unwrap();
    GrantToken {
        request: req_env,
        decision: Envelope::seal(&approver_key(), &decision(&req)),
        status: Some(Envelope::seal(&approver_key(), &status())),
    }
}

/// Change one byte of one envelope's payload or signature and re-encode it canonically, so the
/// change reaches the verifier instead of being stopped by base64 decoding.
fn tamper(env: &Envelope, in_sig: bool, index: usize, xor: u8) -> Envelope {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let field = if in_sig { &env.sig } else { &env.payload };
    let mut bytes = b64.decode(field).unwrap();
    let i = index % bytes.len();
    bytes[i] ^= xor;
    let field = b64.encode(bytes);
    if in_sig {
        Envelope {
            sig: field,
            ..env.clone()
        }
    } else {
        Envelope {
            payload: field,
            ..env.clone()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Every single-byte change of any payload or signature in a token is rejected.
    #[test]
    fn any_single_byte_change_is_rejected(which in 0usize..3, in_sig: bool, index: usize, xor in 1u8..=255) {
        let token = sealed_token();
        let mut bad = token.clone();
        match which {
            0 => bad.request = tamper(&token.request, in_sig, index, xor),
            1 => bad.decision = tamper(&token.decision, in_sig, index, xor),
            _ => bad.status = Some(tamper(token.status.as_ref().unwrap(), in_sig, index, xor)),
        }
        prop_assert!(bad.open().is_err());
    }

    /// Requests with arbitrary strings round-trip byte-exactly through sign, encode and open.
    #[test]
    fn arbitrary_requests_round_trip(
        argv in proptest::collection::vec("[^\u{0}]{0,40}", 1..6),
        env in proptest::collection::btree_map("[A-Z_][A-Z0-9_]{0,12}", "[^\u{0}]{0,40}", 0..4),
        reason in "[^\u{0}]{0,80}",
        uid: u32,
    ) {
        let mut req = request();
        req.argv = argv;
        req.env = Env(env);
        req.reason = reason;
        req.uid = uid;
        let env = Envelope::seal(&agent_key(), &req);
        let opened = Envelope::from_json(&env.to_json()).unwrap().open::<Request>().unwrap();
        prop_assert_eq!(&opened.payload, &req);
        prop_assert_eq!(opened.payload.cmd_sha256(), req.cmd_sha256());
    }

    /// Garbage never panics the token decoder or the envelope parser.
    #[test]
    fn garbage_is_an_error_not_a_panic(text in ".{0,400}") {
        let _ = GrantToken::decode(&text).map(|t| t.open());
        let _ = Envelope::from_json(&text).map(|e| e.open::<Request>());
    }
}

#[test]
fn cmd_sha256_changes_with_every_part() {
    let base = request();
    let h = base.cmd_sha256();
    let mut r = base.clone();
    r.run_as = "daemon".into();
    assert_ne!(r.cmd_sha256(), h);
    let mut r = base.clone();
    r.program = "/usr/bin/apt".into();
    assert_ne!(r.cmd_sha256(), h);
    let mut r = base.clone();
    r.program_sha256 = Sha256Digest([4; 32]);
    assert_ne!(r.cmd_sha256(), h);
    let mut r = base.clone();
    r.argv[0] = "apt".into();
    assert_ne!(r.cmd_sha256(), h);
    let mut r = base.clone();
    r.cwd = "/".into();
    assert_ne!(r.cmd_sha256(), h);
    let mut r = base.clone();
    r.env.0.insert("X".into(), "1".into());
    assert_ne!(r.cmd_sha256(), h);
    // Reason, id and times are not part of the command.
    let mut r = base;
    r.reason = "other".into();
    r.id = RequestId([0; 16]);
    assert_eq!(r.cmd_sha256(), h);
}

#[test]
fn error_messages_are_one_printable_line_whatever_the_sender_chose() {
    let hostile: [&[u8]; 3] = [
        b"{\"a\\nb\\u001b[31m\":1}",
        b"{\"v\":1,\"kind\":\"request\",\"x\\r\\ny\":2}",
        b"{\"\\u0007\":true}",
    ];
    for bytes in hostile {
        let err = Request::from_bytes(bytes).unwrap_err().to_string();
        assert!(!err.chars().any(char::is_control), "{err:?}");
        let env = Envelope::from_json(std::str::from_utf8(bytes).unwrap()).unwrap_err();
        assert!(!env.to_string().chars().any(char::is_control), "{env:?}");
    }
}
