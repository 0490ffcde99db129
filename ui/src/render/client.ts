// Main-thread side of video rendering: one <canvas> per tile, handed to the render worker.
//
// Each attached canvas gets a fresh slot number; its size in device pixels (from a
// ResizeObserver) goes to the worker as the tile set, which the worker forwards to the
// backend. Without `transferControlToOffscreen` the worker sends ImageBitmaps back and they
// are drawn here.

import type { FromWorker, ProbeResult, ToWorker } from "./messages";
import { deviceTileSize, type TileSpec } from "./protocol";

/** Debounce for size changes (resizing the window fires many). */
const RESIZE_DEBOUNCE_MS = 150;
/** Short delay that batches tiles appearing or disappearing together. */
const CHANGE_DELAY_MS = 16;

export interface FrameClientOptions {
  /** Bench mode: the worker decodes stamps and sends stats. */
  bench: boolean;
  /** Test hooks: the worker reads pixels back for probes. */
  readback: boolean;
}

interface Tile {
  slot: number;
  track: string;
  canvas: HTMLCanvasElement;
  /** Device pixels; 0 until measured. */
  w: number;
  h: number;
  onFirstFrame: () => void;
  /** Fallback path: the newest bitmap not drawn yet. */
  bitmap: ImageBitmap | null;
}

export interface AttachedTile {
  readonly slot: number;
  detach(): void;
}

export class FrameClient {
  private readonly worker: Worker;
  private readonly tiles = new Map<number, Tile>();
  private readonly byCanvas = new Map<Element, Tile>();
  private readonly observer: ResizeObserver;
  private readonly probes = new Map<number, (r: ProbeResult | null) => void>();
  private nextSlot = 0;
  private nextProbe = 0;
  private soonTimer: ReturnType<typeof setTimeout> | null = null;
  private debounceTimer: ReturnType<typeof setTimeout> | null = null;
  private bitmapsScheduled = false;

  constructor(options: FrameClientOptions) {
    this.worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => this.onWorkerMessage(e.data);
    this.worker.onerror = (e) => console.error("render worker failed", e.message);
    this.post({ type: "config", bench: options.bench, readback: options.readback });
    this.observer = new ResizeObserver((entries) => this.onResize(entries));
  }

  /** Opens (or re-opens) the frame socket at `url`. */
  connect(url: string): void {
    this.post({ type: "connect", url });
  }

  /** Shows `track`'s frames in `canvas` until `detach()`. A canvas can be attached once. */
  attach(canvas: HTMLCanvasElement, track: string, onFirstFrame: () => void): AttachedTile {
    const slot = this.nextSlot;
    this.nextSlot = (this.nextSlot + 1) % 0x10000;
    const tile: Tile = { slot, track, canvas, w: 0, h: 0, onFirstFrame, bitmap: null };
    this.tiles.set(slot, tile);
    this.byCanvas.set(canvas, tile);
    if (typeof canvas.transferControlToOffscreen === "function") {
      const offscreen = canvas.transferControlToOffscreen();
      this.post({ type: "attach", slot, track, canvas: offscreen }, [offscreen]);
    } else {
      this.post({ type: "attach", slot, track, canvas: null });
    }
    this.observer.observe(canvas);
    return { slot, detach: () => this.detach(slot) };
  }

  private detach(slot: number): void {
    const tile = this.tiles.get(slot);
    if (!tile) return;
    this.observer.unobserve(tile.canvas);
    this.tiles.delete(slot);
    this.byCanvas.delete(tile.canvas);
    tile.bitmap?.close();
    this.post({ type: "detach", slot });
    this.schedulePush(CHANGE_DELAY_MS);
  }

  /** The newest slot showing `track`, if any. */
  slotOf(track: string): number | null {
    let found: number | null = null;
    for (const tile of this.tiles.values()) if (tile.track === track) found = tile.slot;
    return found;
  }

  /** Asks the worker about a slot's pixels (test hooks); null if the slot is gone. */
  probe(slot: number): Promise<ProbeResult | null> {
    const id = this.nextProbe++;
    return new Promise((resolve) => {
      this.probes.set(id, resolve);
      this.post({ type: "probe", id, slot });
    });
  }

