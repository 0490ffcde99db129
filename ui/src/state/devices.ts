// Switching devices inside a room (pure; the signals and the `select_devices` call live in
// store.ts). The devices in use are the lobby values' device fields: the ones joined with,
// then whatever was last switched to, so the next join uses them too.

import type { DeviceInfo } from "../bindings/DeviceInfo";
import type { Settings } from "../bindings/Settings";

export type DeviceKind = "camera" | "microphone" | "speaker";

/** The arguments of `select_devices`: a device id each, null for the default. */
export interface DeviceChoice {
  camera: string | null;
  microphone: string | null;
  speaker: string | null;
}

/** The devices the settings name. */
export function choiceOf(settings: Settings): DeviceChoice {
  return { camera: settings.camera, microphone: settings.microphone, speaker: settings.speaker };
}

/**
 * The `select_devices` arguments for picking `id` as the `kind` device, the others as in
 * `current`; null when that is what is in use already (nothing to call).
 */
export function chooseDevice(
  current: DeviceChoice,
  kind: DeviceKind,
  id: string | null,
): DeviceChoice | null {
  if (current[kind] === id) return null;
  return { ...current, [kind]: id };
}

/** The settings with the devices of `choice` (what is saved after a switch). */
export function withDevices(settings: Settings, choice: DeviceChoice): Settings {
  return { ...settings, camera: choice.camera, microphone: choice.microphone, speaker: choice.speaker };
}

/** A `<select>` value for a device id: "" is the default (null). */
export function selectValue(id: string | null): string {
  return id ?? "";
}

/** The device id a `<select>` value stands for. */
export function parseSelectValue(value: string): string | null {
  return value === "" ? null : value;
}

export interface DeviceOption {
  value: string;
  label: string;
}

/** Label of a device in use that the last listing did not find (unplugged). */
export const MISSING_DEVICE = "Disconnected device";
/** Label of the device in use before any listing came. */
export const IN_USE_DEVICE = "Device in use";

/**
 * The options of a device `<select>`: the default first, then the devices listed, and the one
 * in use (`current`) when the listing no longer has it, so the select still shows it.
 */
export function deviceOptions(list: DeviceInfo[] | null, current: string | null): DeviceOption[] {
  const first =
    list === null ? "Looking for devices…" : list.length === 0 ? "None found" : "Default";
  const options: DeviceOption[] = [{ value: "", label: first }];
  const seen = new Set<string>([""]);
  for (const d of list ?? []) {
    if (seen.has(d.id)) continue;
    seen.add(d.id);
    options.push({ value: d.id, label: d.name || d.id });
  }
  if (current !== null && !seen.has(current)) {
    // Not listed yet (null): nothing is known about it but that it is in use.
    options.push({ value: current, label: list === null ? IN_USE_DEVICE : MISSING_DEVICE });
  }
  return options;
}
