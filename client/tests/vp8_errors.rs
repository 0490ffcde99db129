//! Bad input to the VP8 codecs gives errors, not panics.

use videoroom_client::media::{
    I420Frame, PatternSource, VideoSource, Vp8Config, Vp8Decoder, Vp8Encoder, Vp8Error,
};

#[test]
fn wrong_frame_size_is_an_error() {
    let mut encoder = Vp8Encoder::new(Vp8Config::new(640, 360, 1000)).unwrap();
    let frame = I420Frame::black(320, 180).unwrap();
    assert!(matches!(
        encoder.encode(&frame),
        Err(Vp8Error::SizeMismatch { .. })
    ));
}

#[test]
fn invalid_configurations_are_rejected() {
    assert!(Vp8Encoder::new(Vp8Config::new(0, 360, 1000)).is_err());
    assert!(Vp8Encoder::new(Vp8Config::new(640, 360, 0)).is_err());
    let mut cfg = Vp8Config::new(640, 360, 1000);
    cfg.cpu_used = 99;
    assert!(Vp8Encoder::new(cfg).is_err());
}

#[test]
fn garbage_and_empty_payloads_are_errors() {
    let mut decoder = Vp8Decoder::new().unwrap();
    assert!(matches!(decoder.decode(&[]), Err(Vp8Error::BadPayload(0))));
    assert!(decoder.decode(&[0xff; 100]).is_err());
    // Truncated keyframe.
    let mut source = PatternSource::new(320, 180, 30).unwrap();
    let mut encoder = Vp8Encoder::new(Vp8Config::new(320, 180, 500)).unwrap();
    let key = encoder
        .encode(&source.next_frame().unwrap())
        .unwrap()
        .unwrap();
    assert!(key.keyframe);
    let mut fresh = Vp8Decoder::new().unwrap();
    let _ = fresh.decode(&key.data[..10]); // error or concealed frame; must not crash
    // The decoder still works afterwards.
    let mut decoder = Vp8Decoder::new().unwrap();
    assert!(decoder.decode(&key.data).unwrap().is_some());
}
