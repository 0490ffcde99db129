import { describe, expect, it } from "vitest";
import type { ChatView } from "../bindings/ChatView";
import { MAX_CHAT, badgeText, chatItems, chatKey, formatTime, mergeChat } from "./chat";

const T0 = new Date(2025, 4, 6, 9, 5).getTime();
const msg = (id: number, patch: Partial<ChatView> = {}): ChatView => ({
  id,
  from: "a",
  fromName: "Ada",
  to: null,
  text: `message ${id}`,
  sentAt: T0 + id * 1000,
  ...patch,
});

describe("mergeChat", () => {
  it("appends live messages, oldest first", () => {
    const log = mergeChat(mergeChat([], [msg(1)]), [msg(2)]);
    expect(log.map((m) => m.id)).toEqual([1, 2]);
  });

  it("keeps one copy of a message a rejoin sends again (history merged by id)", () => {
    const log = mergeChat([], [msg(1), msg(2), msg(3)]);
    const again = mergeChat(log, [msg(1), msg(2), msg(3), msg(4)]);
    expect(again.map((m) => m.id)).toEqual([1, 2, 3, 4]);
  });

  it("returns the very same log when nothing is new", () => {
    const log = mergeChat([], [msg(1), msg(2)]);
    expect(mergeChat(log, [msg(2), msg(1)])).toBe(log);
    expect(mergeChat(log, [])).toBe(log);
  });

  it("keeps messages of a restarted server whose ids start again", () => {
    const before = mergeChat([], [msg(1), msg(2)]);
    const later = T0 + 3_600_000;
    const after = mergeChat(before, [msg(1, { sentAt: later, text: "new room" })]);
    expect(after.map((m) => m.text)).toEqual(["message 1", "message 2", "new room"]);
    expect(new Set(after.map(chatKey)).size).toBe(3);
  });

  it("sorts history that arrives after newer live messages into place", () => {
    const live = mergeChat([], [msg(5)]);
    const merged = mergeChat(live, [msg(3), msg(4)]);
    expect(merged.map((m) => m.id)).toEqual([3, 4, 5]);
  });

  it("keeps at most the newest MAX_CHAT messages", () => {
    const many = Array.from({ length: MAX_CHAT + 20 }, (_, i) => msg(i + 1));
    const log = mergeChat([], many);
    expect(log).toHaveLength(MAX_CHAT);
    expect(log[0]!.id).toBe(21);
    expect(mergeChat(log, [msg(MAX_CHAT + 21)]).at(-1)!.id).toBe(MAX_CHAT + 21);
  });
});

describe("chatItems", () => {
  const names = (id: string) => ({ a: "Ada", b: "Bob" })[id] ?? null;

  it("marks our own messages, under every id we had (a rejoin changes it)", () => {
    const log = [msg(1, { from: "me-old", fromName: "Me" }), msg(2, { from: "me", fromName: "Me" }), msg(3)];
    const items = chatItems(log, ["me-old", "me"], names);
    expect(items.map((i) => i.own)).toEqual([true, true, false]);
    expect(items[0]!.fromName).toBe("Me");
  });

  it("labels private messages with their recipient", () => {
    const log = [
      msg(1, { from: "me", fromName: "Me", to: "b" }),
      msg(2, { from: "a", to: "me" }),
      msg(3, { from: "me", fromName: "Me", to: "gone" }),
      msg(4),
    ];
    const items = chatItems(log, ["me"], names);
    expect(items.map((i) => [i.private, i.privateLabel])).toEqual([
      [true, "to Bob"],
      [true, "to you"],
      [true, "private"],
      [false, null],
    ]);
  });

  it("groups a sender's messages close together", () => {
    const log = [msg(1), msg(2), msg(3, { from: "b", fromName: "Bob" }), msg(4, { from: "b", fromName: "Bob", sentAt: T0 + 10 * 60_000 })];
    expect(chatItems(log, [], names).map((i) => i.continued)).toEqual([false, true, false, false]);
  });

  it("splits links out of the text and gives the local time", () => {
    const [item] = chatItems([msg(0, { text: "see https://example.org" })], [], names);
    expect(item!.time).toBe("09:05");
    expect(item!.segments).toEqual([
      { type: "text", text: "see " },
      { type: "link", text: "https://example.org", href: "https://example.org" },
    ]);
  });
});

describe("formatTime and badgeText", () => {
  it("pads hours and minutes", () => {
    expect(formatTime(new Date(2025, 0, 1, 7, 3).getTime())).toBe("07:03");
    expect(formatTime(new Date(2025, 0, 1, 23, 59).getTime())).toBe("23:59");
  });

  it("caps the badge", () => {
    expect(badgeText(3)).toBe("3");
    expect(badgeText(100)).toBe("99+");
  });
});
