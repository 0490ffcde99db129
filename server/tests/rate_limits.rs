//! Abuse limits per client IP: WebSocket upgrades (HTTP 429 with `Retry-After`), joins
//! (`join_error rate_limited`) and messages per connection (`error rate_limited`), each counted
//! in `/metrics`. Clients connect from chosen loopback addresses (Linux routes all of 127/8 to
//! `lo`), so one test has several "addresses".

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpSocket;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};
use videoroom_protocol::{ClientMessage, ErrorCode, ServerMessage};
use videoroom_server::RunningServer;
use videoroom_server::limits::{LimitKind, Rate};
use videoroom_testkit::*;

const HERE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A WebSocket to the server from `source` (with an `X-Forwarded-For` header if given), or the
/// `Retry-After` seconds of its HTTP 429.
async fn connect_from(
    server: &RunningServer,
    source: Ipv4Addr,
    forwarded_for: Option<&str>,
) -> Result<RawClient, u64> {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind a loopback source address");
    let stream = socket
        .connect(server.local_addr())
        .await
        .expect("tcp connects");
    let mut request = ws_url(server).into_client_request().expect("request");
    if let Some(address) = forwarded_for {
        request
            .headers_mut()
            .insert("x-forwarded-for", address.parse().expect("header value"));
    }
    match tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await {
        Ok((ws, _)) => Ok(RawClient { ws }),
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429, "refused upgrade: {response:?}");
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .expect("a 429 says when to retry");
            assert!(retry_after >= 1, "Retry-After {retry_after}");
            Err(retry_after)
        }
        Err(e) => panic!("connecting from {source}: {e}"),
    }
}

