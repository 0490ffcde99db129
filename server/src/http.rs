//! The HTTP server: a TCP accept loop that serves each connection with hyper's HTTP/1.1
//! connection (WebSocket upgrades included), so that no connection can hold a slot forever.
//!
//! - Every TCP connection takes one of the `--max-connections` slots when it is accepted; with
//!   none left it gets a 503 and is closed (`videoroom_connections_refused_total`). A connection
//!   upgraded to a WebSocket hands its slot to the session ([`ConnectionSlot`]), which keeps it
//!   until it ends: one slot per connection, HTTP or WebSocket.
//! - A request's headers must arrive within `--http-header-timeout` of the server waiting for
//!   them (hyper's header-read timeout; it also closes a kept-alive connection that sends no next
//!   request within that time).
//! - A connection not (yet) upgraded that moves no byte either way for `--http-idle-timeout` is
//!   closed (a request that stalls half-way, a client that reads no response).
//!
//! Connections closed by either timeout count in `videoroom_connections_timed_out_total`.
//!
//! Every connection, upgraded or not, ends with a lingering close ([`crate::linger`]): what
//! the server wrote last (a WebSocket close frame) reaches the client even if the client was
//! still sending.
//!
//! Only HTTP/1.1 is served: WebSockets need it and the endpoints gain nothing from HTTP/2, while
//! hyper-util's auto-detecting builder waits for the HTTP/2 preface with no timeout and hyper's
//! HTTP/2 server has no idle timeout.

use crate::Shared;
use crate::linger::LingeringStream;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tower_service::Service;
use tracing::{debug, warn};

/// How long an HTTP request in progress at shutdown may take to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// What a connection refused for want of a slot is told.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; \
charset=utf-8\r\ncontent-length: 38\r\nconnection: close\r\n\r\ntoo many connections; try again later\n";

/// The connection-limit slot of the TCP connection a request came on (a request extension).
/// The WebSocket upgrade takes it, so the session keeps the connection's slot.
#[derive(Clone)]
pub struct ConnectionSlot(Arc<Mutex<Option<OwnedSemaphorePermit>>>);

impl ConnectionSlot {
    /// Takes the slot (once; `None` after).
    pub fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// Accepts connections until shutdown, then waits for the open HTTP connections to end
/// (upgraded ones are sessions, which the server waits for itself).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) -> io::Result<()> {
    let connections = TaskTracker::new();
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: let some connections end first.
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                    ) {
                        warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            _ = shared.shutdown.cancelled() => break,
        };
        let Ok(permit) = Arc::clone(&shared.connections).try_acquire_owned() else {
            shared.metrics.connections_refused.inc();
            debug!(%remote, "connection refused: --max-connections are open");
            // Best effort, never waiting: a new socket's send buffer is empty.
            let _ = stream.try_write(REFUSAL);
            continue;
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(accept_connection(
            stream,
            remote,
            permit,
            app.clone(),
            tls.clone(),
            Arc::clone(&shared),
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Does the TLS handshake, if any (within the header-read timeout: a client that never finishes
/// it is closed like one that never finishes its headers), then serves the connection.
async fn accept_connection(
    stream: TcpStream,
    remote: SocketAddr,
    permit: OwnedSemaphorePermit,
    app: Router,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let activity = Arc::new(Activity::new());
    let watched = Watched {
        inner: LingeringStream::new(stream),
        activity: Arc::clone(&activity),
    };
    let Some(tls) = tls else {
        return serve_connection(watched, activity, remote, permit, app, shared).await;
    };
    let handshake = tokio::time::timeout(shared.config.http_header_timeout, tls.accept(watched));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                shared.metrics.tls_handshakes_failed.inc();
                debug!(%remote, "TLS handshake failed: {e}");
                return;
            }
            Err(_) => {
                shared.metrics.connections_timed_out.inc();
                debug!(%remote, "no TLS handshake in time; closed");
                return;
            }
        },
        _ = shared.shutdown.cancelled() => return,
    };
    serve_connection(stream, activity, remote, permit, app, shared).await;
}

/// Serves one connection until it closes, upgrades, times out, or the server shuts down.
async fn serve_connection<S>(
    stream: S,
    activity: Arc<Activity>,
    remote: SocketAddr,
    permit: OwnedSemaphorePermit,
    app: Router,
    shared: Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(stream);
    let slot = ConnectionSlot(Arc::new(Mutex::new(Some(permit))));
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        request.extensions_mut().insert(slot.clone());
        app.clone().call(request)
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.http_header_timeout);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let idle_timeout = shared.config.http_idle_timeout;
    let idle = tokio::time::sleep(idle_timeout);
    tokio::pin!(idle);
    let mut closing_by: Option<Instant> = None;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                match ended {
                    Ok(()) => {}
                    Err(e) if e.is_timeout() => {
                        shared.metrics.connections_timed_out.inc();
                        debug!(%remote, "no complete request headers in time; closed");
                    }
                    Err(e) => debug!(%remote, "HTTP connection ended: {e}"),
                }
                return;
            }
            () = idle.as_mut() => {
                if closing_by.is_some_and(|by| Instant::now() >= by) {
                    debug!(%remote, "HTTP connection still busy after shutdown; closed");
                    return;
                }
                let quiet_since = activity.last();
                if quiet_since.elapsed() >= idle_timeout {
                    shared.metrics.connections_timed_out.inc();
                    debug!(%remote, "HTTP connection idle too long; closed");
                    return;
                }
                let mut next = quiet_since + idle_timeout;
                if let Some(by) = closing_by {
                    next = next.min(by);
                }
                idle.as_mut().reset(next);
            }
            _ = shared.shutdown.cancelled(), if closing_by.is_none() => {
                // Finish a request in progress, close an idle connection.
                conn.as_mut().graceful_shutdown();
                let by = Instant::now() + SHUTDOWN_GRACE;
                closing_by = Some(by);
                if idle.deadline() > by {
                    idle.as_mut().reset(by);
                }
            }
        }
    }
}

/// When a connection last moved a byte.
struct Activity {
    start: Instant,
    /// Milliseconds after `start`.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }
}

/// A socket that notes in its [`Activity`] when bytes go through it.
struct Watched {
    inner: LingeringStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && buf.filled().len() > before
        {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
