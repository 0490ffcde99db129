//! Reading the wall-clock timelines of a bot's `--stats-json` (`size_timeline`,
//! `freeze_timeline`), for tests that change the network at known moments.

use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

/// Now on the wall clock, ms since the UNIX epoch (what the timelines use).
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `[wall ms, width, height]` entries of a remote video track's `size_timeline`.
pub fn sizes(track: &Value) -> Vec<(u64, u64, u64)> {
    track["size_timeline"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| Some((e[0].as_u64()?, e[1].as_u64()?, e[2].as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// `[wall ms, gap ms]` entries of a remote video track's `freeze_timeline`.
pub fn freezes(track: &Value) -> Vec<(u64, u64)> {
    track["freeze_timeline"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| Some((e[0].as_u64()?, e[1].as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// `[wall ms, budget kbit/s, layers paused by the budget, layers sent]` of the publisher's
/// camera.
pub fn budget(track: &Value) -> Vec<[u64; 4]> {
    track["budget_timeline"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    Some([
                        e[0].as_u64()?,
                        e[1].as_u64()?,
                        e[2].as_u64()?,
                        e[3].as_u64()?,
                    ])
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Our camera's entry in a bot's `local_tracks`.
pub fn local_camera(report: &Value) -> &Value {
    report["local_tracks"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["source"] == "camera"))
        .unwrap_or_else(|| panic!("no local camera in {report}"))
}
