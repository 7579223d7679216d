//! Approvers' statuses, one stream per console: the latest status each console of each
//! approver key published, so that a shim finds the one that can vouch for its grant (the
//! approving console's; the elevator accepts no other), and the rules that keep a stream from
//! taking back a revocation before it stops mattering.
//!
//! A stream is named by the signer's key and the status's `console`. Publishing to a held
//! stream is refused when the status is older than the one held, or when it drops (or
//! shortens) a revocation the held one lists that is still live: its `until` is null, or
//! `until + revocation_grace_s` is still to come. Consoles never do either; the rule is
//! defence in depth and keeps confused set-ups (a copied state directory) converging. The
//! guarantee itself rests on the elevator (see `docs/threat-model.md`).
//!
//! Memory is bounded by the approvers listed in the config (only their statuses get here) and
//! [`MAX_STREAMS_PER_KEY`] per key. A key's 17th console evicts its stream with the oldest
//! `issued_at`. Eviction only costs freshness: the elevator never accepts a status of another
//! console for a grant, so a grant whose console's stream is gone cannot run until that console
//! publishes again, which fails closed.

use std::collections::HashMap;

use assent_protocol::{ConsoleId, Envelope, Revocation, Revocations, Signed, Status};

/// Consoles whose streams are held per approver key.
pub const MAX_STREAMS_PER_KEY: usize = 16;

/// An approver key as its 32 raw bytes.
type ApproverKey = [u8; 32];

/// The latest status of one console, and what the rules need of it.
#[derive(Debug)]
struct Stream {
    console: ConsoleId,
    approver: String,
    issued_at: u64,
    revoked: Revocations,
    envelope: Envelope,
}

/// What a publish did besides storing the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// The stream was new, or the status replaced the one held.
    Stored,
    /// The stream was new and the key had [`MAX_STREAMS_PER_KEY`]: this console's stream (the
    /// one with the oldest `issued_at`) made room.
    Evicted(ConsoleId),
}

/// Every held stream.
#[derive(Debug, Default)]
pub struct Streams {
    by_key: HashMap<ApproverKey, Vec<Stream>>,
}

impl Streams {
    pub fn new() -> Streams {
        Streams::default()
    }

    /// Keep a verified status from a listed approver as its console's latest, unless a rule
    /// refuses it (the reason says which, naming what it would drop). `now` is the relay's
    /// clock, `grace_s` the `revocation_grace_s` limit.
    pub fn publish(
        &mut self,
        status: Signed<Status>,
        now: u64,
        grace_s: u64,
    ) -> Result<Published, String> {
        let s = status.payload;
        let streams = self.by_key.entry(*status.signer.as_bytes()).or_default();
        let fresh = Stream {
            console: s.console,
            approver: s.approver,
            issued_at: s.issued_at,
            revoked: s.revoked,
            envelope: status.envelope,
        };
        if let Some(held) = streams.iter_mut().find(|h| h.console == fresh.console) {
            successor(held, &fresh, now, grace_s)?;
            *held = fresh;
            return Ok(Published::Stored);
        }
        let mut outcome = Published::Stored;
        if streams.len() >= MAX_STREAMS_PER_KEY {
            let oldest = streams
                .iter()
                .enumerate()
                .min_by_key(|(_, h)| h.issued_at)
                .map(|(i, _)| i)
                .expect("a full list is not empty");
            outcome = Published::Evicted(streams.swap_remove(oldest).console);
        }
        streams.push(fresh);
        Ok(outcome)
    }

    /// Every held status, ordered by approver name, then console id.
    pub fn served(&self) -> Vec<Envelope> {
        let mut held: Vec<&Stream> = self.by_key.values().flatten().collect();
        held.sort_by(|a, b| (&a.approver, a.console).cmp(&(&b.approver, b.console)));
        held.into_iter().map(|s| s.envelope.clone()).collect()
    }

    /// Forget the streams of keys that are no longer listed (after a reload).
    pub fn retain_keys(&mut self, mut listed: impl FnMut(&ApproverKey) -> bool) {
        self.by_key.retain(|key, _| listed(key));
    }

