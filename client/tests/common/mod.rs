//! Join options and picture checks shared by the engine and codec tests.

#![allow(dead_code)]

pub mod psnr;
pub mod screen;
pub mod screen_text;

use videoroom_client::media::PatternSource;
use videoroom_client::{AudioOutput, JoinOptions};

/// Media on loopback, remote audio discarded, nothing published.
pub fn loopback() -> JoinOptions {
    JoinOptions::default()
        .with_udp_addrs(vec!["127.0.0.1:0".parse().expect("address")])
        .with_audio_output(AudioOutput::Null)
}

/// [`loopback`] publishing the 640×360@30 pattern at 800 kbit/s.
pub fn with_pattern() -> JoinOptions {
    loopback().with_video(
        Box::new(PatternSource::new(640, 360, 30).expect("pattern source")),
        640,
        360,
        30,
        800,
    )
}
