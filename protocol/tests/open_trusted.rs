//! `Envelope::open_trusted`: verifying with a key the caller already holds (a listed approver),
//! found by the key the signature names. It must accept exactly what `open` accepts from that
//! key, refuse a key the caller does not hold without verifying anything, and verify with the
//! caller's key, never with the one the blob names. `Envelope::open_trusted_all`, which checks
//! the signatures of many in one batch, must give for each exactly what `open_trusted` gives.

use assent_protocol::payload::{KindDecision, V1};
use assent_protocol::*;
use proptest::prelude::*;

fn alice() -> PrivateKey {
    PrivateKey::from_seed(&[1; 32], "alice")
}

fn mallory() -> PrivateKey {
    PrivateKey::from_seed(&[3; 32], "mallory")
}

fn decision() -> Decision {
    Decision {
        v: V1,
        kind: KindDecision,
        request_id: RequestId([0xab; 16]),
        request_sha256: Sha256Digest([2; 32]),
        verdict: Verdict::Approve,
        grant: Grant::Once,
        not_before: 1_763_770_010,
        not_after: Some(1_763_770_300),
        cmd_sha256: Sha256Digest([3; 32]),
        approver: "alice".into(),
        console: ConsoleId([0xc0; 16]),
        decided_at: 1_763_770_010,
        note: None,
    }
}

/// A lookup over the keys a caller holds.
fn listed<'k>(keys: &'k [PublicKey]) -> impl Fn(&ClaimedKey) -> Option<&'k PublicKey> + 'k {
    move |claimed| keys.iter().find(|k| claimed.is(k))
}

#[test]
fn a_listed_signer_opens_as_with_open() {
    let env = Envelope::seal(&alice(), &decision());
    let keys = [mallory().public(), alice().public()];
    let trusted = env
        .open_trusted::<Decision>(listed(&keys))
        .unwrap()
        .expect("alice is listed");
    assert_eq!(Ok(trusted.clone()), env.open::<Decision>());
    assert_eq!(trusted.signer, alice().public());
}

#[test]
fn an_unlisted_signer_is_none_whatever_its_signature() {
    let env = Envelope::seal(&mallory(), &decision());
    let keys = [alice().public()];
    assert_eq!(env.open_trusted::<Decision>(listed(&keys)), Ok(None));
    // Even with a broken signature: nothing is verified for a key nobody listed.
    let broken = Envelope {
        payload: Envelope::seal(
            &mallory(),
            &Decision {
                note: Some("changed".into()),
                ..decision()
            },
        )
        .payload,
        sig: env.sig.clone(),
    };
    assert_eq!(broken.open_trusted::<Decision>(listed(&keys)), Ok(None));
}

#[test]
fn a_bad_signature_from_a_listed_key_is_refused() {
    let env = Envelope::seal(&alice(), &decision());
    let swapped = Envelope {
        payload: Envelope::seal(
            &alice(),
            &Decision {
                verdict: Verdict::Deny,
                ..decision()
            },
        )
        .payload,
        sig: env.sig.clone(),
    };
    let keys = [alice().public()];
    assert_eq!(
        swapped.open_trusted::<Decision>(listed(&keys)),
        Err(Error::BadSignature)
    );
}

#[test]
fn the_callers_key_verifies_not_the_named_one() {
    // A lookup that answers with another key than the one named: mallory's signature does
    // not verify as alice's, so nothing opens.
    let env = Envelope::seal(&mallory(), &decision());
    let alice = alice().public();
    assert_eq!(
        env.open_trusted::<Decision>(|_| Some(&alice)),
        Err(Error::BadSignature)
    );
}

#[test]
fn form_and_namespace_are_checked_before_the_lookup() {
    let status = Status {
        v: V1,
        kind: payload::KindStatus,
        approver: "alice".into(),
        console: ConsoleId([0xc0; 16]),
        issued_at: 1,
        revoked: Revocations::new(),
    };
    let env = Envelope::seal(&alice(), &status);
    let asked = std::cell::Cell::new(false);
    let alice = alice().public();
    let result = env.open_trusted::<Decision>(|_| {
        asked.set(true);
        Some(&alice)
    });
    assert!(
        matches!(result, Err(Error::WrongNamespace { .. })),
        "{result:?}"
    );
    assert!(
        !asked.get(),
        "the lookup ran for a blob of another namespace"
    );
    let garbage = Envelope {
        payload: env.payload.clone(),
        sig: "not base64!".into(),
    };
    assert!(matches!(
        garbage.open_trusted::<Decision>(|_| Some(&alice)),
        Err(Error::Envelope(_))
    ));
}

