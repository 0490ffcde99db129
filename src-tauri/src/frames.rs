//! The frame socket: video frames from the engine to the UI's render worker.
//!
//! A WebSocket on `127.0.0.1:<random port>/frames?token=<random>`, new on every launch. The
//! worker says which tiles it shows (`tiles`: slot, track, size in device pixels); the backend
//! scales each track's newest frame to its tile and sends it as one binary message (a 40-byte
//! header, then RGBA). At most one frame per slot is unacknowledged (`credit`), so nothing
//! queues: a slow UI sees fewer, newer frames. Protocol: `docs/desktop.md`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use videoroom_client::DecodedFrame;
use videoroom_client::media::I420Frame;
use videoroom_client::media::tile::TileScaler;

/// Length of the binary header in front of every frame.
pub const HEADER_LEN: usize = 40;
/// Header `version`.
const VERSION: u8 = 1;
/// Header `format`: RGBA, 8 bits per channel.
const FORMAT_RGBA8: u8 = 0;
/// Header flag: the frame carries no burned-in stamp.
const FLAG_NO_STAMP: u32 = 1;
/// Largest tile accepted.
const MAX_TILE: (u32, u32) = (1920, 1080);
/// Most tiles at once (16 peers + self view, with room to spare).
const MAX_TILES: usize = 32;
/// A frame whose credit does not come back within this time is taken as lost.
const CREDIT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest message accepted from the UI.
const MAX_MESSAGE: usize = 64 * 1024;
/// Origins the webview loads the UI from (Linux/macOS, Windows, the Vite dev server).
const ALLOWED_ORIGINS: &[&str] = &[
    "tauri://localhost",
    "http://tauri.localhost",
    "https://tauri.localhost",
    "http://127.0.0.1:5173",
    "http://localhost:5173",
];

/// A picture as the socket sends it.
pub struct Picture {
    frame: Arc<dyn AsFrame>,
}

/// Anything the frame socket can draw.
pub trait AsFrame: Send + Sync {
    /// The picture.
    fn frame(&self) -> &I420Frame;
    /// The burned-in (frame number, capture µs), if any.
    fn stamp(&self) -> Option<(u64, u64)>;
}

impl AsFrame for I420Frame {
    fn frame(&self) -> &I420Frame {
        self
    }
    fn stamp(&self) -> Option<(u64, u64)> {
        // Local frames carry their numbers as fields (the pattern also burns them in).
        (self.capture_micros != 0).then_some((self.frame_number, self.capture_micros))
    }
}

impl AsFrame for DecodedFrame {
    fn frame(&self) -> &I420Frame {
        &self.frame
    }
    fn stamp(&self) -> Option<(u64, u64)> {
        self.burned_in
    }
}

/// The newest local frame (camera preview or own camera in a room, our screen share's preview,
/// a picker thumbnail).
pub type LocalFrames = watch::Receiver<Option<Arc<I420Frame>>>;
/// The newest decoded frame of a remote track.
pub type RemoteFrames = watch::Receiver<Option<Arc<DecodedFrame>>>;

/// The frame track of the self view (lobby preview, own camera in a room).
pub const SELF_TRACK: &str = "self";
/// The frame track of our own screen share's preview.
pub const SCREEN_TRACK: &str = "screen";
/// Frame tracks `source:<id>` are the picker's thumbnails of screen source `<id>` (a remote
/// track id cannot contain `:`: it is an SDP token).
pub const SOURCE_TRACK_PREFIX: &str = "source:";

/// What can be shown: the self view, our screen share's preview, the picker's thumbnails and
/// each remote video track. The session updates it; each tile of the frame socket follows it.
#[derive(Debug)]
pub struct FrameHub {
    local: watch::Sender<Option<LocalFrames>>,
    screen: watch::Sender<Option<LocalFrames>>,
    sources: watch::Sender<HashMap<String, LocalFrames>>,
    remote: watch::Sender<HashMap<String, RemoteFrames>>,
}

impl Default for FrameHub {
    fn default() -> Self {
        Self {
            local: watch::channel(None).0,
            screen: watch::channel(None).0,
            sources: watch::channel(HashMap::new()).0,
            remote: watch::channel(HashMap::new()).0,
        }
    }
}

impl FrameHub {
    /// Shows `frames` as the self view (`None`: nothing).
    pub fn set_local(&self, frames: Option<LocalFrames>) {
        self.local.send_replace(frames);
    }

