// A cheap fingerprint of a tile's pixels for end-to-end tests: FNV-1a (32 bit) over the RGB
// bytes of a 16×9 grid of sample points (pixel centres of a 16×9 subdivision).

export const SAMPLE_COLUMNS = 16;
export const SAMPLE_ROWS = 9;

export function fnv1aSubsample(data: ArrayLike<number>, width: number, height: number): number {
  let hash = 0x811c9dc5;
  if (width <= 0 || height <= 0) return hash;
  for (let sy = 0; sy < SAMPLE_ROWS; sy++) {
    const y = Math.min(height - 1, Math.floor(((sy + 0.5) * height) / SAMPLE_ROWS));
    for (let sx = 0; sx < SAMPLE_COLUMNS; sx++) {
      const x = Math.min(width - 1, Math.floor(((sx + 0.5) * width) / SAMPLE_COLUMNS));
      const p = (y * width + x) * 4;
      for (let c = 0; c < 3; c++) {
        hash ^= data[p + c]! & 0xff;
        hash = Math.imul(hash, 0x01000193) >>> 0;
      }
    }
  }
  return hash >>> 0;
}
