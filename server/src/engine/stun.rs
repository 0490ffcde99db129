//! Zero-allocation STUN helpers (RFC 5389 / RFC 8489) over `&[u8]`, for the demux.
//!
//! The demux reads two things from a STUN datagram before any peer core sees it: the message
//! type (is this a Binding request, a success response, ...?) and the local part of USERNAME
//! (which of our peers a connectivity check is for). Both are read in place, without copying and
//! without allocating; `rtc::stun::message::Message::decode` copies every attribute into a `Vec`
//! and formats its errors, so it is not run per packet (it is the oracle of the tests below).
//!
//! What this is not: a validator. MESSAGE-INTEGRITY and FINGERPRINT are left to the peer's core.

/// The fixed value in bytes 4..8 of every RFC 5389 STUN message.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;

/// Bytes in the STUN message header (type, length, cookie, transaction id).
pub const HEADER_LEN: usize = 20;

/// Message type of a Binding request.
pub const BINDING_REQUEST: u16 = 0x0001;
/// Message type of a Binding success response.
pub const BINDING_SUCCESS: u16 = 0x0101;
/// Message type of a Binding error response.
pub const BINDING_ERROR: u16 = 0x0111;
/// Message type of a Binding indication (ICE keepalives).
pub const BINDING_INDICATION: u16 = 0x0011;

/// Attribute type of USERNAME.
pub const ATTR_USERNAME: u16 = 0x0006;

/// How many attributes [`username_local_part`] walks before it gives up.
pub const MAX_ATTRIBUTES: usize = 32;

/// Message type of a STUN message (its first 2 bytes) if `buf` is a well-formed STUN header:
/// at least 20 bytes, the first two bits 0, the magic cookie right, and the length field equal
/// to `buf.len() - 20` and a multiple of 4. Attributes are not looked at.
pub fn message_type(buf: &[u8]) -> Option<u16> {
    let header = buf.get(..HEADER_LEN)?;
    let typ = u16::from_be_bytes([header[0], header[1]]);
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let cookie = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let well_formed = typ & 0xC000 == 0
        && cookie == MAGIC_COOKIE
        && length == buf.len() - HEADER_LEN
        && length % 4 == 0;
    well_formed.then_some(typ)
}

/// Whether `buf` is a well-formed STUN Binding success response (type `0x0101`).
pub fn is_binding_success(buf: &[u8]) -> bool {
    message_type(buf) == Some(BINDING_SUCCESS)
}

/// What [`find_username`] found in a message's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Username<'a> {
    /// The header is malformed, or an attribute's length runs past the message before USERNAME.
    Malformed,
    /// No USERNAME among the first [`MAX_ATTRIBUTES`] attributes.
    Absent,
    /// The value of the first USERNAME attribute (unpadded).
    Present(&'a [u8]),
}

/// Walks at most [`MAX_ATTRIBUTES`] attributes (4-byte padded TLVs) of a STUN message to the
/// first USERNAME, never reading past `buf`.
pub(crate) fn find_username(buf: &[u8]) -> Username<'_> {
    if message_type(buf).is_none() {
        return Username::Malformed;
    }
    let mut rest = &buf[HEADER_LEN..];
    for _ in 0..MAX_ATTRIBUTES {
        if rest.is_empty() {
            return Username::Absent;
        }
        let Some((tl, after)) = rest.split_first_chunk::<4>() else {
            return Username::Malformed;
        };
        let typ = u16::from_be_bytes([tl[0], tl[1]]);
        let len = usize::from(u16::from_be_bytes([tl[2], tl[3]]));
        let padded = len.next_multiple_of(4);
        if after.len() < padded {
            return Username::Malformed;
        }
        if typ == ATTR_USERNAME {
            return Username::Present(&after[..len]);
        }
        rest = &after[padded..];
    }
    Username::Absent
}

/// The local part of a USERNAME value: the bytes before the first `:`. ICE checks carry
/// `RECEIVER-UFRAG:SENDER-UFRAG` (RFC 8445 §7.2.2), so for a check sent to us this is OUR ufrag.
/// `None` without a `:`.
pub(crate) fn local_part(username: &[u8]) -> Option<&[u8]> {
    let colon = username.iter().position(|&b| b == b':')?;
    Some(&username[..colon])
}

