//! Envelopes and payloads (docs/protocol.md: envelope, request, decision, status, withdraw,
//! login, grant token).
//!
//! Every input is tried as: the payload bytes of each kind (`Payload::from_bytes`), envelope
//! JSON (`Envelope::from_json` then `open::<T>` for each kind), grant-token text and a request
//! id; and, sealed with a fixed key under one namespace, as signed payload bytes. Nothing may
//! panic; whatever parses must survive serialising and parsing again unchanged; a payload
//! sealed under its own namespace opens exactly when its bytes parse, and never under another.
//! `claim` (the relay's unverified routing parse) agrees with `open` wherever `open`
//! succeeds, naming the same payload and signer, and refuses another namespace as `open` does;
//! `open_trusted` with the approver's key agrees with `open` for blobs naming that key.
#![no_main]

use std::fmt::Debug;

use assent_fuzz::{approver_key, other_namespace, payload_round_trip, seal};
use assent_protocol::{
    ConsoleId, Decision, Envelope, Error, GrantToken, HostId, Login, MAX_PAYLOAD_LEN, Payload,
    Request, RequestId, Status, Withdraw, sha256, sshsig,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    payload_round_trip::<Request>(data);
    payload_round_trip::<Decision>(data);
    payload_round_trip::<Status>(data);
    payload_round_trip::<Login>(data);
    payload_round_trip::<Withdraw>(data);

    if let Ok(text) = std::str::from_utf8(data) {
        envelope_text(text);
        token_text(text);
        if let Some(id) = RequestId::from_hex(text) {
            assert_eq!(id.to_hex(), text, "request ids are lowercase hex only");
        }
    }
    // Host and console id files: what parses is exactly one written line, or the bare id.
    if let Some(id) = HostId::from_file(data) {
        assert!(data == id.to_file().as_bytes() || data == id.to_hex().as_bytes());
    }
    if let Some(id) = ConsoleId::from_file(data) {
        assert!(data == id.to_file().as_bytes() || data == id.to_hex().as_bytes());
    }

    // One namespace per input keeps the signing cost to one signature per run.
    match data.len() % 5 {
        0 => sealed::<Request>(data),
        1 => sealed::<Decision>(data),
        2 => sealed::<Status>(data),
        3 => sealed::<Withdraw>(data),
        _ => sealed::<Login>(data),
    }
});

fn envelope_text(text: &str) {
    let Ok(envelope) = Envelope::from_json(text) else {
        return;
    };
    let again = Envelope::from_json(&envelope.to_json())
        .unwrap_or_else(|e| panic!("a parsed envelope does not parse again: {e}"));
    assert_eq!(again, envelope);
    open_checked::<Request>(&envelope);
    open_checked::<Decision>(&envelope);
    open_checked::<Status>(&envelope);
    open_checked::<Login>(&envelope);
    open_checked::<Withdraw>(&envelope);
    if let Ok(armored) = envelope.armored_signature() {
        let blob = sshsig::dearmor(&armored)
            .unwrap_or_else(|e| panic!("armor() output does not dearmor: {e}"));
        assert_eq!(
            Envelope::from_signature(b"", &blob).sig,
            envelope.sig,
            "armouring changed the signature blob"
        );
    }
}

