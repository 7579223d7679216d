//! The statuses the shim keeps: for each console that approved a cached grant, the latest
//! signed status of that console the shim has seen, next to the grant cache, and when the
//! relay was last asked for a newer one. While that was a moment ago, a cached grant runs with
//! no relay round trip; and `assent grants` can tell a grant's state when the relay cannot.
//!
//! One file per approver key and console id in `$XDG_STATE_HOME/assent/statuses/` (directory
//! 0700, files 0600), named by [`stream_key`] in hex, holding
//! `{"status": envelope, "checked_at": unix seconds}`. Everything read back is verified again,
//! and a kept status only ever gives way to a newer one of the same console: a relay that
//! serves an old status cannot take a newer one away. Like the grant cache, this is a
//! convenience, never an authority: the elevator checks the status itself.

use std::fs;
use std::path::PathBuf;

use assent_protocol::{
    ConsoleId, Decision, Envelope, ItemHasher, PublicKey, Sha256Digest, Signed, Status,
};
use serde::{Deserialize, Serialize};

use crate::keys;

/// How long after the relay was last asked a kept status spares the next round trip. A console
/// publishes a status at once when it revokes a grant, so an honest agent's runs see a
/// revocation within this time. (Whatever the agent does, the elevator refuses a revoked grant
/// once the last status without the revocation is `status_max_age_s` old.)
pub const KEPT_FRESH_S: u64 = 10;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kept {
    status: Envelope,
    /// When the relay last served this console's statuses (and had none newer).
    checked_at: u64,
}

/// The kept statuses' directory.
#[derive(Debug, Clone)]
pub struct StatusStore {
    dir: PathBuf,
}

impl StatusStore {
    pub fn new(dir: PathBuf) -> StatusStore {
        StatusStore { dir }
    }

    fn path_for(&self, signer: &PublicKey, console: &ConsoleId) -> PathBuf {
        self.dir.join(stream_key(signer, console).to_hex())
    }

    fn read(&self, decision: &Signed<Decision>) -> Option<(Signed<Status>, u64)> {
        let d = &decision.payload;
        let text = fs::read(self.path_for(&decision.signer, &d.console)).ok()?;
        let kept: Kept = serde_json::from_slice(&text).ok()?;
        let status = kept.status.open::<Status>().ok()?;
        vouches_for(&status, decision).then_some((status, kept.checked_at))
    }

    /// The kept status of the console that approved `decision`, if one verifies and is that
    /// console's (signed by the decision's key, naming its console id).
    pub fn kept(&self, decision: &Signed<Decision>) -> Option<Signed<Status>> {
        self.read(decision).map(|(status, _)| status)
    }

    /// The kept status of `decision`'s console when it can be used without asking the relay
    /// for a newer one: the relay was asked at most [`KEPT_FRESH_S`] ago, and the status is
    /// at most half the elevator's `status_max_age_s` old, so it is still fresh when the
    /// elevator checks it.
    pub fn fresh_enough(
        &self,
        decision: &Signed<Decision>,
        now: u64,
        max_age_s: u64,
    ) -> Option<Signed<Status>> {
        let (status, checked_at) = self.read(decision)?;
        let asked_lately = now.saturating_sub(checked_at) <= KEPT_FRESH_S;
        let young = now.saturating_sub(status.payload.issued_at) <= max_age_s / 2;
        (asked_lately && young).then_some(status)
    }

    /// The relay just `served` these statuses (at `now`): the newest status of the console
    /// that approved `decision`, among them and the one kept, is kept from now on, as checked
    /// at `now`.
    pub fn update(
        &self,
        decision: &Signed<Decision>,
        served: &[Envelope],
        now: u64,
    ) -> Option<Signed<Status>> {
        let newest = served
            .iter()
            .filter_map(|e| e.open::<Status>().ok())
            .filter(|s| vouches_for(s, decision))
            .chain(self.kept(decision))
            .max_by_key(|s| s.payload.issued_at)?;
        // Losing it costs a relay round trip later; nothing depends on it being written.
        let _ = self.keep(&newest, now);
        Some(newest)
    }

    fn keep(&self, status: &Signed<Status>, checked_at: u64) -> std::io::Result<()> {
        keys::private_dir(&self.dir)?;
        let path = self.path_for(&status.signer, &status.payload.console);
        let kept = Kept {
            status: status.envelope.clone(),
            checked_at,
        };
        let json = serde_json::to_vec(&kept).expect("kept statuses always serialise");
        keys::replace_unsynced(&path, &json, 0o600)
    }
}

/// A status speaks for a grant only if the approving console signed it with the approving key
/// (the elevator's rule, check 11).
pub fn vouches_for(status: &Signed<Status>, decision: &Signed<Decision>) -> bool {
    status.signer == decision.signer && status.payload.console == decision.payload.console
}

