//! The uplink budget of a room: the current session's send-side bandwidth estimate
//! ([`videoroom_webrtc::bwe`], registered in the PeerConnection by [`crate::peer`]) shared out
//! between our tracks every [`INTERVAL`] by the [`Allocator`], whose decisions each track's send
//! loop applies (layers paused, encoder bitrates; see [`crate::publish`]).

use crate::allocate::{
    Allocator, Estimate, INTERVAL, LayerDecision, PROBE_CHECK_EVERY, TrackDemand, TrackKind,
};
use crate::publish::{AudioControl, VideoControl};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;
use videoroom_webrtc::bwe::{EstimateStats, SendEstimate};

/// A registered track.
enum Entry {
    Video {
        id: u32,
        screen: bool,
        control: Weak<VideoControl>,
    },
    Audio {
        id: u32,
        control: Weak<AudioControl>,
    },
}

#[derive(Default)]
struct Inner {
    estimate: Option<SendEstimate>,
    allocator: Allocator,
    tracks: Vec<Entry>,
    next_id: u32,
}

/// The room's uplink budget: lives as long as the room; each session hands it its estimate.
/// Cheap to share (`Arc`).
#[derive(Default)]
pub struct SendBudget {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for SendBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBudget")
            .field("estimate", &self.estimate_stats())
            .finish_non_exhaustive()
    }
}

fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

impl SendBudget {
    /// A budget and the task that re-allocates it every [`INTERVAL`], every
    /// [`PROBE_CHECK_EVERY`] while a young probe runs (it ends when the budget is dropped).
    /// Needs a tokio runtime.
    pub fn start() -> Arc<Self> {
        let budget = Arc::new(Self::default());
        let weak = Arc::downgrade(&budget);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(PROBE_CHECK_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut next = Instant::now();
            loop {
                ticker.tick().await;
                let Some(budget) = weak.upgrade() else {
                    return;
                };
                let now = Instant::now();
                if now >= next || budget.probe_running(now) {
                    budget.run(now);
                    next = now + INTERVAL;
                }
            }
        });
        budget
    }

    /// Whether a probe the allocator started is young (see [`Allocator::probe_running`]).
    fn probe_running(&self, now: Instant) -> bool {
        lock(&self.inner).allocator.probe_running(now)
    }

    /// The current session's estimate (`None` between sessions: every layer then runs at its
    /// nominal rate).
    pub fn set_estimate(&self, estimate: Option<SendEstimate>) {
        lock(&self.inner).estimate = estimate;
    }

    /// What the current estimate is made of; `None` without a session.
    pub fn estimate_stats(&self) -> Option<EstimateStats> {
        lock(&self.inner).estimate.as_ref().map(SendEstimate::stats)
    }

    /// Shares the budget out among `control` too (a screen share before the camera). Adding
    /// the same control again changes nothing; a dropped control is forgotten.
    pub fn add_video(&self, control: &Arc<VideoControl>, screen: bool) {
        let mut inner = lock(&self.inner);
        let known = inner.tracks.iter().any(|e| match e {
            Entry::Video { control: c, .. } => std::ptr::eq(c.as_ptr(), Arc::as_ptr(control)),
            Entry::Audio { .. } => false,
        });
        if !known {
            let id = inner.next_id;
            inner.next_id = inner.next_id.wrapping_add(1);
            inner.tracks.push(Entry::Video {
                id,
                screen,
                control: Arc::downgrade(control),
            });
        }
    }

    /// Reserves audio for `control` (never paused).
    pub fn add_audio(&self, control: &Arc<AudioControl>) {
        let mut inner = lock(&self.inner);
        let known = inner.tracks.iter().any(|e| match e {
            Entry::Audio { control: c, .. } => std::ptr::eq(c.as_ptr(), Arc::as_ptr(control)),
            Entry::Video { .. } => false,
        });
        if !known {
            let id = inner.next_id;
            inner.next_id = inner.next_id.wrapping_add(1);
            inner.tracks.push(Entry::Audio {
                id,
                control: Arc::downgrade(control),
            });
        }
    }

    /// One allocation at `now`: reads the estimate, decides, and hands each video track its
    /// layers' decisions.
    pub fn run(&self, now: Instant) {
        let mut inner = lock(&self.inner);
        inner.tracks.retain(|e| match e {
            Entry::Video { control, .. } => control.strong_count() > 0,
            Entry::Audio { control, .. } => control.strong_count() > 0,
        });
        let kbps = |bps: u64| u32::try_from(bps / 1000).unwrap_or(u32::MAX);
        let estimate = inner
            .estimate
            .as_ref()
            .map(SendEstimate::stats)
            .and_then(|s| {
                Some(Estimate {
                    kbps: kbps(s.bps?),
                    delivered_kbps: s.delivered_bps.map(kbps),
                    sent_kbps: s.sent_bps.map(kbps),
                    queue_delay_ms: s
                        .queue_delay
                        .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX)),
                })
            });
        let mut demands = Vec::with_capacity(inner.tracks.len());
        let mut controls = Vec::with_capacity(inner.tracks.len());
        for entry in &inner.tracks {
            match entry {
                Entry::Video {
                    id,
                    screen,
                    control,
                } => {
                    let Some(control) = control.upgrade() else {
                        continue;
                    };
                    let layers = control.nominal_kbps();
                    if layers.is_empty() {
                        // Its send loop has not started yet.
                        continue;
                    }
                    demands.push(TrackDemand {
                        id: *id,
                        kind: if *screen {
                            TrackKind::Screen
                        } else {
                            TrackKind::Camera
                        },
                        layers,
                    });
                    controls.push(Some(control));
                }
                Entry::Audio { id, control } => {
                    // A muted microphone sends nothing and needs no reserve.
                    if control.upgrade().is_some_and(|c| c.enabled()) {
                        demands.push(TrackDemand {
                            id: *id,
                            kind: TrackKind::Audio,
                            layers: Vec::new(),
                        });
                        controls.push(None);
                    }
                }
            }
        }
        let allocation = inner.allocator.allocate(now, estimate, &demands);
        drop(inner);
        for (control, decisions) in controls.iter().zip(&allocation.tracks) {
            if let Some(control) = control {
                apply(control, allocation.budget_kbps, decisions);
            }
        }
    }
}

fn apply(control: &VideoControl, budget_kbps: Option<u32>, decisions: &[LayerDecision]) {
    let rates: Vec<Option<u32>> = decisions
        .iter()
        .map(|d| match d {
            LayerDecision::Paused => None,
            LayerDecision::Send(kbps) => Some(*kbps),
        })
        .collect();
    control.set_budget(budget_kbps, &rates);
}
