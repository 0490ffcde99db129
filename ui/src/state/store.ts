// The app's state as signals around the pure cores (room.ts, lobby.ts), and the actions that
// talk to the backend. Button states always come from what the backend returns or emits.

import { signal } from "@preact/signals";
import { backend, loadBackend } from "../backend";
import type { AppInfo } from "../bindings/AppInfo";
import type { Joined } from "../bindings/Joined";
import type { LocalState } from "../bindings/LocalState";
import type { Settings } from "../bindings/Settings";
import { choiceOf, chooseDevice, withDevices, type DeviceChoice, type DeviceKind } from "./devices";
import { describeError, toUiError, type ErrorView } from "./errors";
import {
  cleanSettings,
  defaultSettings,
  reconcileDevices,
  validateSettings,
  type LobbyState,
} from "./lobby";
import { editServerOrRoom, parseInvite } from "./invite";
import { applyEvent, initialRoomState, type RoomAction, type RoomState } from "./room";
import { ViewSizeReporter } from "./viewSizes";

const SAVE_DEBOUNCE_MS = 500;

export const appInfo = signal<AppInfo | null>(null);
/** Set when the app cannot work at all (startup failed). */
export const fatal = signal<ErrorView | null>(null);
export const room = signal<RoomState>(initialRoomState());
export const lobby = signal<LobbyState>({
  values: defaultSettings(),
  devices: null,
  joining: false,
  error: null,
});
/** Commands in flight, per control (the buttons wait for the backend's answer). */
export const pending = signal({ mic: false, camera: false, leave: false });
/** The devices a `select_devices` in flight asks for (the room's device selects show them). */
export const switchingDevices = signal<DeviceChoice | null>(null);

/**
 * Viewer hints: the tiles' shown sizes, sent to the backend (only changes). Outside a room
 * there is nothing to tell; a failure (the room just ended) is of no consequence.
 */
export const viewSizes = new ViewSizeReporter((views) => {
  if (room.value.view !== "room") return;
  backend()
    .setViewSizes(views)
    .catch((e: unknown) => console.debug("videoroom: view sizes not sent:", e));
});

export function dispatch(action: RoomAction): void {
  const before = room.value;
  const next = applyEvent(before, action);
  if (next === before) return;
  // A room ended (or a new one began): the next room has been told no sizes.
  if (before.view !== next.view) viewSizes.reset();
  room.value = next;
}

/**
 * Starts the app: the media backend (the desktop's or the browser's), its events, app info,
 * remembered settings, devices.
 */
export async function start(): Promise<void> {
  try {
    const b = await loadBackend();
    const { info, settings, lobbyError } = await b.start(dispatch);
    room.value = initialRoomState({ cameraOn: settings.cameraOn, micOn: settings.micOn });
    lobby.value = { ...lobby.value, values: settings, error: lobbyError ?? null };
    appInfo.value = info;
    // Devices plugged in, or (in a browser) named once the page may use them.
    b.onDevicesChanged(() => void refreshDevices());
    // Hidden or minimized: every remote video is told 0×0 (paused) until the window shows.
    b.watchWindowVisible((visible) => viewSizes.setWindowVisible(visible));
  } catch (e) {
    fatal.value = describeError(toUiError(e));
    return;
  }
  if (appInfo.value?.autojoin) {
    void join();
  }
  await loadDevices();
}

async function loadDevices(): Promise<void> {
  try {
    const devices = await backend().listDevices();
    const current = lobby.value;
    lobby.value = { ...current, devices, values: reconcileDevices(current.values, devices) };
    // A remembered camera may be gone, or there may be none at all.
    syncPreview();
  } catch (e) {
    setLobbyError(describeError(toUiError(e)));
  }
}

function setLobbyError(error: ErrorView | null): void {
  lobby.value = { ...lobby.value, error };
}

// --- lobby --------------------------------------------------------------------------------

let saveTimer: ReturnType<typeof setTimeout> | null = null;

