// Chat, hands, the side panel and moderation: the view state (signals) and the actions that
// talk to the backend. The room's own state (messages, hands, lock, toasts) is the reducer's
// (room.ts); everything here dispatches into it.

import { computed, effect, signal } from "@preact/signals";
import { backend } from "../backend";
import type { ModerationView } from "../bindings/ModerationView";
import { chatItems } from "./chat";
import { parseChatInput, type ChatCommand, type CommandContext } from "./chatCommands";
import { describeError, toUiError } from "./errors";
import { INVITE_TTLS, roomLink } from "./invite";
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
export const collabPending = signal({ chat: false, hand: false, lock: false, end: false, invite: false });

/** The last invite link made in this room (shown under the button, to read or select). */
export const lastInvite = signal<{ link: string; until: number | null } | null>(null);

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
  lastInvite.value = null;
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
      return backend().sendChat(command.text, command.to);
    case "hand":
      return backend().raiseHand(command.raised);
    case "moderate":
      return backend().moderate(command.peerId, command.action);
    case "remove":
      return backend().removePeer(command.peerId, command.reason);
    case "lock":
      return backend().lockRoom(command.locked);
    case "end":
      return backend().endMeeting();
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
    await backend().raiseHand(room.value.handRaisedAt === null);
  } catch (e) {
    report(e);
  } finally {
    setPending("hand", false);
  }
}

export function moderatePeer(peerId: string, action: ModerationView): Promise<void> {
  return backend().moderate(peerId, action).catch(report);
}

export function removePeer(peerId: string, reason: string | null): Promise<void> {
  return backend().removePeer(peerId, reason).catch(report);
}

export async function setRoomLocked(locked: boolean): Promise<void> {
  if (collabPending.value.lock) return;
  setPending("lock", true);
  try {
    await backend().lockRoom(locked);
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
    await backend().endMeeting();
  } catch (e) {
    report(e);
  } finally {
    setPending("end", false);
  }
}

/** Opens a chat link outside the app (the system browser, or a new browser tab). */
export function openLink(url: string): void {
  backend().openLink(url).catch(report);
}

// --- links to the room ----------------------------------------------------------------------

/** Puts `text` on the clipboard (the Clipboard API, else the older copy command). */
async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    return;
  } catch {
    // No Clipboard API here (or not allowed): the copy command below.
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("copy refused");
}

async function copyLink(link: string, done: string): Promise<void> {
  try {
    await copyText(link);
    dispatch({ type: "ui/toast", kind: "link", text: done });
  } catch {
    report({
      kind: "internal",
      message: "The link could not be copied to the clipboard.",
      hint: `Copy it from here: ${link}`,
    });
  }
}

/** The link to this room without an invitation (for rooms anyone may join). */
export function plainRoomLink(): string | null {
  const { serverUrl, room: name } = lobby.value.values;
  return roomLink(serverUrl, name);
}

/** Copies the room's plain link. */
export function copyRoomLink(): Promise<void> {
  const link = plainRoomLink();
  if (link === null) {
    report({ kind: "internal", message: "This room has no link.", hint: "Its server address is not a ws:// or wss:// address." });
    return Promise.resolve();
  }
  return copyLink(link, "Room link copied");
}

/**
 * Moderators: has the server sign an invitation valid `ttlSecs` (with the moderator grant or
 * not) and copies its link.
 */
export async function copyInvite(ttlSecs: number, moderator: boolean): Promise<void> {
  if (collabPending.value.invite) return;
  setPending("invite", true);
  try {
    const invite = await backend().createInvite(ttlSecs, moderator);
    const { serverUrl, room: name } = lobby.value.values;
    const link = invite.url ?? roomLink(serverUrl, name, invite.token);
    if (link === null) throw new Error("the server's address is not a ws:// or wss:// address");
    lastInvite.value = { link, until: invite.expiresAt };
    const valid = INVITE_TTLS.find((t) => t.secs === ttlSecs)?.label ?? `${Math.round(ttlSecs / 3600)} hours`;
    await copyLink(link, `Invite link copied: valid for ${valid}${moderator ? ", as a moderator" : ""}`);
  } catch (e) {
    report(e);
  } finally {
    setPending("invite", false);
  }
}
