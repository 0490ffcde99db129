// Failures of the browser backend as `UiError`s a person can act on (pure). The wording
// follows the desktop backend's (`src-tauri/src/api.rs`: `from_code`, `from_refusal`,
// `from_device`), with hints that fit a browser tab: there is no server field to paste into,
// and cameras are a site permission.

import type { UiError } from "../../bindings/UiError";

const err = (kind: UiError["kind"], message: string, hint: string | null): UiError => ({
  kind,
  message,
  hint,
});

function capitalize(s: string): string {
  return s.length === 0 ? s : s[0]!.toUpperCase() + s.slice(1);
}

function sentence(s: string): string {
  const t = capitalize(s.trim());
  return t.endsWith(".") ? t : `${t}.`;
}

/** The server refused `join` (`join_error`): one error per code. */
export function joinRefused(code: string, message: string): UiError {
  switch (code) {
    case "room_full":
      return err("room_full", "This room is full.", "Try another room, or ask someone to leave.");
    case "room_locked":
      return err(
        "room_locked",
        "This room is locked.",
        "A moderator closed it to new participants; ask them to unlock it.",
      );
    case "invalid_room_name":
    case "invalid_display_name":
      return err(
        "refused",
        `The server refused the name: ${message}.`,
        "Use a shorter name without control characters.",
      );
    case "shutting_down":
      return err("refused", "The server is shutting down.", "Try again when it is back.");
    case "rate_limited":
      return err("refused", sentence(message || "Too many joins from your address"), "Wait a few seconds, then join again.");
    case "token_missing":
      return err(
        "invitation",
        "This server only lets in people with an invitation.",
        "Open the invite link you were sent, or ask the organizer for one.",
      );
    case "token_expired":
      return err("invitation", "Your invite link has expired.", "Ask the organizer for a new link.");
    case "token_not_yet_valid":
      return err("invitation", "Your invite link is not valid yet.", "Try again when the meeting starts.");
    case "token_wrong_room":
      return err(
        "invitation",
        "Your invite link is for another room.",
        "Open the invite link again: it opens the right room.",
      );
    case "token_wrong_name":
      return err(
        "invitation",
        `Your invite link is for another name: ${message}.`,
        "Join with the name the invitation was made for.",
      );
    case "token_invalid":
      return err(
        "invitation",
        "Your invite link is not valid on this server.",
        "Check that you opened the whole link, or ask for a new one.",
      );
    default:
      return err("refused", `The server refused to join: ${message}.`, null);
  }
}

/** The server answered a request with `error` (a chat message, a moderator action…). */
export function serverRefusal(code: string, message: string): UiError {
  switch (code) {
    case "rate_limited":
      return err("rejected", "You are sending too fast.", "Wait a second, then send again.");
    case "message_too_long":
      return err("rejected", "That message is too long (at most 4 KiB).", "Split it into shorter messages.");
    case "not_moderator":
      return err("rejected", "Only a moderator can do that.", "Ask a moderator of the room.");
    case "publish_not_allowed":
      return err(
        "rejected",
        "Your invitation lets you watch and listen, not share your camera or microphone.",
        "Ask the organizer for an invitation that allows it.",
      );
    case "unknown_peer":
      return err("rejected", "That person is no longer in the room.", "They may have left a moment ago.");
    default:
      return err("rejected", sentence(message || code), null);
  }
}

/** The WebSocket to `host` did not open (refused, no route, TLS, HTTP 429…). */
export function unreachable(host: string): UiError {
  return err(
    "unreachable",
    `Can't reach the Videoroom server at ${host}.`,
    "Check your network connection and try again; if it keeps happening, the server may be down.",
  );
}

/** No answer within `ms` (connecting, or to `join`). */
export function timedOut(host: string, ms: number): UiError {
  return err(
    "timeout",
    `The server at ${host} did not answer within ${Math.round(ms / 1000)} s.`,
    "Check your network connection, or try again in a moment.",
  );
}

/** The socket closed before `joined` (the server went away, or turned the connection down). */
export function closedWhileJoining(reason: string): UiError {
  return err(
    "unreachable",
    `The server closed the connection before letting you in${reason ? ` (${reason})` : ""}.`,
    "Try again in a moment.",
  );
}

/** The room's connection was lost for good (reconnecting gave up). */
export function lostForGood(reason: string): UiError {
  return err(
    "unreachable",
    `Lost the connection to the room: ${reason}.`,
    "Check the network and the server, then join again.",
  );
}

export type MediaDevice = "camera" | "microphone";

/**
 * `getUserMedia` failed for `device` with `e` (a DOMException, by `name`). Each cause gets
 * what to do about it: permission, no device, a device in use, a page without HTTPS.
 */
export function mediaError(device: MediaDevice, e: unknown): UiError {
  const name = typeof e === "object" && e !== null && "name" in e ? String((e as { name: unknown }).name) : "";
  const detail = typeof e === "object" && e !== null && "message" in e ? String((e as { message: unknown }).message) : String(e);
  const goOn = "You can still see and hear the others.";
  switch (name) {
    case "NotAllowedError":
    case "PermissionDeniedError":
      return err(
        "device",
        `This page may not use your ${device}.`,
        `Allow the ${device} for this site (the icon in the address bar, or the browser's site settings), then turn it on again. ${goOn}`,
      );
    case "NotFoundError":
    case "DevicesNotFoundError":
      return err(
        "device",
        device === "camera" ? "No camera found." : "No microphone found.",
        `Connect one and turn it on again, or go on without it. ${goOn}`,
      );
    case "NotReadableError":
    case "TrackStartError":
    case "AbortError":
      return err(
        "device",
        `Your ${device} could not be started: another app may be using it.`,
        `Close the other app, or pick another ${device}. ${goOn}`,
      );
    case "OverconstrainedError":
      return err(
        "device",
        `The chosen ${device} is not available any more.`,
        `Pick another ${device}. ${goOn}`,
      );
    case "SecurityError":
    case "InsecureContext":
      return err(
        "device",
        "This page cannot use cameras and microphones: it is not served over HTTPS.",
        "Open it with https:// (or on this computer at localhost).",
      );
    default:
      return err("device", `Your ${device} failed: ${detail || name || "unknown error"}.`, `Pick another ${device}. ${goOn}`);
  }
}

/** `navigator.mediaDevices` is missing: browsers hide it outside secure contexts. */
export const INSECURE_CONTEXT: UiError = mediaError("camera", { name: "InsecureContext" });

/** A command that needs a room, out of one. */
export const NOT_IN_ROOM: UiError = err("not_in_room", "Not in a room.", "Join a room first.");

/** Join or leave while another one runs. */
export const BUSY: UiError = err("busy", "Already joining or leaving.", "Wait a moment.");

/** A request that needs the socket, while the room reconnects. */
export const RECONNECTING: UiError = err(
  "rejected",
  "Reconnecting to the room.",
  "Try again in a moment.",
);
