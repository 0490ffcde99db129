// Active speakers from the server (`active_speakers`) and how they combine with our meters;
// the "who is talking" order (recentSpeakers) in the people list and the strip.
import { describe, expect, it } from "vitest";
import type { PeerView } from "../bindings/PeerView";
import type { UiEvent } from "../bindings/UiEvent";
import { stripOrder } from "../layout/presentation";
import { peopleOf } from "./people";
import {
  applyEvent,
  initialRoomState,
  MAX_RECENT_SPEAKERS,
  recentSpeakersAfter,
  tilesOf,
  type RoomAction,
  type RoomState,
} from "./room";

const run = (actions: RoomAction[], from: RoomState = initialRoomState()) => actions.reduce(applyEvent, from);
const peer = (id: string, name: string): PeerView => ({ id, name, moderator: false, handRaisedAt: null });
const LOCAL_ON = { cameraOn: true, micOn: true, hasCamera: true, hasMicrophone: true, screenOn: false };
const joined: UiEvent = {
  type: "joined",
  selfId: "me",
  peers: [peer("a", "Ada"), peer("b", "Bob"), peer("c", "Cy"), peer("d", "Dee"), peer("e", "Eve")],
  room: { moderator: false, locked: false, chat: [] },
};
const audioOf = (id: string): UiEvent => ({
  type: "track_added",
  trackId: `${id}-a`,
  peerId: id,
  kind: "audio",
  source: "microphone",
  muted: false,
});
const speakers = (...peerIds: string[]): UiEvent => ({ type: "active_speakers", peerIds });
const base = () => run([joined, ...["a", "b", "c"].map(audioOf), { type: "local", ...LOCAL_ON }]);

describe("active_speakers", () => {
  it("sets who rings for the others; our meters stand in only until the server says anything", () => {
    let s = base();
    // An older server: our meters of their audio decide.
    s = applyEvent(s, { type: "levels", mic: null, tracks: [{ trackId: "a-a", level: { dbov: -20, speaking: true } }] });
    expect(s.speaking).toEqual(["a"]);
    s = applyEvent(s, speakers("b"));
    expect(s.speaking).toEqual(["b"]);
    // From now on our meters no longer say who of the others speaks.
    s = applyEvent(s, { type: "levels", mic: null, tracks: [{ trackId: "c-a", level: { dbov: -20, speaking: true } }] });
    expect(s.speaking).toEqual(["b"]);
    s = applyEvent(s, speakers());
    expect(s.speaking).toEqual([]);
    expect(tilesOf(s, "Me").some((t) => t.speaking)).toBe(false);
  });

  it("rings for us by our own meter (instant, never while muted), whatever the server says", () => {
    let s = applyEvent(base(), speakers("me", "a"));
    expect(s.speaking).toEqual(["a"]);
    s = applyEvent(s, { type: "levels", mic: { dbov: -15, speaking: true }, tracks: [] });
    expect(s.speaking).toEqual(["a", "me"]);
    expect(tilesOf(s, "Me")[0]).toMatchObject({ isSelf: true, speaking: true });
    s = applyEvent(s, { type: "local", ...LOCAL_ON, micOn: false });
    s = applyEvent(s, { type: "levels", mic: { dbov: -15, speaking: true }, tracks: [] });
    expect(s.speaking).toEqual(["a"]);
  });

  it("skips unknown ids, maps our earlier session's id to us, and changes nothing on a repeat", () => {
    let s = base();
    s = applyEvent(s, { type: "connection", state: "reconnecting" });
    s = applyEvent(s, { ...joined, selfId: "me2" } as UiEvent);
    s = applyEvent(s, speakers("stranger", "me", "a", "a"));
    expect(s.serverSpeakers).toEqual(["me2", "a"]);
    const again = applyEvent(s, speakers("stranger", "me", "a"));
    expect(again).toBe(s);
  });

  it("forgets a peer who leaves", () => {
    let s = applyEvent(base(), speakers("a", "b"));
    s = applyEvent(s, { type: "peer_left", peerId: "a" });
    expect(s.speaking).toEqual(["b"]);
    expect(s.serverSpeakers).toEqual(["b"]);
    expect(s.recentSpeakers).toEqual(["b"]);
  });

  it("starts over after leaving: the next room's server has said nothing yet", () => {
    let s = applyEvent(base(), speakers("a"));
    s = applyEvent(s, { type: "closed", reason: "left", error: null });
    expect(s.serverSpeakers).toBeNull();
    expect(s.recentSpeakers).toEqual([]);
    s = run([joined, { type: "levels", mic: null, tracks: [] }], s);
    expect(s.serverSpeakers).toBeNull();
  });

  it("after a rejoin the server is still the authority (nobody speaks until it says so)", () => {
    let s = applyEvent(base(), speakers("a"));
    s = applyEvent(s, { ...joined, selfId: "me2" } as UiEvent);
    expect(s.serverSpeakers).toEqual([]);
    expect(s.recentSpeakers).toEqual(["a"]);
  });
});

