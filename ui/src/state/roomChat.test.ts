// The reducer (room.ts) for chat, hands, moderation, the side panel and toasts.

import { describe, expect, it } from "vitest";
import type { ChatView } from "../bindings/ChatView";
import type { PeerView } from "../bindings/PeerView";
import type { RoomInfo } from "../bindings/RoomInfo";
import type { UiEvent } from "../bindings/UiEvent";
import { applyEvent, chatVisible, initialRoomState, tilesOf, type RoomAction, type RoomState } from "./room";

const run = (actions: RoomAction[], from: RoomState = initialRoomState()) => actions.reduce(applyEvent, from);

const peer = (id: string, name: string, patch: Partial<PeerView> = {}): PeerView => ({
  id,
  name,
  moderator: false,
  handRaisedAt: null,
  ...patch,
});
const msg = (id: number, patch: Partial<ChatView> = {}): ChatView => ({
  id,
  from: "g",
  fromName: "Grace",
  to: null,
  text: `m${id}`,
  sentAt: 1_000 + id,
  ...patch,
});
const room = (patch: Partial<RoomInfo> = {}): RoomInfo => ({ moderator: false, locked: false, chat: [], ...patch });
const joined = (patch: Partial<RoomInfo> = {}, selfId = "me"): UiEvent => ({
  type: "joined",
  selfId,
  peers: [peer("g", "Grace", { moderator: true }), peer("a", "Ada")],
  room: room(patch),
});
const chat = (m: ChatView): UiEvent => ({ type: "chat", message: m });
const toastTexts = (s: RoomState) => s.toasts.map((t) => t.text);
const openChat: RoomAction = { type: "ui/panel", open: true, tab: "chat" };

describe("chat log", () => {
  it("starts with the room's history and adds live messages", () => {
    const s = run([joined({ chat: [msg(1), msg(2)] }), chat(msg(3))]);
    expect(s.chat.map((m) => m.id)).toEqual([1, 2, 3]);
  });

  it("merges the history a rejoin sends again, and keeps our old id as ours", () => {
    let s = run([joined({ chat: [msg(1)] }), chat(msg(2, { from: "me", fromName: "Me" }))]);
    s = applyEvent(s, joined({ chat: [msg(1), msg(2, { from: "me", fromName: "Me" }), msg(3)] }, "me2"));
    expect(s.chat.map((m) => m.id)).toEqual([1, 2, 3]);
    expect(s.ownIds).toEqual(["me", "me2"]);
  });

  it("empties when the room ends", () => {
    const s = run([joined({ chat: [msg(1)] }), { type: "closed", reason: "left", error: null }]);
    expect(s.chat).toEqual([]);
    expect(s.unread).toBe(0);
  });
});

describe("unread", () => {
  it("counts messages from others while the chat is not shown", () => {
    let s = run([joined({ chat: [msg(1)] }), chat(msg(2)), chat(msg(3, { from: "me" }))]);
    expect(s.unread).toBe(1);
    s = applyEvent(s, { type: "ui/panel", open: true, tab: "people" });
    s = applyEvent(s, chat(msg(4)));
    expect(s.unread).toBe(2);
    s = applyEvent(s, { type: "ui/panel", tab: "chat" });
    expect(chatVisible(s)).toBe(true);
    expect(s.unread).toBe(0);
    s = applyEvent(s, chat(msg(5)));
    expect(s.unread).toBe(0);
  });

  it("does not count a message twice", () => {
    const s = run([joined(), chat(msg(2)), chat(msg(2))]);
    expect(s.unread).toBe(1);
  });

  it("keeps the panel's place across rooms", () => {
    const s = run([joined(), openChat, { type: "ui/left" }]);
    expect(s.panel).toEqual({ open: true, tab: "chat" });
  });
});

describe("our own state", () => {
  it("takes moderator and locked from the join", () => {
    const s = run([joined({ moderator: true, locked: true })]);
    expect(s).toMatchObject({ moderator: true, locked: true, handRaisedAt: null });
  });

  it("takes our own peer_updated as ours, never as a peer", () => {
    let s = run([joined()]);
    s = applyEvent(s, { type: "peer_updated", peer: peer("me", "Me", { handRaisedAt: 5000 }) });
    expect(s.peers.map((p) => p.id)).toEqual(["g", "a"]);
    expect(s.handRaisedAt).toBe(5000);
    expect(tilesOf(s, "Me")[0]).toMatchObject({ isSelf: true, handRaisedAt: 5000 });
    expect(s.toasts).toEqual([]);
    s = applyEvent(s, { type: "peer_updated", peer: peer("me", "Me", { moderator: true }) });
    expect(s.moderator).toBe(true);
    expect(s.handRaisedAt).toBeNull();
    expect(toastTexts(s)).toEqual(["You are now a moderator"]);
  });

  it("never lists ourselves from the join either", () => {
    const s = run([{ type: "joined", selfId: "me", peers: [peer("me", "Me"), peer("a", "Ada")], room: room() }]);
    expect(s.peers.map((p) => p.id)).toEqual(["a"]);
  });

  it("says so when the grant passed to us while reconnecting", () => {
    const s = run([joined(), joined({ moderator: true }, "me2")]);
    expect(toastTexts(s)).toEqual(["You are now a moderator"]);
  });
});

