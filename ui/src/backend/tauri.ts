// The desktop backend: media in Rust, behind the Tauri commands and the `room` event
// (docs/desktop.md). Video is drawn by the render worker from the backend's frame socket
// (render/). Every command error is normalized to a `UiError`.

import { invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import { getCurrentWindow } from "@tauri-apps/api/window";
import type { AppInfo } from "../bindings/AppInfo";
import type { InviteView } from "../bindings/InviteView";
import type { Devices } from "../bindings/Devices";
import type { FrameEndpoint } from "../bindings/FrameEndpoint";
import type { Joined } from "../bindings/Joined";
import type { LocalState } from "../bindings/LocalState";
import type { ModerationView } from "../bindings/ModerationView";
import type { ScreenSources } from "../bindings/ScreenSources";
import type { Settings } from "../bindings/Settings";
import type { UiEvent } from "../bindings/UiEvent";
import type { ViewSizeView } from "../bindings/ViewSizeView";
import { FrameClient } from "../render/client";
import type { ProbeResult } from "../render/messages";
import { toUiError } from "../state/errors";
import { watchPageVisible, type Backend, type InviteLink, type Startup, type VideoRenderer } from "./types";

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (e) {
    throw toUiError(e);
  }
}

export class TauriBackend implements Backend {
  readonly kind = "tauri";
  readonly fixedServer = false;
  private frames: FrameClient | null = null;

  readonly video: VideoRenderer = {
    element: "canvas",
    attach: (el, track, onFirstFrame) => {
      const client = this.frames;
      if (!client || !(el instanceof HTMLCanvasElement)) return () => {};
      const tile = client.attach(el, track, onFirstFrame);
      return () => tile.detach();
    },
  };

  async start(onEvent: (event: UiEvent) => void): Promise<Startup> {
    await listen<UiEvent>("room", (event) => onEvent(event.payload));
    const [info, settings, endpoint] = await Promise.all([
      call<AppInfo>("app_info"),
      call<Settings>("get_settings"),
      call<FrameEndpoint>("frame_endpoint"),
    ]);
    this.frames = new FrameClient({ bench: info.bench, readback: endpoint.testHooks || info.testHooks });
    this.frames.connect(endpoint.url);
    return { info, settings };
  }

  saveSettings = (settings: Settings) => call<void>("save_settings", { settings });
  listDevices = () => call<Devices>("list_devices");
  /** The Rust backend lists devices on request only. */
  onDevicesChanged = () => () => {};
  startPreview = (camera: string | null) => call<void>("start_preview", { camera });
  stopPreview = () => call<void>("stop_preview");
  join = (settings: Settings) => call<Joined>("join", { settings });
  leave = () => call<void>("leave");
  setMicrophone = (on: boolean) => call<LocalState>("set_microphone", { on });
  setCamera = (on: boolean) => call<LocalState>("set_camera", { on });
  selectDevices = (camera: string | null, microphone: string | null, speaker: string | null) =>
    call<LocalState>("select_devices", { camera, microphone, speaker });
  sendChat = (text: string, to: string | null) => call<void>("send_chat", { text, to });
  raiseHand = (raised: boolean) => call<void>("raise_hand", { raised });
  moderate = (peerId: string, action: ModerationView) => call<void>("moderate", { peerId, action });
  removePeer = (peerId: string, reason: string | null) => call<void>("remove_peer", { peerId, reason });
  lockRoom = (locked: boolean) => call<void>("lock_room", { locked });
  endMeeting = () => call<void>("end_meeting");
  /** X11: our picker, thumbnails on frame tracks `source:<id>`; Wayland: the portal picks. */
  listScreenSources = () => call<ScreenSources>("list_screen_sources");
  startScreenShare = (sourceId: string | null) => call<LocalState>("start_screen_share", { sourceId });
  stopScreenShare = () => call<LocalState>("stop_screen_share");
  closeScreenPicker = () => call<void>("close_screen_picker");
  openLink = (url: string) => call<void>("open_link", { url });
  setViewSizes = (views: ViewSizeView[]) => call<void>("set_view_sizes", { views });

  /**
   * The page's visibility, and the window's minimized state: a webview may go on calling its
   * page visible while the window is minimized, so every resize and focus change asks the
   * window (minimizing moves the focus away, restoring brings it back).
   */
  watchWindowVisible(handler: (visible: boolean) => void): () => void {
    const page = watchPageVisible(handler);
    const unlisten: (() => void)[] = [];
    let stopped = false;
    const win = getCurrentWindow();
    const check = () => {
      win
        .isMinimized()
        .then((minimized) => {
          if (!stopped) page.setHiddenBy(minimized);
        })
        .catch(() => {
          // Not allowed or not known: the page's visibility alone decides.
        });
    };
    for (const subscribe of [() => win.onResized(check), () => win.onFocusChanged(check)]) {
      subscribe()
        .then((f) => {
          if (stopped) f();
          else unlisten.push(f);
        })
        .catch(() => {});
    }
    return () => {
      stopped = true;
      page.stop();
      for (const f of unlisten) f();
    };
  }
  trustCertificate = (serverUrl: string, fingerprint: string) =>
    call<void>("trust_certificate", { serverUrl, fingerprint });

  async createInvite(ttlSecs: number, moderator: boolean): Promise<InviteLink> {
    const invite = await call<InviteView>("create_invite", { ttlSecs, moderator });
    return { token: invite.token, url: invite.url, expiresAt: invite.expiresAt };
  }

  async probe(track: string): Promise<ProbeResult> {
    const client = this.frames;
    const slot = client ? client.slotOf(track) : null;
    if (client === null || slot === null) throw new Error(`no video tile for track "${track}"`);
    const result = await client.probe(slot);
    if (!result) throw new Error(`the tile of track "${track}" went away`);
    return result;
  }

  mediaStats = () => Promise.resolve(null);
}