    /// Shows `frames` as our screen share's preview (frame track `screen`; `None`: nothing).
    pub fn set_screen(&self, frames: Option<LocalFrames>) {
        self.screen.send_replace(frames);
    }

    /// The picker's thumbnails, by source id (frame tracks `source:<id>`); replaces the last set.
    pub fn set_sources(&self, sources: HashMap<String, LocalFrames>) {
        self.sources.send_replace(sources);
    }

    /// No thumbnails any more.
    pub fn clear_sources(&self) {
        self.sources.send_if_modified(|m| {
            let had = !m.is_empty();
            m.clear();
            had
        });
    }

    /// The thumbnails of source `id`, if the picker has it.
    pub fn source_frames(&self, id: &str) -> Option<LocalFrames> {
        self.sources.borrow().get(id).cloned()
    }

    /// The source ids that have thumbnails now.
    pub fn source_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.sources.borrow().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Makes a remote video track's frames available.
    pub fn add_remote(&self, track_id: String, frames: RemoteFrames) {
        self.remote.send_modify(|m| {
            m.insert(track_id, frames);
        });
    }

    /// Removes a remote video track.
    pub fn remove_remote(&self, track_id: &str) {
        self.remote
            .send_if_modified(|m| m.remove(track_id).is_some());
    }

    /// Removes every remote track.
    pub fn clear_remote(&self) {
        self.remote.send_if_modified(|m| {
            let had = !m.is_empty();
            m.clear();
            had
        });
    }
}

/// The running frame socket.
#[derive(Debug, Clone)]
pub struct FrameServer {
    /// Where the worker connects.
    pub url: String,
}

/// Binds the frame socket on 127.0.0.1 and serves it on the current tokio runtime.
/// `bench_out`: where `stats` messages from the worker are appended (one JSON line each).
pub async fn start(hub: Arc<FrameHub>, bench_out: Option<PathBuf>) -> std::io::Result<FrameServer> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let port = listener.local_addr()?.port();
    let token = new_token();
    let url = format!("ws://127.0.0.1:{port}/frames?token={token}");
    tracing::info!(port, "frame socket listening");
    tokio::spawn(accept_loop(listener, Arc::new(token), hub, bench_out));
    Ok(FrameServer { url })
}

fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without an early exit, so timing does not tell how much of a guess was right.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether a WebSocket upgrade request may use the frame socket.
fn check_request(req: &Request, token: &str) -> Result<(), (StatusCode, &'static str)> {
    if req.uri().path() != "/frames" {
        return Err((StatusCode::NOT_FOUND, "no such path"));
    }
    let given = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .unwrap_or_default();
    if !same_secret(given, token) {
        return Err((StatusCode::FORBIDDEN, "bad token"));
    }
    if let Some(origin) = req.headers().get("origin") {
        let origin = origin.to_str().unwrap_or_default();
        if !ALLOWED_ORIGINS.contains(&origin) {
            return Err((StatusCode::FORBIDDEN, "origin not allowed"));
        }
    }
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    token: Arc<String>,
    hub: Arc<FrameHub>,
    bench_out: Option<PathBuf>,
) {
    // A new connection (the worker restarted, the page reloaded) replaces the old one.
    let mut current: Option<JoinHandle<()>> = None;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("frame socket accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let token = Arc::clone(&token);
        let Some(ws) = handshake(stream, &token).await else {
            continue;
        };
        tracing::info!(%peer, "frame socket connected");
        if let Some(old) = current.take() {
            old.abort();
        }
        current = Some(tokio::spawn(serve(ws, Arc::clone(&hub), bench_out.clone())));
    }
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn handshake(stream: TcpStream, token: &str) -> Option<Ws> {
    // tungstenite's callback type fixes the error type (an HTTP response).
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        match check_request(req, token) {
            Ok(()) => Ok(resp),
            Err((status, why)) => {
                tracing::warn!(path = req.uri().path(), why, "frame socket refused");
                let mut refusal = ErrorResponse::new(Some(why.to_owned()));
                *refusal.status_mut() = status;
                Err(refusal)
            }
        }
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config));
    match tokio::time::timeout(Duration::from_secs(5), handshake).await {
        Ok(Ok(ws)) => Some(ws),
        Ok(Err(e)) => {
            tracing::debug!("frame socket handshake: {e}");
            None
        }
        Err(_) => None,
    }
}

