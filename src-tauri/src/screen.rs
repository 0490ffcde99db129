//! Our picker's live thumbnails: while the picker is open, one small picture of every source a
//! second, published to the frame hub as frame tracks `source:<id>` (docs/desktop.md). They stop
//! when the picker closes, a share starts, the room is left, or after [`THUMBNAIL_LIFETIME`].
//!
//! The sharing itself (open a source, publish it) is in `session.rs`; listing and capture are the
//! engine's (`videoroom_client::media::screen`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use videoroom_client::media::I420Frame;
use videoroom_client::media::screen::{ScreenBackend, ScreenError, thumbnail};

use crate::frames::SharedHub;

/// How often a thumbnail is taken again.
pub const THUMBNAIL_INTERVAL: Duration = Duration::from_secs(1);
/// Thumbnails stop by themselves after this long (a picker left open, a UI that went away).
pub const THUMBNAIL_LIFETIME: Duration = Duration::from_secs(60);
/// Thumbnails fit within this size (aspect kept).
pub const THUMBNAIL_SIZE: (u32, u32) = (320, 180);

/// Takes one thumbnail of a source id. Blocking (X requests).
pub type Shooter = Arc<dyn Fn(&str) -> Result<I420Frame, ScreenError> + Send + Sync>;

/// The engine's thumbnails of `backend`'s sources, at [`THUMBNAIL_SIZE`].
pub fn shooter(backend: ScreenBackend) -> Shooter {
    Arc::new(move |id: &str| thumbnail(&backend, id, THUMBNAIL_SIZE.0, THUMBNAIL_SIZE.1))
}

/// The thumbnail task of the open picker, if any. Cloning shares it.
#[derive(Clone)]
pub struct Thumbnails {
    hub: SharedHub,
    state: Arc<Mutex<Running>>,
    interval: Duration,
    lifetime: Duration,
}

#[derive(Default)]
struct Running {
    /// Bumped by every start and stop: a task ending by itself clears the hub only if no other
    /// start or stop came meanwhile.
    generation: u64,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Thumbnails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Thumbnails").finish_non_exhaustive()
    }
}

impl Thumbnails {
    /// No thumbnails yet; they go to `hub`, every [`THUMBNAIL_INTERVAL`] for
    /// [`THUMBNAIL_LIFETIME`].
    pub fn new(hub: SharedHub) -> Self {
        Self::with_timing(hub, THUMBNAIL_INTERVAL, THUMBNAIL_LIFETIME)
    }

    /// Thumbnails every `interval`, for `lifetime` after each start.
    pub fn with_timing(hub: SharedHub, interval: Duration, lifetime: Duration) -> Self {
        Self {
            hub,
            state: Arc::new(Mutex::new(Running::default())),
            interval,
            lifetime,
        }
    }

    /// Starts thumbnails of `ids` (replacing any running): one round at once, then one every
    /// interval until the lifetime is up. Must run inside a tokio runtime.
    pub fn start(&self, ids: Vec<String>, shoot: Shooter) {
        let mut running = lock(&self.state);
        if let Some(old) = running.task.take() {
            old.abort();
        }
        running.generation += 1;
        let mut senders = HashMap::new();
        let mut receivers = HashMap::new();
        for id in ids {
            let (tx, rx) = watch::channel(None);
            senders.insert(id.clone(), tx);
            receivers.insert(id, rx);
        }
        self.hub.set_sources(receivers);
        running.task = Some(tokio::spawn(run(
            self.clone(),
            running.generation,
            senders,
            shoot,
        )));
    }

    /// Stops the thumbnails (if any) and takes them off the hub.
    pub fn stop(&self) {
        let mut running = lock(&self.state);
        running.generation += 1;
        if let Some(task) = running.task.take() {
            task.abort();
        }
        self.hub.clear_sources();
    }

    /// Whether a thumbnail task is running.
    pub fn is_running(&self) -> bool {
        lock(&self.state)
            .task
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }

    /// The task of `generation` ended by itself (its time was up).
    fn finished(&self, generation: u64) {
        let mut running = lock(&self.state);
        if running.generation == generation {
            running.task = None;
            self.hub.clear_sources();
        }
    }
}

fn lock(state: &Mutex<Running>) -> std::sync::MutexGuard<'_, Running> {
    // Nothing in here can be left half-done by a panic.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

type Senders = HashMap<String, watch::Sender<Option<Arc<I420Frame>>>>;

