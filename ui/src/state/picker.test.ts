import { describe, expect, it } from "vitest";
import type { ScreenSource } from "../bindings/ScreenSource";
import { orderSources, pickerKey, sizeText, trapTab } from "./picker";

const source = (id: string, kind: "screen" | "window"): ScreenSource => ({
  id,
  kind,
  title: id,
  width: 1920,
  height: 1080,
});

describe("orderSources", () => {
  it("lists screens first, then windows, each as listed", () => {
    const listed = [
      source("window:0x2", "window"),
      source("monitor:0", "screen"),
      source("window:0x1", "window"),
      source("monitor:1", "screen"),
    ];
    expect(orderSources(listed).map((s) => s.id)).toEqual(["monitor:0", "monitor:1", "window:0x2", "window:0x1"]);
  });
});

describe("pickerKey", () => {
  it("moves the highlight with the arrows, without wrapping", () => {
    expect(pickerKey("ArrowRight", 0, 3)).toEqual({ type: "select", index: 1 });
    expect(pickerKey("ArrowDown", 1, 3)).toEqual({ type: "select", index: 2 });
    expect(pickerKey("ArrowRight", 2, 3)).toEqual({ type: "select", index: 2 });
    expect(pickerKey("ArrowLeft", 1, 3)).toEqual({ type: "select", index: 0 });
    expect(pickerKey("ArrowUp", 0, 3)).toEqual({ type: "select", index: 0 });
    expect(pickerKey("Home", 2, 3)).toEqual({ type: "select", index: 0 });
    expect(pickerKey("End", 0, 3)).toEqual({ type: "select", index: 2 });
  });

  it("shares with Enter and closes with Escape", () => {
    expect(pickerKey("Enter", 1, 3)).toEqual({ type: "share", index: 1 });
    expect(pickerKey("Escape", 1, 3)).toEqual({ type: "close" });
  });

  it("has nothing to move or share in an empty list, and leaves other keys alone", () => {
    expect(pickerKey("Enter", 0, 0)).toBeNull();
    expect(pickerKey("ArrowRight", 0, 0)).toBeNull();
    expect(pickerKey("Escape", 0, 0)).toEqual({ type: "close" });
    expect(pickerKey("Tab", 0, 3)).toBeNull();
    expect(pickerKey("s", 0, 3)).toBeNull();
  });
});

describe("sizeText", () => {
  it("says the size", () => {
    expect(sizeText({ width: 1280, height: 800 })).toBe("1280 × 800");
  });
});

describe("trapTab", () => {
  it("cycles through the dialog's controls both ways and never leaves", () => {
    expect(trapTab(3, 0, false)).toBe(1);
    expect(trapTab(3, 2, false)).toBe(0);
    expect(trapTab(3, 0, true)).toBe(2);
    expect(trapTab(3, 1, true)).toBe(0);
  });

  it("enters at an end from outside the controls, and has nowhere to go without any", () => {
    expect(trapTab(3, -1, false)).toBe(0);
    expect(trapTab(3, -1, true)).toBe(2);
    expect(trapTab(0, -1, false)).toBeNull();
  });
});
