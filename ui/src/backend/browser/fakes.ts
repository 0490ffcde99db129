// Test support (Vitest runs in Node, which has no WebRTC): just enough of a browser for a
// `BrowserRoom` to join, publish and renegotiate. `installFakeBrowser` puts fakes of WebSocket,
// RTCPeerConnection, MediaStream and navigator.mediaDevices on `globalThis`. The fake server
// answers `join` with `joined` and every `sdp_offer` with an `sdp_answer`, and keeps what the
// client sent; the fake PeerConnection writes real-looking SDP (a=mid, direction, a=msid of
// the transceiver while it sends), which is what the room reads its declared track ids from.
// Not part of the app: only *.test.ts files import it.

import { vi } from "vitest";
import type { ClientMessage, ServerMessage } from "./wire";

/** A MediaStreamTrack: `end()` is the browser ending it (its "Stop sharing" bar). */
export class FakeTrack extends EventTarget {
  private static n = 0;
  readonly id = `track-${++FakeTrack.n}`;
  readyState: MediaStreamTrackState = "live";
  enabled = true;
  muted = false;
  contentHint = "";

  constructor(
    readonly kind: "audio" | "video",
    readonly label: string = kind,
  ) {
    super();
  }

  /** Our own stop: no "ended" event (as in browsers). */
  stop(): void {
    this.readyState = "ended";
  }

  /** The browser ends the track: "ended" fires. */
  end(): void {
    if (this.readyState === "ended") return;
    this.readyState = "ended";
    this.dispatchEvent(new Event("ended"));
  }

  getSettings(): MediaTrackSettings {
    return {};
  }
}

export class FakeStream {
  private readonly tracks: FakeTrack[];
  readonly id = "stream-1";

  constructor(tracks: FakeTrack[] = []) {
    this.tracks = [...tracks];
  }
  getTracks(): FakeTrack[] {
    return [...this.tracks];
  }
  getVideoTracks(): FakeTrack[] {
    return this.tracks.filter((t) => t.kind === "video");
  }
  getAudioTracks(): FakeTrack[] {
    return this.tracks.filter((t) => t.kind === "audio");
  }
}

export class FakeSender {
  track: FakeTrack | null = null;
  async replaceTrack(track: FakeTrack | null): Promise<void> {
    this.track = track;
  }
}

export class FakeTransceiver {
  mid: string | null = null;
  currentDirection: RTCRtpTransceiverDirection | null = null;
  readonly sender = new FakeSender();
  readonly receiver: { track: FakeTrack };

  constructor(
    readonly kind: "audio" | "video",
    public direction: RTCRtpTransceiverDirection,
    /** The msid track id the browser gives this transceiver's sender. */
    readonly msidTrack: string,
  ) {
    this.receiver = { track: new FakeTrack(kind) };
  }

  sends(): boolean {
    return this.direction === "sendonly" || this.direction === "sendrecv";
  }
}

export class FakePeerConnection {
  static last: FakePeerConnection | null = null;
  private static n = 0;
  signalingState: RTCSignalingState = "stable";
  connectionState: RTCPeerConnectionState = "new";
  localDescription: { type: RTCSdpType; sdp: string } | null = null;
  onicecandidate: ((ev: unknown) => void) | null = null;
  ontrack: ((ev: unknown) => void) | null = null;
  onconnectionstatechange: (() => void) | null = null;
  readonly transceivers: FakeTransceiver[] = [];
  closed = false;
  private mids = 0;

  constructor() {
    FakePeerConnection.last = this;
  }

  addTransceiver(kind: "audio" | "video", init: { direction?: RTCRtpTransceiverDirection }): FakeTransceiver {
    const t = new FakeTransceiver(kind, init.direction ?? "sendrecv", `sender-${++FakePeerConnection.n}`);
    this.transceivers.push(t);
    return t;
  }

  getTransceivers(): FakeTransceiver[] {
    return [...this.transceivers];
  }

  /** An offer with one m-section per transceiver; a=msid only where it sends. */
  async createOffer(): Promise<RTCSessionDescriptionInit> {
    let sdp = "v=0\r\n";
    // Transceivers without a mid get the next ones, as setLocalDescription gives them.
    let next = this.mids;
    this.transceivers.forEach((t) => {
      const mid = t.mid ?? String(next++);
      sdp += `m=${t.kind} 9 UDP/TLS/RTP/SAVPF ${t.kind === "video" ? 96 : 111}\r\na=mid:${mid}\r\na=${t.direction}\r\n`;
      if (t.sends()) sdp += `a=msid:stream-1 ${t.msidTrack}\r\n`;
    });
    return { type: "offer", sdp };
  }

