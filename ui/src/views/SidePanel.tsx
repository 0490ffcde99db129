import { memo } from "preact/compat";
import { useRef } from "preact/hooks";
import { badgeText } from "../state/chat";
import { closePanel, panelState, selectTab, unreadCount } from "../state/collab";
import type { PanelTab } from "../state/room";
import { ChatComposer } from "./ChatComposer";
import { ChatList } from "./ChatList";
import { CloseIcon } from "./icons";
import { PeopleTab } from "./PeopleTab";

const TABS: readonly { id: PanelTab; label: string }[] = [
  { id: "chat", label: "Chat" },
  { id: "people", label: "People" },
];

/** Gives the focus back to the control bar's chat button (the panel is going away). */
function focusToggle(): void {
  document.querySelector<HTMLElement>('[data-testid="chat-toggle"]')?.focus();
}

/**
 * The room's right-hand panel: Chat and People tabs. Memoized without props: it re-renders
 * for its own signals only, not for every `levels` event the room view gets.
 */
export const SidePanel = memo(function SidePanel() {
  const panel = panelState.value;
  const ref = useRef<HTMLElement>(null);
  if (!panel.open) return null;

  const close = () => {
    const inside = ref.current?.contains(document.activeElement) ?? false;
    closePanel();
    if (inside) focusToggle();
  };

  return (
    <aside
      ref={ref}
      id="side-panel"
      class="side-panel"
      data-testid="side-panel"
      aria-label="Chat and people"
      onKeyDown={(e) => {
        if (e.key !== "Escape" || e.defaultPrevented) return;
        e.preventDefault();
        close();
      }}
    >
      <div class="panel-head">
        <TabList selected={panel.tab} />
        <button
          type="button"
          class="icon-button panel-close"
          aria-label="Close the panel"
          title="Close (Escape)"
          onClick={close}
        >
          <CloseIcon size={16} />
        </button>
      </div>
      <div
        class="panel-body"
        role="tabpanel"
        id={`panel-${panel.tab}`}
        aria-labelledby={`tab-${panel.tab}`}
      >
        {panel.tab === "chat" ? (
          <>
            <ChatList />
            <ChatComposer />
          </>
        ) : (
          <PeopleTab />
        )}
      </div>
    </aside>
  );
});

/** The tabs; Left and Right move between them (the ARIA tabs pattern). */
function TabList({ selected }: { selected: PanelTab }) {
  const unread = unreadCount.value;
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
    e.preventDefault();
    const next = selected === "chat" ? "people" : "chat";
    selectTab(next);
    document.getElementById(`tab-${next}`)?.focus();
  };
  return (
    <div class="tabs" role="tablist" aria-label="Side panel" onKeyDown={onKeyDown}>
      {TABS.map((t) => {
        const on = t.id === selected;
        return (
          <button
            key={t.id}
            type="button"
            role="tab"
            id={`tab-${t.id}`}
            class="tab"
            data-testid={`tab-${t.id}`}
            aria-selected={on ? "true" : "false"}
            aria-controls={on ? `panel-${t.id}` : undefined}
            tabIndex={on ? 0 : -1}
            onClick={() => selectTab(t.id)}
          >
            {t.label}
            {t.id === "chat" && unread > 0 && (
              <span class="tab-badge" aria-label={`${unread} unread`}>
                {badgeText(unread)}
              </span>
            )}
          </button>
        );
      })}
    </div>
  );
}
