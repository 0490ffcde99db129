//! Checks on what a client sends for its media connection, before any of it reaches WebRTC:
//! SDP with a bounded number of media sections and a well-formed DTLS fingerprint, and ICE
//! candidates of a bounded size and number. Pure functions; the endpoint answers a failure with
//! `invalid_sdp` or `invalid_candidate`.
//!
//! rtc 0.21 takes a fingerprint it cannot use (non-hex, unknown algorithm, wrong length) and only
//! fails the DTLS handshake later, leaving the peer to linger until its ICE watchdog gives up;
//! and it answers any number of m-lines.

use videoroom_protocol::IceCandidate;

/// Most media sections in one offer or answer. Stopped transceivers keep their m-line, so a long
/// meeting's connections collect them (every track published while they were in the room); the
/// 64 KiB message limit binds a real SDP first (~300 bytes a section). This bounds the cheap
/// attack: a thousand tiny m-lines.
pub const MAX_MEDIA_SECTIONS: usize = 512;
/// Longest `candidate` attribute taken (a real one is about 100–200 bytes).
pub const MAX_CANDIDATE_BYTES: usize = 512;
/// Longest `sdp_mid` or `username_fragment` taken.
pub const MAX_CANDIDATE_FIELD_BYTES: usize = 256;
/// Most candidates one peer may send (a client has a handful per interface).
pub const MAX_CANDIDATES: usize = 64;

/// Checks an offer's or answer's SDP text; the error is for the client.
pub fn check_sdp(sdp: &str) -> Result<(), String> {
    let sections = sdp.lines().filter(|l| l.starts_with("m=")).count();
    if sections > MAX_MEDIA_SECTIONS {
        return Err(format!(
            "the SDP has {sections} media sections; at most {MAX_MEDIA_SECTIONS} are taken"
        ));
    }
    let mut fingerprints = 0;
    for line in sdp.lines() {
        if let Some(value) = line.trim_end().strip_prefix("a=fingerprint:") {
            check_fingerprint(value)?;
            fingerprints += 1;
        }
    }
    if fingerprints == 0 && sections > 0 {
        return Err("the SDP has no DTLS fingerprint (a=fingerprint)".into());
    }
    Ok(())
}

/// `sha-256 AB:CD:…`: a known hash, and exactly its length in colon-separated hex pairs.
fn check_fingerprint(value: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("the DTLS fingerprint is unusable: {why}"));
    let Some((algorithm, hex)) = value.trim().split_once(' ') else {
        return bad("expected `<hash> <hex>`");
    };
    let bytes = match algorithm.to_ascii_lowercase().as_str() {
        "sha-1" => 20,
        "sha-224" => 28,
        "sha-256" => 32,
        "sha-384" => 48,
        "sha-512" => 64,
        _ => return bad("unknown hash function (sha-1, sha-224, sha-256, sha-384 or sha-512)"),
    };
    let pairs: Vec<&str> = hex.trim().split(':').collect();
    if pairs.len() != bytes {
        return bad(&format!(
            "{algorithm} takes {bytes} bytes, this one has {}",
            pairs.len()
        ));
    }
    if !pairs
        .iter()
        .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return bad("not colon-separated hex pairs");
    }
    Ok(())
}

/// Checks one trickled candidate's size; the count is the caller's (`MAX_CANDIDATES`).
pub fn check_candidate(c: &IceCandidate) -> Result<(), String> {
    if c.candidate.len() > MAX_CANDIDATE_BYTES {
        return Err(format!(
            "candidate is {} bytes; at most {MAX_CANDIDATE_BYTES} are taken",
            c.candidate.len()
        ));
    }
    let long = |f: &Option<String>| {
        f.as_ref()
            .is_some_and(|v| v.len() > MAX_CANDIDATE_FIELD_BYTES)
    };
    if long(&c.sdp_mid) || long(&c.username_fragment) {
        return Err(format!(
            "sdp_mid and username_fragment take at most {MAX_CANDIDATE_FIELD_BYTES} bytes"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "sha-256 58:7C:3A:1E:91:0B:D2:5F:4E:67:09:AA:BC:12:34:56:78:9A:BC:DE:F0:11:22:33:44:55:66:77:88:99:AA:BB";

    fn sdp(fingerprint: &str, sections: usize) -> String {
        let mut s = format!(
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=fingerprint:{fingerprint}\r\n"
        );
        for _ in 0..sections {
            s.push_str("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n");
        }
        s
    }

    #[test]
    fn a_well_formed_fingerprint_passes() {
        assert_eq!(check_sdp(&sdp(GOOD, 2)), Ok(()));
        assert_eq!(check_sdp(&sdp(&GOOD.to_lowercase(), 1)), Ok(()));
    }

    #[test]
    fn malformed_fingerprints_are_refused() {
        let non_hex = GOOD.replace("58", "ZZ");
        let short = &GOOD[..GOOD.len() - 3];
        let unknown = GOOD.replace("sha-256", "md5");
        let no_separator = GOOD.replace(':', "");
        for bad in [
            non_hex.as_str(),
            short,
            unknown.as_str(),
            no_separator.as_str(),
            "sha-256",
            "",
        ] {
            let err = check_sdp(&sdp(bad, 1)).expect_err(bad);
            assert!(err.contains("fingerprint"), "{bad:?}: {err}");
        }
        let none = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
        assert!(check_sdp(none).is_err());
    }

    #[test]
    fn media_sections_are_bounded() {
        assert!(check_sdp(&sdp(GOOD, MAX_MEDIA_SECTIONS)).is_ok());
        let err = check_sdp(&sdp(GOOD, 1000)).expect_err("1000 m-lines");
        assert!(err.contains("1000"), "{err}");
    }

    #[test]
    fn candidates_are_bounded_in_size() {
        let candidate = |text: String| IceCandidate {
            candidate: text,
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        };
        let real = "candidate:1 1 udp 2130706431 127.0.0.1 50123 typ host".to_owned();
        assert!(check_candidate(&candidate(real)).is_ok());
        assert!(check_candidate(&candidate("x".repeat(60_000))).is_err());
        let mut long_mid = candidate("candidate:1 1 udp 1 127.0.0.1 1 typ host".into());
        long_mid.sdp_mid = Some("m".repeat(1000));
        assert!(check_candidate(&long_mid).is_err());
    }
}
