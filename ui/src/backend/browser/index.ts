// The browser backend: the UI served by videoroom-server itself, media by the browser
// (RTCPeerConnection, getUserMedia, <video>). The room's protocol work is room.ts; here are
// the lobby's parts (settings, devices, preview), the page's address, video and audio output,
// levels, screen sharing's entry points (the browser's own dialog picks: screen.ts), and the
// test hooks' figures.

import type { AppInfo } from "../../bindings/AppInfo";
import type { Devices } from "../../bindings/Devices";
import type { Joined } from "../../bindings/Joined";
import type { LocalState } from "../../bindings/LocalState";
import type { ModerationView } from "../../bindings/ModerationView";
import type { Settings } from "../../bindings/Settings";
import type { UiError } from "../../bindings/UiError";
import type { UiEvent } from "../../bindings/UiEvent";
import type { ViewSizeView } from "../../bindings/ViewSizeView";
import type { ProbeResult } from "../../render/messages";
import { toUiError } from "../../state/errors";
import { INCOMPLETE_INVITE } from "../../state/invite";
import { safeHref } from "../../state/links";
import { SELF_TRACK } from "../../state/room";
import { SCREEN_TRACK, watchPageVisible, type Backend, type InviteLink, type ScreenSources, type Startup, type VideoRenderer } from "../types";
import { AudioOut } from "./audio";
import { BUSY, INSECURE_CONTEXT, NOT_IN_ROOM } from "./errors";
import { canChooseSpeaker, devicesFrom, openDevice, stop } from "./media";
import { BrowserRoom } from "./room";
import { pageServerUrl, parseRoute, roomPath, withoutToken } from "./routing";
import { CANNOT_SHARE, displayMedia } from "./screen";
import { saveSettings, startupSettings, type KeyValue } from "./settings";
import { VideoSources } from "./video";

/** How often the level meters read their analysers, and how many reads make a `levels` event. */
const METER_INTERVAL_MS = 50;
const METER_READS_PER_EVENT = 4;
/** localStorage key that turns the test hooks on (`"1"`; set by the end-to-end driver). */
export const TEST_HOOKS_KEY = "videoroom.testHooks";

/** Storage that may be missing or refuse (private windows, blocked storage): then in memory. */
function storage(get: () => Storage): KeyValue {
  try {
    const s = get();
    s.getItem("videoroom.probe");
    return s;
  } catch {
    const map = new Map<string, string>();
    return {
      getItem: (k) => map.get(k) ?? null,
      setItem: (k, v) => void map.set(k, v),
      removeItem: (k) => void map.delete(k),
    };
  }
}

export class BrowserBackend implements Backend {
  readonly kind = "browser";
  readonly fixedServer = true;
  private readonly local = storage(() => window.localStorage);
  private readonly session = storage(() => window.sessionStorage);
  private onEvent: (event: UiEvent) => void = () => {};
  private room: BrowserRoom | null = null;
  private joining = false;
  private preview: { track: MediaStreamTrack; camera: string | null } | null = null;
  private previewSeq = 0;
  /** The media of every video tile: "self", our share ("screen"), remote tracks. */
  private readonly videos = new VideoSources();
  private readonly audio = new AudioOut();
  private speaker: string | null = null;
  private meterTimer: ReturnType<typeof setInterval> | null = null;
  private readonly deviceHandlers = new Set<() => void>();
  /** Devices are listed with names once the page may use them. */
  private named = false;
  /** Viewer hints the UI gave while `join` was still under way (`setViewSizes`). */
  private earlyViews: ViewSizeView[] = [];

  readonly video: VideoRenderer = {
    element: "video",
    attach: (el, track, onFirstFrame) => {
      if (!(el instanceof HTMLVideoElement)) return () => {};
      return this.videos.attach(el, track, onFirstFrame);
    },
  };

  async start(onEvent: (event: UiEvent) => void): Promise<Startup> {
    this.onEvent = onEvent;
    const { pathname, search, hash, protocol, host } = window.location;
    const route = parseRoute(pathname, search, hash);
    // The invitation is read once; the address bar, history and bookmarks never show it.
    if (route.token !== null || route.incompleteToken) {
      window.history.replaceState(null, "", withoutToken(pathname, search));
    }
    const settings = startupSettings(this.local, this.session, route, pageServerUrl(protocol, host));
    const info: AppInfo = {
      version: __APP_VERSION__,
      fakeMedia: false,
      testHooks: this.local.getItem(TEST_HOOKS_KEY) === "1",
      bench: false,
      autojoin: false,
    };
    // Closing the tab leaves at once (the others see us go without waiting for a timeout).
    window.addEventListener("pagehide", () => this.room?.leaveNow());
    navigator.mediaDevices?.addEventListener?.("devicechange", () => this.devicesChanged());
    return { info, settings, lobbyError: route.incompleteToken ? INCOMPLETE_INVITE : null };
  }

