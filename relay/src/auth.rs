//! Who is on the other end, and who may sign what the relay passes on.
//!
//! Login: the relay sends a fresh random nonce; the client answers with a `Login {nonce, role}`
//! payload signed under `relay-auth@assent`. Approvers must be listed in the config. Agents
//! are admitted when listed, or — under the `loopback-any` policy — with any key from a
//! loopback address.
//!
//! The relay is never the authority: the console verifies every request and the elevator
//! verifies everything again. So requests are only *claimed* here — parsed strictly, with a
//! well-formed SSHSIG that names the connection's own (logged-in) key — and their signatures
//! are left to the console. Decisions, statuses, withdraws and logins are fully verified
//! (defence in depth: a forged decision never reaches a shim, a forged withdraw never drops a
//! request); decisions and statuses with the listed approver's key as decoded from the config,
//! found by the key their signature names, withdraws with the connection's own key.

use std::fmt::Write as _;
use std::net::SocketAddr;

use assent_protocol::{
    Claimed, Decision, Envelope, Login, Payload, PublicKey, Request, Role, Signed, Status, Withdraw,
};

use crate::config::{AgentPolicy, RelayConfig};

/// A logged-in connection's key and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub key: PublicKey,
    pub role: Role,
    /// The key's name in the config, when it is listed.
    pub name: Option<String>,
}

/// A fresh login challenge: 32 random bytes as 64 lowercase hex digits.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 32];
    assent_protocol::random_bytes(&mut bytes);
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Verify a login answer to `nonce` and apply the admission policy.
pub fn check_login(
    login: &Envelope,
    nonce: &str,
    config: &RelayConfig,
    peer: SocketAddr,
) -> Result<Identity, String> {
    let signed = login
        .open::<Login>()
        .map_err(|e| format!("login does not verify: {e}"))?;
    if signed.payload.nonce != nonce {
        return Err("login signs a different nonce than the one this connection was given".into());
    }
    let key = signed.signer;
    let role = signed.payload.role;
    let fingerprint = key.fingerprint();
    let name = match role {
        Role::Approver => Some(config.approver_name(&key).ok_or_else(|| {
            format!("key {fingerprint} is not listed as an [[approver]] in this relay's config")
        })?),
        Role::Agent => match config.agent_name(&key) {
            Some(name) => Some(name),
            None if config.agent_policy == AgentPolicy::LoopbackAny && peer.ip().is_loopback() => {
                None
            }
            None => {
                return Err(format!(
                    "agent key {fingerprint} is not listed as an [[agent]] in this relay's config"
                ));
            }
        },
    };
    Ok(Identity {
        key,
        role,
        name: name.map(str::to_owned),
    })
}

/// A request must parse strictly and its SSHSIG must name the key this connection logged in
/// with. Its signature is NOT verified here: the connection is already authenticated, and the
/// console that receives the request opens (verifies) it before showing it.
pub fn check_request(request: &Envelope, who: &Identity) -> Result<Claimed<Request>, String> {
    let claimed = request
        .claim::<Request>()
        .map_err(|e| format!("request is malformed: {e}"))?;
    if !claimed.claimed_signer.is(&who.key) {
        return Err(format!(
            "request {} is signed by {}, not by this connection's key {}",
            claimed.payload.id,
            claimed.claimed_signer.fingerprint(),
            who.key.fingerprint()
        ));
    }
    Ok(claimed)
}

/// A withdraw must verify as signed by this connection's own key (the relay then checks that
/// the request it names was signed by that key too).
pub fn check_withdraw(withdraw: &Envelope, who: &Identity) -> Result<Signed<Withdraw>, String> {
    let mut named = None;
    let opened = withdraw
        .open_trusted::<Withdraw>(|claimed| {
            named = Some(claimed.fingerprint());
            claimed.is(&who.key).then_some(&who.key)
        })
        .map_err(|e| format!("withdraw does not verify: {e}"))?;
    opened.ok_or_else(|| {
        format!(
            "withdraw is signed by {}, not by this connection's key {}",
            named.map_or_else(|| "another key".into(), |f| f.to_string()),
            who.key.fingerprint()
        )
    })
}

/// A decision must verify and be signed by a listed approver whose name it carries.
pub fn check_decision(
    decision: &Envelope,
    config: &RelayConfig,
) -> Result<Signed<Decision>, String> {
    check_decisions(&[decision], config)
        .pop()
        .expect("one result for one decision")
}

/// [`check_decision`] for each of `decisions` (that arrived together), in order, with their
/// signatures checked in one batch.
pub fn check_decisions(
    decisions: &[&Envelope],
    config: &RelayConfig,
) -> Vec<Result<Signed<Decision>, String>> {
    open_from_approvers::<Decision>(decisions, config, "decision")
        .into_iter()
        .map(|opened| {
            let (signed, name) = opened?;
            check_name(&signed.payload.approver, name, "decision")?;
            Ok(signed)
        })
        .collect()
}

