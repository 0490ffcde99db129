// `window.__vrTest` for end-to-end tests (only with AppInfo.testHooks; docs/desktop.md).

import type { ProbeResult } from "./render/messages";
import { appInfo, frames, lobby, room } from "./state/store";
import { SELF_TRACK, tilesOf } from "./state/room";

export interface VrTest {
  /** Pixels of the tile of the person called `name` ("self" for our own). */
  probe(name: string): Promise<ProbeResult>;
  /** The UI store, as plain JSON. */
  state(): unknown;
}

declare global {
  interface Window {
    __vrTest?: VrTest;
  }
}

/** The frame track shown for `name`, or null. */
function trackFor(name: string): string | null {
  if (name === SELF_TRACK) return SELF_TRACK;
  const tile = tilesOf(room.value, lobby.value.values.name).find((t) => t.name === name);
  return tile?.videoTrack ?? null;
}

export function installTestHooks(): void {
  window.__vrTest = {
    async probe(name: string): Promise<ProbeResult> {
      const client = frames();
      const track = trackFor(name);
      const slot = client && track !== null ? client.slotOf(track) : null;
      if (client === null || slot === null) throw new Error(`no video tile for "${name}"`);
      const result = await client.probe(slot);
      if (!result) throw new Error(`the tile of "${name}" went away`);
      return result;
    },
    state() {
      return JSON.parse(
        JSON.stringify({ info: appInfo.value, room: room.value, lobby: lobby.value }),
      ) as unknown;
    },
  };
}
