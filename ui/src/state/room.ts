// The room as the UI sees it: a pure reducer over backend events (`UiEvent`) and a few UI
// actions. No DOM, no Tauri: unit-tested in Node (room.test.ts).

import type { ChatView } from "../bindings/ChatView";
import type { ConnectionStateView } from "../bindings/ConnectionStateView";
import type { Joined } from "../bindings/Joined";
import type { LocalState } from "../bindings/LocalState";
import type { PeerView } from "../bindings/PeerView";
import type { RoomInfo } from "../bindings/RoomInfo";
import type { ScreenShareEnd } from "../bindings/ScreenShareEnd";
import type { ScreenSource } from "../bindings/ScreenSource";
import type { TrackKind } from "../bindings/TrackKind";
import type { TrackSource } from "../bindings/TrackSource";
import type { UiError } from "../bindings/UiError";
import type { UiEvent } from "../bindings/UiEvent";
import { SCREEN_TRACK } from "../backend/types";
import { pickStage, type StageCandidate } from "../layout/presentation";
import { isOwn, mergeChat } from "./chat";
import { orderSources } from "./picker";
import {
  handText,
  lockText,
  moderatedText,
  moderatorText,
  privateMessageText,
  pushToast,
  resolveName,
  screenEndedText,
  type Toast,
  type ToastKind,
} from "./toasts";

/** The frame track of our own camera (lobby preview and self view). */
export const SELF_TRACK = "self";
/** The tile key of our own screen share. */
export const OWN_SCREEN_KEY = "self-screen";
/** What our own screen share's tile is called. */
export const OWN_SCREEN_NAME = "Your screen";
/** How many recent speakers the "who is talking" order remembers. */
export const MAX_RECENT_SPEAKERS = 4;
/** Room notices kept at once (older ones drop). */
const MAX_NOTICES = 3;

export interface TrackState {
  id: string;
  peerId: string;
  kind: TrackKind;
  /** Camera, microphone, screen or screen audio. */
  source: TrackSource;
  muted: boolean;
  /** The first frame was decoded / the first audio played. */
  ready: boolean;
}

export interface Notice {
  id: number;
  error: UiError;
}

export type PanelTab = "chat" | "people";

/** The side panel: open or not, and which tab (kept while it is closed). */
export interface PanelState {
  open: boolean;
  tab: PanelTab;
}

/** A line under the chat input: a command's error, /help, or the server's refusal. */
export interface ChatStatus {
  tone: "error" | "info";
  text: string;
}

/** Our screen picker (desktop, `picker: "ours"`) while it is open. */
export interface PickerState {
  /** What can be shared: screens first, then windows (`orderSources`). */
  sources: ScreenSource[];
  /** The index in `sources` of the highlighted one (Enter shares it). */
  selected: number;
  /** Why the last try failed, shown inside the picker with its hint. */
  error: UiError | null;
  /** A share is starting. */
  starting: boolean;
}

/** How the room is laid out, beyond what the tracks decide (presentation.ts). */
export interface LayoutView {
  /** The key of the tile pinned to the stage, or null. */
  pinned: string | null;
  /** The stage fills the window (only while there is a stage). */
  full: boolean;
}

