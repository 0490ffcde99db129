// The video of one track: a <canvas> the desktop's render worker draws into, or a <video> the
// browser decodes into, whichever the media backend renders with (backend/types.ts).

import { useEffect, useRef } from "preact/hooks";
import { backend } from "../backend";

interface VideoProps {
  track: string;
  /** Called once the first frame is on screen. */
  onFirstFrame: () => void;
}

/** A canvas can be handed to the worker only once, so each track gets its own element. */
export function Video(props: VideoProps) {
  return <TrackView key={props.track} {...props} />;
}

function TrackView({ track, onFirstFrame }: VideoProps) {
  const renderer = backend().video;
  const ref = useRef<HTMLCanvasElement & HTMLVideoElement>(null);
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