describe("toasts", () => {
  it("for a raised hand, once", () => {
    let s = run([joined()]);
    s = applyEvent(s, { type: "peer_updated", peer: peer("a", "Ada", { handRaisedAt: 10 }) });
    s = applyEvent(s, { type: "peer_updated", peer: peer("a", "Ada", { handRaisedAt: 10 }) });
    expect(toastTexts(s)).toEqual(["Ada raised a hand"]);
    expect(s.toasts[0]!.peerId).toBe("a");
  });

  it("for moderation, naming the moderator", () => {
    const s = run([
      joined(),
      { type: "peer_updated", peer: peer("me", "Me", { handRaisedAt: 3 }) },
      { type: "moderated", action: "mute_microphone", by: "g" },
      { type: "moderated", action: "stop_camera", by: "g" },
      { type: "moderated", action: "lower_hand", by: "nobody-we-know" },
    ]);
    expect(toastTexts(s)).toEqual([
      "You were muted by Grace",
      "Grace turned your camera off",
      "A moderator lowered your hand",
    ]);
    expect(s.handRaisedAt).toBeNull();
  });

  it("for the lock, and keeps the lock state", () => {
    let s = run([joined(), { type: "room_locked", locked: true, by: "g" }]);
    expect(s.locked).toBe(true);
    s = run([{ type: "room_locked", locked: false, by: "me" }, { type: "room_locked", locked: true, by: null }], s);
    expect(s.locked).toBe(true);
    expect(toastTexts(s)).toEqual(["The room was locked by Grace", "You unlocked the room", "The room was locked"]);
  });

  it("names a moderator who has left", () => {
    const s = run([joined(), { type: "peer_left", peerId: "g" }, { type: "moderated", action: "mute_microphone", by: "g" }]);
    expect(toastTexts(s)).toEqual(["You were muted by Grace"]);
  });

  it("for a new moderator among the others", () => {
    const s = run([joined(), { type: "peer_updated", peer: peer("a", "Ada", { moderator: true }) }]);
    expect(toastTexts(s)).toEqual(["Ada is now a moderator"]);
  });

  it("for a private message only while the chat is hidden", () => {
    let s = run([joined(), chat(msg(1, { to: "me", text: "psst" })), chat(msg(2))]);
    expect(toastTexts(s)).toEqual(["Grace (private): psst"]);
    expect(s.toasts[0]).toMatchObject({ kind: "message", peerId: "g" });
    s = run([openChat, chat(msg(3, { to: "me" }))], s);
    expect(s.toasts).toHaveLength(1);
  });

  it("go away when dismissed, at most four at once", () => {
    let s = run([joined()]);
    for (let i = 0; i < 6; i++) s = applyEvent(s, { type: "room_locked", locked: i % 2 === 0, by: "g" });
    expect(s.toasts).toHaveLength(4);
    s = applyEvent(s, { type: "ui/dismiss-toast", id: s.toasts[0]!.id });
    expect(s.toasts).toHaveLength(3);
  });
});

describe("refusals", () => {
  const rejected: UiEvent = {
    type: "error",
    error: { kind: "rejected", message: "Too many messages at once.", hint: "Wait a moment." },
  };

  it("show under the chat input while the chat is shown", () => {
    const s = run([joined(), openChat, rejected]);
    expect(s.chatStatus).toEqual({ tone: "error", text: "Too many messages at once. Wait a moment." });
    expect(s.notices).toEqual([]);
  });

  it("are the usual notice otherwise", () => {
    const s = run([joined(), { type: "ui/panel", open: true, tab: "people" }, rejected]);
    expect(s.chatStatus).toBeNull();
    expect(s.notices.map((n) => n.error.kind)).toEqual(["rejected"]);
  });

  it("a removal goes back to the lobby with the moderator's reason", () => {
    const error = { kind: "removed" as const, message: "Grace removed you: wrong room", hint: null };
    const s = run([joined(), { type: "closed", reason: "removed", error }]);
    expect(s.view).toBe("lobby");
    expect(s.exitError).toEqual(error);
  });
});
