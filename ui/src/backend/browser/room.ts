// One joined room in the browser: the reference web client of docs/protocol.md. The same
// shape as the Rust engine's room task (client/src/room/mod.rs): our camera and microphone
// live as long as the room; a *session* (one WebSocket + one RTCPeerConnection) carries them
// while it lasts; a lost session (socket closed, `closing`, media connection failed, the server
// silent for two ping intervals) is replaced by a rejoin with backoff and our `resume_token`,
// publishing under new track ids. What happens is told to the UI as `UiEvent`s, in the shapes
// the desktop backend sends.
//
// Publishing: one `sendonly` transceiver per source (camera, microphone), created without a
// track and given one with `replaceTrack`, so its msid track id is fresh per session (the old
// session's ids may still be held by our ghost). The ids we declare in `sdp_offer.tracks` are
// read back from our own SDP (`a=msid` of the transceiver's mid). Camera off stops the camera
// (its light goes off) and sends nothing; on opens it again on the same transceiver. The
// microphone mutes with `track.enabled`. Each change also goes to the room as `update_track`.
//
// A screen share (screen.ts opens the capture) gets one more `sendonly` transceiver, declared
// with source "screen", and a new offer. Its end (we stop it, the browser's own "Stop sharing",
// a moderator's `stop_screen`) turns that transceiver inactive and offers again: the server
// unpublishes a track an offer no longer sends. Each share has its own transceiver (the
// m-section of an ended one stays, inactive, until the next session); a share still live when
// a session is replaced is published again in the new one.

import type { ConnectionStateView } from "../../bindings/ConnectionStateView";
import type { Joined } from "../../bindings/Joined";
import type { LocalState } from "../../bindings/LocalState";
import type { ModerationView } from "../../bindings/ModerationView";
import type { ScreenShareEnd } from "../../bindings/ScreenShareEnd";
import type { TrackKind } from "../../bindings/TrackKind";
import type { UiError } from "../../bindings/UiError";
import type { UiEvent } from "../../bindings/UiEvent";
import type { ViewSizeView } from "../../bindings/ViewSizeView";
import type { InviteLink } from "../types";
import {
  NOT_IN_ROOM,
  RECONNECTING,
  closedWhileJoining,
  joinRefused,
  lostForGood,
  serverRefusal,
  timedOut,
  unreachable,
} from "./errors";
import { openDevice, stop } from "./media";
import { Negotiation, msidsByMid } from "./negotiation";
import { PING_INTERVAL_MS, Rejoin, silent, type AttemptFailure } from "./reconnect";
import { Signal, type JoinRequest } from "./signal";
import { ALREADY_SHARING, BROWSER_PICKS, displayMedia, openScreen, type OpenedScreen } from "./screen";
import { RoomModel, roomInfo, type Effect } from "./translate";
import { ViewSizeBook } from "./viewSizes";
import type { ClientMessage, DeclaredTrack, ServerMessage, WireIceServer, WireJoined } from "./wire";

/** A device of ours the room keeps: camera or microphone. */
export type Device = "camera" | "microphone";
/** What one of our transceivers carries. */
export type Source = Device | "screen";

/** What the room tells the backend besides the UI's events. */
export interface RoomHooks {
  emit(event: UiEvent): void;
  /** Media of remote track `trackId` arrived (or went: null). */
  remoteMedia(trackId: string, kind: TrackKind, track: MediaStreamTrack | null): void;
  /** Our camera, microphone or screen share track changed (null: none). */
  localMedia(source: Source, track: MediaStreamTrack | null): void;
  /** The room is over (after its `closed` event). */
  ended(): void;
}

export interface RoomParams {
  /** The signaling socket, `ws(s)://<host>/ws`. */
  url: string;
  /** The server's host, for messages. */
  host: string;
  room: string;
  name: string;
  token: string | null;
  camera: string | null;
  microphone: string | null;
  cameraOn: boolean;
  micOn: boolean;
  /** The lobby preview's camera track, handed over (it goes on in the room). */
  previewTrack: MediaStreamTrack | null;
  /** A camera is listed: joined with the camera off, it can be turned on. */
  cameraListed: boolean;
}

interface Local {
  source: Device;
  kind: "audio" | "video";
  /** The device exists (it may lack permission, or be off). */
  has: boolean;
  /** The person wants it on. */
  wanted: boolean;
  track: MediaStreamTrack | null;
  device: string | null;
}

/** How long `create_invite` may take. */
const INVITE_TIMEOUT_MS = 10_000;
/** Server codes that can answer `create_invite` (the next pending one takes them). */
const INVITE_REFUSALS = new Set([
  "not_moderator",
  "invalid_message",
  "unknown_message_type",
  "invalid_state",
  "internal",
  "rate_limited",
]);

