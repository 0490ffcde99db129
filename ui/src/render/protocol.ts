// The frame socket's wire format (docs/desktop.md, "Frame socket").

/** Size of the binary header that precedes every frame's RGBA bytes. */
export const HEADER_BYTES = 40;
export const PROTOCOL_VERSION = 1;
export const FORMAT_RGBA8 = 0;
/** `flags` bit 0: the frame carries no burned-in stamp. */
export const FLAG_NO_STAMP = 1;
/** Largest tile the backend accepts, in device pixels. */
export const MAX_TILE_WIDTH = 1920;
export const MAX_TILE_HEIGHT = 1080;

export interface FrameHeader {
  version: number;
  format: number;
  slot: number;
  width: number;
  height: number;
  seq: number;
  flags: number;
  /** µs since the UNIX epoch, burned in by the publisher. */
  captureMicros: number;
  frameNumber: number;
  /** µs since the UNIX epoch, when the backend sent the frame. */
  sentMicros: number;
}

/** One tile being shown: `w`×`h` device pixels (even, ≤ 1920×1080). */
export interface TileSpec {
  slot: number;
  track: string;
  w: number;
  h: number;
}

/** Per-tile benchmark figures for one second (see docs/desktop.md). */
export interface TileStats {
  slot: number;
  track: string;
  /** Frames that arrived from the socket (the newest per animation frame is drawn). */
  received: number;
  drawn: number;
  distinct: number;
  latencies_ms: number[];
}

export type HeaderError = "short" | "version" | "format" | "size";

/**
 * Reads the header of a binary frame message and checks it against the message length.
 * u64 fields are read as BigInt and converted to Number (exact below 2^53, which covers
 * µs timestamps and frame numbers).
 */
export function parseHeader(buf: ArrayBuffer): FrameHeader | HeaderError {
  if (buf.byteLength < HEADER_BYTES) return "short";
  const v = new DataView(buf, 0, HEADER_BYTES);
  const header: FrameHeader = {
    version: v.getUint8(0),
    format: v.getUint8(1),
    slot: v.getUint16(2, true),
    width: v.getUint16(4, true),
    height: v.getUint16(6, true),
    seq: v.getUint32(8, true),
    flags: v.getUint32(12, true),
    captureMicros: Number(v.getBigUint64(16, true)),
    frameNumber: Number(v.getBigUint64(24, true)),
    sentMicros: Number(v.getBigUint64(32, true)),
  };
  if (header.version !== PROTOCOL_VERSION) return "version";
  if (header.format !== FORMAT_RGBA8) return "format";
  if (buf.byteLength !== HEADER_BYTES + header.width * header.height * 4) return "size";
  return header;
}

/** Writes a header (the inverse of {@link parseHeader}; used by tests and tools). */
export function encodeHeader(h: FrameHeader): Uint8Array {
  const bytes = new Uint8Array(HEADER_BYTES);
  const v = new DataView(bytes.buffer);
  v.setUint8(0, h.version);
  v.setUint8(1, h.format);
  v.setUint16(2, h.slot, true);
  v.setUint16(4, h.width, true);
  v.setUint16(6, h.height, true);
  v.setUint32(8, h.seq, true);
  v.setUint32(12, h.flags, true);
  v.setBigUint64(16, BigInt(h.captureMicros), true);
  v.setBigUint64(24, BigInt(h.frameNumber), true);
  v.setBigUint64(32, BigInt(h.sentMicros), true);
  return bytes;
}

export function tilesMessage(tiles: readonly TileSpec[]): string {
  return JSON.stringify({
    type: "tiles",
    tiles: tiles.map(({ slot, track, w, h }) => ({ slot, track, w, h })),
  });
}

export function creditMessage(slot: number): string {
  return JSON.stringify({ type: "credit", slot });
}

export function statsMessage(tiles: readonly TileStats[]): string {
  return JSON.stringify({ type: "stats", tiles });
}

/**
 * The size in device pixels to request for a tile shown at `cssWidth`×`cssHeight` CSS pixels:
 * scaled by the device pixel ratio, shrunk (keeping the aspect) to fit 1920×1080, rounded down
 * to even numbers, at least 2×2.
 */
export function deviceTileSize(
  cssWidth: number,
  cssHeight: number,
  devicePixelRatio: number,
): { w: number; h: number } {
  let w = Math.max(0, cssWidth * devicePixelRatio);
  let h = Math.max(0, cssHeight * devicePixelRatio);
  const shrink = Math.min(1, MAX_TILE_WIDTH / Math.max(w, 1), MAX_TILE_HEIGHT / Math.max(h, 1));
  w *= shrink;
  h *= shrink;
  // The epsilon keeps 1919.9999… (from the shrink factor) at 1920.
  const even = (x: number) => Math.max(2, Math.floor((x + 1e-6) / 2) * 2);
  return { w: Math.min(MAX_TILE_WIDTH, even(w)), h: Math.min(MAX_TILE_HEIGHT, even(h)) };
}