/** Changes lobby values; remembers them (debounced) and keeps the preview in step. */
export function updateLobby(patch: Partial<Settings>): void {
  const values = { ...lobby.value.values, ...patch };
  lobby.value = { ...lobby.value, values, error: null };
  if (saveTimer !== null) clearTimeout(saveTimer);
  saveTimer = setTimeout(saveSettingsNow, SAVE_DEBOUNCE_MS);
  if ("camera" in patch || "cameraOn" in patch) syncPreview();
}

/**
 * The server or room field changed to `text` (typed, or pasted into the field): an invite link
 * fills server, room and token; a different server drops the token.
 */
export function editLobbyField(field: "serverUrl" | "room", text: string, recognize = true): void {
  const { values, error } = editServerOrRoom(lobby.value.values, field, text, recognize);
  // Only what these fields decide (a patch with devices in it would restart the preview).
  updateLobby({ serverUrl: values.serverUrl, room: values.room, token: values.token });
  if (error) setLobbyError(error);
}

/**
 * Something was pasted into the server or room field. An invite link (whole or cut short)
 * replaces the field's text instead of going in at the caret (the server field is rarely
 * empty); returns whether it did, i.e. whether to prevent the default paste.
 */
export function pasteIntoLobby(field: "serverUrl" | "room", text: string): boolean {
  if (parseInvite(text).kind === "none") return false;
  editLobbyField(field, text);
  return true;
}

/** Drops the invitation from a pasted invite link. */
export function clearInvitation(): void {
  updateLobby({ token: null });
}

/** Saves the lobby values at once (a pending debounced save is part of it). */
function saveSettingsNow(): void {
  if (saveTimer !== null) clearTimeout(saveTimer);
  saveTimer = null;
  backend().saveSettings(cleanSettings(lobby.value.values)).catch((e: unknown) => {
    console.warn("could not save settings", e);
  });
}

/** The camera the preview runs with; undefined when it is stopped. */
let previewCamera: string | null | undefined = undefined;
let previewChain: Promise<void> = Promise.resolve();

/**
 * Starts, restarts or stops the lobby preview to match the form. Calls are chained so that
 * quick toggles reach the backend in order.
 */
export function syncPreview(): void {
  previewChain = previewChain.then(async () => {
    const { values, joining } = lobby.value;
    // Also without any camera listed: the backend then says, in words a person can act on,
    // that none was found (whether or not the device list arrived first).
    const want = room.value.view === "lobby" && !joining && values.cameraOn;
    try {
      if (want && previewCamera !== values.camera) {
        await backend().startPreview(values.camera);
        previewCamera = values.camera;
      } else if (!want && previewCamera !== undefined) {
        previewCamera = undefined;
        await backend().stopPreview();
      }
    } catch (e) {
      previewCamera = undefined;
      setLobbyError(describeError(toUiError(e)));
    }
  });
}

export async function join(): Promise<void> {
  if (lobby.value.joining) return;
  // An invite link typed (not pasted) and submitted with Enter is taken now.
  for (const field of ["serverUrl", "room"] as const) {
    editLobbyField(field, lobby.value.values[field]);
  }
  const current = lobby.value;
  if (current.error) return;
  const problem = validateSettings(current.values);
  if (problem) {
    setLobbyError(problem);
    return;
  }
  const settings = cleanSettings(current.values);
  lobby.value = { ...current, values: settings, joining: true, error: null };
  dispatch({ type: "ui/joining" });
  // `join` stops the preview itself.
  await previewChain;
  previewCamera = undefined;
  try {
    const joined = await backend().join(settings);
    dispatch({ type: "ui/join-result", joined, local: joinedLocal(joined, settings) });
    lobby.value = { ...lobby.value, joining: false };
  } catch (e) {
    lobby.value = {
      ...lobby.value,
      joining: false,
      error: describeError(toUiError(e), { serverUrl: settings.serverUrl }),
    };
    syncPreview();
  }
}

/**
 * The person compared the fingerprint shown with the one the server's operator gave them and
 * trusts it: the app remembers it for this server, and joins again.
 */
