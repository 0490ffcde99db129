// Viewer hints from one video element (state/viewSizes.ts): its content box in device pixels
// (ResizeObserver), and whether it is on screen at all (IntersectionObserver: a strip place that
// does not fit is `display: none`, a tile may be scrolled or laid out of view).

import type { RefObject } from "preact";
import { useEffect, useRef } from "preact/hooks";
import { devicePixels } from "../state/viewSizes";
import { viewSizes } from "../state/store";

let nextKey = 0;

/** Reports how large `ref`'s element shows `trackId` of `peerId` until unmounted (or `peerId` is null). */
export function useViewSize(ref: RefObject<Element>, peerId: string | null, trackId: string): void {
  const key = useRef<string>("");
  if (key.current === "") key.current = `view-${++nextKey}`;
  useEffect(() => {
    const el = ref.current;
    if (!el || peerId === null) return undefined;
    if (typeof ResizeObserver === "undefined") return undefined;
    const me = key.current;
    let width = 0;
    let height = 0;
    // Until the first intersection report: visible if it has a size.
    let visible = true;
    const report = () => viewSizes.report(me, { peerId, trackId, width, height, visible });
    const resize = new ResizeObserver((entries) => {
      const entry = entries[entries.length - 1];
      if (!entry) return;
      // Exact device pixels where the browser tells them (Chromium); else CSS × ratio.
      const exact = entry.devicePixelContentBoxSize?.[0];
      if (exact) {
        ({ width, height } = devicePixels(exact.inlineSize, exact.blockSize, 1));
      } else {
        ({ width, height } = devicePixels(entry.contentRect.width, entry.contentRect.height, window.devicePixelRatio));
      }
      report();
    });
    try {
      resize.observe(el, { box: "device-pixel-content-box" });
    } catch {
      // WebKit knows no device-pixel box.
      resize.observe(el);
    }
    let intersection: IntersectionObserver | null = null;
    if (typeof IntersectionObserver !== "undefined") {
      intersection = new IntersectionObserver((entries) => {
        const entry = entries[entries.length - 1];
        if (!entry) return;
        visible = entry.isIntersecting;
        report();
      });
      intersection.observe(el);
    }
    return () => {
      resize.disconnect();
      intersection?.disconnect();
      viewSizes.remove(me);
    };
  }, [peerId, trackId]);
}
