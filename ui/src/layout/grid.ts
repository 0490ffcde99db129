// Video grid: the column count that gives the largest tiles of a fixed aspect ratio.

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface GridLayout {
  columns: number;
  rows: number;
  /** Size of every tile. */
  tileWidth: number;
  tileHeight: number;
  /** One rect per tile, row by row; the grid is centred, a short last row too. */
  tiles: Rect[];
}

/**
 * Lays out `n` tiles of aspect `aspect` (width / height) in a `width`×`height` area with `gap`
 * between tiles: tries every column count and keeps the one with the largest tile (on a tie,
 * the fewer columns). Positions are whole CSS pixels.
 */
export function gridLayout(
  n: number,
  width: number,
  height: number,
  gap: number,
  aspect = 16 / 9,
): GridLayout {
  if (n <= 0 || width <= 0 || height <= 0) {
    return { columns: 0, rows: 0, tileWidth: 0, tileHeight: 0, tiles: [] };
  }
  let best = { columns: 1, rows: n, w: 0 };
  for (let columns = 1; columns <= n; columns++) {
    const rows = Math.ceil(n / columns);
    const maxW = (width - gap * (columns - 1)) / columns;
    const maxH = (height - gap * (rows - 1)) / rows;
    const w = Math.min(maxW, maxH * aspect);
    if (w > best.w + 1e-9) best = { columns, rows, w };
  }
  const tileWidth = Math.max(0, Math.floor(best.w));
  const tileHeight = Math.max(0, Math.floor(best.w / aspect));
  const { columns, rows } = best;
  const gridHeight = rows * tileHeight + (rows - 1) * gap;
  const top = Math.floor((height - gridHeight) / 2);
  const tiles: Rect[] = [];
  for (let i = 0; i < n; i++) {
    const row = Math.floor(i / columns);
    const inRow = row === rows - 1 ? n - row * columns : columns;
    const rowWidth = inRow * tileWidth + (inRow - 1) * gap;
    const left = Math.floor((width - rowWidth) / 2);
    tiles.push({
      x: left + (i % columns) * (tileWidth + gap),
      y: top + row * (tileHeight + gap),
      w: tileWidth,
      h: tileHeight,
    });
  }
  return { columns, rows, tileWidth, tileHeight, tiles };
}
