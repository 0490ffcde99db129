//! `--public-ip` and `--ice-port-range` shape the candidates the server hands out.

use videoroom_protocol::{ClientMessage, ServerMessage};
use videoroom_testkit::*;

/// Joins, offers, and collects the server's candidates until one arrives (bounded by WAIT).
async fn server_candidates(url: &str) -> Vec<String> {
    let mut c = RawClient::connect(url).await;
    assert!(matches!(
        c.join("net", "ada").await,
        ServerMessage::Joined { .. }
    ));
    c.send(&ClientMessage::SdpOffer {
        sdp: TestPeer::offer_only().await,
        tracks: vec![],
    })
    .await;
    let mut candidates = Vec::new();
    while candidates.is_empty() {
        if let ServerMessage::IceCandidate { candidate } = c.recv().await {
            candidates.push(candidate.candidate);
        }
    }
    candidates
}

/// (address, port) of an ICE candidate line: `candidate:<f> <c> <proto> <prio> <addr> <port> typ …`.
fn address_and_port(candidate: &str) -> (String, u16) {
    let fields: Vec<&str> = candidate.split_whitespace().collect();
    (fields[4].to_owned(), fields[5].parse().expect("port"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_ip_and_port_range_appear_in_the_servers_candidates() {
    let mut config = test_config();
    config.public_ip = Some("203.0.113.7".parse().expect("ip"));
    config.ice_port_range = Some((47100, 47109));
    let server = start_server(config).await;
    let candidates = server_candidates(&ws_url(&server)).await;
    for c in &candidates {
        let (addr, port) = address_and_port(c);
        assert_eq!(addr, "203.0.113.7", "{c}");
        assert!((47100..=47109).contains(&port), "{c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_them_the_bind_address_and_any_port_are_used() {
    let server = start_server(test_config()).await;
    let candidates = server_candidates(&ws_url(&server)).await;
    let (addr, _) = address_and_port(&candidates[0]);
    assert_eq!(addr, "127.0.0.1", "{}", candidates[0]);
}
