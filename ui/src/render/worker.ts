// The render worker: owns the frame socket and every tile's canvas.
//
// Per binary message it credits the slot at once (the backend then sends that slot's newest
// frame when there is one), keeps only the newest frame per slot, and draws the slots that
// changed at the next animation frame. Nothing queues: a slow screen skips frames.

import { BenchStats } from "./bench";
import { COMMON_SOURCES, readBurnedInTile, tileBandRows } from "./burnedIn";
import { fnv1aSubsample } from "./hash";
import type { FromWorker, ProbeResult, ToWorker } from "./messages";
import {
  FLAG_NO_STAMP,
  HEADER_BYTES,
  creditMessage,
  parseHeader,
  statsMessage,
  tilesMessage,
  type FrameHeader,
  type TileSpec,
} from "./protocol";
import { BitmapRenderer, Canvas2DRenderer, type Renderer } from "./renderer";

/** The parts of DedicatedWorkerGlobalScope used here (the project compiles with the DOM lib). */
interface WorkerScope {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
}
const scope = self as unknown as WorkerScope;

interface Slot {
  slot: number;
  track: string;
  renderer: Renderer;
  /** The newest frame not drawn yet. */
  pending: { buf: ArrayBuffer; header: FrameHeader } | null;
  drawn: number;
  last: FrameHeader | null;
  /** Index in COMMON_SOURCES that decoded last time (bench), tried first. */
  sourceGuess: number;
}

const MIN_RETRY_MS = 250;
const MAX_RETRY_MS = 5000;

const slots = new Map<number, Slot>();
let tiles: TileSpec[] = [];
let url: string | null = null;
let bench = false;
let readback = false;
let socket: WebSocket | null = null;
let retryDelay = MIN_RETRY_MS;
let retryTimer: ReturnType<typeof setTimeout> | null = null;
let drawScheduled = false;
const stats = new BenchStats();
let statsTimer: ReturnType<typeof setInterval> | null = null;

scope.onmessage = (event) => {
  const msg = event.data;
  switch (msg.type) {
    case "config":
      bench = msg.bench;
      readback = msg.readback || msg.bench;
      if (bench && statsTimer === null) statsTimer = setInterval(sendStats, 1000);
      break;
    case "connect":
      if (url !== msg.url) {
        url = msg.url;
        reconnectNow();
      }
      break;
    case "attach":
      attach(msg.slot, msg.track, msg.canvas);
      break;
    case "detach":
      slots.get(msg.slot)?.renderer.dispose();
      slots.delete(msg.slot);
      break;
    case "tiles":
      tiles = msg.tiles;
      send(tilesMessage(tiles));
      break;
    case "probe":
      scope.postMessage({ type: "probe", id: msg.id, result: probe(msg.slot) });
      break;
  }
};

function attach(slot: number, track: string, canvas: OffscreenCanvas | null): void {
  slots.get(slot)?.renderer.dispose();
  let renderer: Renderer;
  try {
    renderer = canvas
      ? new Canvas2DRenderer(canvas, readback)
      : new BitmapRenderer((bitmap) => scope.postMessage({ type: "bitmap", slot, bitmap }, [bitmap]));
  } catch (e) {
    console.error(`tile ${slot}: cannot draw`, e);
    return;
  }
  slots.set(slot, { slot, track, renderer, pending: null, drawn: 0, last: null, sourceGuess: 0 });
}

// --- socket -------------------------------------------------------------------------------

function send(text: string): void {
  if (socket?.readyState === WebSocket.OPEN) socket.send(text);
}

function reconnectNow(): void {
  if (retryTimer !== null) clearTimeout(retryTimer);
  retryTimer = null;
  retryDelay = MIN_RETRY_MS;
  if (socket) {
    const old = socket;
    socket = null;
    old.onclose = null;
    old.close();
  }
  connect();
}

function connect(): void {
  if (!url) return;
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  socket = ws;
  let opened = false;
  ws.onopen = () => {
    opened = true;
    retryDelay = MIN_RETRY_MS;
    ws.send(tilesMessage(tiles));
    scope.postMessage({ type: "socket", open: true });
  };
  ws.onmessage = (event: MessageEvent<ArrayBuffer | string>) => {
    if (typeof event.data !== "string") onFrame(ws, event.data);
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = null;
    for (const s of slots.values()) s.pending = null;
    // Report losing the socket, not every failed attempt to get it back.
    if (opened) scope.postMessage({ type: "socket", open: false });
    retryTimer = setTimeout(() => {
      retryTimer = null;
      connect();
    }, retryDelay);
    retryDelay = Math.min(retryDelay * 2, MAX_RETRY_MS);
  };
  // An error is followed by close, which retries.
  ws.onerror = () => {};
}

function onFrame(ws: WebSocket, buf: ArrayBuffer): void {
  if (buf.byteLength < 4) return;
  const slot = new DataView(buf).getUint16(2, true);
  ws.send(creditMessage(slot));
  const header = parseHeader(buf);
  if (typeof header === "string") {
    console.warn(`frame for slot ${slot} dropped: bad header (${header})`);
    return;
  }
  const s = slots.get(slot);
  if (!s) return;
  if (bench) stats.recordReceived(slot, s.track);
  s.pending = { buf, header };
  scheduleDraw();
}

// --- drawing ------------------------------------------------------------------------------

function scheduleDraw(): void {
  if (drawScheduled) return;
  drawScheduled = true;
  if (typeof requestAnimationFrame === "function") requestAnimationFrame(drawPending);
  else setTimeout(drawPending, 16);
}

function drawPending(): void {
  drawScheduled = false;
  for (const s of slots.values()) {
    const frame = s.pending;
    if (!frame) continue;
    s.pending = null;
    const { header } = frame;
    try {
      s.renderer.draw(frame.buf, HEADER_BYTES, header.width, header.height);
    } catch (e) {
      console.error(`tile ${s.slot}: draw failed`, e);
      continue;
    }
    s.drawn++;
    s.last = header;
    if (s.drawn === 1) scope.postMessage({ type: "first-frame", slot: s.slot });
    if (bench) measure(s, header);
  }
}

/** Bench mode: decode the stamp from the drawn pixels (top band only) and record the latency. */
function measure(s: Slot, header: FrameHeader): void {
  let stamp = null;
  if ((header.flags & FLAG_NO_STAMP) === 0) {
    const band = s.renderer.read(tileBandRows(header.width, header.height));
    const found = band
      ? readBurnedInTile(band, header.width, header.height, COMMON_SOURCES, s.sourceGuess)
      : null;
    if (found) {
      s.sourceGuess = found.source;
      stamp = found.stamp;
    }
  }
  stats.recordDraw(s.slot, s.track, stamp, performance.timeOrigin + performance.now());
}

/** Bench mode, every second: the figures of the last second for every tile shown. */
function sendStats(): void {
  const shown = new Map<number, string>();
  for (const s of slots.values()) shown.set(s.slot, s.track);
  const figures = stats.take(shown);
  if (figures.length > 0) send(statsMessage(figures));
}

// --- test hooks ---------------------------------------------------------------------------

function probe(slot: number): ProbeResult | null {
  const s = slots.get(slot);
  if (!s) return null;
  const pixels = s.renderer.read();
  return {
    drawn: s.drawn,
    hash: pixels ? fnv1aSubsample(pixels.data, pixels.width, pixels.height) : 0,
    frameNumber: s.last ? s.last.frameNumber : null,
    width: pixels?.width ?? 0,
    height: pixels?.height ?? 0,
  };
}
