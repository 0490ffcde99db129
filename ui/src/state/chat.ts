// The chat log (pure; the reducer in room.ts keeps it in `RoomState.chat`). Messages are the
// server's (`ChatView`), ours included: the server echoes what we send, stamped.

import type { ChatView } from "../bindings/ChatView";
import { linkify, type Segment } from "./links";

/** Messages kept at once (the oldest drop). */
export const MAX_CHAT = 500;

/**
 * What makes a message the same message. A rejoin re-sends the room's history, so ids repeat;
 * a restarted server starts its ids again, so the id alone is not enough.
 */
export function chatKey(m: ChatView): string {
  return `${m.id}|${m.sentAt}|${m.from}`;
}

function before(a: ChatView, b: ChatView): boolean {
  return a.sentAt < b.sentAt || (a.sentAt === b.sentAt && a.id < b.id);
}

/**
 * The log with `incoming` added: one entry per message, oldest first (by server time, then
 * id), at most `max` (the newest). Returns `log` itself when nothing is new.
 */
export function mergeChat(
  log: readonly ChatView[],
  incoming: readonly ChatView[],
  max = MAX_CHAT,
): readonly ChatView[] {
  const seen = new Set(log.map(chatKey));
  const added: ChatView[] = [];
  for (const m of incoming) {
    const key = chatKey(m);
    if (seen.has(key)) continue;
    seen.add(key);
    added.push(m);
  }
  if (added.length === 0) return log;
  const last = log[log.length - 1];
  // The usual case: one live message, newer than everything.
  const inOrder =
    added.length === 1 && (last === undefined || !before(added[0]!, last));
  const merged = inOrder
    ? [...log, ...added]
    : [...log, ...added].sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
  return merged.length > max ? merged.slice(merged.length - max) : merged;
}

/** Whether a message comes from us (under any id we had in this room: rejoins change it). */
export function isOwn(m: ChatView, ownIds: readonly string[]): boolean {
  return ownIds.includes(m.from);
}

/** A message as the chat list shows it. */
export interface ChatItem {
  key: string;
  fromName: string;
  own: boolean;
  private: boolean;
  /** For a private message: "to Grace", "to you". */
  privateLabel: string | null;
  /** HH:MM, local time. */
  time: string;
  /** The full date and time, for a tooltip. */
  timeTitle: string;
  /** ISO 8601, for `<time datetime>`. */
  isoTime: string;
  text: string;
  /** The text split into plain text and links (links.ts). */
  segments: Segment[];
  /** Same sender as the message before, shortly after it: the header can be left out. */
  continued: boolean;
}

/** Messages closer together than this (same sender) share one header. */
const GROUP_MS = 2 * 60_000;

/**
 * The log as the chat list shows it. `nameOf` names a peer id (the recipients of our private
 * messages may have left; it falls back to "private").
 */
export function chatItems(
  log: readonly ChatView[],
  ownIds: readonly string[],
  nameOf: (id: string) => string | null,
): ChatItem[] {
  let prev: ChatView | null = null;
  return log.map((m) => {
    const own = isOwn(m, ownIds);
    const priv = m.to !== null;
    let privateLabel: string | null = null;
    if (m.to !== null) {
      const toName = ownIds.includes(m.to) ? "you" : nameOf(m.to);
      privateLabel = toName ? `to ${toName}` : "private";
    }
    const continued =
      prev !== null &&
      prev.from === m.from &&
      prev.to === m.to &&
      m.sentAt - prev.sentAt < GROUP_MS;
    prev = m;
    const date = new Date(m.sentAt);
    return {
      key: chatKey(m),
      fromName: m.fromName,
      own,
      private: priv,
      privateLabel,
      time: formatTime(m.sentAt),
      timeTitle: date.toLocaleString(),
      isoTime: date.toISOString(),
      text: m.text,
      segments: linkify(m.text),
      continued,
    };
  });
}

const pad = (n: number) => String(n).padStart(2, "0");

/** HH:MM in local time. */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The unread badge's text. */
export function badgeText(count: number): string {
  return count > 99 ? "99+" : String(count);
}
