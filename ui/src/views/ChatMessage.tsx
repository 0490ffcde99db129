import type { ChatItem } from "../state/chat";
import { openLink } from "../state/collab";
import type { Segment } from "../state/links";
import { LockIcon } from "./icons";

/**
 * One chat message. Its text is rendered as text nodes only (never as markup); links become
 * <a> elements that open in the system browser through the backend.
 */
export function ChatMessage({ item }: { item: ChatItem }) {
  const classes = ["chat-message"];
  if (item.own) classes.push("own");
  if (item.private) classes.push("private");
  if (item.continued) classes.push("continued");
  const sender = item.own ? "You" : item.fromName;
  return (
    <li
      class={classes.join(" ")}
      data-testid="chat-message"
      data-from={item.fromName}
      data-own={String(item.own)}
      data-private={String(item.private)}
      title={item.continued ? `${sender}, ${item.timeTitle}` : undefined}
    >
      {item.continued ? (
        <span class="sr-only">{`${sender}, ${item.time}: `}</span>
      ) : (
        <div class="chat-meta">
          <span class="chat-from">{sender}</span>
          {item.privateLabel !== null && (
            <span class="chat-private">
              <LockIcon size={11} />
              {`Private, ${item.privateLabel}`}
            </span>
          )}
          <time class="chat-time" dateTime={item.isoTime} title={item.timeTitle}>
            {item.time}
          </time>
        </div>
      )}
      <div class="chat-text">
        {item.segments.map((s, i) => (
          <SegmentView key={i} segment={s} />
        ))}
      </div>
    </li>
  );
}

function SegmentView({ segment }: { segment: Segment }) {
  if (segment.type === "text") return <>{segment.text}</>;
  const { href, text } = segment;
  return (
    <a
      href={href}
      target="_blank"
      rel="noopener noreferrer"
      draggable={false}
      title={`Open ${href} in your browser`}
      onClick={(e) => {
        e.preventDefault();
        openLink(href);
      }}
      onAuxClick={(e) => e.preventDefault()}
    >
      {text}
    </a>
  );
}
