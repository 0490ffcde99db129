import { describe, expect, it } from "vitest";
import type { UiEvent } from "../../bindings/UiEvent";
import { RoomModel } from "./translate";
import type { WireJoined, WireTrack } from "./wire";

const track = (id: string, peer: string, kind: "audio" | "video" = "video", muted = false): WireTrack => ({
  track_id: id,
  peer_id: peer,
  kind,
  source: kind === "video" ? "camera" : "microphone",
  muted,
});

const joined = (patch: Partial<WireJoined> = {}): WireJoined => ({
  type: "joined",
  protocol_version: 1,
  peer_id: "p-3",
  room: "standup",
  peers: [{ peer_id: "p-1", display_name: "Grace", moderator: true, hand_raised_at: 1764380000000 }],
  tracks: [track("c0ffee-cam", "p-1")],
  ice_servers: [],
  chat_history: [{ id: 1, from: "p-1", from_name: "Grace", text: "Agenda in the doc", sent_at: 1764379990000 }],
  resume_token: "9f2c4e1a7b3d5f60",
  ...patch,
});

describe("RoomModel: joined", () => {
  it("turns `joined` into the desktop's events: joined, then a track_added per track", () => {
    const m = new RoomModel();
    const events = m.joined(joined());
    expect(events).toEqual<UiEvent[]>([
      {
        type: "joined",
        selfId: "p-3",
        peers: [{ id: "p-1", name: "Grace", moderator: true, handRaisedAt: 1764380000000 }],
        room: {
          moderator: false,
          locked: false,
          chat: [{ id: 1, from: "p-1", fromName: "Grace", to: null, text: "Agenda in the doc", sentAt: 1764379990000 }],
        },
      },
      { type: "track_added", trackId: "c0ffee-cam", peerId: "p-1", kind: "video", source: "camera", muted: false },
    ]);
    expect(m.resumeToken).toBe("9f2c4e1a7b3d5f60");
  });

  it("after a rejoin, leaves out our own earlier session and removes tracks that went", () => {
    const m = new RoomModel();
    m.joined(joined({ tracks: [track("a-cam", "p-1"), track("b-cam", "p-2")] }));
    m.sessionLost();
    // The server still lists our old session (p-3) and its track; p-2 left meanwhile.
    const events = m.joined(
      joined({
        peer_id: "p-7",
        peers: [
          { peer_id: "p-1", display_name: "Grace" },
          { peer_id: "p-3", display_name: "Ada" },
        ],
        tracks: [track("a-cam", "p-1"), track("old-cam", "p-3")],
      }),
    );
    expect(events[0]).toMatchObject({ type: "joined", selfId: "p-7", peers: [{ id: "p-1" }] });
    expect(events.slice(1)).toEqual([
      { type: "track_removed", trackId: "b-cam" },
      { type: "track_added", trackId: "a-cam", peerId: "p-1", kind: "video", source: "camera", muted: false },
    ]);
    // The ghost going is no news; its tracks were never announced.
    expect(m.apply({ type: "peer_left", peer_id: "p-3" }).events).toEqual([]);
    expect(m.apply({ type: "tracks_removed", track_ids: ["old-cam"] }).events).toEqual([]);
    expect(m.apply({ type: "peer_joined", peer: { peer_id: "p-3", display_name: "Ada" } }).events).toEqual([]);
  });
});