/// A message from the worker.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FromUi {
    Tiles { tiles: Vec<TileRequest> },
    Credit { slot: u16 },
    Stats(serde_json::Map<String, serde_json::Value>),
}

/// One tile the UI shows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct TileRequest {
    slot: u16,
    track: String,
    w: u32,
    h: u32,
}

impl TileRequest {
    fn is_valid(&self) -> bool {
        (2..=MAX_TILE.0).contains(&self.w)
            && (2..=MAX_TILE.1).contains(&self.h)
            && self.w.is_multiple_of(2)
            && self.h.is_multiple_of(2)
            && !self.track.is_empty()
    }
}

struct Slot {
    request: TileRequest,
    credit: Arc<watch::Sender<bool>>,
    task: JoinHandle<()>,
}

async fn serve(ws: Ws, hub: Arc<FrameHub>, bench_out: Option<PathBuf>) {
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(8);
    let writer = tokio::spawn(async move {
        while let Some(message) = out_rx.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
    });
    let mut slots: HashMap<u16, Slot> = HashMap::new();
    while let Some(message) = stream.next().await {
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        let parsed: FromUi = match serde_json::from_str(text.as_str()) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::warn!("frame socket: bad message from the UI: {e}");
                continue;
            }
        };
        match parsed {
            FromUi::Tiles { tiles } => {
                set_tiles(&mut slots, tiles, &hub, &out_tx);
            }
            FromUi::Credit { slot } => {
                if let Some(slot) = slots.get(&slot) {
                    slot.credit.send_replace(true);
                }
            }
            FromUi::Stats(stats) => {
                if let Some(path) = &bench_out {
                    append_stats(path, stats).await;
                }
            }
        }
    }
    for slot in slots.into_values() {
        slot.task.abort();
    }
    writer.abort();
    tracing::info!("frame socket closed");
}

/// Starts, restarts and stops slot tasks so they match `tiles`.
fn set_tiles(
    slots: &mut HashMap<u16, Slot>,
    tiles: Vec<TileRequest>,
    hub: &Arc<FrameHub>,
    out: &mpsc::Sender<Message>,
) {
    let wanted: HashMap<u16, TileRequest> = tiles
        .into_iter()
        .filter(|t| {
            let ok = t.is_valid();
            if !ok {
                tracing::warn!(?t, "frame socket: ignoring an invalid tile");
            }
            ok
        })
        .take(MAX_TILES)
        .map(|t| (t.slot, t))
        .collect();
    slots.retain(|id, slot| {
        let keep = wanted.get(id) == Some(&slot.request);
        if !keep {
            slot.task.abort();
        }
        keep
    });
    for (id, request) in wanted {
        if slots.contains_key(&id) {
            continue;
        }
        let credit = Arc::new(watch::channel(true).0);
        let task = tokio::spawn(run_slot(
            request.clone(),
            Arc::clone(hub),
            credit.subscribe(),
            Arc::clone(&credit),
            out.clone(),
        ));
        slots.insert(
            id,
            Slot {
                request,
                credit,
                task,
            },
        );
    }
}

