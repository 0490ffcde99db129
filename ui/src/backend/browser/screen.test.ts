import { afterEach, describe, expect, it, vi } from "vitest";
import type { UiEvent } from "../../bindings/UiEvent";
import { FakePeerConnection, FakeStream, FakeTrack, installFakeBrowser, type FakeServer } from "./fakes";
import { BrowserBackend } from "./index";
import { BrowserRoom, type Source } from "./room";
import { CANNOT_SHARE, DISPLAY_CONSTRAINTS, openScreen, screenError } from "./screen";
import type { DeclaredTrack } from "./wire";

/** Conditions the fakes reach within a few timer turns; never a fixed sleep. */
const BOUND = { timeout: 2000, interval: 2 };

interface Joined {
  room: BrowserRoom;
  server: FakeServer;
  events: UiEvent[];
  media: { source: Source; track: MediaStreamTrack | null }[];
  display: ReturnType<typeof vi.fn>;
}

/**
 * A room joined through the fakes, its first offer answered. `display` is getDisplayMedia
 * (default: a 1920×1080 screen capture).
 */
async function joined(display?: (o: DisplayMediaStreamOptions) => Promise<FakeStream>): Promise<Joined> {
  const { server, devices } = installFakeBrowser();
  const fn = vi.fn(display ?? (async () => new FakeStream([new FakeTrack("video", "screen:0:0")])));
  devices.getDisplayMedia = fn;
  const events: UiEvent[] = [];
  const media: Joined["media"] = [];
  const { room } = await BrowserRoom.join(
    {
      url: "ws://127.0.0.1:1/ws",
      host: "127.0.0.1:1",
      room: "r",
      name: "Ada",
      token: null,
      camera: null,
      microphone: null,
      cameraOn: true,
      micOn: true,
      previewTrack: null,
      cameraListed: true,
    },
    {
      emit: (e) => events.push(e),
      remoteMedia: () => {},
      localMedia: (source, track) => media.push({ source, track }),
      ended: () => {},
    },
  );
  rooms.push(room);
  await answered(server, 1);
  return { room, server, events, media, display: fn };
}

/** Until the client sent `n` offers and applied the answer to the last. */
async function answered(server: FakeServer, n: number): Promise<DeclaredTrack[]> {
  await vi.waitFor(() => {
    expect(server.sent("sdp_offer")).toHaveLength(n);
    expect(pc().signalingState).toBe("stable");
  }, BOUND);
  return server.sent("sdp_offer")[n - 1]!.tracks;
}

function pc(): FakePeerConnection {
  const last = FakePeerConnection.last;
  if (!last) throw new Error("no PeerConnection yet");
  return last;
}

const rooms: BrowserRoom[] = [];

afterEach(() => {
  for (const room of rooms.splice(0)) room.leaveNow();
  vi.unstubAllGlobals();
});

describe("opening a capture", () => {
  it("asks for 15 fps at most 1920×1080 without audio, tuned for detail", async () => {
    const audio = new FakeTrack("audio");
    const video = new FakeTrack("video");
    const getDisplayMedia = vi.fn(async () => new FakeStream([video, audio]) as unknown as MediaStream);
    const opened = await openScreen({ getDisplayMedia });
    expect(getDisplayMedia).toHaveBeenCalledWith({
      video: { frameRate: { max: 15 }, width: { max: 1920 }, height: { max: 1080 } },
      audio: false,
    });
    expect(opened).toEqual({ track: video });
    expect(video.contentHint).toBe("detail");
    // Audio we did not ask for is not kept running.
    expect(audio.readyState).toBe("ended");
  });

  it("no getDisplayMedia: this browser cannot share, and says which would", async () => {
    expect(await openScreen(null)).toEqual({ error: CANNOT_SHARE });
    expect(CANNOT_SHARE.kind).toBe("device");
    expect(CANNOT_SHARE.hint).toMatch(/Chromium, Firefox or Safari.*HTTPS/);
  });

  it("the dialog closed is `cancelled`; a capture that cannot start is a device error with a hint", () => {
    expect(screenError(new DOMException("Permission denied", "NotAllowedError")).kind).toBe("cancelled");
    const unreadable = screenError(new DOMException("Could not start video source", "NotReadableError"));
    expect(unreadable.kind).toBe("device");
    expect(unreadable.hint).toBeTruthy();
    const other = screenError(new Error("boom"));
    expect(other).toMatchObject({ kind: "device", message: "Screen sharing failed: boom." });
  });

  it("a capture without video is nothing to share", async () => {
    const opened = await openScreen({ getDisplayMedia: async () => new FakeStream([]) as unknown as MediaStream });
    expect(opened).toMatchObject({ error: { kind: "device" } });
  });
});