/// A status must verify and be signed by a listed approver whose name it carries.
pub fn check_status(status: &Envelope, config: &RelayConfig) -> Result<Signed<Status>, String> {
    let (signed, name) = open_from_approvers::<Status>(&[status], config, "status")
        .pop()
        .expect("one result for one status")?;
    check_name(&signed.payload.approver, name, "status")?;
    Ok(signed)
}

/// Open each of `envelopes` as signed by a listed approver, verified with the listed key
/// (already decoded when the config was read), and that approver's name. A key nobody listed
/// is refused without verifying anything.
fn open_from_approvers<'c, T: Payload>(
    envelopes: &[&Envelope],
    config: &'c RelayConfig,
    what: &str,
) -> Vec<Result<(Signed<T>, &'c str), String>> {
    // For each envelope, the listed approver its signature names, or that key's fingerprint.
    let mut named = vec![None; envelopes.len()];
    let opened = Envelope::open_trusted_all::<T>(envelopes, |i, claimed| {
        let approver = config.approvers.iter().find(|a| claimed.is(&a.key));
        named[i] = Some(approver.ok_or_else(|| claimed.fingerprint()));
        approver.map(|a| &a.key)
    });
    opened
        .into_iter()
        .zip(named)
        .map(|(opened, named)| {
            let opened = opened.map_err(|e| format!("{what} does not verify: {e}"))?;
            match (opened, named) {
                (Some(signed), Some(Ok(approver))) => Ok((signed, approver.name.as_str())),
                (_, Some(Err(fingerprint))) => Err(format!(
                    "{what} is signed by {fingerprint}, which is not a listed approver"
                )),
                _ => Err(format!("{what} does not name its signer")),
            }
        })
        .collect()
}

