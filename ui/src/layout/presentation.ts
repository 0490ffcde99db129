// Presentation layout: one tile on a large stage, everyone else in a strip beside or below it.
// Pure (no DOM), unit-tested like grid.ts (presentation.test.ts).

import type { Rect } from "./grid";

/** What `pickStage` needs to know about a tile. */
export interface StageCandidate {
  key: string;
  /** A shared screen (not a person's camera). */
  screen: boolean;
}

/**
 * The tile on the stage, or null for the grid: a pinned tile that still exists wins; else the
 * newest screen share (the last screen in `tiles`, which lists them in the order they came).
 */
export function pickStage(tiles: readonly StageCandidate[], pinned: string | null): string | null {
  if (pinned !== null && tiles.some((t) => t.key === pinned)) return pinned;
  for (let i = tiles.length - 1; i >= 0; i--) {
    if (tiles[i]!.screen) return tiles[i]!.key;
  }
  return null;
}

export interface PresentationOptions {
  /** Aspect (width / height) the stage tile is fitted to; null: the whole stage area. */
  stageAspect?: number | null;
  /** Height of a strip tile at most, in CSS pixels (strip tiles are 16:9). */
  stripMax?: number;
  /** Full-window: the stage takes the whole area, no strip. */
  full?: boolean;
}

export interface PresentationLayout {
  stage: Rect;
  /** One rect per strip tile that fits, in order; the rest are not shown (see `more`). */
  strip: Rect[];
  /** Where the strip is: "none" with no strip tiles or in full-window. */
  side: "right" | "bottom" | "none";
  /** The "+N" tile standing for the strip tiles that do not fit, or null when all fit. */
  more: { rect: Rect; count: number } | null;
}

const STRIP_ASPECT = 16 / 9;
/** The strip takes at most this share of the width (right) or height (bottom). */
const STRIP_SHARE = 0.25;

/**
 * Lays out a stage and `nStrip` strip tiles in a `width`×`height` area with `gap` between them.
 * Tries the strip at the bottom and on the right and keeps the one that hides fewer strip tiles,
 * then the larger stage (bottom on a tie).
 * Strip tiles are 16:9, centred along the strip; when they do not all fit, the last place
 * shows "+N". Positions are whole CSS pixels.
 */
export function presentationLayout(
  nStrip: number,
  width: number,
  height: number,
  gap: number,
  options: PresentationOptions = {},
): PresentationLayout {
  const { stageAspect = 16 / 9, stripMax = 160, full = false } = options;
  const empty: Rect = { x: 0, y: 0, w: 0, h: 0 };
  if (width <= 0 || height <= 0) return { stage: empty, strip: [], side: "none", more: null };
  const whole: Rect = { x: 0, y: 0, w: Math.floor(width), h: Math.floor(height) };
  if (full) return { stage: whole, strip: [], side: "none", more: null };
  if (nStrip <= 0) return { stage: fit(whole, stageAspect), strip: [], side: "none", more: null };

  const bottom = stripAt("bottom", nStrip, width, height, gap, stripMax, stageAspect);
  const right = stripAt("right", nStrip, width, height, gap, stripMax, stageAspect);
  const hidden = (l: PresentationLayout) => l.more?.count ?? 0;
  if (hidden(right) !== hidden(bottom)) return hidden(right) < hidden(bottom) ? right : bottom;
  return area(right.stage) > area(bottom.stage) ? right : bottom;
}

function stripAt(
  side: "right" | "bottom",
  n: number,
  width: number,
  height: number,
  gap: number,
  stripMax: number,
  stageAspect: number | null,
): PresentationLayout {
  let tw: number;
  let th: number;
  if (side === "bottom") {
    th = Math.floor(Math.min(stripMax, height * STRIP_SHARE));
    tw = Math.floor(th * STRIP_ASPECT);
  } else {
    tw = Math.floor(Math.min(stripMax * STRIP_ASPECT, width * STRIP_SHARE));
    th = Math.floor(tw / STRIP_ASPECT);
  }
  // The length of the strip and how many tiles fit along it.
  const length = side === "bottom" ? width : height;
  const step = (side === "bottom" ? tw : th) + gap;
  const fits = tw > 0 && th > 0 ? Math.max(0, Math.floor((length + gap) / step)) : 0;
  const shown = n <= fits ? n : Math.max(0, fits - 1);
  const places = n <= fits ? n : Math.min(fits, shown + 1);
  const used = places * step - gap;
  const start = Math.floor((length - used) / 2);
  const rects: Rect[] = [];
  for (let i = 0; i < places; i++) {
    rects.push(
      side === "bottom"
        ? { x: start + i * step, y: Math.floor(height) - th, w: tw, h: th }
        : { x: Math.floor(width) - tw, y: start + i * step, w: tw, h: th },
    );
  }
  const strip = rects.slice(0, shown);
  const more = places > shown ? { rect: rects[places - 1]!, count: n - shown } : null;
  const stageArea: Rect =
    side === "bottom"
      ? { x: 0, y: 0, w: Math.floor(width), h: Math.max(0, Math.floor(height) - th - gap) }
      : { x: 0, y: 0, w: Math.max(0, Math.floor(width) - tw - gap), h: Math.floor(height) };
  return { stage: fit(stageArea, stageAspect), strip, side, more };
}

/** The largest rect of `aspect` inside `r`, centred (all of `r` when `aspect` is null). */
function fit(r: Rect, aspect: number | null): Rect {
  if (aspect === null || aspect <= 0) return r;
  const w = Math.floor(Math.min(r.w, r.h * aspect));
  const h = Math.floor(Math.min(r.h, w / aspect));
  return { x: r.x + Math.floor((r.w - w) / 2), y: r.y + Math.floor((r.h - h) / 2), w, h };
}

function area(r: Rect): number {
  return r.w * r.h;
}

/** What `stripOrder` needs to know about a strip tile. */
export interface StripCandidate {
  key: string;
  /** The person it shows; null for a shared screen (never moved for a speaker, never displaced). */
  speaker: string | null;
}

/**
 * The strip's tiles in the order they take its places, when only `shown` fit: the usual order,
 * except that a recent speaker (`recent`, most recent first) whose place is past the last shown
 * one swaps places with the last shown tile that is no recent speaker (and no screen). So the
 * people talking are in view, and since `recent` changes only when someone new starts talking,
 * tiles do not move with every loudness change.
 */
export function stripOrder<T extends StripCandidate>(tiles: readonly T[], recent: readonly string[], shown: number): T[] {
  const order = tiles.slice();
  if (shown >= order.length) return order;
  const isRecent = (t: T) => t.speaker !== null && recent.includes(t.speaker);
  for (const id of recent) {
    const hidden = order.findIndex((t, i) => i >= shown && t.speaker === id);
    if (hidden < 0) continue;
    let swap = -1;
    for (let i = Math.min(shown, order.length) - 1; i >= 0; i--) {
      const t = order[i]!;
      if (t.speaker !== null && !isRecent(t)) {
        swap = i;
        break;
      }
    }
    if (swap < 0) break;
    [order[swap], order[hidden]] = [order[hidden]!, order[swap]!];
  }
  return order;
}
