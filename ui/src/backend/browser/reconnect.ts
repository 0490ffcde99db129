// When the room's connection is lost: whether and when to try again (pure, explicit time;
// reconnect.test.ts). The same rules as the Rust engine (client/src/room/mod.rs, `rejoin`;
// docs/protocol.md, "Reconnect"): backoff 250 ms doubling to 5 s, for up to 60 s; a
// `join_error` of `room_full` (our own ghost may hold the seat), `shutting_down`,
// `rate_limited` or `internal` is retried, like a socket that does not open; any other refusal
// would be the same next time and ends the room.

export const FIRST_BACKOFF_MS = 250;
export const MAX_BACKOFF_MS = 5_000;
export const RECONNECT_FOR_MS = 60_000;
/** A `ping` every this long; no message from the server for two of them is a dead socket. */
export const PING_INTERVAL_MS = 15_000;
export const SILENCE_LIMIT_MS = 2 * PING_INTERVAL_MS;

/** Why one attempt to join failed. */
export type AttemptFailure =
  | { kind: "refused"; code: string; message: string }
  /**
   * The socket did not open, closed before `joined` (`closed`), or no answer in time
   * (`timeout`).
   */
  | { kind: "network"; message: string; timeout?: boolean; closed?: boolean };

const RETRIED_CODES = new Set(["room_full", "shutting_down", "rate_limited", "internal"]);

/** Whether a rejoin attempt that failed this way is worth repeating. */
export function retryable(failure: AttemptFailure): boolean {
  return failure.kind === "network" || RETRIED_CODES.has(failure.code);
}

export type RejoinStep =
  | { action: "retry"; waitMs: number }
  | { action: "give_up"; why: string };

/**
 * The rejoin loop's state: when it started, the next wait. `failed` says what to do after a
 * failed attempt at `now` (ms, any monotonic clock).
 */
export class Rejoin {
  private backoff = FIRST_BACKOFF_MS;
  private readonly deadline: number;

  constructor(
    startedAt: number,
    reconnectFor: number = RECONNECT_FOR_MS,
  ) {
    this.deadline = startedAt + reconnectFor;
  }

  failed(failure: AttemptFailure, now: number): RejoinStep {
    const why = failure.kind === "refused" ? `${failure.code}: ${failure.message}` : failure.message;
    if (!retryable(failure)) return { action: "give_up", why };
    if (now >= this.deadline) return { action: "give_up", why };
    // The last attempt is made at the deadline.
    const waitMs = Math.min(this.backoff, this.deadline - now);
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    return { action: "retry", waitMs };
  }
}

/** Whether a socket whose last message came at `lastInbound` counts as dead at `now`. */
export function silent(lastInbound: number, now: number): boolean {
  return now - lastInbound > SILENCE_LIMIT_MS;
}