/** A join attempt's failure, for the lobby. */
export function joinError(f: AttemptFailure, host: string): UiError {
  if (f.kind === "refused") return joinRefused(f.code, f.message);
  if (f.timeout) return timedOut(host, 10_000);
  if (f.closed) return closedWhileJoining(f.message);
  return unreachable(host);
}

function isFailure(e: unknown): e is AttemptFailure {
  return typeof e === "object" && e !== null && "kind" in e && (e.kind === "network" || e.kind === "refused") && "message" in e;
}

async function connect(url: string, request: JoinRequest): Promise<{ signal: Signal; joined: WireJoined }> {
  const signal = await Signal.open(url);
  try {
    return { signal, joined: await signal.join(request) };
  } catch (e) {
    signal.close();
    throw e;
  }
}

function iceServers(list: WireIceServer[] | undefined): RTCIceServer[] {
  return (list ?? []).map((s) => ({
    urls: s.urls,
    ...(s.username !== undefined ? { username: s.username } : {}),
    ...(s.credential !== undefined ? { credential: s.credential } : {}),
  }));
}

/** One socket and one PeerConnection. */
class Session {
  readonly pc: RTCPeerConnection;
  readonly negotiation: Negotiation;
  readonly transceivers = new Map<Source, RTCRtpTransceiver>();
  /** Our track id per source, as our last offer declared it. */
  readonly declared = new Map<Source, string>();
  /** Remote track id → the receiver's track carrying it. */
  readonly media = new Map<string, { track: MediaStreamTrack; kind: TrackKind }>();
  readonly ready = new Set<string>();
  /** The msid stream of our tracks. */
  readonly stream = new MediaStream();
  connection: ConnectionStateView = "connecting";
  ping: ReturnType<typeof setInterval> | null = null;

  constructor(
    readonly signal: Signal,
    joined: WireJoined,
    declare: (session: Session, sdp: string) => DeclaredTrack[],
    report: (what: string, e: unknown) => void,
  ) {
    this.pc = new RTCPeerConnection({ iceServers: iceServers(joined.ice_servers), bundlePolicy: "max-bundle" });
    this.negotiation = new Negotiation(this.pc, {
      send: (m) => signal.send(m),
      declare: (sdp) => declare(this, sdp),
      report,
    });
  }

  close(leave: boolean): void {
    this.negotiation.close();
    if (this.ping !== null) clearInterval(this.ping);
    this.ping = null;
    if (leave) this.signal.send({ type: "leave" });
    this.signal.close(1000);
    this.pc.onconnectionstatechange = null;
    this.pc.onicecandidate = null;
    this.pc.ontrack = null;
    this.pc.close();
  }
}

interface PendingInvite {
  resolve(invite: InviteLink): void;
  reject(error: UiError): void;
  timer: ReturnType<typeof setTimeout>;
}

export class BrowserRoom {
  private readonly model = new RoomModel();
  private session: Session | null = null;
  private state: "joined" | "reconnecting" | "over" = "joined";
  private readonly local: Record<Device, Local>;
  /** Our screen share's capture, while we share. */
  private share: MediaStreamTrack | null = null;
  /** The browser's share dialog is open (a second share is refused meanwhile). */
  private picking = false;
  private invites: PendingInvite[] = [];
  /**
   * Remote media of a lost session, kept while rejoining: tiles keep their last frame until
   * the new session's media replaces it (or the track turns out to be gone).
   */
  private stale = new Map<string, TrackKind>();
  /** Ends the rejoin loop's wait early (leave). */
  private wake: (() => void) | null = null;
  /** Viewer hints: what the UI asked for, and what this session has been told. */
  private readonly views = new ViewSizeBook();

  private constructor(
    private readonly params: RoomParams,
    private readonly hooks: RoomHooks,
  ) {
    this.local = {
      camera: { source: "camera", kind: "video", has: params.cameraListed, wanted: params.cameraOn, track: null, device: params.camera },
      microphone: { source: "microphone", kind: "audio", has: true, wanted: params.micOn, track: null, device: params.microphone },
    };
  }

