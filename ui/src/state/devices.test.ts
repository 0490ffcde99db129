import { describe, expect, it } from "vitest";
import type { Settings } from "../bindings/Settings";
import {
  IN_USE_DEVICE,
  MISSING_DEVICE,
  choiceOf,
  chooseDevice,
  deviceOptions,
  parseSelectValue,
  selectValue,
  withDevices,
} from "./devices";

const settings = (patch: Partial<Settings> = {}): Settings => ({
  serverUrl: "ws://127.0.0.1:8080/ws",
  room: "standup",
  name: "Ada",
  camera: "cam-1",
  microphone: null,
  speaker: "spk-2",
  cameraOn: true,
  micOn: false,
  token: null,
  ...patch,
});

describe("choiceOf", () => {
  it("takes the three device fields of the settings", () => {
    expect(choiceOf(settings())).toEqual({ camera: "cam-1", microphone: null, speaker: "spk-2" });
  });
});

describe("chooseDevice", () => {
  const current = { camera: "cam-1", microphone: null, speaker: "spk-2" };

  it("changes one device and passes the other two along (select_devices wants all three)", () => {
    expect(chooseDevice(current, "camera", "cam-2")).toEqual({
      camera: "cam-2",
      microphone: null,
      speaker: "spk-2",
    });
    expect(chooseDevice(current, "microphone", "mic-1")).toEqual({
      camera: "cam-1",
      microphone: "mic-1",
      speaker: "spk-2",
    });
    expect(chooseDevice(current, "speaker", null)).toEqual({
      camera: "cam-1",
      microphone: null,
      speaker: null,
    });
  });

  it("returns null when the device is already in use", () => {
    expect(chooseDevice(current, "camera", "cam-1")).toBeNull();
    expect(chooseDevice(current, "microphone", null)).toBeNull();
  });

  it("does not change its input", () => {
    const before = { ...current };
    chooseDevice(current, "camera", "cam-9");
    expect(current).toEqual(before);
  });
});

describe("withDevices", () => {
  it("puts the choice into the settings and keeps everything else", () => {
    const next = withDevices(settings(), { camera: null, microphone: "mic-3", speaker: "spk-1" });
    expect(next).toEqual(
      settings({ camera: null, microphone: "mic-3", speaker: "spk-1" }),
    );
    expect(choiceOf(next)).toEqual({ camera: null, microphone: "mic-3", speaker: "spk-1" });
  });

  it("round-trips a switch: the next join uses the switched devices", () => {
    const joined = settings();
    const next = chooseDevice(choiceOf(joined), "camera", "cam-2");
    expect(next).not.toBeNull();
    const saved = withDevices(joined, next!);
    expect(saved.camera).toBe("cam-2");
    expect(saved.speaker).toBe("spk-2");
    expect(saved.room).toBe("standup");
    expect(saved.cameraOn).toBe(true);
  });
});

describe("select values", () => {
  it("maps the default (null) to the empty value and back", () => {
    expect(selectValue(null)).toBe("");
    expect(selectValue("cam-1")).toBe("cam-1");
    expect(parseSelectValue("")).toBeNull();
    expect(parseSelectValue("cam-1")).toBe("cam-1");
  });
});

describe("deviceOptions", () => {
  const list = [
    { id: "cam-1", name: "Integrated Camera" },
    { id: "cam-2", name: "USB Camera" },
  ];

  it("lists the default first, then the devices", () => {
    expect(deviceOptions(list, "cam-1")).toEqual([
      { value: "", label: "Default" },
      { value: "cam-1", label: "Integrated Camera" },
      { value: "cam-2", label: "USB Camera" },
    ]);
  });

  it("says when there is nothing, or nothing listed yet", () => {
    expect(deviceOptions([], null)).toEqual([{ value: "", label: "None found" }]);
    expect(deviceOptions(null, null)).toEqual([{ value: "", label: "Looking for devices…" }]);
  });

  it("keeps a device in use that the listing no longer has", () => {
    expect(deviceOptions(list, "cam-gone").at(-1)).toEqual({
      value: "cam-gone",
      label: MISSING_DEVICE,
    });
    expect(deviceOptions(null, "cam-1")).toEqual([
      { value: "", label: "Looking for devices…" },
      { value: "cam-1", label: IN_USE_DEVICE },
    ]);
  });

  it("drops duplicate ids and names nameless devices by id", () => {
    const options = deviceOptions(
      [
        { id: "a", name: "" },
        { id: "a", name: "again" },
      ],
      "a",
    );
    expect(options).toEqual([
      { value: "", label: "Default" },
      { value: "a", label: "a" },
    ]);
  });
});
