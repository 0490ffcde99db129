import { describe, expect, it } from "vitest";
import { isTextEntry, shortcutFor, type FocusInfo, type KeyInput } from "./shortcuts";

const key = (k: string, mods: Partial<KeyInput> = {}): KeyInput => ({
  key: k,
  ctrlKey: false,
  altKey: false,
  metaKey: false,
  repeat: false,
  ...mods,
});
const focus = (tagName: string, type?: string, isContentEditable = false): FocusInfo => ({
  tagName,
  type,
  isContentEditable,
});

describe("shortcutFor", () => {
  it("maps M and V (either case) with nothing focused", () => {
    expect(shortcutFor(key("m"), null)).toBe("toggle-mic");
    expect(shortcutFor(key("M", {}), null)).toBe("toggle-mic");
    expect(shortcutFor(key("v"), null)).toBe("toggle-camera");
    expect(shortcutFor(key("V"), null)).toBe("toggle-camera");
    expect(shortcutFor(key("x"), null)).toBeNull();
    expect(shortcutFor(key("Enter"), null)).toBeNull();
  });

  it("maps S to sharing the screen (or stopping), not while a dialog is open or typing", () => {
    expect(shortcutFor(key("s"), null)).toBe("toggle-screen");
    expect(shortcutFor(key("S"), focus("BUTTON"))).toBe("toggle-screen");
    expect(shortcutFor(key("s"), focus("TEXTAREA"))).toBeNull();
    expect(shortcutFor(key("s", { ctrlKey: true }), null)).toBeNull();
    expect(shortcutFor(key("s", { repeat: true }), null)).toBeNull();
    // The screen picker handles its own keys (Escape closes it, not full-window).
    for (const k of ["s", "m", "v", "f", "Escape"]) {
      expect(shortcutFor(key(k), focus("BUTTON"), { modal: true, full: true })).toBeNull();
    }
  });

  it("maps H to the hand and C to the chat", () => {
    expect(shortcutFor(key("h"), null)).toBe("toggle-hand");
    expect(shortcutFor(key("H"), null)).toBe("toggle-hand");
    expect(shortcutFor(key("c"), null)).toBe("toggle-chat");
    expect(shortcutFor(key("C"), focus("BUTTON"))).toBe("toggle-chat");
  });

  it("never fires from the chat input, its recipient picker or the removal reason", () => {
    for (const k of ["m", "v", "h", "c"]) {
      expect(shortcutFor(key(k), focus("TEXTAREA"))).toBeNull();
      expect(shortcutFor(key(k), focus("SELECT"))).toBeNull();
      expect(shortcutFor(key(k), focus("INPUT", "text"))).toBeNull();
    }
    expect(shortcutFor(key("c", { ctrlKey: true }), null)).toBeNull();
  });

  it("works while a button has focus", () => {
    expect(shortcutFor(key("m"), focus("BUTTON"))).toBe("toggle-mic");
    expect(shortcutFor(key("v"), focus("INPUT", "checkbox"))).toBe("toggle-camera");
  });

  it("does nothing while typing", () => {
    expect(shortcutFor(key("m"), focus("INPUT", "text"))).toBeNull();
    expect(shortcutFor(key("m"), focus("INPUT"))).toBeNull();
    expect(shortcutFor(key("v"), focus("INPUT", "url"))).toBeNull();
    expect(shortcutFor(key("v"), focus("TEXTAREA"))).toBeNull();
    expect(shortcutFor(key("m"), focus("SELECT"))).toBeNull();
    expect(shortcutFor(key("m"), focus("DIV", undefined, true))).toBeNull();
  });

  it("leaves modified and repeated keys alone", () => {
    expect(shortcutFor(key("m", { ctrlKey: true }), null)).toBeNull();
    expect(shortcutFor(key("v", { metaKey: true }), null)).toBeNull();
    expect(shortcutFor(key("v", { altKey: true }), null)).toBeNull();
    expect(shortcutFor(key("m", { repeat: true }), null)).toBeNull();
  });
});

describe("shortcutFor while a device switch runs", () => {
  it("ignores keys that reach the page (the disabled select dropped the focus)", () => {
    expect(shortcutFor(key("m"), null, { switchingDevices: true })).toBeNull();
    expect(shortcutFor(key("v"), null, { switchingDevices: true })).toBeNull();
  });

  it("still works from a focused button, and at once after the switch", () => {
    expect(shortcutFor(key("m"), focus("BUTTON"), { switchingDevices: true })).toBe("toggle-mic");
    expect(shortcutFor(key("v"), null, { switchingDevices: false })).toBe("toggle-camera");
  });

  it("never fires from the device selects", () => {
    expect(shortcutFor(key("m"), focus("SELECT"), { switchingDevices: false })).toBeNull();
    expect(shortcutFor(key("v"), focus("SELECT"), { switchingDevices: true })).toBeNull();
  });
});

describe("isTextEntry", () => {
  it("knows which inputs take text", () => {
    expect(isTextEntry(null)).toBe(false);
    expect(isTextEntry(focus("input", "search"))).toBe(true);
    expect(isTextEntry(focus("INPUT", "range"))).toBe(false);
    expect(isTextEntry(focus("A"))).toBe(false);
  });
});

describe("shortcutFor and the full-window stage", () => {
  it("F toggles full-window, Escape leaves it only while it is on", () => {
    expect(shortcutFor(key("f"), null)).toBe("toggle-full");
    expect(shortcutFor(key("F"), null)).toBe("toggle-full");
    expect(shortcutFor(key("Escape"), null, { full: true })).toBe("leave-full");
    expect(shortcutFor(key("Escape"), null, { full: false })).toBeNull();
    expect(shortcutFor(key("f"), focus("TEXTAREA"))).toBeNull();
  });
});