  async saveSettings(settings: Settings): Promise<void> {
    saveSettings(this.local, this.session, settings);
  }

  async listDevices(): Promise<Devices> {
    const md = navigator.mediaDevices;
    if (!md?.enumerateDevices) throw INSECURE_CONTEXT;
    const entries = await md.enumerateDevices();
    return devicesFrom(entries, canChooseSpeaker());
  }

  onDevicesChanged(handler: () => void): () => void {
    this.deviceHandlers.add(handler);
    return () => this.deviceHandlers.delete(handler);
  }

  private devicesChanged(): void {
    for (const handler of this.deviceHandlers) handler();
  }

  /** A device opened: from now on the browser lists names and ids; tell the lobby once. */
  private opened(): void {
    if (this.named) return;
    this.named = true;
    this.devicesChanged();
  }

  async startPreview(camera: string | null): Promise<void> {
    const seq = ++this.previewSeq;
    const current = this.preview;
    if (current && current.camera === camera && current.track.readyState === "live") return;
    this.dropPreview();
    const opened = await openDevice("camera", camera);
    if ("error" in opened) throw opened.error;
    if (seq !== this.previewSeq || this.room !== null || this.joining) {
      // Stopped, restarted or joined meanwhile.
      stop(opened.track);
      return;
    }
    this.preview = { track: opened.track, camera };
    this.videos.set(SELF_TRACK, opened.track);
    this.opened();
  }

  async stopPreview(): Promise<void> {
    this.previewSeq++;
    this.dropPreview();
  }

  private dropPreview(): void {
    const preview = this.preview;
    this.preview = null;
    if (!preview) return;
    stop(preview.track);
    if (this.room === null) this.videos.set(SELF_TRACK, null);
  }

  async join(settings: Settings): Promise<Joined> {
    if (this.room !== null || this.joining) throw BUSY;
    this.joining = true;
    // In the click's wake: the page may start audio now.
    this.audio.wake();
    this.speaker = settings.speaker;
    void this.audio.setSink(settings.speaker).catch(() => {
      // No remote audio yet: nothing to fail. New elements get the speaker as they come.
    });
    this.previewSeq++;
    const preview = this.preview;
    this.preview = null;
    const handOver = preview && settings.cameraOn && preview.camera === settings.camera ? preview.track : null;
    if (preview && handOver === null) {
      stop(preview.track);
      this.videos.set(SELF_TRACK, null);
    }
    let cameraListed = true;
    try {
      cameraListed = (await this.listDevices()).cameras.length > 0;
    } catch {
      // Listing failed (no secure context): opening the camera will say why.
    }
    const { protocol, host } = window.location;
    try {
      const { room, joined } = await BrowserRoom.join(
        {
          url: pageServerUrl(protocol, host),
          host,
          room: settings.room.trim(),
          name: settings.name.trim(),
          token: settings.token,
          camera: settings.camera,
          microphone: settings.microphone,
          cameraOn: settings.cameraOn,
          micOn: settings.micOn,
          previewTrack: handOver,
          cameraListed,
        },
        {
          emit: (event) => this.onEvent(event),
          remoteMedia: (id, kind, track) => {
            if (kind === "video") this.videos.set(id, track);
            else this.audio.setRemote(id, track);
          },
          localMedia: (source, track) => {
            if (source === "camera") this.videos.set(SELF_TRACK, track);
            else if (source === "screen") this.videos.set(SCREEN_TRACK, track);
            else this.audio.setMic(track);
            if (track) this.opened();
          },
          ended: () => this.roomEnded(),
        },
      );
      this.room = room;
      const early = this.earlyViews;
      this.earlyViews = [];
      if (early.length > 0) room.setViewSizes(early);
      this.startMeters();
      saveSettings(this.local, this.session, settings);
      const path = roomPath(settings.room);
      if (window.location.pathname !== path) window.history.replaceState(null, "", path);
      return joined;
    } catch (e) {
      // Not joined: the lobby takes its preview back.
      if (handOver && handOver.readyState === "live") {
        this.preview = { track: handOver, camera: settings.camera };
      } else {
        this.videos.set(SELF_TRACK, null);
      }
      throw toUiError(e);
    } finally {
      this.joining = false;
      this.earlyViews = [];
    }
  }

  private roomEnded(): void {
    this.room = null;
    if (this.meterTimer !== null) clearInterval(this.meterTimer);
    this.meterTimer = null;
    this.audio.clear();
    this.videos.clearExcept(SELF_TRACK);
    if (this.preview === null) this.videos.set(SELF_TRACK, null);
  }

