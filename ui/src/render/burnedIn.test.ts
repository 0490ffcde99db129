import { describe, expect, it } from "vitest";
import {
  CODE_COLUMNS,
  cellSize,
  crc16,
  fitPicture,
  readBurnedIn,
  readBurnedInTile,
  tileBandRows,
  type RgbaPixels,
} from "./burnedIn";

/** Test images own their bytes. */
interface Img extends RgbaPixels {
  data: Uint8ClampedArray;
}

// --- a small encoder, written from the layout in client/src/media/pattern.rs ---------------

function stampBits(frameNumber: bigint, captureMicros: bigint): boolean[] {
  const bytes = new Uint8Array(20);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, 0xa5c3);
  view.setBigUint64(2, frameNumber);
  view.setBigUint64(10, captureMicros);
  view.setUint16(18, crc16(bytes.subarray(2, 18)));
  return Array.from({ length: 160 }, (_, i) => (bytes[i >> 3]! & (0x80 >> (i & 7))) !== 0);
}

/** A source frame as the backend's RGBA conversion sees it: code cells white/black, a texture below. */
function sourceFrame(width: number, height: number, bits: boolean[]): Img {
  const data = new Uint8ClampedArray(width * height * 4);
  const cell = cellSize(width, height)!;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 4;
      let v: number;
      if (y < cell * 2 && x < cell * CODE_COLUMNS) {
        v = bits[Math.floor(y / cell) * CODE_COLUMNS + Math.floor(x / cell)] ? 255 : 0;
      } else {
        v = (x * 7 + y * 13) % 256;
      }
      data[p] = v;
      data[p + 1] = v;
      data[p + 2] = v;
      data[p + 3] = 255;
    }
  }
  return { data, width, height };
}

/** Separable triangle-filter resize (like the backend's bilinear convolution). */
function resize(src: Img, width: number, height: number): Img {
  const weights = (dst: number, srcLen: number) =>
    Array.from({ length: dst }, (_, i) => {
      const scale = srcLen / dst;
      const support = Math.max(1, scale);
      const centre = (i + 0.5) * scale;
      const taps: [number, number][] = [];
      let sum = 0;
      for (let s = Math.floor(centre - support); s <= Math.ceil(centre + support); s++) {
        if (s < 0 || s >= srcLen) continue;
        const w = Math.max(0, 1 - Math.abs(s + 0.5 - centre) / support);
        if (w > 0) {
          taps.push([s, w]);
          sum += w;
        }
      }
      return taps.map(([s, w]) => [s, w / sum] as [number, number]);
    });
  const wx = weights(width, src.width);
  const wy = weights(height, src.height);
  const tmp = new Float64Array(width * src.height * 4);
  for (let y = 0; y < src.height; y++)
    for (let x = 0; x < width; x++)
      for (const [s, w] of wx[x]!)
        for (let c = 0; c < 4; c++)
          tmp[(y * width + x) * 4 + c]! += w * src.data[(y * src.width + s) * 4 + c]!;
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 4; c++) {
        let v = 0;
        for (const [s, w] of wy[y]!) v += w * tmp[(s * width + x) * 4 + c]!;
        data[(y * width + x) * 4 + c] = Math.round(v);
      }
  return { data, width, height };
}

/** The tile the backend sends: the source fitted, centred, black bars. */
function tile(src: Img, width: number, height: number): Img {
  const r = fitPicture(src.width, src.height, width, height);
  const picture = r.width === src.width && r.height === src.height ? src : resize(src, r.width, r.height);
  const data = new Uint8ClampedArray(width * height * 4);
  for (let i = 3; i < data.length; i += 4) data[i] = 255;
  for (let y = 0; y < r.height; y++) {
    const row = picture.data.slice(y * r.width * 4, (y + 1) * r.width * 4);
    data.set(row, ((r.y + y) * width + r.x) * 4);
  }
  return { data, width, height };
}

/** Only the top `rows` rows, as the bench reads them. */
function band(p: Img, rows: number): Img {
  return { data: p.data.slice(0, p.width * rows * 4), width: p.width, height: rows };
}

