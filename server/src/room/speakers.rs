//! The room's ranking of who is speaking: the levels its members' audio tracks report
//! (`CoreEvent::SpeakerLevel`, every 250 ms while speaking) in, the `active_speakers` list out
//! when it changes. Pure logic; the order only changes when the difference is clear, so two
//! people speaking about as loud do not make the list flap.

use std::collections::HashMap;
use videoroom_protocol::{PeerId, TrackId};

/// A speaker moves ahead of the one before it only when this much louder.
const OVERTAKE: f32 = 1.25;

/// Levels of the tracks that speak, and the order last told.
#[derive(Debug, Default)]
pub struct ActiveSpeakers {
    levels: HashMap<(PeerId, TrackId), f32>,
    order: Vec<PeerId>,
}

impl ActiveSpeakers {
    /// A track's level (`speaking` false: it stopped). Returns the new list when it changed.
    pub fn update(
        &mut self,
        peer: &PeerId,
        track: &TrackId,
        level: f32,
        speaking: bool,
    ) -> Option<Vec<PeerId>> {
        let key = (peer.clone(), track.clone());
        if speaking {
            self.levels.insert(key, level.max(0.0));
        } else {
            self.levels.remove(&key);
        }
        self.reorder()
    }

    /// A member left or stopped publishing: its tracks no longer speak.
    pub fn remove_peer(&mut self, peer: &PeerId) -> Option<Vec<PeerId>> {
        self.levels.retain(|(p, _), _| p != peer);
        self.reorder()
    }

    /// The list as last told.
    pub fn current(&self) -> &[PeerId] {
        &self.order
    }

    fn level_of(&self, peer: &PeerId) -> Option<f32> {
        self.levels
            .iter()
            .filter(|((p, _), _)| p == peer)
            .map(|(_, &l)| l)
            .reduce(f32::max)
    }

    fn reorder(&mut self) -> Option<Vec<PeerId>> {
        let mut speaking: Vec<(PeerId, f32)> = Vec::new();
        for (peer, _) in self.levels.keys() {
            if !speaking.iter().any(|(p, _)| p == peer)
                && let Some(level) = self.level_of(peer)
            {
                speaking.push((peer.clone(), level));
            }
        }
        // Keep the last order for those still speaking; newcomers after them.
        let mut next: Vec<(PeerId, f32)> = self
            .order
            .iter()
            .filter_map(|p| speaking.iter().find(|(q, _)| q == p).cloned())
            .collect();
        let mut newcomers: Vec<(PeerId, f32)> = speaking
            .into_iter()
            .filter(|(p, _)| !self.order.contains(p))
            .collect();
        newcomers.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        next.extend(newcomers);
        // Move a speaker ahead only past those it is clearly louder than (stable insertion).
        for i in 1..next.len() {
            let mut j = i;
            while j > 0 && next[j].1 > next[j - 1].1 * OVERTAKE {
                next.swap(j, j - 1);
                j -= 1;
            }
        }
        let next: Vec<PeerId> = next.into_iter().map(|(p, _)| p).collect();
        if next == self.order {
            None
        } else {
            self.order = next.clone();
            Some(next)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str) -> PeerId {
        PeerId::from(s)
    }

    fn mic() -> TrackId {
        TrackId::from("mic")
    }

    #[test]
    fn the_loudest_comes_first_and_silence_empties_the_list() {
        let mut a = ActiveSpeakers::default();
        let (x, y) = (peer("x"), peer("y"));
        assert_eq!(a.update(&x, &mic(), 0.1, true), Some(vec![x.clone()]));
        assert_eq!(
            a.update(&x, &mic(), 0.12, true),
            None,
            "no change, no message"
        );
        assert_eq!(
            a.update(&y, &mic(), 0.5, true),
            Some(vec![y.clone(), x.clone()])
        );
        assert_eq!(a.update(&y, &mic(), 0.0, false), Some(vec![x.clone()]));
        assert_eq!(a.remove_peer(&x), Some(vec![]));
        assert_eq!(a.remove_peer(&x), None);
    }

    #[test]
    fn near_equal_speakers_do_not_flap() {
        let mut a = ActiveSpeakers::default();
        let (x, y) = (peer("x"), peer("y"));
        a.update(&x, &mic(), 0.30, true);
        a.update(&y, &mic(), 0.20, true);
        assert_eq!(a.current(), [x.clone(), y.clone()]);
        // y a little louder than x: not enough to overtake.
        assert_eq!(a.update(&y, &mic(), 0.33, true), None);
        // Clearly louder: it does.
        assert_eq!(
            a.update(&y, &mic(), 0.45, true),
            Some(vec![y.clone(), x.clone()])
        );
    }
}
