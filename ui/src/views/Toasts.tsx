import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { dismissToast, messagePerson } from "../state/collab";
import type { Toast, ToastKind } from "../state/toasts";
import {
  ChatIcon,
  CloseIcon,
  HandIcon,
  LinkIcon,
  LockIcon,
  MicOffIcon,
  ScreenIcon,
  ShieldIcon,
} from "./icons";

/** How long a toast stays (private messages a little longer); hovering or focus pauses it. */
const TOAST_MS = 6_000;
const MESSAGE_TOAST_MS = 9_000;

const ICONS: Record<ToastKind, () => JSX.Element> = {
  hand: () => <HandIcon size={16} />,
  moderated: () => <MicOffIcon size={16} />,
  lock: () => <LockIcon size={16} />,
  moderator: () => <ShieldIcon size={16} />,
  message: () => <ChatIcon size={16} />,
  link: () => <LinkIcon size={16} />,
  screen: () => <ScreenIcon size={16} />,
};

/** What just happened in the room: hands, moderation, the lock, private messages, our share. */
export function Toasts({ toasts }: { toasts: readonly Toast[] }) {
  if (toasts.length === 0) return null;
  return (
    <div class="toasts">
      {toasts.map((t) => (
        <ToastView key={t.id} toast={t} />
      ))}
    </div>
  );
}

function ToastView({ toast }: { toast: Toast }) {
  const [paused, setPaused] = useState(false);
  useEffect(() => {
    if (paused) return undefined;
    const timer = setTimeout(
      () => dismissToast(toast.id),
      toast.kind === "message" ? MESSAGE_TOAST_MS : TOAST_MS,
    );
    return () => clearTimeout(timer);
  }, [toast.id, paused]);
  const peerId = toast.peerId;
  return (
    <div
      class={`toast toast-${toast.kind}`}
      data-testid="toast"
      data-kind={toast.kind}
      role="status"
      onMouseEnter={() => setPaused(true)}
      onMouseLeave={() => setPaused(false)}
      onFocusIn={() => setPaused(true)}
      onFocusOut={() => setPaused(false)}
    >
      <span class="toast-icon">{ICONS[toast.kind]()}</span>
      <span class="toast-text">{toast.text}</span>
      {toast.kind === "message" && peerId !== null && (
        <button
          type="button"
          class="toast-action"
          onClick={() => {
            messagePerson(peerId);
            dismissToast(toast.id);
          }}
        >
          Reply
        </button>
      )}
      <button
        type="button"
        class="icon-button"
        aria-label="Dismiss"
        onClick={() => dismissToast(toast.id)}
      >
        <CloseIcon size={14} />
      </button>
    </div>
  );
}