fn check_name(claimed: &str, name: &str, what: &str) -> Result<(), String> {
    if claimed == name {
        return Ok(());
    }
    Err(format!(
        "{what} claims approver {claimed:?} but is signed by the key listed as {name:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use assent_protocol::PrivateKey;

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::from_seed(&[seed; 32], "")
    }

    fn login(key: &PrivateKey, nonce: &str, role: Role) -> Envelope {
        let payload: Login = serde_json::from_value(serde_json::json!({
            "v": 1, "kind": "login", "nonce": nonce, "role": role,
        }))
        .unwrap();
        Envelope::seal(key, &payload)
    }

    fn loopback() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    fn remote() -> SocketAddr {
        "192.0.2.7:5000".parse().unwrap()
    }

    #[test]
    fn nonces_are_fresh_hex() {
        let (a, b) = (new_nonce(), new_nonce());
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }

    #[test]
    fn approvers_must_be_listed() {
        let alice = key(1);
        let config = RelayConfig::default().with_approver("alice", alice.public());
        let nonce = new_nonce();
        let who = check_login(
            &login(&alice, &nonce, Role::Approver),
            &nonce,
            &config,
            remote(),
        )
        .unwrap();
        assert_eq!(who.role, Role::Approver);
        assert_eq!(who.name.as_deref(), Some("alice"));
        let e = check_login(
            &login(&key(2), &nonce, Role::Approver),
            &nonce,
            &config,
            loopback(),
        )
        .unwrap_err();
        assert!(e.contains("not listed as an [[approver]]"), "{e}");
    }

    #[test]
    fn login_must_answer_this_nonce_under_the_login_namespace() {
        let config = RelayConfig::default();
        let nonce = new_nonce();
        let e = check_login(
            &login(&key(1), &new_nonce(), Role::Agent),
            &nonce,
            &config,
            loopback(),
        )
        .unwrap_err();
        assert!(e.contains("different nonce"), "{e}");
        // A request signature replayed as a login fails on the namespace.
        let payload = login(&key(1), &nonce, Role::Agent)
            .payload_bytes_unverified()
            .unwrap();
        let wrong = Envelope::seal_bytes(&key(1), assent_protocol::Namespace::Request, &payload);
        let e = check_login(&wrong, &nonce, &config, loopback()).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
    }

    #[test]
    fn agent_policy() {
        let listed = key(3);
        let nonce = new_nonce();
        let any = RelayConfig::default().with_agent("openclaw", listed.public());
        assert!(
            check_login(
                &login(&key(4), &nonce, Role::Agent),
                &nonce,
                &any,
                loopback()
            )
            .is_ok()
        );
        assert!(check_login(&login(&key(4), &nonce, Role::Agent), &nonce, &any, remote()).is_err());
        let who =
            check_login(&login(&listed, &nonce, Role::Agent), &nonce, &any, remote()).unwrap();
        assert_eq!(who.name.as_deref(), Some("openclaw"));

        let strict = RelayConfig {
            agent_policy: AgentPolicy::Allowlist,
            ..any
        };
        let e = check_login(
            &login(&key(4), &nonce, Role::Agent),
            &nonce,
            &strict,
            loopback(),
        )
        .unwrap_err();
        assert!(e.contains("not listed as an [[agent]]"), "{e}");
        assert!(
            check_login(
                &login(&listed, &nonce, Role::Agent),
                &nonce,
                &strict,
                loopback()
            )
            .is_ok()
        );
    }

    fn request(key: &PrivateKey) -> Envelope {
        let r: Request = serde_json::from_value(serde_json::json!({
            "v": 1, "kind": "request", "id": "ab".repeat(16),
            "agent": "openclaw", "host": "mini", "host_id": "3f".repeat(16),
            "user": "openclaw", "uid": 1001,
            "run_as": "root", "program": "/usr/bin/true", "program_sha256": "ab".repeat(32),
            "argv": ["true"], "cwd": "/tmp", "env": {}, "reason": "test",
            "grant": "once", "ttl_s": null, "created_at": 1, "expires_at": 2,
        }))
        .unwrap();
        Envelope::seal(key, &r)
    }

    fn agent(key: &PrivateKey) -> Identity {
        Identity {
            key: key.public(),
            role: Role::Agent,
            name: None,
        }
    }

    #[test]
    fn requests_must_name_the_connections_key() {
        let me = key(5);
        let claimed = check_request(&request(&me), &agent(&me)).unwrap();
        assert!(claimed.claimed_signer.is(&me.public()));
        let e = check_request(&request(&key(6)), &agent(&me)).unwrap_err();
        assert!(e.contains("not by this connection's key"), "{e}");
    }

    #[test]
    fn request_signatures_are_left_to_the_console() {
        let me = key(5);
        let good = request(&me);
        // Flip one bit of the Ed25519 signature (the end of the SSHSIG blob).
        let mut blob =
            assent_protocol::sshsig::dearmor(&good.armored_signature().unwrap()).unwrap();
        *blob.last_mut().unwrap() ^= 1;
        let bad = Envelope::from_signature(&good.payload_bytes_unverified().unwrap(), &blob);
        let passed = check_request(&bad, &agent(&me)).unwrap();
        assert_eq!(passed.envelope, bad, "passed on unchanged");
        assert_eq!(
            bad.open::<Request>().unwrap_err(),
            assent_protocol::Error::BadSignature,
            "the console's open refuses it"
        );
        // Malformed ones are still refused here.
        let garbage = Envelope {
            payload: good.payload.clone(),
            sig: "c2lnbmF0dXJl".into(),
        };
        let e = check_request(&garbage, &agent(&me)).unwrap_err();
        assert!(e.contains("request is malformed"), "{e}");
        let wrong_namespace = Envelope::seal_bytes(
            &me,
            assent_protocol::Namespace::Decision,
            &good.payload_bytes_unverified().unwrap(),
        );
        let e = check_request(&wrong_namespace, &agent(&me)).unwrap_err();
        assert!(e.contains("namespace"), "{e}");
    }

    #[test]
    fn withdraws_must_verify_as_the_connections_key() {
        let me = key(5);
        let w = |k: &PrivateKey| {
            let w: Withdraw = serde_json::from_value(serde_json::json!({
                "v": 1, "kind": "withdraw", "request_id": "ab".repeat(16),
                "request_sha256": "cd".repeat(32), "withdrawn_at": 3,
            }))
            .unwrap();
            Envelope::seal(k, &w)
        };
        let ok = check_withdraw(&w(&me), &agent(&me)).unwrap();
        assert_eq!(ok.signer, me.public());
        let e = check_withdraw(&w(&key(6)), &agent(&me)).unwrap_err();
        assert!(
            e.contains(&format!(
                "withdraw is signed by {}, not by this connection's key",
                key(6).public().fingerprint()
            )),
            "{e}"
        );
        // My key named, but the signature is not mine: refused, unlike a request.
        let mut blob =
            assent_protocol::sshsig::dearmor(&w(&me).armored_signature().unwrap()).unwrap();
        *blob.last_mut().unwrap() ^= 1;
        let forged = Envelope::from_signature(&w(&me).payload_bytes_unverified().unwrap(), &blob);
        let e = check_withdraw(&forged, &agent(&me)).unwrap_err();
        assert!(e.contains("withdraw does not verify"), "{e}");
        // A request is not a withdraw.
        let e = check_withdraw(&request(&me), &agent(&me)).unwrap_err();
        assert!(e.contains("namespace"), "{e}");
    }

    #[test]
    fn statuses_need_a_listed_approver_with_its_own_name() {
        let alice = key(1);
        let config = RelayConfig::default().with_approver("alice", alice.public());
        let status = |k: &PrivateKey, name: &str| {
            let s: Status = serde_json::from_value(serde_json::json!({
                "v": 1, "kind": "status", "approver": name, "console": "c0".repeat(16),
                "issued_at": 1, "revoked": [],
            }))
            .unwrap();
            Envelope::seal(k, &s)
        };
        assert!(check_status(&status(&alice, "alice"), &config).is_ok());
        let e = check_status(&status(&alice, "bob"), &config).unwrap_err();
        assert!(e.contains("claims approver \"bob\""), "{e}");
        let e = check_status(&status(&key(2), "alice"), &config).unwrap_err();
        assert!(e.contains("not a listed approver"), "{e}");
        // Alice's signature over other bytes: named as hers, and it does not verify.
        let swapped = Envelope {
            payload: status(&alice, "bob").payload,
            sig: status(&alice, "alice").sig,
        };
        let e = check_status(&swapped, &config).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
    }
}
