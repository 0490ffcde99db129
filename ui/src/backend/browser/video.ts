// Video tiles in the browser: each view is a `<video autoplay playsinline muted>` whose
// `srcObject` is the track's media; the browser decodes (in hardware where it can) and draws.
// A track's media can change under a mounted view (a rejoin brings new receivers for the same
// track id), so views are kept per track id and re-pointed.

import { fnv1aSubsample, SAMPLE_COLUMNS, SAMPLE_ROWS } from "../../render/hash";
import type { ProbeResult } from "../../render/messages";

interface View {
  el: HTMLVideoElement;
  onFirstFrame: () => void;
  firstFrameSeen: boolean;
  /** Frames the browser handed to the compositor (requestVideoFrameCallback), if it tells. */
  frames: number;
  stopped: boolean;
}

/** `requestVideoFrameCallback`, where the browser has it. */
type FrameCallbackVideo = HTMLVideoElement & {
  requestVideoFrameCallback?: (cb: () => void) => number;
};

export class VideoSources {
  private readonly media = new Map<string, MediaStreamTrack>();
  private readonly views = new Map<string, Set<View>>();

  /** The media of `track` (null: none now). */
  set(track: string, media: MediaStreamTrack | null): void {
    if (media === null) this.media.delete(track);
    else if (this.media.get(track) === media) return;
    else this.media.set(track, media);
    for (const view of this.views.get(track) ?? []) this.show(view, media);
  }

  /** Every track but `keep` loses its media (the room ended). */
  clearExcept(keep: string): void {
    for (const track of [...this.media.keys()]) if (track !== keep) this.set(track, null);
  }

  attach(el: HTMLVideoElement, track: string, onFirstFrame: () => void): () => void {
    const view: View = { el, onFirstFrame, firstFrameSeen: false, frames: 0, stopped: false };
    el.muted = true;
    el.autoplay = true;
    el.playsInline = true;
    let set = this.views.get(track);
    if (!set) {
      set = new Set();
      this.views.set(track, set);
    }
    set.add(view);
    this.watchFrames(view);
    this.show(view, this.media.get(track) ?? null);
    return () => {
      view.stopped = true;
      set.delete(view);
      if (set.size === 0) this.views.delete(track);
      el.srcObject = null;
    };
  }

  private show(view: View, media: MediaStreamTrack | null): void {
    const current = view.el.srcObject;
    if (media === null) {
      view.el.srcObject = null;
      return;
    }
    if (current instanceof MediaStream && current.getTracks()[0] === media) return;
    view.el.srcObject = new MediaStream([media]);
    view.el.play().catch(() => {
      // Autoplay of muted video is allowed; a rejection here is a newer srcObject taking over.
    });
  }

  /** Counts presented frames; the first one with a size calls `onFirstFrame`. */
  private watchFrames(view: View): void {
    const el = view.el as FrameCallbackVideo;
    const seen = () => {
      if (view.stopped || view.firstFrameSeen || el.videoWidth === 0) return;
      view.firstFrameSeen = true;
      view.onFirstFrame();
    };
    if (typeof el.requestVideoFrameCallback === "function") {
      const onFrame = () => {
        if (view.stopped) return;
        view.frames++;
        seen();
        el.requestVideoFrameCallback!(onFrame);
      };
      el.requestVideoFrameCallback(onFrame);
    }
    el.addEventListener("loadeddata", seen);
    el.addEventListener("resize", seen);
  }

  /** Test hooks: frames shown in the newest view of `track`, a hash of its pixels, its size. */
  probe(track: string): ProbeResult {
    const views = [...(this.views.get(track) ?? [])];
    const view = views[views.length - 1];
    if (!view) throw new Error(`no video tile for track "${track}"`);
    const el = view.el;
    const quality = typeof el.getVideoPlaybackQuality === "function" ? el.getVideoPlaybackQuality() : null;
    const drawn = Math.max(view.frames, quality?.totalVideoFrames ?? 0);
    return {
      drawn,
      hash: pixelHash(el),
      frameNumber: null,
      width: el.videoWidth,
      height: el.videoHeight,
    };
  }
}

/** FNV-1a of a 16×9 subsample of what `el` shows now (render/hash.ts). */
function pixelHash(el: HTMLVideoElement): number {
  if (el.videoWidth === 0 || el.videoHeight === 0) return fnv1aSubsample([], 0, 0);
  const w = SAMPLE_COLUMNS * 8;
  const h = SAMPLE_ROWS * 8;
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  if (!ctx) return fnv1aSubsample([], 0, 0);
  ctx.drawImage(el, 0, 0, w, h);
  return fnv1aSubsample(ctx.getImageData(0, 0, w, h).data, w, h);
}
