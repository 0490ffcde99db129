// The screen picker's pure parts: the order it lists sources in and what its keys do (the
// picker's state is the room reducer's, room.ts; its actions are in screen.ts).

import type { ScreenSource } from "../bindings/ScreenSource";

/** Screens first, then windows, each in the order the backend listed them. */
export function orderSources(sources: readonly ScreenSource[]): ScreenSource[] {
  return [...sources.filter((s) => s.kind === "screen"), ...sources.filter((s) => s.kind !== "screen")];
}

/** What a key does in the picker. */
export type PickerKeyAction =
  | { type: "select"; index: number }
  | { type: "share"; index: number }
  | { type: "close" }
  | null;

/**
 * The picker's keys, over its sources in display order (`count` of them, `selected`
 * highlighted): arrows move the highlight (left/up back, right/down on, no wrap), Home and End
 * jump to the ends, Enter shares the highlighted source, Escape closes. Other keys: null (Tab
 * and the rest keep their usual meaning).
 */
export function pickerKey(key: string, selected: number, count: number): PickerKeyAction {
  const last = count - 1;
  const at = (i: number): PickerKeyAction => (count === 0 ? null : { type: "select", index: Math.min(Math.max(i, 0), last) });
  switch (key) {
    case "Escape":
      return { type: "close" };
    case "Enter":
      return count === 0 ? null : { type: "share", index: Math.min(Math.max(selected, 0), last) };
    case "ArrowLeft":
    case "ArrowUp":
      return at(selected - 1);
    case "ArrowRight":
    case "ArrowDown":
      return at(selected + 1);
    case "Home":
      return at(0);
    case "End":
      return at(last);
    default:
      return null;
  }
}

/**
 * Where Tab moves the focus inside a modal dialog with `count` focusable elements, the focus on
 * `current` (-1: on none of them, e.g. on the dialog itself): on, or back with Shift, wrapping
 * around so it never leaves the dialog. Null when there is nothing to focus.
 */
export function trapTab(count: number, current: number, backwards: boolean): number | null {
  if (count === 0) return null;
  if (current < 0) return backwards ? count - 1 : 0;
  return backwards ? (current - 1 + count) % count : (current + 1) % count;
}

/** "1920 × 1080" for a source's size. */
export function sizeText(source: Pick<ScreenSource, "width" | "height">): string {
  return `${source.width} × ${source.height}`;
}