    /// Streams held in all.
    pub fn len(&self) -> usize {
        self.by_key.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// May `fresh` replace `held`, the latest status of the same console?
fn successor(held: &Stream, fresh: &Stream, now: u64, grace_s: u64) -> Result<(), String> {
    if fresh.issued_at < held.issued_at {
        return Err(format!(
            "a newer status from {}'s console {} (issued_at {}) is already held; this one was issued at {}",
            held.approver, held.console, held.issued_at, fresh.issued_at
        ));
    }
    for kept in held.revoked.iter().filter(|r| live(r, now, grace_s)) {
        let still = fresh.revoked.get(&kept.decision_sha256);
        if still.is_some_and(|r| covers(r.until, kept.until)) {
            continue;
        }
        let what = match still {
            None => "drops",
            Some(_) => "shortens",
        };
        return Err(format!(
            "this status {what} the revocation of decision {} (until {}) that console {}'s status issued at {} lists; a console keeps listing a revocation until `until` + {grace_s} s",
            kept.decision_sha256.reference(),
            until(kept.until),
            held.console,
            held.issued_at,
        ));
    }
    Ok(())
}

/// A revocation that still matters: for ever, or until its grace period has passed.
fn live(r: &Revocation, now: u64, grace_s: u64) -> bool {
    r.until.is_none_or(|u| u.saturating_add(grace_s) > now)
}

/// A revocation until `later` lasts at least as long as one until `earlier` (null: for ever).
fn covers(later: Option<u64>, earlier: Option<u64>) -> bool {
    match (later, earlier) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(l), Some(e)) => l >= e,
    }
}

