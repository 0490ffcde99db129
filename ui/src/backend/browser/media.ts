// Cameras, microphones and speakers through the browser: the device list, the constraints
// (the desktop's 640×360 at 30 fps), and opening a device with an actionable error.

import type { DeviceInfo } from "../../bindings/DeviceInfo";
import type { Devices } from "../../bindings/Devices";
import type { UiError } from "../../bindings/UiError";
import { mediaError, INSECURE_CONTEXT, type MediaDevice } from "./errors";

/** The part of `MediaDeviceInfo` used here. */
export interface DeviceEntry {
  kind: string;
  deviceId: string;
  label: string;
  groupId?: string;
}

/**
 * The device lists of `entries` (from `enumerateDevices`). Before the page may use a device,
 * browsers list it without id or name: it is still listed (so "a camera exists" holds), under
 * a generic name and the id "" (the select's "Default"). The "default"/"communications"
 * aliases Chrome adds are left out: "Default" is always offered. `sinks`: whether speakers can
 * be chosen at all (`setSinkId`).
 */
export function devicesFrom(entries: readonly DeviceEntry[], sinks: boolean): Devices {
  const list = (kind: string, generic: string): DeviceInfo[] => {
    const out: DeviceInfo[] = [];
    let n = 0;
    for (const e of entries) {
      if (e.kind !== kind) continue;
      if (e.deviceId === "default" || e.deviceId === "communications") continue;
      n++;
      out.push({ id: e.deviceId, name: e.label || `${generic} ${n}` });
    }
    return out;
  };
  return {
    cameras: list("videoinput", "Camera"),
    microphones: list("audioinput", "Microphone"),
    speakers: sinks ? list("audiooutput", "Speaker") : [],
    fake: false,
  };
}

/** Camera constraints: the desktop app's size and rate; `device` null = the default. */
export function cameraConstraints(device: string | null): MediaTrackConstraints {
  return {
    ...(device ? { deviceId: { exact: device } } : {}),
    width: { ideal: 640 },
    height: { ideal: 360 },
    frameRate: { ideal: 30 },
  };
}

/** Microphone constraints: the browser's echo cancellation and noise suppression on. */
export function microphoneConstraints(device: string | null): MediaTrackConstraints {
  return {
    ...(device ? { deviceId: { exact: device } } : {}),
    echoCancellation: true,
    noiseSuppression: true,
    autoGainControl: true,
  };
}

/** A device opened, or why not (`missing`: there is no such device at all). */
export type Opened = { track: MediaStreamTrack } | { error: UiError; missing: boolean };

/**
 * Opens `device` (null: the default) of `kind`. A remembered device that is gone
 * (OverconstrainedError, NotFoundError for an exact id) falls back to the default.
 */
export async function openDevice(kind: MediaDevice, device: string | null): Promise<Opened> {
  const md = typeof navigator !== "undefined" ? navigator.mediaDevices : undefined;
  if (!md?.getUserMedia) return { error: INSECURE_CONTEXT, missing: false };
  const constraints = (id: string | null): MediaStreamConstraints =>
    kind === "camera" ? { video: cameraConstraints(id) } : { audio: microphoneConstraints(id) };
  try {
    const stream = await md.getUserMedia(constraints(device));
    const track = kind === "camera" ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0];
    if (!track) return { error: mediaError(kind, { name: "NotFoundError" }), missing: true };
    return { track };
  } catch (e) {
    const name = typeof e === "object" && e !== null && "name" in e ? String((e as { name: unknown }).name) : "";
    if (device !== null && (name === "OverconstrainedError" || name === "NotFoundError")) {
      return openDevice(kind, null);
    }
    return { error: mediaError(kind, e), missing: name === "NotFoundError" || name === "DevicesNotFoundError" };
  }
}

/** Whether speakers can be chosen (`HTMLMediaElement.setSinkId`). */
export function canChooseSpeaker(): boolean {
  return typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;
}

/** Stops `track` if there is one (the camera light goes off once every user stopped it). */
export function stop(track: MediaStreamTrack | null | undefined): void {
  if (track && track.readyState !== "ended") track.stop();
}