describe("the backend's screen sources", () => {
  it("the browser's dialog picks when getDisplayMedia exists, else a device error", async () => {
    const { devices } = installFakeBrowser();
    const backend = new BrowserBackend();
    await expect(backend.listScreenSources()).rejects.toMatchObject({ kind: "device", hint: CANNOT_SHARE.hint });
    devices.getDisplayMedia = async () => new FakeStream([new FakeTrack("video")]);
    await expect(backend.listScreenSources()).resolves.toEqual({ picker: "system", sources: [] });
    await expect(backend.closeScreenPicker()).resolves.toBeUndefined();
    // Out of a room there is nothing to share into.
    await expect(backend.startScreenShare(null)).rejects.toMatchObject({ kind: "not_in_room" });
  });
});

describe("sharing in a room", () => {
  it("publishes the capture on a new sendonly transceiver, declared with source screen", async () => {
    const { room, server, media, display } = await joined();
    const before = await answered(server, 1);
    expect(before.map((t) => t.source).sort()).toEqual(["camera", "microphone"]);
    const transceivers = pc().transceivers.length;

    const local = await room.startScreenShare(null);
    expect(local.screenOn).toBe(true);
    expect(display).toHaveBeenCalledWith(DISPLAY_CONSTRAINTS);
    const share = media.find((m) => m.source === "screen")?.track as FakeTrack | undefined;
    expect(share?.contentHint).toBe("detail");

    const tracks = await answered(server, 2);
    const screen = tracks.find((t) => t.source === "screen");
    expect(screen).toEqual({ track_id: expect.any(String), source: "screen", muted: false });
    expect(tracks.filter((t) => t.source !== "screen")).toEqual(before);
    expect(pc().transceivers).toHaveLength(transceivers + 1);
    const t = pc().sending().get(screen!.track_id);
    expect(t?.direction).toBe("sendonly");
    expect(t?.kind).toBe("video");
    expect(t?.sender.track).toBe(share);
    expect(server.sent("sdp_offer")[1]!.sdp).toContain(`a=msid:stream-1 ${screen!.track_id}`);
  });

  it("the dialog cancelled rejects with kind cancelled, publishes nothing, and may be tried again", async () => {
    let cancel = true;
    const { room, server, events } = await joined(async () => {
      if (cancel) throw new DOMException("Permission denied by user", "NotAllowedError");
      return new FakeStream([new FakeTrack("video")]);
    });
    await expect(room.startScreenShare(null)).rejects.toMatchObject({ kind: "cancelled" });
    expect(room.localState().screenOn).toBe(false);
    expect(server.sent("sdp_offer")).toHaveLength(1);
    expect(events.some((e) => e.type === "screen_share_ended")).toBe(false);
    cancel = false;
    await expect(room.startScreenShare(null)).resolves.toMatchObject({ screenOn: true });
    await answered(server, 2);
  });

  it("a second share while one runs, or while the dialog is open, is refused as busy", async () => {
    let pick: (s: FakeStream) => void = () => {};
    const { room, server } = await joined(() => new Promise((resolve) => (pick = resolve)));
    const first = room.startScreenShare(null);
    await expect(room.startScreenShare(null)).rejects.toMatchObject({ kind: "busy" });
    pick(new FakeStream([new FakeTrack("video")]));
    await expect(first).resolves.toMatchObject({ screenOn: true });
    await expect(room.startScreenShare(null)).rejects.toMatchObject({ kind: "busy" });
    await expect(room.startScreenShare("screen")).rejects.toMatchObject({ kind: "rejected" });
    const tracks = await answered(server, 2);
    expect(tracks.filter((t) => t.source === "screen")).toHaveLength(1);
  });

  it("the browser's own Stop sharing unpublishes: screen_share_ended source_ended, then local", async () => {
    const { room, server, events, media } = await joined();
    await room.startScreenShare(null);
    const screenId = (await answered(server, 2)).find((t) => t.source === "screen")!.track_id;
    const t = pc().sending().get(screenId)!;
    const share = t.sender.track!;
    events.length = 0;

    share.end();
    expect(events).toEqual([
      { type: "screen_share_ended", reason: "source_ended", detail: null },
      expect.objectContaining({ type: "local", screenOn: false, cameraOn: true, micOn: true }),
    ]);
    expect(media[media.length - 1]).toEqual({ source: "screen", track: null });
    const tracks = await answered(server, 3);
    expect(tracks.map((x) => x.source).sort()).toEqual(["camera", "microphone"]);
    expect(t.direction).toBe("inactive");
    expect(server.sent("sdp_offer")[2]!.sdp).not.toContain(screenId);
    await vi.waitFor(() => expect(t.sender.track).toBeNull(), BOUND);
  });

  it("stopping unpublishes with reason stopped and stops the capture", async () => {
    const { room, server, events } = await joined();
    await room.startScreenShare(null);
    const screenId = (await answered(server, 2)).find((t) => t.source === "screen")!.track_id;
    const share = pc().sending().get(screenId)!.sender.track!;
    events.length = 0;

    await expect(room.stopScreenShare()).resolves.toMatchObject({ screenOn: false });
    expect(share.readyState).toBe("ended");
    expect(events.map((e) => e.type)).toEqual(["screen_share_ended", "local"]);
    expect(events[0]).toEqual({ type: "screen_share_ended", reason: "stopped", detail: null });
    const tracks = await answered(server, 3);
    expect(tracks.some((x) => x.source === "screen")).toBe(false);
    // The server unpublishes what the SDP no longer sends.
    expect(server.sent("sdp_offer")[2]!.sdp).not.toContain(screenId);
    // Nothing shared: nothing to stop, and no event.
    await expect(room.stopScreenShare()).resolves.toMatchObject({ screenOn: false });
    expect(events).toHaveLength(2);
    // A new share gets a new transceiver (a fresh track id).
    await room.startScreenShare(null);
    const again = (await answered(server, 4)).find((t) => t.source === "screen")!.track_id;
    expect(again).not.toBe(screenId);
  });

  it("a moderator's stop_screen ends the share with reason moderator and the moderator's id", async () => {
    const { room, server, events } = await joined();
    await room.startScreenShare(null);
    await answered(server, 2);
    events.length = 0;
    server.push({ type: "moderated", action: "stop_screen", by: "p-mod" });
    await vi.waitFor(() => expect(events.some((e) => e.type === "moderated")).toBe(true), BOUND);
    expect(events[0]).toEqual({ type: "screen_share_ended", reason: "moderator", detail: "p-mod" });
    expect(events).toContainEqual({ type: "moderated", action: "stop_screen", by: "p-mod" });
    expect(events[events.length - 1]).toMatchObject({ type: "local", screenOn: false });
    const tracks = await answered(server, 3);
    expect(tracks.some((x) => x.source === "screen")).toBe(false);
  });

  it("a share still live when the session is replaced is published again in the new one", async () => {
    const { room, server } = await joined();
    await room.startScreenShare(null);
    const firstId = (await answered(server, 2)).find((t) => t.source === "screen")!.track_id;
    const share = pc().sending().get(firstId)!.sender.track!;
    const oldPc = pc();

    server.push({ type: "closing", reason: "restart" });
    await vi.waitFor(() => {
      expect(FakePeerConnection.last).not.toBe(oldPc);
      expect(server.sent("join")).toHaveLength(2);
    }, BOUND);
    const tracks = await answered(server, 3);
    const screen = tracks.find((t) => t.source === "screen");
    expect(screen).toMatchObject({ source: "screen", muted: false });
    expect(screen!.track_id).not.toBe(firstId);
    await vi.waitFor(() => expect(pc().sending().get(screen!.track_id)?.sender.track).toBe(share), BOUND);
    expect(room.localState().screenOn).toBe(true);
  });
});
