// Viewer hints (issue 11): how large each remote video track is shown, in device pixels, told
// to the server (`set_view_sizes`) so it forwards the smallest simulcast layer that covers the
// tile, and nothing while the tile is not shown. Tiles report what they measure
// (views/useViewSize.ts); this file aggregates the reports per track, debounces layout changes
// and sends only what changed. Pure apart from the timer it is given (viewSizes.test.ts).

import type { ViewSizeView } from "../bindings/ViewSizeView";

/** Layout changes (a resize, a tile moving, the side panel opening) settle this long first. */
export const VIEW_SIZE_DEBOUNCE_MS = 180;

/** What one tile measures of the video it shows. */
export interface TileView {
  peerId: string;
  trackId: string;
  /** Device pixels of the video's content box. */
  width: number;
  height: number;
  /** On screen (not scrolled away, not in a hidden strip place, not `display: none`). */
  visible: boolean;
}

/** A CSS size as whole device pixels; 0×0 when either side is empty. */
export function devicePixels(cssWidth: number, cssHeight: number, ratio: number): { width: number; height: number } {
  const r = Number.isFinite(ratio) && ratio > 0 ? ratio : 1;
  const width = Math.round(Math.max(0, cssWidth) * r);
  const height = Math.round(Math.max(0, cssHeight) * r);
  return width === 0 || height === 0 ? { width: 0, height: 0 } : { width, height };
}

/**
 * The size to tell per track: the largest of the tiles showing it (one track may be shown in
 * more than one place); 0×0 for a track no visible tile shows, and for every track while the
 * window is hidden or minimized.
 */
export function desiredSizes(views: Iterable<TileView>, windowVisible: boolean): Map<string, ViewSizeView> {
  const out = new Map<string, ViewSizeView>();
  for (const v of views) {
    const shown = windowVisible && v.visible && v.width > 0 && v.height > 0;
    const width = shown ? Math.round(v.width) : 0;
    const height = shown ? Math.round(v.height) : 0;
    const before = out.get(v.trackId);
    if (!before || width * height > before.width * before.height) {
      out.set(v.trackId, { peerId: v.peerId, trackId: v.trackId, width, height });
    }
  }
  return out;
}

/**
 * What to send to go from `sent` to `desired`: every track whose size is new or different,
 * and 0×0 for a track told before that no tile shows any more (its tile went, or shows
 * something else). Ordered by track id.
 */
export function diffSizes(sent: ReadonlyMap<string, ViewSizeView>, desired: ReadonlyMap<string, ViewSizeView>): ViewSizeView[] {
  const changes: ViewSizeView[] = [];
  for (const [trackId, want] of desired) {
    const had = sent.get(trackId);
    if (!had || had.width !== want.width || had.height !== want.height || had.peerId !== want.peerId) {
      changes.push(want);
    }
  }
  for (const [trackId, had] of sent) {
    if (!desired.has(trackId) && (had.width !== 0 || had.height !== 0)) {
      changes.push({ ...had, width: 0, height: 0 });
    }
  }
  return changes.sort((a, b) => (a.trackId < b.trackId ? -1 : a.trackId > b.trackId ? 1 : 0));
}

/** The timer the reporter debounces with (the real one, or a test's). */
export interface Timer {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const REAL_TIMER: Timer = {
  set: (callback, ms) => setTimeout(callback, ms),
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * Collects tiles' reports and tells the backend what changed: layout changes after
 * `debounceMs` of calm, the window's visibility at once. One instance per app
 * (`state/store.ts`); `reset` when a room ends (the next one has been told nothing).
 */
export class ViewSizeReporter {
  private readonly reports = new Map<string, TileView>();
  private sent = new Map<string, ViewSizeView>();
  private windowVisible = true;
  private pending: unknown = null;

  constructor(
    private readonly send: (changes: ViewSizeView[]) => void,
    private readonly timer: Timer = REAL_TIMER,
    private readonly debounceMs = VIEW_SIZE_DEBOUNCE_MS,
  ) {}

  /** The tile `key` shows a track at this size (or not at all); replaces its last report. */
  report(key: string, view: TileView): void {
    const before = this.reports.get(key);
    if (
      before &&
      before.trackId === view.trackId &&
      before.peerId === view.peerId &&
      before.width === view.width &&
      before.height === view.height &&
      before.visible === view.visible
    ) {
      return;
    }
    this.reports.set(key, view);
    this.schedule();
  }

  /** The tile `key` shows no video any more (unmounted, or another track). */
  remove(key: string): void {
    if (this.reports.delete(key)) this.schedule();
  }

  /** The window was hidden or minimized, or shown again: every video pauses or resumes now. */
  setWindowVisible(visible: boolean): void {
    if (visible === this.windowVisible) return;
    this.windowVisible = visible;
    this.flush();
  }

  /** Sends what changed now (a pending debounce is cancelled). */
  flush(): void {
    if (this.pending !== null) this.timer.clear(this.pending);
    this.pending = null;
    const desired = desiredSizes(this.reports.values(), this.windowVisible);
    const changes = diffSizes(this.sent, desired);
    if (changes.length === 0) return;
    // A track no tile shows is told 0×0 once, then forgotten (it may be gone for good).
    this.sent = desired;
    this.send(changes);
  }

  /** A room ended: nothing pending, nothing told (the tiles' reports stay theirs). */
  reset(): void {
    if (this.pending !== null) this.timer.clear(this.pending);
    this.pending = null;
    this.sent = new Map();
  }

  private schedule(): void {
    if (this.pending !== null) this.timer.clear(this.pending);
    this.pending = this.timer.set(() => {
      this.pending = null;
      this.flush();
    }, this.debounceMs);
  }
}