export async function trustCertificateAndJoin(): Promise<void> {
  const { error, values, joining } = lobby.value;
  if (joining || error?.kind !== "untrusted_certificate" || !error.fingerprint) return;
  try {
    await backend().trustCertificate(values.serverUrl.trim(), error.fingerprint);
  } catch (e) {
    setLobbyError(describeError(toUiError(e), { serverUrl: values.serverUrl }));
    return;
  }
  lobby.value = { ...lobby.value, error: null };
  await join();
}

/**
 * Our camera and microphone right after joining: the backend's (`Joined.local`) if it sent
 * them; else what was asked for, limited to the devices present, until the first `local` event.
 */
function joinedLocal(joined: Joined, settings: Settings): LocalState {
  const reported = (joined as Joined & { local?: LocalState }).local;
  if (reported) return reported;
  const devices = lobby.value.devices;
  const hasCamera = devices ? devices.cameras.length > 0 : true;
  const hasMicrophone = devices ? devices.microphones.length > 0 : true;
  return {
    hasCamera,
    hasMicrophone,
    cameraOn: settings.cameraOn && hasCamera,
    micOn: settings.micOn && hasMicrophone,
    screenOn: false,
  };
}

// --- room ---------------------------------------------------------------------------------

export async function leave(): Promise<void> {
  if (pending.value.leave) return;
  pending.value = { ...pending.value, leave: true };
  dispatch({ type: "ui/leave-requested" });
  try {
    await backend().leave();
  } catch (e) {
    const error = toUiError(e);
    // Not in a room any more is what we wanted.
    if (error.kind !== "not_in_room") console.warn("leave failed", error);
  } finally {
    pending.value = { ...pending.value, leave: false };
    dispatch({ type: "ui/left" });
  }
}

async function setDevice(which: "mic" | "camera", call: () => Promise<LocalState>): Promise<void> {
  if (pending.value[which]) return;
  pending.value = { ...pending.value, [which]: true };
  try {
    const local = await call();
    dispatch({ type: "local", ...local });
  } catch (e) {
    dispatch({ type: "error", error: toUiError(e) });
  } finally {
    pending.value = { ...pending.value, [which]: false };
  }
}

export function toggleMic(): Promise<void> {
  return setDevice("mic", () => backend().setMicrophone(!room.value.local.micOn));
}

export function toggleCamera(): Promise<void> {
  return setDevice("camera", () => backend().setCamera(!room.value.local.cameraOn));
}

let listSeq = 0;

/** Lists the devices again (the room's device panel opens: something may be plugged in). */
export async function refreshDevices(): Promise<void> {
  const seq = ++listSeq;
  try {
    const devices = await backend().listDevices();
    // The devices in use stay as they are, listed or not (the selects show missing ones).
    if (seq === listSeq) lobby.value = { ...lobby.value, devices };
  } catch (e) {
    if (seq === listSeq) dispatch({ type: "error", error: toUiError(e) });
  }
}

/**
 * Switches the `kind` device in the room to `id` (null: the default). `select_devices` gets all
 * three; on success the choice becomes the lobby's (saved), so the next join uses it too.
 */
export async function switchDevice(kind: DeviceKind, id: string | null): Promise<void> {
  if (switchingDevices.value !== null) return;
  const next = chooseDevice(choiceOf(lobby.value.values), kind, id);
  if (next === null) return;
  switchingDevices.value = next;
  try {
    const local = await backend().selectDevices(next.camera, next.microphone, next.speaker);
    // Out of the room the backend only answers with a default state: nothing to apply.
    if (room.value.view === "room") dispatch({ type: "local", ...local });
    lobby.value = { ...lobby.value, values: withDevices(lobby.value.values, next) };
    saveSettingsNow();
  } catch (e) {
    dispatch({ type: "error", error: toUiError(e) });
  } finally {
    switchingDevices.value = null;
  }
}

export function dismissNotice(id: number): void {
  dispatch({ type: "ui/dismiss-notice", id });
}

/** The message the lobby shows: its own error, else why the last room ended. */
export function lobbyMessage(): ErrorView | null {
  const { error, values } = lobby.value;
  if (error) return error;
  const exit = room.value.exitError;
  return exit ? describeError(exit, { serverUrl: values.serverUrl }) : null;
}
