// Benchmark bookkeeping in the render worker: per tile, frames received from the socket, draws,
// distinct burned-in frame numbers and display latencies over the current one-second window.

import type { TileStats } from "./protocol";

interface Window {
  track: string;
  received: number;
  drawn: number;
  frames: Set<number>;
  latencies: number[];
}

export class BenchStats {
  private tiles = new Map<number, Window>();

  /** A frame for `slot` arrived from the socket (drawn or not). */
  recordReceived(slot: number, track: string): void {
    this.window(slot, track).received++;
  }

  /** A draw of `slot`; `stamp` is what was decoded from the drawn pixels (null if nothing). */
  recordDraw(
    slot: number,
    track: string,
    stamp: { frameNumber: number; captureMicros: number } | null,
    nowEpochMs: number,
  ): void {
    const w = this.window(slot, track);
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
        received: same ? w.received : 0,
        drawn: same ? w.drawn : 0,
        distinct: same ? w.frames.size : 0,
        latencies_ms: same ? w.latencies : [],
      });
    }
    this.tiles.clear();
    return out;
  }

  private window(slot: number, track: string): Window {
    let w = this.tiles.get(slot);
    if (!w || w.track !== track) {
      w = { track, received: 0, drawn: 0, frames: new Set(), latencies: [] };
      this.tiles.set(slot, w);
    }
    return w;
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
