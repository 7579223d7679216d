//! Strict parsing, round trips and tamper detection for every payload and the envelope.

use assent_protocol::payload::{self, KindDecision, KindRequest, KindStatus, V1};
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
        host_id: HostId([0x3f; 16]),
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
        console: ConsoleId([0xc0; 16]),
        decided_at: 1_763_770_010,
        note: None,
    }
}

fn status() -> Status {
    Status {
        v: V1,
        kind: KindStatus,
        approver: "alice".into(),
        console: ConsoleId([0xc0; 16]),
        issued_at: 1_763_770_500,
        revoked: [
            Revocation {
                decision_sha256: Sha256Digest([9; 32]),
                until: Some(1_763_773_610),
            },
            Revocation {
                decision_sha256: Sha256Digest([4; 32]),
                until: None,
            },
        ]
        .into_iter()
        .collect(),
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
     "agent":"openclaw", "host":"mini.local", "host_id":"3f2a9c1b0d4e5f60718293a4b5c6d7e8",
     "user":"openclaw", "uid":1001,
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

#[test]
fn the_new_fields_sit_where_the_spec_puts_them() {
    let req = String::from_utf8(request().to_bytes()).unwrap();
    assert!(
        req.contains(&format!(
            r#""host":"mini.local","host_id":"{}","user""#,
            "3f".repeat(16)
        )),
        "{req}"
    );
    let signed = Envelope::seal(&agent_key(), &request())
        .open::<Request>()
        .unwrap();
    let dec = String::from_utf8(decision(&signed).to_bytes()).unwrap();
    assert!(
        dec.contains(&format!(
            r#""approver":"alice","console":"{}","decided_at""#,
            "c0".repeat(16)
        )),
        "{dec}"
    );
    let st = String::from_utf8(status().to_bytes()).unwrap();
    assert_eq!(
        st,
        format!(
            r#"{{"v":1,"kind":"status","approver":"alice","console":"{}","issued_at":1763770500,"revoked":[{{"decision_sha256":"{}","until":null}},{{"decision_sha256":"{}","until":1763773610}}]}}"#,
            "c0".repeat(16),
            "04".repeat(32),
            "09".repeat(32)
        )
    );
}

#[test]
fn fields_that_may_be_null_must_be_present() {
    fn without<T: Payload>(payload: &T, field: &str) -> Result<T, Error> {
        let mut json: serde_json::Value = serde_json::from_slice(&payload.to_bytes()).unwrap();
        json.as_object_mut().unwrap().remove(field).unwrap();
        T::from_bytes(serde_json::to_string(&json).unwrap().as_bytes())
    }
    let err = without(&request(), "ttl_s").unwrap_err().to_string();
    assert!(err.contains("missing field `ttl_s`"), "{err}");
    assert!(without(&request(), "host_id").is_err());
    let signed = Envelope::seal(&agent_key(), &request())
        .open::<Request>()
        .unwrap();
    for field in ["not_after", "note", "console"] {
        let err = without(&decision(&signed), field).unwrap_err().to_string();
        assert!(err.contains(&format!("missing field `{field}`")), "{err}");
    }
    assert!(without(&status(), "console").is_err());
    let no_until = serde_json::json!([{ "decision_sha256": "09".repeat(32) }]);
    let err = with_field(&status(), "revoked", no_until)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing field `until`"), "{err}");
}

#[test]
fn revocations_are_sorted_unique_and_strict() {
    let digest = |b: u8| "0".repeat(62) + &format!("{b:02x}");
    let entry = |b: u8, until: serde_json::Value| serde_json::json!({ "decision_sha256": digest(b), "until": until });
    let ok = with_field(
        &status(),
        "revoked",
        serde_json::json!([entry(1, 5.into()), entry(2, serde_json::Value::Null)]),
    )
    .unwrap();
    assert_eq!(ok.revoked.len(), 2);
    assert_eq!(
        ok.revoked
            .get(&Sha256Digest::from_hex(&digest(1)).unwrap())
            .unwrap()
            .until,
        Some(5)
    );
    assert!(
        !ok.revoked
            .contains(&Sha256Digest::from_hex(&digest(3)).unwrap())
    );

    let refused = |list: serde_json::Value| {
        with_field(&status(), "revoked", list)
            .unwrap_err()
            .to_string()
    };
    let err = refused(serde_json::json!([entry(2, 1.into()), entry(1, 1.into())]));
    assert!(err.contains("must be sorted by decision_sha256"), "{err}");
    let err = refused(serde_json::json!([entry(1, 1.into()), entry(1, 2.into())]));
    assert!(err.contains("twice"), "{err}");
    let err = refused(serde_json::json!([{"decision_sha256": digest(1), "until": 1, "why": "x"}]));
    assert!(err.contains("unknown field"), "{err}");
    assert!(
        !refused(serde_json::json!([digest(1)])).is_empty(),
        "v1 plain digests"
    );
    assert!(!refused(serde_json::json!([entry(1, (-1).into())])).is_empty());
    assert!(!refused(serde_json::json!([entry(1, "soon".into())])).is_empty());
    assert!(!refused(serde_json::json!({})).is_empty());
}

#[test]
fn building_revocations_sorts_and_keeps_the_later_end() {
    let r = |b: u8, until: Option<u64>| Revocation {
        decision_sha256: Sha256Digest([b; 32]),
        until,
    };
    let list: Revocations = [r(3, Some(10)), r(1, Some(5)), r(3, Some(7)), r(2, None)]
        .into_iter()
        .collect();
    assert_eq!(list.as_slice(), [r(1, Some(5)), r(2, None), r(3, Some(10))]);
    let mut list = list;
    list.insert(r(1, None));
    list.insert(r(2, Some(99)));
    assert_eq!(list.as_slice(), [r(1, None), r(2, None), r(3, Some(10))]);
    list.retain(|x| x.until.is_none());
    assert_eq!(list.iter().count(), 2);
}

fn withdraw(req: &Signed<Request>) -> Withdraw {
    Withdraw {
        v: V1,
        kind: payload::KindWithdraw,
        request_id: req.payload.id,
        request_sha256: req.sha256,
        withdrawn_at: 1_763_770_042,
    }
}

#[test]
fn a_withdraw_round_trips_under_its_own_namespace() {
    let req = Envelope::seal(&agent_key(), &request())
        .open::<Request>()
        .unwrap();
    let env = Envelope::seal(&agent_key(), &withdraw(&req));
    let opened = env.open::<Withdraw>().unwrap();
    assert_eq!(opened.payload, withdraw(&req));
    assert_eq!(opened.signer, agent_key().public());
    assert_eq!(
        String::from_utf8(opened.bytes).unwrap(),
        format!(
            r#"{{"v":1,"kind":"withdraw","request_id":"{}","request_sha256":"{}","withdrawn_at":1763770042}}"#,
            req.payload.id, req.sha256
        )
    );
    // Not a request, and a request is not a withdraw, whatever the bytes say.
    assert!(matches!(
        env.open::<Request>(),
        Err(Error::WrongNamespace { .. })
    ));
    let as_request =
        Envelope::seal_bytes(&agent_key(), Namespace::Request, &withdraw(&req).to_bytes());
    assert!(matches!(
        as_request.open::<Withdraw>(),
        Err(Error::WrongNamespace { .. })
    ));
    assert!(with_field(&withdraw(&req), "kind", "request".into()).is_err());
    assert!(with_field(&withdraw(&req), "extra", 1.into()).is_err());
    assert!(with_field(&withdraw(&req), "withdrawn_at", "now".into()).is_err());
    assert_eq!(Namespace::Withdraw.as_str(), "withdraw@assent");
}

fn any_revocation() -> impl Strategy<Value = Revocation> {
    (any::<[u8; 32]>(), proptest::option::of(any::<u64>())).prop_map(|(d, until)| Revocation {
        decision_sha256: Sha256Digest(d),
        until,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Statuses with any revocations, in any order given, encode in the canonical order and
    /// read back equal; the encoding lists each digest once, sorted.
    #[test]
    fn statuses_round_trip_canonically(
        given in proptest::collection::vec(any_revocation(), 0..24),
        console: [u8; 16],
        issued_at: u64,
    ) {
        let mut st = status();
        st.console = ConsoleId(console);
        st.issued_at = issued_at;
        st.revoked = given.iter().copied().collect();
        let opened = Envelope::seal(&approver_key(), &st).open::<Status>().unwrap();
        prop_assert_eq!(&opened.payload, &st);
        let digests: Vec<Sha256Digest> = opened.payload.revoked.iter().map(|r| r.decision_sha256).collect();
        let mut sorted = digests.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(&digests, &sorted);
        for r in &given {
            prop_assert!(opened.payload.revoked.contains(&r.decision_sha256));
        }
    }

    /// A revoked list out of order, or with a digest twice, never parses.
    #[test]
    fn unsorted_or_repeated_revocations_are_refused(
        given in proptest::collection::vec(any_revocation(), 2..12),
        swap in any::<proptest::sample::Index>(),
        repeat: bool,
    ) {
        let canonical: Revocations = given.into_iter().collect();
        prop_assume!(canonical.len() >= 2);
        let mut list: Vec<Revocation> = canonical.as_slice().to_vec();
        let i = swap.index(list.len() - 1);
        if repeat {
            list[i + 1].decision_sha256 = list[i].decision_sha256;
        } else {
            list.swap(i, i + 1);
        }
        let json = serde_json::to_value(&list).unwrap();
        prop_assert!(with_field(&status(), "revoked", json).is_err());
    }

    /// Requests with any host id, decisions with any console id, and withdraws round-trip.
    #[test]
    fn ids_round_trip_in_every_payload(host_id: [u8; 16], console: [u8; 16], at: u64) {
        let mut req = request();
        req.host_id = HostId(host_id);
        let signed = Envelope::seal(&agent_key(), &req).open::<Request>().unwrap();
        prop_assert_eq!(&signed.payload, &req);
        let mut dec = decision(&signed);
        dec.console = ConsoleId(console);
        prop_assert_eq!(Envelope::seal(&approver_key(), &dec).open::<Decision>().unwrap().payload, dec);
        let mut w = withdraw(&signed);
        w.withdrawn_at = at;
        prop_assert_eq!(Envelope::seal(&agent_key(), &w).open::<Withdraw>().unwrap().payload, w);
    }

    /// Any id field that is not exactly 32 lowercase hex digits is refused.
    #[test]
    fn malformed_ids_are_refused(text in "[0-9a-fA-F ]{0,40}") {
        prop_assume!(HostId::from_hex(&text).is_none());
        prop_assert!(with_field(&request(), "host_id", text.clone().into()).is_err());
        let signed = Envelope::seal(&agent_key(), &request()).open::<Request>().unwrap();
        prop_assert!(with_field(&decision(&signed), "console", text.clone().into()).is_err());
        prop_assert!(with_field(&status(), "console", text.into()).is_err());
    }
}
