// Lobby form values and their checks (pure; the signals live in store.ts).

import type { DeviceInfo } from "../bindings/DeviceInfo";
import type { Devices } from "../bindings/Devices";
import type { Settings } from "../bindings/Settings";
import { invalid, type ErrorView } from "./errors";

export interface LobbyState {
  values: Settings;
  devices: Devices | null;
  /** A join is in progress. */
  joining: boolean;
  /** The last join or preview failure, or a form problem. */
  error: ErrorView | null;
}

export function defaultSettings(): Settings {
  return {
    serverUrl: "ws://127.0.0.1:8080/ws",
    room: "",
    name: "",
    camera: null,
    microphone: null,
    speaker: null,
    cameraOn: true,
    micOn: true,
    token: null,
  };
}

/** The first problem with the form, or null. Trims nothing: `cleanSettings` does. */
export function validateSettings(values: Settings): ErrorView | null {
  const url = values.serverUrl.trim();
  if (!url) return invalid("Enter the server address.", "It looks like ws://host:8080/ws.");
  if (!/^wss?:\/\/[^/\s]+/i.test(url)) {
    return invalid(
      `"${url}" is not a server address.`,
      "It starts with ws:// or wss://, e.g. ws://127.0.0.1:8080/ws.",
    );
  }
  if (!values.room.trim()) return invalid("Enter a room name.", "Everyone who uses the same name meets in the same room.");
  if (!values.name.trim()) return invalid("Enter your name.", "The others see it on your tile.");
  return null;
}

/** The values as sent to the backend: text trimmed (an empty token is none). */
export function cleanSettings(values: Settings): Settings {
  return {
    ...values,
    serverUrl: values.serverUrl.trim(),
    room: values.room.trim(),
    name: values.name.trim(),
    token: values.token?.trim() || null,
  };
}

/**
 * Remembered device ids that are no longer present fall back to the default (null). A list
 * with devices but no ids (a browser before the page may use them) cannot tell: the
 * remembered id stays.
 */
export function reconcileDevices(values: Settings, devices: Devices): Settings {
  const keep = (id: string | null, list: DeviceInfo[]) =>
    id !== null && list.some((d) => d.id === id || d.id === "") ? id : null;
  return {
    ...values,
    camera: keep(values.camera, devices.cameras),
    microphone: keep(values.microphone, devices.microphones),
    speaker: keep(values.speaker, devices.speakers),
  };
}
