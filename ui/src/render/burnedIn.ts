// Reads the frame number and capture time that `PatternSource` burns into the top of its
// frames (TS port of `read_burned_in` in client/src/media/pattern.rs), from the RGBA pixels
// of a tile where the picture may be scaled and letterboxed.
//
// Code layout (in source pixels): two rows of 80 square cells of `floor(srcWidth / 80) & ~1`
// pixels from the picture's top-left corner, 160 bits, most significant first: sync word
// 0xA5C3, u64 frame number, u64 capture time (µs since the UNIX epoch), CRC-16/CCITT-FALSE over
// the 16 payload bytes. White cell = 1, black cell = 0.

export const CODE_COLUMNS = 80;
export const CODE_ROWS = 2;
export const MIN_CELL = 4;
export const SYNC = 0xa5c3;
const BITS = CODE_COLUMNS * CODE_ROWS;

export interface Stamp {
  frameNumber: number;
  captureMicros: number;
}

/** Where the source picture sits inside the tile, in tile pixels. */
export interface PictureRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** RGBA pixels, row after row, `width * 4` bytes per row (e.g. `ImageData`). */
export interface RgbaPixels {
  data: ArrayLike<number>;
  width: number;
  height: number;
}

/** Cell size in source pixels for a `width`×`height` frame, or null if it carries no code. */
export function cellSize(width: number, height: number): number | null {
  const cell = Math.floor(width / CODE_COLUMNS) & ~1;
  return cell >= MIN_CELL && cell * CODE_ROWS <= height ? cell : null;
}

/** CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor). */
export function crc16(data: ArrayLike<number>): number {
  let crc = 0xffff;
  for (let i = 0; i < data.length; i++) {
    crc ^= (data[i]! & 0xff) << 8;
    for (let b = 0; b < 8; b++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

/**
 * Where a `srcWidth`×`srcHeight` picture lands in a `tileWidth`×`tileHeight` tile: fitted
 * keeping its aspect and centred (same rounding as `fit` in client/src/media/tile.rs).
 */
export function fitPicture(
  srcWidth: number,
  srcHeight: number,
  tileWidth: number,
  tileHeight: number,
): PictureRect {
  let w: number;
  let h: number;
  if (tileWidth * srcHeight <= tileHeight * srcWidth) {
    w = tileWidth;
    h = Math.floor((srcHeight * tileWidth + Math.floor(srcWidth / 2)) / srcWidth);
  } else {
    w = Math.floor((srcWidth * tileHeight + Math.floor(srcHeight / 2)) / srcHeight);
    h = tileHeight;
  }
  w = Math.min(Math.max(w, 1), tileWidth);
  h = Math.min(Math.max(h, 1), tileHeight);
  return {
    x: Math.floor((tileWidth - w) / 2),
    y: Math.floor((tileHeight - h) / 2),
    width: w,
    height: h,
  };
}

/** Rows from the top of the tile that {@link readBurnedIn} needs for this picture. */
export function codeBandRows(srcWidth: number, srcHeight: number, picture: PictureRect): number {
  const cell = cellSize(srcWidth, srcHeight);
  if (cell === null) return 0;
  const scaled = (cell * picture.width) / srcWidth;
  return Math.ceil(picture.y + scaled * CODE_ROWS) + 1;
}

/**
 * Decodes the stamp of a `srcWidth`×`srcHeight` source shown at `picture` within `pixels`.
 * Each cell is judged by the mean luma (BT.601) of the pixels whose centres lie in its inner
 * half, against the midpoint between black and white. Returns null if the source is too small
 * to carry a code, the pixels do not cover the code, or the sync word or checksum is wrong.
 */
export function readBurnedIn(
  pixels: RgbaPixels,
  srcWidth: number,
  srcHeight: number,
  picture: PictureRect,
): Stamp | null {
  const cell = cellSize(srcWidth, srcHeight);
  if (cell === null) return null;
  const scaled = (cell * picture.width) / srcWidth;
  if (scaled < 1) return null;
  const { data, width, height } = pixels;
  if (data.length < width * height * 4) return null;
  if (picture.x + scaled * CODE_COLUMNS > width + 0.5) return null;
  if (picture.y + scaled * CODE_ROWS > height + 0.5) return null;

  const bytes = new Uint8Array(BITS / 8);
  for (let i = 0; i < BITS; i++) {
    const col = i % CODE_COLUMNS;
    const row = Math.floor(i / CODE_COLUMNS);
    const [x0, x1] = innerPixels(picture.x + col * scaled, scaled, width);
    const [y0, y1] = innerPixels(picture.y + row * scaled, scaled, height);
    let sum = 0;
    let count = 0;
    for (let y = y0; y < y1; y++) {
      let p = (y * width + x0) * 4;
      for (let x = x0; x < x1; x++, p += 4) {
        sum += 299 * data[p]! + 587 * data[p + 1]! + 114 * data[p + 2]!;
        count++;
      }
    }
    // Luma is scaled by 1000; the midpoint of 0 and 255 is 127.5.
    if (sum * 2 > count * 255_000) bytes[i >> 3]! |= 0x80 >> (i & 7);
  }
  return decodeBytes(bytes);
}

/**
 * Pixel index range [start, end) whose centres fall in the inner half of a cell starting at
 * `start` (tile pixels, fractional) of `size` pixels; at least the pixel under the cell centre.
 */
function innerPixels(start: number, size: number, limit: number): [number, number] {
  const a = start + size / 4;
  const b = start + size - size / 4;
  let first = Math.ceil(a - 0.5);
  let last = Math.ceil(b - 0.5); // exclusive
  if (last <= first) {
    first = Math.floor(start + size / 2);
    last = first + 1;
  }
  return [Math.max(0, Math.min(first, limit - 1)), Math.max(1, Math.min(last, limit))];
}

function decodeBytes(bytes: Uint8Array): Stamp | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(0) !== SYNC) return null;
  if (view.getUint16(18) !== crc16(bytes.subarray(2, 18))) return null;
  return {
    frameNumber: Number(view.getBigUint64(2)),
    captureMicros: Number(view.getBigUint64(10)),
  };
}

/** Source sizes tried when the real one is unknown (the header does not carry it). */
export const COMMON_SOURCES: readonly (readonly [number, number])[] = [
  [640, 360], // 16:9, cell = width / 80 (also 1280×720, 1920×1080, 960×540 …)
  [640, 480], // 4:3 (also 320×240, 1280×960 …)
];

/**
 * Decodes the stamp of a tile of `tileWidth`×`tileHeight` whose source size is unknown:
 * tries each candidate source, fitted into the tile as the backend does. `pixels` may hold
 * only the top rows of the tile (see {@link codeBandRows}). Returns the stamp and the index of
 * the candidate that matched; the checksum makes a false match practically impossible.
 */
export function readBurnedInTile(
  pixels: RgbaPixels,
  tileWidth: number,
  tileHeight: number,
  sources: readonly (readonly [number, number])[] = COMMON_SOURCES,
  firstTry = 0,
): { stamp: Stamp; source: number } | null {
  for (let k = 0; k < sources.length; k++) {
    const index = (firstTry + k) % sources.length;
    const [sw, sh] = sources[index]!;
    const stamp = readBurnedIn(pixels, sw, sh, fitPicture(sw, sh, tileWidth, tileHeight));
    if (stamp) return { stamp, source: index };
  }
  return null;
}

/** Rows needed to try every candidate in {@link readBurnedInTile}. */
export function tileBandRows(
  tileWidth: number,
  tileHeight: number,
  sources: readonly (readonly [number, number])[] = COMMON_SOURCES,
): number {
  let rows = 0;
  for (const [sw, sh] of sources) {
    rows = Math.max(rows, codeBandRows(sw, sh, fitPicture(sw, sh, tileWidth, tileHeight)));
  }
  return Math.min(rows, tileHeight);
}
