//! A room's chat: stamping messages, the bounded history a late joiner gets, and the per-peer
//! rate limit shared by chat and raised hands. Pure logic over explicit time (`now_ms` for the
//! stamp, a `governor` clock for the limit); the room actor does the delivery.

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::collections::VecDeque;
use std::num::NonZeroU32;
use videoroom_protocol::{ChatMessage, PeerId, PeerInfo};

/// Most messages a room keeps for late joiners.
pub const HISTORY_MESSAGES: usize = 200;
/// Most bytes of text a room keeps for late joiners (so `joined` stays a reasonable frame).
pub const HISTORY_BYTES: usize = 256 * 1024;
/// Messages (and hand raises) a peer may send in a burst.
pub const BURST: u32 = 10;
/// After a burst, one more per this many milliseconds.
pub const REFILL_MS: u64 = 1000;

/// The room's message counter and its history of messages to everyone.
#[derive(Debug, Default)]
pub struct ChatHistory {
    messages: VecDeque<ChatMessage>,
    bytes: usize,
    last_id: u64,
}

impl ChatHistory {
    /// Stamps a (validated) text from `from` with the next id and `now_ms`. A message to
    /// everyone is kept in the history; a private one is not.
    pub fn post(
        &mut self,
        from: &PeerInfo,
        to: Option<PeerId>,
        text: String,
        now_ms: u64,
    ) -> ChatMessage {
        self.last_id += 1;
        let message = ChatMessage {
            id: self.last_id,
            from: from.peer_id.clone(),
            from_name: from.display_name.clone(),
            to,
            text,
            sent_at: now_ms,
        };
        if message.to.is_none() {
            self.bytes += message.text.len();
            self.messages.push_back(message.clone());
            while self.messages.len() > HISTORY_MESSAGES || self.bytes > HISTORY_BYTES {
                match self.messages.pop_front() {
                    Some(old) => self.bytes -= old.text.len(),
                    None => break,
                }
            }
        }
        message
    }

    /// The kept messages, oldest first.
    pub fn messages(&self) -> Vec<ChatMessage> {
        self.messages.iter().cloned().collect()
    }

    /// Bytes of text kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// One peer's limit on chat messages and hand raises: [`BURST`] at once, then one per
/// [`REFILL_MS`].
pub type ActionLimiter<C = DefaultClock> =
    RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

fn quota() -> Quota {
    let burst = NonZeroU32::new(BURST).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(std::time::Duration::from_millis(REFILL_MS))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

/// A limiter on the real clock.
pub fn action_limiter() -> ActionLimiter {
    RateLimiter::direct(quota())
}

/// A limiter on `clock` (tests drive a fake one).
pub fn action_limiter_with_clock<C: Clock>(clock: C) -> ActionLimiter<C> {
    RateLimiter::direct_with_clock(quota(), clock)
}

/// Milliseconds since the Unix epoch, the chat's and raised hands' time stamps.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::time::Duration;

    fn peer(id: &str, name: &str) -> PeerInfo {
        PeerInfo::new(PeerId::new(id), name)
    }

    #[test]
    fn messages_are_stamped_in_order_and_private_ones_are_not_kept() {
        let mut chat = ChatHistory::default();
        let ada = peer("p-1", "Ada");
        let a = chat.post(&ada, None, "hello".into(), 1_000);
        let b = chat.post(&ada, Some(PeerId::new("p-2")), "psst".into(), 1_001);
        let c = chat.post(&ada, None, "again".into(), 1_002);
        assert_eq!((a.id, b.id, c.id), (1, 2, 3));
        assert_eq!(a.from_name, "Ada");
        assert_eq!(a.sent_at, 1_000);
        let kept: Vec<_> = chat.messages().into_iter().map(|m| m.text).collect();
        assert_eq!(kept, ["hello", "again"]);
    }

    #[test]
    fn history_is_bounded_in_count_and_bytes_dropping_the_oldest() {
        let mut chat = ChatHistory::default();
        let ada = peer("p-1", "Ada");
        for i in 0..HISTORY_MESSAGES + 50 {
            chat.post(&ada, None, format!("m{i}"), i as u64);
        }
        let kept = chat.messages();
        assert_eq!(kept.len(), HISTORY_MESSAGES);
        assert_eq!(kept[0].text, "m50");
        assert_eq!(
            kept.last().map(|m| m.id),
            Some((HISTORY_MESSAGES + 50) as u64)
        );

        let mut chat = ChatHistory::default();
        let big = "x".repeat(4096);
        for i in 0..100 {
            chat.post(&ada, None, big.clone(), i);
        }
        assert!(chat.bytes() <= HISTORY_BYTES);
        assert_eq!(chat.messages().len(), HISTORY_BYTES / 4096);
        assert_eq!(chat.messages().last().map(|m| m.sent_at), Some(99));
    }

    #[test]
    fn a_burst_passes_then_one_per_second() {
        let clock = FakeRelativeClock::default();
        let limiter = action_limiter_with_clock(clock.clone());
        for i in 0..BURST {
            assert!(limiter.check().is_ok(), "message {i} of the burst");
        }
        assert!(limiter.check().is_err(), "one past the burst");
        clock.advance(Duration::from_millis(REFILL_MS - 1));
        assert!(limiter.check().is_err());
        clock.advance(Duration::from_millis(1));
        assert!(limiter.check().is_ok());
        assert!(limiter.check().is_err());
        // A quiet minute refills the whole burst, and no more.
        clock.advance(Duration::from_secs(60));
        let passed = (0..BURST * 2).filter(|_| limiter.check().is_ok()).count();
        assert_eq!(passed, BURST as usize);
    }
}
