// Our screen picker (desktop on X11; on Wayland and in a browser the system's dialog picks): the
// screens and windows this machine can share, each with a live thumbnail. A click or Enter
// shares one; the arrows move between them; Escape, Cancel or a click beside it closes.

import { useEffect, useRef, useState } from "preact/hooks";
import { sourceTrack } from "../backend/types";
import type { ScreenSource } from "../bindings/ScreenSource";
import { describeError } from "../state/errors";
import { pickerKey, sizeText, trapTab } from "../state/picker";
import type { PickerState } from "../state/room";
import { closePicker, shareSource } from "../state/screen";
import { dispatch } from "../state/store";
import { ErrorMessage } from "./ErrorMessage";
import { CloseIcon, ScreenIcon, Spinner } from "./icons";
import { Video } from "./Video";

export function SharePicker({ picker }: { picker: PickerState }) {
  const { sources, selected, error, starting } = picker;
  const items = useRef(new Map<string, HTMLButtonElement>());
  // The highlighted source has the focus (one tab stop for the list; the arrows move it).
  const selectedId = sources[selected]?.id;
  useEffect(() => {
    if (selectedId !== undefined) items.current.get(selectedId)?.focus();
  }, [selectedId]);
  const dialog = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (sources.length === 0) dialog.current?.focus();
    // Closed: the keyboard goes back to the share button (S still works from there).
    return () => document.querySelector<HTMLButtonElement>('[data-testid="share-screen"]')?.focus();
  }, []);

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.ctrlKey || e.altKey || e.metaKey) return;
    if (e.key === "Tab") {
      // A modal: Tab and Shift+Tab cycle through the dialog's own controls.
      const focusable = Array.from(
        dialog.current?.querySelectorAll<HTMLElement>('button:not([disabled]):not([tabindex="-1"]), [tabindex="0"]') ?? [],
      );
      const next = trapTab(focusable.length, focusable.indexOf(document.activeElement as HTMLElement), e.shiftKey);
      e.preventDefault();
      if (next !== null) focusable[next]?.focus();
      return;
    }
    const action = pickerKey(e.key, selected, sources.length);
    if (!action) return;
    e.preventDefault();
    e.stopPropagation();
    switch (action.type) {
      case "close":
        closePicker();
        break;
      case "select":
        dispatch({ type: "ui/picker-select", index: action.index });
        break;
      case "share": {
        const source = sources[action.index];
        if (source) void shareSource(source.id);
        break;
      }
    }
  };

  const item = (source: ScreenSource) => {
    const index = sources.indexOf(source);
    return (
      <SourceItem
        key={source.id}
        source={source}
        selected={index === selected}
        disabled={starting}
        onFocus={() => dispatch({ type: "ui/picker-select", index })}
        register={(el) => {
          if (el) items.current.set(source.id, el);
          else items.current.delete(source.id);
        }}
      />
    );
  };
  const screens = sources.filter((s) => s.kind === "screen");
  const windows = sources.filter((s) => s.kind !== "screen");

  return (
    <div
      class="modal-backdrop"
      onPointerDown={(e) => {
        if (e.target === e.currentTarget) closePicker();
      }}
    >
      <div
        ref={dialog}
        class="modal share-picker"
        role="dialog"
        aria-modal="true"
        aria-labelledby="share-picker-title"
        aria-busy={starting}
        tabIndex={-1}
        data-testid="screen-picker"
        onKeyDown={onKeyDown}
      >
        <header class="modal-header">
          <h2 id="share-picker-title">Share your screen</h2>
          <button type="button" class="icon-button" aria-label="Cancel" onClick={closePicker}>
            <CloseIcon size={18} />
          </button>
        </header>
        {error && <ErrorMessage error={describeError(error)} testId="screen-picker-error" />}
        <section class="source-section" aria-labelledby="share-picker-screens">
          <h3 id="share-picker-screens">Screens</h3>
          {screens.length > 0 ? (
            <div class="source-grid">{screens.map(item)}</div>
          ) : (
            <p class="dim source-none">No screen to share.</p>
          )}
        </section>
        <section class="source-section" aria-labelledby="share-picker-windows">
          <h3 id="share-picker-windows">Windows</h3>
          {windows.length > 0 ? (
            <div class="source-grid">{windows.map(item)}</div>
          ) : (
            <p class="dim source-none">No window to share.</p>
          )}
        </section>
        <footer class="modal-footer">
          <span class="dim">
            {starting ? (
              <>
                <Spinner size={14} /> Starting to share…
              </>
            ) : (
              "Click one to share it, or choose with the arrow keys and Enter."
            )}
          </span>
          <button type="button" class="secondary" onClick={closePicker} disabled={starting}>
            Cancel
          </button>
        </footer>
      </div>
    </div>
  );
}

interface ItemProps {
  source: ScreenSource;
  selected: boolean;
  disabled: boolean;
  onFocus: () => void;
  register: (el: HTMLButtonElement | null) => void;
}

/** One source: its live thumbnail (frame track `source:<id>`), title and size. */
function SourceItem({ source, selected, disabled, onFocus, register }: ItemProps) {
  // The placeholder stays until the first thumbnail is drawn.
  const [drawn, setDrawn] = useState(false);
  const size = sizeText(source);
  return (
    <button
      ref={register}
      type="button"
      class={`source${selected ? " selected" : ""}`}
      data-testid="screen-source"
      data-source-id={source.id}
      data-kind={source.kind}
      data-drawn={String(drawn)}
      aria-current={selected ? "true" : undefined}
      aria-label={`Share ${source.title} (${size})`}
      title={`${source.title} (${size})`}
      tabIndex={selected ? 0 : -1}
      disabled={disabled}
      onFocus={onFocus}
      onClick={() => void shareSource(source.id)}
    >
      <span class="source-thumb">
        <Video track={sourceTrack(source.id)} onFirstFrame={() => setDrawn(true)} />
        {!drawn && (
          <span class="placeholder">
            <ScreenIcon size={28} />
          </span>
        )}
      </span>
      <span class="source-title">{source.title}</span>
      <span class="source-size dim">{size}</span>
    </button>
  );
}
