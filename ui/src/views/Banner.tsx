import type { ConnectionStateView } from "../bindings/ConnectionStateView";
import { Spinner } from "./icons";

const TEXT: Record<Exclude<ConnectionStateView, "connected">, string> = {
  connecting: "Connecting to the room…",
  reconnecting: "Connection lost. Reconnecting…",
  failed: "The connection failed. Leave and join again.",
};

/** Shown while the media connection is not up (nothing when connected). */
export function Banner({ state }: { state: ConnectionStateView }) {
  if (state === "connected") return null;
  return (
    <div class="banner" data-testid="banner" data-state={state} role="status">
      {state !== "failed" && <Spinner size={16} />}
      <span>{TEXT[state]}</span>
    </div>
  );
}
