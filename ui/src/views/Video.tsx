// The video of one track: a <canvas> the desktop's render worker draws into, or a <video> the
// browser decodes into, whichever the media backend renders with (backend/types.ts).

import { useEffect, useRef } from "preact/hooks";
import { backend } from "../backend";
import { useViewSize } from "./useViewSize";

interface VideoProps {
  track: string;
  /** Called once the first frame is on screen. */
  onFirstFrame: () => void;
  /**
   * The publisher of a remote track: its shown size goes to the server as a viewer hint
   * (useViewSize.ts). Omitted for our own camera and screen preview.
   */
  peerId?: string;
}

/** A canvas can be handed to the worker only once, so each track gets its own element. */
export function Video(props: VideoProps) {
  return <TrackView key={props.track} {...props} />;
}

function TrackView({ track, onFirstFrame, peerId }: VideoProps) {
  const renderer = backend().video;
  const ref = useRef<HTMLCanvasElement & HTMLVideoElement>(null);
  useViewSize(ref, peerId ?? null, track);
  const firstFrame = useRef(onFirstFrame);
  firstFrame.current = onFirstFrame;
  useEffect(() => {
    const el = ref.current;
    if (!el) return undefined;
    return renderer.attach(el, track, () => firstFrame.current());
  }, [track]);
  return renderer.element === "canvas" ? (
    <canvas ref={ref} class="video" />
  ) : (
    <video ref={ref} class="video" autoplay playsInline muted />
  );
}
