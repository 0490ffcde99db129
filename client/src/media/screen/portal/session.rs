//! The portal conversation (ashpd, over our own D-Bus session connection): create a ScreenCast
//! session, ask for one monitor or window with the cursor drawn in, start it (the portal's own
//! dialog: as long as the person takes), and open the PipeWire remote its stream lives on.
//!
//! The session then stays open in a small task until the share is dropped ([`SessionGuard`]:
//! the task closes it) or the portal closes it (the shell's "Stop sharing": the task reports
//! it). Each share has its own bus connection, so a dropped share never leaves a session behind.

use super::error::{screen_error, zbus_error};
use crate::media::screen::ScreenError;
use ashpd::desktop::screencast::{
    CursorMode, OpenPipeWireRemoteOptions, Screencast, SelectSourcesOptions, SourceType,
    StartCastOptions,
};
use ashpd::desktop::{PersistMode, Session};
use futures::StreamExt;
use std::future::Future;
use std::os::fd::OwnedFd;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a portal call that shows nothing may take (all but the dialog).
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long closing the session may take when a share is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the person chose, ready to be read.
#[derive(Debug)]
pub(crate) struct Cast {
    /// The PipeWire node of the (first) stream.
    pub node_id: u32,
    /// Its size in the compositor's coordinates, if the portal said.
    pub size: Option<(u32, u32)>,
    /// A monitor or a window, if the portal said.
    pub kind: Option<SourceType>,
    /// The PipeWire connection for that stream.
    pub fd: OwnedFd,
    /// Keeps the session open.
    pub session: SessionGuard,
}

/// Keeps the portal session open; dropping it closes the session.
#[derive(Debug)]
pub(crate) struct SessionGuard {
    _stop: oneshot::Sender<()>,
}

#[cfg(test)]
impl SessionGuard {
    /// A guard of no session (tests that read PipeWire without a portal).
    pub(crate) fn detached() -> Self {
        Self {
            _stop: oneshot::channel().0,
        }
    }
}

/// `call` within [`CALL_TIMEOUT`], its error mapped.
async fn bounded<T>(
    what: &str,
    call: impl Future<Output = Result<T, ashpd::Error>>,
) -> Result<T, ScreenError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result.map_err(screen_error),
        Err(_) => Err(ScreenError::Portal(format!(
            "{what}: no answer within {} s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

/// What the portal started: the first stream's node and the remote it lives on.
#[derive(Debug)]
struct Started {
    node_id: u32,
    size: Option<(u32, u32)>,
    kind: Option<SourceType>,
    fd: OwnedFd,
}

/// Runs the portal conversation up to an open PipeWire remote. `on_closed` is called (from a
/// tokio task) if the portal closes the session while the share is running.
///
/// The conversation runs in a task that then keeps the session; dropping this future before it
/// answers ends that task too (its bus connection closes, and with it the portal's dialog).
pub(crate) async fn start_cast(
    on_closed: impl FnOnce() + Send + 'static,
) -> Result<Cast, ScreenError> {
    let (reply, answer) = oneshot::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(run_session(reply, stopped, on_closed));
    let started = answer
        .await
        .map_err(|_| ScreenError::Portal("the portal conversation stopped".into()))??;
    Ok(Cast {
        node_id: started.node_id,
        size: started.size,
        kind: started.kind,
        fd: started.fd,
        session: SessionGuard { _stop: stop },
    })
}

/// The portal session's whole life: opened, sources chosen, started; then held until the share
/// is dropped (`stopped`: closed) or the portal closes it (`on_closed`). Stops early when
/// nobody waits for the answer any more.
async fn run_session(
    mut reply: oneshot::Sender<Result<Started, ScreenError>>,
    stopped: oneshot::Receiver<()>,
    on_closed: impl FnOnce(),
) {
    let opened = tokio::select! {
        opened = open_session() => opened,
        () = reply.closed() => return,
    };
    let (proxy, session) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            let _ = reply.send(Err(e));
            return;
        }
    };
    // Subscribed before the cast starts, so that no close goes unseen.
    let closed = match bounded("watching the session", session.receive_closed()).await {
        Ok(closed) => closed,
        Err(e) => {
            let _ = reply.send(Err(e));
            return;
        }
    };
    let mut closed = std::pin::pin!(closed);
    let started = tokio::select! {
        started = choose_and_start(&proxy, &session) => started,
        () = reply.closed() => return,
    };
    let failed = started.is_err();
    if reply.send(started).is_err() || failed {
        return;
    }
    tokio::select! {
        _ = stopped => {
            match tokio::time::timeout(CLOSE_TIMEOUT, session.close()).await {
                Ok(Ok(())) => tracing::debug!("portal screen-cast session closed"),
                Ok(Err(e)) => tracing::debug!("closing the portal session: {e}"),
                Err(_) => tracing::debug!("closing the portal session: no answer"),
            }
        }
        _ = closed.next() => {
            tracing::info!("the portal closed the screen-cast session");
            on_closed();
        }
    }
}

/// Our own session-bus connection (so that dropping it ends everything), the portal, a session.
async fn open_session() -> Result<(Screencast, Session<Screencast>), ScreenError> {
    let connection =
        match tokio::time::timeout(CALL_TIMEOUT, ashpd::zbus::Connection::session()).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(e)) => {
                tracing::info!("no D-Bus session bus for the screen-sharing portal: {e}");
                return Err(zbus_error(e));
            }
            Err(_) => {
                return Err(ScreenError::Portal(format!(
                    "the D-Bus session bus did not answer within {} s",
                    CALL_TIMEOUT.as_secs()
                )));
            }
        };
    let proxy = bounded(
        "reaching the ScreenCast portal",
        Screencast::with_connection(connection),
    )
    .await?;
    let session = bounded(
        "creating a screen-cast session",
        proxy.create_session(Default::default()),
    )
    .await?;
    Ok((proxy, session))
}

/// One monitor or window, cursor drawn in; the portal's dialog; the PipeWire remote.
async fn choose_and_start(
    proxy: &Screencast,
    session: &Session<Screencast>,
) -> Result<Started, ScreenError> {
    bounded(
        "choosing what may be shared",
        proxy.select_sources(
            session,
            SelectSourcesOptions::default()
                .set_cursor_mode(CursorMode::Embedded)
                .set_sources(SourceType::Monitor | SourceType::Window)
                .set_multiple(false)
                .set_persist_mode(PersistMode::DoNot),
        ),
    )
    .await?
    .response()
    .map_err(screen_error)?;
    // The portal's dialog: no timeout, the person takes the time they need.
    let streams = proxy
        .start(session, None, StartCastOptions::default())
        .await
        .map_err(screen_error)?
        .response()
        .map_err(screen_error)?;
    let stream = streams
        .streams()
        .first()
        .ok_or_else(|| ScreenError::Portal("the portal started no stream".into()))?;
    let size = stream.size().and_then(|(w, h)| {
        Some((u32::try_from(w).ok()?, u32::try_from(h).ok()?)).filter(|&(w, h)| w > 0 && h > 0)
    });
    let (node_id, kind) = (stream.pipe_wire_node_id(), stream.source_type());
    let fd = bounded(
        "opening the PipeWire remote",
        proxy.open_pipe_wire_remote(session, OpenPipeWireRemoteOptions::default()),
    )
    .await?;
    tracing::info!(node_id, ?size, ?kind, "portal screen cast started");
    Ok(Started {
        node_id,
        size,
        kind,
        fd,
    })
}
