// The signaling messages of docs/protocol.md (version 1) as the browser sends and receives
// them: JSON objects tagged by `type`, field names in snake_case. The Rust definition is
// `protocol/src/messages.rs`; these types cover what this client uses.

export const PROTOCOL_VERSION = 1;

export type WireKind = "audio" | "video";
export type WireSource = "microphone" | "camera" | "screen" | "screen_audio";
export type WireModeration = "mute_microphone" | "stop_camera" | "stop_screen" | "lower_hand";

export interface WirePeer {
  peer_id: string;
  display_name: string;
  metadata?: unknown;
  moderator?: boolean;
  hand_raised_at?: number | null;
}

export interface WireTrack {
  track_id: string;
  peer_id: string;
  kind: WireKind;
  source: WireSource;
  muted: boolean;
}

export interface WireChat {
  id: number;
  from: string;
  from_name: string;
  to?: string | null;
  text: string;
  sent_at: number;
}

export interface WireCandidate {
  candidate: string;
  sdp_mid?: string | null;
  sdp_mline_index?: number | null;
  username_fragment?: string | null;
}

export interface WireIceServer {
  urls: string[] | string;
  username?: string;
  credential?: string;
}

/** One published track as a client's `sdp_offer` declares it. */
export interface DeclaredTrack {
  track_id: string;
  source: WireSource;
  muted: boolean;
}

export type ClientMessage =
  | {
      type: "join";
      protocol_version: number;
      room: string;
      display_name: string;
      resume_token?: string;
      token?: string;
    }
  | { type: "sdp_offer"; sdp: string; tracks: DeclaredTrack[] }
  | { type: "sdp_answer"; sdp: string }
  | { type: "ice_candidate"; candidate: WireCandidate }
  | { type: "update_track"; track_id: string; muted: boolean }
  | { type: "leave" }
  | { type: "ping"; id: number }
  | { type: "chat"; text: string; to?: string }
  | { type: "raise_hand"; raised: boolean }
  | { type: "moderate"; peer_id: string; action: WireModeration }
  | { type: "remove_peer"; peer_id: string; reason?: string }
  | { type: "lock_room"; locked: boolean }
  | { type: "end_meeting" }
  | { type: "create_invite"; ttl_secs: number; moderator: boolean }
  | { type: "set_view_sizes"; views: WireViewSize[] };

/** A viewer hint: how large we show a remote video track, device pixels (0×0: not shown). */
export interface WireViewSize {
  peer_id: string;
  track_id: string;
  width: number;
  height: number;
}

/** The most entries one `set_view_sizes` may carry (`MAX_VIEW_SIZES`). */
export const MAX_VIEW_SIZES = 64;

export interface WireJoined {
  type: "joined";
  protocol_version: number;
  peer_id: string;
  room: string;
  peers?: WirePeer[];
  tracks?: WireTrack[];
  ice_servers?: WireIceServer[];
  moderator?: boolean;
  locked?: boolean;
  chat_history?: WireChat[];
  resume_token?: string;
}

export type ServerMessage =
  | WireJoined
  | { type: "join_error"; code: string; message: string }
  | { type: "peer_joined"; peer: WirePeer }
  | { type: "peer_left"; peer_id: string }
  | { type: "peer_updated"; peer: WirePeer }
  | { type: "tracks_added"; tracks: WireTrack[] }
  | { type: "tracks_removed"; track_ids: string[] }
  | { type: "track_updated"; track: WireTrack }
  | { type: "sdp_offer"; sdp: string }
  | { type: "sdp_answer"; sdp: string }
  | { type: "ice_candidate"; candidate: WireCandidate }
  | { type: "error"; code: string; message: string }
  | { type: "pong"; id?: number }
  | { type: "chat"; message: WireChat }
  | { type: "room_updated"; locked: boolean; by?: string | null }
  | { type: "moderated"; action: WireModeration; by: string }
  | { type: "removed"; by: string; reason?: string | null }
  | { type: "meeting_ended"; by: string }
  | { type: "closing"; reason: string }
  | { type: "active_speakers"; peer_ids: string[] }
  | { type: "invite_created"; token?: string | null; url?: string | null; expires_at?: number | null };

/** Parses one text frame from the server; null if it is not a message object. */
export function parseServerMessage(text: string): ServerMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  if (typeof (value as { type?: unknown }).type !== "string") return null;
  return value as ServerMessage;
}
