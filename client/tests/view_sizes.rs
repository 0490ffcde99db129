//! Viewer hints: what the room engine tells the server about the sizes remote video is shown at
//! (`set_view_sizes`). A small fake signaling server answers `join` with the tracks the test
//! chooses and records what the client sends, so every message can be checked exactly: the
//! entries asked for, one message per batch, repeats not sent, the sizes sent again after a
//! rejoin for the tracks that are still there (and forgotten for the ones that are not), and
//! `JoinOptions::default_view_size` for every remote video track as it is added. No media
//! flows: the client publishes nothing, so it never offers.

use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use videoroom_client::{AudioOutput, JoinOptions, Room, RoomEvent, RoomHandle};
use videoroom_protocol::{
    ClientMessage, MediaKind, PROTOCOL_VERSION, PeerId, RoomName, ServerMessage, TrackId,
    TrackInfo, TrackSource, ViewSize,
};
use videoroom_testkit::{WAIT, wait_until};

/// One accepted and joined connection: what the client sends on it, and a way to send it
/// server messages (`None` closes the connection).
struct Conn {
    from_client: mpsc::UnboundedReceiver<ClientMessage>,
    to_client: mpsc::UnboundedSender<Option<ServerMessage>>,
}

impl Conn {
    /// The next `set_view_sizes` the client sent (other messages skipped); panics after
    /// [`WAIT`].
    async fn next_views(&mut self) -> Vec<ViewSize> {
        loop {
            let message = tokio::time::timeout(WAIT, self.from_client.recv())
                .await
                .expect("a set_view_sizes within the bound")
                .expect("connection open");
            if let ClientMessage::SetViewSizes { views } = message {
                return views;
            }
        }
    }

    fn send(&self, message: ServerMessage) {
        self.to_client.send(Some(message)).expect("connection open");
    }

    fn close(&self) {
        let _ = self.to_client.send(None);
    }
}

/// A signaling server that joins every client into one room whose tracks the test sets.
struct FakeServer {
    addr: SocketAddr,
    /// The tracks the next `joined` lists.
    tracks: Arc<Mutex<Vec<TrackInfo>>>,
    joins: mpsc::UnboundedReceiver<Conn>,
}

impl FakeServer {
    async fn start(tracks: Vec<TrackInfo>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let tracks = Arc::new(Mutex::new(tracks));
        let (joins_tx, joins) = mpsc::unbounded_channel();
        let room_tracks = Arc::clone(&tracks);
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((stream, _)) = listener.accept().await {
                n += 1;
                let tracks = room_tracks.lock().expect("lock").clone();
                tokio::spawn(serve(stream, n, tracks, joins_tx.clone()));
            }
        });
        FakeServer {
            addr,
            tracks,
            joins,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    fn set_tracks(&self, tracks: Vec<TrackInfo>) {
        *self.tracks.lock().expect("lock") = tracks;
    }

    /// The next connection that joined; panics after [`WAIT`].
    async fn next_join(&mut self) -> Conn {
        tokio::time::timeout(WAIT, self.joins.recv())
            .await
            .expect("a join within the bound")
            .expect("server running")
    }
}

