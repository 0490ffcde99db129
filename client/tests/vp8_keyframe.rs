//! `force_keyframe` (the answer to a PLI): the next frame is a keyframe, and a decoder that
//! joins at that frame decodes it and everything after.

use videoroom_client::media::{
    PatternClock, PatternSource, VideoSource, Vp8Config, Vp8Decoder, Vp8Encoder, read_burned_in,
};

#[test]
fn force_keyframe_makes_the_next_frame_a_keyframe_a_late_decoder_can_join() {
    let mut source =
        PatternSource::new(640, 360, 30)
            .unwrap()
            .with_clock(PatternClock::Simulated {
                start_micros: 1_000_000,
            });
    let mut encoder = Vp8Encoder::new(Vp8Config::new(640, 360, 1000)).unwrap();
    let mut late = Vp8Decoder::new().unwrap();
    let mut joined = false;
    for i in 0..45u64 {
        if i == 30 {
            encoder.force_keyframe();
        }
        let frame = source.next_frame().unwrap();
        let encoded = encoder.encode(&frame).unwrap().unwrap();
        let expect_key = i == 0 || i == 30;
        assert_eq!(encoded.keyframe, expect_key, "frame {i}");
        if encoded.keyframe && i == 30 {
            joined = true;
        }
        if joined {
            let decoded = late.decode(&encoded.data).unwrap().unwrap();
            assert_eq!(read_burned_in(&decoded).map(|s| s.0), Some(i), "frame {i}");
        }
    }
    assert!(joined);
}

#[test]
fn bitrate_can_change_while_encoding() {
    let mut source = PatternSource::new(320, 180, 30).unwrap();
    let mut encoder = Vp8Encoder::new(Vp8Config::new(320, 180, 500)).unwrap();
    for _ in 0..5 {
        encoder
            .encode(&source.next_frame().unwrap())
            .unwrap()
            .unwrap();
    }
    encoder.set_target_kbps(200).unwrap();
    assert_eq!(encoder.config().target_kbps, 200);
    assert!(encoder.set_target_kbps(0).is_err());
    for _ in 0..5 {
        encoder
            .encode(&source.next_frame().unwrap())
            .unwrap()
            .unwrap();
    }
}
