import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { backend } from "../backend";
import type { Settings } from "../bindings/Settings";
import { SELF_TRACK, initials } from "../state/room";
import {
  appInfo,
  clearInvitation,
  editLobbyField,
  join,
  lobby,
  lobbyMessage,
  pasteIntoLobby,
  syncPreview,
  trustCertificateAndJoin,
  updateLobby,
} from "../state/store";
import { DeviceSelect } from "./DeviceSelect";
import { ErrorMessage } from "./ErrorMessage";
import { CameraIcon, CameraOffIcon, CloseIcon, InviteIcon, MicIcon, MicOffIcon, Spinner } from "./icons";
import { Video } from "./Video";

export function Lobby() {
  const { values, devices, joining } = lobby.value;
  const message = lobbyMessage();
  const info = appInfo.value;
  // Start the preview when the lobby shows (again, after a room).
  useEffect(() => syncPreview(), []);

  const text = (key: "name") => (e: Event) =>
    updateLobby({ [key]: (e.currentTarget as HTMLInputElement).value });
  // Server and room also take an invite link: pasted over what the field holds, or typed (taken
  // when the field is left, or on join).
  const linkField = (key: "serverUrl" | "room") => ({
    onInput: (e: Event) =>
      editLobbyField(key, (e.currentTarget as HTMLInputElement).value, false),
    // (Not `onChange`: Preact fires that on every keystroke of a text input.)
    onBlur: (e: Event) => editLobbyField(key, (e.currentTarget as HTMLInputElement).value),
    onPaste: (e: ClipboardEvent) => {
      if (pasteIntoLobby(key, e.clipboardData?.getData("text/plain") ?? "")) e.preventDefault();
    },
  });
  const onSubmit = (e: Event) => {
    e.preventDefault();
    void join();
  };
  // In a browser the server is the page's own: no field for it.
  const serverField = !backend().fixedServer;
  const hasCamera = devices === null || devices.cameras.length > 0;
  const hasMicrophone = devices === null || devices.microphones.length > 0;

  return (
    <main class="lobby" data-testid="lobby">
      <div class="lobby-card">
        <Preview values={values} hasCamera={hasCamera} />
        <form class="lobby-form" onSubmit={onSubmit} noValidate>
          <h1>
            Videoroom
            {(info?.fakeMedia || devices?.fake) && <span class="badge">synthetic media</span>}
          </h1>
          {serverField && (
            <label class="field">
              <span>Server</span>
              <input
                data-testid="server-url"
                type="text"
                inputMode="url"
                spellcheck={false}
                autoComplete="off"
                placeholder="ws://127.0.0.1:8080/ws"
                value={values.serverUrl}
                {...linkField("serverUrl")}
                disabled={joining}
              />
            </label>
          )}
          <div class="field-row">
            <label class="field">
              <span>Room</span>
              <input
                data-testid="room-name"
                type="text"
                spellcheck={false}
                autoComplete="off"
                placeholder="standup"
                value={values.room}
                {...linkField("room")}
                disabled={joining}
              />
            </label>
            <label class="field">
              <span>Your name</span>
              <input
                data-testid="display-name"
                type="text"
                autoComplete="name"
                placeholder="Ada Lovelace"
                value={values.name}
                onInput={text("name")}
                disabled={joining}
              />
            </label>
          </div>
          {values.token !== null && (
            <InviteChip room={values.room.trim()} disabled={joining} onClear={clearInvitation} />
          )}
          <DeviceSelect
            label="Camera"
            testId="camera-select"
            list={devices?.cameras ?? null}
            value={values.camera}
            onChange={(camera) => updateLobby({ camera })}
            disabled={joining}
          />
          <DeviceSelect
            label="Microphone"
            testId="microphone-select"
            list={devices?.microphones ?? null}
            value={values.microphone}
            onChange={(microphone) => updateLobby({ microphone })}
            disabled={joining}
          />
          <DeviceSelect
            label="Speaker"
            testId="speaker-select"
            list={devices?.speakers ?? null}
            value={values.speaker}
            onChange={(speaker) => updateLobby({ speaker })}
            disabled={joining}
          />
          <div class="toggles">
            <ToggleButton
              testId="lobby-camera-toggle"
              on={values.cameraOn && hasCamera}
              disabled={joining || !hasCamera}
              onLabel="Camera on"
              offLabel={hasCamera ? "Camera off" : "No camera"}
              onIcon={<CameraIcon size={18} />}
              offIcon={<CameraOffIcon size={18} />}
              onClick={() => updateLobby({ cameraOn: !values.cameraOn })}
            />
            <ToggleButton
              testId="lobby-mic-toggle"
              on={values.micOn && hasMicrophone}
              disabled={joining || !hasMicrophone}
              onLabel="Microphone on"
              offLabel={hasMicrophone ? "Microphone off" : "No microphone"}
              onIcon={<MicIcon size={18} />}
              offIcon={<MicOffIcon size={18} />}
              onClick={() => updateLobby({ micOn: !values.micOn })}
            />
          </div>
          {message && <ErrorMessage error={message} testId="lobby-error" />}
          {message?.kind === "untrusted_certificate" && message.fingerprint && (
            <TrustCertificate fingerprint={message.fingerprint} disabled={joining} />
          )}
          <button class="primary" type="submit" data-testid="join" disabled={joining}>
            {joining ? (
              <>
                <Spinner size={16} /> Joining…
              </>
            ) : (
              "Join"
            )}
          </button>
        </form>
      </div>
      {info && <footer class="version">Videoroom {info.version}</footer>}
    </main>
  );
}

