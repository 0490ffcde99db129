// The one interface the UI talks to (docs/desktop.md, "One UI, two media backends"). Two
// implementations: `tauri` (media in Rust, behind Tauri commands and events) and `browser`
// (media in the browser: RTCPeerConnection, getUserMedia, <video>). Which one runs is decided
// once at start-up (backend/index.ts); the views and the store never know which.

import type { AppInfo } from "../bindings/AppInfo";
import type { Devices } from "../bindings/Devices";
import type { Joined } from "../bindings/Joined";
import type { LocalState } from "../bindings/LocalState";
import type { ModerationView } from "../bindings/ModerationView";
import type { ScreenSources } from "../bindings/ScreenSources";
import type { Settings } from "../bindings/Settings";
import type { UiEvent } from "../bindings/UiEvent";
import type { ViewSizeView } from "../bindings/ViewSizeView";
import type { ProbeResult } from "../render/messages";
import type { ErrorView } from "../state/errors";

export type { ProbeResult, ScreenSources };

/** The frame track of our own screen share's preview (`VideoRenderer.attach`). */
export const SCREEN_TRACK = "screen";

/** The frame track of a picker thumbnail of source `id` (tauri backend, `picker: "ours"`). */
export function sourceTrack(id: string): string {
  return `source:${id}`;
}

/**
 * Watches the page's visibility (`document.visibilityState`: a hidden tab, or a minimized
 * window where the engine reports it) and calls `handler` on changes; returns the unsubscribe
 * function. `extra` adds another reason to be hidden (the desktop's minimized state).
 */
export function watchPageVisible(handler: (visible: boolean) => void): {
  stop: () => void;
  /** Another source says hidden (true) or not (false). */
  setHiddenBy: (hidden: boolean) => void;
} {
  let pageVisible = document.visibilityState !== "hidden";
  let hiddenBy = false;
  let last = true;
  const update = () => {
    const visible = pageVisible && !hiddenBy;
    if (visible === last) return;
    last = visible;
    handler(visible);
  };
  const onChange = () => {
    pageVisible = document.visibilityState !== "hidden";
    update();
  };
  document.addEventListener("visibilitychange", onChange);
  update();
  return {
    stop: () => document.removeEventListener("visibilitychange", onChange),
    setHiddenBy: (hidden) => {
      hiddenBy = hidden;
      update();
    },
  };
}

/** What `start` learns: how the app runs and the lobby's remembered values. */
export interface Startup {
  info: AppInfo;
  settings: Settings;
  /** Something to tell in the lobby at once (an invite link in the address cut short). */
  lobbyError?: ErrorView | null;
}

/**
 * An invitation a moderator created (`create_invite`). `url` is a ready link (the server's,
 * when it knows its public address; the desktop backend's otherwise), null when there is none:
 * the UI then builds `<origin>/r/<room>[#token=…]` itself. An open room has no token: its
 * address is the invitation.
 */
export interface InviteLink {
  token: string | null;
  url: string | null;
  /** When the token stops working (seconds since the Unix epoch); null without a token. */
  expiresAt: number | null;
}

/**
 * Shows the video of a track in an element the view owns. The `tauri` backend draws into a
 * `<canvas>` (frames from the Rust engine), the `browser` backend plays a `<video>` (the
 * browser decodes). `track` is a remote video track id, or `SELF_TRACK` ("self"): the lobby
 * preview, or our own camera in a room.
 */
export interface VideoRenderer {
  /** The element the view creates for a track. */
  readonly element: "canvas" | "video";
  /**
   * Shows `track` in `el` until the returned function is called; `onFirstFrame` once the first
   * frame is on screen.
   */
  attach(el: HTMLCanvasElement | HTMLVideoElement, track: string, onFirstFrame: () => void): () => void;
}

/**
 * Everything the UI asks of a media backend. Every rejection is a `UiError` (`{kind,
 * message, hint}`); room events arrive through the handler given to `start`, in the shapes of
 * `UiEvent` (the Rust backend's), so `state/*` is the same for both.
 */
export interface Backend {
  readonly kind: "tauri" | "browser";
  /**
   * Where the server is fixed (the page's own origin, in a browser): the lobby hides the
   * server field. False: the person types it (desktop).
   */
  readonly fixedServer: boolean;
  readonly video: VideoRenderer;

