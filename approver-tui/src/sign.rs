//! Building the approver's signed messages: decisions and statuses (`docs/protocol.md`), each
//! carrying this console's id.
//!
//! Everything cryptographic is [`assent_protocol`]'s; this module only fills in the fields.
//! The clock is a parameter so that what gets signed is testable.

use assent_protocol::payload::{KindDecision, KindStatus, V1};
use assent_protocol::{
    ConsoleId, Decision, Envelope, Grant, PrivateKey, Request, Revocations, Signed, Status, Verdict,
};

/// What the approver chose for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub verdict: Verdict,
    pub grant: Grant,
    /// Duration of a timed grant, in seconds.
    pub ttl_s: Option<u64>,
    pub note: Option<String>,
}

impl Choice {
    pub fn approve(grant: Grant, ttl_s: Option<u64>) -> Choice {
        Choice {
            verdict: Verdict::Approve,
            grant,
            ttl_s: if grant == Grant::Timed { ttl_s } else { None },
            note: None,
        }
    }

    /// `approved timed 15m`, `approved once`, `denied`: for notices and scripted output.
    pub fn describe(&self) -> String {
        match (self.verdict, self.grant) {
            (Verdict::Deny, _) => "denied".into(),
            (Verdict::Approve, Grant::Timed) => format!(
                "approved timed {}",
                assent_common::duration::format(self.ttl_s.unwrap_or(0))
            ),
            (Verdict::Approve, grant) => format!("approved {grant}"),
        }
    }

    /// The choice a signed decision made.
    pub fn of(decision: &Decision) -> Choice {
        Choice {
            verdict: decision.verdict,
            grant: decision.grant,
            ttl_s: decision.window_s(),
            note: decision.note.clone(),
        }
    }

    pub fn deny(note: Option<String>) -> Choice {
        Choice {
            verdict: Verdict::Deny,
            grant: Grant::Once,
            ttl_s: None,
            note: note.filter(|n| !n.trim().is_empty()),
        }
    }
}

/// The decision payload for `request`, signed on `console`: valid from `now` for the once
/// window, the chosen duration, or until revoked; bound to the exact request bytes and the
/// command hash.
pub fn decision(
    request: &Signed<Request>,
    choice: &Choice,
    approver: &str,
    console: ConsoleId,
    now: u64,
    once_window_s: u64,
) -> Decision {
    let not_after = match choice.grant {
        Grant::Once => Some(now + once_window_s),
        Grant::Timed => Some(now + choice.ttl_s.unwrap_or(crate::app::DEFAULT_TIMED_S)),
        Grant::Always => None,
    };
    Decision {
        v: V1,
        kind: KindDecision,
        request_id: request.payload.id,
        request_sha256: request.sha256,
        verdict: choice.verdict,
        grant: choice.grant,
        not_before: now,
        not_after,
        cmd_sha256: request.payload.cmd_sha256(),
        approver: approver.to_string(),
        console,
        decided_at: now,
        note: choice.note.clone(),
    }
}

/// Sign a decision.
pub fn seal_decision(key: &PrivateKey, decision: &Decision) -> Signed<Decision> {
    Envelope::seal(key, decision)
        .open()
        .expect("a decision this console just signed verifies")
}

/// The status payload of `console` listing `revoked` grants.
pub fn status(approver: &str, console: ConsoleId, now: u64, revoked: Revocations) -> Status {
    Status {
        v: V1,
        kind: KindStatus,
        approver: approver.to_string(),
        console,
        issued_at: now,
        revoked,
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::testing;

    fn request() -> Signed<Request> {
        testing::signed(testing::request("apt-get upgrade", &[]), 1, 1)
    }

    #[test]
    fn windows_per_grant_type() {
        let r = request();
        let once = decision(
            &r,
            &Choice::approve(Grant::Once, Some(900)),
            "alice",
            testing::CONSOLE,
            1000,
            120,
        );
        assert_eq!((once.not_before, once.not_after), (1000, Some(1120)));
        let timed = decision(
            &r,
            &Choice::approve(Grant::Timed, Some(900)),
            "alice",
            testing::CONSOLE,
            1000,
            120,
        );
        assert_eq!((timed.not_before, timed.not_after), (1000, Some(1900)));
        let always = decision(
            &r,
            &Choice::approve(Grant::Always, Some(900)),
            "alice",
            testing::CONSOLE,
            1000,
            120,
        );
        assert_eq!((always.not_before, always.not_after), (1000, None));
        for d in [&once, &timed, &always] {
            assert_eq!(d.request_id, r.payload.id);
            assert_eq!(d.request_sha256, r.sha256);
            assert_eq!(d.cmd_sha256, r.payload.cmd_sha256());
            assert_eq!(d.verdict, Verdict::Approve);
            assert_eq!(d.decided_at, 1000);
            assert_eq!(d.approver, "alice");
            assert_eq!(d.console, testing::CONSOLE);
        }
        let deny = decision(
            &r,
            &Choice::deny(Some("not now".into())),
            "alice",
            testing::CONSOLE,
            1000,
            120,
        );
        assert_eq!(deny.verdict, Verdict::Deny);
        assert_eq!(deny.note.as_deref(), Some("not now"));
        assert_eq!(
            Choice::deny(Some("  ".into())).note,
            None,
            "a blank note is no note"
        );
    }

    #[test]
    fn signed_decisions_open_under_the_decision_namespace() {
        let key = testing::approver_key();
        let d = decision(
            &request(),
            &Choice::approve(Grant::Once, None),
            "alice",
            testing::CONSOLE,
            1000,
            120,
        );
        let signed = seal_decision(&key, &d);
        assert_eq!(signed.payload, d);
        assert_eq!(signed.signer, key.public());
        assert!(
            signed.envelope.open::<Status>().is_err(),
            "namespaces differ"
        );
        let revoked: Revocations = [assent_protocol::Revocation {
            decision_sha256: signed.sha256,
            until: None,
        }]
        .into_iter()
        .collect();
        let s = Envelope::seal(
            &key,
            &status("alice", testing::CONSOLE, 1000, revoked.clone()),
        );
        let opened = s.open::<Status>().unwrap().payload;
        assert_eq!(opened.revoked, revoked);
        assert_eq!(opened.console, testing::CONSOLE);
    }

    /// The console's decision signatures verify with OpenSSH's own tool.
    #[test]
    fn decision_signature_verifies_with_ssh_keygen() {
        let dir = std::env::temp_dir().join(format!("assent-sign-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let key = testing::approver_key();
        let d = decision(
            &request(),
            &Choice::approve(Grant::Timed, Some(3600)),
            "alice",
            testing::CONSOLE,
            1000,
            120,
        );
        let signed = seal_decision(&key, &d);
        std::fs::write(
            dir.join("payload"),
            signed.envelope.payload_bytes_unverified().unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.join("payload.sig"),
            signed.envelope.armored_signature().unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.join("allowed_signers"),
            format!("alice {}\n", key.public().to_openssh("")),
        )
        .unwrap();
        let verify = |namespace: &str| {
            Command::new("ssh-keygen")
                .args(["-Y", "verify", "-f"])
                .arg(dir.join("allowed_signers"))
                .args(["-I", "alice", "-n", namespace, "-s"])
                .arg(dir.join("payload.sig"))
                .stdin(std::fs::File::open(dir.join("payload")).unwrap())
                .output()
                .expect("ssh-keygen must be installed to run this test")
        };
        let ok = verify("decision@assent");
        assert!(
            ok.status.success(),
            "ssh-keygen: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        assert!(
            !verify("status@assent").status.success(),
            "wrong namespace must fail"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
