// Typed wrappers over the backend's commands and events (docs/desktop.md). Every command
// error is normalized to a `UiError`.

import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { AppInfo } from "./bindings/AppInfo";
import type { Devices } from "./bindings/Devices";
import type { FrameEndpoint } from "./bindings/FrameEndpoint";
import type { Joined } from "./bindings/Joined";
import type { LocalState } from "./bindings/LocalState";
import type { ModerationView } from "./bindings/ModerationView";
import type { Settings } from "./bindings/Settings";
import type { UiEvent } from "./bindings/UiEvent";
import { toUiError } from "./state/errors";

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (e) {
    throw toUiError(e);
  }
}

/** Whether the page runs inside the Tauri webview (false in a plain browser). */
export function hasBackend(): boolean {
  return typeof window !== "undefined" && "__TAURI_INTERNALS__" in window;
}

export const api = {
  appInfo: () => call<AppInfo>("app_info"),
  getSettings: () => call<Settings>("get_settings"),
  saveSettings: (settings: Settings) => call<void>("save_settings", { settings }),
  listDevices: () => call<Devices>("list_devices"),
  startPreview: (camera: string | null) => call<void>("start_preview", { camera }),
  stopPreview: () => call<void>("stop_preview"),
  join: (settings: Settings) => call<Joined>("join", { settings }),
  leave: () => call<void>("leave"),
  setMicrophone: (on: boolean) => call<LocalState>("set_microphone", { on }),
  setCamera: (on: boolean) => call<LocalState>("set_camera", { on }),
  selectDevices: (camera: string | null, microphone: string | null, speaker: string | null) =>
    call<LocalState>("select_devices", { camera, microphone, speaker }),
  frameEndpoint: () => call<FrameEndpoint>("frame_endpoint"),
  /** A chat message to everyone (`to` null) or to one peer; the server echoes it as `chat`. */
  sendChat: (text: string, to: string | null) => call<void>("send_chat", { text, to }),
  /** Raises or lowers our hand; a `peer_updated` for our own id follows. */
  raiseHand: (raised: boolean) => call<void>("raise_hand", { raised }),
  /** Moderators: mute, stop the camera or screen of, or lower the hand of `peerId`. */
  moderate: (peerId: string, action: ModerationView) => call<void>("moderate", { peerId, action }),
  /** Moderators: removes `peerId` from the room, telling them `reason`. */
  removePeer: (peerId: string, reason: string | null) =>
    call<void>("remove_peer", { peerId, reason }),
  /** Moderators: locks or unlocks the room; `room_locked` follows. */
  lockRoom: (locked: boolean) => call<void>("lock_room", { locked }),
  /** Moderators: ends the meeting for everyone (us too: `closed` follows). */
  endMeeting: () => call<void>("end_meeting"),
  /** Opens an http(s) or mailto URL in the system browser (the webview never navigates). */
  openLink: (url: string) => call<void>("open_link", { url }),
};

/** Calls `handler` with every `room` event until the returned function is called. */
export function onRoomEvent(handler: (event: UiEvent) => void): Promise<UnlistenFn> {
  return listen<UiEvent>("room", (event) => handler(event.payload));
}
