//! VP8 round trip of the synthetic pattern: quality (Y PSNR) and the burned-in frame numbers and
//! capture times read back from decoded pixels.

mod common;

use common::psnr::psnr_y;
use videoroom_client::media::{
    PatternClock, PatternSource, VideoSource, Vp8Config, Vp8Decoder, Vp8Encoder, read_burned_in,
};

fn roundtrip(width: u32, height: u32, kbps: u32, frames: usize) -> (Vec<f64>, Vec<(u64, u64)>) {
    let start = 1_763_950_000_000_000;
    let mut source = PatternSource::new(width, height, 30)
        .expect("setup or codec call failed")
        .with_clock(PatternClock::Simulated {
            start_micros: start,
        });
    let mut encoder =
        Vp8Encoder::new(Vp8Config::new(width, height, kbps)).expect("setup or codec call failed");
    let mut decoder = Vp8Decoder::new().expect("setup or codec call failed");
    let mut psnrs = Vec::new();
    let mut stamps = Vec::new();
    let mut bytes = 0;
    for i in 0..frames {
        let frame = source.next_frame().expect("setup or codec call failed");
        assert_eq!(frame.frame_number, i as u64);
        let encoded = encoder
            .encode(&frame)
            .expect("setup or codec call failed")
            .expect("frame dropping is off");
        assert_eq!(encoded.frame_number, frame.frame_number);
        assert_eq!(
            encoded.keyframe,
            i == 0,
            "only the first frame is a keyframe"
        );
        bytes += encoded.data.len();
        let decoded = decoder
            .decode(&encoded.data)
            .expect("setup or codec call failed")
            .expect("every frame is shown");
        psnrs.push(psnr_y(&frame, &decoded));
        let stamp = read_burned_in(&decoded)
            .unwrap_or_else(|| panic!("frame {i}: burned-in code not readable after decoding"));
        assert_eq!(
            stamp,
            (frame.frame_number, frame.capture_micros),
            "frame {i}"
        );
        stamps.push(stamp);
    }
    let kbps_out = bytes as f64 * 8.0 * 30.0 / frames as f64 / 1000.0;
    let mean = psnrs.iter().sum::<f64>() / psnrs.len() as f64;
    let min = psnrs.iter().cloned().fold(f64::INFINITY, f64::min);
    eprintln!(
        "{width}x{height} @ {kbps} kbit/s: {kbps_out:.0} kbit/s out, Y PSNR mean {mean:.2} dB, min {min:.2} dB"
    );
    (psnrs, stamps)
}

#[test]
fn vp8_640x360_at_1mbps_keeps_quality_and_burned_in_stamps() {
    let (psnrs, stamps) = roundtrip(640, 360, 1000, 90);
    for (i, p) in psnrs.iter().enumerate() {
        assert!(*p >= 30.0, "frame {i}: Y PSNR {p:.2} dB < 30 dB");
    }
    for pair in stamps.windows(2) {
        assert!(
            pair[1].0 > pair[0].0,
            "frame numbers not strictly increasing: {pair:?}"
        );
        assert!(
            pair[1].1 > pair[0].1,
            "capture times not strictly increasing: {pair:?}"
        );
    }
    assert_eq!(stamps.first().map(|s| s.0), Some(0));
    assert_eq!(stamps.last().map(|s| s.0), Some(89));
}

#[test]
fn vp8_1280x720_burned_in_stamps_survive() {
    let (psnrs, _) = roundtrip(1280, 720, 1500, 20);
    let mean = psnrs.iter().sum::<f64>() / psnrs.len() as f64;
    assert!(mean >= 30.0, "mean Y PSNR {mean:.2} dB < 30 dB");
}