async fn append_stats(path: &PathBuf, mut stats: serde_json::Map<String, serde_json::Value>) {
    stats.insert("at_us".into(), unix_micros().into());
    let mut line = serde_json::Value::Object(stats).to_string();
    line.push('\n');
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await;
    match file {
        Ok(mut file) => {
            if let Err(e) = file.write_all(line.as_bytes()).await {
                tracing::warn!("bench stats: {e}");
            }
        }
        Err(e) => tracing::warn!("bench stats {}: {e}", path.display()),
    }
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Where a slot's pictures come from: the self view or our screen's preview, one picker
/// thumbnail, or one remote track.
enum Feed {
    Local(watch::Receiver<Option<LocalFrames>>),
    Thumbnail {
        id: String,
        sources: watch::Receiver<HashMap<String, LocalFrames>>,
    },
    Remote {
        track: String,
        tracks: watch::Receiver<HashMap<String, RemoteFrames>>,
    },
}

/// The current frame receiver of a feed, as a picture receiver.
enum Current {
    Local(LocalFrames),
    Remote(RemoteFrames),
}

impl Current {
    async fn changed(&mut self) -> bool {
        match self {
            Current::Local(rx) => rx.changed().await.is_ok(),
            Current::Remote(rx) => rx.changed().await.is_ok(),
        }
    }

    fn newest(&mut self) -> Option<Picture> {
        match self {
            Current::Local(rx) => rx.borrow_and_update().clone().map(|f| Picture {
                frame: f as Arc<dyn AsFrame>,
            }),
            Current::Remote(rx) => rx.borrow_and_update().clone().map(|f| Picture {
                frame: f as Arc<dyn AsFrame>,
            }),
        }
    }
}

impl Feed {
    /// The frame receiver to follow now, if the source exists.
    fn current(&mut self) -> Option<Current> {
        let mut current = match self {
            Feed::Local(rx) => rx.borrow_and_update().clone().map(Current::Local),
            Feed::Thumbnail { id, sources } => sources
                .borrow_and_update()
                .get(id.as_str())
                .cloned()
                .map(Current::Local),
            Feed::Remote { track, tracks } => tracks
                .borrow_and_update()
                .get(track.as_str())
                .cloned()
                .map(Current::Remote),
        }?;
        // The frame already there counts as new for this tile.
        match &mut current {
            Current::Local(rx) => rx.mark_changed(),
            Current::Remote(rx) => rx.mark_changed(),
        }
        Some(current)
    }

    /// Waits until the source changes (appears, is replaced or goes away).
    async fn source_changed(&mut self) -> bool {
        match self {
            Feed::Local(rx) => rx.changed().await.is_ok(),
            Feed::Thumbnail { sources, .. } => sources.changed().await.is_ok(),
            Feed::Remote { tracks, .. } => tracks.changed().await.is_ok(),
        }
    }

    /// The next new picture.
    async fn next(&mut self, current: &mut Option<Current>) -> Option<Picture> {
        loop {
            match current {
                Some(frames) => {
                    tokio::select! {
                        alive = frames.changed() => {
                            if !alive {
                                *current = None;
                                continue;
                            }
                            if let Some(picture) = frames.newest() {
                                return Some(picture);
                            }
                        }
                        alive = self.source_changed() => {
                            if !alive {
                                return None;
                            }
                            *current = self.current();
                        }
                    }
                }
                None => {
                    if !self.source_changed().await {
                        return None;
                    }
                    *current = self.current();
                }
            }
        }
    }
}

/// What frame track `track` shows: `self`, `screen`, `source:<id>` or a remote track id.
fn feed_of(track: &str, hub: &FrameHub) -> Feed {
    if track == SELF_TRACK {
        Feed::Local(hub.local.subscribe())
    } else if track == SCREEN_TRACK {
        Feed::Local(hub.screen.subscribe())
    } else if let Some(id) = track.strip_prefix(SOURCE_TRACK_PREFIX) {
        Feed::Thumbnail {
            id: id.to_owned(),
            sources: hub.sources.subscribe(),
        }
    } else {
        Feed::Remote {
            track: track.to_owned(),
            tracks: hub.remote.subscribe(),
        }
    }
}

/// Sends one tile's frames: waits for credit, then for a new picture, scales the newest one
/// to the tile and sends it.
async fn run_slot(
    request: TileRequest,
    hub: Arc<FrameHub>,
    mut credit: watch::Receiver<bool>,
    credit_tx: Arc<watch::Sender<bool>>,
    out: mpsc::Sender<Message>,
) {
    let mut feed = feed_of(&request.track, &hub);
    let mut current = feed.current();
    let mut scaler = Some(TileScaler::new());
    let mut seq: u32 = 0;
    loop {
        // A lost credit (the worker dropped a frame while restarting) does not stall the tile.
        let _ = tokio::time::timeout(CREDIT_TIMEOUT, credit.wait_for(|c| *c)).await;
        let Some(picture) = feed.next(&mut current).await else {
            return;
        };
        seq = seq.wrapping_add(1);
        let mut s = scaler.take().unwrap_or_default();
        let (w, h, slot) = (request.w, request.h, request.slot);
        let encoded = tokio::task::spawn_blocking(move || {
            let message = encode_frame(&mut s, &picture, slot, w, h, seq);
            (s, message)
        })
        .await;
        let Ok((s, message)) = encoded else {
            return;
        };
        scaler = Some(s);
        let message = match message {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(slot, "cannot scale a frame: {e}");
                continue;
            }
        };
        credit_tx.send_replace(false);
        if out.send(Message::Binary(message)).await.is_err() {
            return;
        }
    }
}

