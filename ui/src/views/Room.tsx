import { useEffect } from "preact/hooks";
import { gridLayout, type Rect } from "../layout/grid";
import { pickStage, presentationLayout, stripOrder } from "../layout/presentation";
import { describeError } from "../state/errors";
import { allTilesOf, stageCandidates, type Notice, type RoomState, type TileModel } from "../state/room";
import { sharePending, stopScreenShare } from "../state/screen";
import { dismissNotice, lobby, room } from "../state/store";
import { Banner } from "./Banner";
import { ControlBar } from "./ControlBar";
import { ErrorMessage } from "./ErrorMessage";
import { LockIcon, ScreenIcon } from "./icons";
import { SharePicker } from "./SharePicker";
import { SidePanel } from "./SidePanel";
import { Tile, type TilePlace } from "./Tile";
import { Toasts } from "./Toasts";
import { useElementSize } from "./useElementSize";

const GAP = 10;
/** Room notices disappear on their own after this long. */
const NOTICE_MS = 12_000;

interface Placed {
  tile: TileModel;
  rect: Rect | undefined;
  place: TilePlace;
}

interface Arrangement {
  placed: Placed[];
  /** The "+N" tile of a strip that is too short. */
  more: { rect: Rect; count: number } | null;
  presenting: boolean;
}

/**
 * Where every tile goes: the grid of people, or — while a screen is shared or a tile pinned —
 * the stage and the strip (layout/presentation.ts). Tiles keep their order in the DOM (a
 * canvas handed to the render worker must not be re-created); only their rects change.
 */
function arrange(state: RoomState, tiles: TileModel[], w: number, h: number): Arrangement {
  const stageKey = pickStage(stageCandidates(state), state.layout.pinned);
  if (stageKey === null) {
    const layout = gridLayout(tiles.length, w, h, GAP);
    return {
      placed: tiles.map((tile, i) => ({ tile, rect: layout.tiles[i], place: "grid" })),
      more: null,
      presenting: false,
    };
  }
  const inStrip = tiles.filter((t) => t.key !== stageKey);
  const layout = presentationLayout(inStrip.length, w, h, GAP, { full: state.layout.full });
  // More tiles than places: recent speakers get the places (the DOM order stays as it is).
  const strip = stripOrder(
    inStrip.map((t) => ({ key: t.key, speaker: t.kind === "person" ? t.peerId : null, tile: t })),
    state.recentSpeakers,
    layout.strip.length,
  ).map((c) => c.tile);
  return {
    placed: tiles.map((tile) => {
      if (tile.key === stageKey) return { tile, rect: layout.stage, place: "stage" };
      const i = strip.indexOf(tile);
      return { tile, rect: layout.strip[i], place: "strip" };
    }),
    more: layout.more,
    presenting: true,
  };
}

/**
 * The room: the video grid (it takes the width the side panel leaves), the side panel, the
 * control bar; toasts and notices over the grid.
 */
export function Room() {
  const state = room.value;
  const tiles = allTilesOf(state, lobby.value.values.name);
  const people = tiles.filter((t) => t.kind === "person").length;
  const [stageRef, size] = useElementSize<HTMLDivElement>();
  const { placed, more, presenting } = arrange(state, tiles, size.w, size.h);
  const full = presenting && state.layout.full;
  return (
    <div
      class={`room${full ? " full-window" : ""}`}
      data-testid="room"
      data-layout={presenting ? "presentation" : "grid"}
    >
      <header class="room-header">
        <span class="room-name">{lobby.value.values.room}</span>
        <span class="room-count">
          {people === 1 ? "Only you" : `${people} people`}
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
      {state.local.screenOn && <SharingIndicator />}
      <div class={`room-body${state.panel.open ? " with-panel" : ""}`}>
        <div class="stage-area">
          <div class="stage" ref={stageRef}>
            {placed.map(({ tile, rect, place }) => (
              <Tile
                key={tile.key}
                model={tile}
                rect={rect}
                place={place}
                pinned={state.layout.pinned === tile.key}
              />
            ))}
            {more && (
              <div
                class="tile more-tile"
                data-testid="strip-more"
                style={{
                  left: `${more.rect.x}px`,
                  top: `${more.rect.y}px`,
                  width: `${more.rect.w}px`,
                  height: `${more.rect.h}px`,
                }}
              >
                +{more.count}
              </div>
            )}
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
      {state.picker && <SharePicker picker={state.picker} />}
    </div>
  );
}

/** While we share: says so, with a way to stop that does not need the control bar. */
function SharingIndicator() {
  return (
    <div class="sharing-indicator" data-testid="sharing-indicator" role="status">
      <ScreenIcon size={15} />
      <span>You are sharing your screen</span>
      <span aria-hidden="true">·</span>
      <button
        type="button"
        class="sharing-stop"
        data-testid="sharing-stop"
        disabled={sharePending.value}
        onClick={() => void stopScreenShare()}
      >
        Stop
      </button>
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
