// Turning failures into messages a person can act on.

import type { ErrorKind } from "../bindings/ErrorKind";
import type { UiError } from "../bindings/UiError";

/** What the UI shows: what happened, and what to do about it. */
export interface ErrorView {
  kind: ErrorKind | "invalid";
  /** A heading above the message, for errors whose message is someone else's words. */
  title?: string;
  message: string;
  hint: string;
  /** `untrusted_certificate`: the server certificate's SHA-256 fingerprint, for the person to
   * compare with the one its operator gave them before trusting it. */
  fingerprint?: string;
}

/** Every kind, so that a kind added to the Rust enum fails the typecheck until it is listed. */
const KNOWN_KINDS: Record<ErrorKind, true> = {
  unreachable: true,
  room_full: true,
  refused: true,
  timeout: true,
  device: true,
  not_in_room: true,
  busy: true,
  room_locked: true,
  invitation: true,
  removed: true,
  meeting_ended: true,
  rejected: true,
  untrusted_certificate: true,
  cancelled: true,
  internal: true,
};
const KINDS = Object.keys(KNOWN_KINDS) as readonly ErrorKind[];

/** Normalizes whatever a command rejected with (normally a `UiError`) into a `UiError`. */
export function toUiError(e: unknown): UiError {
  if (typeof e === "object" && e !== null && "kind" in e && "message" in e) {
    const { kind, message, hint, fingerprint } = e as {
      kind: unknown;
      message: unknown;
      hint?: unknown;
      fingerprint?: unknown;
    };
    return {
      kind: KINDS.includes(kind as ErrorKind) ? (kind as ErrorKind) : "internal",
      message: typeof message === "string" ? message : String(message),
      hint: typeof hint === "string" ? hint : "",
      ...(typeof fingerprint === "string" && { fingerprint }),
    };
  }
  if (typeof e === "string") return { kind: "internal", message: e, hint: "" };
  if (e instanceof Error) return { kind: "internal", message: e.message, hint: "" };
  return { kind: "internal", message: String(e), hint: "" };
}

/** Defaults for when the backend's message or hint is empty. */
function fallback(kind: ErrorKind, serverUrl: string): { message: string; hint: string } {
  switch (kind) {
    case "unreachable":
      return {
        message: `Can't reach ${serverUrl || "the server"}.`,
        hint: "Is the server running and the address right?",
      };
    case "room_full":
      return {
        message: "This room is full.",
        hint: "Try again when someone has left, or use another room name.",
      };
    case "refused":
      return {
        message: "The server did not let you in.",
        hint: "Check the room name and your display name, then try again.",
      };
    case "timeout":
      return {
        message: "The server did not answer in time.",
        hint: "Check your network connection and try again.",
      };
    case "device":
      return {
        message: "A camera or microphone could not be used.",
        hint: "Check that it is plugged in and not used by another app, or pick another device.",
      };
    case "not_in_room":
      return { message: "You are not in a room.", hint: "Join a room first." };
    case "busy":
      return {
        message: "The app is still busy with your last request.",
        hint: "Wait a moment and try again.",
      };
    case "room_locked":
      return {
        message: "This room is locked: no one new can join.",
        hint: "Ask a moderator in the room to unlock it, or use another room name.",
      };
    case "invitation":
      return {
        message: "The server did not accept your invitation.",
        hint: "Paste the invite link you were sent into the server field, or ask the organizer for a new one.",
      };
    case "removed":
      return {
        message: "A moderator removed you from the room.",
        hint: "You can join again unless the room has been locked.",
      };
    case "meeting_ended":
      return {
        message: "A moderator ended the meeting for everyone.",
        hint: "Joining the same room again starts a new, empty meeting.",
      };
    case "rejected":
      return {
        message: "The server refused that.",
        hint: "Wait a moment and try again.",
      };
    case "untrusted_certificate":
      return {
        message: `The certificate of ${serverUrl || "the server"} is not signed by an authority this computer trusts.`,
        hint: "Compare its fingerprint with the one the server's operator gave you, and trust it only if they match.",
      };
    case "cancelled":
      return {
        message: "Screen sharing was cancelled.",
        hint: "Share again and pick a screen or window.",
      };
    case "internal":
      return {
        message: "Something went wrong inside the app.",
        hint: "Try again; if it keeps happening, restart Videoroom.",
      };
  }
}

/**
 * Headings for the ways a room ends for us: the message then carries the moderator's reason
 * (or the fallback's explanation).
 */
const TITLES: Partial<Record<ErrorKind, string>> = {
  removed: "You were removed from the room",
  meeting_ended: "The meeting has ended",
};

/**
 * The message and hint to show for `error`: the backend's own (it already says what happened
 * and what to do), with defaults where it left them empty.
 */
export function describeError(error: UiError, context: { serverUrl?: string } = {}): ErrorView {
  const defaults = fallback(error.kind, context.serverUrl ?? "");
  const title = TITLES[error.kind];
  return {
    kind: error.kind,
    ...(title !== undefined && { title }),
    message: error.message.trim() || defaults.message,
    // `?? ""`: the backend may send no hint (null).
    hint: (error.hint ?? "").trim() || defaults.hint,
    ...(error.fingerprint !== undefined && { fingerprint: error.fingerprint }),
  };
}

/** A problem found in the lobby form before asking the backend. */
export function invalid(message: string, hint: string): ErrorView {
  return { kind: "invalid", message, hint };
}
