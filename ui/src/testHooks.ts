// `window.__vrTest` for end-to-end tests (only with AppInfo.testHooks; docs/desktop.md).

import { backend } from "./backend";
import type { ProbeResult } from "./render/messages";
import { appInfo, lobby, room } from "./state/store";
import { allTilesOf, SELF_TRACK } from "./state/room";

export interface VrTest {
  /** Pixels of the tile called `name`: a person, "self" for our own, or "Ada's screen". */
  probe(name: string): Promise<ProbeResult>;
  /** The UI store, as plain JSON. */
  state(): unknown;
  /** The media backend's statistics (browser: per received track; desktop: null). */
  stats(): Promise<unknown>;
}

declare global {
  interface Window {
    __vrTest?: VrTest;
  }
}

/** The frame track shown for `name`, or null. */
function trackFor(name: string): string | null {
  if (name === SELF_TRACK) return SELF_TRACK;
  // People and shared screens ("Ada's screen").
  const tile = allTilesOf(room.value, lobby.value.values.name).find((t) => t.name === name);
  return tile?.videoTrack ?? null;
}

export function installTestHooks(): void {
  window.__vrTest = {
    probe(name: string): Promise<ProbeResult> {
      const track = trackFor(name);
      if (track === null) return Promise.reject(new Error(`no video tile for "${name}"`));
      return backend().probe(track);
    },
    state() {
      return JSON.parse(
        JSON.stringify({ info: appInfo.value, room: room.value, lobby: lobby.value }),
      ) as unknown;
    },
    stats() {
      return backend().mediaStats();
    },
  };
}
