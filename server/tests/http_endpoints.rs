//! GET /healthz and GET /metrics, and `--help`.

use videoroom_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics_report_rooms_peers_and_packets() {
    let server = start_server(test_config()).await;
    let base = format!("http://{}", server.local_addr());
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);

    let url = ws_url(&server);
    let a = TestPeer::join(&url, "metrics", "alice", PeerOptions::default()).await;
    let b = TestPeer::join(&url, "metrics", "bob", PeerOptions::default()).await;
    wait_until(WAIT, "media flows both ways", || {
        a.received_count("bob-cam") > 50 && b.received_count("alice-cam") > 50
    })
    .await;
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|rest| rest.trim().split(' ').next())
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert_eq!(value("videoroom_rooms "), 1.0);
    assert_eq!(value("videoroom_peers "), 2.0);
    assert_eq!(value("videoroom_tracks "), 4.0);
    assert!(value("videoroom_rtp_packets_in_total ") > 100.0);
    assert!(value("videoroom_rtp_packets_out_total ") > 100.0);
    assert!(value("videoroom_rtp_bytes_out_total ") > 100_000.0);
    assert!(value("videoroom_keyframe_requests_total ") >= 2.0);
    value("videoroom_dropped_packets_total ");
    value("videoroom_connections ");
}

#[test]
fn help_lists_every_setting() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_videoroom-server"))
        .arg("--help")
        .output()
        .expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--rtc-bind-ip",
        "--udp-port",
        "--ice-port-range",
        "--public-ip",
        "--ice-server",
        "--max-peers-per-room",
        "--max-message-bytes",
        "--http-header-timeout",
        "--http-idle-timeout",
        "--auth",
        "--secret",
        "--secret-file",
        "--public-url",
        "--max-joins-per-ip-per-sec",
        "--trusted-proxy",
        "token",
        "--config",
        "VIDEOROOM_LISTEN",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
}

#[test]
fn bad_configuration_exits_2_with_a_message() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_videoroom-server"))
        .args(["--ice-port-range", "9000-100"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ICE port range"));
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let server = start_server(test_config()).await;
    let base = format!("http://{}", server.local_addr());
    let client = reqwest::Client::new();
    for path in ["/healthz", "/metrics", "/no-such-page", "/ws"] {
        let response = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("answers");
        let h = response.headers();
        let get = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{path}: no {name} header"))
                .to_owned()
        };
        let csp = get("content-security-policy");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self';"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("object-src 'none'"), "{path}: {csp}");
        assert_eq!(get("x-frame-options"), "DENY", "{path}");
        assert_eq!(get("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(get("x-content-type-options"), "nosniff", "{path}");
    }
}
