import { describe, expect, it } from "vitest";
import { BenchStats } from "./bench";
import { fnv1aSubsample } from "./hash";

describe("BenchStats", () => {
  it("counts frames received, draws, distinct frames and latencies per tile, then starts over", () => {
    const b = new BenchStats();
    const now = 1_700_000_000_200;
    for (let i = 0; i < 4; i++) b.recordReceived(1, "t1");
    b.recordDraw(1, "t1", { frameNumber: 5, captureMicros: 1_700_000_000_150_000 }, now);
    b.recordDraw(1, "t1", { frameNumber: 5, captureMicros: 1_700_000_000_150_000 }, now + 10);
    b.recordDraw(1, "t1", null, now + 20);
    b.recordDraw(2, "t2", { frameNumber: 9, captureMicros: 1_700_000_000_180_000 }, now);
    const shown = new Map([
      [1, "t1"],
      [2, "t2"],
      [3, "self"],
    ]);
    expect(b.take(shown)).toEqual([
      { slot: 1, track: "t1", received: 4, drawn: 3, distinct: 1, latencies_ms: [50, 60] },
      { slot: 2, track: "t2", received: 0, drawn: 1, distinct: 1, latencies_ms: [20] },
      { slot: 3, track: "self", received: 0, drawn: 0, distinct: 0, latencies_ms: [] },
    ]);
    expect(b.take(shown)[0]).toMatchObject({ drawn: 0 });
  });
});

describe("fnv1aSubsample", () => {
  it("is FNV-1a over the RGB of 16×9 samples", () => {
    const black = new Uint8Array(32 * 18 * 4);
    // FNV-1a of 432 zero bytes.
    let h = 0x811c9dc5;
    for (let i = 0; i < 16 * 9 * 3; i++) h = Math.imul(h, 0x01000193) >>> 0;
    expect(fnv1aSubsample(black, 32, 18)).toBe(h);
  });

  it("changes when a sampled pixel changes, not when an unsampled one does", () => {
    const img = new Uint8Array(32 * 18 * 4);
    const base = fnv1aSubsample(img, 32, 18);
    img[(0 * 32 + 0) * 4] = 200; // (0,0) is not a sample point (samples sit at odd offsets)
    expect(fnv1aSubsample(img, 32, 18)).toBe(base);
    img[(1 * 32 + 1) * 4] = 200; // (1,1) is the first sample
    expect(fnv1aSubsample(img, 32, 18)).not.toBe(base);
  });
});
