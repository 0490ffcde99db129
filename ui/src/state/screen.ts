// Sharing our screen: the share button and S, our picker (desktop on X11) or the system's dialog
// (the Wayland portal, a browser's), and what a person sees when it fails. The picker and
// `screenOn` are the room reducer's state (room.ts); these actions talk to the backend.

import { signal } from "@preact/signals";
import { backend } from "../backend";
import { toUiError } from "./errors";
import { dispatch, room } from "./store";

/** Listing, starting (system dialog) or stopping is in flight: the share button waits. */
export const sharePending = signal(false);

/**
 * The share button and S: stops our share; else lists what can be shared and opens our picker,
 * or (`picker: "system"`) lets the system's dialog pick. A listing failure (no display, no
 * portal) disables the button with the reason as its tooltip; a cancelled dialog shows nothing.
 */
export async function toggleScreenShare(): Promise<void> {
  const state = room.value;
  if (state.view !== "room" || sharePending.value || state.picker !== null) return;
  if (state.local.screenOn) {
    await stopScreenShare();
    return;
  }
  if (state.shareUnavailable !== null) return;
  sharePending.value = true;
  try {
    const list = await backend().listScreenSources();
    if (list.picker === "ours") {
      dispatch({ type: "ui/picker-open", sources: list.sources });
      return;
    }
    try {
      const local = await backend().startScreenShare(null);
      dispatch({ type: "local", ...local });
    } catch (e) {
      const error = toUiError(e);
      if (error.kind !== "cancelled") dispatch({ type: "error", error });
    }
  } catch (e) {
    const error = toUiError(e);
    if (error.kind === "cancelled") return;
    if (error.kind === "device") dispatch({ type: "ui/share-unavailable", error });
    dispatch({ type: "error", error });
  } finally {
    sharePending.value = false;
  }
}

/**
 * Shares the picker's source `id`. On failure the picker stays, lists again (its thumbnails
 * stopped when the share started; a window closed meanwhile is gone) and shows why.
 */
export async function shareSource(id: string): Promise<void> {
  const picker = room.value.picker;
  if (!picker || picker.starting) return;
  dispatch({ type: "ui/picker-starting", on: true });
  try {
    const local = await backend().startScreenShare(id);
    dispatch({ type: "local", ...local });
    dispatch({ type: "ui/picker-close" });
    return;
  } catch (e) {
    const error = toUiError(e);
    if (error.kind === "cancelled" || room.value.picker === null) {
      // Closed meanwhile, or nothing to say.
      dispatch({ type: "ui/picker-close" });
      return;
    }
    try {
      const list = await backend().listScreenSources();
      dispatch({ type: "ui/picker-open", sources: list.sources, error });
    } catch {
      dispatch({ type: "ui/picker-error", error });
    }
  }
}

/** The picker closes without sharing (Escape, Cancel, a click beside it). */
export function closePicker(): void {
  const picker = room.value.picker;
  if (!picker || picker.starting) return;
  dispatch({ type: "ui/picker-close" });
  backend()
    .closeScreenPicker()
    .catch((e: unknown) => console.warn("closing the screen picker", e));
}

/** Stops our share (the indicator's Stop, the button, S). */
export async function stopScreenShare(): Promise<void> {
  if (sharePending.value) return;
  sharePending.value = true;
  try {
    const local = await backend().stopScreenShare();
    dispatch({ type: "local", ...local });
  } catch (e) {
    dispatch({ type: "error", error: toUiError(e) });
  } finally {
    sharePending.value = false;
  }
}
