//! Test harness shared by Videoroom's integration tests and benchmarks.
//!
//! - [`start_server`]: a real `videoroom-server` on 127.0.0.1:0 with WebRTC bound to loopback.
//! - [`RawClient`]: a bare WebSocket client for protocol-level tests.
//! - [`TestPeer`]: a real participant (webrtc-0.21 PeerConnection) that publishes RTP with known
//!   payloads or real VP8/Opus fixtures, answers the server, and records what it receives.
//! - [`wait_until`]: bounded waits on a condition (never fixed sleeps).

mod media;
mod peer;
mod raw;
pub mod xvfb;

pub use media::{
    PacketSource, Source, counter_of, fixture_path, opus_packets, payload_for, vp8_frames,
};
pub use peer::{PeerOptions, PeerState, Received, TestPeer, lock};
pub use raw::{RawClient, join_message};

use std::time::Duration;
use videoroom_server::{Config, RunningServer};

/// Generous bound for conditions that normally hold within a second or two.
pub const WAIT: Duration = Duration::from_secs(20);

/// Logs to the test output, filtered by `RUST_LOG` (default: warnings).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// A loopback-only server configuration: HTTP on 127.0.0.1:0, WebRTC on 127.0.0.1.
pub fn test_config() -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        rtc_bind_ip: "127.0.0.1".parse().expect("ip"),
        ..Config::default()
    }
}

/// Starts a server in this process.
pub async fn start_server(config: Config) -> RunningServer {
    init_tracing();
    videoroom_server::start(config)
        .await
        .expect("server starts")
}

/// The server's WebSocket URL.
pub fn ws_url(server: &RunningServer) -> String {
    format!("ws://{}/ws", server.local_addr())
}

/// Polls `condition` every 20 ms until it holds; panics with `what` after `timeout`.
pub async fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !condition() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
