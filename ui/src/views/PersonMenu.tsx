import { useEffect, useRef, useState } from "preact/hooks";
import type { ModerationView } from "../bindings/ModerationView";
import { MAX_REASON_CHARS } from "../state/chatCommands";
import { moderatePeer, removePeer } from "../state/collab";
import type { Person } from "../state/people";
import { CameraOffIcon, HandIcon, MicOffIcon, RemoveUserIcon } from "./icons";

interface Props {
  id: string;
  person: Person;
  /** The name to show. */
  name: string;
  /** Close the menu; `refocus`: give the focus back to its button. */
  onClose: (refocus: boolean) => void;
}

/**
 * A moderator's actions on one person: mute, camera off, lower hand, and remove (with an
 * optional reason, then a confirmation).
 */
export function PersonMenu({ id, person, name, onClose }: Props) {
  const [removing, setRemoving] = useState(false);
  const menuRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!removing) menuRef.current?.querySelector<HTMLElement>("[role=menuitem]")?.focus();
  }, [removing]);

  if (removing) {
    return <RemoveForm id={id} person={person} name={name} onDone={onClose} onCancel={() => setRemoving(false)} />;
  }

  const act = (action: ModerationView) => () => {
    void moderatePeer(person.peerId, action);
    onClose(true);
  };

  const onKeyDown = (e: KeyboardEvent) => {
    const items = [...(menuRef.current?.querySelectorAll<HTMLElement>("[role=menuitem]") ?? [])];
    const at = items.indexOf(document.activeElement as HTMLElement);
    let next: number | null = null;
    if (e.key === "ArrowDown") next = (at + 1) % items.length;
    else if (e.key === "ArrowUp") next = (at - 1 + items.length) % items.length;
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = items.length - 1;
    else if (e.key === "Escape") {
      e.preventDefault();
      onClose(true);
      return;
    }
    if (next === null) return;
    e.preventDefault();
    items[next]?.focus();
  };

  return (
    <div
      ref={menuRef}
      id={id}
      class="person-menu"
      role="menu"
      aria-label={`Moderate ${name}`}
      onKeyDown={onKeyDown}
    >
      <button type="button" role="menuitem" data-testid="mod-mute" onClick={act("mute_microphone")}>
        <MicOffIcon size={16} />
        Mute microphone
      </button>
      <button type="button" role="menuitem" data-testid="mod-stop-camera" onClick={act("stop_camera")}>
        <CameraOffIcon size={16} />
        Turn camera off
      </button>
      {person.handRaisedAt !== null && (
        <button type="button" role="menuitem" data-testid="mod-lower-hand" onClick={act("lower_hand")}>
          <HandIcon size={16} />
          Lower hand
        </button>
      )}
      <button
        type="button"
        role="menuitem"
        class="danger"
        data-testid="mod-remove"
        onClick={() => setRemoving(true)}
      >
        <RemoveUserIcon size={16} />
        Remove from room…
      </button>
    </div>
  );
}

interface RemoveProps {
  id: string;
  person: Person;
  name: string;
  onDone: (refocus: boolean) => void;
  onCancel: () => void;
}

/** Asks for an optional reason; the Remove button confirms. */
function RemoveForm({ id, person, name, onDone, onCancel }: RemoveProps) {
  const [reason, setReason] = useState("");
  const inputRef = useRef<HTMLInputElement>(null);
  useEffect(() => inputRef.current?.focus(), []);
  const titleId = `${id}-title`;
  return (
    <form
      id={id}
      class="remove-form"
      role="group"
      aria-labelledby={titleId}
      onSubmit={(e) => {
        e.preventDefault();
        void removePeer(person.peerId, reason.trim() || null);
        onDone(false);
      }}
      onKeyDown={(e) => {
        if (e.key !== "Escape") return;
        e.preventDefault();
        onCancel();
      }}
    >
      <p id={titleId} class="remove-title">
        {`Remove ${name} from the room?`}
      </p>
      <p class="remove-note">They can join again unless the room is locked.</p>
      <label class="field">
        <span>Reason (optional, shown to them)</span>
        <input
          ref={inputRef}
          type="text"
          data-testid="remove-reason"
          maxLength={MAX_REASON_CHARS}
          placeholder="e.g. Please join the other room"
          value={reason}
          onInput={(e) => setReason((e.currentTarget as HTMLInputElement).value)}
        />
      </label>
      <div class="form-actions">
        <button type="button" class="secondary" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" class="danger-button" data-testid="remove-confirm">
          Remove
        </button>
      </div>
    </form>
  );
}
