//! Coalescing of keyframe requests: many subscribers asking at once cost the publisher one PLI
//! per [`KEYFRAME_INTERVAL`].

use std::time::{Duration, Instant};

/// Fewest time between two keyframe requests sent to one publisher track.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);

/// Coalesces keyframe requests: the first goes out at once, later ones within the interval are
/// merged into one sent when the interval ends. Pure logic over an explicit `now`.
#[derive(Debug, Clone)]
pub struct KeyframeGate {
    interval: Duration,
    last_sent: Option<Instant>,
    pending: bool,
}

impl KeyframeGate {
    /// A gate that lets one request through per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_sent: None,
            pending: false,
        }
    }

    /// A keyframe was asked for at `now`; returns whether to send a request now.
    pub fn request(&mut self, now: Instant) -> bool {
        match self.last_sent {
            Some(last) if now < last + self.interval => {
                self.pending = true;
                false
            }
            _ => {
                self.last_sent = Some(now);
                self.pending = false;
                true
            }
        }
    }

    /// When a merged request is due, if one is pending.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.pending, self.last_sent) {
            (true, Some(last)) => Some(last + self.interval),
            _ => None,
        }
    }

    /// Time passed; returns whether the merged request is to be sent now.
    pub fn poll(&mut self, now: Instant) -> bool {
        match self.deadline() {
            Some(due) if now >= due => {
                self.pending = false;
                self.last_sent = Some(now);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_request_goes_out_at_once_and_later_ones_merge() {
        let t0 = Instant::now();
        let mut gate = KeyframeGate::new(Duration::from_millis(500));
        assert!(gate.request(t0));
        assert_eq!(gate.deadline(), None);
        // Ten subscribers ask within the interval: nothing goes out yet, one is pending.
        for i in 1..=10 {
            assert!(!gate.request(t0 + Duration::from_millis(10 * i)));
        }
        assert_eq!(gate.deadline(), Some(t0 + Duration::from_millis(500)));
        assert!(!gate.poll(t0 + Duration::from_millis(499)));
        assert!(gate.poll(t0 + Duration::from_millis(500)));
        // The merged one went out; nothing more is pending.
        assert_eq!(gate.deadline(), None);
        assert!(!gate.poll(t0 + Duration::from_millis(2000)));
    }

    #[test]
    fn requests_after_the_interval_go_out_at_once() {
        let t0 = Instant::now();
        let mut gate = KeyframeGate::new(Duration::from_millis(500));
        assert!(gate.request(t0));
        assert!(gate.request(t0 + Duration::from_millis(500)));
        assert!(gate.request(t0 + Duration::from_millis(1200)));
        assert_eq!(gate.deadline(), None);
    }
}
