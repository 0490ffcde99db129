import { describe, expect, it } from "vitest";
import { INCOMPLETE_INVITE, editServerOrRoom, parseInvite, roomLink, sameServer, webBase } from "./invite";
import { defaultSettings } from "./lobby";

// Three base64url segments, as `videoroom-server token` prints them.
const JWT =
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoiVGVhbSBzeW5jIiwiZXhwIjoxOTAwMDAwMDAwfQ.c2lnbmF0dXJlLV9fLXNpZw";

const invite = (serverUrl: string, room: string, token = JWT) => ({
  kind: "invite",
  invite: { serverUrl, room, token },
});

describe("parseInvite", () => {
  it("takes server, room and token from a link", () => {
    expect(parseInvite(`https://meet.example.org:8443/r/standup#token=${JWT}`)).toEqual(
      invite("wss://meet.example.org:8443/ws", "standup"),
    );
    expect(parseInvite(`https://meet.example.org/r/standup#token=${JWT}`)).toEqual(
      invite("wss://meet.example.org/ws", "standup"),
    );
  });

  it("maps http:// to ws://", () => {
    expect(parseInvite(`http://localhost:8080/r/r#token=${JWT}`)).toEqual(invite("ws://localhost:8080/ws", "r"));
    expect(parseInvite(`http://192.168.1.20:8080/r/demo#token=${JWT}`)).toEqual(
      invite("ws://192.168.1.20:8080/ws", "demo"),
    );
    expect(parseInvite(`http://[::1]:8080/r/demo#token=${JWT}`)).toEqual(invite("ws://[::1]:8080/ws", "demo"));
  });

  it("decodes the room", () => {
    expect(parseInvite(`https://meet.example.org/r/Team%20sync#token=${JWT}`)).toMatchObject(
      invite("wss://meet.example.org/ws", "Team sync"),
    );
    expect(parseInvite(`https://h/r/a%2Fb%20%C3%A9t%C3%A9%23%3F#token=${JWT}`)).toMatchObject({
      invite: { room: "a/b été#?" },
    });
  });

  it("tolerates a trailing slash, ?token=, surrounding whitespace and a different case", () => {
    const expected = invite("wss://meet.example.org/ws", "standup");
    expect(parseInvite(`https://meet.example.org/r/standup/#token=${JWT}`)).toEqual(expected);
    expect(parseInvite(`https://meet.example.org/r/standup#token=${JWT}/`)).toEqual(expected);
    expect(parseInvite(`https://meet.example.org/r/standup?token=${JWT}`)).toEqual(expected);
    expect(parseInvite(`https://meet.example.org/r/standup/?token=${JWT}`)).toEqual(expected);
    expect(parseInvite(`  \n https://meet.example.org/r/standup#token=${JWT}\t\n `)).toEqual(expected);
    expect(parseInvite(`HTTPS://Meet.Example.org/r/standup#token=${JWT}`)).toEqual(expected);
  });

  it("keeps a base path the server lives under", () => {
    expect(parseInvite(`https://example.org/videoroom/r/standup#token=${JWT}`)).toEqual(
      invite("wss://example.org/videoroom/ws", "standup"),
    );
  });

  it("says when the token is missing or cut short", () => {
    const incomplete = { kind: "incomplete" };
    expect(parseInvite("https://meet.example.org/r/standup")).toEqual(incomplete);
    expect(parseInvite("https://meet.example.org/r/standup#token=")).toEqual(incomplete);
    expect(parseInvite("https://meet.example.org/r/standup#tok")).toEqual(incomplete);
    expect(parseInvite(`https://meet.example.org/r/standup#token=${JWT.slice(0, 50)}`)).toEqual(incomplete);
    expect(parseInvite("https://meet.example.org/r/standup#token=a.b.")).toEqual(incomplete);
    expect(parseInvite("https://meet.example.org/r/standup#token=a.b.c.d")).toEqual(incomplete);
    expect(parseInvite("https://meet.example.org/r/standup#token=a+b.c/d.e=")).toEqual(incomplete);
  });

  it("is not fooled by anything else", () => {
    const none = { kind: "none" };
    for (const text of [
      "",
      "   ",
      "ws://127.0.0.1:8080/ws",
      "wss://meet.example.org/ws",
      "standup",
      "https://meet.example.org",
      "https://meet.example.org/",
      "https://meet.example.org/r/",
      `https://meet.example.org/#token=${JWT}`,
      `https://meet.example.org/room/standup#token=${JWT}`,
      `https://meet.example.org/r/standup/extra#token=${JWT}`,
      `https://meet.example.org/r/%E0%A4%A#token=${JWT}`,
      `https://meet.example.org/r/%20#token=${JWT}`,
      `https://user:pw@meet.example.org/r/standup#token=${JWT}`,
      `ftp://meet.example.org/r/standup#token=${JWT}`,
      `see https://meet.example.org/r/standup#token=${JWT}`,
      `https:meet.example.org/r/standup#token=${JWT}`,
      "https://",
    ]) {
      expect(parseInvite(text), text).toEqual(none);
    }
  });
});

