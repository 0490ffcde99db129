// A canvas showing one frame track, drawn by the render worker.

import { useEffect, useRef } from "preact/hooks";
import { frames } from "../state/store";

interface VideoProps {
  track: string;
  /** Called once the first frame is on screen. */
  onFirstFrame: () => void;
}

/** A canvas can be handed to the worker only once, so each track gets its own element. */
export function Video(props: VideoProps) {
  return <TrackCanvas key={props.track} {...props} />;
}

function TrackCanvas({ track, onFirstFrame }: VideoProps) {
  const ref = useRef<HTMLCanvasElement>(null);
  const firstFrame = useRef(onFirstFrame);
  firstFrame.current = onFirstFrame;
  useEffect(() => {
    const client = frames();
    const canvas = ref.current;
    if (!client || !canvas) return undefined;
    const tile = client.attach(canvas, track, () => firstFrame.current());
    return () => tile.detach();
  }, [track]);
  return <canvas ref={ref} class="video" />;
}
