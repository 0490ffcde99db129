//! Simulcast layers: the [`LayerSpec`]s of a camera (quarter, half, full size) and which of
//! them are encoded when the server (dynacast) and the uplink budget each pause some.

use crate::media::downscale::even_fraction;

/// A simulcast layer below this height is not sent.
pub const MIN_LAYER_HEIGHT: u32 = 90;

/// One spatial layer of a published video track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSpec {
    /// Its `rid` in SDP and in the RID header extension; `None` for a single-layer track.
    pub rid: Option<&'static str>,
    /// Its SSRC.
    pub ssrc: u32,
    /// Its size: the source's width and height divided by this (1, 2, 4), rounded to even.
    pub divisor: u32,
}

impl LayerSpec {
    /// The one layer of a track that is not simulcast.
    pub fn single(ssrc: u32) -> Self {
        Self {
            rid: None,
            ssrc,
            divisor: 1,
        }
    }

    /// The layer's size for a `width`×`height` source; `None` if it is too small to send
    /// (a downscaled layer under [`MIN_LAYER_HEIGHT`]).
    pub fn size(&self, width: u32, height: u32) -> Option<(u32, u32)> {
        if self.divisor <= 1 {
            return Some((width, height));
        }
        let (w, h) = (
            even_fraction(width, self.divisor),
            even_fraction(height, self.divisor),
        );
        (h >= MIN_LAYER_HEIGHT && w <= width && h <= height).then_some((w, h))
    }

    /// The layer's target bitrate when the full-size layer's is `top_kbps`: about a third for
    /// half size, a tenth for quarter size, with floors so that a small source still looks
    /// right.
    pub fn target_kbps(&self, top_kbps: u32) -> u32 {
        match self.divisor {
            0 | 1 => top_kbps,
            2 => (top_kbps / 3).max(150).min(top_kbps),
            _ => (top_kbps / 10).max(60).min(top_kbps),
        }
    }
}

/// The simulcast layers of a camera track, lowest to highest as the SDP lists them
/// ([`videoroom_webrtc::SIMULCAST_RIDS`]: quarter, half, full); the full layer is sent on
/// `full_ssrc` (the track's SSRC), the others on new random SSRCs.
pub fn camera_layers(full_ssrc: u32) -> Vec<LayerSpec> {
    let mut layers = Vec::with_capacity(3);
    for (rid, divisor) in [
        (videoroom_webrtc::RID_QUARTER, 4),
        (videoroom_webrtc::RID_HALF, 2),
        (videoroom_webrtc::RID_FULL, 1),
    ] {
        let ssrc = if divisor == 1 {
            full_ssrc
        } else {
            loop {
                let s = rand::random::<u32>() | 1;
                if s != full_ssrc && layers.iter().all(|l: &LayerSpec| l.ssrc != s) {
                    break s;
                }
            }
        };
        layers.push(LayerSpec {
            rid: Some(rid),
            ssrc,
            divisor,
        });
    }
    layers
}

/// The layers not encoded (one bit per layer, lowest layer first) when the server (dynacast)
/// pauses `dynacast` and the uplink budget `budget`: a layer is encoded only if both want it.
/// If that leaves nothing while the server wants some layer, the highest layer the budget
/// allows is encoded after all: the server wants only layers the uplink cannot carry (its
/// subscribers are on them), and without a layer to move them to it would wait for them
/// forever while the layer it could use stays paused by dynacast.
pub fn combined_pauses(dynacast: u32, budget: u32, layers: usize) -> u32 {
    let all = match layers {
        0 => return 0,
        n if n >= 32 => u32::MAX,
        n => (1u32 << n) - 1,
    };
    let paused = (dynacast | budget) & all;
    if paused != all || dynacast & all == all || budget & all == all {
        return paused;
    }
    let allowed = !budget & all;
    let highest = 31 - allowed.leading_zeros();
    paused & !(1 << highest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_sizes_and_rates() {
        let layers = camera_layers(5);
        assert_eq!(
            layers.iter().map(|l| l.rid).collect::<Vec<_>>(),
            [Some("q"), Some("h"), Some("f")]
        );
        assert_eq!(layers[2].ssrc, 5);
        assert!(layers[0].ssrc != layers[1].ssrc && layers[0].ssrc != 5);
        let sizes: Vec<_> = layers.iter().map(|l| l.size(1280, 720)).collect();
        assert_eq!(
            sizes,
            [Some((320, 180)), Some((640, 360)), Some((1280, 720))]
        );
        assert_eq!(layers[0].size(640, 360), Some((160, 90)));
        assert_eq!(layers[0].size(320, 240), None);
        assert_eq!(layers[1].size(320, 240), Some((160, 120)));
        assert_eq!(
            layers
                .iter()
                .map(|l| l.target_kbps(1500))
                .collect::<Vec<_>>(),
            [150, 500, 1500]
        );
        assert_eq!(layers[0].target_kbps(300), 60);
        assert_eq!(layers[1].target_kbps(100), 100);
    }

    #[test]
    fn a_layer_is_sent_when_both_want_it_or_else_the_best_the_budget_allows() {
        // Bits: 0 = quarter, 1 = half, 2 = full.
        assert_eq!(combined_pauses(0b000, 0b000, 3), 0b000);
        assert_eq!(combined_pauses(0b011, 0b000, 3), 0b011);
        assert_eq!(combined_pauses(0b100, 0b110, 3), 0b110);
        // The server wants the full layer only, the budget allows the quarter only: the
        // quarter goes out so the server has something to move its subscribers to.
        assert_eq!(combined_pauses(0b011, 0b110, 3), 0b110);
        assert_eq!(combined_pauses(0b001, 0b100, 3), 0b101);
        // Nobody wants the track at all: nothing.
        assert_eq!(combined_pauses(0b111, 0b110, 3), 0b111);
        assert_eq!(combined_pauses(0b1, 0b0, 1), 0b1);
        assert_eq!(combined_pauses(0b0, 0b0, 0), 0);
    }
}