/// What names a kept status's file: SHA-256 over the approver key's blob and the console id
/// (hex), each length-prefixed as in `cmd_sha256`.
pub fn stream_key(signer: &PublicKey, console: &ConsoleId) -> Sha256Digest {
    let mut h = ItemHasher::new();
    h.item(&signer.blob()).item(console.to_hex().as_bytes());
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use assent_protocol::{Grant, PrivateKey, Verdict};

    use super::*;
    use crate::cache::tests::{CONSOLE, command, decide, signed_request, status, status_of};

    struct Fixture {
        _dir: tempfile::TempDir,
        store: StatusStore,
        path: PathBuf,
        alice: PrivateKey,
        decision: Signed<Decision>,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/assent/statuses");
        let store = StatusStore::new(path.clone());
        let agent = PrivateKey::generate("agent");
        let alice = PrivateKey::generate("alice");
        let request = signed_request(&agent, &command(1), Grant::Timed);
        let decision = decide(&alice, &request, Verdict::Approve, Grant::Timed, Some(4600));
        Fixture {
            _dir: dir,
            store,
            path,
            alice,
            decision,
        }
    }

    impl Fixture {
        fn file(&self) -> PathBuf {
            self.path
                .join(stream_key(&self.alice.public(), &CONSOLE).to_hex())
        }
    }

    #[test]
    fn the_newest_status_of_the_approving_console_is_kept_privately() {
        let f = fixture();
        assert!(f.store.kept(&f.decision).is_none());
        assert!(f.store.update(&f.decision, &[], 1000).is_none());

        let old = status(&f.alice, 100, vec![]);
        let new = status(&f.alice, 200, vec![]);
        let other_console = status_of(&f.alice, ConsoleId([0x99; 16]), 300, vec![]);
        let stranger = status(&PrivateKey::generate("mallory"), 400, vec![]);
        let served = [old.clone(), new.clone(), other_console, stranger];
        let picked = f.store.update(&f.decision, &served, 1000).unwrap();
        assert_eq!(picked.envelope, new);
        assert_eq!(f.store.kept(&f.decision).unwrap().envelope, new);
        assert_eq!(fs::metadata(&f.path).unwrap().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(f.file()).unwrap().mode() & 0o777, 0o600);

        // A relay serving an older status (or none) does not take the newer one away.
        let picked = f.store.update(&f.decision, &[old], 1000).unwrap();
        assert_eq!(picked.envelope, new);
        assert_eq!(
            f.store.update(&f.decision, &[], 1000).unwrap().envelope,
            new
        );
        assert_eq!(f.store.kept(&f.decision).unwrap().envelope, new);
        // A newer one replaces it.
        let newer = status(&f.alice, 250, vec![f.decision.sha256]);
        f.store
            .update(&f.decision, std::slice::from_ref(&newer), 1000);
        assert_eq!(f.store.kept(&f.decision).unwrap().envelope, newer);
    }

    #[test]
    fn a_kept_status_spares_the_relay_only_shortly_after_it_was_asked() {
        let f = fixture();
        let max_age = 120;
        f.store
            .update(&f.decision, &[status(&f.alice, 1000, vec![])], 1050)
            .unwrap();
        // Asked at 1050: for KEPT_FRESH_S more, while the status is under 60 s old.
        assert!(f.store.fresh_enough(&f.decision, 1050, max_age).is_some());
        assert!(f.store.fresh_enough(&f.decision, 1060, max_age).is_some());
        assert!(f.store.fresh_enough(&f.decision, 1061, max_age).is_none());
        // Asking again (nothing newer served) renews it, until the status is half stale.
        f.store.update(&f.decision, &[], 1059).unwrap();
        assert!(f.store.fresh_enough(&f.decision, 1060, max_age).is_some());
        assert!(f.store.fresh_enough(&f.decision, 1061, max_age).is_none());
        // A small status_max_age_s shortens it.
        assert!(f.store.fresh_enough(&f.decision, 1059, 100).is_none());
    }

    #[test]
    fn a_kept_file_is_verified_and_must_be_that_consoles() {
        let f = fixture();
        keys::private_dir(&f.path).unwrap();
        let write = |status: &Envelope| {
            let kept = Kept {
                status: status.clone(),
                checked_at: 1000,
            };
            fs::write(f.file(), serde_json::to_vec(&kept).unwrap()).unwrap();
        };
        write(&status(&f.alice, 300, vec![]));
        assert!(f.store.kept(&f.decision).is_some());
        // Another console's status under this console's name.
        write(&status_of(&f.alice, ConsoleId([0x99; 16]), 300, vec![]));
        assert!(f.store.kept(&f.decision).is_none());
        // A tampered one.
        let mut bad = status(&f.alice, 300, vec![]);
        bad.payload = bad.payload.replacen('A', "B", 1);
        write(&bad);
        assert!(f.store.kept(&f.decision).is_none());
        assert!(f.store.fresh_enough(&f.decision, 1000, 120).is_none());
        fs::write(f.file(), b"not json").unwrap();
        assert!(f.store.kept(&f.decision).is_none());
        // And an unreadable kept file does not stop a served status from being used.
        let served = status(&f.alice, 10, vec![]);
        let picked = f
            .store
            .update(&f.decision, std::slice::from_ref(&served), 1000);
        assert_eq!(picked.unwrap().envelope, served);
    }
}