/**
 * A server whose certificate no authority signed (self-signed): its fingerprint, to compare
 * with the one its operator printed, and the choice to trust it for this server from now on.
 */
function TrustCertificate({ fingerprint, disabled }: { fingerprint: string; disabled: boolean }) {
  return (
    <div class="trust-certificate" data-testid="trust-certificate">
      <p class="trust-label">SHA-256 fingerprint</p>
      <code class="fingerprint" data-testid="certificate-fingerprint">
        {fingerprint}
      </code>
      <button
        type="button"
        data-testid="trust-and-join"
        disabled={disabled}
        onClick={() => void trustCertificateAndJoin()}
      >
        They match: trust this server and join
      </button>
    </div>
  );
}

/** The "Invitation" chip: the lobby joins with the token of a pasted invite link. */
function InviteChip({ room, disabled, onClear }: { room: string; disabled: boolean; onClear: () => void }) {
  return (
    <div class="invite-chip" data-testid="invite-chip">
      <InviteIcon size={15} />
      <span class="invite-chip-text">
        Joining with an invitation{room && <> to <strong>{room}</strong></>}
      </span>
      <button
        type="button"
        class="icon-button"
        data-testid="invite-clear"
        aria-label="Join without the invitation"
        title="Join without the invitation"
        disabled={disabled}
        onClick={onClear}
      >
        <CloseIcon size={14} />
      </button>
    </div>
  );
}

function Preview({ values, hasCamera }: { values: Settings; hasCamera: boolean }) {
  const [drawn, setDrawn] = useState(false);
  const on = values.cameraOn && hasCamera;
  useEffect(() => {
    if (!on) setDrawn(false);
  }, [on]);
  return (
    <div class="preview" data-testid="preview" data-camera-off={String(!on)}>
      {on && <Video track={SELF_TRACK} onFirstFrame={() => setDrawn(true)} />}
      {(!on || !drawn) && (
        <div class="placeholder">
          <div class="avatar">{initials(values.name)}</div>
          <p class="placeholder-text">
            {!hasCamera ? "No camera found" : on ? "Starting camera…" : "Camera is off"}
          </p>
        </div>
      )}
    </div>
  );
}

interface ToggleProps {
  testId: string;
  on: boolean;
  disabled: boolean;
  onLabel: string;
  offLabel: string;
  onIcon: JSX.Element;
  offIcon: JSX.Element;
  onClick: () => void;
}

function ToggleButton(p: ToggleProps) {
  return (
    <button
      type="button"
      class={`toggle${p.on ? " on" : ""}`}
      data-testid={p.testId}
      data-on={String(p.on)}
      aria-pressed={p.on}
      disabled={p.disabled}
      onClick={p.onClick}
    >
      {p.on ? p.onIcon : p.offIcon}
      <span>{p.on ? p.onLabel : p.offLabel}</span>
    </button>
  );
}
