import { useEffect, useLayoutEffect, useRef } from "preact/hooks";
import {
  chatDraft,
  chatFocusRequest,
  chatStatus,
  chatTo,
  collabPending,
  lastSentLine,
  recipient,
  recipients,
  setChatStatus,
  submitChat,
} from "../state/collab";
import { CloseIcon, SendIcon } from "./icons";

/** The textarea grows with its text up to this height, then scrolls. */
const MAX_INPUT_PX = 140;
/** The last focus request the input has taken (a request made before it existed counts). */
let focusHandled = 0;

/**
 * The chat input: Enter sends, Shift+Enter starts a new line; a recipient picker for private
 * messages; command errors, /help and the server's refusals show above it.
 */
export function ChatComposer() {
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const draft = chatDraft.value;
  const to = recipient.value;
  const people = recipients.value;
  const toName = people.find((p) => p.id === to)?.name ?? null;
  const sending = collabPending.value.chat;
  const request = chatFocusRequest.value;

  useEffect(() => {
    if (request === focusHandled) return;
    focusHandled = request;
    inputRef.current?.focus();
  }, [request]);

  // Grow with the text.
  useLayoutEffect(() => {
    const el = inputRef.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight, MAX_INPUT_PX)}px`;
  }, [draft]);

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void submitChat();
    } else if (e.key === "ArrowUp" && draft === "" && lastSentLine() !== "") {
      e.preventDefault();
      chatDraft.value = lastSentLine();
    } else if (e.key === "Escape" && chatStatus.value !== null) {
      e.preventDefault();
      setChatStatus(null);
    }
  };

  const onInput = (e: Event) => {
    chatDraft.value = (e.currentTarget as HTMLTextAreaElement).value;
    if (chatStatus.value?.tone === "error") setChatStatus(null);
  };

  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        void submitChat();
        inputRef.current?.focus();
      }}
    >
      <ChatStatusLine />
      <label class="composer-to">
        <span>To</span>
        <select
          data-testid="chat-to"
          value={to ?? ""}
          onChange={(e) => {
            const value = (e.currentTarget as HTMLSelectElement).value;
            chatTo.value = value === "" ? null : value;
          }}
        >
          <option value="">Everyone</option>
          {people.map((p) => (
            <option key={p.id} value={p.id}>
              {`${p.name} (private)`}
            </option>
          ))}
        </select>
      </label>
      <div class={`composer-row${to !== null ? " private" : ""}`}>
        <textarea
          ref={inputRef}
          data-testid="chat-input"
          rows={1}
          value={draft}
          placeholder={toName !== null ? `Private message to ${toName}` : "Message everyone"}
          aria-label={toName !== null ? `Private message to ${toName}` : "Message to everyone"}
          aria-describedby="composer-hint"
          onInput={onInput}
          onKeyDown={onKeyDown}
        />
        <button
          type="submit"
          class="send-button"
          data-testid="chat-send"
          aria-label="Send message"
          title="Send (Enter)"
          aria-busy={sending}
          disabled={draft.trim() === ""}
        >
          <SendIcon size={18} />
        </button>
      </div>
      <p id="composer-hint" class="composer-hint">
        Enter to send, Shift+Enter for a new line, /help for commands
      </p>
    </form>
  );
}

/** Command errors, /help, and refusals from the server (`error` events of kind "rejected"). */
function ChatStatusLine() {
  const status = chatStatus.value;
  return (
    <div
      class="chat-status"
      data-testid="chat-status"
      data-tone={status?.tone ?? "none"}
      role="status"
      hidden={status === null}
    >
      {status !== null && (
        <>
          <p class="chat-status-text">{status.text}</p>
          <button
            type="button"
            class="icon-button"
            aria-label="Dismiss"
            title="Dismiss (Escape)"
            onClick={() => setChatStatus(null)}
          >
            <CloseIcon size={14} />
          </button>
        </>
      )}
    </div>
  );
}
