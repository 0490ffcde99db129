// Viewer hints in the browser engine, as the Rust engine keeps them
// (client/src/room/remote.rs, `ViewSizes`): the size the UI last asked for per remote video
// track, kept across sessions, and what the current session has been told. Pure
// (viewSizes.test.ts): the room sends what `takeChanges` returns.

import { MAX_VIEW_SIZES, type WireViewSize } from "./wire";

interface Size {
  peerId: string;
  width: number;
  height: number;
}

export class ViewSizeBook {
  private readonly wanted = new Map<string, Size>();
  private readonly sent = new Map<string, Size>();

  /** The UI shows this track at this size (0×0: not shown); a track not known yet too. */
  set(peerId: string, trackId: string, width: number, height: number): void {
    const w = Math.max(0, Math.round(width));
    const h = Math.max(0, Math.round(height));
    // Either side 0 is hidden: both, as the protocol says.
    const hidden = w === 0 || h === 0;
    this.wanted.set(trackId, { peerId, width: hidden ? 0 : w, height: hidden ? 0 : h });
  }

  /** A remote video track was announced (again): its size is sent again. */
  trackAdded(trackId: string): void {
    this.sent.delete(trackId);
  }

  /** A remote track went: its size is forgotten. */
  trackRemoved(trackId: string): void {
    this.wanted.delete(trackId);
    this.sent.delete(trackId);
  }

  /** A new session: nothing told yet; sizes of tracks it does not announce are forgotten. */
  newSession(present: ReadonlySet<string>): void {
    this.sent.clear();
    for (const id of [...this.wanted.keys()]) if (!present.has(id)) this.wanted.delete(id);
  }

  /** What changed since the last call, in messages of at most `MAX_VIEW_SIZES`; now sent. */
  takeChanges(): WireViewSize[][] {
    const changed: WireViewSize[] = [];
    for (const [trackId, want] of this.wanted) {
      const had = this.sent.get(trackId);
      if (had && had.width === want.width && had.height === want.height && had.peerId === want.peerId) continue;
      changed.push({ peer_id: want.peerId, track_id: trackId, width: want.width, height: want.height });
      this.sent.set(trackId, want);
    }
    changed.sort((a, b) => (a.track_id < b.track_id ? -1 : a.track_id > b.track_id ? 1 : 0));
    const out: WireViewSize[][] = [];
    for (let i = 0; i < changed.length; i += MAX_VIEW_SIZES) out.push(changed.slice(i, i + MAX_VIEW_SIZES));
    return out;
  }
}