/// The header fields of one frame message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Tile slot.
    pub slot: u16,
    /// Picture width.
    pub width: u16,
    /// Picture height.
    pub height: u16,
    /// Per-slot sequence number.
    pub seq: u32,
    /// Burned-in (frame number, capture µs), if any.
    pub stamp: Option<(u64, u64)>,
    /// When the backend sent it, µs since the UNIX epoch.
    pub sent_us: u64,
}

impl Header {
    /// The 40 header bytes (little-endian, `docs/desktop.md`).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = VERSION;
        b[1] = FORMAT_RGBA8;
        b[2..4].copy_from_slice(&self.slot.to_le_bytes());
        b[4..6].copy_from_slice(&self.width.to_le_bytes());
        b[6..8].copy_from_slice(&self.height.to_le_bytes());
        b[8..12].copy_from_slice(&self.seq.to_le_bytes());
        let (flags, (number, capture)) = match self.stamp {
            Some(stamp) => (0, stamp),
            None => (FLAG_NO_STAMP, (0, 0)),
        };
        b[12..16].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&capture.to_le_bytes());
        b[24..32].copy_from_slice(&number.to_le_bytes());
        b[32..40].copy_from_slice(&self.sent_us.to_le_bytes());
        b
    }
}

fn encode_frame(
    scaler: &mut TileScaler,
    picture: &Picture,
    slot: u16,
    w: u32,
    h: u32,
    seq: u32,
) -> Result<Bytes, videoroom_client::media::tile::TileError> {
    let tile = scaler.scale(picture.frame.frame(), w, h)?;
    let header = Header {
        slot,
        // Tiles are at most 1920×1080 (checked on arrival).
        width: u16::try_from(tile.width()).unwrap_or(u16::MAX),
        height: u16::try_from(tile.height()).unwrap_or(u16::MAX),
        seq,
        stamp: picture.frame.stamp(),
        sent_us: unix_micros(),
    };
    let mut message = Vec::with_capacity(HEADER_LEN + tile.data().len());
    message.extend_from_slice(&header.encode());
    message.extend_from_slice(tile.data());
    Ok(Bytes::from(message))
}

/// Shared by the session (which changes what is shown) and the socket.
pub type SharedHub = Arc<FrameHub>;

/// Keeps the lobby preview's source thread alive; dropping it stops the thread.
#[derive(Debug)]
pub struct PreviewGuard {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl PreviewGuard {
    /// Runs `source` at `fps` in its own thread, publishing each frame to the returned watch.
    pub fn start(
        mut source: Box<dyn videoroom_client::media::VideoSource>,
        fps: u32,
        paced: bool,
    ) -> (Self, LocalFrames) {
        let (tx, rx) = watch::channel(None);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop_thread = Arc::clone(&stop);
        let interval = Duration::from_secs(1) / fps.max(1);
        let thread = std::thread::Builder::new()
            .name("preview".into())
            .spawn(move || {
                let mut next = std::time::Instant::now();
                while !stop_thread.load(std::sync::atomic::Ordering::Relaxed) {
                    match source.next_frame() {
                        Ok(frame) => {
                            tx.send_replace(Some(Arc::new(frame)));
                        }
                        Err(e) => {
                            tracing::warn!("preview source: {e}");
                            break;
                        }
                    }
                    if paced {
                        next += interval;
                        let now = std::time::Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        } else {
                            next = now;
                        }
                    }
                }
            })
            .ok();
        (
            Self {
                stop,
                thread: Mutex::new(thread),
            },
            rx,
        )
    }
}

impl Drop for PreviewGuard {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Wait for the thread so the camera is closed before anything else opens it.
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same bytes as `ui/src/render/protocol.test.ts`.
    #[test]
    fn header_golden_bytes() {
        let header = Header {
            slot: 3,
            width: 426,
            height: 240,
            seq: 17,
            stamp: Some((42, 1_700_000_000_123_456)),
            sent_us: 1_700_000_000_130_000,
        };
        let expected: [u8; HEADER_LEN] = [
            1, 0, 3, 0, 0xaa, 0x01, 0xf0, 0x00, // version, format, slot, width, height
            17, 0, 0, 0, 0, 0, 0, 0, // seq, flags
            0x40, 0x22, 0x20, 0x18, 0x24, 0x0a, 0x06, 0x00, // capture µs
            42, 0, 0, 0, 0, 0, 0, 0, // frame number
            0xd0, 0x3b, 0x20, 0x18, 0x24, 0x0a, 0x06, 0x00, // sent µs
        ];
        assert_eq!(header.encode(), expected);
        let none = Header {
            stamp: None,
            ..header
        };
        assert_eq!(none.encode()[12], 1, "no-stamp flag");
    }

