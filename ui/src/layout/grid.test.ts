import { describe, expect, it } from "vitest";
import { gridLayout, type Rect } from "./grid";

const overlaps = (a: Rect, b: Rect) =>
  a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

function checkInside(tiles: Rect[], width: number, height: number) {
  for (const t of tiles) {
    expect(t.x).toBeGreaterThanOrEqual(0);
    expect(t.y).toBeGreaterThanOrEqual(0);
    expect(t.x + t.w).toBeLessThanOrEqual(width);
    expect(t.y + t.h).toBeLessThanOrEqual(height);
  }
  for (let i = 0; i < tiles.length; i++)
    for (let j = i + 1; j < tiles.length; j++) expect(overlaps(tiles[i]!, tiles[j]!)).toBe(false);
}

describe("gridLayout", () => {
  const [W, H, GAP] = [1280, 720, 8];

  it.each([
    [1, 1, 1],
    [2, 2, 1],
    [4, 2, 2],
    [9, 3, 3],
    [16, 4, 4],
  ])("%i tiles in a 16:9 window → %i×%i", (n, columns, rows) => {
    const g = gridLayout(n, W, H, GAP);
    expect([g.columns, g.rows]).toEqual([columns, rows]);
    expect(g.tiles).toHaveLength(n);
    checkInside(g.tiles, W, H);
  });

  it("fills a single tile's width or height", () => {
    const g = gridLayout(1, W, H, GAP);
    expect(g.tiles[0]).toEqual({ x: 0, y: 0, w: 1280, h: 720 });
    // A square window: full width, centred vertically.
    const sq = gridLayout(1, 800, 800, GAP);
    expect(sq.tileWidth).toBe(800);
    expect(sq.tileHeight).toBe(450);
    expect(sq.tiles[0]!.y).toBe(175);
  });

  it("keeps tiles 16:9", () => {
    for (const n of [1, 2, 3, 5, 7, 12]) {
      const g = gridLayout(n, W, H, GAP);
      expect(Math.abs(g.tileWidth / g.tileHeight - 16 / 9)).toBeLessThan(0.02);
    }
  });

  it("stacks two tiles in a tall window", () => {
    const g = gridLayout(2, 600, 900, GAP);
    expect([g.columns, g.rows]).toEqual([1, 2]);
    checkInside(g.tiles, 600, 900);
  });

  it("uses one row in a very wide window", () => {
    const g = gridLayout(4, 3000, 400, GAP);
    expect([g.columns, g.rows]).toEqual([4, 1]);
    checkInside(g.tiles, 3000, 400);
  });

  it("centres a short last row", () => {
    const g = gridLayout(3, W, H, GAP);
    expect([g.columns, g.rows]).toEqual([2, 2]);
    const [a, b, c] = g.tiles as [Rect, Rect, Rect];
    expect(a.y).toBe(b.y);
    expect(c.y).toBeGreaterThan(a.y);
    // The third tile sits in the middle of the two above.
    expect(Math.abs(c.x + c.w / 2 - (a.x + b.x + b.w) / 2)).toBeLessThanOrEqual(1);
  });

  it("keeps the gap between neighbours", () => {
    const g = gridLayout(4, W, H, GAP);
    const [a, b] = g.tiles as [Rect, Rect];
    expect(b.x - (a.x + a.w)).toBe(GAP);
  });

  it("gives nothing for no tiles or no room", () => {
    expect(gridLayout(0, W, H, GAP).tiles).toEqual([]);
    expect(gridLayout(3, 0, 0, GAP).tiles).toEqual([]);
  });

  it("recomputes for a resized window", () => {
    const small = gridLayout(4, 640, 360, GAP);
    const big = gridLayout(4, 1920, 1080, GAP);
    expect(big.tileWidth).toBeGreaterThan(small.tileWidth * 2.5);
  });
});
