//! `videoroom-server`: the Videoroom SFU (selective forwarding unit).
//!
//! Clients join rooms by name over a WebSocket (`/ws`, protocol in `docs/protocol.md`) and send
//! their audio and video over one WebRTC connection to the server, which forwards every published
//! track to every other peer of the room. It does not mix, transcode or record media.
//!
//! Where to start: [`start`] binds and serves; `signaling.rs` is one WebSocket session;
//! `room.rs` the room actor; `peer.rs` one peer's WebRTC endpoint; `engine/` the media engine
//! (`engine/core.rs` first).
//! `docs/ARCHITECTURE.md` shows how data flows between them.

pub mod auth;
pub mod chat;
pub mod config;
pub mod engine;
pub mod fd_limit;
pub mod http;
pub mod invite;
/// The WebRTC setup shared with the clients (codecs, interceptors, keyframe-request tap).
pub use videoroom_webrtc as media;
pub mod limits;
pub mod linger;
pub mod metrics;
pub mod peer;
pub mod registry;
pub mod room;
pub mod rtc_config;
pub mod sdp_check;
pub mod signaling;
pub mod tls;
pub mod web;

use axum::Router;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::info;

pub use config::{AuthMode, Cli, Command, Config};
pub use metrics::Metrics;

/// What every task of the server shares.
pub struct Shared {
    /// Effective configuration.
    pub config: Config,
    /// Checks invitation tokens (`--auth token`), when a secret is configured.
    pub authority: Option<auth::Authority>,
    /// Exported metrics.
    pub metrics: Arc<Metrics>,
    /// Abuse limits per client IP.
    pub limits: limits::Limits,
    /// How candidates and SDP are advertised (the public IP behind a 1:1 NAT).
    pub rtc: Arc<rtc_config::RtcConfig>,
    /// The media engine: the one UDP port, every peer's connection, forwarding.
    pub media: engine::Engine,
    /// Open rooms.
    pub rooms: registry::Rooms,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
    connections: Arc<Semaphore>,
    sessions: TaskTracker,
}

impl Shared {
    /// Open TCP connections, HTTP and WebSocket, each holding a `--max-connections` slot.
    fn open_connections(&self) -> usize {
        let free = self.connections.available_permits();
        self.config.max_connections.saturating_sub(free)
    }
}

/// A running server.
pub struct RunningServer {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    serve: tokio::task::JoinHandle<std::io::Result<()>>,
    fingerprint: Option<Arc<std::sync::RwLock<String>>>,
}

/// Binds `config.listen` and starts serving `/ws`, `/healthz` and `/metrics`.
pub async fn start(config: Config) -> std::io::Result<RunningServer> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let local_addr = listener.local_addr()?;
    let authority = config.authority().map_err(std::io::Error::other)?;
    let counters = Arc::new(Metrics::default());
    let media = engine::Engine::start(
        engine::EngineConfig {
            bind: SocketAddr::new(config.rtc_bind_ip, config.media_udp_port()),
            public_ip: config.public_ip,
            tcp_bind: config
                .tcp_port
                .map(|port| SocketAddr::new(config.rtc_bind_ip, port)),
            advertise_udp: config.media_udp_candidates,
            workers: config.media_workers,
        },
        Arc::clone(&counters),
    )
    .map_err(std::io::Error::other)?;
    let shared = Arc::new(Shared {
        authority,
        media,
        rtc: Arc::new(rtc_config::RtcConfig::new(&config)),
        connections: Arc::new(Semaphore::new(config.max_connections)),
        limits: limits::Limits::new(&config.rate_limits),
        config,
        metrics: counters,
        rooms: registry::Rooms::default(),
        shutdown: CancellationToken::new(),
        sessions: TaskTracker::new(),
    });
    let mut app = Router::new()
        .route("/ws", get(ws_upgrade))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics));
    if let Some(root) = &shared.config.web_root {
        web::check_root(root).map_err(std::io::Error::other)?;
        app = web::routes(app, root);
    }
    let app = with_security_headers(app.with_state(Arc::clone(&shared)));
    let tls = tls::setup(&shared.config, &shared.metrics, &shared.shutdown)
        .map_err(std::io::Error::other)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let fingerprint = tls.as_ref().map(|t| Arc::clone(&t.fingerprint));
    // Header-read and idle timeouts, and one --max-connections slot per TCP connection.
    let serve = tokio::spawn(http::serve(
        listener,
        app,
        tls.map(|t| t.acceptor),
        Arc::clone(&shared),
    ));
    info!(%local_addr, scheme, "videoroom-server listening (WebSocket at /ws)");
    Ok(RunningServer {
        local_addr,
        shared,
        serve,
        fingerprint,
    })
}

