import { describe, expect, it } from "vitest";
import type { Rect } from "./grid";
import { pickStage, presentationLayout } from "./presentation";

const overlaps = (a: Rect, b: Rect) =>
  a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

function checkInside(rects: Rect[], width: number, height: number) {
  for (const r of rects) {
    expect(r.w).toBeGreaterThan(0);
    expect(r.h).toBeGreaterThan(0);
    expect(r.x).toBeGreaterThanOrEqual(0);
    expect(r.y).toBeGreaterThanOrEqual(0);
    expect(r.x + r.w).toBeLessThanOrEqual(width);
    expect(r.y + r.h).toBeLessThanOrEqual(height);
  }
  for (let i = 0; i < rects.length; i++)
    for (let j = i + 1; j < rects.length; j++) expect(overlaps(rects[i]!, rects[j]!)).toBe(false);
}

const person = (key: string) => ({ key, screen: false });
const screen = (key: string) => ({ key, screen: true });

describe("pickStage", () => {
  it("is null (the grid) with no screen and no pin", () => {
    expect(pickStage([person("self"), person("peer:a")], null)).toBeNull();
  });

  it("takes the newest screen share", () => {
    const tiles = [person("self"), person("peer:a"), screen("screen:a"), screen("screen:b")];
    expect(pickStage(tiles, null)).toBe("screen:b");
    expect(pickStage(tiles.slice(0, 3), null)).toBe("screen:a");
  });

  it("a pinned tile wins, a screen or a person, with or without a share", () => {
    const tiles = [person("self"), person("peer:a"), screen("screen:a"), screen("screen:b")];
    expect(pickStage(tiles, "peer:a")).toBe("peer:a");
    expect(pickStage(tiles, "screen:a")).toBe("screen:a");
    expect(pickStage([person("self"), person("peer:a")], "peer:a")).toBe("peer:a");
  });

  it("ignores a pinned tile that is gone", () => {
    expect(pickStage([person("self"), screen("screen:b")], "peer:a")).toBe("screen:b");
    expect(pickStage([person("self")], "screen:a")).toBeNull();
  });
});

describe("presentationLayout", () => {
  const GAP = 10;

  it.each([
    [1280, 720, 1],
    [1280, 720, 3],
    [1920, 1080, 5],
    [800, 900, 4],
    [600, 1000, 2],
    [2560, 800, 6],
  ])("%i×%i with %i strip tiles: all inside, none overlapping", (w, h, n) => {
    const l = presentationLayout(n, w, h, GAP);
    expect(l.strip).toHaveLength(n);
    expect(l.more).toBeNull();
    checkInside([l.stage, ...l.strip], w, h);
  });

  it("gives the stage most of the area", () => {
    const l = presentationLayout(3, 1280, 720, GAP);
    expect(l.stage.w * l.stage.h).toBeGreaterThan(0.5 * 1280 * 720);
    for (const r of l.strip) expect(r.w * r.h).toBeLessThan((l.stage.w * l.stage.h) / 4);
  });

  it("puts the strip at the side that leaves the larger stage", () => {
    // A wide window: a 16:9 stage loses less beside a strip on the right.
    const wide = presentationLayout(2, 2400, 800, GAP);
    expect(wide.side).toBe("right");
    expect(wide.strip.every((r) => r.x >= wide.stage.x + wide.stage.w)).toBe(true);
    // A tall window: below.
    const tall = presentationLayout(2, 900, 1100, GAP);
    expect(tall.side).toBe("bottom");
    expect(tall.strip.every((r) => r.y >= tall.stage.y + tall.stage.h)).toBe(true);
  });

  it("fits the stage to its aspect and centres it", () => {
    const l = presentationLayout(0, 1000, 1000, GAP, { stageAspect: 16 / 9 });
    expect(l.side).toBe("none");
    expect(l.stage).toEqual({ x: 0, y: 219, w: 1000, h: 562 });
    const whole = presentationLayout(0, 1000, 1000, GAP, { stageAspect: null });
    expect(whole.stage).toEqual({ x: 0, y: 0, w: 1000, h: 1000 });
  });

  it("makes strip tiles 16:9, no taller than stripMax", () => {
    const l = presentationLayout(3, 1920, 1080, GAP, { stripMax: 120 });
    for (const r of l.strip) {
      expect(r.h).toBeLessThanOrEqual(120);
      expect(Math.abs(r.w / r.h - 16 / 9)).toBeLessThan(0.05);
    }
  });

  it("shows +N for strip tiles that do not fit", () => {
    const l = presentationLayout(20, 1280, 720, GAP);
    expect(l.more).not.toBeNull();
    expect(l.strip.length + l.more!.count).toBe(20);
    expect(l.more!.count).toBeGreaterThan(1);
    checkInside([l.stage, ...l.strip, l.more!.rect], 1280, 720);
  });

  it("full-window: the stage is the whole area, no strip", () => {
    const l = presentationLayout(4, 1280, 720, GAP, { full: true });
    expect(l).toEqual({ stage: { x: 0, y: 0, w: 1280, h: 720 }, strip: [], side: "none", more: null });
  });

  it("an empty area lays out nothing", () => {
    const l = presentationLayout(3, 0, 720, GAP);
    expect(l.strip).toEqual([]);
    expect(l.stage.w).toBe(0);
  });
});
