// How the render worker puts a frame's RGBA bytes on screen.
//
// `Canvas2DRenderer` draws into a transferred OffscreenCanvas with putImageData; that is the
// path on WebKitGTK 2.50 (no WebGL in workers there, docs/desktop-plan.md §4) and it needs no
// GPU. `BitmapRenderer` is the fallback for pages without `transferControlToOffscreen`: it
// turns frames into ImageBitmaps that the main thread draws. No WebGL renderer: WebKitGTK
// never offers WebGL in a worker, and an untested one is not worth carrying.

import type { RgbaPixels } from "./burnedIn";

export interface Renderer {
  /** Draws `width`×`height` RGBA bytes found at `offset` in `buf`. */
  draw(buf: ArrayBuffer, offset: number, width: number, height: number): void;
  /** The top `rows` rows of what was drawn last (all rows if omitted), or null if nothing yet. */
  read(rows?: number): RgbaPixels | null;
  dispose(): void;
}

export class Canvas2DRenderer implements Renderer {
  private readonly ctx: OffscreenCanvasRenderingContext2D;
  private drawn = false;

  /** Throws if the canvas has no 2D context. */
  constructor(
    private readonly canvas: OffscreenCanvas,
    readback: boolean,
  ) {
    const ctx = canvas.getContext("2d", { alpha: false, willReadFrequently: readback });
    if (!ctx) throw new Error("no 2D context on the OffscreenCanvas");
    this.ctx = ctx;
  }

  draw(buf: ArrayBuffer, offset: number, width: number, height: number): void {
    // Resizing clears the canvas, so only when the tile size changed.
    if (this.canvas.width !== width) this.canvas.width = width;
    if (this.canvas.height !== height) this.canvas.height = height;
    const pixels = new Uint8ClampedArray(buf, offset, width * height * 4);
    this.ctx.putImageData(new ImageData(pixels, width, height), 0, 0);
    this.drawn = true;
  }

  read(rows?: number): RgbaPixels | null {
    if (!this.drawn) return null;
    const { width } = this.canvas;
    const height = Math.min(rows ?? this.canvas.height, this.canvas.height);
    if (width === 0 || height === 0) return null;
    const image = this.ctx.getImageData(0, 0, width, height);
    return { data: image.data, width, height };
  }

  dispose(): void {}
}

/** Fallback: sends each frame to the main thread as an ImageBitmap (at most one in the making). */
export class BitmapRenderer implements Renderer {
  private last: RgbaPixels | null = null;
  private busy = false;
  private next: ImageData | null = null;
  private disposed = false;

  constructor(private readonly post: (bitmap: ImageBitmap) => void) {}

  draw(buf: ArrayBuffer, offset: number, width: number, height: number): void {
    const pixels = new Uint8ClampedArray(buf, offset, width * height * 4);
    this.last = { data: pixels, width, height };
    this.next = new ImageData(pixels, width, height);
    this.pump();
  }

  private pump(): void {
    if (this.busy || !this.next || this.disposed) return;
    const image = this.next;
    this.next = null;
    this.busy = true;
    createImageBitmap(image).then(
      (bitmap) => {
        this.busy = false;
        if (this.disposed) bitmap.close();
        else this.post(bitmap);
        this.pump();
      },
      (e: unknown) => {
        this.busy = false;
        console.error("createImageBitmap failed", e);
      },
    );
  }

  read(rows?: number): RgbaPixels | null {
    const last = this.last;
    if (!last) return null;
    const height = Math.min(rows ?? last.height, last.height);
    return { data: last.data, width: last.width, height };
  }

  dispose(): void {
    this.disposed = true;
    this.next = null;
  }
}
