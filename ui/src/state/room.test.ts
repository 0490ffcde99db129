import { describe, expect, it } from "vitest";
import type { PeerView } from "../bindings/PeerView";
import type { RoomInfo } from "../bindings/RoomInfo";
import type { UiEvent } from "../bindings/UiEvent";
import { pickStage } from "../layout/presentation";
import {
  allTilesOf,
  applyEvent,
  initialRoomState,
  initials,
  OWN_SCREEN_KEY,
  screenName,
  stageCandidates,
  tilesOf,
  type RoomAction,
  type RoomState,
} from "./room";

const run = (actions: RoomAction[], from: RoomState = initialRoomState()) =>
  actions.reduce(applyEvent, from);

const LOCAL_ON = { cameraOn: true, micOn: true, hasCamera: true, hasMicrophone: true, screenOn: false };
const ROOM: RoomInfo = { moderator: false, locked: false, chat: [] };
const peer = (id: string, name: string, patch: Partial<PeerView> = {}): PeerView => ({
  id,
  name,
  moderator: false,
  handRaisedAt: null,
  ...patch,
});
const joined: UiEvent = {
  type: "joined",
  selfId: "me",
  peers: [peer("a", "Ada"), peer("b", "Bob")],
  room: ROOM,
};
const tracksOfA: UiEvent[] = [
  { type: "track_added", trackId: "a-v", peerId: "a", kind: "video", source: "camera", muted: false },
  { type: "track_added", trackId: "a-a", peerId: "a", kind: "audio", source: "microphone", muted: false },
];

