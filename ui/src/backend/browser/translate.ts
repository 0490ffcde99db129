// The room as the browser engine knows it, and protocol messages turned into `UiEvent`s
// (pure; unit-tested in translate.test.ts). It keeps what the Rust engine keeps
// (client/src/room/mod.rs): our id, the ids of our own earlier sessions ("ghosts": a rejoin
// gets a new id while the server may still list the old one), the peers, and the remote
// tracks announced in this session. Negotiation messages are not handled here.

import type { ChatView } from "../../bindings/ChatView";
import type { ModerationView } from "../../bindings/ModerationView";
import type { PeerView } from "../../bindings/PeerView";
import type { RoomInfo } from "../../bindings/RoomInfo";
import type { UiError } from "../../bindings/UiError";
import type { UiEvent } from "../../bindings/UiEvent";
import { serverRefusal } from "./errors";
import type { ServerMessage, WireChat, WireJoined, WirePeer, WireTrack } from "./wire";

export function peerView(p: WirePeer): PeerView {
  return {
    id: p.peer_id,
    name: p.display_name,
    moderator: p.moderator === true,
    handRaisedAt: typeof p.hand_raised_at === "number" ? p.hand_raised_at : null,
  };
}

export function chatView(m: WireChat): ChatView {
  return {
    id: m.id,
    from: m.from,
    fromName: m.from_name,
    to: m.to ?? null,
    text: m.text,
    sentAt: m.sent_at,
  };
}

export function roomInfo(j: WireJoined): RoomInfo {
  return {
    moderator: j.moderator === true,
    locked: j.locked === true,
    chat: (j.chat_history ?? []).map(chatView),
  };
}

/** What the engine must do beyond telling the UI. */
export type Effect =
  /** A moderator turned our microphone or camera off: turn the device off. */
  | { kind: "moderated"; action: ModerationView; by: string }
  /** Removed, or the meeting ended: the room is over (no rejoin); `error` says why. */
  | { kind: "ended"; reason: string; error: UiError }
  /** The server is closing this connection: a session loss like any other. */
  | { kind: "lost"; reason: string }
  /** The server refused something (`error`): `code` for the negotiation and pending requests. */
  | { kind: "server_error"; code: string; message: string }
  /** The answer to `create_invite`. */
  | { kind: "invite"; token: string | null; url: string | null; expiresAt: number | null };

export interface Applied {
  events: UiEvent[];
  effect: Effect | null;
}

const MODERATIONS: readonly ModerationView[] = ["mute_microphone", "stop_camera", "stop_screen", "lower_hand"];

export class RoomModel {
  selfId: string | null = null;
  /** Our own earlier peer ids in this room (filtered out of everything). */
  readonly ghosts = new Set<string>();
  readonly peers = new Map<string, WirePeer>();
  /** Remote tracks announced in the current session. */
  readonly remote = new Map<string, WireTrack>();
  moderator = false;
  locked = false;
  /** The `resume_token` of the last `joined`, for a rejoin. */
  resumeToken: string | null = null;

  /**
   * A `joined` (the first one, or after a rejoin): the `joined` event (peers without our
   * ghosts), `track_removed` for tracks of the last session that are gone, `track_added` for
   * every track present.
   */
  joined(msg: WireJoined): UiEvent[] {
    const before = new Set(this.remote.keys());
    this.selfId = msg.peer_id;
    this.moderator = msg.moderator === true;
    this.locked = msg.locked === true;
    this.resumeToken = msg.resume_token ? msg.resume_token : null;
    this.peers.clear();
    this.remote.clear();
    const peers = (msg.peers ?? []).filter((p) => !this.isOwn(p.peer_id));
    for (const p of peers) this.peers.set(p.peer_id, p);
    const tracks = (msg.tracks ?? []).filter((t) => !this.isOwn(t.peer_id));
    const events: UiEvent[] = [
      { type: "joined", selfId: msg.peer_id, peers: peers.map(peerView), room: roomInfo(msg) },
    ];
    const present = new Set(tracks.map((t) => t.track_id));
    for (const id of before) if (!present.has(id)) events.push({ type: "track_removed", trackId: id });
    for (const t of tracks) events.push(this.addTrack(t));
    return events;
  }

  /** The session was lost: our id becomes a ghost (a rejoin gets a new one). */
  sessionLost(): void {
    if (this.selfId !== null) this.ghosts.add(this.selfId);
  }

  /** Our own id, now or in an earlier session. */
  isOwn(peerId: string): boolean {
    return peerId === this.selfId || this.ghosts.has(peerId);
  }

