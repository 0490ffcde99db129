//! `Y4mSource`: reads back Y4M files written with the `y4m` crate, loops, and rejects bad input.

use std::path::PathBuf;
use videoroom_client::media::y4m::{Y4mError, Y4mSource};
use videoroom_client::media::{
    I420Frame, PatternClock, PatternSource, VideoSource, read_burned_in,
};

/// A fresh file path in the system temp dir, unique to this process and test.
fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("videoroom-y4m-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Renders `count` pattern frames and writes them as a C420 Y4M file.
fn write_pattern_y4m(name: &str, width: u32, height: u32, count: u64) -> (PathBuf, Vec<I420Frame>) {
    let src = PatternSource::new(width, height, 30)
        .expect("pattern source")
        .with_clock(PatternClock::Simulated {
            start_micros: 1_000,
        });
    let frames: Vec<I420Frame> = (0..count).map(|n| src.render(n, 1_000 + n)).collect();
    let path = temp_path(name);
    let file = std::fs::File::create(&path).expect("create y4m file");
    let mut enc = y4m::encode(width as usize, height as usize, y4m::Ratio::new(30, 1))
        .with_colorspace(y4m::Colorspace::C420)
        .write_header(file)
        .expect("y4m header");
    for f in &frames {
        enc.write_frame(&y4m::Frame::new([f.y(), f.u(), f.v()], None))
            .expect("y4m frame");
    }
    (path, frames)
}

fn assert_same_pixels(got: &I420Frame, want: &I420Frame) {
    assert_eq!((got.width(), got.height()), (want.width(), want.height()));
    assert!(got.y() == want.y(), "Y plane differs");
    assert!(got.u() == want.u(), "U plane differs");
    assert!(got.v() == want.v(), "V plane differs");
}

#[test]
fn reads_back_written_frames_and_loops() {
    let (path, written) = write_pattern_y4m("pattern.y4m", 640, 360, 3);
    let mut src = Y4mSource::open(&path).unwrap();
    assert_eq!((src.width(), src.height()), (640, 360));
    assert_eq!(src.framerate(), (30, 1));
    let before = videoroom_client::media::unix_micros_now();
    let mut last_capture = 0;
    for i in 0..8u64 {
        let f = src.next_frame().unwrap();
        assert_same_pixels(&f, &written[(i % 3) as usize]);
        assert_eq!(
            f.frame_number, i,
            "frame numbers keep counting across loops"
        );
        assert!(f.capture_micros >= before && f.capture_micros >= last_capture);
        last_capture = f.capture_micros;
    }
}

#[test]
fn odd_sizes_round_trip() {
    let (path, written) = write_pattern_y4m("odd.y4m", 161, 91, 2);
    let mut src = Y4mSource::open(&path).unwrap();
    assert_eq!((src.width(), src.height()), (161, 91));
    for i in 0..4 {
        assert_same_pixels(&src.next_frame().unwrap(), &written[i % 2]);
    }
}

#[test]
fn burn_in_can_be_read_back() {
    let (path, _) = write_pattern_y4m("burn.y4m", 640, 360, 2);
    let mut src = Y4mSource::open(&path).unwrap().with_burn_in(true);
    for i in 0..3 {
        let f = src.next_frame().unwrap();
        assert_eq!(read_burned_in(&f), Some((i, f.capture_micros)));
    }
}

#[test]
fn all_420_siting_tags_are_accepted() {
    for tag in ["", " C420", " C420jpeg", " C420paldv", " C420mpeg2"] {
        let path = temp_path(&format!("tag{}.y4m", tag.trim()));
        let mut bytes = format!("YUV4MPEG2 W4 H2 F25:1{tag}\nFRAME\n").into_bytes();
        bytes.extend((0..8).map(|i| i * 10)); // Y
        bytes.extend([100, 101]); // U
        bytes.extend([200, 201]); // V
        std::fs::write(&path, bytes).unwrap();
        let mut src = Y4mSource::open(&path).unwrap();
        let f = src.next_frame().unwrap();
        assert_eq!(f.y(), &[0, 10, 20, 30, 40, 50, 60, 70]);
        assert_eq!(f.u(), &[100, 101]);
        assert_eq!(f.v(), &[200, 201]);
    }
}

#[test]
fn non_420_is_rejected_clearly() {
    for (tag, name) in [
        ("C444", "C444"),
        ("C422", "C422"),
        ("Cmono", "Cmono"),
        ("C420p10", "C420p10"),
        ("C411", "unknown"),
    ] {
        let path = temp_path(&format!("{tag}.y4m"));
        let mut bytes = format!("YUV4MPEG2 W4 H4 F30:1 {tag}\nFRAME\n").into_bytes();
        bytes.extend([128u8; 96]);
        std::fs::write(&path, bytes).unwrap();
        let err = Y4mSource::open(&path).unwrap_err();
        assert!(
            matches!(&err, Y4mError::UnsupportedColorspace { colorspace, .. } if colorspace == name),
            "{tag}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("4:2:0") && msg.contains(name), "{msg}");
    }
}

#[test]
fn garbage_is_a_bad_header() {
    let path = temp_path("garbage.y4m");
    std::fs::write(&path, b"this is not a y4m file at all\n").unwrap();
    let err = Y4mSource::open(&path).unwrap_err();
    assert!(matches!(err, Y4mError::BadHeader { .. }), "{err:?}");
    assert!(err.to_string().contains("garbage.y4m"), "{err}");
}

#[test]
fn missing_file_is_an_open_error() {
    let path = temp_path("does-not-exist.y4m");
    let err = Y4mSource::open(&path).unwrap_err();
    assert!(matches!(err, Y4mError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("does-not-exist.y4m"), "{err}");
}

#[test]
fn file_without_frames_fails_instead_of_spinning() {
    let path = temp_path("empty.y4m");
    std::fs::write(&path, b"YUV4MPEG2 W4 H4 F30:1 C420\n").unwrap();
    let mut src = Y4mSource::open(&path).unwrap();
    let err = src.next_frame().unwrap_err();
    assert!(err.to_string().contains("no complete frame"), "{err}");
}