describe("applyEvent", () => {
  it("joins: self id, peers, room view", () => {
    const s = run([{ type: "ui/joining" }, joined]);
    expect(s.view).toBe("room");
    expect(s.selfId).toBe("me");
    expect(s.peers.map((p) => p.name)).toEqual(["Ada", "Bob"]);
    expect(s.connection).toBe("connecting");
  });

  it("keeps tracks when join's result comes after the joined event", () => {
    const s = run([
      joined,
      ...tracksOfA,
      { type: "ui/join-result", joined: { selfId: "me", peers: [], local: LOCAL_ON, room: ROOM }, local: LOCAL_ON },
    ]);
    expect(s.tracks).toHaveLength(2);
    expect(s.peers).toHaveLength(2);
    expect(s.local).toEqual(LOCAL_ON);
  });

  it("prefers a `local` event over join's (older) answer", () => {
    const local = { ...LOCAL_ON, hasCamera: false, cameraOn: false };
    const s = run([
      { type: "ui/joining" },
      joined,
      { type: "local", ...local },
      { type: "ui/join-result", joined: { selfId: "me", peers: [], local: LOCAL_ON, room: ROOM }, local: LOCAL_ON },
    ]);
    expect(s.local).toEqual(local);
  });

  it("enters the room from join's result when the event has not come yet", () => {
    const s = run([
      { type: "ui/join-result", joined: { selfId: "me", peers: [peer("a", "Ada")], local: LOCAL_ON, room: ROOM }, local: LOCAL_ON },
    ]);
    expect(s.view).toBe("room");
    expect(s.local).toEqual(LOCAL_ON);
    // The event that follows carries the same room; tracks come after it.
    const t = run([joined, ...tracksOfA], s);
    expect(t.tracks.map((x) => x.id)).toEqual(["a-v", "a-a"]);
  });

  it("adds, updates and removes peers (with their tracks and speaking)", () => {
    let s = run([joined, ...tracksOfA, { type: "peer_joined", peer: peer("c", "Cy") }]);
    expect(s.peers.map((p) => p.id)).toEqual(["a", "b", "c"]);
    s = applyEvent(s, { type: "peer_updated", peer: peer("a", "Ada L.") });
    expect(s.peers[0]).toEqual(peer("a", "Ada L."));
    s = applyEvent(s, { type: "levels", mic: null, tracks: [{ trackId: "a-a", level: { dbov: -20, speaking: true } }] });
    expect(s.speaking).toEqual(["a"]);
    s = applyEvent(s, { type: "peer_left", peerId: "a" });
    expect(s.peers.map((p) => p.id)).toEqual(["b", "c"]);
    expect(s.tracks).toEqual([]);
    expect(s.speaking).toEqual([]);
  });

  it("follows a track through added, ready, muted, unmuted, removed", () => {
    let s = run([joined, ...tracksOfA]);
    expect(s.tracks[0]).toEqual({ id: "a-v", peerId: "a", kind: "video", source: "camera", muted: false, ready: false });
    s = applyEvent(s, { type: "track_ready", trackId: "a-v" });
    expect(s.tracks[0]!.ready).toBe(true);
    s = applyEvent(s, { type: "track_muted", trackId: "a-a", muted: true });
    expect(s.tracks[1]!.muted).toBe(true);
    expect(tilesOf(s, "Me")[1]!.micMuted).toBe(true);
    s = applyEvent(s, { type: "track_muted", trackId: "a-a", muted: false });
    expect(tilesOf(s, "Me")[1]!.micMuted).toBe(false);
    s = applyEvent(s, { type: "track_removed", trackId: "a-v" });
    expect(s.tracks.map((t) => t.id)).toEqual(["a-a"]);
    expect(tilesOf(s, "Me")[1]).toMatchObject({ videoTrack: null, cameraOff: true });
  });

  it("ignores events about unknown tracks", () => {
    const s = run([joined]);
    expect(applyEvent(s, { type: "track_ready", trackId: "nope" })).toBe(s);
    expect(applyEvent(s, { type: "track_removed", trackId: "nope" })).toBe(s);
  });

  it("replaces peers and drops tracks on a rejoin (after a reconnection)", () => {
    let s = run([joined, ...tracksOfA, { type: "connection", state: "reconnecting" }]);
    s = applyEvent(s, { type: "joined", selfId: "me2", peers: [peer("a", "Ada")], room: ROOM });
    expect(s.selfId).toBe("me2");
    expect(s.peers.map((p) => p.id)).toEqual(["a"]);
    expect(s.tracks).toEqual([]);
    expect(s.connection).toBe("reconnecting");
    s = run([tracksOfA[0]!, { type: "connection", state: "connected" }], s);
    expect(s.tracks.map((t) => t.id)).toEqual(["a-v"]);
    expect(s.connection).toBe("connected");
  });

  it("maps levels to speaking peers by audio track, and our own mic", () => {
    let s = run([joined, ...tracksOfA, { type: "local", ...LOCAL_ON }]);
    s = applyEvent(s, {
      type: "levels",
      mic: { dbov: -18, speaking: true },
      tracks: [
        { trackId: "a-a", level: { dbov: -22, speaking: true } },
        { trackId: "unknown", level: { dbov: -10, speaking: true } },
      ],
    });
    expect(s.speaking).toEqual(["a", "me"]);
    const tiles = tilesOf(s, "Me");
    expect(tiles.map((t) => [t.name, t.speaking])).toEqual([
      ["Me", true],
      ["Ada", true],
      ["Bob", false],
    ]);
    // Same levels again: the very same state (no re-render).
    const again = applyEvent(s, {
      type: "levels",
      mic: { dbov: -18, speaking: true },
      tracks: [{ trackId: "a-a", level: { dbov: -25, speaking: true } }],
    });
    expect(again).toBe(s);
    const quiet = applyEvent(s, { type: "levels", mic: { dbov: -60, speaking: false }, tracks: [] });
    expect(quiet.speaking).toEqual([]);
  });

  it("does not count our mic as speaking while it is muted", () => {
    const s = run([
      joined,
      { type: "local", ...LOCAL_ON, micOn: false },
      { type: "levels", mic: { dbov: -18, speaking: true }, tracks: [] },
    ]);
    expect(s.speaking).toEqual([]);
  });

  it("takes the local state from `local` events", () => {
    const s = run([joined, { type: "local", cameraOn: false, micOn: true, hasCamera: false, hasMicrophone: true, screenOn: false }]);
    expect(s.local).toEqual({ cameraOn: false, micOn: true, hasCamera: false, hasMicrophone: true, screenOn: false });
    expect(tilesOf(s, "Me")[0]).toMatchObject({ isSelf: true, videoTrack: null, cameraOff: true, micMuted: false });
  });

  it("collects errors as notices, newest last, at most three", () => {
    const err = (m: string): UiEvent => ({ type: "error", error: { kind: "device", message: m, hint: "" } });
    let s = run([joined, err("1"), err("2"), err("3"), err("4")]);
    expect(s.notices.map((n) => n.error.message)).toEqual(["2", "3", "4"]);
    s = applyEvent(s, { type: "ui/dismiss-notice", id: s.notices[0]!.id });
    expect(s.notices.map((n) => n.error.message)).toEqual(["3", "4"]);
  });

  it("goes back to the lobby with the error when the room is lost", () => {
    const error = { kind: "unreachable" as const, message: "Can't reach ws://x/ws.", hint: "Is the server running?" };
    const s = run([joined, ...tracksOfA, { type: "closed", reason: "socket lost", error }]);
    expect(s.view).toBe("lobby");
    expect(s.exitError).toEqual(error);
    expect(s.peers).toEqual([]);
    expect(s.tracks).toEqual([]);
    expect(s.selfId).toBeNull();
    // The next join clears the message.
    expect(applyEvent(s, { type: "ui/joining" }).exitError).toBeNull();
  });

  it("explains an unexpected end without an error", () => {
    const s = run([joined, { type: "closed", reason: "the server closed the room", error: null }]);
    expect(s.view).toBe("lobby");
    expect(s.exitError).toMatchObject({ message: "The call ended.", hint: "the server closed the room" });
  });

  it("shows nothing after leaving on purpose", () => {
    const s = run([joined, { type: "ui/leave-requested" }, { type: "closed", reason: "left", error: null }]);
    expect(s.view).toBe("lobby");
    expect(s.exitError).toBeNull();
    const t = run([joined, { type: "ui/leave-requested" }, { type: "ui/left" }, { type: "closed", reason: "left", error: null }]);
    expect(t.view).toBe("lobby");
    expect(t.exitError).toBeNull();
  });

  it("keeps the local device state across leaving", () => {
    const s = run([joined, { type: "local", ...LOCAL_ON, micOn: false }, { type: "ui/left" }]);
    expect(s.local.micOn).toBe(false);
  });
});

