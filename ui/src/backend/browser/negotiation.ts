// One PeerConnection's offer/answer state machine (docs/protocol.md, "Glare"), over a
// minimal PeerConnection interface so that Vitest drives it with a fake (negotiation.test.ts).
//
// - We offer when our published tracks change (`offer`). While our offer is unanswered, a
//   second change only notes that another offer is due after the answer (`offerAgain`).
// - A server offer that crosses ours is ignored: the client wins, the server rolls its own
//   back and offers again after our answer. So the client never needs rollback for glare.
// - A server `error` instead of our answer (`invalid_sdp`, `internal`, `publish_not_allowed`)
//   abandons our offer (rollback), so that the server's offers are taken again.
// - Remote candidates wait until a remote description is set.
// - Every server SDP teaches us which publisher and track each m-section carries (its
//   `a=msid:<publisher peer id> <track id>`), for `ontrack`.
//
// Every step runs in order on one chain: a step never starts while another one awaits the
// PeerConnection.

import type { DeclaredTrack, WireCandidate } from "./wire";

/** The part of RTCPeerConnection negotiation needs. */
export interface PcLike {
  readonly signalingState: RTCSignalingState;
  readonly localDescription: { type: RTCSdpType; sdp: string } | null;
  createOffer(): Promise<RTCSessionDescriptionInit>;
  createAnswer(): Promise<RTCSessionDescriptionInit>;
  setLocalDescription(d?: RTCSessionDescriptionInit): Promise<void>;
  setRemoteDescription(d: RTCSessionDescriptionInit): Promise<void>;
  addIceCandidate(c: RTCIceCandidateInit): Promise<void>;
}

/** Publisher peer id and track id of one m-section, from its `a=msid`. */
export interface Msid {
  peerId: string;
  trackId: string;
}

/** `mid` → msid of every m-section of `sdp` that has both. */
export function msidsByMid(sdp: string): Map<string, Msid> {
  const out = new Map<string, Msid>();
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    const mid = /\r?\na=mid:(\S+)/.exec(section)?.[1];
    const msid = /\r?\na=msid:(\S+) (\S+)/.exec(section);
    if (mid !== undefined && msid) out.set(mid, { peerId: msid[1]!, trackId: msid[2]! });
  }
  return out;
}

/** Candidates kept before the remote description (the server sends a handful). */
export const MAX_PENDING_CANDIDATES = 64;

/** Server error codes that stand for "your offer was not taken". */
const OFFER_REFUSALS = new Set(["invalid_sdp", "internal", "publish_not_allowed"]);

export interface NegotiationHooks {
  send(message:
    | { type: "sdp_offer"; sdp: string; tracks: DeclaredTrack[] }
    | { type: "sdp_answer"; sdp: string }): void;
  /**
   * The tracks to declare with an offer whose local description is applied (`sdp`): their
   * ids are the msids the browser put in it.
   */
  declare(sdp: string): DeclaredTrack[];
  /** Something failed; the session goes on. */
  report(what: string, e: unknown): void;
}

