// Sharing a screen from the browser (docs/screen-share-plan.md §7.3): the browser's own dialog
// picks a screen, window or tab (`getDisplayMedia`), so the UI shows no picker of its own. Here
// are the capture constraints, opening the capture, and its failures as `UiError`s; publishing
// it is the room's (room.ts: one more `sendonly` transceiver, declared with source "screen").

import type { UiError } from "../../bindings/UiError";

/**
 * What we ask of the capture: the engine's screen settings (15 fps, at most 1920×1080; the
 * browser scales a larger screen down), no audio.
 */
export const DISPLAY_CONSTRAINTS: DisplayMediaStreamOptions = {
  video: { frameRate: { max: 15 }, width: { max: 1920 }, height: { max: 1080 } },
  audio: false,
};

/** The part of `navigator.mediaDevices` screen sharing needs. */
export interface DisplayMedia {
  getDisplayMedia(options: DisplayMediaStreamOptions): Promise<MediaStream>;
}

/** `navigator.mediaDevices` when it can share a screen, else null. */
export function displayMedia(): DisplayMedia | null {
  const md = typeof navigator !== "undefined" ? navigator.mediaDevices : undefined;
  if (!md || typeof md.getDisplayMedia !== "function") return null;
  return md;
}

/** This browser (or this page: not HTTPS) cannot share a screen. */
export const CANNOT_SHARE: UiError = {
  kind: "device",
  message: "This browser cannot share your screen here.",
  hint: "Use a current Chromium, Firefox or Safari, with the page opened over HTTPS (or at localhost).",
};

/** A second share while one runs (or is being picked). */
export const ALREADY_SHARING: UiError = {
  kind: "busy",
  message: "You are already sharing your screen.",
  hint: "Stop sharing first, then share something else.",
};

/** `startScreenShare` with a source id: in a browser, the browser's dialog picks. */
export const BROWSER_PICKS: UiError = {
  kind: "rejected",
  message: "In a browser, the browser's own dialog picks what to share.",
  hint: null,
};

/** The name of a DOMException (or anything with one). */
function errorName(e: unknown): string {
  return typeof e === "object" && e !== null && "name" in e ? String((e as { name: unknown }).name) : "";
}

/**
 * `getDisplayMedia` failed with `e`. The person closing the browser's dialog (NotAllowedError)
 * is `cancelled`, nothing to show; a capture the system refused or could not start is a
 * `device` error with what to do.
 */
export function screenError(e: unknown): UiError {
  const name = errorName(e);
  const detail =
    typeof e === "object" && e !== null && "message" in e ? String((e as { message: unknown }).message) : String(e);
  switch (name) {
    case "NotAllowedError":
    case "PermissionDeniedError":
      // Chromium also says NotAllowedError when the system forbids capture (macOS screen
      // recording permission); the person then sees no dialog at all and tries again.
      return {
        kind: "cancelled",
        message: "Screen sharing was cancelled.",
        hint: "If no dialog appeared, allow screen recording for this browser in your system settings.",
      };
    case "NotReadableError":
    case "AbortError":
      return {
        kind: "device",
        message: "Your screen could not be captured.",
        hint: "Another app may be blocking screen capture; close it, or pick another window or screen.",
      };
    case "NotFoundError":
      return {
        kind: "device",
        message: "There is nothing to share.",
        hint: "The browser found no screen or window it can capture.",
      };
    case "InvalidStateError":
      return {
        kind: "device",
        message: "The browser wants a click to start screen sharing.",
        hint: "Press the share button again.",
      };
    case "SecurityError":
    case "TypeError":
      return CANNOT_SHARE;
    default:
      return {
        kind: "device",
        message: `Screen sharing failed: ${detail || name || "unknown error"}.`,
        hint: "Try again, or pick another window or screen.",
      };
  }
}

/** A capture opened, or why not. */
export type OpenedScreen = { track: MediaStreamTrack } | { error: UiError };

/**
 * Opens the browser's dialog and captures what the person picks: a video track tuned for
 * detail (text stays sharp, the frame rate gives way first).
 */
export async function openScreen(md: DisplayMedia | null): Promise<OpenedScreen> {
  if (md === null) return { error: CANNOT_SHARE };
  let stream: MediaStream;
  try {
    stream = await md.getDisplayMedia(DISPLAY_CONSTRAINTS);
  } catch (e) {
    return { error: screenError(e) };
  }
  const [track, ...rest] = stream.getVideoTracks();
  for (const t of stream.getAudioTracks()) t.stop();
  for (const t of rest) t.stop();
  if (!track) return { error: screenError({ name: "NotFoundError" }) };
  track.contentHint = "detail";
  return { track };
}
