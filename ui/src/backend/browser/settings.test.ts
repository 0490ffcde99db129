import { describe, expect, it } from "vitest";
import { INVITE_KEY, SETTINGS_KEY, saveSettings, startupSettings, type KeyValue } from "./settings";

class Memory implements KeyValue {
  readonly map = new Map<string, string>();
  getItem = (k: string) => this.map.get(k) ?? null;
  setItem = (k: string, v: string) => void this.map.set(k, v);
  removeItem = (k: string) => void this.map.delete(k);
}

const SERVER = "ws://127.0.0.1:8080/ws";
const none = { room: null, token: null, incompleteToken: false };

describe("browser settings", () => {
  it("defaults on a first visit; the server is the page's", () => {
    expect(startupSettings(new Memory(), new Memory(), none, SERVER)).toEqual({
      serverUrl: SERVER,
      room: "",
      name: "",
      camera: null,
      microphone: null,
      speaker: null,
      cameraOn: true,
      micOn: true,
      token: null,
    });
  });

  it("remembers name, room and devices, not the server; the token only in the tab", () => {
    const local = new Memory();
    const session = new Memory();
    saveSettings(local, session, {
      serverUrl: "ws://elsewhere/ws",
      room: "board",
      name: "Ada",
      camera: "cam-2",
      microphone: null,
      speaker: "spk",
      cameraOn: false,
      micOn: true,
      token: "a.b.c",
    });
    expect(local.getItem(SETTINGS_KEY)).not.toContain("elsewhere");
    expect(local.getItem(SETTINGS_KEY)).not.toContain("a.b.c");
    expect(session.getItem(INVITE_KEY)).toContain("a.b.c");
    const back = startupSettings(local, session, none, SERVER);
    expect(back).toMatchObject({ serverUrl: SERVER, room: "board", name: "Ada", camera: "cam-2", cameraOn: false, token: "a.b.c" });
    // Another room's page does not use that token.
    expect(startupSettings(local, session, { ...none, room: "other" }, SERVER)).toMatchObject({ room: "other", token: null });
  });

  it("the address's room and token win, and the token is kept for the tab", () => {
    const local = new Memory();
    const session = new Memory();
    local.setItem(SETTINGS_KEY, JSON.stringify({ room: "old", name: "Ada" }));
    const s = startupSettings(local, session, { room: "board", token: "x.y.z", incompleteToken: false }, SERVER);
    expect(s).toMatchObject({ room: "board", name: "Ada", token: "x.y.z" });
    expect(startupSettings(local, session, { ...none, room: "board" }, SERVER).token).toBe("x.y.z");
  });

  it("broken storage falls back to defaults", () => {
    const local = new Memory();
    local.setItem(SETTINGS_KEY, "{not json");
    expect(startupSettings(local, new Memory(), none, SERVER).name).toBe("");
    local.setItem(SETTINGS_KEY, JSON.stringify({ name: 5, cameraOn: "yes", camera: "" }));
    expect(startupSettings(local, new Memory(), none, SERVER)).toMatchObject({ name: "", cameraOn: true, camera: null });
  });

  it("dropping the invitation forgets it", () => {
    const local = new Memory();
    const session = new Memory();
    const s = startupSettings(local, session, { room: "board", token: "x.y.z", incompleteToken: false }, SERVER);
    saveSettings(local, session, { ...s, token: null });
    expect(session.getItem(INVITE_KEY)).toBeNull();
  });
});