  /** Subscribes `onEvent` to room events and returns how the app runs and its settings. */
  start(onEvent: (event: UiEvent) => void): Promise<Startup>;
  saveSettings(settings: Settings): Promise<void>;
  listDevices(): Promise<Devices>;
  /**
   * Calls `handler` when the device list may have changed (a device plugged in, or the browser
   * now tells device names because access was granted); returns the unsubscribe function.
   */
  onDevicesChanged(handler: () => void): () => void;
  /** Lobby self view from `camera` (null: the default) as track "self". */
  startPreview(camera: string | null): Promise<void>;
  stopPreview(): Promise<void>;
  /** Joins (stopping or taking over the preview); events follow. */
  join(settings: Settings): Promise<Joined>;
  /** Leaves; a `closed` event follows. */
  leave(): Promise<void>;
  setMicrophone(on: boolean): Promise<LocalState>;
  setCamera(on: boolean): Promise<LocalState>;
  /** Switches devices (in a room: live); out of a room the answer is a default state. */
  selectDevices(camera: string | null, microphone: string | null, speaker: string | null): Promise<LocalState>;
  /** A chat message to everyone (`to` null) or to one peer; the server's echo comes as `chat`. */
  sendChat(text: string, to: string | null): Promise<void>;
  /** Raises or lowers our hand; a `peer_updated` for our own id follows. */
  raiseHand(raised: boolean): Promise<void>;
  /** Moderators: mute, stop the camera or screen of, or lower the hand of `peerId`. */
  moderate(peerId: string, action: ModerationView): Promise<void>;
  /** Moderators: removes `peerId`, telling them `reason`. */
  removePeer(peerId: string, reason: string | null): Promise<void>;
  /** Moderators: locks or unlocks the room; `room_locked` follows. */
  lockRoom(locked: boolean): Promise<void>;
  /** Moderators: ends the meeting for everyone (us too: `closed` follows). */
  endMeeting(): Promise<void>;
  /**
   * What can be shared. `picker: "ours"`: the UI shows `sources`, each with a live thumbnail
   * (attach `sourceTrack(id)`) until `closeScreenPicker`/`startScreenShare`. `"system"`: the
   * browser's or the desktop portal's own dialog picks; call `startScreenShare(null)`. Rejects
   * with a `UiError` (kind `device`) when this machine cannot share (no display, no portal).
   */
  listScreenSources(): Promise<ScreenSources>;
  /**
   * Shares `sourceId` (null: the system dialog picks; may take as long as the person does), next
   * to the camera. Answers the new local state (`screenOn: true`); our preview is `SCREEN_TRACK`.
   * The person cancelling the system dialog rejects with kind `cancelled`.
   */
  startScreenShare(sourceId: string | null): Promise<LocalState>;
  /** Stops our share (`screen_share_ended` with reason `stopped` follows). */
  stopScreenShare(): Promise<LocalState>;
  /** The picker closed without sharing: stop its thumbnails. */
  closeScreenPicker(): Promise<void>;
  /** Moderators: an invitation to this room, valid `ttlSecs`, with the moderator grant or not. */
  createInvite(ttlSecs: number, moderator: boolean): Promise<InviteLink>;
  /**
   * Trusts the certificate with SHA-256 `fingerprint` for the server at `serverUrl` from now on
   * (after a join failed with `untrusted_certificate` and the person compared it). Only the
   * desktop backend gets that error: a browser decides about certificates itself.
   */
  trustCertificate(serverUrl: string, fingerprint: string): Promise<void>;
  /**
   * Viewer hints: the device-pixel size remote video tracks are shown at (0×0: not shown),
   * only those that changed; the backend tells the server (`set_view_sizes`) and again after a
   * reconnection. Resolves once handed over (not when the server has them).
   */
  setViewSizes(views: ViewSizeView[]): Promise<void>;
  /**
   * Calls `handler` with false when the window is hidden or minimized and with true when it
   * shows again (only on changes; it is taken to be visible at first); returns the unsubscribe
   * function.
   */
  watchWindowVisible(handler: (visible: boolean) => void): () => void;
  /** Opens an http(s) or mailto URL outside the app (system browser, or a new tab). */
  openLink(url: string): Promise<void>;

  /** Test hooks: the pixels of the tile showing `track` (docs/desktop.md, "UI test hooks"). */
  probe(track: string): Promise<ProbeResult>;
  /** Test hooks: the backend's media statistics (browser: per received track), else null. */
  mediaStats(): Promise<unknown>;
}
