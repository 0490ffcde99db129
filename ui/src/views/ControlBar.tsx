import { useEffect } from "preact/hooks";
import { badgeText } from "../state/chat";
import { collabPending, toggleChat, toggleHand, togglePeople } from "../state/collab";
import { raisedHandCount } from "../state/people";
import { describeError } from "../state/errors";
import { chatVisible } from "../state/room";
import { sharePending, toggleScreenShare } from "../state/screen";
import { shortcutFor, type FocusInfo, type Shortcut } from "../state/shortcuts";
import {
  dispatch,
  leave,
  pending,
  room,
  switchingDevices,
  toggleCamera,
  toggleMic,
} from "../state/store";
import { DevicesMenu } from "./DevicesMenu";
import {
  CameraIcon,
  CameraOffIcon,
  ChatIcon,
  HandIcon,
  LeaveIcon,
  MicIcon,
  MicOffIcon,
  PeopleIcon,
  ShareScreenIcon,
  StopScreenIcon,
} from "./icons";

const ACTIONS: Record<Shortcut, () => void> = {
  "toggle-mic": () => void toggleMic(),
  "toggle-camera": () => void toggleCamera(),
  "toggle-screen": () => void toggleScreenShare(),
  "toggle-hand": () => void toggleHand(),
  "toggle-chat": toggleChat,
  "toggle-full": () => dispatch({ type: "ui/full" }),
  "leave-full": () => dispatch({ type: "ui/full", on: false }),
};

function focusInfo(el: Element | null): FocusInfo | null {
  if (!el || el === document.body || !(el instanceof HTMLElement)) return null;
  return {
    tagName: el.tagName,
    type: el instanceof HTMLInputElement ? el.type : undefined,
    isContentEditable: el.isContentEditable,
  };
}

/**
 * M, V, S, H and C: microphone, camera, screen share, hand and chat; F / Escape: full-window
 * stage; while the room is shown and no dialog (the screen picker) is open.
 */
function useShortcuts(): void {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const action = shortcutFor(e, focusInfo(document.activeElement), {
        switchingDevices: switchingDevices.value !== null,
        full: room.value.layout.full,
        modal: room.value.picker !== null,
      });
      if (!action) return;
      e.preventDefault();
      ACTIONS[action]();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
}

/**
 * Microphone, camera, hand, devices, leave; chat and people on the right. States are the
 * backend's (`LocalState`, our `peer_updated`), never guessed.
 */
export function ControlBar() {
  useShortcuts();
  return (
    <div class="controls" role="toolbar" aria-label="Call controls">
      <div class="controls-main">
        <MediaButtons />
        <ShareButton />
        <HandButton />
        <DevicesMenu />
        <LeaveButton />
      </div>
      <div class="controls-side">
        <ChatButton />
        <PeopleButton />
      </div>
    </div>
  );
}

function MediaButtons() {
  const { local } = room.value;
  const busy = pending.value;
  const micOn = local.micOn && local.hasMicrophone;
  const cameraOn = local.cameraOn && local.hasCamera;
  const micLabel = !local.hasMicrophone
    ? "No microphone"
    : micOn
      ? "Mute microphone (M)"
      : "Unmute microphone (M)";
  const cameraLabel = !local.hasCamera
    ? "No camera"
    : cameraOn
      ? "Turn camera off (V)"
      : "Turn camera on (V)";
  return (
    <>
      <button
        type="button"
        class={`control${micOn ? "" : " off"}`}
        data-testid="mic-toggle"
        data-on={String(micOn)}
        aria-pressed={micOn}
        aria-busy={busy.mic}
        aria-label={micLabel}
        title={micLabel}
        disabled={!local.hasMicrophone}
        onClick={() => void toggleMic()}
      >
        {micOn ? <MicIcon /> : <MicOffIcon />}
      </button>
      <button
        type="button"
        class={`control${cameraOn ? "" : " off"}`}
        data-testid="camera-toggle"
        data-on={String(cameraOn)}
        aria-pressed={cameraOn}
        aria-busy={busy.camera}
        aria-label={cameraLabel}
        title={cameraLabel}
        disabled={!local.hasCamera}
        onClick={() => void toggleCamera()}
      >
        {cameraOn ? <CameraIcon /> : <CameraOffIcon />}
      </button>
    </>
  );
}

