// Remote audio played, and levels measured, in the browser. Each remote audio track plays in
// its own `<audio>` element (speaker chosen with `setSinkId` where the browser has it); a
// WebAudio AnalyserNode per track, and one on our microphone, feeds a `LevelMeter`
// (levels.ts) for the "speaking" ring, as the Rust engine's mixer does.

import type { Level } from "../../bindings/Level";
import type { TrackLevel } from "../../bindings/TrackLevel";
import type { UiError } from "../../bindings/UiError";
import { LevelMeter, rms } from "./levels";

interface Meter {
  source: MediaStreamAudioSourceNode;
  analyser: AnalyserNode;
  buffer: Float32Array<ArrayBuffer>;
  meter: LevelMeter;
}

interface Remote {
  el: HTMLAudioElement;
  track: MediaStreamTrack;
  meter: Meter | null;
}

type SinkElement = HTMLAudioElement & { setSinkId?: (id: string) => Promise<void> };

export class AudioOut {
  private ctx: AudioContext | null = null;
  private readonly remote = new Map<string, Remote>();
  private mic: { track: MediaStreamTrack; meter: Meter | null } | null = null;
  private sink: string | null = null;

  /**
   * Creates (or resumes) the audio context. Call it while a click is being handled (joining):
   * browsers only let a page start audio after a gesture.
   */
  wake(): void {
    if (this.ctx === null) {
      try {
        this.ctx = new AudioContext();
      } catch (e) {
        console.warn("videoroom: no WebAudio, no speaking levels:", e);
        return;
      }
    }
    if (this.ctx.state === "suspended") void this.ctx.resume().catch(() => {});
  }

  private meter(track: MediaStreamTrack): Meter | null {
    const ctx = this.ctx;
    if (!ctx) return null;
    try {
      const source = ctx.createMediaStreamSource(new MediaStream([track]));
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 2048;
      source.connect(analyser);
      return { source, analyser, buffer: new Float32Array(analyser.fftSize), meter: new LevelMeter() };
    } catch (e) {
      console.warn("videoroom: cannot measure an audio track:", e);
      return null;
    }
  }

  private static release(m: Meter | null): void {
    if (!m) return;
    m.source.disconnect();
    m.analyser.disconnect();
  }

  /** Plays remote audio track `id` (null: stops it). */
  setRemote(id: string, track: MediaStreamTrack | null): void {
    const old = this.remote.get(id);
    if (old && old.track === track) return;
    if (old) {
      old.el.pause();
      old.el.srcObject = null;
      AudioOut.release(old.meter);
      this.remote.delete(id);
    }
    if (track === null) return;
    const el = new Audio() as SinkElement;
    el.autoplay = true;
    el.srcObject = new MediaStream([track]);
    if (this.sink !== null && typeof el.setSinkId === "function") {
      el.setSinkId(this.sink).catch((e: unknown) => console.warn("videoroom: setSinkId:", e));
    }
    el.play().catch((e: unknown) => console.warn("videoroom: remote audio does not play:", e));
    // Chrome feeds remote WebRTC audio to WebAudio only while an element plays it: measure it
    // from the same track.
    this.remote.set(id, { el, track, meter: this.meter(track) });
  }

  /** Our microphone (null: none), for its level. */
  setMic(track: MediaStreamTrack | null): void {
    if (this.mic?.track === track) return;
    AudioOut.release(this.mic?.meter ?? null);
    this.mic = track ? { track, meter: this.meter(track) } : null;
  }

  /** Plays remote audio on speaker `id` (null: the default). */
  async setSink(id: string | null): Promise<void> {
    this.sink = id;
    const els = [...this.remote.values()].map((r) => r.el as SinkElement);
    if (els.length === 0) return;
    if (typeof els[0]!.setSinkId !== "function") {
      if (id === null) return;
      throw {
        kind: "device",
        message: "This browser cannot choose a speaker.",
        hint: "Choose it in your system's sound settings.",
      } satisfies UiError;
    }
    try {
      await Promise.all(els.map((el) => el.setSinkId!(id ?? "")));
    } catch (e) {
      throw {
        kind: "device",
        message: `Audio output failed: ${e instanceof Error ? e.message : String(e)}.`,
        hint: "Pick another speaker.",
      } satisfies UiError;
    }
  }

  /** Reads every meter; `elapsedMs` since the last read. */
  sample(elapsedMs: number): void {
    const read = (m: Meter | null) => {
      if (!m) return;
      m.analyser.getFloatTimeDomainData(m.buffer);
      m.meter.update(rms(m.buffer), elapsedMs);
    };
    read(this.mic?.meter ?? null);
    for (const r of this.remote.values()) read(r.meter);
  }

  /** The `levels` event's figures now. */
  levels(): { mic: Level | null; tracks: TrackLevel[] } {
    const level = (m: Meter | null): Level =>
      m ? { dbov: m.meter.dbov(), speaking: m.meter.speaking() } : { dbov: -127, speaking: false };
    return {
      mic: this.mic ? level(this.mic.meter) : null,
      tracks: [...this.remote.entries()].map(([trackId, r]) => ({ trackId, level: level(r.meter) })),
    };
  }

  /** Stops everything remote (the room ended). */
  clear(): void {
    for (const id of [...this.remote.keys()]) this.setRemote(id, null);
    this.setMic(null);
  }
}