export class Negotiation {
  /** Our offer is out, its answer not applied yet. */
  makingOffer = false;
  /** Another offer is due once the answer to ours is in. */
  offerAgain = false;
  /** A remote description is set: candidates go straight in. */
  remoteSet = false;
  /** Counters, for tests and the test hooks. */
  readonly counts = { offersSent: 0, answersReceived: 0, offersReceived: 0, offersIgnored: 0, answersSent: 0 };
  /** mid → publisher and track, from every server SDP applied. */
  readonly remoteMsids = new Map<string, Msid>();
  private pending: RTCIceCandidateInit[] = [];
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly pc: PcLike,
    private readonly hooks: NegotiationHooks,
  ) {}

  /** Runs `step` after every step before it; a failure is reported, the chain goes on. */
  private run(what: string, step: () => Promise<void>): Promise<void> {
    const next = this.chain.then(async () => {
      if (this.closed) return;
      try {
        await step();
      } catch (e) {
        this.hooks.report(what, e);
      }
    });
    this.chain = next;
    return next;
  }

  /** No more steps (the session ended). */
  close(): void {
    this.closed = true;
  }

  /** Our published tracks changed: offer them (or once the current offer is answered). */
  offer(): Promise<void> {
    return this.run("offer", () => this.makeOffer());
  }

  private async makeOffer(): Promise<void> {
    if (this.makingOffer) {
      this.offerAgain = true;
      return;
    }
    if (this.pc.signalingState !== "stable") {
      // Mid-way through the server's offer (cannot happen on the chain); try after it.
      this.offerAgain = true;
      return;
    }
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    const sdp = this.pc.localDescription?.sdp;
    if (!sdp) throw new Error("no local description after applying our offer");
    this.makingOffer = true;
    this.counts.offersSent++;
    this.hooks.send({ type: "sdp_offer", sdp, tracks: this.hooks.declare(sdp) });
  }

  /** The server's answer to our offer. */
  onAnswer(sdp: string): Promise<void> {
    return this.run("server answer", async () => {
      if (!this.makingOffer || this.pc.signalingState !== "have-local-offer") {
        this.hooks.report("server answer", new Error("an answer without an offer of ours; ignored"));
        return;
      }
      this.makingOffer = false;
      try {
        await this.pc.setRemoteDescription({ type: "answer", sdp });
      } catch (e) {
        this.hooks.report("server answer could not be applied", e);
        await this.rollback();
        return;
      }
      this.learn(sdp);
      this.counts.answersReceived++;
      await this.remoteApplied();
      if (this.offerAgain) {
        this.offerAgain = false;
        await this.makeOffer();
      }
    });
  }

  /** A server offer (it subscribes us to tracks, or takes them away). */
  onOffer(sdp: string): Promise<void> {
    return this.run("server offer", async () => {
      this.counts.offersReceived++;
      if (this.makingOffer || this.pc.signalingState === "have-local-offer") {
        // Glare: we win; the server rolls back and offers again after our answer.
        this.counts.offersIgnored++;
        return;
      }
      await this.pc.setRemoteDescription({ type: "offer", sdp });
      this.learn(sdp);
      await this.remoteApplied();
      const answer = await this.pc.createAnswer();
      await this.pc.setLocalDescription(answer);
      const local = this.pc.localDescription?.sdp;
      if (!local) throw new Error("no local description after applying our answer");
      this.counts.answersSent++;
      this.hooks.send({ type: "sdp_answer", sdp: local });
      if (this.offerAgain) {
        this.offerAgain = false;
        await this.makeOffer();
      }
    });
  }

  /** A server `error`: if it refuses our offer, the offer is dropped. */
  onServerError(code: string): Promise<void> {
    return this.run("abandon offer", async () => {
      if (!this.makingOffer || !OFFER_REFUSALS.has(code)) return;
      this.makingOffer = false;
      this.offerAgain = false;
      await this.rollback();
    });
  }

  /** A trickled server candidate. */
  onCandidate(c: WireCandidate): Promise<void> {
    return this.run("server candidate", async () => {
      if (!c.candidate || !c.candidate.trim()) return;
      const init: RTCIceCandidateInit = {
        candidate: c.candidate,
        sdpMid: c.sdp_mid ?? null,
        sdpMLineIndex: c.sdp_mline_index ?? null,
      };
      if (init.sdpMid === null && init.sdpMLineIndex === null) init.sdpMLineIndex = 0;
      if (c.username_fragment) init.usernameFragment = c.username_fragment;
      if (!this.remoteSet) {
        if (this.pending.length < MAX_PENDING_CANDIDATES) this.pending.push(init);
        return;
      }
      await this.addCandidate(init);
    });
  }

  private learn(sdp: string): void {
    for (const [mid, msid] of msidsByMid(sdp)) this.remoteMsids.set(mid, msid);
  }

  private async remoteApplied(): Promise<void> {
    this.remoteSet = true;
    const pending = this.pending;
    this.pending = [];
    for (const c of pending) await this.addCandidate(c);
  }

  private async addCandidate(c: RTCIceCandidateInit): Promise<void> {
    try {
      await this.pc.addIceCandidate(c);
    } catch (e) {
      this.hooks.report(`server candidate ${c.candidate ?? ""} refused`, e);
    }
  }

  private async rollback(): Promise<void> {
    if (this.pc.signalingState !== "have-local-offer") return;
    try {
      await this.pc.setLocalDescription({ type: "rollback" });
    } catch (e) {
      this.hooks.report("rolling back our offer", e);
    }
  }
}
