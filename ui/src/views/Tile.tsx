import { useState } from "preact/hooks";
import type { Rect } from "../layout/grid";
import { initials, type TileModel } from "../state/room";
import { dispatch } from "../state/store";
import { HandIcon, MicOffIcon, PinIcon, ScreenIcon } from "./icons";
import { Video } from "./Video";

/** Where a tile is: in the grid, on the stage or in the strip of the presentation layout. */
export type TilePlace = "grid" | "stage" | "strip";

interface Props {
  model: TileModel;
  rect: Rect | undefined;
  place: TilePlace;
  pinned: boolean;
}

const TEST_IDS: Record<TilePlace, string> = { grid: "tile", stage: "stage-tile", strip: "strip-tile" };

/**
 * One person (video or initials, name, muted mic, hand, speaking ring, "sharing screen") or
 * one shared screen (ours too: "Your screen", the preview of what we send). A double click or the pin button pins it to the stage, or unpins it.
 */
export function Tile({ model, rect, place, pinned }: Props) {
  // The track whose first frame is on screen; the placeholder stays until then.
  const [drawnTrack, setDrawnTrack] = useState<string | null>(null);
  const track = model.videoTrack;
  const showPlaceholder = track === null || drawnTrack !== track;
  const hand = model.handRaisedAt !== null;
  const screen = model.kind === "screen";
  const style = rect
    ? { left: `${rect.x}px`, top: `${rect.y}px`, width: `${rect.w}px`, height: `${rect.h}px` }
    : { display: "none" };
  const togglePin = () => dispatch({ type: "ui/pin", key: model.key });
  // Our own share is "Your screen" already.
  const label = model.isSelf && !screen ? `${model.name || "You"} (you)` : model.name;
  return (
    <div
      class={`tile tile-${place}${screen ? " screen" : ""}${model.speaking ? " speaking" : ""}`}
      style={style}
      data-testid={TEST_IDS[place]}
      data-kind={model.kind}
      data-name={model.name}
      data-peer={model.peerId}
      data-self={String(model.isSelf)}
      data-speaking={String(model.speaking)}
      data-mic-muted={String(model.micMuted)}
      data-camera-off={String(model.cameraOff)}
      data-hand={String(hand)}
      data-sharing={String(model.sharing)}
      data-pinned={String(pinned)}
      data-track={track ?? undefined}
      onDblClick={togglePin}
    >
      {track !== null && (
        <Video
          track={track}
          peerId={model.isSelf ? undefined : model.peerId}
          onFirstFrame={() => setDrawnTrack(track)}
        />
      )}
      {showPlaceholder && (
        <div class="placeholder">
          {screen ? <ScreenIcon size={40} /> : <div class="avatar">{initials(model.name)}</div>}
        </div>
      )}
      {hand && (
        <div class="tile-hand" title="Hand raised">
          <HandIcon size={18} title="Hand raised" />
        </div>
      )}
      <button
        type="button"
        class={`tile-pin${pinned ? " on" : ""}`}
        data-testid="tile-pin"
        aria-pressed={pinned}
        aria-label={pinned ? `Unpin ${label}` : `Pin ${label} to the stage`}
        title={pinned ? "Unpin (double click)" : "Pin to the stage (double click)"}
        onClick={togglePin}
        onDblClick={(e) => e.stopPropagation()}
      >
        <PinIcon size={15} />
      </button>
      <div class="nameplate">
        {model.micMuted && (
          <span class="muted-icon">
            <MicOffIcon size={15} title="Microphone off" />
          </span>
        )}
        {model.sharing && !screen && (
          <span class="sharing-icon" data-testid="tile-sharing">
            <ScreenIcon size={15} title="Sharing screen" />
          </span>
        )}
        {screen && (
          <span class="sharing-icon">
            <ScreenIcon size={15} />
          </span>
        )}
        <span class="name">{label}</span>
      </div>
    </div>
  );
}
