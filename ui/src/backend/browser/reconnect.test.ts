import { describe, expect, it } from "vitest";
import { FIRST_BACKOFF_MS, MAX_BACKOFF_MS, RECONNECT_FOR_MS, Rejoin, retryable, silent } from "./reconnect";

const net = { kind: "network", message: "the connection failed (1006)" } as const;

describe("rejoin", () => {
  it("retries network failures with backoff 250 ms doubling to 5 s", () => {
    const plan = new Rejoin(0);
    const waits: number[] = [];
    let now = 0;
    for (let i = 0; i < 8; i++) {
      const step = plan.failed(net, now);
      if (step.action !== "retry") throw new Error("gave up early");
      waits.push(step.waitMs);
      now += step.waitMs;
    }
    expect(waits).toEqual([FIRST_BACKOFF_MS, 500, 1000, 2000, 4000, MAX_BACKOFF_MS, MAX_BACKOFF_MS, MAX_BACKOFF_MS]);
  });

  it("retries a full room (our ghost may hold the seat), shutting down, rate limited, internal", () => {
    for (const code of ["room_full", "shutting_down", "rate_limited", "internal"]) {
      expect(retryable({ kind: "refused", code, message: "" })).toBe(true);
    }
  });

  it("gives up at once on any other refusal", () => {
    const plan = new Rejoin(0);
    expect(plan.failed({ kind: "refused", code: "token_expired", message: "expired" }, 10)).toEqual({
      action: "give_up",
      why: "token_expired: expired",
    });
    expect(retryable({ kind: "refused", code: "room_locked", message: "" })).toBe(false);
  });

  it("makes its last attempt at the deadline, then gives up", () => {
    const plan = new Rejoin(1000, RECONNECT_FOR_MS);
    const deadline = 1000 + RECONNECT_FOR_MS;
    expect(plan.failed(net, deadline - 100)).toEqual({ action: "retry", waitMs: 100 });
    expect(plan.failed(net, deadline)).toEqual({ action: "give_up", why: net.message });
  });
});

describe("keep-alive", () => {
  it("a socket silent for more than two ping intervals is dead", () => {
    expect(silent(0, 30_000)).toBe(false);
    expect(silent(0, 30_001)).toBe(true);
  });
});