  async createAnswer(): Promise<RTCSessionDescriptionInit> {
    return { type: "answer", sdp: "v=0\r\n" };
  }

  async setLocalDescription(d?: RTCSessionDescriptionInit): Promise<void> {
    if (d?.type === "offer") {
      this.signalingState = "have-local-offer";
      for (const t of this.transceivers) if (t.mid === null) t.mid = String(this.mids++);
    } else if (d?.type === "answer" || d?.type === "rollback") {
      this.signalingState = "stable";
    }
    if (d?.type === "offer" || d?.type === "answer") this.localDescription = { type: d.type, sdp: d.sdp ?? "" };
  }

  async setRemoteDescription(d: RTCSessionDescriptionInit): Promise<void> {
    if (d.type === "answer") {
      this.signalingState = "stable";
      for (const t of this.transceivers) if (t.mid !== null) t.currentDirection = t.direction;
    } else {
      this.signalingState = "have-remote-offer";
    }
  }

  async addIceCandidate(): Promise<void> {}

  async getStats(): Promise<Map<string, unknown>> {
    return new Map();
  }

  close(): void {
    this.closed = true;
    this.connectionState = "closed";
  }

  /** The transceivers sending now, by msid track id. */
  sending(): Map<string, FakeTransceiver> {
    return new Map(this.transceivers.filter((t) => t.sends()).map((t) => [t.msidTrack, t]));
  }
}

/** The server's side of the socket. */
export class FakeServer {
  readonly received: ClientMessage[] = [];
  socket: FakeWebSocket | null = null;

  /** Messages of `type` the client sent, in order. */
  sent<T extends ClientMessage["type"]>(type: T): Extract<ClientMessage, { type: T }>[] {
    return this.received.filter((m): m is Extract<ClientMessage, { type: T }> => m.type === type);
  }

  /** Sends `msg` to the client (as a text frame, later: never inside the client's own call). */
  push(msg: ServerMessage): void {
    const ws = this.socket;
    if (!ws) throw new Error("no client socket");
    setTimeout(() => ws.onmessage?.({ data: JSON.stringify(msg) }), 0);
  }

  receive(msg: ClientMessage): void {
    this.received.push(msg);
    if (msg.type === "join") {
      this.push({ type: "joined", protocol_version: 1, peer_id: "p-me", room: msg.room, peers: [], tracks: [] });
    } else if (msg.type === "sdp_offer") {
      this.push({ type: "sdp_answer", sdp: "v=0\r\n" });
    }
  }
}

export class FakeWebSocket {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  static server: FakeServer = new FakeServer();
  readyState = FakeWebSocket.CONNECTING;
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;

  constructor(readonly url: string) {
    FakeWebSocket.server.socket = this;
    setTimeout(() => {
      this.readyState = FakeWebSocket.OPEN;
      this.onopen?.();
    }, 0);
  }

  send(data: string): void {
    FakeWebSocket.server.receive(JSON.parse(data) as ClientMessage);
  }

  close(): void {
    this.readyState = FakeWebSocket.CLOSED;
  }
}

/** `navigator.mediaDevices` with a camera, a microphone and a replaceable `getDisplayMedia`. */
export interface FakeMediaDevices {
  getUserMedia(c: MediaStreamConstraints): Promise<FakeStream>;
  enumerateDevices(): Promise<unknown[]>;
  getDisplayMedia?: (options: DisplayMediaStreamOptions) => Promise<FakeStream>;
}

/**
 * Installs the fakes (undone by `vi.unstubAllGlobals`); returns the server and the media
 * devices, whose `getDisplayMedia` the test sets.
 */
export function installFakeBrowser(): { server: FakeServer; devices: FakeMediaDevices } {
  const server = new FakeServer();
  FakeWebSocket.server = server;
  FakePeerConnection.last = null;
  const devices: FakeMediaDevices = {
    getUserMedia: async (c) => new FakeStream([new FakeTrack(c.video ? "video" : "audio")]),
    enumerateDevices: async () => [],
  };
  vi.stubGlobal("WebSocket", FakeWebSocket);
  vi.stubGlobal("RTCPeerConnection", FakePeerConnection);
  vi.stubGlobal("MediaStream", FakeStream);
  vi.stubGlobal("navigator", { mediaDevices: devices });
  return { server, devices };
}