#[test]
fn a_payload_that_does_not_parse_is_refused_after_the_signature() {
    let env = Envelope::seal_bytes(&alice(), Namespace::Decision, b"{\"v\":1}");
    let keys = [alice().public()];
    assert!(matches!(
        env.open_trusted::<Decision>(listed(&keys)),
        Err(Error::Payload(_))
    ));
}

fn bob() -> PrivateKey {
    PrivateKey::from_seed(&[2; 32], "bob")
}

/// An envelope of one kind that a relay may be handed as a decision.
fn kind_of_envelope(kind: u8, n: u8) -> Envelope {
    let numbered = Decision {
        request_id: RequestId([n; 16]),
        ..decision()
    };
    let good = Envelope::seal(&alice(), &numbered);
    match kind % 7 {
        // Signed by a listed key (alice or bob).
        0 => good,
        1 => Envelope::seal(&bob(), &numbered),
        // Signed by a key nobody listed.
        2 => Envelope::seal(&mallory(), &numbered),
        // Alice's signature over other bytes.
        3 => Envelope {
            payload: Envelope::seal(
                &alice(),
                &Decision {
                    verdict: Verdict::Deny,
                    ..numbered
                },
            )
            .payload,
            sig: good.sig,
        },
        // Not base64.
        4 => Envelope {
            payload: good.payload,
            sig: "%%%".into(),
        },
        // Made out for another namespace.
        5 => Envelope::seal_bytes(&alice(), Namespace::Status, &numbered.to_bytes()),
        // Signed, but not a decision.
        _ => Envelope::seal_bytes(&alice(), Namespace::Decision, b"{}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever mix arrives together, each opens in the batch exactly as it opens alone, and
    /// the lookup is asked once for each well-formed one, with its index.
    #[test]
    fn a_batch_opens_each_envelope_as_it_opens_alone(kinds in proptest::collection::vec(0u8..7, 1..12)) {
        let envelopes: Vec<Envelope> = kinds
            .iter()
            .enumerate()
            .map(|(n, kind)| kind_of_envelope(*kind, n as u8))
            .collect();
        let keys = [alice().public(), bob().public()];
        let alone: Vec<_> = envelopes
            .iter()
            .map(|e| e.open_trusted::<Decision>(listed(&keys)))
            .collect();
        let mut asked = Vec::new();
        let lookup = listed(&keys);
        let together = Envelope::open_trusted_all::<Decision>(
            &envelopes.iter().collect::<Vec<_>>(),
            |i, claimed| {
                asked.push(i);
                lookup(claimed)
            },
        );
        prop_assert_eq!(&together, &alone);
        let well_formed: Vec<usize> = kinds
            .iter()
            .enumerate()
            .filter(|(_, kind)| !matches!(**kind % 7, 4 | 5))
            .map(|(i, _)| i)
            .collect();
        prop_assert_eq!(asked, well_formed);
    }
}

#[test]
fn one_bad_signature_in_a_batch_fails_alone() {
    let mut envelopes: Vec<Envelope> = (0..8).map(|n| kind_of_envelope(0, n)).collect();
    envelopes[5] = kind_of_envelope(3, 5);
    let keys = [alice().public()];
    let opened =
        Envelope::open_trusted_all::<Decision>(&envelopes.iter().collect::<Vec<_>>(), |_, c| {
            listed(&keys)(c)
        });
    for (i, result) in opened.iter().enumerate() {
        if i == 5 {
            assert_eq!(result, &Err(Error::BadSignature));
        } else {
            let opened = result.as_ref().unwrap().as_ref().expect("listed");
            assert_eq!(opened.payload.request_id, RequestId([i as u8; 16]));
        }
    }
}
