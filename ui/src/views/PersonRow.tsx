import { useEffect, useRef } from "preact/hooks";
import { messagePerson } from "../state/collab";
import type { Person } from "../state/people";
import { initials } from "../state/room";
import {
  CameraOffIcon,
  ChatIcon,
  HandIcon,
  MicOffIcon,
  MoreIcon,
  ScreenIcon,
  ShieldIcon,
} from "./icons";
import { PersonMenu } from "./PersonMenu";

interface Props {
  person: Person;
  /** Place in the raised-hands queue (1 = first), null when the hand is down. */
  handPosition: number | null;
  canModerate: boolean;
  menuOpen: boolean;
  onMenu: (open: boolean) => void;
}

/** One person in the people list: name, badges, state icons, actions. */
export function PersonRow({ person: p, handPosition, canModerate, menuOpen, onMenu }: Props) {
  const rowRef = useRef<HTMLLIElement>(null);
  const menuButton = useRef<HTMLButtonElement>(null);
  const name = p.name.trim() || (p.isSelf ? "You" : "Unnamed");
  const menuId = `person-menu-${p.peerId}`;

  // A click elsewhere closes the menu.
  useEffect(() => {
    if (!menuOpen) return undefined;
    const onPointer = (e: PointerEvent) => {
      if (e.target instanceof Node && rowRef.current?.contains(e.target)) return;
      onMenu(false);
    };
    document.addEventListener("pointerdown", onPointer, true);
    return () => document.removeEventListener("pointerdown", onPointer, true);
  }, [menuOpen]);

  const closeMenu = (refocus: boolean) => {
    onMenu(false);
    if (refocus) menuButton.current?.focus();
  };

  return (
    <li
      ref={rowRef}
      class={`person${p.isSelf ? " self" : ""}${menuOpen ? " open" : ""}`}
      data-testid="person"
      data-name={p.name}
      data-self={String(p.isSelf)}
      data-hand={String(p.handRaisedAt !== null)}
      data-moderator={String(p.moderator)}
      data-mic-muted={String(p.micMuted)}
      data-camera-off={String(p.cameraOff)}
      data-speaking={String(p.speaking)}
      data-sharing={String(p.sharing)}
    >
      <div class="person-main">
        <div class={`person-avatar${p.speaking ? " speaking" : ""}`} aria-hidden="true">
          {initials(p.name)}
        </div>
        <div class="person-names">
          <span class="person-name" title={name}>
            {name}
            {p.isSelf && <span class="dim"> (you)</span>}
          </span>
          {(p.moderator || p.speaking || p.sharing) && (
            <span class="person-sub">
              {p.moderator && (
                <span class="person-role">
                  <ShieldIcon size={11} />
                  Moderator
                </span>
              )}
              {p.sharing && (
                <span class="person-sharing" data-testid="person-sharing">
                  <ScreenIcon size={11} />
                  Sharing screen
                </span>
              )}
              {p.speaking && <span class="person-speaking">Speaking</span>}
            </span>
          )}
        </div>
        <div class="person-icons">
          {handPosition !== null && (
            <span class="person-hand" title={`Hand raised (${ordinal(handPosition)} in line)`}>
              <HandIcon size={15} title="Hand raised" />
              <span>{handPosition}</span>
            </span>
          )}
          {p.micMuted && (
            <span class="person-state">
              <MicOffIcon size={15} title="Microphone off" />
            </span>
          )}
          {p.cameraOff && (
            <span class="person-state">
              <CameraOffIcon size={15} title="Camera off" />
            </span>
          )}
        </div>
        {!p.isSelf && (
          <button
            type="button"
            class="icon-button person-action"
            data-testid="person-message"
            aria-label={`Private message to ${name}`}
            title={`Private message to ${name}`}
            onClick={() => messagePerson(p.peerId)}
          >
            <ChatIcon size={15} />
          </button>
        )}
        {canModerate && (
          <button
            ref={menuButton}
            type="button"
            class="icon-button person-action"
            data-testid="person-menu"
            aria-label={`Moderate ${name}`}
            title={`Moderate ${name}`}
            aria-haspopup="menu"
            aria-expanded={menuOpen}
            aria-controls={menuOpen ? menuId : undefined}
            onClick={() => onMenu(!menuOpen)}
          >
            <MoreIcon size={16} />
          </button>
        )}
      </div>
      {canModerate && menuOpen && (
        <PersonMenu id={menuId} person={p} name={name} onClose={closeMenu} />
      )}
    </li>
  );
}

function ordinal(n: number): string {
  const tens = n % 100;
  if (tens >= 11 && tens <= 13) return `${n}th`;
  return `${n}${["th", "st", "nd", "rd"][n % 10] ?? "th"}`;
}
