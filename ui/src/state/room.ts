// The room as the UI sees it: a pure reducer over backend events (`UiEvent`) and a few UI
// actions. No DOM, no Tauri: unit-tested in Node (room.test.ts).

import type { ConnectionStateView } from "../bindings/ConnectionStateView";
import type { Joined } from "../bindings/Joined";
import type { LocalState } from "../bindings/LocalState";
import type { PeerView } from "../bindings/PeerView";
import type { TrackKind } from "../bindings/TrackKind";
import type { UiError } from "../bindings/UiError";
import type { UiEvent } from "../bindings/UiEvent";

/** The frame track of our own camera (lobby preview and self view). */
export const SELF_TRACK = "self";
/** Room notices kept at once (older ones drop). */
const MAX_NOTICES = 3;

export interface TrackState {
  id: string;
  peerId: string;
  kind: TrackKind;
  muted: boolean;
  /** The first frame was decoded / the first audio played. */
  ready: boolean;
}

export interface Notice {
  id: number;
  error: UiError;
}

export interface RoomState {
  view: "lobby" | "room";
  selfId: string | null;
  /** Everyone else, in the order they came. */
  peers: PeerView[];
  tracks: TrackState[];
  /** Ids of the peers speaking now (our own id when our microphone picks up speech). */
  speaking: string[];
  connection: ConnectionStateView;
  local: LocalState;
  /** A `local` event came since the join started (it is newer than `join`'s answer). */
  localFromEvent: boolean;
  /** Failures the room survived (`error` events), newest last. */
  notices: Notice[];
  nextNoticeId: number;
  /** We asked to leave: the following `closed` is expected. */
  leaving: boolean;
  /** Why the last room ended, shown in the lobby (null after a plain leave). */
  exitError: UiError | null;
}

/** Things the UI itself does, next to the backend's events. */
export type UiAction =
  /** `join` returned (the `joined` event may have come first, or may follow). */
  | { type: "ui/join-result"; joined: Joined; local: LocalState }
  /** A join starts: the last exit message goes away. */
  | { type: "ui/joining" }
  | { type: "ui/leave-requested" }
  /** `leave` returned: back to the lobby even if `closed` never comes. */
  | { type: "ui/left" }
  | { type: "ui/dismiss-notice"; id: number };

export type RoomAction = UiEvent | UiAction;

export function initialRoomState(local?: Partial<LocalState>): RoomState {
  return {
    view: "lobby",
    selfId: null,
    peers: [],
    tracks: [],
    speaking: [],
    connection: "connecting",
    local: { cameraOn: false, micOn: false, hasCamera: true, hasMicrophone: true, ...local },
    localFromEvent: false,
    notices: [],
    nextNoticeId: 1,
    leaving: false,
    exitError: null,
  };
}

export function applyEvent(state: RoomState, action: RoomAction): RoomState {
  switch (action.type) {
    case "joined":
      return enterRoom(state, action.selfId, action.peers);
    case "ui/join-result": {
      // A `local` event that came first is newer.
      const local = state.localFromEvent ? state.local : action.local;
      // Already in the room through the `joined` event (whose tracks may have followed): keep it.
      if (state.view === "room" && state.selfId === action.joined.selfId) {
        return { ...state, local };
      }
      return { ...enterRoom(state, action.joined.selfId, action.joined.peers), local };
    }
    case "peer_joined":
    case "peer_updated":
      return { ...state, peers: upsertPeer(state.peers, action.peer) };
    case "peer_left":
      return {
        ...state,
        peers: state.peers.filter((p) => p.id !== action.peerId),
        tracks: state.tracks.filter((t) => t.peerId !== action.peerId),
        speaking: without(state.speaking, action.peerId),
      };
    case "track_added": {
      const track: TrackState = {
        id: action.trackId,
        peerId: action.peerId,
        kind: action.kind,
        muted: action.muted,
        ready: false,
      };
      return { ...state, tracks: [...state.tracks.filter((t) => t.id !== track.id), track] };
    }
    case "track_ready":
      return updateTrack(state, action.trackId, { ready: true });
    case "track_muted":
      return updateTrack(state, action.trackId, { muted: action.muted });
    case "track_removed":
      if (!state.tracks.some((t) => t.id === action.trackId)) return state;
      return { ...state, tracks: state.tracks.filter((t) => t.id !== action.trackId) };
    case "connection":
      return state.connection === action.state ? state : { ...state, connection: action.state };
    case "local": {
      const { cameraOn, micOn, hasCamera, hasMicrophone } = action;
      return { ...state, local: { cameraOn, micOn, hasCamera, hasMicrophone }, localFromEvent: true };
    }
    case "levels": {
      const speaking = new Set<string>();
      if (action.mic?.speaking && state.local.micOn && state.selfId !== null) {
        speaking.add(state.selfId);
      }
      for (const { trackId, level } of action.tracks) {
        if (!level.speaking) continue;
        const track = state.tracks.find((t) => t.id === trackId);
        if (track && track.kind === "audio" && !track.muted) speaking.add(track.peerId);
      }
      const next = [...speaking].sort();
      return sameList(next, state.speaking) ? state : { ...state, speaking: next };
    }
    case "error": {
      const notices = [...state.notices, { id: state.nextNoticeId, error: action.error }];
      return {
        ...state,
        notices: notices.slice(-MAX_NOTICES),
        nextNoticeId: state.nextNoticeId + 1,
      };
    }
    case "closed": {
      let exitError = action.error;
      if (!exitError && !state.leaving && state.view === "room") {
        // Ended without an error and without us leaving: say so rather than vanish.
        exitError = { kind: "internal", message: "The call ended.", hint: action.reason };
      }
      return { ...lobbyState(state), exitError };
    }
    case "ui/joining":
      return {
        ...state,
        exitError: null,
        leaving: false,
        connection: "connecting",
        localFromEvent: false,
      };
    case "ui/leave-requested":
      return { ...state, leaving: true };
    case "ui/left":
      return state.view === "lobby" ? state : { ...lobbyState(state), exitError: null };
    case "ui/dismiss-notice":
      return { ...state, notices: state.notices.filter((n) => n.id !== action.id) };
  }
}