  private post(msg: ToWorker, transfer: Transferable[] = []): void {
    this.worker.postMessage(msg, transfer);
  }

  private onResize(entries: ResizeObserverEntry[]): void {
    let firstMeasure = false;
    let changed = false;
    for (const entry of entries) {
      const tile = this.byCanvas.get(entry.target);
      if (!tile) continue;
      if (entry.contentRect.width < 1 || entry.contentRect.height < 1) {
        // Hidden or not laid out yet: not requested until it has a size.
        if (tile.w !== 0) changed = true;
        tile.w = 0;
        tile.h = 0;
        continue;
      }
      const exact = entry.devicePixelContentBoxSize?.[0];
      const size = exact
        ? deviceTileSize(exact.inlineSize, exact.blockSize, 1)
        : deviceTileSize(entry.contentRect.width, entry.contentRect.height, devicePixelRatio);
      if (size.w === tile.w && size.h === tile.h) continue;
      if (tile.w === 0) firstMeasure = true;
      else changed = true;
      tile.w = size.w;
      tile.h = size.h;
    }
    if (firstMeasure) this.schedulePush(CHANGE_DELAY_MS);
    else if (changed) this.schedulePush(RESIZE_DEBOUNCE_MS, true);
  }

  /**
   * Sends the tile set soon (tiles appeared or went away) or once resizing has calmed down
   * (`debounce`). Every send carries the whole current set, so one send serves both.
   */
  private schedulePush(delay: number, debounce = false): void {
    if (debounce) {
      if (this.debounceTimer !== null) clearTimeout(this.debounceTimer);
      this.debounceTimer = setTimeout(() => this.push(), delay);
    } else if (this.soonTimer === null) {
      this.soonTimer = setTimeout(() => this.push(), delay);
    }
  }

  private push(): void {
    for (const timer of [this.soonTimer, this.debounceTimer]) if (timer !== null) clearTimeout(timer);
    this.soonTimer = null;
    this.debounceTimer = null;
    this.post({ type: "tiles", tiles: this.tileSpecs() });
  }

  private tileSpecs(): TileSpec[] {
    const specs: TileSpec[] = [];
    for (const t of this.tiles.values()) {
      if (t.w > 0 && t.h > 0) specs.push({ slot: t.slot, track: t.track, w: t.w, h: t.h });
    }
    return specs;
  }

  private onWorkerMessage(msg: FromWorker): void {
    switch (msg.type) {
      case "first-frame":
        this.tiles.get(msg.slot)?.onFirstFrame();
        break;
      case "bitmap":
        this.onBitmap(msg.slot, msg.bitmap);
        break;
      case "probe": {
        const resolve = this.probes.get(msg.id);
        this.probes.delete(msg.id);
        resolve?.(msg.result);
        break;
      }
      case "socket":
        if (!msg.open) console.warn("frame socket closed; the render worker reconnects");
        break;
    }
  }

  // --- fallback: bitmaps drawn on the main thread ------------------------------------------

  private onBitmap(slot: number, bitmap: ImageBitmap): void {
    const tile = this.tiles.get(slot);
    if (!tile) {
      bitmap.close();
      return;
    }
    tile.bitmap?.close();
    tile.bitmap = bitmap;
    if (!this.bitmapsScheduled) {
      this.bitmapsScheduled = true;
      requestAnimationFrame(() => this.drawBitmaps());
    }
  }

  private drawBitmaps(): void {
    this.bitmapsScheduled = false;
    for (const tile of this.tiles.values()) {
      const bitmap = tile.bitmap;
      if (!bitmap) continue;
      tile.bitmap = null;
      const { canvas } = tile;
      if (canvas.width !== bitmap.width) canvas.width = bitmap.width;
      if (canvas.height !== bitmap.height) canvas.height = bitmap.height;
      const renderer = canvas.getContext("bitmaprenderer");
      if (renderer) {
        renderer.transferFromImageBitmap(bitmap);
      } else {
        canvas.getContext("2d")?.drawImage(bitmap, 0, 0);
        bitmap.close();
      }
    }
  }
}
