// Audio levels and the "speaking" flag, as the Rust engine computes them
// (client/src/audio/analysis.rs, `LevelMeter`): RMS in dBov, smoothed with a fast attack
// (10 ms) and a slower release (150 ms), speaking above −40 dBov until below −50 dBov. Here
// the blocks come from a WebAudio AnalyserNode read on a timer, so the time a block stands
// for is given explicitly (pure; levels.test.ts).

/** Digital silence, dBov. */
export const SILENCE_DBOV = -127;

/** RMS of `samples` (floats, full scale ±1). */
export function rms(samples: ArrayLike<number>): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]!;
    sum += s * s;
  }
  return Math.sqrt(sum / samples.length);
}

/** A linear RMS as dBov, clamped to −127..0. */
export function toDbov(value: number): number {
  if (!(value > 0)) return SILENCE_DBOV;
  return Math.min(0, Math.max(SILENCE_DBOV, 20 * Math.log10(value)));
}

export class LevelMeter {
  private smoothed = 0;
  private speakingNow = false;

  constructor(
    private readonly attackMs = 10,
    private readonly releaseMs = 150,
    private readonly onDbov = -40,
    private readonly offDbov = -50,
  ) {}

  /** Feeds a block with RMS `blockRms` that stands for `elapsedMs`; returns the level, dBov. */
  update(blockRms: number, elapsedMs: number): number {
    const tau = blockRms > this.smoothed ? this.attackMs : this.releaseMs;
    const gain = tau > 0 ? 1 - Math.exp(-Math.max(0, elapsedMs) / tau) : 1;
    this.smoothed += gain * (blockRms - this.smoothed);
    const level = this.dbov();
    if (level >= this.onDbov) this.speakingNow = true;
    else if (level < this.offDbov) this.speakingNow = false;
    return level;
  }

  dbov(): number {
    return toDbov(this.smoothed);
  }

  speaking(): boolean {
    return this.speakingNow;
  }

  reset(): void {
    this.smoothed = 0;
    this.speakingNow = false;
  }
}