/// The `/metrics` text.
async fn metrics_text(server: &RunningServer) -> String {
    reqwest::get(format!("http://{}/metrics", server.local_addr()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body")
}

/// The value of the series `videoroom_rate_limited_requests_total{kind="<kind>"}`.
fn limited_in(text: &str, kind: &str) -> u64 {
    let series = format!("videoroom_rate_limited_requests_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

fn is_rate_limited_join(m: &ServerMessage) -> bool {
    match m {
        ServerMessage::JoinError { code, message } if *code == ErrorCode::RateLimited => {
            assert!(message.contains("try again"), "{message}");
            true
        }
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_200_joins_from_one_address_is_limited_and_another_address_is_not() {
    let mut config = test_config();
    config.rate_limits.upgrades_per_ip = Rate {
        per_sec: 1,
        burst: 60,
    };
    config.rate_limits.joins_per_ip = Rate {
        per_sec: 1,
        burst: 20,
    };
    let server = start_server(config).await;
    let started = tokio::time::Instant::now();
    let (mut joined, mut join_limited, mut upgrade_limited) = (Vec::new(), Vec::new(), 0u64);
    for i in 0..200 {
        let Ok(mut client) = connect_from(&server, HERE, None).await else {
            upgrade_limited += 1;
            continue;
        };
        let answer = client.join(&format!("burst-{i}"), "guest").await;
        if is_rate_limited_join(&answer) {
            join_limited.push(client);
        } else if let ServerMessage::Joined { .. } = answer {
            joined.push(client);
        } else {
            panic!("join {i}: expected joined or rate_limited, got {answer:?}");
        }
    }
    // At most one more of each per second since the burst began.
    let refill = started.elapsed().as_secs() + 1;
    let upgraded = 200 - upgrade_limited;
    assert!(
        (60..=60 + refill).contains(&upgraded),
        "{upgraded} upgrades passed in {refill} s"
    );
    assert!(
        (20..=20 + refill as usize).contains(&joined.len()),
        "{} joins passed in {refill} s",
        joined.len()
    );
    assert!(!join_limited.is_empty(), "no join was limited");
    let join_limited_count = join_limited.len() as u64;
    assert_eq!(upgraded, joined.len() as u64 + join_limited_count);

    // Counted in /metrics.
    let text = metrics_text(&server).await;
    assert_eq!(limited_in(&text, "upgrade"), upgrade_limited);
    assert_eq!(limited_in(&text, "join"), join_limited_count);
    assert_eq!(limited_in(&text, "message"), 0);

    // Another address is not affected.
    for i in 0..5 {
        let mut client = connect_from(&server, ELSEWHERE, None)
            .await
            .expect("127.0.0.2 is not limited");
        let answer = client.join(&format!("elsewhere-{i}"), "neighbour").await;
        assert!(
            matches!(answer, ServerMessage::Joined { .. }),
            "127.0.0.2 join {i}: {answer:?}"
        );
        joined.push(client);
    }
    assert_eq!(
        server.metrics().limited(LimitKind::Upgrade),
        upgrade_limited
    );
    assert_eq!(
        server.metrics().limited(LimitKind::Join),
        join_limited_count
    );

    // A connection whose join was limited stays open and gets in once the bucket refills.
    let mut patient = join_limited.pop().expect("a limited connection");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = patient.join("patience", "patient").await;
        if let ServerMessage::Joined { .. } = answer {
            break;
        }
        assert!(is_rate_limited_join(&answer), "{answer:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "still limited 10 s after the burst"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flooding_messages_is_limited_and_stays_usable() {
    let mut config = test_config();
    config.rate_limits.messages_per_connection = Rate {
        per_sec: 5,
        burst: 20,
    };
    let server = start_server(config).await;
    let mut flooder = connect_from(&server, HERE, None).await.expect("connects");
    assert!(matches!(
        flooder.join("flood", "flooder").await,
        ServerMessage::Joined { .. }
    ));

    // The join took one of the 20; 100 pings at once.
    let started = tokio::time::Instant::now();
    for id in 1..=100 {
        flooder.send(&ClientMessage::Ping { id }).await;
    }
    let (mut pongs, mut limited) = (Vec::new(), 0u64);
    while pongs.len() as u64 + limited < 100 {
        match flooder.recv().await {
            ServerMessage::Pong { id } => pongs.push(id),
            ServerMessage::Error { code, message } => {
                assert_eq!(code, ErrorCode::RateLimited, "{message}");
                assert!(message.contains("slow down"), "{message}");
                limited += 1;
            }
            _ => {}
        }
    }
    let refill = 5 * (started.elapsed().as_secs() + 1) as usize;
    assert!(
        (19..=19 + refill).contains(&pongs.len()),
        "{} of 100 pings answered",
        pongs.len()
    );
    assert_eq!(pongs[..19], (1..=19).collect::<Vec<u64>>()[..]);
    assert!(limited >= 50, "only {limited} limited");
    assert_eq!(server.metrics().limited(LimitKind::Message), limited);
    assert_eq!(limited_in(&metrics_text(&server).await, "message"), limited);

    // Another connection from the same address has its own bucket.
    let mut calm = connect_from(&server, HERE, None).await.expect("connects");
    assert!(matches!(
        calm.join("flood", "calm").await,
        ServerMessage::Joined { .. }
    ));
    for id in 1..=10 {
        calm.send(&ClientMessage::Ping { id }).await;
    }
    for id in 1..=10 {
        let answer = calm
            .recv_until(|m| matches!(m, ServerMessage::Pong { .. } | ServerMessage::Error { .. }))
            .await;
        assert!(
            matches!(answer, ServerMessage::Pong { id: got } if got == id),
            "{answer:?}"
        );
    }

    // The flooder is still in the room and is answered again once its bucket refills.
    flooder
        .recv_until(
            |m| matches!(m, ServerMessage::PeerJoined { peer } if peer.display_name == "calm"),
        )
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut id = 1000;
    loop {
        id += 1;
        flooder.send(&ClientMessage::Ping { id }).await;
        let answer = flooder
            .recv_until(|m| matches!(m, ServerMessage::Pong { .. } | ServerMessage::Error { .. }))
            .await;
        if matches!(answer, ServerMessage::Pong { id: got } if got == id) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still limited 10 s after the flood: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A second later the bucket holds five again: a rename reaches the room.
    tokio::time::sleep(Duration::from_secs(1)).await;
    flooder
        .send(&ClientMessage::UpdatePeer {
            display_name: Some("reformed".into()),
            metadata: None,
        })
        .await;
    let answer = flooder
        .recv_until(|m| {
            matches!(
                m,
                ServerMessage::PeerUpdated { .. } | ServerMessage::Error { .. }
            )
        })
        .await;
    assert!(
        matches!(&answer, ServerMessage::PeerUpdated { peer } if peer.display_name == "reformed"),
        "{answer:?}"
    );
    calm.recv_until(
        |m| matches!(m, ServerMessage::PeerUpdated { peer } if peer.display_name == "reformed"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_defaults_let_a_busy_address_through() {
    // The other tests and the benchmarks connect dozens of peers from 127.0.0.1 at once.
    let server = start_server(test_config()).await;
    let mut clients = Vec::new();
    for i in 0..100 {
        let mut client = connect_from(&server, HERE, None)
            .await
            .unwrap_or_else(|_| panic!("upgrade {i} limited"));
        let answer = client.join(&format!("busy-{}", i / 10), "guest").await;
        assert!(
            matches!(answer, ServerMessage::Joined { .. }),
            "join {i}: {answer:?}"
        );
        clients.push(client);
    }
    let text = metrics_text(&server).await;
    for kind in ["upgrade", "join", "message"] {
        assert_eq!(limited_in(&text, kind), 0, "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let mut config = test_config();
    config.rate_limits.upgrades_per_ip = Rate {
        per_sec: 1,
        burst: 3,
    };
    config.rate_limits.trusted_proxies = vec![HERE.into()];
    let server = start_server(config).await;
    let mut open = Vec::new();

    // Behind the trusted proxy (127.0.0.1): each forwarded client has its own bucket.
    for _ in 0..3 {
        open.push(
            connect_from(&server, HERE, Some("198.51.100.7"))
                .await
                .expect("within the burst"),
        );
    }
    assert!(
        connect_from(&server, HERE, Some("198.51.100.7"))
            .await
            .is_err()
    );
    open.push(
        connect_from(&server, HERE, Some("203.0.113.9, 198.51.100.8"))
            .await
            .expect("198.51.100.8 is another client"),
    );

    // From an address that is no proxy, the header is ignored: it cannot dodge its limit.
    for i in 0..3 {
        let forwarded = format!("198.51.100.{}", 20 + i);
        open.push(
            connect_from(&server, ELSEWHERE, Some(&forwarded))
                .await
                .expect("within the burst"),
        );
    }
    assert!(
        connect_from(&server, ELSEWHERE, Some("198.51.100.99"))
            .await
            .is_err()
    );
    assert_eq!(server.metrics().limited(LimitKind::Upgrade), 2);
}
