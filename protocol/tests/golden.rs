//! Every JSON example in docs/protocol.md parses with the protocol types and survives a round trip.

use std::path::Path;
use videoroom_protocol::{ClientMessage, ServerMessage};

/// The fenced blocks of docs/protocol.md tagged `json client` or `json server`, in order.
fn examples(tag: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol.md");
    let doc = std::fs::read_to_string(&path).expect("docs/protocol.md is readable");
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match &mut current {
            None if line.trim() == format!("```json {tag}") => current = Some(String::new()),
            Some(block) if line.trim() == "```" => {
                out.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "unterminated ```json {tag} block");
    out
}

fn without_nulls(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => map
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, without_nulls(v)))
            .collect(),
        serde_json::Value::Array(items) => items.into_iter().map(without_nulls).collect(),
        other => other,
    }
}

#[test]
fn every_client_example_parses_and_round_trips() {
    let blocks = examples("client");
    let types: std::collections::BTreeSet<String> = blocks
        .iter()
        .map(|b| {
            let msg = ClientMessage::parse(b).unwrap_or_else(|e| panic!("{e}\nin:\n{b}"));
            let original: serde_json::Value = serde_json::from_str(b).expect("json");
            let again: serde_json::Value = serde_json::from_str(&msg.to_json()).expect("json");
            assert_eq!(without_nulls(again), without_nulls(original.clone()));
            original["type"].as_str().expect("type").to_owned()
        })
        .collect();
    let documented: std::collections::BTreeSet<String> =
        ClientMessage::TYPES.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        types, documented,
        "docs/protocol.md must show every client message"
    );
}

#[test]
fn every_server_example_parses_and_round_trips() {
    let blocks = examples("server");
    assert!(
        blocks.len() >= 14,
        "found only {} server examples",
        blocks.len()
    );
    let mut types = std::collections::BTreeSet::new();
    for b in &blocks {
        let msg = ServerMessage::parse(b).unwrap_or_else(|e| panic!("{e}\nin:\n{b}"));
        let original: serde_json::Value = serde_json::from_str(b).expect("json");
        let again: serde_json::Value = serde_json::from_str(&msg.to_json()).expect("json");
        assert_eq!(without_nulls(again), without_nulls(original.clone()));
        types.insert(original["type"].as_str().expect("type").to_owned());
    }
    for t in [
        "joined",
        "join_error",
        "peer_joined",
        "peer_left",
        "peer_updated",
        "tracks_added",
        "tracks_removed",
        "track_updated",
        "sdp_offer",
        "sdp_answer",
        "ice_candidate",
        "error",
        "pong",
        "closing",
        "chat",
        "room_updated",
        "moderated",
        "removed",
        "meeting_ended",
    ] {
        assert!(types.contains(t), "docs/protocol.md has no `{t}` example");
    }
}