describe("tilesOf", () => {
  it("puts us first with our camera as track 'self'", () => {
    const s = run([joined, ...tracksOfA, { type: "local", ...LOCAL_ON }]);
    const tiles = tilesOf(s, "Me");
    expect(tiles.map((t) => t.key)).toEqual(["self", "peer:a", "peer:b"]);
    expect(tiles[0]).toMatchObject({ isSelf: true, peerId: "me", videoTrack: "self", cameraOff: false });
    expect(tiles[1]).toMatchObject({ videoTrack: "a-v", cameraOff: false, micMuted: false });
    // Bob publishes nothing: camera off, mic muted.
    expect(tiles[2]).toMatchObject({ videoTrack: null, cameraOff: true, micMuted: true });
  });

  it("shows no video for a muted video track", () => {
    const s = run([joined, ...tracksOfA, { type: "track_muted", trackId: "a-v", muted: true }]);
    expect(tilesOf(s, "Me")[1]).toMatchObject({ videoTrack: null, cameraOff: true });
  });
});

describe("initials", () => {
  it.each([
    ["Ada Lovelace", "AL"],
    ["bob", "B"],
    ["  jean  claude  van damme ", "JD"],
    ["", "?"],
    ["Émile Zola", "ÉZ"],
  ])("%j → %j", (name, expected) => {
    expect(initials(name)).toBe(expected);
  });
});

