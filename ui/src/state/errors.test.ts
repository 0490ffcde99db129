import { describe, expect, it } from "vitest";
import type { UiError } from "../bindings/UiError";
import { describeError, toUiError } from "./errors";
import { cleanSettings, defaultSettings, reconcileDevices, validateSettings } from "./lobby";

describe("describeError", () => {
  it("shows the backend's message and hint", () => {
    const e = { kind: "room_full" as const, message: "Room standup is full (16 people).", hint: "Try later." };
    expect(describeError(e)).toEqual({ kind: "room_full", message: e.message, hint: "Try later." });
  });

  it("fills in what a person can do when the backend said nothing", () => {
    expect(describeError({ kind: "unreachable", message: "", hint: "" }, { serverUrl: "ws://10.0.0.5:8080/ws" })).toEqual({
      kind: "unreachable",
      message: "Can't reach ws://10.0.0.5:8080/ws.",
      hint: "Is the server running and the address right?",
    });
    expect(describeError({ kind: "room_full", message: "", hint: "" }).message).toBe("This room is full.");
    expect(describeError({ kind: "device", message: "No camera found.", hint: " " }).hint).toMatch(/plugged in/);
    // The backend may send no hint at all.
    const noHint = JSON.parse('{"kind":"timeout","message":"No answer.","hint":null}') as UiError;
    expect(describeError(noHint).hint).toMatch(/network/);
  });
});

describe("an untrusted certificate", () => {
  const fingerprint = Array.from({ length: 32 }, () => "AB").join(":");

  it("keeps the fingerprint from the backend's error to what the lobby shows", () => {
    const raw = JSON.parse(
      `{"kind":"untrusted_certificate","message":"The certificate of wss://10.0.0.5:8443/ws is not signed by an authority this computer trusts.","hint":null,"fingerprint":"${fingerprint}"}`,
    );
    const view = describeError(toUiError(raw), { serverUrl: "wss://10.0.0.5:8443/ws" });
    expect(view.kind).toBe("untrusted_certificate");
    expect(view.fingerprint).toBe(fingerprint);
    expect(view.hint).toMatch(/compare its fingerprint/i);
  });

  it("has no fingerprint to trust when the backend sent none or garbage", () => {
    expect(toUiError({ kind: "untrusted_certificate", message: "x", hint: null, fingerprint: 42 }).fingerprint).toBeUndefined();
    expect(describeError({ kind: "unreachable", message: "x", hint: null }).fingerprint).toBeUndefined();
  });
});

describe("describeError for the ways a moderator ends the room", () => {
  it("keeps the moderator's reason under a heading", () => {
    const e = { kind: "removed" as const, message: "Grace removed you: please join the other room", hint: null };
    expect(describeError(e)).toEqual({
      kind: "removed",
      title: "You were removed from the room",
      message: e.message,
      hint: "You can join again unless the room has been locked.",
    });
    expect(describeError({ kind: "meeting_ended", message: "", hint: null })).toMatchObject({
      title: "The meeting has ended",
      message: "A moderator ended the meeting for everyone.",
    });
  });

  it("explains a locked room and a refusal", () => {
    expect(describeError({ kind: "room_locked", message: "", hint: null }).hint).toMatch(/moderator/);
    expect(describeError({ kind: "rejected", message: "Too many messages.", hint: null })).toMatchObject({
      message: "Too many messages.",
      hint: "Wait a moment and try again.",
    });
  });
});

describe("describeError for invitations", () => {
  it("shows the backend's reason, with a default for when it gave none", () => {
    const e = { kind: "invitation" as const, message: "Your invite link has expired.", hint: "Ask the organizer for a new link." };
    expect(describeError(e)).toEqual({ kind: "invitation", message: e.message, hint: e.hint });
    expect(describeError({ kind: "invitation", message: "", hint: null })).toEqual({
      kind: "invitation",
      message: "The server did not accept your invitation.",
      hint: "Paste the invite link you were sent into the server field, or ask the organizer for a new one.",
    });
    expect(describeError({ kind: "invitation", message: "Your invite link is not valid yet.", hint: " " }).hint).toMatch(
      /invite link/,
    );
  });
});

describe("toUiError", () => {
  it("keeps UiErrors and wraps anything else as internal", () => {
    const e = { kind: "timeout", message: "Timed out.", hint: "Retry." };
    expect(toUiError(e)).toEqual(e);
    for (const kind of ["room_locked", "invitation", "removed", "meeting_ended", "rejected"]) {
      expect(toUiError({ kind, message: "m", hint: null }).kind).toBe(kind);
    }
    expect(toUiError({ kind: "weird", message: "x" })).toEqual({ kind: "internal", message: "x", hint: "" });
    expect(toUiError("command join not found")).toEqual({ kind: "internal", message: "command join not found", hint: "" });
    expect(toUiError(new Error("boom")).message).toBe("boom");
  });
});

describe("lobby values", () => {
  const ok = { ...defaultSettings(), room: "standup", name: "Ada" };

  it("accepts a complete form", () => {
    expect(validateSettings(ok)).toBeNull();
    expect(validateSettings({ ...ok, serverUrl: "wss://example.org/ws" })).toBeNull();
  });

  it("says which field is missing or wrong", () => {
    expect(validateSettings({ ...ok, serverUrl: " " })?.message).toMatch(/server address/);
    expect(validateSettings({ ...ok, serverUrl: "example.org" })?.hint).toMatch(/ws:\/\//);
    expect(validateSettings({ ...ok, room: "" })?.message).toMatch(/room name/);
    expect(validateSettings({ ...ok, name: "  " })?.message).toMatch(/your name/);
  });

  it("trims text fields", () => {
    expect(cleanSettings({ ...ok, room: " standup ", name: " Ada " })).toMatchObject({ room: "standup", name: "Ada" });
  });

  it("starts without an invitation and sends an empty token as none", () => {
    expect(defaultSettings().token).toBeNull();
    expect(cleanSettings({ ...ok, token: " a.b.c " }).token).toBe("a.b.c");
    expect(cleanSettings({ ...ok, token: "  " }).token).toBeNull();
    expect(cleanSettings(ok).token).toBeNull();
  });

  it("forgets devices that are gone", () => {
    const devices = {
      cameras: [{ id: "cam1", name: "Camera" }],
      microphones: [],
      speakers: [{ id: "spk1", name: "Speaker" }],
      fake: false,
    };
    expect(reconcileDevices({ ...ok, camera: "cam1", microphone: "mic9", speaker: "spk2" }, devices)).toMatchObject({
      camera: "cam1",
      microphone: null,
      speaker: null,
    });
  });

  it("keeps remembered devices while a browser lists them without ids", () => {
    const devices = {
      cameras: [{ id: "", name: "Camera 1" }],
      microphones: [],
      speakers: [],
      fake: false,
    };
    expect(reconcileDevices({ ...ok, camera: "cam1", microphone: "mic9" }, devices)).toMatchObject({
      camera: "cam1",
      microphone: null,
    });
  });
});