/**
 * Share screen / Stop sharing (S). Disabled, with the reason as its tooltip, once listing what
 * to share failed on this machine (no display, no portal).
 */
function ShareButton() {
  const state = room.value;
  const sharing = state.local.screenOn;
  const unavailable = sharing ? null : state.shareUnavailable;
  const why = unavailable ? describeError(unavailable) : null;
  const label = sharing
    ? "Stop sharing your screen (S)"
    : why
      ? `Screen sharing is not available: ${why.message} ${why.hint}`.trim()
      : "Share your screen or a window (S)";
  return (
    // The wrapper carries the tooltip: a disabled button shows none in some engines.
    <span class="control-wrap" title={label}>
      <button
        type="button"
        class={`control${sharing ? " sharing" : ""}`}
        data-testid="share-screen"
        aria-pressed={sharing ? "true" : "false"}
        aria-busy={sharePending.value || state.picker?.starting === true}
        aria-label={label}
        disabled={why !== null}
        onClick={() => void toggleScreenShare()}
      >
        {sharing ? <StopScreenIcon /> : <ShareScreenIcon />}
      </button>
    </span>
  );
}

function LeaveButton() {
  const busy = pending.value;
  return (
    <button
      type="button"
      class="control leave"
      data-testid="leave"
      aria-label="Leave the room"
      title="Leave the room"
      disabled={busy.leave}
      onClick={() => void leave()}
    >
      <LeaveIcon />
      <span>Leave</span>
    </button>
  );
}

function HandButton() {
  const raised = room.value.handRaisedAt !== null;
  const label = raised ? "Lower your hand (H)" : "Raise your hand (H)";
  return (
    <button
      type="button"
      class={`control${raised ? " raised" : ""}`}
      data-testid="hand-toggle"
      aria-pressed={raised ? "true" : "false"}
      aria-busy={collabPending.value.hand}
      aria-label={label}
      title={label}
      onClick={() => void toggleHand()}
    >
      <HandIcon />
    </button>
  );
}

function ChatButton() {
  const state = room.value;
  const shown = chatVisible(state);
  const unread = state.unread;
  const label = shown ? "Hide chat (C)" : unread > 0 ? `Show chat, ${unread} unread (C)` : "Show chat (C)";
  return (
    <button
      type="button"
      class={`control${shown ? " open" : ""}`}
      data-testid="chat-toggle"
      aria-expanded={shown}
      aria-controls={state.panel.open ? "side-panel" : undefined}
      aria-label={label}
      title={label}
      onClick={toggleChat}
    >
      <ChatIcon />
      {unread > 0 && (
        <span class="count-badge" data-testid="unread-badge" aria-hidden="true">
          {badgeText(unread)}
        </span>
      )}
    </button>
  );
}

function PeopleButton() {
  const state = room.value;
  const shown = state.panel.open && state.panel.tab === "people";
  const hands = raisedHandCount(state);
  const count = state.peers.length + 1;
  const label = `${shown ? "Hide" : "Show"} people (${count}${hands > 0 ? `, ${hands} raised ${hands === 1 ? "hand" : "hands"}` : ""})`;
  return (
    <button
      type="button"
      class={`control${shown ? " open" : ""}`}
      data-testid="people-toggle"
      aria-expanded={shown}
      aria-controls={state.panel.open ? "side-panel" : undefined}
      aria-label={label}
      title={label}
      onClick={togglePeople}
    >
      <PeopleIcon />
      <span class="control-count">{count}</span>
      {hands > 0 && (
        <span class="count-badge hand-badge" aria-hidden="true">
          <HandIcon size={11} />
          {hands}
        </span>
      )}
    </button>
  );
}
