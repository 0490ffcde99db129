// Picks the media backend once, at start-up: inside the Tauri webview the desktop backend
// (media in Rust), anywhere else the browser's own media. Each is its own chunk, so a browser
// never loads the Tauri code and the app never loads the browser engine.

import type { Backend } from "./types";

let current: Backend | null = null;

/** Whether the page runs inside the Tauri webview. */
export function inTauri(): boolean {
  return typeof window !== "undefined" && "__TAURI_INTERNALS__" in window;
}

/** Loads the backend for where the page runs (once). */
export async function loadBackend(): Promise<Backend> {
  if (current === null) {
    current = inTauri()
      ? new (await import("./tauri")).TauriBackend()
      : new (await import("./browser")).BrowserBackend();
  }
  return current;
}

/** The backend, once `loadBackend` has run (the app renders nothing that needs it before). */
export function backend(): Backend {
  if (current === null) throw new Error("the media backend is not loaded yet");
  return current;
}
