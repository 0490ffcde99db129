// Keyboard shortcuts in the room: M toggles the microphone, V the camera, S shares the screen
// or stops sharing, H raises or lowers the hand, C shows or hides the chat, F shows the stage
// full-window (Escape leaves it) — but not while the person is typing somewhere, nor while a
// dialog (the screen picker) has the keyboard.

export type Shortcut =
  | "toggle-mic"
  | "toggle-camera"
  | "toggle-screen"
  | "toggle-hand"
  | "toggle-chat"
  | "toggle-full"
  | "leave-full";

export interface KeyInput {
  key: string;
  ctrlKey: boolean;
  altKey: boolean;
  metaKey: boolean;
  repeat: boolean;
}

/** What has the keyboard focus (from `document.activeElement`), or null for the page itself. */
export interface FocusInfo {
  tagName: string;
  /** `type` of an <input>. */
  type?: string;
  isContentEditable: boolean;
}

/** Input types where a letter key does not type anything. */
const NON_TEXT_INPUTS = new Set([
  "button",
  "checkbox",
  "radio",
  "range",
  "submit",
  "reset",
  "color",
  "file",
  "image",
]);

/** Whether letter keys go into the focused element as text (or select its options). */
export function isTextEntry(focus: FocusInfo | null): boolean {
  if (!focus) return false;
  if (focus.isContentEditable) return true;
  switch (focus.tagName.toUpperCase()) {
    case "TEXTAREA":
    case "SELECT":
      return true;
    case "INPUT":
      return !NON_TEXT_INPUTS.has((focus.type ?? "text").toLowerCase());
    default:
      return false;
  }
}

/** What else the page is doing. */
export interface ShortcutContext {
  /**
   * A device switch is in flight. It disables the select it came from, which drops the focus
   * to the page: keys typed into that select meanwhile must not toggle anything.
   */
  switchingDevices?: boolean;
  /** The stage is shown full-window (Escape leaves it). */
  full?: boolean;
  /** A modal dialog (the screen picker) is open: it handles its own keys. */
  modal?: boolean;
}

/** The shortcut a key press triggers, or null. */
export function shortcutFor(
  key: KeyInput,
  focus: FocusInfo | null,
  context: ShortcutContext = {},
): Shortcut | null {
  if (key.ctrlKey || key.altKey || key.metaKey || key.repeat) return null;
  if (isTextEntry(focus)) return null;
  if (context.modal) return null;
  if (focus === null && context.switchingDevices) return null;
  switch (key.key) {
    case "m":
    case "M":
      return "toggle-mic";
    case "v":
    case "V":
      return "toggle-camera";
    case "s":
    case "S":
      return "toggle-screen";
    case "h":
    case "H":
      return "toggle-hand";
    case "c":
    case "C":
      return "toggle-chat";
    case "f":
    case "F":
      return "toggle-full";
    case "Escape":
      return context.full ? "leave-full" : null;
    default:
      return null;
  }
}
