//! What the relay checks on a submitted request, and what it leaves to the console: the SSHSIG
//! must name the connection's own key, but the signature itself is verified by the console.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use assent_protocol::payload::{KindRequest, V1};
use assent_protocol::{
    Env, Envelope, Error, Grant, HostId, PrivateKey, Request, RequestId, Role, sha256, sshsig,
};
use assent_relay::RelayConfig;
use assent_relay_client::{Client, ClientError, Event};

fn request() -> Request {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Request {
        v: V1,
        kind: KindRequest,
        id: RequestId::random(),
        agent: "openclaw".into(),
        host: "mini".into(),
        host_id: HostId([0x3f; 16]),
        user: "openclaw".into(),
        uid: 1001,
        run_as: "root".into(),
        program: "/usr/bin/true".into(),
        program_sha256: sha256(b"true"),
        argv: vec!["true".into()],
        cwd: "/tmp".into(),
        env: Env::default(),
        reason: "test".into(),
        grant: Grant::Once,
        ttl_s: None,
        created_at: now,
        expires_at: now + 60,
    }
}

async fn next(client: &mut Client) -> Result<Event, ClientError> {
    tokio::time::timeout(Duration::from_secs(5), client.next_event())
        .await
        .expect("no event within 5 s")
}

async fn relay_with_console() -> (assent_relay::RelayHandle, Client) {
    let alice = PrivateKey::generate("alice");
    let config = RelayConfig::default().with_approver("alice", alice.public());
    let relay = assent_relay::start(config, "127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let console = Client::connect(&relay.url(), &alice, Role::Approver)
        .await
        .unwrap();
    (relay, console)
}

#[tokio::test]
async fn a_request_naming_another_key_closes_the_connection() {
    let (relay, _console) = relay_with_console().await;
    let me = PrivateKey::generate("me");
    let mut agent = Client::connect(&relay.url(), &me, Role::Agent)
        .await
        .unwrap();
    let theirs = Envelope::seal(&PrivateKey::generate("someone else"), &request());
    agent.submit(&theirs).await.unwrap();
    match next(&mut agent).await {
        Err(ClientError::Closed(why)) => {
            assert!(why.contains("not by this connection's key"), "{why}")
        }
        other => panic!("expected the relay to close the connection, got {other:?}"),
    }
    relay.shutdown().await;
}

#[tokio::test]
async fn a_bad_signature_is_passed_on_and_refused_by_the_console() {
    let (relay, mut console) = relay_with_console().await;
    let me = PrivateKey::generate("me");
    let mut agent = Client::connect(&relay.url(), &me, Role::Agent)
        .await
        .unwrap();
    let good = Envelope::seal(&me, &request());
    let mut blob = sshsig::dearmor(&good.armored_signature().unwrap()).unwrap();
    *blob.last_mut().unwrap() ^= 1;
    let bad = Envelope::from_signature(&good.payload_bytes_unverified().unwrap(), &blob);

    agent.submit(&bad).await.unwrap();
    assert!(matches!(next(&mut agent).await, Ok(Event::Queued { .. })));
    match next(&mut console).await {
        Ok(Event::Request { envelope, .. }) => {
            assert_eq!(envelope, bad, "passed on unchanged");
            assert_eq!(envelope.open::<Request>(), Err(Error::BadSignature));
        }
        other => panic!("expected the request, got {other:?}"),
    }
    // A malformed SSHSIG is still refused by the relay itself.
    let garbage = Envelope {
        payload: good.payload.clone(),
        sig: "U1NISVNJRw==".into(),
    };
    agent.submit(&garbage).await.unwrap();
    match next(&mut agent).await {
        Err(ClientError::Closed(why)) => assert!(why.contains("request is malformed"), "{why}"),
        other => panic!("expected the relay to close the connection, got {other:?}"),
    }
    relay.shutdown().await;
}