  /**
   * Joins: connects, joins (a refusal rejects with a `UiError`), opens the camera and
   * microphone (a failure is an `error` event: the room goes on without it), publishes.
   */
  static async join(params: RoomParams, hooks: RoomHooks): Promise<{ room: BrowserRoom; joined: Joined }> {
    let first: { signal: Signal; joined: WireJoined };
    try {
      first = await connect(params.url, { room: params.room, name: params.name, token: params.token, resumeToken: null });
    } catch (e) {
      throw isFailure(e) ? joinError(e, params.host) : e;
    }
    const room = new BrowserRoom(params, hooks);
    for (const event of room.model.joined(first.joined)) hooks.emit(event);
    await room.openDevices();
    try {
      room.install(first.signal, first.joined);
    } catch (e) {
      first.signal.close();
      room.stopLocal();
      room.state = "over";
      const error: UiError = {
        kind: "internal",
        message: `Cannot set up the media connection: ${String(e)}.`,
        hint: "Try another browser.",
      };
      // The UI went into the room with `joined`: back to the lobby.
      hooks.emit({ type: "closed", reason: "no media connection", error });
      throw error;
    }
    const joined: Joined = {
      selfId: first.joined.peer_id,
      peers: [],
      local: room.localState(),
      room: roomInfo(first.joined),
    };
    return { room, joined };
  }

  /** Our camera, microphone and screen share as the UI shows them. */
  localState(): LocalState {
    const c = this.local.camera;
    const m = this.local.microphone;
    return {
      cameraOn: c.has && c.wanted && c.track !== null,
      micOn: m.has && m.wanted && m.track !== null,
      hasCamera: c.has,
      hasMicrophone: m.has,
      screenOn: this.share !== null,
    };
  }

  // --- devices ------------------------------------------------------------------------------

  private async openDevices(): Promise<void> {
    const c = this.local.camera;
    const preview = this.params.previewTrack;
    if (c.wanted) {
      if (preview && preview.readyState === "live") {
        this.adopt(c, preview);
      } else {
        stop(preview);
        await this.open(c);
      }
    } else {
      stop(preview);
    }
    await this.open(this.local.microphone);
    const m = this.local.microphone;
    if (m.track) m.track.enabled = m.wanted;
    this.hooks.localMedia("camera", c.track);
    this.hooks.localMedia("microphone", m.track);
  }

  /** Opens `local`'s device; a failure is an `error` event. Returns whether it opened. */
  private async open(local: Local): Promise<boolean> {
    const opened = await openDevice(local.source, local.device);
    if ("error" in opened) {
      if (opened.missing) local.has = false;
      this.hooks.emit({ type: "error", error: opened.error });
      return false;
    }
    if (this.state === "over") {
      stop(opened.track);
      return false;
    }
    this.adopt(local, opened.track);
    return true;
  }

  /** `track` is now `local`'s. */
  private adopt(local: Local, track: MediaStreamTrack): void {
    local.track = track;
    local.has = true;
    track.addEventListener("ended", () => this.trackEnded(local, track));
  }

  /** A device went away (unplugged, or the browser revoked it). */
  private trackEnded(local: Local, track: MediaStreamTrack): void {
    if (local.track !== track || this.state === "over") return;
    local.track = null;
    this.hooks.localMedia(local.source, null);
    this.hooks.emit({
      type: "error",
      error: {
        kind: "device",
        message: `Your ${local.source} stopped.`,
        hint: `Pick another ${local.source} or turn it on again.`,
      },
    });
    this.hooks.emit({ type: "local", ...this.localState() });
  }

  private stopLocal(): void {
    for (const local of Object.values(this.local)) {
      stop(local.track);
      local.track = null;
      this.hooks.localMedia(local.source, null);
    }
    const share = this.share;
    this.share = null;
    if (share !== null) {
      stop(share);
      this.hooks.localMedia("screen", null);
    }
  }

  /** Whether `local` sends media (else it is declared, and updated, as muted). */
  private sending(local: Local): boolean {
    return local.has && local.wanted && local.track !== null;
  }

  private async setMuted(local: Local, muted: boolean): Promise<void> {
    const session = this.session;
    const id = session?.declared.get(local.source);
    // While reconnecting there is no socket: the next session declares the state.
    if (session && id !== undefined) session.signal.send({ type: "update_track", track_id: id, muted });
  }

  /** Turns the microphone on or off (`track.enabled`); opens it first if it is not open. */
  async setMicrophone(on: boolean): Promise<LocalState> {
    this.ensureIn();
    const m = this.local.microphone;
    if (on && (m.track === null || m.track.readyState === "ended")) {
      const opened = await openDevice("microphone", m.device);
      if ("error" in opened) {
        if (opened.missing) m.has = false;
        throw opened.error;
      }
      this.ensureIn(opened.track);
      opened.track.enabled = false;
      this.adopt(m, opened.track);
      this.hooks.localMedia("microphone", opened.track);
      await this.attach(m);
    }
    // Muting stops the media first; unmuting tells the room first.
    if (!on && m.track) m.track.enabled = false;
    m.wanted = on;
    await this.setMuted(m, !on);
    if (on && m.track) m.track.enabled = true;
    return this.localState();
  }

