import { useState } from "preact/hooks";
import { collabPending, copyInvite, copyRoomLink, lastInvite, plainRoomLink } from "../state/collab";
import { INVITE_TTLS } from "../state/invite";
import { InviteIcon, LinkIcon } from "./icons";

/**
 * Links to the room, in the People tab. Everyone can copy the room's plain link (enough for a
 * room anyone may join); a moderator can also have the server sign an invitation, valid for a
 * while and optionally with the moderator grant, and copy its link.
 */
export function InviteControls({ moderator }: { moderator: boolean }) {
  const [ttl, setTtl] = useState(INVITE_TTLS[1]!.secs);
  const [asModerator, setAsModerator] = useState(false);
  const busy = collabPending.value.invite;
  const plain = plainRoomLink();
  return (
    <div class="invite-controls">
      {plain !== null && (
        <button
          type="button"
          class="panel-button"
          data-testid="copy-room-link"
          title={`Copy ${plain}`}
          onClick={() => void copyRoomLink()}
        >
          <LinkIcon size={15} />
          Copy room link
        </button>
      )}
      {moderator && (
        <div class="invite-form" role="group" aria-label="Invite link">
          <div class="invite-options">
            <label class="invite-ttl">
              <span>Valid for</span>
              <select
                data-testid="invite-ttl"
                value={String(ttl)}
                onChange={(e) => setTtl(Number((e.currentTarget as HTMLSelectElement).value))}
              >
                {INVITE_TTLS.map((t) => (
                  <option key={t.secs} value={String(t.secs)}>
                    {t.label}
                  </option>
                ))}
              </select>
            </label>
            <label class="invite-moderator">
              <input
                type="checkbox"
                data-testid="invite-moderator"
                checked={asModerator}
                onChange={(e) => setAsModerator((e.currentTarget as HTMLInputElement).checked)}
              />
              <span>As moderator</span>
            </label>
          </div>
          <button
            type="button"
            class="panel-button"
            data-testid="copy-invite"
            aria-busy={busy}
            disabled={busy}
            title="The server signs an invitation to this room; its link goes to the clipboard"
            onClick={() => void copyInvite(ttl, asModerator)}
          >
            <InviteIcon size={15} />
            Copy invite link
          </button>
          {lastInvite.value && (
            <label class="invite-made">
              <span>
                Copied
                {lastInvite.value.until !== null &&
                  `, valid until ${new Date(lastInvite.value.until * 1000).toLocaleString()}`}
              </span>
              <input
                type="text"
                readOnly
                data-testid="invite-link"
                value={lastInvite.value.link}
                onFocus={(e) => (e.currentTarget as HTMLInputElement).select()}
              />
            </label>
          )}
        </div>
      )}
    </div>
  );
}
