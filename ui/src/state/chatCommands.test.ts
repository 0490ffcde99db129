import { describe, expect, it } from "vitest";
import { MAX_MESSAGE_BYTES, helpText, parseChatInput, type CommandContext } from "./chatCommands";

const ctx = (patch: Partial<CommandContext> = {}): CommandContext => ({
  selfName: "Grace Hopper",
  others: [
    { id: "p1", name: "Ada", handRaised: false },
    { id: "p2", name: "Ada Lovelace", handRaised: true },
    { id: "p3", name: "Alan Turing", handRaised: false },
  ],
  moderator: true,
  handRaised: false,
  locked: false,
  to: null,
  ...patch,
});
const parse = (input: string, patch: Partial<CommandContext> = {}) => parseChatInput(input, ctx(patch));
const errorOf = (input: string, patch: Partial<CommandContext> = {}) => {
  const r = parse(input, patch);
  if (r.kind !== "error") throw new Error(`expected an error for ${input}, got ${r.kind}`);
  return r.message;
};

describe("plain messages", () => {
  it("sends text to the recipient picked, trimmed", () => {
    expect(parse("  hello\nworld  ")).toEqual({ kind: "send", text: "hello\nworld", to: null });
    expect(parse("hi", { to: "p3" })).toEqual({ kind: "send", text: "hi", to: "p3" });
  });

  it("does nothing for blank input", () => {
    expect(parse("")).toEqual({ kind: "empty" });
    expect(parse(" \n\t ")).toEqual({ kind: "empty" });
  });

  it("sends // text as / text", () => {
    expect(parse("//shrug")).toEqual({ kind: "send", text: "/shrug", to: null });
    expect(parse("// ")).toEqual({ kind: "send", text: "/", to: null });
  });

  it("refuses messages over the server's limit", () => {
    expect(parse("x".repeat(MAX_MESSAGE_BYTES)).kind).toBe("send");
    expect(errorOf("é".repeat(MAX_MESSAGE_BYTES / 2 + 1))).toMatch(/too long/);
  });
});

describe("/msg", () => {
  it("matches the longest name that starts the line", () => {
    expect(parse("/msg Ada Lovelace are you there?")).toEqual({
      kind: "send",
      text: "are you there?",
      to: "p2",
    });
    expect(parse("/msg Ada hi")).toEqual({ kind: "send", text: "hi", to: "p1" });
    expect(parse("/MSG ada lovelace hi")).toMatchObject({ to: "p2" });
  });

  it("takes a double-quoted name", () => {
    expect(parse('/msg "Ada" Lovelace rocks')).toEqual({ kind: "send", text: "Lovelace rocks", to: "p1" });
    expect(parse('/msg "alan turing" hi')).toMatchObject({ to: "p3" });
    expect(errorOf('/msg "Ada hi')).toMatch(/closing double quote/);
  });

  it("keeps line breaks in the text", () => {
    expect(parse("/msg Alan Turing line 1\nline 2")).toMatchObject({ text: "line 1\nline 2" });
  });

  it("needs a name after a word boundary", () => {
    expect(errorOf("/msg Adam hi")).toBe('No one called "Adam" is in the room.');
  });

  it("says what is missing", () => {
    expect(errorOf("/msg")).toMatch(/Say who/);
    expect(errorOf("/msg Ada")).toMatch(/Write the message/);
  });

  it("refuses ourselves and ambiguous names", () => {
    expect(errorOf("/msg Grace Hopper hi")).toMatch(/yourself/);
    const twins = { others: [{ id: "x", name: "Sam", handRaised: false }, { id: "y", name: "sam", handRaised: false }] };
    expect(errorOf("/msg Sam hi", twins)).toMatch(/2 people are called "Sam"/);
  });

  it("prefers someone else when they share our name", () => {
    const same = { selfName: "Ada", others: [{ id: "p1", name: "Ada", handRaised: false }] };
    expect(parse("/msg Ada hi", same)).toMatchObject({ kind: "send", to: "p1" });
  });

  it("is open to everyone", () => {
    expect(parse("/msg Ada hi", { moderator: false }).kind).toBe("send");
  });
});

describe("/hand", () => {
  it("toggles our own hand", () => {
    expect(parse("/hand")).toEqual({ kind: "hand", raised: true });
    expect(parse("/hand", { handRaised: true, moderator: false })).toEqual({ kind: "hand", raised: false });
  });
});

describe("moderator commands", () => {
  it("mute, stop video and lower a hand by name", () => {
    expect(parse("/mute Alan Turing")).toEqual({
      kind: "moderate",
      peerId: "p3",
      name: "Alan Turing",
      action: "mute_microphone",
    });
    expect(parse("/stopvideo ada")).toMatchObject({ peerId: "p1", action: "stop_camera" });
    expect(parse("/lower Ada Lovelace")).toMatchObject({ peerId: "p2", action: "lower_hand" });
    expect(errorOf("/lower Ada")).toBe("Ada's hand is not raised.");
  });

  it("remove (or kick) with an optional reason", () => {
    expect(parse("/remove Ada Lovelace")).toEqual({ kind: "remove", peerId: "p2", name: "Ada Lovelace", reason: null });
    expect(parse("/kick Ada please use the other room")).toEqual({
      kind: "remove",
      peerId: "p1",
      name: "Ada",
      reason: "please use the other room",
    });
    expect(errorOf(`/remove Ada ${"x".repeat(201)}`)).toMatch(/reason is too long/);
  });

  it("lock, unlock and end", () => {
    expect(parse("/lock")).toEqual({ kind: "lock", locked: true });
    expect(parse("/unlock", { locked: true })).toEqual({ kind: "lock", locked: false });
    expect(errorOf("/lock", { locked: true })).toMatch(/already locked/);
    expect(errorOf("/unlock")).toMatch(/not locked/);
    expect(parse("/end")).toEqual({ kind: "end" });
  });

  it("are refused locally to non-moderators", () => {
    for (const cmd of ["/mute Ada", "/stopvideo Ada", "/lower Ada", "/remove Ada", "/kick Ada", "/lock", "/unlock", "/end"]) {
      expect(errorOf(cmd, { moderator: false })).toMatch(/^Only a moderator can use \/\w+\.$/);
    }
  });

  it("name unknown people and refuse ourselves", () => {
    expect(errorOf("/mute Linus")).toBe('No one called "Linus" is in the room.');
    expect(errorOf("/mute Alan")).toBe('No one called "Alan" is in the room. Did you mean Alan Turing?');
    expect(errorOf('/mute "Linus T"')).toBe('No one called "Linus T" is in the room.');
    expect(errorOf("/mute grace hopper")).toBe("You can't use /mute on yourself.");
  });
});

describe("/help and unknown commands", () => {
  it("lists the commands a person can use", () => {
    const help = parse("/help");
    expect(help.kind).toBe("help");
    const mod = helpText(true);
    expect(mod).toMatch(/\/remove NAME \[reason\]/);
    const plain = helpText(false);
    expect(plain).toMatch(/\/msg NAME text/);
    expect(plain).not.toMatch(/\/mute NAME/);
    expect(plain).toMatch(/Moderators also have \/mute/);
  });

  it("explains an unknown command", () => {
    expect(errorOf("/shrug")).toMatch(/Unknown command \/shrug.*\/help.*\/\//);
  });
});
