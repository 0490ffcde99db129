import { describe, expect, it } from "vitest";
import { cameraConstraints, devicesFrom, microphoneConstraints } from "./media";

describe("devices", () => {
  it("lists devices by kind, without Chrome's aliases", () => {
    const d = devicesFrom(
      [
        { kind: "videoinput", deviceId: "cam1", label: "Integrated Camera" },
        { kind: "audioinput", deviceId: "default", label: "Default - Mic" },
        { kind: "audioinput", deviceId: "mic1", label: "Mic" },
        { kind: "audiooutput", deviceId: "communications", label: "Communications" },
        { kind: "audiooutput", deviceId: "spk1", label: "Speakers" },
      ],
      true,
    );
    expect(d).toEqual({
      cameras: [{ id: "cam1", name: "Integrated Camera" }],
      microphones: [{ id: "mic1", name: "Mic" }],
      speakers: [{ id: "spk1", name: "Speakers" }],
      fake: false,
    });
  });

  it("before permission: listed without names or ids, so that a camera still counts", () => {
    const d = devicesFrom(
      [
        { kind: "videoinput", deviceId: "", label: "" },
        { kind: "audioinput", deviceId: "", label: "" },
      ],
      true,
    );
    expect(d.cameras).toEqual([{ id: "", name: "Camera 1" }]);
    expect(d.microphones).toEqual([{ id: "", name: "Microphone 1" }]);
  });

  it("no speaker choice where the browser cannot switch outputs", () => {
    expect(devicesFrom([{ kind: "audiooutput", deviceId: "spk1", label: "Speakers" }], false).speakers).toEqual([]);
  });

  it("constraints: the chosen device exactly, the desktop's 640×360@30", () => {
    expect(cameraConstraints(null)).toEqual({ width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 30 } });
    expect(cameraConstraints("cam1").deviceId).toEqual({ exact: "cam1" });
    expect(microphoneConstraints("mic1")).toMatchObject({ deviceId: { exact: "mic1" }, echoCancellation: true });
  });
});