  /** A display name for a person (`"You"` for us, `"A moderator"` when unknown). */
  nameOf(peerId: string): string {
    if (peerId === this.selfId) return "You";
    return this.peers.get(peerId)?.display_name ?? "A moderator";
  }

  /** Every message but `joined`, `join_error` and the negotiation's. */
  apply(msg: ServerMessage): Applied {
    const none: Applied = { events: [], effect: null };
    const only = (event: UiEvent): Applied => ({ events: [event], effect: null });
    switch (msg.type) {
      case "peer_joined":
        if (this.ghosts.has(msg.peer.peer_id)) return none;
        this.peers.set(msg.peer.peer_id, msg.peer);
        return only({ type: "peer_joined", peer: peerView(msg.peer) });
      case "peer_left":
        if (this.ghosts.has(msg.peer_id)) return none;
        this.peers.delete(msg.peer_id);
        return only({ type: "peer_left", peerId: msg.peer_id });
      case "peer_updated": {
        const p = msg.peer;
        if (this.ghosts.has(p.peer_id)) return none;
        if (p.peer_id === this.selfId) this.moderator = p.moderator === true;
        else if (this.peers.has(p.peer_id)) this.peers.set(p.peer_id, p);
        return only({ type: "peer_updated", peer: peerView(p) });
      }
      case "tracks_added":
        return {
          events: msg.tracks.filter((t) => !this.isOwn(t.peer_id)).map((t) => this.addTrack(t)),
          effect: null,
        };
      case "tracks_removed": {
        const events: UiEvent[] = [];
        for (const id of msg.track_ids) {
          // Not announced to us (a ghost's track): nothing to remove.
          if (this.remote.delete(id)) events.push({ type: "track_removed", trackId: id });
        }
        return { events, effect: null };
      }
      case "track_updated": {
        const t = msg.track;
        const known = this.remote.get(t.track_id);
        // One of ours (the server confirms our own updates), or unknown.
        if (!known) return none;
        this.remote.set(t.track_id, t);
        if (known.muted === t.muted) return none;
        return only({ type: "track_muted", trackId: t.track_id, muted: t.muted });
      }
      case "active_speakers": {
        // Loudest first; our ids (this session's or a ghost's) are the room state's to judge.
        const ids = Array.isArray(msg.peer_ids) ? msg.peer_ids.filter((id) => typeof id === "string") : [];
        return only({ type: "active_speakers", peerIds: ids });
      }
      case "chat":
        return only({ type: "chat", message: chatView(msg.message) });
      case "room_updated":
        this.locked = msg.locked;
        return only({ type: "room_locked", locked: msg.locked, by: msg.by ?? null });
      case "moderated": {
        if (!MODERATIONS.includes(msg.action)) return none;
        return { events: [], effect: { kind: "moderated", action: msg.action, by: msg.by } };
      }
      case "removed": {
        const who = this.nameOf(msg.by);
        const reason = msg.reason
          ? `${who} removed you from the room: ${msg.reason}`
          : `${who} removed you from the room`;
        const error: UiError = {
          kind: "removed",
          message: msg.reason ? `${reason}` : `${reason}.`,
          hint: "You can join again unless the room is locked.",
        };
        return { events: [], effect: { kind: "ended", reason, error } };
      }
      case "meeting_ended": {
        const who = this.nameOf(msg.by);
        return {
          events: [],
          effect: {
            kind: "ended",
            reason: `${who} ended the meeting`,
            error: { kind: "meeting_ended", message: `${who} ended the meeting for everyone.`, hint: null },
          },
        };
      }
      case "error":
        return {
          events: [{ type: "error", error: serverRefusal(msg.code, msg.message) }],
          effect: { kind: "server_error", code: msg.code, message: msg.message },
        };
      case "closing":
        return { events: [], effect: { kind: "lost", reason: `server closing: ${msg.reason}` } };
      case "invite_created":
        return {
          events: [],
          effect: { kind: "invite", token: msg.token ?? null, url: msg.url ?? null, expiresAt: msg.expires_at ?? null },
        };
      case "pong":
      case "joined":
      case "join_error":
      case "sdp_offer":
      case "sdp_answer":
      case "ice_candidate":
        return none;
    }
  }

  private addTrack(t: WireTrack): UiEvent {
    this.remote.set(t.track_id, t);
    return {
      type: "track_added",
      trackId: t.track_id,
      peerId: t.peer_id,
      kind: t.kind,
      source: t.source,
      muted: t.muted,
    };
  }
}
