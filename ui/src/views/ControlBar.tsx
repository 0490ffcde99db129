import { useEffect } from "preact/hooks";
import { shortcutFor, type FocusInfo } from "../state/shortcuts";
import { leave, pending, room, switchingDevices, toggleCamera, toggleMic } from "../state/store";
import { DevicesMenu } from "./DevicesMenu";
import { CameraIcon, CameraOffIcon, LeaveIcon, MicIcon, MicOffIcon } from "./icons";

function focusInfo(el: Element | null): FocusInfo | null {
  if (!el || el === document.body || !(el instanceof HTMLElement)) return null;
  return {
    tagName: el.tagName,
    type: el instanceof HTMLInputElement ? el.type : undefined,
    isContentEditable: el.isContentEditable,
  };
}

/** M and V toggle the microphone and camera while the room is shown. */
function useShortcuts(): void {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const action = shortcutFor(e, focusInfo(document.activeElement), {
        switchingDevices: switchingDevices.value !== null,
      });
      if (!action) return;
      e.preventDefault();
      void (action === "toggle-mic" ? toggleMic() : toggleCamera());
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
}

/** Microphone, camera, devices, leave. States are the backend's (`LocalState`), never guessed. */
export function ControlBar() {
  useShortcuts();
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
    <div class="controls" role="toolbar" aria-label="Call controls">
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
      <DevicesMenu />
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
    </div>
  );
}