fn until(until: Option<u64>) -> String {
    until.map_or_else(|| "null, for ever".to_owned(), |u| u.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use assent_protocol::{PrivateKey, Sha256Digest};
    use proptest::prelude::*;

    use super::*;

    const NOW: u64 = 1_763_770_000;
    const GRACE: u64 = 3600;

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::from_seed(&[seed; 32], "")
    }

    fn console(n: u8) -> ConsoleId {
        ConsoleId([n; 16])
    }

    fn digest(n: u8) -> Sha256Digest {
        Sha256Digest([n; 32])
    }

    fn status(
        key: &PrivateKey,
        name: &str,
        console: ConsoleId,
        issued_at: u64,
        revoked: &[(Sha256Digest, Option<u64>)],
    ) -> Signed<Status> {
        let status = Status {
            v: Default::default(),
            kind: Default::default(),
            approver: name.into(),
            console,
            issued_at,
            revoked: revoked
                .iter()
                .map(|&(decision_sha256, until)| Revocation {
                    decision_sha256,
                    until,
                })
                .collect(),
        };
        Envelope::seal(key, &status).open().unwrap()
    }

    fn served_statuses(s: &Streams) -> Vec<Status> {
        s.served()
            .iter()
            .map(|e| e.open::<Status>().unwrap().payload)
            .collect()
    }

    #[test]
    fn each_console_of_a_key_has_its_own_stream() {
        let mut s = Streams::new();
        let (alice, bob) = (key(1), key(2));
        let laptop = status(&alice, "alice", console(1), NOW, &[(digest(9), None)]);
        // The desktop never saw the revocation, and it is newer: both are served.
        let desktop = status(&alice, "alice", console(2), NOW + 10, &[]);
        let bobs = status(&bob, "bob", console(1), NOW - 5, &[]);
        for st in [desktop.clone(), bobs.clone(), laptop.clone()] {
            assert_eq!(s.publish(st, NOW, GRACE), Ok(Published::Stored));
        }
        assert_eq!(
            s.served(),
            vec![laptop.envelope, desktop.envelope, bobs.envelope],
            "every stream, by approver name then console id"
        );
        // A newer status of one console replaces only its own stream.
        let later = status(&alice, "alice", console(2), NOW + 40, &[]);
        s.publish(later.clone(), NOW, GRACE).unwrap();
        assert_eq!(s.len(), 3);
        assert!(s.served().contains(&later.envelope));
    }

    #[test]
    fn an_older_status_of_a_held_stream_is_refused_and_the_same_age_is_not() {
        let mut s = Streams::new();
        let alice = key(1);
        s.publish(status(&alice, "alice", console(1), NOW, &[]), NOW, GRACE)
            .unwrap();
        let why = s
            .publish(
                status(&alice, "alice", console(1), NOW - 1, &[]),
                NOW,
                GRACE,
            )
            .unwrap_err();
        assert!(why.contains("a newer status"), "{why}");
        assert!(why.contains(&format!("(issued_at {NOW})")), "{why}");
        // Another console may be older: it is another stream.
        s.publish(
            status(&alice, "alice", console(2), NOW - 1, &[]),
            NOW,
            GRACE,
        )
        .unwrap();
        // The same second again (a revocation published right after the periodic status).
        let revoking = status(&alice, "alice", console(1), NOW, &[(digest(3), None)]);
        s.publish(revoking.clone(), NOW, GRACE).unwrap();
        assert!(s.served().contains(&revoking.envelope));
    }

    #[test]
    fn a_status_that_drops_a_live_revocation_is_refused_naming_it() {
        let mut s = Streams::new();
        let alice = key(1);
        let until = NOW + 600;
        let held = status(
            &alice,
            "alice",
            console(1),
            NOW,
            &[(digest(0xab), Some(until)), (digest(0xcd), None)],
        );
        s.publish(held.clone(), NOW, GRACE).unwrap();
        // The same console, later, revoking `revoked`: why it is refused at `at`.
        let later = |revoked: &[(Sha256Digest, Option<u64>)]| {
            status(&alice, "alice", console(1), NOW + 30, revoked)
        };
        let refused = |s: &mut Streams, revoked: &[(Sha256Digest, Option<u64>)], at: u64| {
            s.publish(later(revoked), at, GRACE).unwrap_err()
        };

        // Dropping the timed one while it matters, or the one for ever at any time.
        let why = refused(&mut s, &[(digest(0xcd), None)], NOW + 30);
        let named = format!("{} (until {until})", digest(0xab).reference());
        assert!(
            why.contains(&format!("drops the revocation of decision {named}")),
            "{why}"
        );
        let why = refused(&mut s, &[(digest(0xab), Some(until))], u64::MAX - GRACE);
        let named = format!("{} (until null, for ever)", digest(0xcd).reference());
        assert!(
            why.contains(&format!("drops the revocation of decision {named}")),
            "{why}"
        );
        // Shortening one is dropping it early.
        let shorter = [(digest(0xab), Some(until - 1)), (digest(0xcd), None)];
        let why = refused(&mut s, &shorter, NOW + 30);
        assert!(why.contains("shortens the revocation of decision"), "{why}");
        let timed_for_ever = [(digest(0xab), Some(until)), (digest(0xcd), Some(u64::MAX))];
        assert!(refused(&mut s, &timed_for_ever, NOW + 30).contains("shortens"));
        assert_eq!(s.served(), vec![held.envelope], "nothing replaced it");

        // Until + grace is still to come at the last second, and past one second later.
        let dropping = later(&[(digest(0xcd), None)]);
        assert!(
            s.publish(dropping.clone(), until + GRACE - 1, GRACE)
                .is_err()
        );
        s.publish(dropping.clone(), until + GRACE, GRACE).unwrap();
        assert_eq!(s.served(), vec![dropping.envelope]);
    }

    #[test]
    fn a_longer_or_added_revocation_is_accepted() {
        let mut s = Streams::new();
        let alice = key(1);
        s.publish(
            status(&alice, "alice", console(1), NOW, &[(digest(1), Some(NOW))]),
            NOW,
            GRACE,
        )
        .unwrap();
        let more = status(
            &alice,
            "alice",
            console(1),
            NOW + 1,
            &[(digest(1), None), (digest(2), Some(NOW + 5))],
        );
        s.publish(more.clone(), NOW + 1, GRACE).unwrap();
        assert_eq!(s.served(), vec![more.envelope]);
    }

    #[test]
    fn a_seventeenth_console_evicts_the_stream_with_the_oldest_status() {
        let mut s = Streams::new();
        let (alice, bob) = (key(1), key(2));
        s.publish(status(&bob, "bob", console(0), NOW - 999, &[]), NOW, GRACE)
            .unwrap();
        for n in 0..16u8 {
            let issued = NOW + u64::from(n) * 10 - if n == 7 { 500 } else { 0 };
            assert_eq!(
                s.publish(status(&alice, "alice", console(n), issued, &[]), NOW, GRACE),
                Ok(Published::Stored)
            );
        }
        assert_eq!(s.len(), 17);
        let newcomer = status(&alice, "alice", console(99), NOW, &[]);
        assert_eq!(
            s.publish(newcomer.clone(), NOW, GRACE),
            Ok(Published::Evicted(console(7))),
            "alice's oldest, not bob's older one"
        );
        assert_eq!(s.len(), 17);
        let consoles: Vec<ConsoleId> = served_statuses(&s)
            .iter()
            .filter(|st| st.approver == "alice")
            .map(|st| st.console)
            .collect();
        assert_eq!(consoles.len(), MAX_STREAMS_PER_KEY);
        assert!(!consoles.contains(&console(7)));
        assert!(consoles.contains(&console(99)));
        // The evicted console publishing again is a new stream: it evicts the next oldest.
        assert_eq!(
            s.publish(
                status(&alice, "alice", console(7), NOW + 1, &[]),
                NOW,
                GRACE
            ),
            Ok(Published::Evicted(console(0)))
        );
    }

    #[test]
    fn keys_no_longer_listed_are_forgotten() {
        let mut s = Streams::new();
        let (alice, bob) = (key(1), key(2));
        s.publish(status(&alice, "alice", console(1), NOW, &[]), NOW, GRACE)
            .unwrap();
        s.publish(status(&bob, "bob", console(1), NOW, &[]), NOW, GRACE)
            .unwrap();
        s.retain_keys(|k| k == alice.public().as_bytes());
        assert_eq!(served_statuses(&s)[0].approver, "alice");
        assert_eq!(s.len(), 1);
    }

    /// One publish of the property test: which console, when it was issued, what it revokes
    /// (digest number → until as an offset from NOW, or for ever), and how far the clock moved.
    #[derive(Debug, Clone)]
    struct Publish {
        console: u8,
        issued_offset: u64,
        revoked: BTreeMap<u8, Option<u64>>,
        advance: u64,
    }

    fn publishes() -> impl Strategy<Value = Vec<Publish>> {
        let one = (
            0u8..4,
            0u64..200,
            prop::collection::btree_map(0u8..6, prop::option::weighted(0.8, 0u64..300), 0..4),
            prop_oneof![Just(0u64), 0u64..50, 3000u64..4000],
        )
            .prop_map(|(console, issued_offset, revoked, advance)| Publish {
                console,
                issued_offset,
                revoked,
                advance,
            });
        prop::collection::vec(one, 1..24)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Whatever is published, in whatever order and at whatever time, a revocation that
        /// the relay served for a console stays in that console's served status, at least
        /// as long, until its `until` + grace has passed.
        #[test]
        fn a_served_revocation_stays_served_until_its_until_plus_grace(
            steps in publishes(),
        ) {
            let alice = key(1);
            let mut s = Streams::new();
            let mut now = NOW;
            // Per console: every revocation ever served, with the longest until served.
            let mut promised: BTreeMap<u8, BTreeMap<u8, Option<u64>>> = BTreeMap::new();
            for step in steps {
                now += step.advance;
                let revoked: Vec<(Sha256Digest, Option<u64>)> = step
                    .revoked
                    .iter()
                    .map(|(&d, &until)| (digest(d), until.map(|u| NOW + u)))
                    .collect();
                let st = status(
                    &alice,
                    "alice",
                    console(step.console),
                    NOW + step.issued_offset,
                    &revoked,
                );
                let _ = s.publish(st, now, GRACE);

                let served: BTreeMap<u8, Status> = served_statuses(&s)
                    .into_iter()
                    .map(|st| (st.console.0[0], st))
                    .collect();
                for (c, promises) in &promised {
                    let held = served.get(c);
                    prop_assert!(held.is_some(), "console {c}'s stream is gone");
                    let held = held.unwrap();
                    for (&d, &until) in promises {
                        if until.is_none_or(|u| u + GRACE > now) {
                            let listed = held.revoked.get(&digest(d));
                            prop_assert!(
                                listed.is_some_and(|r| covers(r.until, until)),
                                "revocation {d} (until {until:?}) was undone at {now}: {held:?}"
                            );
                        }
                    }
                }
                for (c, held) in &served {
                    let promises = promised.entry(*c).or_default();
                    for r in held.revoked.iter() {
                        let d = r.decision_sha256.0[0];
                        let longest = match promises.get(&d) {
                            Some(&before) if covers(before, r.until) => before,
                            _ => r.until,
                        };
                        promises.insert(d, longest);
                    }
                }
            }
        }
    }
}