impl RunningServer {
    /// The media engine's worker threads.
    pub fn media_workers(&self) -> usize {
        self.shared.media.worker_count()
    }

    /// Peers on each media worker.
    pub fn media_worker_loads(&self) -> Vec<usize> {
        self.shared.media.worker_loads()
    }

    /// The media engine's bound UDP address (useful with `--udp-port 0`).
    pub fn udp_addr(&self) -> SocketAddr {
        self.shared.media.udp_addr()
    }

    /// The ICE-TCP listener's bound address (useful with `--tcp-port 0`), if ICE-TCP is on.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.shared.media.tcp_addr()
    }

    /// The ICE-TCP counters so far: connections accepted, refused and closed (per reason),
    /// frames in and out (all zero when ICE-TCP is off).
    pub fn tcp_stats(&self) -> engine::io_tcp::TcpCounts {
        self.shared.media.tcp_stats()
    }

    /// The bound HTTP address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.fingerprint.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The SHA-256 fingerprint (`AA:BB:…`) of the TLS certificate served now, over HTTPS.
    pub fn tls_fingerprint(&self) -> Option<String> {
        let f = self.fingerprint.as_ref()?;
        f.read().ok().map(|f| f.clone())
    }

    /// The server's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// Open TCP connections, HTTP and WebSocket, each holding a `--max-connections` slot.
    pub fn open_connections(&self) -> usize {
        self.shared.open_connections()
    }

    /// Number of open rooms.
    pub fn room_count(&self) -> usize {
        self.shared.rooms.len()
    }

    /// Stops taking joins, tells every peer, closes every room and waits (at most `grace`) for
    /// every session to end. Returns whether everything ended in time.
    pub async fn shutdown(self, grace: Duration) -> bool {
        info!("shutting down: refusing joins, closing rooms");
        self.shared.rooms.shutdown().await;
        self.shared.shutdown.cancel();
        self.shared.sessions.close();
        let drained = tokio::time::timeout(grace, async {
            self.shared.sessions.wait().await;
            let _ = self.serve.await;
        })
        .await
        .is_ok();
        info!(drained, "shutdown complete");
        drained
    }
}

async fn ws_upgrade(
    ws: WebSocketUpgrade,
    State(shared): State<Arc<Shared>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    slot: Option<axum::Extension<http::ConnectionSlot>>,
    headers: axum::http::HeaderMap,
) -> Response {
    if shared.rooms.is_shutting_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, "server is shutting down\n").into_response();
    }
    let client_ip = shared.limits.client_ip(remote.ip(), &headers);
    if let Err(limited) = shared.limits.check_upgrade(client_ip) {
        shared.metrics.count_limited(limits::LimitKind::Upgrade);
        tracing::debug!(%client_ip, "WebSocket upgrade rate limited");
        return limited.into_response();
    }
    // The session keeps the slot its TCP connection took when accepted.
    let permit = slot.and_then(|axum::Extension(slot)| slot.take());
    let permit = permit.or_else(|| Arc::clone(&shared.connections).try_acquire_owned().ok());
    let Some(permit) = permit else {
        shared.metrics.connections_refused.inc();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections; try again later\n",
        )
            .into_response();
    };
    let limit = shared.config.max_message_bytes;
    let tracker = shared.sessions.clone();
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| {
            tracker.track_future(signaling::run(
                socket,
                shared,
                permit,
                remote.to_string(),
                client_ip,
            ))
        })
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.rooms.is_shutting_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let open = shared.open_connections();
    shared
        .metrics
        .open_connections
        .set(i64::try_from(open).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.metrics.render(),
    )
        .into_response()
}

/// The web app's content security policy: its own scripts only (no inline or injected
/// script), its own WebSocket, media from the browser's own streams, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob:; \
    connect-src 'self'; worker-src 'self'; object-src 'none'; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'none'";

/// Headers on every HTTP response: the web app's [`CONTENT_SECURITY_POLICY`], no framing, no
/// sniffing, and no address (an invite link's room) leaking in a `Referer`.
fn with_security_headers(app: Router) -> Router {
    let set = |name, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    app.layer(set(
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    ))
    .layer(set(header::X_FRAME_OPTIONS, "DENY"))
    .layer(set(header::REFERRER_POLICY, "no-referrer"))
    .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
}