describe("screen shares and the presentation layout", () => {
  const screenOfA: UiEvent = {
    type: "track_added",
    trackId: "a-s",
    peerId: "a",
    kind: "video",
    source: "screen",
    muted: false,
  };
  const screenOfB: UiEvent = { ...screenOfA, trackId: "b-s", peerId: "b" } as UiEvent;
  const stage = (s: RoomState) => pickStage(stageCandidates(s), s.layout.pinned);

  it("gives a screen its own tile, never the camera tile", () => {
    // The screen comes before the camera: the camera tile still shows the camera.
    const s = run([joined, screenOfA, ...tracksOfA]);
    const tiles = allTilesOf(s, "Me");
    expect(tiles.map((t) => t.key)).toEqual(["self", "peer:a", "peer:b", "screen:a"]);
    expect(tiles[1]).toMatchObject({ kind: "person", videoTrack: "a-v", sharing: true });
    expect(tiles[2]).toMatchObject({ sharing: false });
    expect(tiles[3]).toMatchObject({ kind: "screen", name: "Ada's screen", videoTrack: "a-s", peerId: "a" });
    // The people list (tilesOf) has people only.
    expect(tilesOf(s, "Me").map((t) => t.key)).toEqual(["self", "peer:a", "peer:b"]);
  });

  it("a sharer without a camera shows initials in their tile and the screen in its own", () => {
    const s = run([joined, screenOfA]);
    expect(allTilesOf(s, "Me")[1]).toMatchObject({ videoTrack: null, cameraOff: true, sharing: true });
  });

  it("names screens of names ending in s without a second s", () => {
    expect(screenName("Charles")).toBe("Charles' screen");
    expect(screenName("  ")).toBe("Someone's screen");
  });

  it("share starts → stage; pin another → it moves; unpin → back; share ends → grid", () => {
    let s = run([joined, ...tracksOfA]);
    expect(stage(s)).toBeNull();
    s = applyEvent(s, screenOfA);
    expect(stage(s)).toBe("screen:a");
    s = applyEvent(s, { type: "ui/pin", key: "peer:b" });
    expect(s.layout.pinned).toBe("peer:b");
    expect(stage(s)).toBe("peer:b");
    // Pinning the pinned tile again unpins it.
    s = applyEvent(s, { type: "ui/pin", key: "peer:b" });
    expect(s.layout.pinned).toBeNull();
    expect(stage(s)).toBe("screen:a");
    s = applyEvent(s, { type: "track_removed", trackId: "a-s" });
    expect(stage(s)).toBeNull();
    expect(allTilesOf(s, "Me").map((t) => t.key)).toEqual(["self", "peer:a", "peer:b"]);
    expect(allTilesOf(s, "Me")[1]).toMatchObject({ sharing: false });
  });

  it("the newest share takes the stage; when it ends the older one comes back", () => {
    let s = run([joined, screenOfA, screenOfB]);
    expect(stage(s)).toBe("screen:b");
    s = applyEvent(s, { type: "track_removed", trackId: "b-s" });
    expect(stage(s)).toBe("screen:a");
  });

  it("a muted screen track is no share", () => {
    const s = run([joined, screenOfA, { type: "track_muted", trackId: "a-s", muted: true }]);
    expect(stage(s)).toBeNull();
    expect(allTilesOf(s, "Me")[1]).toMatchObject({ sharing: false });
  });

  it("the sharer leaving brings the grid back, and their pinned screen is unpinned for good", () => {
    let s = run([joined, ...tracksOfA, screenOfA, { type: "ui/pin", key: "screen:a" }]);
    expect(stage(s)).toBe("screen:a");
    s = applyEvent(s, { type: "peer_left", peerId: "a" });
    expect(s.layout.pinned).toBeNull();
    expect(stage(s)).toBeNull();
    // Ada back, sharing again: the newest share decides, no stale pin.
    s = run([{ type: "peer_joined", peer: peer("a", "Ada") }, { ...screenOfA, trackId: "a-s2" } as UiEvent], s);
    expect(s.layout.pinned).toBeNull();
    expect(stage(s)).toBe("screen:a");
  });

  it("a pinned person is on the stage without any share; unpinned, the grid is back", () => {
    let s = run([joined, ...tracksOfA, { type: "ui/pin", key: "peer:a" }]);
    expect(stage(s)).toBe("peer:a");
    s = applyEvent(s, { type: "ui/pin", key: null });
    expect(stage(s)).toBeNull();
  });

  it("ignores a pin of a tile that does not exist", () => {
    const s = run([joined]);
    expect(applyEvent(s, { type: "ui/pin", key: "peer:zz" })).toBe(s);
  });

  it("full-window only with a stage, and it ends with the stage", () => {
    let s = run([joined, ...tracksOfA]);
    expect(applyEvent(s, { type: "ui/full" }).layout.full).toBe(false);
    s = run([screenOfA, { type: "ui/full" }], s);
    expect(s.layout.full).toBe(true);
    s = applyEvent(s, { type: "ui/full" });
    expect(s.layout.full).toBe(false);
    s = run([{ type: "ui/full", on: true }, { type: "track_removed", trackId: "a-s" }], s);
    expect(s.layout.full).toBe(false);
  });

  it("leaving the room forgets the layout", () => {
    const s = run([joined, screenOfA, { type: "ui/pin", key: "peer:b" }, { type: "ui/full" }, { type: "ui/left" }]);
    expect(s.layout).toEqual({ pinned: null, full: false });
  });
});