    #[test]
    fn tiles_are_checked() {
        let ok = TileRequest {
            slot: 0,
            track: "self".into(),
            w: 426,
            h: 240,
        };
        assert!(ok.is_valid());
        for (w, h) in [(0, 240), (427, 240), (4000, 240), (426, 2000)] {
            assert!(!TileRequest { w, h, ..ok.clone() }.is_valid(), "{w}x{h}");
        }
    }

    /// One tile's slot task, with its credit always given back at once by [`next_tile`].
    struct TestSlot {
        task: JoinHandle<()>,
        out: mpsc::Receiver<Message>,
        credit: Arc<watch::Sender<bool>>,
    }

    fn slot(hub: &Arc<FrameHub>, slot: u16, track: &str) -> TestSlot {
        let (out_tx, out) = mpsc::channel(4);
        let credit = Arc::new(watch::channel(true).0);
        let request = TileRequest {
            slot,
            track: track.into(),
            w: 160,
            h: 90,
        };
        let task = tokio::spawn(run_slot(
            request,
            Arc::clone(hub),
            credit.subscribe(),
            Arc::clone(&credit),
            out_tx,
        ));
        TestSlot { task, out, credit }
    }

    /// The next frame's (slot, width, height), within 5 s; the credit goes back.
    async fn next_tile(s: &mut TestSlot) -> (u16, u16, u16) {
        let got = match tokio::time::timeout(Duration::from_secs(5), s.out.recv()).await {
            Ok(Some(Message::Binary(b))) => (
                u16::from_le_bytes([b[2], b[3]]),
                u16::from_le_bytes([b[4], b[5]]),
                u16::from_le_bytes([b[6], b[7]]),
            ),
            other => panic!("expected a frame, got {other:?}"),
        };
        s.credit.send_replace(true);
        got
    }

    fn picture(w: u32, h: u32) -> Option<Arc<I420Frame>> {
        Some(Arc::new(I420Frame::black(w, h).expect("frame")))
    }

    #[tokio::test]
    async fn tiles_show_our_screen_and_the_pickers_thumbnails() {
        let hub = Arc::new(FrameHub::default());
        // A thumbnail tile asked for before the picker has its source: shown once it comes.
        let mut thumb = slot(&hub, 4, "source:monitor:0");
        let mut screen = slot(&hub, 5, "screen");
        let (tx, rx) = watch::channel(None);
        hub.set_sources(HashMap::from([("monitor:0".to_owned(), rx)]));
        tx.send_replace(picture(320, 180));
        assert_eq!(next_tile(&mut thumb).await, (4, 160, 90));
        tx.send_replace(picture(320, 180));
        assert_eq!(next_tile(&mut thumb).await.0, 4, "every new thumbnail");

        let (screen_tx, screen_rx) = watch::channel(picture(1280, 720));
        hub.set_screen(Some(screen_rx));
        assert_eq!(next_tile(&mut screen).await, (5, 160, 90));
        screen_tx.send_replace(picture(1280, 720));
        assert_eq!(next_tile(&mut screen).await.0, 5);

        // The picker closes and the share ends: the tiles wait for a new source. (This test's
        // runtime has one thread: the sleep lets the slot tasks see the change first.)
        hub.clear_sources();
        hub.set_screen(None);
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send_replace(picture(320, 180));
        screen_tx.send_replace(picture(1280, 720));
        let quiet = tokio::time::timeout(Duration::from_millis(300), async {
            tokio::select! {
                m = thumb.out.recv() => m,
                m = screen.out.recv() => m,
            }
        })
        .await;
        assert!(
            quiet.is_err(),
            "no frames after the sources went: {quiet:?}"
        );
        assert!(!thumb.task.is_finished() && !screen.task.is_finished());
        thumb.task.abort();
        screen.task.abort();
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
