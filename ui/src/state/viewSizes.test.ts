import { describe, expect, it } from "vitest";
import type { ViewSizeView } from "../bindings/ViewSizeView";
import { desiredSizes, devicePixels, diffSizes, ViewSizeReporter, type Timer, type TileView } from "./viewSizes";

/** A timer the test advances by hand. */
class FakeTimer implements Timer {
  now = 0;
  private next = 1;
  private readonly due = new Map<number, { at: number; callback: () => void }>();
  set(callback: () => void, ms: number): unknown {
    const id = this.next++;
    this.due.set(id, { at: this.now + ms, callback });
    return id;
  }
  clear(handle: unknown): void {
    this.due.delete(handle as number);
  }
  advance(ms: number): void {
    this.now += ms;
    for (const [id, d] of [...this.due]) {
      if (d.at <= this.now) {
        this.due.delete(id);
        d.callback();
      }
    }
  }
  get pending(): number {
    return this.due.size;
  }
}

const view = (trackId: string, width: number, height: number, visible = true, peerId = `p-${trackId}`): TileView => ({
  peerId,
  trackId,
  width,
  height,
  visible,
});
const size = (trackId: string, width: number, height: number, peerId = `p-${trackId}`): ViewSizeView => ({
  peerId,
  trackId,
  width,
  height,
});

function setup() {
  const timer = new FakeTimer();
  const sent: ViewSizeView[][] = [];
  const reporter = new ViewSizeReporter((c) => sent.push(c), timer, 180);
  return { timer, sent, reporter };
}

describe("devicePixels", () => {
  it("scales CSS pixels by the ratio and rounds; an empty side is 0×0", () => {
    expect(devicePixels(320, 180, 2)).toEqual({ width: 640, height: 360 });
    expect(devicePixels(100.4, 56.2, 1.25)).toEqual({ width: 126, height: 70 });
    expect(devicePixels(320, 0, 2)).toEqual({ width: 0, height: 0 });
    expect(devicePixels(320, 180, 0)).toEqual({ width: 320, height: 180 });
    expect(devicePixels(-5, 10, 1)).toEqual({ width: 0, height: 0 });
  });
});

describe("desiredSizes", () => {
  it("takes the largest tile per track, 0×0 for tracks not visible, all 0×0 while the window is hidden", () => {
    const views = [view("t1", 320, 180), view("t1", 1280, 720), view("t2", 640, 360, false), view("t3", 0, 0)];
    const d = desiredSizes(views, true);
    expect(d.get("t1")).toEqual(size("t1", 1280, 720));
    expect(d.get("t2")).toEqual(size("t2", 0, 0));
    expect(d.get("t3")).toEqual(size("t3", 0, 0));
    const hidden = desiredSizes(views, false);
    expect([...hidden.values()].every((v) => v.width === 0 && v.height === 0)).toBe(true);
  });
});

describe("diffSizes", () => {
  it("sends new and changed sizes, 0×0 for tracks no tile shows, nothing for the unchanged", () => {
    const sent = new Map([
      ["a", size("a", 640, 360)],
      ["b", size("b", 320, 180)],
      ["c", size("c", 0, 0)],
      ["gone", size("gone", 320, 180)],
    ]);
    const desired = new Map([
      ["a", size("a", 640, 360)],
      ["b", size("b", 480, 270)],
      ["c", size("c", 0, 0)],
      ["new", size("new", 160, 90)],
    ]);
    expect(diffSizes(sent, desired)).toEqual([size("b", 480, 270), size("gone", 0, 0), size("new", 160, 90)]);
    expect(diffSizes(desired, desired)).toEqual([]);
  });
});

describe("ViewSizeReporter", () => {
  it("debounces layout changes and sends only the last size", () => {
    const { timer, sent, reporter } = setup();
    reporter.report("tile-1", view("t1", 100, 56));
    timer.advance(100);
    reporter.report("tile-1", view("t1", 200, 112));
    timer.advance(100);
    reporter.report("tile-1", view("t1", 640, 360));
    reporter.report("tile-2", view("t2", 320, 180));
    timer.advance(179);
    expect(sent).toEqual([]);
    timer.advance(1);
    expect(sent).toEqual([[size("t1", 640, 360), size("t2", 320, 180)]]);
    // The same report again: nothing scheduled, nothing sent.
    reporter.report("tile-1", view("t1", 640, 360));
    expect(timer.pending).toBe(0);
    timer.advance(1000);
    expect(sent).toHaveLength(1);
  });

  it("a size that changes and changes back sends nothing", () => {
    const { timer, sent, reporter } = setup();
    reporter.report("k", view("t1", 640, 360));
    timer.advance(200);
    reporter.report("k", view("t1", 641, 360));
    reporter.report("k", view("t1", 640, 360));
    timer.advance(200);
    expect(sent).toEqual([[size("t1", 640, 360)]]);
  });

  it("off screen is 0×0 and back on screen restores the size", () => {
    const { timer, sent, reporter } = setup();
    reporter.report("k", view("t1", 640, 360));
    timer.advance(200);
    reporter.report("k", view("t1", 640, 360, false));
    timer.advance(200);
    reporter.report("k", view("t1", 640, 360, true));
    timer.advance(200);
    expect(sent).toEqual([[size("t1", 640, 360)], [size("t1", 0, 0)], [size("t1", 640, 360)]]);
  });

  it("a hidden window pauses every video at once and restores them when shown", () => {
    const { timer, sent, reporter } = setup();
    reporter.report("a", view("t1", 640, 360));
    reporter.report("b", view("t2", 320, 180, false));
    timer.advance(200);
    sent.length = 0;
    reporter.setWindowVisible(false);
    // Only t1 changes (t2 was off screen already), without waiting for the debounce.
    expect(sent).toEqual([[size("t1", 0, 0)]]);
    reporter.setWindowVisible(false);
    reporter.report("a", view("t1", 800, 450));
    timer.advance(200);
    expect(sent).toHaveLength(1);
    reporter.setWindowVisible(true);
    expect(sent).toEqual([[size("t1", 0, 0)], [size("t1", 800, 450)]]);
  });

  it("a tile that goes says 0×0 once, then forgets the track", () => {
    const { timer, sent, reporter } = setup();
    reporter.report("k", view("t1", 640, 360));
    timer.advance(200);
    reporter.remove("k");
    timer.advance(200);
    expect(sent).toEqual([[size("t1", 640, 360)], [size("t1", 0, 0)]]);
    reporter.flush();
    expect(sent).toHaveLength(2);
    // The same track shown again later is told again.
    reporter.report("k2", view("t1", 320, 180));
    timer.advance(200);
    expect(sent[2]).toEqual([size("t1", 320, 180)]);
  });

  it("a track moving from one tile to another (strip → stage) sends one change", () => {
    const { timer, sent, reporter } = setup();
    reporter.report("strip", view("t1", 284, 160));
    timer.advance(200);
    reporter.remove("strip");
    reporter.report("stage", view("t1", 1280, 720));
    timer.advance(200);
    expect(sent).toEqual([[size("t1", 284, 160)], [size("t1", 1280, 720)]]);
  });

  it("reset forgets what was told: a new room is told everything", () => {
    const { timer, sent, reporter } = setup();
    reporter.report("k", view("t1", 640, 360));
    timer.advance(200);
    reporter.report("k", view("t1", 320, 180));
    reporter.reset();
    timer.advance(1000);
    expect(sent).toHaveLength(1);
    reporter.flush();
    expect(sent[1]).toEqual([size("t1", 320, 180)]);
  });
});
