import { describe, expect, it } from "vitest";
import {
  HEADER_BYTES,
  creditMessage,
  deviceTileSize,
  encodeHeader,
  parseHeader,
  statsMessage,
  tilesMessage,
  type FrameHeader,
} from "./protocol";

// The same bytes are asserted on the Rust side (src-tauri frames.rs): version 1, format 0,
// slot 3, 426×240, seq 17, flags 0, capture 1700000000123456 µs, frame 42, sent 1700000000130000 µs.
const GOLDEN = [
  0x01, 0x00, 0x03, 0x00, 0xaa, 0x01, 0xf0, 0x00, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x40, 0x22, 0x20, 0x18, 0x24, 0x0a, 0x06, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0xd0, 0x3b, 0x20, 0x18, 0x24, 0x0a, 0x06, 0x00,
];
const GOLDEN_HEADER: FrameHeader = {
  version: 1,
  format: 0,
  slot: 3,
  width: 426,
  height: 240,
  seq: 17,
  flags: 0,
  captureMicros: 1700000000123456,
  frameNumber: 42,
  sentMicros: 1700000000130000,
};

function frameMessage(header: number[], width: number, height: number): ArrayBuffer {
  const buf = new Uint8Array(HEADER_BYTES + width * height * 4);
  buf.set(header, 0);
  return buf.buffer;
}

describe("frame header", () => {
  it("parses the golden bytes", () => {
    expect(GOLDEN).toHaveLength(HEADER_BYTES);
    expect(parseHeader(frameMessage(GOLDEN, 426, 240))).toEqual(GOLDEN_HEADER);
  });

  it("encodes to the golden bytes", () => {
    expect([...encodeHeader(GOLDEN_HEADER)]).toEqual(GOLDEN);
  });

  it("rejects short messages, other versions and formats, and wrong sizes", () => {
    expect(parseHeader(new ArrayBuffer(39))).toBe("short");
    const v2 = [...GOLDEN];
    v2[0] = 2;
    expect(parseHeader(frameMessage(v2, 426, 240))).toBe("version");
    const i420 = [...GOLDEN];
    i420[1] = 1;
    expect(parseHeader(frameMessage(i420, 426, 240))).toBe("format");
    expect(parseHeader(frameMessage(GOLDEN, 426, 239))).toBe("size");
  });
});

describe("socket messages", () => {
  it("writes the JSON of docs/desktop.md", () => {
    expect(JSON.parse(tilesMessage([{ slot: 0, track: "self", w: 426, h: 240 }]))).toEqual({
      type: "tiles",
      tiles: [{ slot: 0, track: "self", w: 426, h: 240 }],
    });
    expect(JSON.parse(creditMessage(3))).toEqual({ type: "credit", slot: 3 });
    const stats = [
      { slot: 1, track: "t1", received: 31, drawn: 30, distinct: 29, latencies_ms: [41.5] },
    ];
    expect(JSON.parse(statsMessage(stats))).toEqual({ type: "stats", tiles: stats });
  });
});

describe("deviceTileSize", () => {
  it("scales by the pixel ratio and rounds down to even", () => {
    expect(deviceTileSize(427.5, 240.4, 1)).toEqual({ w: 426, h: 240 });
    expect(deviceTileSize(400, 225, 2)).toEqual({ w: 800, h: 450 });
    expect(deviceTileSize(301, 169, 1.25)).toEqual({ w: 376, h: 210 });
  });

  it("fits into 1920×1080 keeping the aspect", () => {
    expect(deviceTileSize(2560, 1440, 1)).toEqual({ w: 1920, h: 1080 });
    expect(deviceTileSize(1600, 900, 2)).toEqual({ w: 1920, h: 1080 });
    expect(deviceTileSize(3000, 1000, 1)).toEqual({ w: 1920, h: 640 });
  });

  it("never asks for less than 2×2", () => {
    expect(deviceTileSize(0, 0, 1)).toEqual({ w: 2, h: 2 });
  });
});
