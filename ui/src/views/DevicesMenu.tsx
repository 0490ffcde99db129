import { useEffect, useRef, useState } from "preact/hooks";
import { choiceOf, type DeviceKind } from "../state/devices";
import { lobby, refreshDevices, switchDevice, switchingDevices } from "../state/store";
import { DeviceSelect } from "./DeviceSelect";
import { SettingsIcon, Spinner } from "./icons";

const PANEL_ID = "devices-panel";
const TITLE_ID = "devices-panel-title";

/**
 * The control bar's "Devices" button and its panel: camera, microphone and speaker, switched
 * live. Escape or a click outside closes it.
 */
export function DevicesMenu() {
  const [open, setOpen] = useState(false);
  const wrapRef = useRef<HTMLDivElement>(null);
  const buttonRef = useRef<HTMLButtonElement>(null);

  const toggle = () => {
    if (open) {
      setOpen(false);
      return;
    }
    setOpen(true);
    // Devices get plugged in: list them again every time.
    void refreshDevices();
  };

  useEffect(() => {
    if (!open) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== "Escape" || e.defaultPrevented) return;
      e.preventDefault();
      const inside = wrapRef.current?.contains(document.activeElement) ?? false;
      setOpen(false);
      if (inside) buttonRef.current?.focus();
    };
    const onPointer = (e: PointerEvent) => {
      if (e.target instanceof Node && wrapRef.current?.contains(e.target)) return;
      setOpen(false);
    };
    window.addEventListener("keydown", onKey);
    document.addEventListener("pointerdown", onPointer, true);
    return () => {
      window.removeEventListener("keydown", onKey);
      document.removeEventListener("pointerdown", onPointer, true);
    };
  }, [open]);

  return (
    <div class="devices" ref={wrapRef}>
      <button
        ref={buttonRef}
        type="button"
        class={`control${open ? " open" : ""}`}
        data-testid="devices-toggle"
        aria-label="Devices"
        title="Devices: camera, microphone, speaker"
        aria-haspopup="dialog"
        aria-expanded={open}
        aria-controls={open ? PANEL_ID : undefined}
        onClick={toggle}
      >
        <SettingsIcon />
      </button>
      {open && <DevicesPanel />}
    </div>
  );
}

function DevicesPanel() {
  const { devices, values } = lobby.value;
  const inFlight = switchingDevices.value;
  const busy = inFlight !== null;
  // While a switch runs, the selects show what it asks for; after a failure, what is in use.
  const shown = inFlight ?? choiceOf(values);
  const panelRef = useRef<HTMLDivElement>(null);
  /** The select the running switch came from (disabling it drops its focus). */
  const changed = useRef<HTMLSelectElement | null>(null);

  // Focus moves into the panel: the first select that takes it, else the panel itself.
  useEffect(() => {
    const panel = panelRef.current;
    if (!panel) return;
    const first = panel.querySelector<HTMLSelectElement>("select:not(:disabled)");
    (first ?? panel).focus();
  }, []);

  // Give the focus back to the select once the switch is over.
  useEffect(() => {
    if (busy) return;
    const el = changed.current;
    changed.current = null;
    if (!el || !el.isConnected) return;
    const active = document.activeElement;
    if (active === null || active === document.body || active === el) el.focus();
  }, [busy]);

  const pick = (kind: DeviceKind) => (id: string | null, el: HTMLSelectElement) => {
    changed.current = el;
    void switchDevice(kind, id);
  };

  return (
    <div
      ref={panelRef}
      id={PANEL_ID}
      class="devices-panel"
      role="dialog"
      aria-labelledby={TITLE_ID}
      aria-busy={busy}
      tabIndex={-1}
      data-testid="devices-panel"
    >
      <div class="devices-panel-head">
        <h2 id={TITLE_ID}>Devices</h2>
        {devices?.fake && <span class="badge">synthetic media</span>}
        {busy && <Spinner size={14} />}
      </div>
      <DeviceSelect
        label="Camera"
        testId="room-camera-select"
        list={devices?.cameras ?? null}
        value={shown.camera}
        disabled={busy}
        onChange={pick("camera")}
      />
      <DeviceSelect
        label="Microphone"
        testId="room-microphone-select"
        list={devices?.microphones ?? null}
        value={shown.microphone}
        disabled={busy}
        onChange={pick("microphone")}
      />
      <DeviceSelect
        label="Speaker"
        testId="room-speaker-select"
        list={devices?.speakers ?? null}
        value={shown.speaker}
        disabled={busy}
        onChange={pick("speaker")}
      />
    </div>
  );
}
