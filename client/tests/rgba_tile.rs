//! I420 → RGBA tiles: colour conversion, scaling, letterboxing and size errors.

use videoroom_client::media::I420Frame;
use videoroom_client::media::tile::{TileError, TileScaler, to_rgba_tile};

fn solid(width: u32, height: u32, y: u8, u: u8, v: u8) -> I420Frame {
    let mut f = I420Frame::black(width, height).expect("frame");
    let (py, pu, pv) = f.planes_mut();
    py.fill(y);
    pu.fill(u);
    pv.fill(v);
    f
}

fn assert_near(got: [u8; 4], want: [u8; 4], tol: u8, what: &str) {
    for (g, w) in got.iter().zip(want) {
        assert!(
            g.abs_diff(w) <= tol,
            "{what}: got {got:?}, want {want:?} ±{tol}"
        );
    }
}

#[test]
fn bt601_red_converts_to_red() {
    let tile = to_rgba_tile(&solid(64, 48, 81, 90, 240), 64, 48).unwrap();
    assert_eq!(tile.data().len(), 64 * 48 * 4);
    for (x, y) in [(0, 0), (31, 20), (63, 47)] {
        assert_near(tile.pixel(x, y).unwrap(), [255, 0, 0, 255], 8, "red");
    }
}

#[test]
fn studio_black_and_white() {
    let black = to_rgba_tile(&solid(16, 16, 16, 128, 128), 16, 16).unwrap();
    assert_near(black.pixel(8, 8).unwrap(), [0, 0, 0, 255], 2, "black");
    let white = to_rgba_tile(&solid(16, 16, 235, 128, 128), 16, 16).unwrap();
    assert_near(white.pixel(8, 8).unwrap(), [255, 255, 255, 255], 2, "white");
}

#[test]
fn downscale_720p_to_320x180() {
    let tile = to_rgba_tile(&solid(1280, 720, 81, 90, 240), 320, 180).unwrap();
    assert_eq!((tile.width(), tile.height()), (320, 180));
    assert_eq!(tile.data().len(), 320 * 180 * 4);
    // Same aspect ratio: no bars, red right up to the corners.
    for (x, y) in [(0, 0), (319, 179), (160, 90)] {
        assert_near(tile.pixel(x, y).unwrap(), [255, 0, 0, 255], 8, "scaled red");
    }
}

#[test]
fn letterbox_640x360_into_300x300() {
    let tile = to_rgba_tile(&solid(640, 360, 235, 128, 128), 300, 300).unwrap();
    assert_eq!(tile.data().len(), 300 * 300 * 4);
    // The picture is 300x169, centred: rows 65..234. Black bars above and below.
    for y in [0, 30, 64, 235, 270, 299] {
        for x in [0, 150, 299] {
            assert_eq!(
                tile.pixel(x, y).unwrap(),
                [0, 0, 0, 255],
                "bar at ({x},{y})"
            );
        }
    }
    for y in [66, 150, 233] {
        for x in [0, 150, 299] {
            assert_near(
                tile.pixel(x, y).unwrap(),
                [255, 255, 255, 255],
                3,
                "picture",
            );
        }
    }
}

#[test]
fn pillarbox_portrait_frame() {
    let tile = to_rgba_tile(&solid(360, 640, 235, 128, 128), 300, 300).unwrap();
    assert_eq!(tile.pixel(0, 150).unwrap(), [0, 0, 0, 255]);
    assert_eq!(tile.pixel(299, 150).unwrap(), [0, 0, 0, 255]);
    assert_near(
        tile.pixel(150, 150).unwrap(),
        [255, 255, 255, 255],
        3,
        "picture",
    );
}

#[test]
fn zero_or_huge_tile_is_an_error() {
    let frame = solid(64, 48, 81, 90, 240);
    for (w, h) in [(0, 100), (100, 0), (0, 0), (20_000, 10)] {
        assert_eq!(
            to_rgba_tile(&frame, w, h).unwrap_err(),
            TileError::InvalidSize {
                width: w,
                height: h
            }
        );
    }
}

#[test]
fn scaler_reuses_buffers_across_sizes() {
    let mut scaler = TileScaler::new();
    let red = solid(1280, 720, 81, 90, 240);
    let white = solid(640, 360, 235, 128, 128);
    let tile = scaler.scale(&red, 320, 180).unwrap();
    assert_near(tile.pixel(10, 10).unwrap(), [255, 0, 0, 255], 8, "red");
    let ptr = tile.data().as_ptr();
    let tile = scaler.scale(&white, 320, 180).unwrap();
    assert_near(
        tile.pixel(10, 10).unwrap(),
        [255, 255, 255, 255],
        3,
        "white",
    );
    assert_eq!(
        tile.data().as_ptr(),
        ptr,
        "same-size tile reuses its buffer"
    );
    let tile = scaler.scale(&red, 100, 100).unwrap();
    assert_eq!(tile.data().len(), 100 * 100 * 4);
    assert_eq!(tile.pixel(50, 0).unwrap(), [0, 0, 0, 255]);
}
