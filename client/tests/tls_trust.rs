//! `wss://` to a server with a self-signed certificate: refused with the certificate's
//! fingerprint until that fingerprint is trusted; then the join goes through, and a changed
//! certificate is refused again.

use videoroom_client::signaling::SignalingError;
use videoroom_client::{JoinError, JoinOptions, Room};
use videoroom_server::Config;
use videoroom_server::config::TlsSetting;
use videoroom_testkit::{start_server, test_config};

fn options() -> JoinOptions {
    JoinOptions::default()
        .with_udp_addrs(vec!["127.0.0.1:0".parse().expect("address")])
        .with_reconnect(None)
}

fn self_signed() -> Config {
    Config {
        tls: TlsSetting::SelfSigned,
        ..test_config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_certificate_is_refused_until_its_fingerprint_is_trusted() {
    let server = start_server(self_signed()).await;
    let fingerprint = server.tls_fingerprint().expect("HTTPS");
    let url = format!("wss://localhost:{}/ws", server.local_addr().port());

    let Err(refused) = Room::join(&url, "tofu", "Ada", options()).await else {
        panic!("an unknown certificate was accepted");
    };
    match refused {
        JoinError::Unreachable(SignalingError::UntrustedCertificate {
            fingerprint: seen, ..
        }) => assert_eq!(seen, fingerprint),
        other => panic!("expected an untrusted certificate, got {other}"),
    }

    let trusted = options().with_trusted_certificates(vec![fingerprint.to_lowercase()]);
    let (room, _events) = Room::join(&url, "tofu", "Ada", trusted)
        .await
        .expect("joins once the fingerprint is trusted");
    assert!(!room.peer_id().as_str().is_empty());

    // Another server (another certificate) at the same address is not trusted by the old one.
    let other = start_server(self_signed()).await;
    let other_url = format!("wss://localhost:{}/ws", other.local_addr().port());
    let changed = options().with_trusted_certificates(vec![fingerprint]);
    let Err(again) = Room::join(&other_url, "tofu", "Ada", changed).await else {
        panic!("a changed certificate was accepted");
    };
    assert!(
        matches!(
            again,
            JoinError::Unreachable(SignalingError::UntrustedCertificate { .. })
        ),
        "{again}"
    );
}