async fn run(owner: Thumbnails, generation: u64, senders: Senders, shoot: Shooter) {
    let deadline = tokio::time::Instant::now() + owner.lifetime;
    let mut tick = tokio::time::interval(owner.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ids: Arc<Vec<String>> = Arc::new(senders.keys().cloned().collect());
    while tick.tick().await < deadline {
        let (ids, shoot) = (Arc::clone(&ids), Arc::clone(&shoot));
        let shots = tokio::task::spawn_blocking(move || {
            ids.iter()
                .map(|id| (id.clone(), shoot(id)))
                .collect::<Vec<_>>()
        })
        .await;
        let Ok(shots) = shots else {
            tracing::warn!("the thumbnail thread failed; no more thumbnails");
            break;
        };
        for (id, shot) in shots {
            match shot {
                Ok(frame) => {
                    if let Some(tx) = senders.get(&id) {
                        tx.send_replace(Some(Arc::new(frame)));
                    }
                }
                // A window closed meanwhile: its tile keeps its last picture.
                Err(e) => tracing::debug!(source = %id, "no thumbnail: {e}"),
            }
        }
    }
    owner.finished(generation);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::FrameHub;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    /// A shooter that counts its calls and fails for ids starting with `gone`.
    fn counting() -> (Shooter, Arc<AtomicU64>) {
        let calls = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&calls);
        let shoot: Shooter = Arc::new(move |id: &str| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            if id.starts_with("gone") {
                return Err(ScreenError::NoSuchSource { id: id.to_owned() });
            }
            let mut frame = I420Frame::black(32, 18).expect("frame");
            frame.frame_number = n + 1;
            Ok(frame)
        });
        (shoot, calls)
    }

    /// Waits until `check` holds, at most 10 s.
    async fn until(what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(Instant::now() < deadline, "never happened: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn newest(hub: &FrameHub, id: &str) -> Option<u64> {
        hub.source_frames(id)
            .and_then(|rx| rx.borrow().as_ref().map(|f| f.frame_number))
    }

    #[tokio::test]
    async fn thumbnails_refresh_each_interval_and_stop_when_their_time_is_up() {
        let hub = Arc::new(FrameHub::default());
        let (interval, lifetime) = (Duration::from_millis(50), Duration::from_millis(600));
        let thumbs = Thumbnails::with_timing(Arc::clone(&hub), interval, lifetime);
        let (shoot, calls) = counting();
        let started = Instant::now();
        thumbs.start(vec!["monitor:0".into(), "gone:1".into()], shoot);
        assert_eq!(hub.source_ids(), ["gone:1", "monitor:0"]);
        until("a first thumbnail", || newest(&hub, "monitor:0").is_some()).await;
        let first = newest(&hub, "monitor:0");
        until("a newer thumbnail", || newest(&hub, "monitor:0") > first).await;
        assert_eq!(
            newest(&hub, "gone:1"),
            None,
            "a failing source shows nothing"
        );
        until("the thumbnails' time is up", || !thumbs.is_running()).await;
        let lasted = started.elapsed();
        assert!(
            lasted >= lifetime && lasted < lifetime + Duration::from_secs(2),
            "thumbnails for their lifetime, got {lasted:?}"
        );
        assert!(hub.source_ids().is_empty(), "taken off the hub at the end");
        // Rounds of two shots, at most one per interval (and one at once).
        let rounds = calls.load(Ordering::SeqCst) / 2;
        let most = (lasted.as_millis() / interval.as_millis()) as u64 + 1;
        assert!(
            (2..=most).contains(&rounds),
            "{rounds} rounds in {lasted:?}"
        );
    }

    #[tokio::test]
    async fn stop_and_restart_replace_the_thumbnails() {
        let hub = Arc::new(FrameHub::default());
        let thumbs = Thumbnails::with_timing(
            Arc::clone(&hub),
            Duration::from_millis(20),
            Duration::from_secs(60),
        );
        let (shoot, calls) = counting();
        thumbs.start(vec!["monitor:0".into()], Arc::clone(&shoot));
        until("a first thumbnail", || newest(&hub, "monitor:0").is_some()).await;
        thumbs.start(vec!["window:0x2".into()], shoot);
        assert_eq!(hub.source_ids(), ["window:0x2"]);
        until("the new source's thumbnail", || {
            newest(&hub, "window:0x2").is_some()
        })
        .await;
        thumbs.stop();
        assert!(!thumbs.is_running());
        assert!(hub.source_ids().is_empty());
        // A round under way when it stopped may still finish; none starts after it.
        tokio::time::sleep(Duration::from_millis(60)).await;
        let after_stop = calls.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            after_stop,
            "no shots after stop"
        );
    }
}