const FRAME = 123_456_789;
const CAPTURE = 1_763_950_000_123_456;
const BITS = stampBits(BigInt(FRAME), BigInt(CAPTURE));
const STAMP = { frameNumber: FRAME, captureMicros: CAPTURE };

describe("burned-in stamp", () => {
  it("uses CRC-16/CCITT-FALSE", () => {
    expect(crc16(new TextEncoder().encode("123456789"))).toBe(0x29b1);
  });

  it("has the cell sizes of pattern.rs", () => {
    expect(cellSize(640, 360)).toBe(8);
    expect(cellSize(1280, 720)).toBe(16);
    expect(cellSize(426, 240)).toBe(4);
    expect(cellSize(160, 120)).toBeNull();
  });

  it("fits pictures like tile.rs", () => {
    expect(fitPicture(640, 360, 426, 240)).toEqual({ x: 0, y: 0, width: 426, height: 240 });
    expect(fitPicture(640, 480, 426, 240)).toEqual({ x: 53, y: 0, width: 320, height: 240 });
    expect(fitPicture(640, 360, 300, 300)).toEqual({ x: 0, y: 65, width: 300, height: 169 });
  });

  it("reads a native-size frame", () => {
    const src = sourceFrame(640, 360, BITS);
    expect(readBurnedIn(src, 640, 360, { x: 0, y: 0, width: 640, height: 360 })).toEqual(STAMP);
    expect(readBurnedInTile(src, 640, 360)?.stamp).toEqual(STAMP);
  });

  it.each([
    [426, 240],
    [316, 178],
    [1280, 720],
    [854, 480],
  ])("reads a 640×360 frame scaled to %i×%i from the top band only", (w, h) => {
    const t = tile(sourceFrame(640, 360, BITS), w, h);
    const rows = tileBandRows(w, h);
    expect(rows).toBeLessThan(h / 4);
    expect(readBurnedInTile(band(t, rows), w, h)).toEqual({ stamp: STAMP, source: 0 });
  });

  it("reads a pillarboxed 4:3 frame", () => {
    const t = tile(sourceFrame(640, 480, BITS), 426, 240);
    expect(readBurnedInTile(t, 426, 240)).toEqual({ stamp: STAMP, source: 1 });
  });

  it("reads a letterboxed frame in a tall tile", () => {
    const t = tile(sourceFrame(640, 360, BITS), 400, 400);
    expect(readBurnedInTile(band(t, tileBandRows(400, 400)), 400, 400)?.stamp).toEqual(STAMP);
  });

  it("rejects a corrupted code", () => {
    const src = sourceFrame(640, 360, BITS);
    // Flip one payload cell (row 0, column 40) to the opposite colour, as pattern.rs's test does.
    for (let y = 0; y < 8; y++)
      for (let x = 40 * 8; x < 41 * 8; x++) {
        const p = (y * 640 + x) * 4;
        for (let c = 0; c < 3; c++) src.data[p + c] = 255 - src.data[p + c]!;
      }
    expect(readBurnedIn(src, 640, 360, { x: 0, y: 0, width: 640, height: 360 })).toBeNull();
    expect(readBurnedInTile(tile(src, 426, 240), 426, 240)).toBeNull();
  });

  it("rejects pictures without a code", () => {
    const grey: RgbaPixels = { data: new Uint8ClampedArray(426 * 240 * 4).fill(128), width: 426, height: 240 };
    expect(readBurnedInTile(grey, 426, 240)).toBeNull();
    const black: RgbaPixels = { data: new Uint8ClampedArray(426 * 240 * 4), width: 426, height: 240 };
    expect(readBurnedInTile(black, 426, 240)).toBeNull();
  });

  it("needs the pixels to cover the code", () => {
    const t = tile(sourceFrame(640, 360, BITS), 426, 240);
    expect(readBurnedInTile(band(t, 5), 426, 240)).toBeNull();
  });
});
