// Benchmark bookkeeping in the render worker: per tile, draws, distinct burned-in frame
// numbers and display latencies over the current one-second window.

import type { TileStats } from "./protocol";

interface Window {
  track: string;
  drawn: number;
  frames: Set<number>;
  latencies: number[];
}

export class BenchStats {
  private tiles = new Map<number, Window>();

  /** A draw of `slot`; `stamp` is what was decoded from the drawn pixels (null if nothing). */
  recordDraw(
    slot: number,
    track: string,
    stamp: { frameNumber: number; captureMicros: number } | null,
    nowEpochMs: number,
  ): void {
    let w = this.tiles.get(slot);
    if (!w || w.track !== track) {
      w = { track, drawn: 0, frames: new Set(), latencies: [] };
      this.tiles.set(slot, w);
    }
    w.drawn++;
    if (stamp) {
      w.frames.add(stamp.frameNumber);
      w.latencies.push(round2(nowEpochMs - stamp.captureMicros / 1000));
    }
  }

  /** The figures since the last call (tiles in `slots` only, zeros if nothing was drawn). */
  take(slots: ReadonlyMap<number, string>): TileStats[] {
    const out: TileStats[] = [];
    for (const [slot, track] of slots) {
      const w = this.tiles.get(slot);
      const same = w !== undefined && w.track === track;
      out.push({
        slot,
        track,
        drawn: same ? w.drawn : 0,
        distinct: same ? w.frames.size : 0,
        latencies_ms: same ? w.latencies : [],
      });
    }
    this.tiles.clear();
    return out;
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
