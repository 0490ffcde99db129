import { useEffect } from "preact/hooks";
import { gridLayout } from "../layout/grid";
import { describeError } from "../state/errors";
import { tilesOf, type Notice } from "../state/room";
import { dismissNotice, lobby, room } from "../state/store";
import { Banner } from "./Banner";
import { ControlBar } from "./ControlBar";
import { ErrorMessage } from "./ErrorMessage";
import { LockIcon } from "./icons";
import { SidePanel } from "./SidePanel";
import { Tile } from "./Tile";
import { Toasts } from "./Toasts";
import { useElementSize } from "./useElementSize";

const GAP = 10;
/** Room notices disappear on their own after this long. */
const NOTICE_MS = 12_000;

/**
 * The room: the video grid (it takes the width the side panel leaves), the side panel, the
 * control bar; toasts and notices over the grid.
 */
export function Room() {
  const state = room.value;
  const tiles = tilesOf(state, lobby.value.values.name);
  const [stageRef, size] = useElementSize<HTMLDivElement>();
  const layout = gridLayout(tiles.length, size.w, size.h, GAP);
  return (
    <div class="room" data-testid="room">
      <header class="room-header">
        <span class="room-name">{lobby.value.values.room}</span>
        <span class="room-count">
          {tiles.length === 1 ? "Only you" : `${tiles.length} people`}
        </span>
        {state.locked && (
          <span
            class="room-locked"
            data-testid="room-locked"
            title="A moderator locked the room: no one new can join"
          >
            <LockIcon size={13} />
            Locked
          </span>
        )}
      </header>
      <Banner state={state.connection} />
      <div class={`room-body${state.panel.open ? " with-panel" : ""}`}>
        <div class="stage-area">
          <div class="stage" ref={stageRef}>
            {tiles.map((tile, i) => (
              <Tile key={tile.key} model={tile} rect={layout.tiles[i]} />
            ))}
          </div>
          <Toasts toasts={state.toasts} />
          {state.notices.length > 0 && (
            <div class="notices" data-testid="room-error">
              {state.notices.map((n) => (
                <RoomNotice key={n.id} notice={n} />
              ))}
            </div>
          )}
        </div>
        <SidePanel />
      </div>
      <ControlBar />
    </div>
  );
}

function RoomNotice({ notice }: { notice: Notice }) {
  useEffect(() => {
    const timer = setTimeout(() => dismissNotice(notice.id), NOTICE_MS);
    return () => clearTimeout(timer);
  }, [notice.id]);
  return (
    <ErrorMessage error={describeError(notice.error)} onDismiss={() => dismissNotice(notice.id)} />
  );
}
