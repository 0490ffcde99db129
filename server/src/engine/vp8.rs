//! The few VP8 facts the forwarder needs, read from the RTP payload without decoding (RFC 7741):
//! where a keyframe starts and its size, the picture id and TL0PICIDX, and rewriting those two in
//! place so a subscriber sees one continuous stream across simulcast layer switches.

/// What one VP8 RTP payload says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Info {
    /// The packet starts a keyframe (S bit, partition 0, and the payload header's P bit clear).
    pub keyframe_start: bool,
    /// The packet starts a frame (S bit, partition 0).
    pub frame_start: bool,
    /// A keyframe's width and height (its first packet only).
    pub size: Option<(u16, u16)>,
    /// The picture id and whether it is the 15-bit form.
    pub picture_id: Option<(u16, bool)>,
    /// Where the picture id starts in the payload.
    picture_id_at: usize,
    /// TL0PICIDX, if present.
    pub tl0_pic_idx: Option<u8>,
    tl0_at: usize,
}

/// Reads the payload descriptor (and, on a keyframe's first packet, the frame size). `None` for
/// a payload too short to be VP8.
pub fn parse(payload: &[u8]) -> Option<Vp8Info> {
    let b0 = *payload.first()?;
    let x = b0 & 0x80 != 0;
    let s = b0 & 0x10 != 0;
    let pid = b0 & 0x07;
    let mut at = 1;
    let mut info = Vp8Info::default();
    if x {
        let b1 = *payload.get(at)?;
        at += 1;
        let (i, l, t, k) = (
            b1 & 0x80 != 0,
            b1 & 0x40 != 0,
            b1 & 0x20 != 0,
            b1 & 0x10 != 0,
        );
        if i {
            let p0 = *payload.get(at)?;
            info.picture_id_at = at;
            if p0 & 0x80 != 0 {
                let p1 = *payload.get(at + 1)?;
                info.picture_id = Some(((u16::from(p0 & 0x7f) << 8) | u16::from(p1), true));
                at += 2;
            } else {
                info.picture_id = Some((u16::from(p0), false));
                at += 1;
            }
        }
        if l {
            info.tl0_pic_idx = Some(*payload.get(at)?);
            info.tl0_at = at;
            at += 1;
        }
        if t || k {
            payload.get(at)?;
            at += 1;
        }
    }
    info.frame_start = s && pid == 0;
    if info.frame_start {
        let header = payload.get(at..)?;
        let first = *header.first()?;
        if first & 0x01 == 0 {
            info.keyframe_start = true;
            // Keyframe: 3-byte frame tag, start code 9d 01 2a, 14-bit width and height.
            if header.len() >= 10 && header[3..6] == [0x9d, 0x01, 0x2a] {
                let w = u16::from_le_bytes([header[6], header[7]]) & 0x3fff;
                let h = u16::from_le_bytes([header[8], header[9]]) & 0x3fff;
                info.size = Some((w, h));
            }
        }
    }
    Some(info)
}

/// Writes a new picture id (kept in the packet's own 7- or 15-bit form) and TL0PICIDX into a
/// payload `info` was parsed from.
pub fn rewrite(payload: &mut [u8], info: &Vp8Info, picture_id: u16, tl0_pic_idx: u8) {
    match info.picture_id {
        Some((_, true)) => {
            let [hi, lo] = (picture_id & 0x7fff).to_be_bytes();
            payload[info.picture_id_at] = 0x80 | hi;
            payload[info.picture_id_at + 1] = lo;
        }
        Some((_, false)) => payload[info.picture_id_at] = (picture_id & 0x7f) as u8,
        None => {}
    }
    if info.tl0_pic_idx.is_some() {
        payload[info.tl0_at] = tl0_pic_idx;
    }
}

/// The modulus of a picture id of this form.
pub fn picture_id_modulus(fifteen_bit: bool) -> u16 {
    if fifteen_bit { 1 << 15 } else { 1 << 7 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A descriptor with X, I (15-bit id), L, and a keyframe payload header of `w`×`h`.
    fn keyframe(pid: u16, tl0: u8, w: u16, h: u16) -> Vec<u8> {
        let mut p = vec![0x90, 0xc0, 0x80 | (pid >> 8) as u8, pid as u8, tl0];
        p.extend_from_slice(&[0x50, 0x2a, 0x01, 0x9d, 0x01, 0x2a]);
        p.extend_from_slice(&w.to_le_bytes());
        p.extend_from_slice(&h.to_le_bytes());
        p.extend_from_slice(&[0; 20]);
        p
    }

    #[test]
    fn reads_a_keyframe_start_its_size_and_ids() {
        let p = keyframe(0x1234, 7, 1280, 720);
        let info = parse(&p).unwrap();
        assert!(info.keyframe_start && info.frame_start);
        assert_eq!(info.size, Some((1280, 720)));
        assert_eq!(info.picture_id, Some((0x1234, true)));
        assert_eq!(info.tl0_pic_idx, Some(7));
    }

    #[test]
    fn interframes_and_continuations_are_not_keyframes() {
        // S set, delta frame (P bit 1).
        let p = [0x90, 0x80, 0x81, 0x02, 0x51, 0, 0];
        let info = parse(&p).unwrap();
        assert!(info.frame_start && !info.keyframe_start);
        assert_eq!(info.picture_id, Some((0x102, true)));
        // S clear: a continuation packet of a keyframe.
        let mut c = keyframe(5, 0, 640, 360);
        c[0] = 0x80;
        let info = parse(&c).unwrap();
        assert!(!info.frame_start && !info.keyframe_start && info.size.is_none());
        // 7-bit picture id, no extension byte for L.
        let info = parse(&[0x90, 0x80, 0x05, 0x51]).unwrap();
        assert_eq!(info.picture_id, Some((5, false)));
    }

    #[test]
    fn rewrites_ids_in_place_in_their_own_form() {
        let mut p = keyframe(0x7fff, 200, 320, 180);
        let info = parse(&p).unwrap();
        rewrite(&mut p, &info, 3, 9);
        let again = parse(&p).unwrap();
        assert_eq!(again.picture_id, Some((3, true)));
        assert_eq!(again.tl0_pic_idx, Some(9));
        assert_eq!(again.size, Some((320, 180)));
        let mut short = [0x90, 0x80, 0x05, 0x51];
        let info = parse(&short).unwrap();
        rewrite(&mut short, &info, 130, 0);
        assert_eq!(parse(&short).unwrap().picture_id, Some((2, false)));
    }

    #[test]
    fn truncated_payloads_are_refused_never_panic() {
        let full = keyframe(9, 1, 640, 360);
        for n in 0..full.len() {
            let _ = parse(&full[..n]);
        }
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[0x80]), None);
        assert_eq!(parse(&[0x80, 0x80]), None);
        assert_eq!(parse(&[0x80, 0x80, 0x80]), None);
    }
}