describe("our own screen share", () => {
  const sharing = (on: boolean): UiEvent => ({ type: "local", ...LOCAL_ON, screenOn: on });
  const screenOfA: UiEvent = {
    type: "track_added",
    trackId: "a-s",
    peerId: "a",
    kind: "video",
    source: "screen",
    muted: false,
  };
  const stage = (s: RoomState) => pickStage(stageCandidates(s), s.layout.pinned);

  it("is a tile of its own, 'Your screen', showing the frame track `screen`; we are marked as sharing", () => {
    const s = run([joined, ...tracksOfA, sharing(true)]);
    const tiles = allTilesOf(s, "Me");
    expect(tiles.map((t) => t.key)).toEqual(["self", "peer:a", "peer:b", OWN_SCREEN_KEY]);
    expect(tiles[3]).toMatchObject({
      kind: "screen",
      name: "Your screen",
      isSelf: true,
      videoTrack: "screen",
      peerId: "me",
      sharing: true,
    });
    expect(tiles[0]).toMatchObject({ isSelf: true, sharing: true });
    // The people list has people only.
    expect(tilesOf(s, "Me").map((t) => t.key)).toEqual(["self", "peer:a", "peer:b"]);
  });

  it("stays off the stage unless pinned; another's share takes the stage, ours goes to the strip", () => {
    let s = run([joined, sharing(true)]);
    expect(stage(s)).toBeNull();
    s = applyEvent(s, screenOfA);
    expect(stage(s)).toBe("screen:a");
    expect(allTilesOf(s, "Me").map((t) => t.key)).toEqual(["self", "peer:a", "peer:b", OWN_SCREEN_KEY, "screen:a"]);
    s = applyEvent(s, { type: "ui/pin", key: OWN_SCREEN_KEY });
    expect(stage(s)).toBe(OWN_SCREEN_KEY);
    // Our share ends: its pin goes with it, Ada's screen is back on the stage.
    s = applyEvent(s, { type: "screen_share_ended", reason: "stopped", detail: null });
    expect(s.layout.pinned).toBeNull();
    expect(stage(s)).toBe("screen:a");
    expect(allTilesOf(s, "Me").some((t) => t.key === OWN_SCREEN_KEY)).toBe(false);
  });

  it("ends quietly when we stopped it, with a toast when the source or a moderator did", () => {
    let s = run([joined, sharing(true)]);
    const stopped = applyEvent(s, { type: "screen_share_ended", reason: "stopped", detail: null });
    expect(stopped.local.screenOn).toBe(false);
    expect(stopped.toasts).toEqual([]);

    s = applyEvent(s, { type: "screen_share_ended", reason: "source_ended", detail: "the window was closed" });
    expect(s.local.screenOn).toBe(false);
    expect(s.toasts.map((t) => [t.kind, t.text])).toEqual([["screen", "Screen sharing ended: the window was closed"]]);

    s = run([sharing(true), { type: "screen_share_ended", reason: "moderator", detail: "a" }], s);
    expect(s.toasts[s.toasts.length - 1]!.text).toBe("Ada stopped your screen share");
    // The engine's `moderated` event that follows says the same: one toast, not two.
    const before = s.toasts.length;
    s = applyEvent(s, { type: "moderated", action: "stop_screen", by: "a" });
    expect(s.toasts).toHaveLength(before);
  });

  it("names no one it does not know: 'A moderator stopped your screen share'", () => {
    const s = run([joined, sharing(true), { type: "screen_share_ended", reason: "moderator", detail: "zz" }]);
    expect(s.toasts.map((t) => t.text)).toEqual(["A moderator stopped your screen share"]);
  });

  it("is forgotten in the lobby", () => {
    const s = run([joined, sharing(true), { type: "ui/left" }]);
    expect(s.local.screenOn).toBe(false);
    expect(allTilesOf(s, "Me").map((t) => t.key)).toEqual(["self"]);
  });
});