  /** Turns the camera on (opening it) or off (stopping it: the light goes off). */
  async setCamera(on: boolean): Promise<LocalState> {
    this.ensureIn();
    const c = this.local.camera;
    if (on) {
      if (c.track === null || c.track.readyState === "ended") {
        const opened = await openDevice("camera", c.device);
        if ("error" in opened) {
          if (opened.missing) c.has = false;
          throw opened.error;
        }
        this.ensureIn(opened.track);
        this.adopt(c, opened.track);
      }
      c.has = true;
      c.wanted = true;
      this.hooks.localMedia("camera", c.track);
      await this.setMuted(c, false);
      await this.attach(c);
    } else {
      c.wanted = false;
      const track = c.track;
      c.track = null;
      await this.session?.transceivers.get("camera")?.sender.replaceTrack(null);
      stop(track);
      this.hooks.localMedia("camera", null);
      await this.setMuted(c, true);
    }
    return this.localState();
  }

  /** Switches camera and microphone (live); the speaker is the backend's. */
  async selectDevices(camera: string | null, microphone: string | null): Promise<LocalState> {
    this.ensureIn();
    const c = this.local.camera;
    if (camera !== c.device) {
      c.device = camera;
      if (c.track !== null) await this.replaceDevice(c);
    }
    const m = this.local.microphone;
    if (microphone !== m.device) {
      m.device = microphone;
      if (m.track !== null) await this.replaceDevice(m);
    }
    return this.localState();
  }

  private async replaceDevice(local: Local): Promise<void> {
    const old = local.track;
    // The camera is exclusive on some systems: let go of it first.
    if (local.source === "camera") {
      await this.session?.transceivers.get("camera")?.sender.replaceTrack(null);
      stop(old);
    }
    const opened = await openDevice(local.source, local.device);
    if ("error" in opened) {
      if (local.source === "camera") {
        local.track = null;
        this.hooks.localMedia("camera", null);
        this.hooks.emit({ type: "local", ...this.localState() });
      }
      throw opened.error;
    }
    this.ensureIn(opened.track);
    opened.track.enabled = local.source === "camera" || local.wanted;
    this.adopt(local, opened.track);
    await this.session?.transceivers.get(local.source)?.sender.replaceTrack(opened.track);
    if (old !== opened.track) stop(old);
    this.hooks.localMedia(local.source, opened.track);
  }

  /**
   * Puts `local`'s track on its transceiver. A source that had no device at the start of the
   * session was not declared: it is now, with a new offer.
   */
  private async attach(local: Local): Promise<void> {
    const session = this.session;
    const t = session?.transceivers.get(local.source);
    if (!session || !t) return;
    await t.sender.replaceTrack(this.sending(local) || local.source === "microphone" ? local.track : null);
    if (!session.declared.has(local.source)) void session.negotiation.offer();
  }

  /** Adds `local`'s transceiver (at once) and puts its track on it (when that is done). */
  private async addTransceiver(session: Session, local: Local): Promise<void> {
    const t = session.pc.addTransceiver(local.kind, { direction: "sendonly", streams: [session.stream] });
    session.transceivers.set(local.source, t);
    const track = local.source === "camera" ? (this.sending(local) ? local.track : null) : local.track;
    if (track) await t.sender.replaceTrack(track);
  }

  // --- screen share -------------------------------------------------------------------------

  /**
   * Shares what the person picks in the browser's dialog (`sourceId` must be null: the
   * browser picks). The dialog opens at once, in the click's wake (browsers want a user
   * gesture), and may stay open as long as the person likes.
   */
  async startScreenShare(sourceId: string | null = null): Promise<LocalState> {
    this.ensureIn();
    if (sourceId !== null) throw BROWSER_PICKS;
    if (this.share !== null || this.picking) throw ALREADY_SHARING;
    this.picking = true;
    let opened: OpenedScreen;
    try {
      opened = await openScreen(displayMedia());
    } finally {
      this.picking = false;
    }
    if ("error" in opened) throw opened.error;
    const track = opened.track;
    this.ensureIn(track);
    this.share = track;
    // The browser's own "Stop sharing", or the shared window closed.
    track.addEventListener("ended", () => {
      if (this.share === track) this.endShare("source_ended", null);
    });
    this.hooks.localMedia("screen", track);
    const session = this.session;
    if (session) {
      this.addScreenTransceiver(session, track);
      void session.negotiation.offer();
    }
    return this.localState();
  }

