import { describe, expect, it } from "vitest";
import { pageServerUrl, parseRoute, roomPath, withoutToken } from "./routing";

const JWT = "eyJhbGciOiJIUzI1NiJ9.eyJyb29tIjoiYm9hcmQifQ.c2lnbmF0dXJl";

describe("routing", () => {
  it("/ is the lobby, /r/ROOM its room (decoded)", () => {
    expect(parseRoute("/", "", "")).toEqual({ room: null, token: null, incompleteToken: false });
    expect(parseRoute("/r/standup", "", "")).toEqual({ room: "standup", token: null, incompleteToken: false });
    expect(parseRoute("/r/Team%20sync/", "", "").room).toBe("Team sync");
    expect(parseRoute("/r/%E2%9C%93", "", "").room).toBe("✓");
    expect(parseRoute("/r/%E0%A4%A", "", "").room).toBeNull();
    expect(parseRoute("/r/a/b", "", "").room).toBeNull();
    expect(parseRoute("/other", "", "").room).toBeNull();
  });

  it("an invite link carries its token in the fragment (or the query)", () => {
    expect(parseRoute("/r/board", "", `#token=${JWT}`)).toEqual({ room: "board", token: JWT, incompleteToken: false });
    expect(parseRoute("/r/board", `?token=${JWT}`, "").token).toBe(JWT);
    expect(parseRoute("/r/board", "", `#token=${JWT}/`).token).toBe(JWT);
  });

  it("a token cut short is told apart", () => {
    expect(parseRoute("/r/board", "", "#token=eyJhbGciOiJIUzI1NiJ9.eyJyb2")).toEqual({
      room: "board",
      token: null,
      incompleteToken: true,
    });
  });

  it("the address without the token, and a room's address", () => {
    expect(withoutToken("/r/board", "")).toBe("/r/board");
    expect(withoutToken("/r/board", `?token=${JWT}&x=1`)).toBe("/r/board?x=1");
    expect(roomPath(" Team sync ")).toBe("/r/Team%20sync");
    expect(roomPath("a/b")).toBe("/r/a%2Fb");
  });

  it("the socket is the page's own origin", () => {
    expect(pageServerUrl("http:", "127.0.0.1:8080")).toBe("ws://127.0.0.1:8080/ws");
    expect(pageServerUrl("https:", "meet.example.org")).toBe("wss://meet.example.org/ws");
  });
});