  /** Reads the meters every 50 ms; every 200 ms a `levels` event, as the desktop sends. */
  private startMeters(): void {
    let last = performance.now();
    let reads = 0;
    this.meterTimer = setInterval(() => {
      const now = performance.now();
      this.audio.sample(now - last);
      last = now;
      if (++reads % METER_READS_PER_EVENT === 0 && this.room !== null) {
        this.onEvent({ type: "levels", ...this.audio.levels() });
      }
    }, METER_INTERVAL_MS);
  }

  private inRoom(): BrowserRoom {
    if (this.room === null) throw NOT_IN_ROOM;
    return this.room;
  }

  async leave(): Promise<void> {
    await this.inRoom().leave();
  }

  setMicrophone(on: boolean): Promise<LocalState> {
    return this.call(() => this.inRoom().setMicrophone(on));
  }

  setCamera(on: boolean): Promise<LocalState> {
    return this.call(() => this.inRoom().setCamera(on));
  }

  async selectDevices(camera: string | null, microphone: string | null, speaker: string | null): Promise<LocalState> {
    const room = this.room;
    if (room === null) return { cameraOn: false, micOn: false, hasCamera: false, hasMicrophone: false, screenOn: false };
    const local = await this.call(() => room.selectDevices(camera, microphone));
    if (speaker !== this.speaker) {
      await this.call(() => this.audio.setSink(speaker));
      this.speaker = speaker;
    }
    return local;
  }

  /** Runs `f`, its failure normalized to a `UiError`. */
  private async call<T>(f: () => Promise<T> | T): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw toUiError(e);
    }
  }

  private sendNow(message: Parameters<BrowserRoom["send"]>[0]): Promise<void> {
    return this.call(() => this.inRoom().send(message));
  }

  sendChat(text: string, to: string | null): Promise<void> {
    return this.sendNow(to === null ? { type: "chat", text } : { type: "chat", text, to });
  }

  raiseHand(raised: boolean): Promise<void> {
    return this.sendNow({ type: "raise_hand", raised });
  }

  moderate(peerId: string, action: ModerationView): Promise<void> {
    return this.sendNow({ type: "moderate", peer_id: peerId, action });
  }

  removePeer(peerId: string, reason: string | null): Promise<void> {
    const why = reason?.trim();
    return this.sendNow(why ? { type: "remove_peer", peer_id: peerId, reason: why } : { type: "remove_peer", peer_id: peerId });
  }

  lockRoom(locked: boolean): Promise<void> {
    return this.sendNow({ type: "lock_room", locked });
  }

  endMeeting(): Promise<void> {
    return this.sendNow({ type: "end_meeting" });
  }

  /** The browser's own dialog picks what to share (none: this browser cannot share). */
  async listScreenSources(): Promise<ScreenSources> {
    if (displayMedia() === null) throw CANNOT_SHARE;
    return { picker: "system", sources: [] };
  }

  /** Opens the browser's dialog at once (it wants the click's user gesture); see room.ts. */
  startScreenShare(sourceId: string | null): Promise<LocalState> {
    return this.call(() => this.inRoom().startScreenShare(sourceId));
  }

  stopScreenShare(): Promise<LocalState> {
    return this.call(() => this.inRoom().stopScreenShare());
  }

  /** No picker of ours in a browser: nothing to close. */
  async closeScreenPicker(): Promise<void> {}

  createInvite(ttlSecs: number, moderator: boolean): Promise<InviteLink> {
    return this.call(() => this.inRoom().createInvite(ttlSecs, moderator));
  }

  /**
   * Viewer hints go on the room's socket (`set_view_sizes`), and again after a rejoin. The UI
   * is in the room from the `joined` event on, while `join` may still be opening devices:
   * hints given meanwhile wait for the room.
   */
  setViewSizes(views: ViewSizeView[]): Promise<void> {
    if (this.room === null && this.joining) {
      this.earlyViews.push(...views);
      return Promise.resolve();
    }
    return this.call(() => this.inRoom().setViewSizes(views));
  }

  /** A hidden tab or a minimized browser window: `document.visibilityState`. */
  watchWindowVisible(handler: (visible: boolean) => void): () => void {
    return watchPageVisible(handler).stop;
  }

  /** The browser checks certificates itself (it never reports `untrusted_certificate`). */
  async trustCertificate(): Promise<void> {
    throw {
      kind: "rejected",
      message: "The browser decides which certificates it trusts.",
      hint: "Accept the certificate in the browser's own warning page.",
    } satisfies UiError;
  }

  /** Chat links open in a new tab, never in this one (http, https and mailto only). */
  async openLink(url: string): Promise<void> {
    const href = safeHref(url);
    if (href === null) {
      throw { kind: "rejected", message: "That link cannot be opened.", hint: "Only web and mail links open." } satisfies UiError;
    }
    window.open(href, "_blank", "noopener,noreferrer");
  }

  async probe(track: string): Promise<ProbeResult> {
    return this.videos.probe(track);
  }

  async mediaStats(): Promise<unknown> {
    return this.room ? this.room.stats() : null;
  }
}