/// Whatever opens is consistent with the envelope it came from, with what `claim` says, and
/// with `open_trusted` holding the fixed approver key.
fn open_checked<T: Payload + PartialEq + Debug>(envelope: &Envelope) {
    let claimed = envelope.claim::<T>();
    let opened = envelope.open::<T>();
    let approver = approver_key().public();
    let trusted = envelope.open_trusted::<T>(|c| c.is(&approver).then_some(&approver));
    match (&trusted, &opened) {
        (Ok(Some(t)), Ok(o)) => assert_eq!(t, o, "open_trusted and open disagree"),
        (Ok(Some(_)), Err(e)) => panic!("open_trusted opened what open refuses: {e}"),
        // No key held for the named signer: it is not the approver's.
        (Ok(None), opened) => {
            if let Ok(o) = opened {
                assert_ne!(
                    o.signer, approver,
                    "open_trusted found no key for the approver"
                );
            }
            if let Ok(c) = &claimed {
                assert!(!c.claimed_signer.is(&approver), "no key for the approver");
            }
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "open_trusted and open refuse differently"),
        (Err(e), Ok(_)) => panic!("open_trusted refused ({e}) what open opens"),
    }
    let Ok(signed) = opened else {
        return;
    };
    let claimed =
        claimed.unwrap_or_else(|e| panic!("a {} envelope opens but does not claim: {e}", T::KIND));
    assert_eq!(claimed.payload, signed.payload);
    assert_eq!(claimed.bytes, signed.bytes);
    assert_eq!(claimed.sha256, signed.sha256);
    assert!(claimed.claimed_signer.is(&signed.signer));
    assert_eq!(signed.envelope, *envelope);
    assert_eq!(
        envelope.payload_bytes_unverified().ok().as_deref(),
        Some(&signed.bytes[..])
    );
    assert_eq!(signed.sha256, sha256(&signed.bytes));
    assert_eq!(T::from_bytes(&signed.bytes).ok(), Some(signed.payload));
}

fn token_text(text: &str) {
    let Ok(token) = GrantToken::decode(text) else {
        return;
    };
    let again = GrantToken::decode(&token.encode())
        .unwrap_or_else(|e| panic!("an encoded token does not decode: {e}"));
    assert_eq!(again, token);
    // Its envelopes were made elsewhere; opening them must not panic.
    let _ = token.open();
}

/// Sign `data` as a `T` and check that opening agrees with parsing, and that the signature
/// never verifies under another namespace.
fn sealed<T: Payload + PartialEq + Debug>(data: &[u8]) {
    if data.len() > MAX_PAYLOAD_LEN {
        return;
    }
    let key = approver_key();
    let public = key.public();
    let envelope = seal::<T>(key, data);
    let parsed = T::from_bytes(data);
    let claimed = envelope.claim::<T>();
    let opened = envelope.open::<T>();
    agrees_with_parsing("claim", claimed.as_ref().map(|c| &c.payload), &parsed);
    agrees_with_parsing("open", opened.as_ref().map(|s| &s.payload), &parsed);
    if let Ok(claimed) = &claimed {
        assert!(claimed.claimed_signer.is(&public));
    }
    if let Ok(signed) = &opened {
        assert_eq!(signed.bytes, data);
        assert_eq!(signed.signer, public);
        assert_eq!(signed.sha256, sha256(data));
    }
    assert_eq!(
        envelope.open_trusted::<T>(|c| c.is(&public).then_some(&public)),
        opened.map(Some),
        "open_trusted with the signer's key disagrees with open on a freshly sealed {}",
        T::KIND
    );
    let wrong = Envelope::seal_bytes(key, other_namespace(T::NAMESPACE), data);
    match wrong.claim::<T>() {
        Err(Error::WrongNamespace { .. }) => {}
        other => panic!(
            "a {} signature made under another namespace was claimed: {:?}",
            T::KIND,
            other.map(|c| c.payload)
        ),
    }
    match wrong.open::<T>() {
        Err(Error::WrongNamespace { .. }) => {}
        other => panic!(
            "a {} signature made under another namespace gave {:?}",
            T::KIND,
            other.map(|s| s.payload)
        ),
    }
}

/// What `how` made of a freshly sealed payload is what parsing its bytes gives: the same
/// payload, or a payload error from both.
fn agrees_with_parsing<T: Payload + PartialEq + Debug>(
    how: &str,
    got: Result<&T, &Error>,
    parsed: &Result<T, Error>,
) {
    match (got, parsed) {
        (Ok(got), Ok(parsed)) => assert_eq!(got, parsed, "{how} and parsing disagree"),
        (Err(Error::Payload(_)), Err(Error::Payload(_))) => {}
        (got, parsed) => panic!(
            "{how} of a freshly sealed {} disagrees with parsing it: {how} {got:?}, parse {parsed:?}",
            T::KIND
        ),
    }
}
