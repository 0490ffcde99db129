//! A bare WebSocket client that speaks the protocol by hand.

use crate::WAIT;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use videoroom_protocol::{ClientMessage, PROTOCOL_VERSION, RoomName, ServerMessage};

/// A WebSocket connection to the server.
pub struct RawClient {
    /// The socket, for tests that send odd frames.
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl RawClient {
    /// Connects to `url`.
    pub async fn connect(url: &str) -> Self {
        Self::connect_with(url, None).await
    }

    /// Connects to `url` with a TLS connector for `wss://` (e.g. one trusting a test's own
    /// certificate authority); `None` is [`RawClient::connect`].
    pub async fn connect_with(url: &str, tls: Option<Connector>) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(url, None, false, tls)
            .await
            .expect("ws connects");
        Self { ws }
    }

    /// Sends a text frame as is.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::binary(bytes)).await.expect("send");
    }

    /// Sends a protocol message.
    pub async fn send(&mut self, message: &ClientMessage) {
        self.send_text(&message.to_json()).await;
    }

    /// The next server message (skipping pings); panics after [`WAIT`].
    pub async fn recv(&mut self) -> ServerMessage {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a server message within the bound")
                .expect("socket open")
                .expect("frame");
            match frame {
                Message::Text(text) => {
                    return ServerMessage::parse(text.as_str())
                        .expect("server sends valid messages");
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Receives until a message matching `pred` arrives; returns it.
    pub async fn recv_until(&mut self, pred: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
        loop {
            let m = self.recv().await;
            if pred(&m) {
                return m;
            }
        }
    }

    /// Sends `join` and returns the answer.
    pub async fn join(&mut self, room: &str, name: &str) -> ServerMessage {
        self.send(&join_message(room, name)).await;
        self.recv().await
    }
}

/// A `join` for `room` as `name`.
pub fn join_message(room: &str, name: &str) -> ClientMessage {
    ClientMessage::Join {
        protocol_version: PROTOCOL_VERSION,
        room: RoomName::new(room),
        display_name: name.to_owned(),
        metadata: None,
        resume_token: None,
        token: None,
    }
}
