import { describe, expect, it } from "vitest";
import { MAX_PENDING_CANDIDATES, Negotiation, msidsByMid, type PcLike } from "./negotiation";
import type { DeclaredTrack } from "./wire";

/** A PeerConnection that only keeps the signaling state, and logs what is asked of it. */
class FakePc implements PcLike {
  signalingState: RTCSignalingState = "stable";
  localDescription: { type: RTCSdpType; sdp: string } | null = null;
  readonly log: string[] = [];
  failRemote = false;
  private n = 0;

  async createOffer(): Promise<RTCSessionDescriptionInit> {
    return { type: "offer", sdp: `offer-${++this.n}` };
  }
  async createAnswer(): Promise<RTCSessionDescriptionInit> {
    return { type: "answer", sdp: `answer-${++this.n}` };
  }
  async setLocalDescription(d?: RTCSessionDescriptionInit): Promise<void> {
    this.log.push(`local ${d?.type}`);
    if (d?.type === "offer") this.signalingState = "have-local-offer";
    if (d?.type === "answer" || d?.type === "rollback") this.signalingState = "stable";
    if (d?.type === "offer" || d?.type === "answer") this.localDescription = { type: d.type, sdp: d.sdp ?? "" };
  }
  async setRemoteDescription(d: RTCSessionDescriptionInit): Promise<void> {
    if (this.failRemote) throw new Error("bad sdp");
    this.log.push(`remote ${d.type}`);
    this.signalingState = d.type === "offer" ? "have-remote-offer" : "stable";
  }
  async addIceCandidate(c: RTCIceCandidateInit): Promise<void> {
    this.log.push(`candidate ${c.candidate}`);
  }
}

function setup() {
  const pc = new FakePc();
  const sent: { type: string; sdp: string; tracks?: DeclaredTrack[] }[] = [];
  const reports: string[] = [];
  const neg = new Negotiation(pc, {
    send: (m) => sent.push(m),
    declare: () => [{ track_id: "t-cam", source: "camera", muted: false }],
    report: (what) => reports.push(what),
  });
  return { pc, sent, reports, neg };
}

const SERVER_OFFER = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=msid:p-1 c0ffee-cam\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=msid:p-1 c0ffee-mic\r\n";

describe("negotiation", () => {
  it("offers with the declared tracks, applies the answer", async () => {
    const { pc, sent, neg } = setup();
    await neg.offer();
    expect(sent).toEqual([{ type: "sdp_offer", sdp: "offer-1", tracks: [{ track_id: "t-cam", source: "camera", muted: false }] }]);
    expect(neg.makingOffer).toBe(true);
    await neg.onAnswer("answer-sdp");
    expect(neg.makingOffer).toBe(false);
    expect(pc.signalingState).toBe("stable");
  });

  it("answers a server offer and learns which publisher and track each m-section carries", async () => {
    const { sent, neg } = setup();
    await neg.onOffer(SERVER_OFFER);
    expect(sent).toEqual([{ type: "sdp_answer", sdp: "answer-1" }]);
    expect(neg.remoteMsids.get("0")).toEqual({ peerId: "p-1", trackId: "c0ffee-cam" });
    expect(neg.remoteMsids.get("1")).toEqual({ peerId: "p-1", trackId: "c0ffee-mic" });
  });

  it("glare: a server offer crossing ours is ignored; the re-offer after our answer is taken", async () => {
    const { pc, sent, neg } = setup();
    await neg.offer();
    await neg.onOffer(SERVER_OFFER);
    expect(neg.counts.offersIgnored).toBe(1);
    expect(pc.log).toEqual(["local offer"]);
    await neg.onAnswer("answer");
    await neg.onOffer(SERVER_OFFER);
    expect(sent.map((m) => m.type)).toEqual(["sdp_offer", "sdp_answer"]);
    expect(pc.log).toEqual(["local offer", "remote answer", "remote offer", "local answer"]);
  });

  it("a change while our offer is out is offered after its answer", async () => {
    const { sent, neg } = setup();
    await neg.offer();
    await neg.offer();
    expect(sent).toHaveLength(1);
    expect(neg.offerAgain).toBe(true);
    await neg.onAnswer("answer");
    expect(sent.map((m) => m.sdp)).toEqual(["offer-1", "offer-2"]);
    expect(neg.makingOffer).toBe(true);
  });

  it("a server error in place of our answer rolls our offer back, so server offers are taken", async () => {
    const { pc, sent, neg } = setup();
    await neg.offer();
    await neg.onServerError("chat_is_not_it");
    expect(neg.makingOffer).toBe(true);
    await neg.onServerError("publish_not_allowed");
    expect(neg.makingOffer).toBe(false);
    expect(pc.signalingState).toBe("stable");
    await neg.onOffer(SERVER_OFFER);
    expect(sent.map((m) => m.type)).toEqual(["sdp_offer", "sdp_answer"]);
  });

  it("an answer that cannot be applied is reported and rolled back", async () => {
    const { pc, reports, neg } = setup();
    await neg.offer();
    pc.failRemote = true;
    await neg.onAnswer("garbage");
    expect(reports).toContain("server answer could not be applied");
    expect(pc.signalingState).toBe("stable");
    expect(neg.makingOffer).toBe(false);
  });

  it("an answer without an offer is ignored", async () => {
    const { pc, reports, neg } = setup();
    await neg.onAnswer("stray");
    expect(reports).toEqual(["server answer"]);
    expect(pc.log).toEqual([]);
  });

  it("candidates wait for the remote description (bounded), then go in order", async () => {
    const { pc, neg } = setup();
    for (let i = 0; i < MAX_PENDING_CANDIDATES + 5; i++) {
      await neg.onCandidate({ candidate: `c${i}`, sdp_mid: "0", sdp_mline_index: 0 });
    }
    await neg.onCandidate({ candidate: "  " });
    expect(pc.log).toEqual([]);
    await neg.onOffer(SERVER_OFFER);
    const added = pc.log.filter((l) => l.startsWith("candidate"));
    expect(added).toHaveLength(MAX_PENDING_CANDIDATES);
    expect(added[0]).toBe("candidate c0");
    await neg.onCandidate({ candidate: "late" });
    expect(pc.log[pc.log.length - 1]).toBe("candidate late");
  });

  it("nothing runs after close", async () => {
    const { sent, neg } = setup();
    neg.close();
    await neg.offer();
    await neg.onOffer(SERVER_OFFER);
    expect(sent).toEqual([]);
  });

  it("msids by mid, only sections that have both", () => {
    const sdp = "v=0\r\nm=audio 9 X 111\r\na=mid:0\r\na=msid:s1 t1\r\nm=video 9 X 96\r\na=mid:1\r\nm=video 9 X 96\r\na=msid:s3 t3\r\n";
    expect([...msidsByMid(sdp)]).toEqual([["0", { peerId: "s1", trackId: "t1" }]]);
  });
});
