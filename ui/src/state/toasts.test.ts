import { describe, expect, it } from "vitest";
import { applyEvent, initialRoomState } from "./room";
import {
  MAX_TOASTS,
  lockText,
  moderatedText,
  privateMessageText,
  pushToast,
  resolveName,
} from "./toasts";

describe("pushToast", () => {
  it("numbers toasts and keeps the newest few", () => {
    let list = { toasts: [], nextToastId: 1 } as Parameters<typeof pushToast>[0];
    for (let i = 0; i < MAX_TOASTS + 2; i++) list = pushToast(list, "hand", `t${i}`);
    expect(list.toasts).toHaveLength(MAX_TOASTS);
    expect(list.toasts.at(-1)).toEqual({ id: MAX_TOASTS + 2, kind: "hand", text: `t${MAX_TOASTS + 1}`, peerId: null });
    expect(list.nextToastId).toBe(MAX_TOASTS + 3);
  });
});

describe("texts", () => {
  it("says who did what", () => {
    expect(moderatedText("mute_microphone", "Grace")).toBe("You were muted by Grace");
    expect(moderatedText("stop_camera", "Grace")).toBe("Grace turned your camera off");
    expect(moderatedText("lower_hand", "Grace")).toBe("Grace lowered your hand");
    expect(moderatedText("stop_screen", "Grace")).toBe("Grace stopped your screen share");
    expect(lockText(true, "Grace")).toBe("The room was locked by Grace");
    expect(lockText(false, "Grace")).toBe("The room was unlocked by Grace");
    expect(lockText(true, "you")).toBe("You locked the room");
    expect(lockText(false, null)).toBe("The room was unlocked");
  });

  it("names peers, or falls back", () => {
    const names = { p1: "Grace", p2: " " };
    expect(resolveName(names, "p1")).toBe("Grace");
    expect(resolveName(names, "p2")).toBe("A moderator");
    expect(resolveName(names, "toString")).toBe("A moderator");
    expect(resolveName(names, null, "Someone")).toBe("Someone");
  });

  it("quotes a private message on one short line", () => {
    expect(privateMessageText("Ada", "hi\n  there")).toBe("Ada (private): hi there");
    const long = privateMessageText("Ada", "x".repeat(200));
    expect(long.endsWith("…")).toBe(true);
    expect(long.length).toBeLessThan(100);
  });
});

describe("the UI's own toasts", () => {
  it("a copied link is a toast of its own kind", () => {
    const s = applyEvent(initialRoomState(), { type: "ui/toast", kind: "link", text: "Room link copied" });
    expect(s.toasts).toEqual([{ id: 1, kind: "link", text: "Room link copied", peerId: null }]);
  });
});
