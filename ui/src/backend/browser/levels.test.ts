import { describe, expect, it } from "vitest";
import { LevelMeter, SILENCE_DBOV, rms, toDbov } from "./levels";

const sine = (amplitude: number, n = 960) =>
  Array.from({ length: n }, (_, i) => amplitude * Math.sin((2 * Math.PI * 440 * i) / 48000));

describe("levels", () => {
  it("dBov: full-scale sine about −3, silence −127", () => {
    expect(toDbov(rms(sine(1)))).toBeCloseTo(-3.01, 1);
    expect(toDbov(rms([]))).toBe(SILENCE_DBOV);
    expect(toDbov(0)).toBe(SILENCE_DBOV);
  });

  it("a tone speaks at once (fast attack); silence stops it after the release, with hysteresis", () => {
    const m = new LevelMeter();
    // The desktop's synthetic microphone: 440 Hz at 0.2 (−17 dBov).
    m.update(rms(sine(0.2)), 50);
    expect(m.speaking()).toBe(true);
    expect(m.dbov()).toBeCloseTo(-17, 0);
    // 150 ms release: about 58 dB a second down.
    m.update(0, 50);
    expect(m.speaking()).toBe(true);
    let t = 50;
    while (m.speaking() && t < 2000) {
      m.update(0, 50);
      t += 50;
    }
    expect(t).toBeGreaterThan(300);
    expect(t).toBeLessThan(1000);
    expect(m.dbov()).toBeLessThan(-50);
  });

  it("between the thresholds the flag keeps its state", () => {
    const m = new LevelMeter();
    const at = (db: number) => Math.pow(10, db / 20);
    m.update(at(-45), 1000);
    expect(m.speaking()).toBe(false);
    m.update(at(-30), 1000);
    expect(m.speaking()).toBe(true);
    m.update(at(-45), 1000);
    expect(m.speaking()).toBe(true);
    m.update(at(-60), 1000);
    expect(m.speaking()).toBe(false);
  });
});
