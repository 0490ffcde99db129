// The lobby's values in a browser (pure over Storage-like objects; settings.test.ts). Name,
// last room, devices and camera/microphone choices live in localStorage; the server is the
// page's origin and is not stored. An invitation token lives in sessionStorage, per room: it
// survives a reload of the tab that opened the invite link, but not the tab (a token may carry
// the moderator grant, and localStorage keeps things for ever).

import type { Settings } from "../../bindings/Settings";
import type { Route } from "./routing";

export const SETTINGS_KEY = "videoroom.settings";
export const INVITE_KEY = "videoroom.invite";

/** The part of `Storage` used here. */
export interface KeyValue {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

type Stored = Omit<Settings, "serverUrl" | "token">;

function defaults(): Stored {
  return { room: "", name: "", camera: null, microphone: null, speaker: null, cameraOn: true, micOn: true };
}

function readJson(storage: KeyValue, key: string): Record<string, unknown> | null {
  try {
    const text = storage.getItem(key);
    if (text === null) return null;
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

const str = (v: unknown, fallback: string) => (typeof v === "string" ? v : fallback);
const optStr = (v: unknown) => (typeof v === "string" && v !== "" ? v : null);
const bool = (v: unknown, fallback: boolean) => (typeof v === "boolean" ? v : fallback);

/** The remembered values (defaults for anything missing or broken). */
export function loadStored(storage: KeyValue): Stored {
  const d = defaults();
  const v = readJson(storage, SETTINGS_KEY);
  if (v === null) return d;
  return {
    room: str(v.room, d.room),
    name: str(v.name, d.name),
    camera: optStr(v.camera),
    microphone: optStr(v.microphone),
    speaker: optStr(v.speaker),
    cameraOn: bool(v.cameraOn, d.cameraOn),
    micOn: bool(v.micOn, d.micOn),
  };
}

/** The token kept for `room` in this tab, if any. */
export function loadInvite(session: KeyValue, room: string): string | null {
  const v = readJson(session, INVITE_KEY);
  if (v === null || typeof v.token !== "string" || v.room !== room) return null;
  return v.token;
}

/**
 * The lobby's values at start-up: remembered ones, the room of the address over the last
 * room, the invitation of the address (kept for this tab) or the one kept for that room.
 */
export function startupSettings(storage: KeyValue, session: KeyValue, route: Route, serverUrl: string): Settings {
  const stored = loadStored(storage);
  const room = route.room ?? stored.room;
  if (route.token !== null) saveInvite(session, room, route.token);
  const token = route.token ?? (room ? loadInvite(session, room) : null);
  return { ...stored, room, serverUrl, token };
}

/** Remembers `settings`: most of it in `storage`, the token in `session`. */
export function saveSettings(storage: KeyValue, session: KeyValue, settings: Settings): void {
  const { serverUrl: _server, token, ...stored } = settings;
  storage.setItem(SETTINGS_KEY, JSON.stringify(stored));
  if (token) saveInvite(session, settings.room, token);
  else session.removeItem(INVITE_KEY);
}

function saveInvite(session: KeyValue, room: string, token: string): void {
  session.setItem(INVITE_KEY, JSON.stringify({ room, token }));
}