describe("recentSpeakersAfter", () => {
  it("puts new speakers first (loudest first) and keeps everyone else's place", () => {
    expect(recentSpeakersAfter([], ["b", "a"], 4)).toEqual(["b", "a"]);
    // a louder than b now: no change of order (no jumping with loudness).
    expect(recentSpeakersAfter(["b", "a"], ["a", "b"], 4)).toEqual(["b", "a"]);
    expect(recentSpeakersAfter(["b", "a"], ["c"], 4)).toEqual(["c", "b", "a"]);
    // Someone in the list speaking again keeps their place.
    expect(recentSpeakersAfter(["c", "b", "a"], ["a"], 4)).toEqual(["c", "b", "a"]);
  });

  it("drops the longest silent when full, never someone speaking now unless all are", () => {
    expect(recentSpeakersAfter(["c", "b", "a"], ["d", "a"], 3)).toEqual(["d", "c", "a"]);
    expect(recentSpeakersAfter(["a", "b"], ["c", "a", "b"], 2)).toEqual(["c", "a"]);
  });

  it("over a long talk with quieter interjections, the order settles and stays", () => {
    let recent: string[] = [];
    const timeline = [["a"], ["a", "b"], ["b", "a"], ["a"], [], ["a"], ["a", "b"], ["b"], ["a"]];
    const seen = new Set<string>();
    for (const now of timeline) {
      recent = recentSpeakersAfter(recent, now, MAX_RECENT_SPEAKERS);
      seen.add(recent.join(","));
    }
    expect(recent).toEqual(["b", "a"]);
    // Two orders only: [a] then [b, a].
    expect([...seen]).toEqual(["a", "b,a"]);
  });
});

describe("who is talking order", () => {
  it("people list: hands, us, recent speakers, then the others in the order they came", () => {
    let s = base();
    // Cy, then Bob starts too: the newest speaker first; both stay up there after they stop.
    s = run([speakers("c"), speakers("c", "b"), speakers()], s);
    expect(peopleOf(s, "Me").map((p) => p.name)).toEqual(["Me", "Bob", "Cy", "Ada", "Dee", "Eve"]);
    s = applyEvent(s, { type: "peer_updated", peer: { ...peer("e", "Eve"), handRaisedAt: 5 } });
    expect(peopleOf(s, "Me").map((p) => p.name)).toEqual(["Eve", "Me", "Bob", "Cy", "Ada", "Dee"]);
  });

  it("strip: a hidden recent speaker takes the place of the last shown non-speaker", () => {
    const tiles = ["self", "a", "b", "c", "d", "e"].map((id) => ({ key: `k-${id}`, speaker: id }));
    const keys = (t: { key: string }[]) => t.map((x) => x.key);
    // All fit: the usual order.
    expect(keys(stripOrder(tiles, ["e"], 6))).toEqual(keys(tiles));
    // 4 places: e (hidden) swaps with c, the last shown who did not speak.
    expect(keys(stripOrder(tiles, ["e"], 4)).slice(0, 4)).toEqual(["k-self", "k-a", "k-b", "k-e"]);
    // c spoke too: b gives way instead; the shown order otherwise stays.
    expect(keys(stripOrder(tiles, ["e", "c"], 4)).slice(0, 4)).toEqual(["k-self", "k-a", "k-e", "k-c"]);
    // A screen in the strip is never displaced.
    const withScreen = [...tiles.slice(0, 3), { key: "screen", speaker: null }, ...tiles.slice(3)];
    expect(keys(stripOrder(withScreen, ["e"], 4)).slice(0, 4)).toEqual(["k-self", "k-a", "k-e", "screen"]);
    // No place at all (full window): nothing moves.
    expect(keys(stripOrder(tiles, ["e"], 0))).toEqual(keys(tiles));
  });
});