describe("RoomModel: messages", () => {
  const inRoom = () => {
    const m = new RoomModel();
    m.joined(joined());
    return m;
  };

  it("peers come, change and go", () => {
    const m = inRoom();
    expect(m.apply({ type: "peer_joined", peer: { peer_id: "p-4", display_name: "Linus" } }).events).toEqual([
      { type: "peer_joined", peer: { id: "p-4", name: "Linus", moderator: false, handRaisedAt: null } },
    ]);
    expect(m.apply({ type: "peer_updated", peer: { peer_id: "p-4", display_name: "Linus T.", moderator: true } }).events).toEqual([
      { type: "peer_updated", peer: { id: "p-4", name: "Linus T.", moderator: true, handRaisedAt: null } },
    ]);
    expect(m.nameOf("p-4")).toBe("Linus T.");
    expect(m.apply({ type: "peer_left", peer_id: "p-4" }).events).toEqual([{ type: "peer_left", peerId: "p-4" }]);
    expect(m.nameOf("p-4")).toBe("A moderator");
  });

  it("our own peer_updated carries our moderator grant", () => {
    const m = inRoom();
    const { events } = m.apply({ type: "peer_updated", peer: { peer_id: "p-3", display_name: "Ada", moderator: true } });
    expect(events).toEqual([{ type: "peer_updated", peer: { id: "p-3", name: "Ada", moderator: true, handRaisedAt: null } }]);
    expect(m.moderator).toBe(true);
  });

  it("passes each track's source on: a screen share is told apart from a camera", () => {
    const m = inRoom();
    const screen: WireTrack = { ...track("x-screen", "p-1"), source: "screen" };
    expect(m.apply({ type: "tracks_added", tracks: [track("x-cam", "p-1"), screen] }).events).toEqual([
      { type: "track_added", trackId: "x-cam", peerId: "p-1", kind: "video", source: "camera", muted: false },
      { type: "track_added", trackId: "x-screen", peerId: "p-1", kind: "video", source: "screen", muted: false },
    ]);
  });

  it("tracks: added, muted only when it changes, our own updates ignored, removed once", () => {
    const m = inRoom();
    expect(m.apply({ type: "tracks_added", tracks: [track("x-mic", "p-1", "audio")] }).events).toEqual([
      { type: "track_added", trackId: "x-mic", peerId: "p-1", kind: "audio", source: "microphone", muted: false },
    ]);
    expect(m.apply({ type: "track_updated", track: track("x-mic", "p-1", "audio", true) }).events).toEqual([
      { type: "track_muted", trackId: "x-mic", muted: true },
    ]);
    expect(m.apply({ type: "track_updated", track: track("x-mic", "p-1", "audio", true) }).events).toEqual([]);
    // The server confirms our own mute to us too: not a remote track.
    expect(m.apply({ type: "track_updated", track: track("mine", "p-3", "audio", true) }).events).toEqual([]);
    expect(m.apply({ type: "tracks_removed", track_ids: ["x-mic", "x-mic"] }).events).toEqual([
      { type: "track_removed", trackId: "x-mic" },
    ]);
  });

  it("chat, lock and errors", () => {
    const m = inRoom();
    expect(
      m.apply({ type: "chat", message: { id: 18, from: "p-3", from_name: "Ada", to: "p-1", text: "hi", sent_at: 5 } }).events,
    ).toEqual([{ type: "chat", message: { id: 18, from: "p-3", fromName: "Ada", to: "p-1", text: "hi", sentAt: 5 } }]);
    expect(m.apply({ type: "room_updated", locked: true, by: "p-1" }).events).toEqual([
      { type: "room_locked", locked: true, by: "p-1" },
    ]);
    const refused = m.apply({ type: "error", code: "rate_limited", message: "slow down" });
    expect(refused.events).toEqual([
      { type: "error", error: { kind: "rejected", message: "You are sending too fast.", hint: "Wait a second, then send again." } },
    ]);
    expect(refused.effect).toEqual({ kind: "server_error", code: "rate_limited", message: "slow down" });
  });

  it("moderation, removal, the end of the meeting and closing are effects for the engine", () => {
    const m = inRoom();
    expect(m.apply({ type: "moderated", action: "mute_microphone", by: "p-1" })).toEqual({
      events: [],
      effect: { kind: "moderated", action: "mute_microphone", by: "p-1" },
    });
    expect(m.apply({ type: "removed", by: "p-1", reason: "Please join the other room" }).effect).toEqual({
      kind: "ended",
      reason: "Grace removed you from the room: Please join the other room",
      error: {
        kind: "removed",
        message: "Grace removed you from the room: Please join the other room",
        hint: "You can join again unless the room is locked.",
      },
    });
    expect(m.apply({ type: "meeting_ended", by: "p-1" }).effect).toMatchObject({
      kind: "ended",
      error: { kind: "meeting_ended", message: "Grace ended the meeting for everyone." },
    });
    expect(m.apply({ type: "closing", reason: "server shutting down" }).effect).toEqual({
      kind: "lost",
      reason: "server closing: server shutting down",
    });
  });

  it("invite_created, with or without a token", () => {
    const m = inRoom();
    expect(m.apply({ type: "invite_created", token: "a.b.c", expires_at: 1795000000 }).effect).toEqual({
      kind: "invite",
      token: "a.b.c",
      url: null,
      expiresAt: 1795000000,
    });
    expect(m.apply({ type: "invite_created", url: "https://meet.example.org/r/design" }).effect).toEqual({
      kind: "invite",
      token: null,
      url: "https://meet.example.org/r/design",
      expiresAt: null,
    });
  });
});

describe("active_speakers", () => {
  it("becomes an `active_speakers` event, loudest first, junk ids dropped", () => {
    const model = new RoomModel();
    const applied = model.apply({ type: "active_speakers", peer_ids: ["b", 7 as unknown as string, "a"] });
    expect(applied).toEqual({ events: [{ type: "active_speakers", peerIds: ["b", "a"] }], effect: null });
    const none = model.apply({ type: "active_speakers", peer_ids: null as unknown as string[] });
    expect(none.events).toEqual([{ type: "active_speakers", peerIds: [] }]);
  });
});