  /** Stops our share (`screen_share_ended` "stopped" and `local` follow); none: nothing to do. */
  async stopScreenShare(): Promise<LocalState> {
    this.ensureIn();
    this.endShare("stopped", null);
    return this.localState();
  }

  /**
   * Our share ended (`reason`): the capture stops, its transceiver goes inactive and a new
   * offer unpublishes it; the UI hears why, then the new local state.
   */
  private endShare(reason: ScreenShareEnd, detail: string | null): void {
    const track = this.share;
    if (track === null) return;
    this.share = null;
    stop(track);
    this.hooks.localMedia("screen", null);
    const session = this.session;
    const t = session?.transceivers.get("screen");
    if (session && t) {
      session.transceivers.delete("screen");
      session.declared.delete("screen");
      // As the engine's `remove_track`: the m-section stays, no longer sending.
      t.direction = "inactive";
      t.sender
        .replaceTrack(null)
        .catch((e: unknown) => console.warn("videoroom: taking the screen off its sender failed:", e));
      void session.negotiation.offer();
    }
    this.hooks.emit({ type: "screen_share_ended", reason, detail });
    this.hooks.emit({ type: "local", ...this.localState() });
  }

  /** A new `sendonly` transceiver for our share (its msid id is the transceiver's, fresh). */
  private addScreenTransceiver(session: Session, track: MediaStreamTrack): void {
    const t = session.pc.addTransceiver("video", { direction: "sendonly", streams: [session.stream] });
    session.transceivers.set("screen", t);
    t.sender
      .replaceTrack(track)
      .catch((e: unknown) => console.warn("videoroom: putting the screen on its sender failed:", e));
  }

  /** Throws if the room is over (and stops `track`, opened meanwhile). */
  private ensureIn(track?: MediaStreamTrack): void {
    if (this.state === "over") {
      stop(track);
      throw NOT_IN_ROOM;
    }
  }

  // --- sessions -----------------------------------------------------------------------------

  /** Makes a joined socket the current session: PeerConnection, our tracks, our offer. */
  private install(signal: Signal, joined: WireJoined): void {
    const session = new Session(
      signal,
      joined,
      (s, sdp) => this.declare(s, sdp),
      (what, e) => console.warn(`videoroom: ${what}:`, e),
    );
    this.session = session;
    const pc = session.pc;
    pc.onicecandidate = (ev) => {
      const c = ev.candidate;
      // The final null candidate (end of candidates) is not sent.
      if (!c || !c.candidate) return;
      signal.send({
        type: "ice_candidate",
        candidate: {
          candidate: c.candidate,
          sdp_mid: c.sdpMid,
          sdp_mline_index: c.sdpMLineIndex,
          ...(c.usernameFragment ? { username_fragment: c.usernameFragment } : {}),
        },
      });
    };
    pc.ontrack = () => this.bindRemote(session);
    pc.onconnectionstatechange = () => {
      switch (pc.connectionState) {
        case "connected":
          return this.setConnection(session, "connected");
        case "disconnected":
          return this.setConnection(session, "reconnecting");
        case "failed":
        case "closed":
          return this.lose(session, `media connection ${pc.connectionState}`);
        default:
          return this.setConnection(session, "connecting");
      }
    };
    session.ping = setInterval(() => {
      if (silent(signal.lastInbound, performance.now())) {
        const secs = Math.round((performance.now() - signal.lastInbound) / 1000);
        this.lose(session, `no answer from the server for ${secs} s`);
      } else if (!signal.ping()) {
        this.lose(session, "the connection closed");
      }
    }, PING_INTERVAL_MS);

    // Both sources get their transceiver now, a device or not (one found later goes on it), and
    // our offer goes out before any server offer is taken: the browser is the first offerer
    // of every session, as the engine is (a crossing server offer is ignored, the server
    // offers again after our answer). Tracks are put on in the background: the msid ids are
    // the transceivers', not the tracks'.
    for (const local of Object.values(this.local)) void this.addTransceiver(session, local);
    // A share that outlived the last session goes on in this one (under a new track id).
    if (this.share !== null && this.share.readyState === "live") this.addScreenTransceiver(session, this.share);
    void session.negotiation.offer();
    // Viewer hints the UI gave go to this session too (for the tracks it still has).
    const videos = [...this.model.remote.values()].filter((t) => t.kind === "video").map((t) => t.track_id);
    this.views.newSession(new Set(videos));
    this.flushViews();
    signal.listen(
      (msg) => this.onMessage(session, msg),
      (reason) => this.lose(session, reason),
    );
    this.hooks.emit({ type: "connection", state: "connecting" });
  }

