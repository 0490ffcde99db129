//! Picture quality: PSNR of the luma plane.

use videoroom_client::media::I420Frame;

/// Y-plane PSNR of `b` against `a` in dB (infinite when identical). Panics on a size mismatch.
pub fn psnr_y(a: &I420Frame, b: &I420Frame) -> f64 {
    assert_eq!((a.width(), a.height()), (b.width(), b.height()));
    let sse: u64 = a
        .y()
        .iter()
        .zip(b.y())
        .map(|(&x, &y)| {
            let d = i64::from(x) - i64::from(y);
            (d * d) as u64
        })
        .sum();
    if sse == 0 {
        return f64::INFINITY;
    }
    let mse = sse as f64 / a.y().len() as f64;
    10.0 * (255.0f64 * 255.0 / mse).log10()
}
