// Messages between the main thread (client.ts) and the render worker (worker.ts).

import type { TileSpec } from "./protocol";

/** What `window.__vrTest.probe` returns (docs/desktop.md, "UI test hooks"). */
export interface ProbeResult {
  /** Frames drawn in the tile since it was attached. */
  drawn: number;
  /** FNV-1a hash of a 16×9 subsample of the tile's pixels (see hash.ts). */
  hash: number;
  /** Frame number (from the header) of the last frame drawn, null before the first. */
  frameNumber: number | null;
  width: number;
  height: number;
}

export type ToWorker =
  /** First message: `readback` = test hooks (pixels are read back by probes). */
  | { type: "config"; bench: boolean; readback: boolean }
  | { type: "connect"; url: string }
  /** `canvas` is null when the page cannot transfer canvases: the worker then posts bitmaps. */
  | { type: "attach"; slot: number; track: string; canvas: OffscreenCanvas | null }
  | { type: "detach"; slot: number }
  | { type: "tiles"; tiles: TileSpec[] }
  | { type: "probe"; id: number; slot: number };

export type FromWorker =
  | { type: "first-frame"; slot: number }
  | { type: "bitmap"; slot: number; bitmap: ImageBitmap }
  | { type: "probe"; id: number; result: ProbeResult | null }
  | { type: "socket"; open: boolean };