  /** The tracks our offer (`sdp`, applied) publishes, by the msids the browser gave them. */
  private declare(session: Session, sdp: string): DeclaredTrack[] {
    const byMid = msidsByMid(sdp);
    const tracks: DeclaredTrack[] = [];
    for (const [source, t] of session.transceivers) {
      // A source without a device is offered (its m-section waits for one) but not declared.
      const local = source === "screen" ? null : this.local[source];
      if (local !== null && !local.has) continue;
      const msid = t.mid === null ? undefined : byMid.get(t.mid);
      if (!msid) continue;
      session.declared.set(source, msid.trackId);
      tracks.push({ track_id: msid.trackId, source, muted: local === null ? false : !this.sending(local) });
    }
    return tracks;
  }

  private setConnection(session: Session, state: ConnectionStateView): void {
    if (session !== this.session || session.connection === state) return;
    session.connection = state;
    this.hooks.emit({ type: "connection", state });
  }

  private onMessage(session: Session, msg: ServerMessage): void {
    if (session !== this.session || this.state !== "joined") return;
    switch (msg.type) {
      case "sdp_offer":
        void session.negotiation.onOffer(msg.sdp).then(() => this.bindRemote(session));
        return;
      case "sdp_answer":
        void session.negotiation.onAnswer(msg.sdp).then(() => this.bindRemote(session));
        return;
      case "ice_candidate":
        void session.negotiation.onCandidate(msg.candidate);
        return;
      default:
        break;
    }
    const { events, effect } = this.model.apply(msg);
    const answeredInvite =
      effect?.kind === "server_error" && this.invites.length > 0 && INVITE_REFUSALS.has(effect.code);
    if (!answeredInvite) for (const event of events) this.hooks.emit(event);
    for (const event of events) {
      if (event.type !== "track_removed") continue;
      this.dropRemote(session, event.trackId);
      this.dropStale((id) => id === event.trackId);
    }
    if (events.some((e) => e.type === "track_added")) this.bindRemote(session);
    for (const event of events) {
      if (event.type === "track_added" && event.kind === "video") this.views.trackAdded(event.trackId);
      if (event.type === "track_removed") this.views.trackRemoved(event.trackId);
    }
    this.flushViews();
    if (effect) void this.onEffect(session, effect);
  }

  /** Sends the viewer hints changed since the last time (none while reconnecting: they wait). */
  private flushViews(): void {
    const session = this.session;
    if (!session || this.state !== "joined") return;
    for (const views of this.views.takeChanges()) session.signal.send({ type: "set_view_sizes", views });
  }

  private async onEffect(session: Session, effect: Effect): Promise<void> {
    switch (effect.kind) {
      case "server_error":
        await session.negotiation.onServerError(effect.code);
        if (INVITE_REFUSALS.has(effect.code)) this.settleInvite(null, inviteRefusal(effect.code, effect.message));
        return;
      case "invite":
        this.settleInvite({ token: effect.token, url: effect.url, expiresAt: effect.expiresAt }, null);
        return;
      case "moderated":
        return this.moderated(effect.action, effect.by);
      case "ended":
        return this.finish(effect.reason, effect.error, false);
      case "lost":
        return this.lose(session, effect.reason);
    }
  }

  /**
   * A moderator acted on us: the device goes off as our own mute would (a share ends, with the
   * moderator's id), then the UI hears.
   */
  private async moderated(action: ModerationView, by: string): Promise<void> {
    try {
      if (action === "mute_microphone" && this.local.microphone.has) await this.setMicrophone(false);
      if (action === "stop_camera" && this.local.camera.has) await this.setCamera(false);
      if (action === "stop_screen") this.endShare("moderator", by);
    } catch (e) {
      console.warn("videoroom: turning media off for a moderator failed:", e);
    }
    this.hooks.emit({ type: "moderated", action, by });
    this.hooks.emit({ type: "local", ...this.localState() });
  }

  /**
   * Binds each receiving transceiver's track to the remote track its m-section carries now
   * (`a=msid`), once that track is announced. A transceiver the server reuses for another
   * track moves over.
   */
  private bindRemote(session: Session): void {
    if (session !== this.session) return;
    for (const t of session.pc.getTransceivers()) {
      const dir = t.currentDirection;
      if (t.mid === null || (dir !== "recvonly" && dir !== "sendrecv")) continue;
      const msid = session.negotiation.remoteMsids.get(t.mid);
      const info = msid ? this.model.remote.get(msid.trackId) : undefined;
      if (!msid || !info) continue;
      const track = t.receiver.track;
      if (session.media.get(msid.trackId)?.track === track) continue;
      for (const [id, m] of session.media) {
        if (m.track === track && id !== msid.trackId) this.dropRemote(session, id);
      }
      session.media.set(msid.trackId, { track, kind: info.kind });
      this.stale.delete(msid.trackId);
      this.hooks.remoteMedia(msid.trackId, info.kind, track);
      this.watchReady(session, msid.trackId, track);
    }
  }

