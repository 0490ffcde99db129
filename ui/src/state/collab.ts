// Chat, hands, the side panel and moderation: the view state (signals) and the actions that
// talk to the backend. The room's own state (messages, hands, lock, toasts) is the reducer's
// (room.ts); everything here dispatches into it.

import { computed, effect, signal } from "@preact/signals";
import { api } from "../api";
import type { ModerationView } from "../bindings/ModerationView";
import { chatItems } from "./chat";
import { parseChatInput, type ChatCommand, type CommandContext } from "./chatCommands";
import { describeError, toUiError } from "./errors";
import { effectiveRecipient, recipientsOf } from "./people";
import { chatVisible, type ChatStatus, type PanelTab, type RoomState } from "./room";
import { dispatch, lobby, room } from "./store";

/** What is typed in the chat input (kept while the panel is closed). */
export const chatDraft = signal("");
/** The recipient picked for private messages (null: everyone). */
export const chatTo = signal<string | null>(null);
/** Bumped to ask the chat input to take the focus. */
export const chatFocusRequest = signal(0);
/** Requests in flight (the controls wait for the backend). */
export const collabPending = signal({ chat: false, hand: false, lock: false, end: false });

// Parts of the room state, as signals that change only when that part does: the chat does
// not re-render with every `levels` event (five a second).
const chatLog = computed(() => room.value.chat);
const ownIds = computed(() => room.value.ownIds);
const names = computed(() => room.value.names);
export const panelState = computed(() => room.value.panel);
export const unreadCount = computed(() => room.value.unread);
export const chatStatus = computed(() => room.value.chatStatus);
const peers = computed(() => room.value.peers);
/** The chat list's items (chat.ts `chatItems`). */
export const chatList = computed(() => {
  const known = names.value;
  return chatItems(chatLog.value, ownIds.value, (id) => (Object.hasOwn(known, id) ? known[id]! : null));
});
/** Who a private message can go to. */
export const recipients = computed(() => recipientsOf(peers.value));
/** The recipient of plain messages: the one picked, while they are in the room. */
export const recipient = computed(() => effectiveRecipient(peers.value, chatTo.value));

/** The last line sent from the input (ArrowUp in an empty input brings it back). */
let lastSent = "";

function setPending(key: keyof typeof collabPending.value, on: boolean): void {
  collabPending.value = { ...collabPending.value, [key]: on };
}

// A draft, a recipient or a command's output belong to the room they were typed in.
const inRoom = computed(() => room.value.view === "room");
effect(() => {
  if (inRoom.value) return;
  chatDraft.value = "";
  chatTo.value = null;
  lastSent = "";
});

// --- side panel ---------------------------------------------------------------------------

export function showPanel(tab: PanelTab): void {
  dispatch({ type: "ui/panel", open: true, tab });
  if (tab === "chat") chatFocusRequest.value++;
}

export function closePanel(): void {
  dispatch({ type: "ui/panel", open: false });
}

/** The chat button and C: hide the chat if it shows, else show it (switching tabs). */
export function toggleChat(): void {
  if (chatVisible(room.value)) closePanel();
  else showPanel("chat");
}

/** The people button: the same for the People tab. */
export function togglePeople(): void {
  const { open, tab } = room.value.panel;
  if (open && tab === "people") closePanel();
  else showPanel("people");
}

export function selectTab(tab: PanelTab): void {
  dispatch({ type: "ui/panel", tab });
}

/** Writes to one person privately: the chat opens with them as the recipient. */
export function messagePerson(peerId: string): void {
  chatTo.value = peerId;
  showPanel("chat");
}

export function dismissToast(id: number): void {
  dispatch({ type: "ui/dismiss-toast", id });
}

export function setChatStatus(status: ChatStatus | null): void {
  dispatch({ type: "ui/chat-status", status });
}

// --- chat ---------------------------------------------------------------------------------

export function commandContext(state: RoomState): CommandContext {
  return {
    selfName: lobby.value.values.name,
    others: state.peers.map((p) => ({ id: p.id, name: p.name, handRaised: p.handRaisedAt !== null })),
    moderator: state.moderator,
    handRaised: state.handRaisedAt !== null,
    locked: state.locked,
    to: effectiveRecipient(state.peers, chatTo.value),
  };
}

/** The text of a failure, for the line under the chat input. */
function statusOf(e: unknown): ChatStatus {
  const { message, hint } = describeError(toUiError(e));
  return { tone: "error", text: hint ? `${message} ${hint}` : message };
}

function run(command: ChatCommand): Promise<void> {
  switch (command.kind) {
    case "send":
      return api.sendChat(command.text, command.to);
    case "hand":
      return api.raiseHand(command.raised);
    case "moderate":
      return api.moderate(command.peerId, command.action);
    case "remove":
      return api.removePeer(command.peerId, command.reason);
    case "lock":
      return api.lockRoom(command.locked);
    case "end":
      return api.endMeeting();
    default:
      return Promise.resolve();
  }
}

/**
 * Sends what is typed: a message, or a command. The input empties at once and gets its text
 * back if the backend refuses it; command errors and /help show under the input.
 */
export async function submitChat(): Promise<void> {
  if (collabPending.value.chat) return;
  const raw = chatDraft.value;
  const command = parseChatInput(raw, commandContext(room.value));
  switch (command.kind) {
    case "empty":
      return;
    case "error":
      setChatStatus({ tone: "error", text: command.message });
      return;
    case "help":
      setChatStatus({ tone: "info", text: command.text });
      chatDraft.value = "";
      return;
  }
  setPending("chat", true);
  chatDraft.value = "";
  setChatStatus(null);
  try {
    await run(command);
    lastSent = raw;
  } catch (e) {
    if (chatDraft.value === "") chatDraft.value = raw;
    setChatStatus(statusOf(e));
  } finally {
    setPending("chat", false);
  }
}

/** The last line sent, for ArrowUp in an empty input. */
export function lastSentLine(): string {
  return lastSent;
}

// --- hands and moderation -----------------------------------------------------------------

/** Failures of actions outside the chat input: a notice (or the chat's line, for refusals). */
function report(e: unknown): void {
  dispatch({ type: "error", error: toUiError(e) });
}

export async function toggleHand(): Promise<void> {
  if (collabPending.value.hand) return;
  setPending("hand", true);
  try {
    await api.raiseHand(room.value.handRaisedAt === null);
  } catch (e) {
    report(e);
  } finally {
    setPending("hand", false);
  }
}

export function moderatePeer(peerId: string, action: ModerationView): Promise<void> {
  return api.moderate(peerId, action).catch(report);
}

export function removePeer(peerId: string, reason: string | null): Promise<void> {
  return api.removePeer(peerId, reason).catch(report);
}

export async function setRoomLocked(locked: boolean): Promise<void> {
  if (collabPending.value.lock) return;
  setPending("lock", true);
  try {
    await api.lockRoom(locked);
  } catch (e) {
    report(e);
  } finally {
    setPending("lock", false);
  }
}

export async function endMeeting(): Promise<void> {
  if (collabPending.value.end) return;
  setPending("end", true);
  try {
    await api.endMeeting();
  } catch (e) {
    report(e);
  } finally {
    setPending("end", false);
  }
}

/** Opens a chat link in the system browser. */
export function openLink(url: string): void {
  api.openLink(url).catch(report);
}
