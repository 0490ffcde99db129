import type { DeviceInfo } from "../bindings/DeviceInfo";
import { deviceOptions, parseSelectValue, selectValue } from "../state/devices";

interface Props {
  label: string;
  testId: string;
  /** The devices listed (null: not listed yet). */
  list: DeviceInfo[] | null;
  /** The device chosen (null: the default). */
  value: string | null;
  disabled: boolean;
  /** A device was picked (null: the default); `el` is the select that changed. */
  onChange: (id: string | null, el: HTMLSelectElement) => void;
}

/** A labelled device picker, used by the lobby and the room's device panel. */
export function DeviceSelect({ label, testId, list, value, disabled, onChange }: Props) {
  return (
    <label class="field">
      <span>{label}</span>
      <select
        data-testid={testId}
        value={selectValue(value)}
        disabled={disabled || list === null}
        onChange={(e) => {
          const el = e.currentTarget as HTMLSelectElement;
          onChange(parseSelectValue(el.value), el);
        }}
      >
        {deviceOptions(list, value).map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </label>
  );
}