/** The room as `joined` describes it: a new peer list; tracks follow as `track_added`. */
function enterRoom(state: RoomState, selfId: string, peers: PeerView[]): RoomState {
  return {
    ...state,
    view: "room",
    selfId,
    peers: dedupePeers(peers),
    tracks: [],
    speaking: [],
    leaving: false,
    exitError: null,
  };
}

/** Back to the lobby: everything about the room goes, the local device state stays. */
function lobbyState(state: RoomState): RoomState {
  return {
    ...initialRoomState(state.local),
    nextNoticeId: state.nextNoticeId,
  };
}

function upsertPeer(peers: PeerView[], peer: PeerView): PeerView[] {
  const i = peers.findIndex((p) => p.id === peer.id);
  if (i < 0) return [...peers, peer];
  const next = peers.slice();
  next[i] = peer;
  return next;
}

function dedupePeers(peers: PeerView[]): PeerView[] {
  return peers.reduce<PeerView[]>((acc, p) => upsertPeer(acc, p), []);
}

function updateTrack(state: RoomState, id: string, patch: Partial<TrackState>): RoomState {
  if (!state.tracks.some((t) => t.id === id)) return state;
  return { ...state, tracks: state.tracks.map((t) => (t.id === id ? { ...t, ...patch } : t)) };
}

function without(list: string[], item: string): string[] {
  return list.includes(item) ? list.filter((x) => x !== item) : list;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// --- what the grid shows ------------------------------------------------------------------

export interface TileModel {
  /** Stable across renders and reconnections: "self" for us, "peer:<id>" for the others. */
  key: string;
  /** Our own id ("self" before it is known) or the peer's. */
  peerId: string;
  name: string;
  isSelf: boolean;
  /** The frame track to show, or null (placeholder). */
  videoTrack: string | null;
  cameraOff: boolean;
  micMuted: boolean;
  speaking: boolean;
}

/** Tiles in display order: ourselves first, then the others in the order they came. */
export function tilesOf(state: RoomState, selfName: string): TileModel[] {
  const selfId = state.selfId ?? SELF_TRACK;
  const selfCamera = state.local.cameraOn && state.local.hasCamera;
  const tiles: TileModel[] = [
    {
      key: "self",
      peerId: selfId,
      name: selfName,
      isSelf: true,
      videoTrack: selfCamera ? SELF_TRACK : null,
      cameraOff: !selfCamera,
      micMuted: !(state.local.micOn && state.local.hasMicrophone),
      speaking: state.speaking.includes(selfId),
    },
  ];
  for (const peer of state.peers) {
    const mine = state.tracks.filter((t) => t.peerId === peer.id);
    const video = mine.find((t) => t.kind === "video" && !t.muted) ?? null;
    const audio = mine.find((t) => t.kind === "audio" && !t.muted) ?? null;
    tiles.push({
      key: `peer:${peer.id}`,
      peerId: peer.id,
      name: peer.name,
      isSelf: false,
      videoTrack: video?.id ?? null,
      cameraOff: video === null,
      micMuted: audio === null,
      speaking: state.speaking.includes(peer.id),
    });
  }
  return tiles;
}

/** Up to two initials for the placeholder of a tile without video. */
export function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return "?";
  const first = [...words[0]!][0] ?? "";
  const last = words.length > 1 ? ([...words[words.length - 1]!][0] ?? "") : "";
  return (first + last).toUpperCase();
}
