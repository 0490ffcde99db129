import { useEffect, useRef, useState } from "preact/hooks";
import { collabPending, endMeeting, setRoomLocked } from "../state/collab";
import { LeaveIcon, LockIcon, UnlockIcon } from "./icons";

/** A moderator's room-wide actions: lock or unlock, end the meeting (after a confirmation). */
export function RoomControls({ locked }: { locked: boolean }) {
  const [confirming, setConfirming] = useState(false);
  const busy = collabPending.value;
  const endButton = useRef<HTMLButtonElement>(null);
  const cancelButton = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (confirming) cancelButton.current?.focus();
  }, [confirming]);

  const cancel = () => {
    setConfirming(false);
    endButton.current?.focus();
  };
  const lockLabel = locked
    ? "The room is locked: no one new can join. Click to unlock."
    : "Lock the room: no one new can join";

  return (
    <div class="room-controls">
      <div class="room-controls-row">
        <button
          type="button"
          class={`panel-button${locked ? " pressed" : ""}`}
          data-testid="room-lock"
          aria-pressed={locked ? "true" : "false"}
          aria-busy={busy.lock}
          title={lockLabel}
          onClick={() => void setRoomLocked(!locked)}
        >
          {locked ? <LockIcon size={15} /> : <UnlockIcon size={15} />}
          Lock room
        </button>
        <button
          ref={endButton}
          type="button"
          class="panel-button danger"
          data-testid="end-meeting"
          aria-expanded={confirming}
          title="End the meeting for everyone"
          onClick={() => setConfirming(true)}
        >
          <LeaveIcon size={15} />
          End meeting
        </button>
      </div>
      {confirming && (
        <div
          class="confirm"
          role="alertdialog"
          aria-labelledby="end-confirm-title"
          aria-describedby="end-confirm-text"
          onKeyDown={(e) => {
            if (e.key !== "Escape") return;
            e.preventDefault();
            cancel();
          }}
        >
          <p id="end-confirm-title" class="confirm-title">
            End the meeting for everyone?
          </p>
          <p id="end-confirm-text" class="confirm-text">
            Everyone, you included, leaves the room at once.
          </p>
          <div class="form-actions">
            <button ref={cancelButton} type="button" class="secondary" onClick={cancel}>
              Cancel
            </button>
            <button
              type="button"
              class="danger-button"
              data-testid="end-confirm"
              aria-busy={busy.end}
              disabled={busy.end}
              onClick={() => void endMeeting()}
            >
              End for everyone
            </button>
          </div>
        </div>
      )}
    </div>
  );
}