/// One connection: answers `join` with `joined` (peer id `me-N`, `tracks`), then relays.
async fn serve(
    stream: tokio::net::TcpStream,
    n: u32,
    tracks: Vec<TrackInfo>,
    joins: mpsc::UnboundedSender<Conn>,
) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let text = |m: &ServerMessage| Message::text(m.to_json());
    // The first text frame is the `join`.
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                assert!(
                    matches!(
                        ClientMessage::parse(t.as_str()),
                        Ok(ClientMessage::Join { .. })
                    ),
                    "first message is a join: {t}"
                );
                break;
            }
            Some(Ok(_)) => continue,
            _ => return,
        }
    }
    let joined = ServerMessage::Joined {
        protocol_version: PROTOCOL_VERSION,
        peer_id: PeerId::new(format!("me-{n}")),
        room: RoomName::new("hints"),
        peers: Vec::new(),
        tracks,
        ice_servers: Vec::new(),
        moderator: false,
        locked: false,
        chat_history: Vec::new(),
        resume_token: String::new(),
    };
    if ws.send(text(&joined)).await.is_err() {
        return;
    }
    let (from_client_tx, from_client) = mpsc::unbounded_channel();
    let (to_client, mut outgoing) = mpsc::unbounded_channel();
    let _ = joins.send(Conn {
        from_client,
        to_client,
    });
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(t))) => {
                    let message = ClientMessage::parse(t.as_str())
                        .unwrap_or_else(|e| panic!("the client sent an invalid message {t}: {e}"));
                    if let ClientMessage::Ping { id } = message {
                        let _ = ws.send(text(&ServerMessage::Pong { id })).await;
                    }
                    let _ = from_client_tx.send(message);
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            message = outgoing.recv() => match message {
                Some(Some(message)) => {
                    let _ = ws.send(text(&message)).await;
                }
                // Closed by the test (or the test is done).
                Some(None) | None => {
                    let _ = ws.close(None).await;
                    return;
                }
            },
        }
    }
}

fn video(peer: &str, track: &str) -> TrackInfo {
    TrackInfo {
        track_id: TrackId::new(track),
        peer_id: PeerId::new(peer),
        kind: MediaKind::Video,
        source: TrackSource::Camera,
        muted: false,
    }
}

fn audio(peer: &str, track: &str) -> TrackInfo {
    TrackInfo {
        track_id: TrackId::new(track),
        peer_id: PeerId::new(peer),
        kind: MediaKind::Audio,
        source: TrackSource::Microphone,
        muted: false,
    }
}

fn view(peer: &str, track: &str, width: u32, height: u32) -> ViewSize {
    ViewSize {
        peer_id: PeerId::new(peer),
        track_id: TrackId::new(track),
        width,
        height,
    }
}

fn options() -> JoinOptions {
    JoinOptions::default()
        .with_audio_output(AudioOutput::Null)
        .with_udp_addrs(vec![SocketAddr::from(([127, 0, 0, 1], 0))])
        .with_reconnect(Some(Duration::from_secs(20)))
}

/// Collects events in the background so the test can look at them at any time.
fn record(mut events: mpsc::Receiver<RoomEvent>) -> Arc<Mutex<Vec<RoomEvent>>> {
    let seen: Arc<Mutex<Vec<RoomEvent>>> = Arc::default();
    let sink = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            sink.lock().expect("lock").push(e);
        }
    });
    seen
}

/// How many `TrackAdded` (`added`) or `TrackRemoved` events of `track` were seen.
fn count(events: &Mutex<Vec<RoomEvent>>, track: &str, added: bool) -> usize {
    events
        .lock()
        .expect("lock")
        .iter()
        .filter(|e| match e {
            RoomEvent::TrackAdded(info) => added && info.track_id.as_str() == track,
            RoomEvent::TrackRemoved { track_id } => !added && track_id.as_str() == track,
            _ => false,
        })
        .count()
}

/// Waits until the room has reported `n` `TrackAdded` (or `TrackRemoved`) events of `track`.
async fn wait_count(events: &Mutex<Vec<RoomEvent>>, track: &str, added: bool, n: usize) {
    let what = format!("{n} track_added={added} events of {track}");
    wait_until(WAIT, &what, || count(events, track, added) >= n).await;
}

async fn join(
    server: &FakeServer,
    options: JoinOptions,
) -> (RoomHandle, Arc<Mutex<Vec<RoomEvent>>>) {
    let (room, events) = Room::join(&server.url(), "hints", "viewer", options)
        .await
        .expect("joins the fake server");
    (room, record(events))
}

