//! The signaling connection: one WebSocket to the server's `/ws`, carrying JSON protocol
//! messages (see `docs/protocol.md`). This layer knows frames and messages, not rooms.

use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use videoroom_protocol::{ClientMessage, ServerMessage};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why the signaling connection failed.
#[derive(Debug, thiserror::Error)]
pub enum SignalingError {
    /// The server could not be reached (DNS, TCP, TLS or the WebSocket upgrade failed).
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The server's TLS certificate is neither signed by an authority this system trusts nor
    /// one the person trusted by its fingerprint.
    #[error("{url}: the server's certificate is not trusted (SHA-256 {fingerprint}): {reason}")]
    UntrustedCertificate {
        /// The URL tried.
        url: String,
        /// The refused certificate's SHA-256 fingerprint (`AA:BB:…`).
        fingerprint: String,
        /// What the check said (unknown issuer, expired, wrong name…).
        reason: String,
    },
    /// No connection within the timeout.
    #[error("no connection to {url} within {timeout:?}")]
    ConnectTimeout {
        /// The URL tried.
        url: String,
        /// The bound.
        timeout: Duration,
    },
    /// The socket failed after it was open.
    #[error("signaling connection failed: {0}")]
    Transport(String),
    /// The server sent something that is not a protocol message.
    #[error("server sent an invalid message: {0}")]
    InvalidMessage(String),
}

/// An open signaling connection.
pub struct Signaling {
    socket: Socket,
}

impl std::fmt::Debug for Signaling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signaling").finish_non_exhaustive()
    }
}

impl Signaling {
    /// Opens the WebSocket at `url` (`ws://host:8080/ws`, or `wss://…`) within `timeout`.
    /// Over TLS the certificate must be signed by an authority the system trusts, or have one
    /// of the `trusted` SHA-256 fingerprints.
    pub async fn connect(
        url: &str,
        timeout: Duration,
        trusted: &[String],
    ) -> Result<Self, SignalingError> {
        let unreachable = |reason: String| SignalingError::Unreachable {
            url: url.to_owned(),
            reason,
        };
        let tls = crate::tls::attempt(trusted).map_err(|e| unreachable(e.to_string()))?;
        let connecting = tokio_tungstenite::connect_async_tls_with_config(
            url,
            None,
            true,
            Some(tokio_tungstenite::Connector::Rustls(tls.config)),
        );
        match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok((socket, _response))) => Ok(Self { socket }),
            Ok(Err(e)) => {
                let refused = tls.refused.lock().ok().and_then(|mut r| r.take());
                Err(match refused {
                    Some(fingerprint) => SignalingError::UntrustedCertificate {
                        url: url.to_owned(),
                        fingerprint,
                        reason: e.to_string(),
                    },
                    None => unreachable(e.to_string()),
                })
            }
            Err(_) => Err(SignalingError::ConnectTimeout {
                url: url.to_owned(),
                timeout,
            }),
        }
    }

    /// Sends one message.
    pub async fn send(&mut self, message: &ClientMessage) -> Result<(), SignalingError> {
        self.socket
            .send(Message::text(message.to_json()))
            .await
            .map_err(|e| SignalingError::Transport(e.to_string()))
    }

    /// The next server message; `Ok(None)` when the server closed the connection.
    /// WebSocket pings are answered by the socket itself and skipped here.
    pub async fn recv(&mut self) -> Result<Option<ServerMessage>, SignalingError> {
        loop {
            let frame = match self.socket.next().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(SignalingError::Transport(e.to_string())),
                Some(Ok(frame)) => frame,
            };
            match frame {
                Message::Text(text) => {
                    return ServerMessage::parse(text.as_str())
                        .map(Some)
                        .map_err(|e| SignalingError::InvalidMessage(e.to_string()));
                }
                Message::Close(_) => return Ok(None),
                Message::Binary(_) => {
                    return Err(SignalingError::InvalidMessage(
                        "binary frame (the protocol is JSON text)".into(),
                    ));
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            }
        }
    }

    /// Closes the socket (best effort).
    pub async fn close(&mut self) {
        let _ = self.socket.close(None).await;
    }
}
