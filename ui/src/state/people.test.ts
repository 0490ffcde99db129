import { describe, expect, it } from "vitest";
import type { PeerView } from "../bindings/PeerView";
import { effectiveRecipient, handPosition, peopleOf, raisedHandCount, recipientsOf } from "./people";
import { applyEvent, initialRoomState, type RoomAction } from "./room";

const peer = (id: string, name: string, handRaisedAt: number | null = null): PeerView => ({
  id,
  name,
  moderator: false,
  handRaisedAt,
});
const state = (actions: RoomAction[]) => actions.reduce(applyEvent, initialRoomState());

const s = state([
  {
    type: "joined",
    selfId: "me",
    peers: [peer("a", "Ada"), peer("b", "bob", 300), peer("c", "Cy", 100)],
    room: { moderator: true, locked: false, chat: [] },
  },
  { type: "track_added", trackId: "a-a", peerId: "a", kind: "audio", source: "microphone", muted: false },
  { type: "peer_updated", peer: { ...peer("me", "Me", 200), moderator: true } },
]);

describe("peopleOf", () => {
  it("lists raised hands first in raise order, then us, then the others", () => {
    const people = peopleOf(s, "Me");
    expect(people.map((p) => [p.name, p.handRaisedAt])).toEqual([
      ["Cy", 100],
      ["Me", 200],
      ["bob", 300],
      ["Ada", null],
    ]);
    expect(people[1]).toMatchObject({ isSelf: true, moderator: true });
    expect(people[3]).toMatchObject({ micMuted: false, cameraOff: true });
    expect(handPosition(people, "b")).toBe(3);
    expect(handPosition(people, "a")).toBeNull();
    expect(raisedHandCount(s)).toBe(3);
  });
});

describe("recipients", () => {
  it("are the others by name, and fall back to everyone when gone", () => {
    expect(recipientsOf(s.peers).map((r) => r.name)).toEqual(["Ada", "bob", "Cy"]);
    expect(effectiveRecipient(s.peers, "b")).toBe("b");
    expect(effectiveRecipient(s.peers, "gone")).toBeNull();
    expect(effectiveRecipient(s.peers, null)).toBeNull();
  });
});