#[tokio::test]
async fn sizes_are_sent_coalesced_and_again_after_a_rejoin() {
    let mut server = FakeServer::start(vec![
        video("pub", "cam-a"),
        video("pub", "cam-b"),
        audio("pub", "mic"),
    ])
    .await;
    let (room, events) = join(&server, options()).await;
    let mut conn = server.next_join().await;

    // No default size: nothing is sent until asked (the first message is the one asked for).
    room.set_view_sizes(vec![
        view("pub", "cam-b", 0, 0),
        view("pub", "cam-a", 320, 180),
    ])
    .await
    .expect("room open");
    assert_eq!(
        conn.next_views().await,
        [view("pub", "cam-a", 320, 180), view("pub", "cam-b", 0, 0)],
        "one message for one batch, entries ordered by peer and track"
    );

    // A repeat is not sent; a change is.
    room.set_view_size(PeerId::new("pub"), TrackId::new("cam-a"), 320, 180)
        .await
        .expect("room open");
    room.set_view_size(PeerId::new("pub"), TrackId::new("cam-b"), 640, 360)
        .await
        .expect("room open");
    assert_eq!(conn.next_views().await, [view("pub", "cam-b", 640, 360)]);

    // A track the room does not know is told all the same, and nothing breaks.
    room.set_view_size(PeerId::new("nobody"), TrackId::new("ghost"), 160, 90)
        .await
        .expect("room open");
    assert_eq!(conn.next_views().await, [view("nobody", "ghost", 160, 90)]);

    // The connection is lost; cam-b is gone by the time the room rejoins.
    server.set_tracks(vec![video("pub", "cam-a"), audio("pub", "mic")]);
    conn.close();
    let mut conn = server.next_join().await;
    assert_eq!(
        conn.next_views().await,
        [view("pub", "cam-a", 320, 180)],
        "after the rejoin: the size of the track still there, not of the gone or unknown ones"
    );
    wait_count(&events, "cam-b", false, 1).await;

    // cam-b comes back: it was forgotten, so it has no size until asked again (the first
    // message after its return is the one asked for now).
    conn.send(ServerMessage::TracksAdded {
        tracks: vec![video("pub", "cam-b")],
    });
    wait_count(&events, "cam-b", true, 2).await;
    room.set_view_size(PeerId::new("pub"), TrackId::new("cam-b"), 640, 360)
        .await
        .expect("room open");
    assert_eq!(conn.next_views().await, [view("pub", "cam-b", 640, 360)]);

    // A removed track's size is forgotten: setting the same size again is a change.
    conn.send(ServerMessage::TracksRemoved {
        track_ids: vec![TrackId::new("cam-a")],
    });
    conn.send(ServerMessage::TracksAdded {
        tracks: vec![video("pub", "cam-a")],
    });
    // Announced at the join, at the rejoin, and now.
    wait_count(&events, "cam-a", true, 3).await;
    room.set_view_size(PeerId::new("pub"), TrackId::new("cam-a"), 320, 180)
        .await
        .expect("room open");
    assert_eq!(conn.next_views().await, [view("pub", "cam-a", 320, 180)]);

    room.leave().await;
}

#[tokio::test]
async fn default_view_size_goes_to_every_added_video_track() {
    let mut server = FakeServer::start(vec![video("pub", "cam-a"), audio("pub", "mic")]).await;
    let (room, _events) = join(&server, options().with_default_view_size(Some((320, 180)))).await;
    let mut conn = server.next_join().await;
    assert_eq!(
        conn.next_views().await,
        [view("pub", "cam-a", 320, 180)],
        "the video track present at the join, not the audio one"
    );

    conn.send(ServerMessage::TracksAdded {
        tracks: vec![video("late", "cam-c"), audio("late", "mic-c")],
    });
    assert_eq!(conn.next_views().await, [view("late", "cam-c", 320, 180)]);

    // The application overrides the default for one track.
    room.set_view_size(PeerId::new("late"), TrackId::new("cam-c"), 0, 0)
        .await
        .expect("room open");
    assert_eq!(conn.next_views().await, [view("late", "cam-c", 0, 0)]);

    // After a rejoin: the default for cam-a, the application's size for cam-c.
    server.set_tracks(vec![video("pub", "cam-a"), video("late", "cam-c")]);
    conn.close();
    let mut conn = server.next_join().await;
    assert_eq!(
        conn.next_views().await,
        [view("late", "cam-c", 0, 0), view("pub", "cam-a", 320, 180)]
    );
    room.leave().await;
}
