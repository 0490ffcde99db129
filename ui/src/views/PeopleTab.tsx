import { useEffect, useState } from "preact/hooks";
import { handPosition, peopleOf } from "../state/people";
import { lobby, room } from "../state/store";
import { LockIcon } from "./icons";
import { InviteControls } from "./InviteControls";
import { PersonRow } from "./PersonRow";
import { RoomControls } from "./RoomControls";

/** Everyone in the room, raised hands first; moderators get a menu per person. */
export function PeopleTab() {
  const state = room.value;
  const people = peopleOf(state, lobby.value.values.name);
  const hands = people.filter((p) => p.handRaisedAt !== null).length;
  /** The person whose moderation menu is open. */
  const [menuFor, setMenuFor] = useState<string | null>(null);

  // The menu's person left, or we are no longer a moderator.
  const menuPerson = people.find((p) => p.peerId === menuFor && !p.isSelf);
  useEffect(() => {
    if (menuFor !== null && (!menuPerson || !state.moderator)) setMenuFor(null);
  }, [menuFor, menuPerson, state.moderator]);

  return (
    <div class="people">
      <div class="people-head">
        <h2 class="panel-title">
          In the room <span class="dim">{people.length}</span>
        </h2>
        {hands > 0 && <span class="people-hands">{`${hands} raised ${hands === 1 ? "hand" : "hands"}`}</span>}
      </div>
      {state.moderator && <RoomControls locked={state.locked} />}
      <InviteControls moderator={state.moderator} />
      {state.locked && (
        <p class="locked-note">
          <LockIcon size={14} />
          The room is locked: no one new can join.
        </p>
      )}
      <ul class="people-list" aria-label="People in the room">
        {people.map((p) => (
          <PersonRow
            key={p.key}
            person={p}
            handPosition={handPosition(people, p.peerId)}
            canModerate={state.moderator && !p.isSelf}
            menuOpen={menuFor === p.peerId}
            onMenu={(open) => setMenuFor(open ? p.peerId : null)}
          />
        ))}
      </ul>
    </div>
  );
}