describe("sameServer", () => {
  it("ignores case, spaces and a trailing slash", () => {
    expect(sameServer("wss://Meet.example.org/ws", " wss://meet.example.org/ws/ ")).toBe(true);
    expect(sameServer("wss://meet.example.org/ws", "wss://other.example.org/ws")).toBe(false);
    expect(sameServer("wss://meet.example.org/ws", "wss://meet.example.org:8443/ws")).toBe(false);
  });
});

describe("editServerOrRoom", () => {
  const values = { ...defaultSettings(), room: "old", name: "Ada" };
  const invited = { ...values, serverUrl: "wss://meet.example.org/ws", room: "standup", token: JWT };

  it("fills server, room and token from a link in either field", () => {
    const link = `https://meet.example.org/r/standup#token=${JWT}`;
    for (const field of ["serverUrl", "room"] as const) {
      expect(editServerOrRoom(values, field, link)).toEqual({ values: invited, error: null });
    }
    // A new link replaces the old invitation.
    const other = "b.c.d";
    expect(editServerOrRoom(invited, "serverUrl", `http://10.0.0.5:8080/r/x?token=${other}`).values).toEqual({
      ...values,
      serverUrl: "ws://10.0.0.5:8080/ws",
      room: "x",
      token: other,
    });
  });

  it("keeps a cut-short link as typed and says what to do", () => {
    const text = "https://meet.example.org/r/standup#token=eyJhbGciOiJIUzI1NiJ9.eyJyb29tIjoi";
    expect(editServerOrRoom(values, "serverUrl", text)).toEqual({
      values: { ...values, serverUrl: text },
      error: INCOMPLETE_INVITE,
    });
    expect(editServerOrRoom(values, "room", text)).toEqual({ values: { ...values, room: text }, error: INCOMPLETE_INVITE });
    expect(INCOMPLETE_INVITE).toMatchObject({
      kind: "invalid",
      message: "That invite link is incomplete: copy the whole link.",
    });
  });

  it("takes anything else as typed", () => {
    expect(editServerOrRoom(values, "serverUrl", "ws://10.0.0.5:8080/ws")).toEqual({
      values: { ...values, serverUrl: "ws://10.0.0.5:8080/ws" },
      error: null,
    });
    expect(editServerOrRoom(values, "room", "retro")).toEqual({ values: { ...values, room: "retro" }, error: null });
  });

  it("drops the token when the server changes, not when the room does", () => {
    expect(editServerOrRoom(invited, "serverUrl", "wss://other.example.org/ws").values.token).toBeNull();
    expect(editServerOrRoom(invited, "serverUrl", "wss://meet.example.org/w").values.token).toBeNull();
    expect(editServerOrRoom(invited, "serverUrl", "wss://meet.example.org/ws ").values.token).toBe(JWT);
    expect(editServerOrRoom(invited, "room", "retro").values).toEqual({ ...invited, room: "retro" });
  });
});

describe("typing a link", () => {
  it("keeps it as text until it is recognised (on leaving the field, or on join)", () => {
    const link = "https://meet.example.org/r/standup#token=aaa.bbb.c";
    const typed = editServerOrRoom(defaultSettings(), "serverUrl", link.slice(0, -1), false);
    expect(typed.values.serverUrl).toBe(link.slice(0, -1));
    expect(typed.error).toBeNull();
    const left = editServerOrRoom(typed.values, "serverUrl", link);
    expect(left.values.serverUrl).toBe("wss://meet.example.org/ws");
    expect(left.values.token).toBe("aaa.bbb.c");
  });
});

describe("links to a room", () => {
  it("the web address of a server, from its socket", () => {
    expect(webBase("ws://127.0.0.1:8080/ws")).toBe("http://127.0.0.1:8080");
    expect(webBase("wss://meet.example.org/video/ws")).toBe("https://meet.example.org/video");
    expect(webBase("https://meet.example.org/ws")).toBeNull();
    expect(webBase("not a url")).toBeNull();
  });

  it("a room's link, with an invitation in the fragment", () => {
    expect(roomLink("ws://127.0.0.1:8080/ws", "Team sync")).toBe("http://127.0.0.1:8080/r/Team%20sync");
    expect(roomLink("wss://meet.example.org/ws", "board", "a.b.c")).toBe("https://meet.example.org/r/board#token=a.b.c");
    expect(roomLink("wss://meet.example.org/ws", "  ")).toBeNull();
    // What the lobby reads back from it.
    const parsed = parseInvite(roomLink("wss://meet.example.org/ws", "Team sync", "aa.bb.cc")!);
    expect(parsed).toEqual({
      kind: "invite",
      invite: { serverUrl: "wss://meet.example.org/ws", room: "Team sync", token: "aa.bb.cc" },
    });
  });
});
