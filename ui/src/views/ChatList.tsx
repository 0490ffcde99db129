import { useLayoutEffect, useRef, useState } from "preact/hooks";
import { chatList } from "../state/collab";
import { ChatMessage } from "./ChatMessage";
import { ArrowDownIcon } from "./icons";

/** Closer to the bottom than this counts as "at the bottom" (follows new messages). */
const BOTTOM_SLACK_PX = 40;

/** The messages, newest at the bottom; follows new ones while scrolled to the bottom. */
export function ChatList() {
  const items = chatList.value;
  const listRef = useRef<HTMLOListElement>(null);
  const atBottom = useRef(true);
  const [behind, setBehind] = useState(false);
  const last = items[items.length - 1];

  const scrollToBottom = () => {
    const el = listRef.current;
    if (el) el.scrollTop = el.scrollHeight;
    atBottom.current = true;
    setBehind(false);
  };

  useLayoutEffect(() => {
    // Our own messages always scroll into view; others only when we were at the bottom.
    if (atBottom.current || last?.own) scrollToBottom();
    else if (last) setBehind(true);
  }, [last?.key]);

  const onScroll = () => {
    const el = listRef.current;
    if (!el) return;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight <= BOTTOM_SLACK_PX;
    if (atBottom.current) setBehind(false);
  };

  return (
    <div class="chat-scroll">
      {items.length === 0 ? (
        <div class="chat-empty" data-testid="chat-list">
          <p>No messages yet.</p>
          <p class="dim">
            Messages to everyone are also shown to people who join later. Private messages are
            seen only by the two of you. Type /help for commands.
          </p>
        </div>
      ) : (
        <ol
          ref={listRef}
          class="chat-list"
          data-testid="chat-list"
          aria-label="Messages"
          aria-live="polite"
          aria-relevant="additions"
          tabIndex={0}
          onScroll={onScroll}
        >
          {items.map((item) => (
            <ChatMessage key={item.key} item={item} />
          ))}
        </ol>
      )}
      {behind && (
        <button type="button" class="jump-latest" onClick={scrollToBottom}>
          <ArrowDownIcon size={14} />
          New messages
        </button>
      )}
    </div>
  );
}
