// Invite links (`videoroom-server token --room R`): recognising one pasted into the lobby, and
// what it does to the lobby values (pure; the signals live in store.ts).
//
// A link is `https://HOST[:PORT][/PREFIX]/r/ROOM#token=JWT` (`http://` for a server without
// TLS): the room percent-encoded in the last path segment, the token in the fragment (or, from
// hand-made links, the query). The server's WebSocket is `/ws` next to `/r/`.

import type { Settings } from "../bindings/Settings";
import { invalid, type ErrorView } from "./errors";

/** What the lobby takes from an invite link. */
export interface Invite {
  /** `wss://HOST[:PORT]/ws` (`ws://` for an `http://` link). */
  serverUrl: string;
  /** The room, decoded. */
  room: string;
  /** The invitation token (a JWT). */
  token: string;
}

export type InviteParse =
  | { kind: "invite"; invite: Invite }
  /** An invite link whose token is missing or cut short (copied in part). */
  | { kind: "incomplete" }
  /** Not an invite link: the text is taken as typed. */
  | { kind: "none" };

/** A JWT: three base64url segments (header, claims, signature), without padding. */
export const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Everything before `/r/ROOM` (a base path, if the server lives under one), and ROOM. */
const ROOM_PATH = /^(.*)\/r\/([^/]+)\/?$/;

/** Recognises an invite link in `text` (whitespace around it is ignored). */
export function parseInvite(text: string): InviteParse {
  const trimmed = text.trim();
  if (!/^https?:\/\//i.test(trimmed)) return { kind: "none" };
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    return { kind: "none" };
  }
  if (url.username || url.password || !url.host) return { kind: "none" };
  const path = ROOM_PATH.exec(url.pathname);
  if (!path) return { kind: "none" };
  const [, prefix = "", encodedRoom = ""] = path;
  let room: string;
  try {
    room = decodeURIComponent(encodedRoom).trim();
  } catch {
    return { kind: "none" };
  }
  if (!room) return { kind: "none" };

  const fromFragment = new URLSearchParams(url.hash.replace(/^#/, "")).get("token");
  const raw = fromFragment ?? url.searchParams.get("token") ?? "";
  // A trailing slash after the token (`…#token=T/`) is not part of it.
  const token = raw.trim().replace(/\/+$/, "");
  if (!JWT.test(token)) return { kind: "incomplete" };

  const scheme = url.protocol === "https:" ? "wss" : "ws";
  return { kind: "invite", invite: { serverUrl: `${scheme}://${url.host}${prefix}/ws`, room, token } };
}

/** The lobby's error for an invite link that was not copied whole. */
export const INCOMPLETE_INVITE: ErrorView = invalid(
  "That invite link is incomplete: copy the whole link.",
  "Copy it again from the message you were sent, right to its end.",
);

/** Whether two server addresses name the same server (case, spaces, a trailing slash aside). */
export function sameServer(a: string, b: string): boolean {
  const norm = (url: string) => url.trim().replace(/\/+$/, "").toLowerCase();
  return norm(a) === norm(b);
}

/**
 * The lobby values after `text` was typed or pasted into the server or room field, and the
 * lobby error to show (null: none).
 *
 * An invite link fills server, room and token. Anything else goes into the field as typed; a
 * different server drops the token (it is only good for the server that issued it), a
 * different room keeps it (the server refuses a token for another room in words of its own).
 */
export function editServerOrRoom(
  values: Settings,
  field: "serverUrl" | "room",
  text: string,
  recognize = true,
): { values: Settings; error: ErrorView | null } {
  // While a person types, a link is only text: half a link would be taken for a whole one
  // (or flagged as cut short) at every keystroke. It is recognised when pasted, when the field
  // is left, and when joining.
  const parsed = recognize ? parseInvite(text) : ({ kind: "none" } as const);
  if (parsed.kind === "invite") {
    return { values: { ...values, ...parsed.invite }, error: null };
  }
  const next = { ...values, [field]: text };
  if (field === "serverUrl" && !sameServer(values.serverUrl, text)) next.token = null;
  return { values: next, error: parsed.kind === "incomplete" ? INCOMPLETE_INVITE : null };
}

/**
 * The web address of a server, from its signaling socket: `ws://HOST[:PORT][/PREFIX]/ws` →
 * `http://HOST[:PORT][/PREFIX]` (`wss` → `https`). Null for something else.
 */
export function webBase(serverUrl: string): string | null {
  let url: URL;
  try {
    url = new URL(serverUrl.trim());
  } catch {
    return null;
  }
  const scheme = url.protocol === "wss:" ? "https:" : url.protocol === "ws:" ? "http:" : null;
  if (scheme === null || !url.host) return null;
  const prefix = url.pathname.replace(/\/+$/, "").replace(/\/ws$/, "");
  return `${scheme}//${url.host}${prefix}`;
}

/**
 * A link to `room` on the server of `serverUrl`: `<base>/r/<room>`, with `#token=<token>` for
 * an invitation (in the fragment, which browsers never send to a server or a referrer).
 */
export function roomLink(serverUrl: string, room: string, token: string | null = null): string | null {
  const base = webBase(serverUrl);
  const name = room.trim();
  if (base === null || !name) return null;
  return `${base}/r/${encodeURIComponent(name)}${token ? `#token=${token}` : ""}`;
}

/** How long an invitation made in the room may be valid: the choices offered. */
export const INVITE_TTLS: readonly { secs: number; label: string }[] = [
  { secs: 3600, label: "1 hour" },
  { secs: 86_400, label: "1 day" },
  { secs: 7 * 86_400, label: "7 days" },
];