export interface RoomState {
  view: "lobby" | "room";
  selfId: string | null;
  /** Everyone else, in the order they came. */
  peers: PeerView[];
  tracks: TrackState[];
  /**
   * Ids of the peers speaking now, sorted (the speaking ring). How it is made (`speakingNow`):
   * for the others the server's `active_speakers` is authoritative once it has sent one in
   * this room (it hears everyone's audio-level extension, even what we do not decode; before
   * that, e.g. an older server, our own meters of their audio stand in); for us, our own
   * microphone meter, for instant feedback, and so that a muted microphone never rings.
   */
  speaking: string[];
  /** Our microphone meter says we speak (and the microphone is on). */
  micSpeaking: boolean;
  /** Remote peers our own meters of their audio hear speaking, sorted. */
  levelSpeakers: string[];
  /**
   * The server's last `active_speakers` (peers present, or us), loudest first; null until it
   * sends one in this room (then `levelSpeakers` stands in).
   */
  serverSpeakers: string[] | null;
  /**
   * Who spoke lately, for the "who is talking" order (people list, which strip tiles show):
   * someone who starts speaking goes first and then keeps their place while they speak on, so
   * the order changes only when someone new speaks, never with every loudness change.
   * At most `MAX_RECENT_SPEAKERS` (the longest silent go first). Our own id too.
   */
  recentSpeakers: string[];
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
  /** Chat messages, oldest first (chat.ts). */
  chat: readonly ChatView[];
  /** Messages from others that came while the chat was not shown. */
  unread: number;
  /** Every id we had in this room (a rejoin gets a new one; our old messages stay ours). */
  ownIds: string[];
  /** The name of every peer seen in this room, those who left too (peer id → name). */
  names: Record<string, string>;
  /** We may moderate. */
  moderator: boolean;
  /** When our hand went up (server time), null while it is down. */
  handRaisedAt: number | null;
  /** The room takes no new participants. */
  locked: boolean;
  panel: PanelState;
  chatStatus: ChatStatus | null;
  /** Notifications, newest last (the view expires them). */
  toasts: Toast[];
  nextToastId: number;
  layout: LayoutView;
  /** Our screen picker, or null while it is closed. */
  picker: PickerState | null;
  /**
   * Why this machine cannot share a screen (listing what to share failed: no display, no
   * portal); the share button is disabled with it as its tooltip. Null: it may be tried.
   */
  shareUnavailable: UiError | null;
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
  | { type: "ui/dismiss-notice"; id: number }
  /** Open or close the side panel, or switch its tab. */
  | { type: "ui/panel"; open?: boolean; tab?: PanelTab }
  | { type: "ui/chat-status"; status: ChatStatus | null }
  | { type: "ui/dismiss-toast"; id: number }
  /** Something the person did worked (a link was copied). */
  | { type: "ui/toast"; kind: ToastKind; text: string }
  /** Pin a tile to the stage (null: unpin); pinning the pinned tile again unpins it. */
  | { type: "ui/pin"; key: string | null }
  /** Full-window on or off (`on` omitted: toggle); only while there is a stage. */
  | { type: "ui/full"; on?: boolean }
  /** Our picker opens with these sources (or shows them again, with `error`, after a failure). */
  | { type: "ui/picker-open"; sources: ScreenSource[]; error?: UiError | null }
  /** The highlighted source of the picker. */
  | { type: "ui/picker-select"; index: number }
  /** A share from the picker starts, or that attempt ended. */
  | { type: "ui/picker-starting"; on: boolean }
  /** A failure to show inside the picker. */
  | { type: "ui/picker-error"; error: UiError }
  | { type: "ui/picker-close" }
  /** Listing what to share failed (null: try again). */
  | { type: "ui/share-unavailable"; error: UiError | null };

export type RoomAction = UiEvent | UiAction;

export function initialRoomState(local?: Partial<LocalState>): RoomState {
  return {
    view: "lobby",
    selfId: null,
    peers: [],
    tracks: [],
    speaking: [],
    micSpeaking: false,
    levelSpeakers: [],
    serverSpeakers: null,
    recentSpeakers: [],
    connection: "connecting",
    local: { cameraOn: false, micOn: false, hasCamera: true, hasMicrophone: true, screenOn: false, ...local },
    localFromEvent: false,
    notices: [],
    nextNoticeId: 1,
    leaving: false,
    exitError: null,
    chat: [],
    unread: 0,
    ownIds: [],
    names: {},
    moderator: false,
    handRaisedAt: null,
    locked: false,
    panel: { open: false, tab: "chat" },
    chatStatus: null,
    toasts: [],
    nextToastId: 1,
    layout: { pinned: null, full: false },
    picker: null,
    shareUnavailable: null,
  };
}

/** The chat tab is on screen (messages arriving are read). */
export function chatVisible(state: RoomState): boolean {
  return state.panel.open && state.panel.tab === "chat";
}

export function applyEvent(state: RoomState, action: RoomAction): RoomState {
  return reconcileLayout(reduce(state, action));
}

/**
 * A pin whose tile went (its peer left, its screen share ended) is dropped, so it never comes
 * back by itself; full-window ends when there is no stage any more.
 */
function reconcileLayout(state: RoomState): RoomState {
  const { pinned, full } = state.layout;
  if (pinned === null && !full) return state;
  const keys = tileKeys(state);
  const keepPin = pinned !== null && keys.includes(pinned) ? pinned : null;
  const keepFull = full && pickStage(stageCandidates(state), keepPin) !== null;
  if (keepPin === pinned && keepFull === full) return state;
  return { ...state, layout: { pinned: keepPin, full: keepFull } };
}

function reduce(state: RoomState, action: RoomAction): RoomState {
  switch (action.type) {
    case "joined":
      return enterRoom(state, action.selfId, action.peers, action.room);
    case "ui/join-result": {
      // A `local` event that came first is newer.
      const local = state.localFromEvent ? state.local : action.local;
      // Already in the room through the `joined` event (whose tracks may have followed): keep it.
      if (state.view === "room" && state.selfId === action.joined.selfId) {
        return { ...state, local };
      }
      const { selfId, peers, room } = action.joined;
      return { ...enterRoom(state, selfId, peers, room), local };
    }
    case "peer_joined":
      return {
        ...state,
        peers: upsertPeer(state.peers, action.peer),
        names: withName(state.names, action.peer.id, action.peer.name),
      };
    case "peer_updated":
      return peerUpdated(state, action.peer);
    case "peer_left":
      return {
        ...state,
        peers: state.peers.filter((p) => p.id !== action.peerId),
        tracks: state.tracks.filter((t) => t.peerId !== action.peerId),
        speaking: without(state.speaking, action.peerId),
        levelSpeakers: without(state.levelSpeakers, action.peerId),
        serverSpeakers: state.serverSpeakers && without(state.serverSpeakers, action.peerId),
        recentSpeakers: without(state.recentSpeakers, action.peerId),
      };
    case "track_added": {
      const track: TrackState = {
        id: action.trackId,
        peerId: action.peerId,
        kind: action.kind,
        source: action.source,
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
      const { cameraOn, micOn, hasCamera, hasMicrophone, screenOn } = action;
      const local = { cameraOn, micOn, hasCamera, hasMicrophone, screenOn };
      // Sharing started (by the system's dialog, or a second window's request): no picker.
      const picker = screenOn && !state.local.screenOn ? null : state.picker;
      return { ...state, local, localFromEvent: true, picker };
    }
    case "screen_share_ended":
      return screenShareEnded(state, action.reason, action.detail);
    case "levels": {
      const micSpeaking = action.mic?.speaking === true && state.local.micOn && state.selfId !== null;
      const heard = new Set<string>();
      for (const { trackId, level } of action.tracks) {
        if (!level.speaking) continue;
        const track = state.tracks.find((t) => t.id === trackId);
        if (track && track.kind === "audio" && !track.muted) heard.add(track.peerId);
      }
      const levelSpeakers = [...heard].sort();
      return withSpeaking(state, {
        micSpeaking,
        levelSpeakers: sameList(levelSpeakers, state.levelSpeakers) ? state.levelSpeakers : levelSpeakers,
      });
    }
    case "active_speakers": {
      const present = new Set(state.peers.map((p) => p.id));
      const seen = new Set<string>();
      const server: string[] = [];
      for (const raw of action.peerIds) {
        // Our id of an earlier session counts as us; someone we do not know (yet) is skipped.
        const id = isSelfId(state, raw) && state.selfId !== null ? state.selfId : raw;
        if ((id === state.selfId || present.has(id)) && !seen.has(id)) {
          seen.add(id);
          server.push(id);
        }
      }
      const serverSpeakers =
        state.serverSpeakers !== null && sameList(server, state.serverSpeakers) ? state.serverSpeakers : server;
      const recent = recentSpeakersAfter(state.recentSpeakers, serverSpeakers, MAX_RECENT_SPEAKERS);
      return withSpeaking(state, {
        serverSpeakers,
        recentSpeakers: sameList(recent, state.recentSpeakers) ? state.recentSpeakers : recent,
      });
    }
    case "chat":
      return chatReceived(state, action.message);
    case "room_locked": {
      const by = action.by === null ? null : isSelfId(state, action.by) ? "you" : resolveName(state.names, action.by);
      return toast({ ...state, locked: action.locked }, "lock", lockText(action.locked, by));
    }
    case "moderated": {
      const next = action.action === "lower_hand" ? { ...state, handRaisedAt: null } : state;
      const text = moderatedText(action.action, resolveName(state.names, action.by));
      // `screen_share_ended` (reason moderator) may have said it already.
      if (action.action === "stop_screen" && lastToastSays(state, text)) return next;
      return toast(next, "moderated", text);
    }
    case "error": {
      if (action.error.kind === "rejected" && chatVisible(state)) {
        const { message, hint } = action.error;
        const text = [message.trim(), (hint ?? "").trim()].filter(Boolean).join(" ");
        return { ...state, chatStatus: { tone: "error", text: text || "The server refused that." } };
      }
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
    case "ui/panel": {
      const panel = { open: action.open ?? state.panel.open, tab: action.tab ?? state.panel.tab };
      if (panel.open === state.panel.open && panel.tab === state.panel.tab) return state;
      const next = { ...state, panel };
      return chatVisible(next) ? { ...next, unread: 0 } : next;
    }
    case "ui/chat-status":
      return state.chatStatus === action.status ? state : { ...state, chatStatus: action.status };
    case "ui/dismiss-toast":
      return { ...state, toasts: state.toasts.filter((t) => t.id !== action.id) };
    case "ui/toast":
      return toast(state, action.kind, action.text);
    case "ui/pin": {
      const pinned = action.key !== null && action.key !== state.layout.pinned ? action.key : null;
      if (pinned !== null && !tileKeys(state).includes(pinned)) return state;
      return pinned === state.layout.pinned ? state : { ...state, layout: { ...state.layout, pinned } };
    }
    case "ui/full": {
      const full = action.on ?? !state.layout.full;
      if (full === state.layout.full) return state;
      if (full && pickStage(stageCandidates(state), state.layout.pinned) === null) return state;
      return { ...state, layout: { ...state.layout, full } };
    }
    case "ui/picker-open": {
      if (state.view !== "room") return state;
      const sources = orderSources(action.sources);
      // Reopened after a failure: the same source stays highlighted if it is still there.
      const was = state.picker?.sources[state.picker.selected]?.id;
      const again = sources.findIndex((s) => s.id === was);
      const picker = { sources, selected: Math.max(0, again), error: action.error ?? null, starting: false };
      return { ...state, picker };
    }
    case "ui/picker-select": {
      const picker = state.picker;
      if (!picker || picker.sources.length === 0) return state;
      const selected = Math.min(Math.max(0, action.index), picker.sources.length - 1);
      return selected === picker.selected ? state : { ...state, picker: { ...picker, selected } };
    }
    case "ui/picker-starting":
      return state.picker ? { ...state, picker: { ...state.picker, starting: action.on } } : state;
    case "ui/picker-error":
      return state.picker
        ? { ...state, picker: { ...state.picker, error: action.error, starting: false } }
        : state;
    case "ui/picker-close":
      return state.picker === null ? state : { ...state, picker: null };
    case "ui/share-unavailable":
      return state.shareUnavailable === action.error ? state : { ...state, shareUnavailable: action.error };
  }
}

/**
 * Our share ended: the share button turns off (the `local` event that follows says so too), and
 * unless we stopped it ourselves a toast says why.
 */
function screenShareEnded(state: RoomState, reason: ScreenShareEnd, detail: string | null): RoomState {
  const next: RoomState = { ...state, local: { ...state.local, screenOn: false } };
  if (reason === "stopped") return next;
  const by = reason === "moderator" ? resolveName(state.names, detail) : null;
  const text = screenEndedText(reason, detail, by);
  // The `moderated` event (stop_screen) may have said it already.
  return lastToastSays(state, text) ? next : toast(next, "screen", text);
}

function lastToastSays(state: RoomState, text: string): boolean {
  return state.toasts[state.toasts.length - 1]?.text === text;
}


function isSelfId(state: RoomState, id: string): boolean {
  return id === state.selfId || state.ownIds.includes(id);
}

function toast(state: RoomState, kind: ToastKind, text: string, peerId: string | null = null): RoomState {
  return { ...state, ...pushToast(state, kind, text, peerId) };
}

function withName(names: Record<string, string>, id: string, name: string): Record<string, string> {
  return Object.hasOwn(names, id) && names[id] === name ? names : { ...names, [id]: name };
}

/**
 * Someone's hand, name or moderator grant changed. For our own id that is us: our own state
 * changes, the peer list does not (we are never in it).
 */
function peerUpdated(state: RoomState, peer: PeerView): RoomState {
  if (peer.id === state.selfId) {
    const next = { ...state, moderator: peer.moderator, handRaisedAt: peer.handRaisedAt };
    return peer.moderator && !state.moderator ? toast(next, "moderator", moderatorText(null)) : next;
  }
  const before = state.peers.find((p) => p.id === peer.id);
  let next: RoomState = {
    ...state,
    peers: upsertPeer(state.peers, peer),
    names: withName(state.names, peer.id, peer.name),
  };
  const name = resolveName(next.names, peer.id, "Someone");
  if (peer.handRaisedAt !== null && (before?.handRaisedAt ?? null) === null) {
    next = toast(next, "hand", handText(name), peer.id);
  }
  if (peer.moderator && before !== undefined && !before.moderator) {
    next = toast(next, "moderator", moderatorText(name), peer.id);
  }
  return next;
}

function chatReceived(state: RoomState, message: ChatView): RoomState {
  const chat = mergeChat(state.chat, [message]);
  if (chat === state.chat) return state;
  let next: RoomState = { ...state, chat, names: withName(state.names, message.from, message.fromName) };
  if (isOwn(message, state.ownIds) || chatVisible(state)) return next;
  next = { ...next, unread: state.unread + 1 };
  if (message.to !== null) {
    next = toast(next, "message", privateMessageText(message.fromName, message.text), message.from);
  }
  return next;
}

/**
 * The room as `joined` describes it: a new peer list (tracks follow as `track_added`), the
 * room's state, its chat history merged into ours (a rejoin sends it again).
 */
function enterRoom(state: RoomState, selfId: string, peers: PeerView[], room: RoomInfo): RoomState {
  const others = dedupePeers(peers.filter((p) => p.id !== selfId));
  let names = state.names;
  for (const m of room.chat) names = withName(names, m.from, m.fromName);
  for (const p of others) names = withName(names, p.id, p.name);
  const next: RoomState = {
    ...state,
    view: "room",
    selfId,
    peers: others,
    tracks: [],
    speaking: [],
    micSpeaking: false,
    levelSpeakers: [],
    // A rejoin: the same server tells us again who speaks (if anyone does); a first join: we
    // do not know yet whether this server sends `active_speakers` at all.
    serverSpeakers: state.view === "room" && state.serverSpeakers !== null ? [] : null,
    recentSpeakers: state.view === "room" ? state.recentSpeakers.filter((id) => id === selfId || others.some((p) => p.id === id)) : [],
    leaving: false,
    exitError: null,
    chat: mergeChat(state.chat, room.chat),
    ownIds: state.ownIds.includes(selfId) ? state.ownIds : [...state.ownIds, selfId],
    names,
    moderator: room.moderator,
    // Our hand, if it is still up, comes back as a `peer_updated` for our id.
    handRaisedAt: state.selfId === selfId ? state.handRaisedAt : null,
    locked: room.locked,
  };
  // Rejoined after the grant passed to us meanwhile.
  return state.view === "room" && room.moderator && !state.moderator
    ? toast(next, "moderator", moderatorText(null))
    : next;
}

/**
 * Back to the lobby: everything about the room goes; the local device state and whether the
 * side panel is open stay.
 */
function lobbyState(state: RoomState): RoomState {
  return {
    ...initialRoomState({ ...state.local, screenOn: false }),
    nextNoticeId: state.nextNoticeId,
    nextToastId: state.nextToastId,
    panel: state.panel,
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

type SpeakingInputs = Pick<RoomState, "micSpeaking" | "levelSpeakers" | "serverSpeakers" | "recentSpeakers">;

/** `state` with new speaking inputs and the `speaking` they make; the same object if none changed. */
function withSpeaking(state: RoomState, patch: Partial<SpeakingInputs>): RoomState {
  const next = { ...state, ...patch };
  const speaking = speakingNow(next);
  const unchanged =
    next.micSpeaking === state.micSpeaking &&
    next.levelSpeakers === state.levelSpeakers &&
    next.serverSpeakers === state.serverSpeakers &&
    next.recentSpeakers === state.recentSpeakers &&
    sameList(speaking, state.speaking);
  if (unchanged) return state;
  return { ...next, speaking: sameList(speaking, state.speaking) ? state.speaking : speaking };
}

/**
 * Who rings now (see `RoomState.speaking`): us by our own meter; the others by the server's
 * list once it sends one, else by our meters of their audio. Sorted.
 */
export function speakingNow(s: SpeakingInputs & Pick<RoomState, "selfId">): string[] {
  const others = (s.serverSpeakers ?? s.levelSpeakers).filter((id) => id !== s.selfId);
  const all = s.micSpeaking && s.selfId !== null ? [...others, s.selfId] : others;
  return all.sort();
}

/**
 * The recent speakers after the server says `speakingNow` (loudest first): those who were not
 * in the list go to the front (the loudest first), everyone else keeps their place; over `max`,
 * the last who is not speaking now drops (or the last of all when everyone is).
 */
export function recentSpeakersAfter(recent: readonly string[], speakingNow: readonly string[], max: number): string[] {
  const fresh = speakingNow.filter((id) => !recent.includes(id));
  const next = [...fresh, ...recent];
  while (next.length > max) {
    let drop = -1;
    for (let i = next.length - 1; i >= 0; i--) {
      if (!speakingNow.includes(next[i]!)) {
        drop = i;
        break;
      }
    }
    next.splice(drop < 0 ? next.length - 1 : drop, 1);
  }
  return next;
}

// --- what the grid shows ------------------------------------------------------------------

export interface TileModel {
  /**
   * Stable across renders and reconnections: "self" for us, "peer:<id>" for the others,
   * "screen:<id>" for a peer's shared screen.
   */
  key: string;
  /** A person (camera or initials) or a shared screen. */
  kind: "person" | "screen";
  /** Our own id ("self" before it is known) or the peer's. */
  peerId: string;
  name: string;
  isSelf: boolean;
  /** The frame track to show, or null (placeholder). */
  videoTrack: string | null;
  cameraOff: boolean;
  micMuted: boolean;
  speaking: boolean;
  /** When the hand went up (server time), null while it is down. */
  handRaisedAt: number | null;
  moderator: boolean;
  /** The person shares a screen (for a screen tile: always). */
  sharing: boolean;
}

/** A peer's screen share that is on (published and not muted), or null. */
function screenOf(state: RoomState, peerId: string): TrackState | null {
  // The newest one if there were ever two.
  const screens = state.tracks.filter((t) => t.peerId === peerId && t.source === "screen" && !t.muted);
  return screens[screens.length - 1] ?? null;
}

/** The keys of every tile (`allTilesOf`), without building them. */
function tileKeys(state: RoomState): string[] {
  return stageCandidates(state).map((t) => t.key);
}

/**
 * Every tile as `pickStage` sees it, screens in the order their tracks came. Our own share is
 * no candidate for the stage by itself (we know what we share): only when pinned.
 */
export function stageCandidates(state: RoomState): StageCandidate[] {
  const people = ["self", ...state.peers.map((p) => `peer:${p.id}`)].map((key) => ({ key, screen: false }));
  const own = ownScreenOn(state) ? [{ key: OWN_SCREEN_KEY, screen: false }] : [];
  const screens = sharedScreens(state).map((t) => ({ key: `screen:${t.peerId}`, screen: true }));
  return [...people, ...own, ...screens];
}

/** We share a screen (while in the room). */
function ownScreenOn(state: RoomState): boolean {
  return state.view === "room" && state.local.screenOn;
}

/** One screen track per sharing peer still in the room, in the order they came. */
function sharedScreens(state: RoomState): TrackState[] {
  const present = new Set(state.peers.map((p) => p.id));
  const out: TrackState[] = [];
  for (const t of state.tracks) {
    if (t.source !== "screen" || t.muted || !present.has(t.peerId)) continue;
    if (screenOf(state, t.peerId) !== t) continue;
    out.push(t);
  }
  return out;
}

/** The tile key of a peer's screen share. */
export function screenKey(peerId: string): string {
  return `screen:${peerId}`;
}

/** What a screen tile is called: "Ada's screen". */
export function screenName(name: string): string {
  const who = name.trim() || "Someone";
  return who.endsWith("s") || who.endsWith("S") ? `${who}' screen` : `${who}'s screen`;
}

/** The tile of a shared screen (ours or another's). */
function screenTile(key: string, peerId: string, name: string, videoTrack: string, isSelf: boolean): TileModel {
  return {
    key,
    kind: "screen",
    peerId,
    name,
    isSelf,
    videoTrack,
    cameraOff: false,
    micMuted: false,
    speaking: false,
    handRaisedAt: null,
    moderator: false,
    sharing: true,
  };
}

/**
 * People tiles, then our own share ("Your screen", the preview of what we send), then one tile
 * per screen the others share (in the order the shares started).
 */
export function allTilesOf(state: RoomState, selfName: string): TileModel[] {
  const people = tilesOf(state, selfName);
  const own: TileModel[] = ownScreenOn(state)
    ? [screenTile(OWN_SCREEN_KEY, state.selfId ?? SELF_TRACK, OWN_SCREEN_NAME, SCREEN_TRACK, true)]
    : [];
  const screens = sharedScreens(state).map((t) => {
    const peer = state.peers.find((p) => p.id === t.peerId);
    return screenTile(screenKey(t.peerId), t.peerId, screenName(peer?.name ?? ""), t.id, false);
  });
  return [...people, ...own, ...screens];
}

/** Person tiles in display order: ourselves first, then the others in the order they came. */
export function tilesOf(state: RoomState, selfName: string): TileModel[] {
  const selfId = state.selfId ?? SELF_TRACK;
  const selfCamera = state.local.cameraOn && state.local.hasCamera;
  const tiles: TileModel[] = [
    {
      key: "self",
      kind: "person",
      peerId: selfId,
      name: selfName,
      isSelf: true,
      videoTrack: selfCamera ? SELF_TRACK : null,
      cameraOff: !selfCamera,
      micMuted: !(state.local.micOn && state.local.hasMicrophone),
      speaking: state.speaking.includes(selfId),
      handRaisedAt: state.handRaisedAt,
      moderator: state.moderator,
      sharing: ownScreenOn(state),
    },
  ];
  for (const peer of state.peers) {
    const mine = state.tracks.filter((t) => t.peerId === peer.id);
    // The camera by source: a screen share has its own tile, never the face.
    const video = mine.find((t) => t.kind === "video" && t.source === "camera" && !t.muted) ?? null;
    const audio = mine.find((t) => t.kind === "audio" && t.source === "microphone" && !t.muted) ?? null;
    tiles.push({
      key: `peer:${peer.id}`,
      kind: "person",
      peerId: peer.id,
      name: peer.name,
      isSelf: false,
      videoTrack: video?.id ?? null,
      cameraOff: video === null,
      micMuted: audio === null,
      speaking: state.speaking.includes(peer.id),
      handRaisedAt: peer.handRaisedAt,
      moderator: peer.moderator,
      sharing: screenOf(state, peer.id) !== null,
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
