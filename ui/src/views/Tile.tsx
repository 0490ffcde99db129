import { useState } from "preact/hooks";
import type { Rect } from "../layout/grid";
import { initials, type TileModel } from "../state/room";
import { HandIcon, MicOffIcon } from "./icons";
import { Video } from "./Video";

interface Props {
  model: TileModel;
  rect: Rect | undefined;
}

/** One person: video (or initials while there is none), name, muted mic, hand, speaking ring. */
export function Tile({ model, rect }: Props) {
  // The track whose first frame is on screen; the placeholder stays until then.
  const [drawnTrack, setDrawnTrack] = useState<string | null>(null);
  const track = model.videoTrack;
  const showPlaceholder = track === null || drawnTrack !== track;
  const hand = model.handRaisedAt !== null;
  const style = rect
    ? { left: `${rect.x}px`, top: `${rect.y}px`, width: `${rect.w}px`, height: `${rect.h}px` }
    : { display: "none" };
  return (
    <div
      class={`tile${model.speaking ? " speaking" : ""}`}
      style={style}
      data-testid="tile"
      data-name={model.name}
      data-peer={model.peerId}
      data-self={String(model.isSelf)}
      data-speaking={String(model.speaking)}
      data-mic-muted={String(model.micMuted)}
      data-camera-off={String(model.cameraOff)}
      data-hand={String(hand)}
    >
      {track !== null && <Video track={track} onFirstFrame={() => setDrawnTrack(track)} />}
      {showPlaceholder && (
        <div class="placeholder">
          <div class="avatar">{initials(model.name)}</div>
        </div>
      )}
      {hand && (
        <div class="tile-hand" title="Hand raised">
          <HandIcon size={18} title="Hand raised" />
        </div>
      )}
      <div class="nameplate">
        {model.micMuted && (
          <span class="muted-icon">
            <MicOffIcon size={15} title="Microphone off" />
          </span>
        )}
        <span class="name">{model.isSelf ? `${model.name || "You"} (you)` : model.name}</span>
      </div>
    </div>
  );
}
