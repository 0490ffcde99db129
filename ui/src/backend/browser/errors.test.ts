import { describe, expect, it } from "vitest";
import { joinRefused, mediaError, serverRefusal, unreachable } from "./errors";
import { joinError } from "./room";

describe("browser errors", () => {
  it("every join refusal has its kind and something to do", () => {
    const cases: [string, string][] = [
      ["room_full", "room_full"],
      ["room_locked", "room_locked"],
      ["token_missing", "invitation"],
      ["token_expired", "invitation"],
      ["token_not_yet_valid", "invitation"],
      ["token_wrong_room", "invitation"],
      ["token_wrong_name", "invitation"],
      ["token_invalid", "invitation"],
      ["invalid_display_name", "refused"],
      ["shutting_down", "refused"],
      ["rate_limited", "refused"],
    ];
    for (const [code, kind] of cases) {
      const e = joinRefused(code, "details");
      expect(e.kind, code).toBe(kind);
      expect(e.hint, code).toBeTruthy();
    }
    expect(joinRefused("token_expired", "").message).toBe("Your invite link has expired.");
  });

  it("a failed connection, a timeout and a refusal in the lobby", () => {
    expect(joinError({ kind: "network", message: "failed" }, "127.0.0.1:9")).toEqual(unreachable("127.0.0.1:9"));
    expect(joinError({ kind: "network", message: "slow", timeout: true }, "h").kind).toBe("timeout");
    expect(joinError({ kind: "refused", code: "room_full", message: "full" }, "h").kind).toBe("room_full");
  });

  it("camera and microphone failures say what to do", () => {
    const denied = mediaError("camera", { name: "NotAllowedError", message: "Permission denied" });
    expect(denied.kind).toBe("device");
    expect(denied.message).toBe("This page may not use your camera.");
    expect(denied.hint).toContain("Allow the camera");
    expect(mediaError("camera", { name: "NotFoundError" }).message).toBe("No camera found.");
    expect(mediaError("microphone", { name: "NotReadableError" }).message).toContain("another app");
    expect(mediaError("camera", { name: "InsecureContext" }).message).toContain("HTTPS");
  });

  it("refusals of chat and moderation are `rejected`", () => {
    expect(serverRefusal("not_moderator", "x")).toEqual({
      kind: "rejected",
      message: "Only a moderator can do that.",
      hint: "Ask a moderator of the room.",
    });
    expect(serverRefusal("invalid_message", "text has control characters")).toEqual({
      kind: "rejected",
      message: "Text has control characters.",
      hint: null,
    });
  });
});
