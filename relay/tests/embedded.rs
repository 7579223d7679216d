//! The embedding API, as the console uses it: start on port 0, talk to it, shut it down.

use std::time::Duration;

use assent_protocol::{PrivateKey, Role};
use assent_relay::RelayConfig;
use assent_relay_client::{Client, ClientError, Event};

#[tokio::test]
async fn start_on_port_zero_serve_and_shut_down() {
    let alice = PrivateKey::generate("alice");
    let config = RelayConfig::default().with_approver("alice", alice.public());
    let relay = assent_relay::start(config, "127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    assert_ne!(relay.local_addr().port(), 0);
    assert_eq!(relay.url(), format!("ws://{}", relay.local_addr()));

    let mut console = Client::connect(&relay.url(), &alice, Role::Approver)
        .await
        .unwrap();
    assert_eq!(console.name(), Some("alice"));
    assert_eq!(console.relay_url(), relay.url());
    console.request_statuses().await.unwrap();
    assert_eq!(
        console.next_event().await.unwrap(),
        Event::Statuses { statuses: vec![] }
    );

    // Shutdown tells connected clients and then stops listening.
    let url = relay.url();
    tokio::time::timeout(Duration::from_secs(5), relay.shutdown())
        .await
        .expect("shutdown took too long");
    match console.next_event().await {
        Err(ClientError::Closed(why)) => assert!(why.contains("shutting down"), "{why}"),
        other => panic!("expected the connection to close, got {other:?}"),
    }
    assert!(matches!(
        Client::connect(&url, &alice, Role::Approver).await,
        Err(ClientError::Connect(_))
    ));
}

#[tokio::test]
async fn plain_ws_is_refused_off_loopback_unless_allowed() {
    let e = assent_relay::start(RelayConfig::default(), "0.0.0.0:0".parse().unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("not a loopback address"), "{e}");

    let allowed = RelayConfig {
        insecure_listen: true,
        ..RelayConfig::default()
    };
    let relay = assent_relay::start(allowed, "0.0.0.0:0".parse().unwrap(), None)
        .await
        .unwrap();
    relay.shutdown().await;
}

#[tokio::test]
async fn unlisted_approvers_cannot_log_in() {
    let relay = assent_relay::start(RelayConfig::default(), "127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let stranger = PrivateKey::generate("stranger");
    match Client::connect(&relay.url(), &stranger, Role::Approver).await {
        Err(ClientError::Refused(why)) => assert!(why.contains("[[approver]]"), "{why}"),
        other => panic!("expected a refused login, got {other:?}"),
    }
    // Any agent key is fine on loopback with no config.
    Client::connect(&relay.url(), &stranger, Role::Agent)
        .await
        .unwrap()
        .close()
        .await;
}

#[tokio::test]
async fn an_invalid_config_is_refused_at_start() {
    let key = PrivateKey::generate("k").public();
    let config = RelayConfig::default()
        .with_approver("alice", key)
        .with_approver("bob", key);
    let e = assent_relay::start(config, "127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("same key"), "{e}");
}
