// The signaling WebSocket (docs/protocol.md): connect, `join` and wait for `joined`, then
// deliver every message in order. Messages that arrive before the room listens are kept.

import type { AttemptFailure } from "./reconnect";
import { PROTOCOL_VERSION, parseServerMessage, type ClientMessage, type ServerMessage, type WireJoined } from "./wire";

/** How long the socket may take to open, and the server to answer `join` (the engine's). */
export const CONNECT_TIMEOUT_MS = 10_000;
export const JOIN_TIMEOUT_MS = 10_000;

export interface JoinRequest {
  room: string;
  name: string;
  token: string | null;
  resumeToken: string | null;
}

export class Signal {
  /** When the server last sent anything (`performance.now()`). */
  lastInbound = performance.now();
  private handler: ((msg: ServerMessage) => void) | null = null;
  private closeHandler: ((reason: string) => void) | null = null;
  private queued: ServerMessage[] = [];
  private closedReason: string | null = null;
  private nextPing = 0;

  private constructor(private readonly ws: WebSocket) {
    ws.onmessage = (ev: MessageEvent) => {
      this.lastInbound = performance.now();
      if (typeof ev.data !== "string") return;
      const msg = parseServerMessage(ev.data);
      if (msg === null) {
        console.warn("videoroom: a server message that is not JSON was ignored");
        return;
      }
      if (this.handler) this.handler(msg);
      else this.queued.push(msg);
    };
    ws.onclose = (ev: CloseEvent) => {
      const reason = `the server closed the connection (${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`;
      this.closedReason ??= reason;
      this.closeHandler?.(reason);
    };
  }

  /** Opens a socket to `url` (failures are `network`, retried by a rejoin). */
  static open(url: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<Signal> {
    return new Promise((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(url);
      } catch (e) {
        reject({ kind: "network", message: `cannot open ${url}: ${String(e)}` } satisfies AttemptFailure);
        return;
      }
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        ws.close();
        reject({ kind: "network", message: `no connection within ${timeoutMs} ms`, timeout: true } satisfies AttemptFailure);
      }, timeoutMs);
      ws.onopen = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(new Signal(ws));
      };
      ws.onclose = (ev) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject({
          kind: "network",
          message: `the connection failed (${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`,
        } satisfies AttemptFailure);
      };
    });
  }

  /** Sends `join` and waits for the answer: `joined`, or why not. */
  join(request: JoinRequest, timeoutMs = JOIN_TIMEOUT_MS): Promise<WireJoined> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        done();
        reject({ kind: "network", message: `no answer to join within ${timeoutMs} ms`, timeout: true } satisfies AttemptFailure);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.handler = null;
        this.closeHandler = null;
      };
      this.closeHandler = (reason) => {
        done();
        reject({ kind: "network", message: reason, closed: true } satisfies AttemptFailure);
      };
      this.handler = (msg) => {
        switch (msg.type) {
          case "joined":
            done();
            resolve(msg);
            return;
          case "join_error":
          case "error":
            done();
            reject({ kind: "refused", code: msg.code, message: msg.message } satisfies AttemptFailure);
            return;
          case "closing":
            done();
            reject({ kind: "network", message: `the server is closing: ${msg.reason}`, closed: true } satisfies AttemptFailure);
            return;
          default:
            // Nothing else comes before `joined`.
            return;
        }
      };
      const sent = this.send({
        type: "join",
        protocol_version: PROTOCOL_VERSION,
        room: request.room,
        display_name: request.name,
        ...(request.resumeToken ? { resume_token: request.resumeToken } : {}),
        ...(request.token ? { token: request.token } : {}),
      });
      if (!sent) this.closeHandler(this.closedReason ?? "the connection closed");
    });
  }

  /** Delivers every message (those that came meanwhile first) and the close to the room. */
  listen(onMessage: (msg: ServerMessage) => void, onClose: (reason: string) => void): void {
    this.handler = onMessage;
    this.closeHandler = onClose;
    const queued = this.queued;
    this.queued = [];
    for (const msg of queued) onMessage(msg);
    if (this.closedReason !== null) onClose(this.closedReason);
  }

  /** Sends `msg`; false if the socket is not open. */
  send(msg: ClientMessage): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  ping(): boolean {
    this.nextPing++;
    return this.send({ type: "ping", id: this.nextPing });
  }

  /** Closes the socket; no more messages or close reports reach the room. */
  close(code = 1000): void {
    this.handler = null;
    this.closeHandler = null;
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(code);
    }
  }
}