  private dropRemote(session: Session, trackId: string): void {
    const m = session.media.get(trackId);
    if (!m) return;
    session.media.delete(trackId);
    session.ready.delete(trackId);
    this.hooks.remoteMedia(trackId, m.kind, null);
  }

  /** `track_ready` once media flows (a remote track unmutes at its first packets). */
  private watchReady(session: Session, trackId: string, track: MediaStreamTrack): void {
    const ready = () => {
      if (this.session !== session || session.media.get(trackId)?.track !== track) return;
      if (session.ready.has(trackId)) return;
      session.ready.add(trackId);
      this.hooks.emit({ type: "track_ready", trackId });
    };
    if (!track.muted) ready();
    else track.addEventListener("unmute", ready, { once: true });
  }

  /** Ends `session`; its remote media go, or (`keepMedia`, a rejoin follows) stay for now. */
  private closeSession(session: Session, leave: boolean, keepMedia = false): void {
    session.close(leave);
    if (keepMedia) {
      for (const [id, m] of session.media) this.stale.set(id, m.kind);
      session.media.clear();
    } else {
      for (const id of [...session.media.keys()]) this.dropRemote(session, id);
      this.dropStale(() => true);
    }
    if (this.session === session) this.session = null;
  }

  /** Drops the kept media of a lost session that `gone` says are gone. */
  private dropStale(gone: (trackId: string) => boolean): void {
    for (const [id, kind] of [...this.stale]) {
      if (!gone(id)) continue;
      this.stale.delete(id);
      this.hooks.remoteMedia(id, kind, null);
    }
  }

  /** The session is gone: rejoin, unless the room is over. */
  private lose(session: Session, reason: string): void {
    if (session !== this.session || this.state !== "joined") return;
    console.warn(`videoroom: session lost: ${reason}`);
    this.closeSession(session, false, true);
    this.model.sessionLost();
    this.state = "reconnecting";
    this.hooks.emit({ type: "connection", state: "reconnecting" });
    this.settleInvite(null, RECONNECTING, true);
    void this.rejoin(reason);
  }

