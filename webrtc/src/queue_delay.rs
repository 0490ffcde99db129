//! How long the packets a feedback report covers waited in queues on the path: their one-way
//! delay (arrival by the receiver's clock − departure by ours) above the least one-way delay of
//! the last [`BASELINE`]. The two clocks' offset cancels out; what is left is queueing. GCC's
//! delay half reacts to the *trend* of this over many reports; a probe wants the plain figure at
//! once: a path that queues 100 ms more than it did a moment ago is full, whatever the rates
//! over the last second say.

use std::collections::VecDeque;
use std::time::Duration;

/// The least one-way delay over this long is the path's delay without queueing.
pub const BASELINE: Duration = Duration::from_secs(10);
/// The baseline is kept as one minimum per bucket of departures this long.
const BUCKET: Duration = Duration::from_secs(1);

/// See the module docs. Times are offsets from any fixed epoch (ours for departures, the
/// receiver's for arrivals).
#[derive(Debug, Clone, Default)]
pub struct QueueDelay {
    /// (bucket index by departure, least one-way delay in µs), oldest first.
    minima: VecDeque<(u64, i64)>,
    /// The latest batch's queueing delay.
    latest: Option<Duration>,
}

impl QueueDelay {
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds in one feedback batch: `(departure, arrival)` of each packet that arrived. The
    /// batch's queueing delay is its largest one-way delay above the baseline (which includes
    /// the batch itself). An empty batch changes nothing.
    pub fn on_batch(&mut self, packets: impl IntoIterator<Item = (Duration, Duration)>) {
        let mut worst: Option<i64> = None;
        for (departure, arrival) in packets {
            let delay = micros(arrival) - micros(departure);
            let bucket = (departure.as_micros() / BUCKET.as_micros()) as u64;
            match self.minima.iter_mut().rev().find(|(b, _)| *b == bucket) {
                Some((_, least)) => *least = (*least).min(delay),
                None => {
                    let at = self.minima.partition_point(|(b, _)| *b < bucket);
                    self.minima.insert(at, (bucket, delay));
                }
            }
            worst = Some(worst.map_or(delay, |w| w.max(delay)));
        }
        let Some(worst) = worst else {
            return;
        };
        let buckets = (BASELINE.as_micros() / BUCKET.as_micros()) as u64;
        if let Some(&(newest, _)) = self.minima.back() {
            while self
                .minima
                .front()
                .is_some_and(|&(b, _)| b + buckets <= newest)
            {
                self.minima.pop_front();
            }
        }
        let baseline = self.minima.iter().map(|&(_, d)| d).min().unwrap_or(worst);
        self.latest = Some(Duration::from_micros(
            u64::try_from(worst - baseline).unwrap_or(0),
        ));
    }

    /// The latest batch's queueing delay; `None` before any packet arrived.
    pub fn latest(&self) -> Option<Duration> {
        self.latest
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// `n` packets 20 ms apart from `from`, each arriving `offset + queue(i)` after it left.
    fn batch(
        from: Duration,
        n: u32,
        offset: Duration,
        queue: impl Fn(u32) -> Duration,
    ) -> Vec<(Duration, Duration)> {
        (0..n)
            .map(|i| {
                let departure = from + 20 * MS * i;
                (departure, departure + offset + queue(i))
            })
            .collect()
    }

    #[test]
    fn a_quiet_path_queues_nothing_whatever_the_clock_offset() {
        let mut q = QueueDelay::new();
        assert_eq!(q.latest(), None);
        q.on_batch(batch(Duration::ZERO, 10, 5_000 * MS, |_| Duration::ZERO));
        assert_eq!(q.latest(), Some(Duration::ZERO));
        // Jitter of a few ms shows as a few ms.
        q.on_batch(batch(200 * MS, 10, 5_000 * MS, |i| MS * (i % 3)));
        assert_eq!(q.latest(), Some(2 * MS));
        // An empty batch changes nothing.
        q.on_batch(Vec::new());
        assert_eq!(q.latest(), Some(2 * MS));
    }

    #[test]
    fn a_filling_queue_shows_at_once() {
        let mut q = QueueDelay::new();
        q.on_batch(batch(Duration::ZERO, 50, 30 * MS, |_| Duration::ZERO));
        // A burst: each packet waits 17 ms more than the one before.
        q.on_batch(batch(MS * 1000, 8, 30 * MS, |i| 17 * MS * i));
        assert_eq!(q.latest(), Some(119 * MS));
        // Drained again.
        q.on_batch(batch(MS * 1200, 5, 30 * MS, |_| Duration::ZERO));
        assert_eq!(q.latest(), Some(Duration::ZERO));
    }

    #[test]
    fn a_standing_queue_becomes_the_baseline_after_ten_seconds() {
        let mut q = QueueDelay::new();
        q.on_batch(batch(Duration::ZERO, 10, 40 * MS, |_| Duration::ZERO));
        // From 1 s on every packet waits 80 ms (a longer route, or a queue that never drains).
        for s in 1..10u32 {
            q.on_batch(batch(MS * 1000 * s, 50, 40 * MS, |_| 80 * MS));
        }
        assert_eq!(q.latest(), Some(80 * MS), "still above the old baseline");
        q.on_batch(batch(MS * 10_000, 50, 40 * MS, |_| 80 * MS));
        assert_eq!(q.latest(), Some(Duration::ZERO), "the old minimum aged out");
    }

    #[test]
    fn arrivals_before_departures_on_the_other_clock_are_fine() {
        // The receiver's clock is behind ours: one-way delays are negative numbers.
        let mut q = QueueDelay::new();
        let packets: Vec<_> = (0..10u32)
            .map(|i| (MS * (10_000 + 20 * i), MS * (20 * i) + MS * (i % 2) * 7))
            .collect();
        q.on_batch(packets);
        assert_eq!(q.latest(), Some(7 * MS));
    }
}