/// The bytes of USERNAME (`0x0006`) before the first `:` (for a check sent to us that is OUR
/// ufrag), walking at most 32 attributes (4-byte padded TLVs), never reading past the buffer.
/// `None` if the header is malformed, USERNAME is absent from those attributes, an attribute
/// before it lies about its length, or the value has no `:`.
pub fn username_local_part(buf: &[u8]) -> Option<&[u8]> {
    match find_username(buf) {
        Username::Present(value) => local_part(value),
        Username::Malformed | Username::Absent => None,
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! STUN messages built by rtc-stun, for the tests of this module and of the demux.

    use rtc::stun::attributes::ATTR_USERNAME as RTC_ATTR_USERNAME;
    use rtc::stun::fingerprint::FINGERPRINT;
    use rtc::stun::integrity::MessageIntegrity;
    pub(crate) use rtc::stun::message::{
        BINDING_ERROR as RTC_BINDING_ERROR, BINDING_REQUEST as RTC_BINDING_REQUEST,
        BINDING_SUCCESS as RTC_BINDING_SUCCESS, CLASS_INDICATION, METHOD_BINDING, MessageType,
    };
    use rtc::stun::message::{Message, Setter, TransactionId};
    use rtc::stun::textattrs::Username as RtcUsername;

    /// A STUN message built by rtc-stun: `typ`, optional USERNAME, MESSAGE-INTEGRITY, FINGERPRINT.
    pub(crate) fn build(typ: MessageType, username: Option<&str>) -> Vec<u8> {
        let provider = rtc::crypto::default_provider().expect("a built-in crypto provider");
        let mut setters: Vec<Box<dyn Setter + '_>> =
            vec![Box::new(typ), Box::new(TransactionId::new())];
        if let Some(u) = username {
            setters.push(Box::new(RtcUsername::new(RTC_ATTR_USERNAME, u.to_owned())));
        }
        setters.push(Box::new(
            MessageIntegrity::new_short_term_integrity_with_provider(
                "a-password-of-22-chars".to_owned(),
                provider.crypto(),
            ),
        ));
        setters.push(Box::new(FINGERPRINT));
        let mut m = Message::new();
        m.build(&setters).expect("build a STUN message");
        m.raw
    }

    /// A Binding request carrying USERNAME `username`, as a browser sends it.
    pub(crate) fn request(username: &str) -> Vec<u8> {
        build(RTC_BINDING_REQUEST, Some(username))
    }

    /// A Binding success response, as a core answers an authenticated check.
    pub(crate) fn success() -> Vec<u8> {
        build(RTC_BINDING_SUCCESS, None)
    }

    /// A Binding error response.
    pub(crate) fn error() -> Vec<u8> {
        build(RTC_BINDING_ERROR, None)
    }

    /// A Binding indication (no USERNAME).
    pub(crate) fn indication() -> Vec<u8> {
        build(MessageType::new(METHOD_BINDING, CLASS_INDICATION), None)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{self, RTC_BINDING_REQUEST, RTC_BINDING_SUCCESS, build};
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rtc::stun::attributes::ATTR_USERNAME as RTC_ATTR_USERNAME;
    use rtc::stun::message::Message;

    #[test]
    fn binding_request_with_username_integrity_and_fingerprint() {
        let buf = build(RTC_BINDING_REQUEST, Some("abcd:efgh"));
        assert_eq!(message_type(&buf), Some(BINDING_REQUEST));
        assert_eq!(username_local_part(&buf), Some(&b"abcd"[..]));
        assert!(!is_binding_success(&buf));
    }

    #[test]
    fn success_response_without_username() {
        let buf = build(RTC_BINDING_SUCCESS, None);
        assert_eq!(message_type(&buf), Some(BINDING_SUCCESS));
        assert!(is_binding_success(&buf));
        assert_eq!(find_username(&buf), Username::Absent);
        assert_eq!(username_local_part(&buf), None);
        assert_eq!(message_type(&testing::error()), Some(BINDING_ERROR));
        assert_eq!(
            message_type(&testing::indication()),
            Some(BINDING_INDICATION)
        );
        assert!(!is_binding_success(&testing::error()));
    }

    #[test]
    fn odd_length_username_is_unpadded() {
        let buf = build(RTC_BINDING_REQUEST, Some("abc:de"));
        assert_eq!(find_username(&buf), Username::Present(&b"abc:de"[..]));
        assert_eq!(username_local_part(&buf), Some(&b"abc"[..]));
    }

    #[test]
    fn username_without_colon_has_no_local_part() {
        let buf = build(RTC_BINDING_REQUEST, Some("abcdefgh"));
        assert_eq!(find_username(&buf), Username::Present(&b"abcdefgh"[..]));
        assert_eq!(username_local_part(&buf), None);
    }

    #[test]
    fn header_checks() {
        let good = build(RTC_BINDING_REQUEST, Some("abcd:efgh"));
        assert_eq!(message_type(&[]), None);
        assert_eq!(message_type(&good[..19]), None);
        // Truncated: the length field no longer matches.
        assert_eq!(message_type(&good[..good.len() - 4]), None);
        // One of the first two bits set.
        let mut b = good.clone();
        b[0] |= 0x40;
        assert_eq!(message_type(&b), None);
        // Wrong cookie.
        let mut b = good.clone();
        b[5] ^= 1;
        assert_eq!(message_type(&b), None);
        // Length not a multiple of 4.
        let mut b = good.clone();
        b.push(0);
        let len = u16::try_from(b.len() - HEADER_LEN).unwrap();
        b[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(message_type(&b), None);
        // A bare header is fine.
        let mut b = good[..HEADER_LEN].to_vec();
        b[2..4].copy_from_slice(&[0, 0]);
        assert_eq!(message_type(&b), Some(BINDING_REQUEST));
        assert_eq!(find_username(&b), Username::Absent);
    }

    #[test]
    fn attribute_length_that_lies_is_malformed() {
        let mut b = build(RTC_BINDING_REQUEST, Some("abcd:efgh"));
        // The first attribute (USERNAME, 9 bytes) claims 0xFFFF bytes.
        b[22..24].copy_from_slice(&[0xFF, 0xFF]);
        assert_eq!(find_username(&b), Username::Malformed);
        assert_eq!(username_local_part(&b), None);
    }

    #[test]
    fn username_after_32_attributes_is_not_found() {
        let mut b = vec![0, 1, 0, 0];
        b.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        b.extend_from_slice(&[7; 12]);
        for _ in 0..MAX_ATTRIBUTES {
            b.extend_from_slice(&[0x80, 0x22, 0, 0]); // an empty SOFTWARE-like attribute
        }
        b.extend_from_slice(&[0, 6, 0, 4]);
        b.extend_from_slice(b"ab:c");
        let len = u16::try_from(b.len() - HEADER_LEN).unwrap();
        b[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(message_type(&b), Some(BINDING_REQUEST));
        assert_eq!(find_username(&b), Username::Absent);
        // One attribute fewer in front: found.
        b.drain(HEADER_LEN..HEADER_LEN + 4);
        let len = u16::try_from(b.len() - HEADER_LEN).unwrap();
        b[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(username_local_part(&b), Some(&b"ab"[..]));
    }

    /// One random test input: a real message, mutated, or pure noise.
    fn random_input(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<u8> {
        let mut b = match rng.random_range(0..10) {
            0 => {
                let n = rng.random_range(0..200);
                (0..n).map(|_| rng.random()).collect()
            }
            _ => seeds[rng.random_range(0..seeds.len())].clone(),
        };
        for _ in 0..rng.random_range(0..4) {
            match rng.random_range(0..6) {
                // Truncate.
                0 if !b.is_empty() => {
                    let n = rng.random_range(0..b.len());
                    b.truncate(n);
                }
                // Flip a byte.
                1 if !b.is_empty() => {
                    let i = rng.random_range(0..b.len());
                    b[i] ^= rng.random::<u8>() | 1;
                }
                // Lie in an attribute's length (at a 4-aligned offset past the header).
                2 if b.len() > HEADER_LEN + 4 => {
                    let i = HEADER_LEN + 4 * rng.random_range(0..=(b.len() - HEADER_LEN - 4) / 4);
                    let v: u16 = rng.random_range(0..80);
                    b[i + 2..i + 4].copy_from_slice(&v.to_be_bytes());
                }
                // Append junk.
                3 => {
                    for _ in 0..rng.random_range(1..12) {
                        b.push(rng.random());
                    }
                }
                // Change an attribute type to USERNAME.
                4 if b.len() > HEADER_LEN + 4 => {
                    let i = HEADER_LEN + 4 * rng.random_range(0..=(b.len() - HEADER_LEN - 4) / 4);
                    b[i..i + 2].copy_from_slice(&ATTR_USERNAME.to_be_bytes());
                }
                _ => {}
            }
            // Often make the header length agree again, so the attribute walk is exercised.
            if b.len() >= HEADER_LEN && rng.random_bool(0.7) {
                let len = u16::try_from(b.len() - HEADER_LEN).unwrap_or(0);
                b[2..4].copy_from_slice(&len.to_be_bytes());
            }
        }
        b
    }

    /// Our parser against rtc-stun's `Message::decode` on ~20k random and mutated buffers.
    #[test]
    fn agrees_with_rtc_stun_on_random_and_mutated_buffers() {
        let seeds = vec![
            build(RTC_BINDING_REQUEST, Some("abcd:efgh")),
            build(RTC_BINDING_REQUEST, Some("x:yz")),
            build(RTC_BINDING_REQUEST, Some("ufragufragufrag:remote")),
            build(RTC_BINDING_SUCCESS, None),
        ];
        let mut rng = StdRng::seed_from_u64(0x5375_4e21);
        let (mut header_ok, mut both_username) = (0_u32, 0_u32);
        for _ in 0..20_000 {
            let b = random_input(&mut rng, &seeds);
            let ours = message_type(&b);
            let found = find_username(&b);
            let local = username_local_part(&b);
            if ours.is_none() {
                assert_eq!(found, Username::Malformed);
                assert_eq!(local, None);
                continue;
            }
            header_ok += 1;
            let mut m = Message::new();
            let decoded = m.unmarshal_binary(&b);
            if let Err(e) = &decoded {
                // Our header check passed, so rtc must not fail on the header.
                let msg = e.to_string();
                assert!(
                    !msg.contains("magic cookie")
                        && !msg.contains("expected message size")
                        && !matches!(e, rtc::shared::error::Error::ErrUnexpectedHeaderEof),
                    "rtc refused a header we accepted: {msg} ({b:02x?})"
                );
                continue;
            }
            // Both parsed the header: type and length agree.
            assert_eq!(m.typ.value(), ours.unwrap(), "type of {b:02x?}");
            assert_eq!(m.length as usize, b.len() - HEADER_LEN);
            // rtc decoded every attribute; ours walks the first 32 to USERNAME.
            let first_username = m
                .attributes
                .0
                .iter()
                .position(|a| a.typ == RTC_ATTR_USERNAME);
            match (found, first_username) {
                (Username::Present(v), Some(i)) => {
                    assert!(i < MAX_ATTRIBUTES);
                    assert_eq!(v, &m.attributes.0[i].value[..]);
                    let theirs = m.attributes.0[i].value.split(|&c| c == b':').next();
                    if v.contains(&b':') {
                        both_username += 1;
                        assert_eq!(local, theirs);
                    } else {
                        assert_eq!(local, None);
                    }
                }
                (Username::Absent, Some(i)) => assert!(i >= MAX_ATTRIBUTES),
                (Username::Absent, None) => assert_eq!(local, None),
                (other, theirs) => {
                    panic!("ours {other:?}, rtc's USERNAME at {theirs:?}, buf {b:02x?}")
                }
            }
        }
        // The generator must actually reach the interesting cases.
        assert!(header_ok > 5_000, "only {header_ok} well-formed headers");
        assert!(
            both_username > 1_000,
            "only {both_username} USERNAME matches"
        );
    }
}