  private async rejoin(reason: string): Promise<void> {
    const plan = new Rejoin(performance.now());
    for (;;) {
      if (this.state !== "reconnecting") return;
      try {
        const next = await connect(this.params.url, {
          room: this.params.room,
          name: this.params.name,
          token: this.params.token,
          resumeToken: this.model.resumeToken,
        });
        if (this.state !== "reconnecting") {
          next.signal.close();
          return;
        }
        for (const event of this.model.joined(next.joined)) this.hooks.emit(event);
        this.dropStale((id) => !this.model.remote.has(id));
        this.state = "joined";
        this.install(next.signal, next.joined);
        return;
      } catch (e) {
        if (!isFailure(e)) {
          return this.finish(`${reason}; reconnecting failed: ${String(e)}`, lostForGood(reason), true);
        }
        const step = plan.failed(e, performance.now());
        if (step.action === "give_up") {
          const why = `${reason}; reconnecting failed: ${step.why}`;
          return this.finish(why, lostForGood(why), true);
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, step.waitMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
      }
    }
  }

  /** The room is over for good: removed, ended, or reconnecting gave up. */
  private finish(reason: string, error: UiError, failed: boolean): void {
    if (this.state === "over") return;
    this.state = "over";
    this.wake?.();
    if (this.session) this.closeSession(this.session, false);
    this.dropStale(() => true);
    this.stopLocal();
    this.settleInvite(null, NOT_IN_ROOM, true);
    if (failed) this.hooks.emit({ type: "connection", state: "failed" });
    this.hooks.emit({ type: "closed", reason, error });
    this.hooks.ended();
  }

  /** Leaves (a `closed` event follows at once). */
  async leave(): Promise<void> {
    if (this.state === "over") throw NOT_IN_ROOM;
    this.leaveNow();
  }

  /** Leaves without waiting for anything (also when the page goes away). */
  leaveNow(): void {
    if (this.state === "over") return;
    this.state = "over";
    this.wake?.();
    if (this.session) this.closeSession(this.session, true);
    this.dropStale(() => true);
    this.stopLocal();
    this.settleInvite(null, NOT_IN_ROOM, true);
    this.hooks.emit({ type: "closed", reason: "left the room", error: null });
    this.hooks.ended();
  }

  // --- requests -----------------------------------------------------------------------------

  /** Sends `msg` on the current session (none while reconnecting). */
  send(msg: ClientMessage): void {
    if (this.state === "over") throw NOT_IN_ROOM;
    if (!this.session || this.state !== "joined" || !this.session.signal.send(msg)) throw RECONNECTING;
  }

  /**
   * Viewer hints: the device-pixel size the UI shows remote video tracks at (0×0: not shown).
   * Only changes go out; kept across a reconnection and told to the next session.
   */
  setViewSizes(views: readonly ViewSizeView[]): void {
    if (this.state === "over") throw NOT_IN_ROOM;
    for (const v of views) this.views.set(v.peerId, v.trackId, v.width, v.height);
    this.flushViews();
  }

  /** `create_invite` → `invite_created` (or the server's refusal). */
  createInvite(ttlSecs: number, moderator: boolean): Promise<InviteLink> {
    this.send({ type: "create_invite", ttl_secs: Math.round(ttlSecs), moderator });
    return new Promise((resolve, reject) => {
      const pending: PendingInvite = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.invites = this.invites.filter((p) => p !== pending);
          reject({
            kind: "timeout",
            message: "The server did not answer with an invite link.",
            hint: "This server may not create invite links; try again in a moment.",
          } satisfies UiError);
        }, INVITE_TIMEOUT_MS),
      };
      this.invites.push(pending);
    });
  }

  /** Settles the oldest pending invitation (all of them with `all`). */
  private settleInvite(invite: InviteLink | null, error: UiError | null, all = false): void {
    const settled = all ? this.invites.splice(0) : this.invites.splice(0, 1);
    for (const p of settled) {
      clearTimeout(p.timer);
      if (invite) p.resolve(invite);
      else p.reject(error ?? NOT_IN_ROOM);
    }
  }

  /** Test hooks: what the PeerConnection receives and sends, per track. */
  async stats(): Promise<unknown> {
    const session = this.session;
    if (!session) return { state: this.state, inbound: [], outbound: [] };
    const report = await session.pc.getStats();
    const byMid = new Map<string, string>();
    const sourceByMid = new Map<string, Source>();
    for (const [source, t] of session.transceivers) if (t.mid !== null) sourceByMid.set(t.mid, source);
    for (const t of session.pc.getTransceivers()) {
      const msid = t.mid === null ? undefined : session.negotiation.remoteMsids.get(t.mid);
      if (t.mid !== null && msid) byMid.set(t.mid, msid.trackId);
    }
    const inbound: unknown[] = [];
    const outbound: unknown[] = [];
    report.forEach((r: Record<string, unknown>) => {
      if (r.type === "inbound-rtp") {
        const trackId = typeof r.mid === "string" ? (byMid.get(r.mid) ?? null) : null;
        const info = trackId ? this.model.remote.get(trackId) : undefined;
        inbound.push({
          kind: r.kind,
          mid: r.mid,
          trackId,
          peerId: info?.peer_id ?? null,
          packetsReceived: r.packetsReceived ?? 0,
          bytesReceived: r.bytesReceived ?? 0,
          framesDecoded: r.framesDecoded ?? 0,
          frameWidth: r.frameWidth ?? 0,
          totalSamplesReceived: r.totalSamplesReceived ?? 0,
          audioLevel: r.audioLevel ?? 0,
        });
      } else if (r.type === "outbound-rtp") {
        outbound.push({
          kind: r.kind,
          mid: r.mid,
          // Camera, microphone or screen (null: a share that ended, its m-section inactive).
          source: typeof r.mid === "string" ? (sourceByMid.get(r.mid) ?? null) : null,
          packetsSent: r.packetsSent ?? 0,
          framesEncoded: r.framesEncoded ?? 0,
          frameWidth: r.frameWidth ?? 0,
        });
      }
    });
    const local = (l: Local) => (l.track === null ? null : l.track.readyState);
    return {
      state: this.state,
      selfId: this.model.selfId,
      local: {
        camera: local(this.local.camera),
        microphone: local(this.local.microphone),
        microphoneEnabled: this.local.microphone.track?.enabled ?? null,
        screen: this.share === null ? null : this.share.readyState,
      },
      connection: session.connection,
      declared: Object.fromEntries(session.declared),
      counts: session.negotiation.counts,
      inbound,
      outbound,
    };
  }
}

/** A refusal of `create_invite`, in words for whoever asked for the link. */
function inviteRefusal(code: string, message: string): UiError {
  if (code === "unknown_message_type" || code === "invalid_state") {
    return {
      kind: "rejected",
      message: "This server cannot create invite links.",
      hint: "Copy the room link instead, or ask whoever runs the server for an invitation.",
    };
  }
  return serverRefusal(code, message);
}