describe("the screen picker", () => {
  const source = (id: string, kind: "screen" | "window") => ({ id, kind, title: id, width: 1280, height: 800 });
  const listed = [source("window:0x1", "window"), source("monitor:0", "screen"), source("monitor:1", "screen")];
  const error = { kind: "device" as const, message: "window:0x1 is no longer available.", hint: "Pick another." };

  it("opens with screens first, moves its highlight within bounds, closes", () => {
    let s = run([joined, { type: "ui/picker-open", sources: listed }]);
    expect(s.picker?.sources.map((x) => x.id)).toEqual(["monitor:0", "monitor:1", "window:0x1"]);
    expect(s.picker?.selected).toBe(0);
    s = applyEvent(s, { type: "ui/picker-select", index: 2 });
    expect(s.picker?.selected).toBe(2);
    s = applyEvent(s, { type: "ui/picker-select", index: 9 });
    expect(s.picker?.selected).toBe(2);
    s = applyEvent(s, { type: "ui/picker-close" });
    expect(s.picker).toBeNull();
  });

  it("shows a failure inside, keeping the highlighted source when it is listed again", () => {
    let s = run([joined, { type: "ui/picker-open", sources: listed }, { type: "ui/picker-select", index: 1 }]);
    s = applyEvent(s, { type: "ui/picker-starting", on: true });
    expect(s.picker?.starting).toBe(true);
    s = applyEvent(s, { type: "ui/picker-open", sources: listed.slice(1), error });
    expect(s.picker).toMatchObject({ selected: 1, error, starting: false });
    expect(s.picker?.sources[1]!.id).toBe("monitor:1");
    s = applyEvent(s, { type: "ui/picker-error", error });
    expect(s.picker?.error).toEqual(error);
  });

  it("closes when our share starts, and is gone in the lobby; never opens there", () => {
    let s = run([joined, { type: "ui/picker-open", sources: listed }]);
    s = applyEvent(s, { type: "local", ...LOCAL_ON, screenOn: true });
    expect(s.picker).toBeNull();
    s = run([{ type: "ui/picker-open", sources: listed }, { type: "closed", reason: "left", error: null }], s);
    expect(s.picker).toBeNull();
    expect(applyEvent(s, { type: "ui/picker-open", sources: listed }).picker).toBeNull();
  });

  it("remembers why sharing is unavailable until the room is left", () => {
    let s = run([joined, { type: "ui/share-unavailable", error }]);
    expect(s.shareUnavailable).toEqual(error);
    s = applyEvent(s, { type: "ui/left" });
    expect(s.shareUnavailable).toBeNull();
  });
});
