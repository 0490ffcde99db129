// Short notifications ("toasts") that help a person follow what happens in the room (pure;
// the reducer in room.ts keeps them, the view expires them).

import type { ModerationView } from "../bindings/ModerationView";

/** Toasts kept at once (older ones drop). */
export const MAX_TOASTS = 4;
/** How much of a private message a toast quotes. */
const QUOTE_CHARS = 80;
/** Who did it, when the moderator's name is not known. */
export const SOMEONE = "A moderator";

export type ToastKind = "hand" | "moderated" | "lock" | "moderator" | "message" | "link" | "screen";

export interface Toast {
  id: number;
  kind: ToastKind;
  text: string;
  /** The peer it is about (the sender of a private message: the toast can reply). */
  peerId: string | null;
}

export interface ToastList {
  toasts: Toast[];
  nextToastId: number;
}

/** The list with one more toast (the oldest drop beyond `MAX_TOASTS`). */
export function pushToast(
  list: ToastList,
  kind: ToastKind,
  text: string,
  peerId: string | null = null,
): ToastList {
  const toast: Toast = { id: list.nextToastId, kind, text, peerId };
  return {
    toasts: [...list.toasts, toast].slice(-MAX_TOASTS),
    nextToastId: list.nextToastId + 1,
  };
}

/** A peer's name: `names` knows everyone seen in this room, even those who left. */
export function resolveName(
  names: Readonly<Record<string, string>>,
  id: string | null,
  fallback = SOMEONE,
): string {
  if (id !== null && Object.hasOwn(names, id)) {
    const name = names[id]!.trim();
    if (name) return name;
  }
  return fallback;
}

/** What a moderator (`by`, a name) did to us. */
export function moderatedText(action: ModerationView, by: string): string {
  switch (action) {
    case "mute_microphone":
      return `You were muted by ${by}`;
    case "stop_camera":
      return `${by} turned your camera off`;
    case "stop_screen":
      return `${by} stopped your screen share`;
    case "lower_hand":
      return `${by} lowered your hand`;
  }
}

/**
 * Why our screen share ended, when we did not stop it ourselves: a moderator (`by`, a name; the
 * same words as `moderatedText`), or the source (`detail`: what the capture said).
 */
export function screenEndedText(reason: "source_ended" | "moderator", detail: string | null, by: string | null): string {
  if (reason === "moderator") return moderatedText("stop_screen", by ?? SOMEONE);
  const why = (detail ?? "").trim();
  return why ? `Screen sharing ended: ${why}` : "Screen sharing ended: the shared screen or window went away";
}

/** The room was locked or unlocked; `by` is a name, "you", or null when unknown. */
export function lockText(locked: boolean, by: string | null): string {
  const what = locked ? "locked" : "unlocked";
  if (by === "you") return `You ${what} the room`;
  return by === null ? `The room was ${what}` : `The room was ${what} by ${by}`;
}

export function handText(name: string): string {
  return `${name} raised a hand`;
}

export function moderatorText(name: string | null): string {
  return name === null ? "You are now a moderator" : `${name} is now a moderator`;
}

/** A private message, quoted (one line, shortened). */
export function privateMessageText(fromName: string, text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  const chars = [...line];
  const quote = chars.length > QUOTE_CHARS ? `${chars.slice(0, QUOTE_CHARS - 1).join("")}…` : line;
  return `${fromName} (private): ${quote}`;
}
