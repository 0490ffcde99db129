//! Validation of names and ids that arrive from the network.

use crate::{ErrorCode, RoomName, TrackId};
use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// Longest room name, in characters as a person sees them (grapheme clusters).
pub const MAX_ROOM_NAME_CHARS: usize = 64;
/// Longest display name, in characters as a person sees them (grapheme clusters): 16 family
/// emoji (👨‍👩‍👧‍👦, seven code points each) fit, 65 `é` do not.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// Most code points in one character (grapheme cluster) of a name: a family emoji with skin
/// tones has 11; more is marks stacked on a letter ("Zalgo" text) and is refused.
pub const MAX_CODE_POINTS_PER_CHAR: usize = 16;
/// Most characters of client input an error message quotes back (see [`excerpt`]).
pub const MAX_ECHO_CHARS: usize = 64;
/// Longest track id, in characters.
pub const MAX_TRACK_ID_CHARS: usize = 128;
/// Largest `metadata` value, serialized, in bytes.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Longest chat text, in bytes of UTF-8 after trimming.
pub const MAX_CHAT_BYTES: usize = 4096;
/// Longest reason a moderator gives for a removal, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// A name or id that was refused, with the code the server answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidName {
    /// The code sent to the client.
    pub code: ErrorCode,
    /// A sentence a person can act on.
    pub message: String,
}

fn check_text(
    what: &str,
    text: &str,
    max_chars: usize,
    code: ErrorCode,
) -> Result<(), InvalidName> {
    let fail = |message: String| Err(InvalidName { code, message });
    if text.trim().is_empty() {
        return fail(format!("{what} must not be empty"));
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return fail(format!(
            "{what} is {chars} characters long; at most {max_chars} are allowed"
        ));
    }
    if text.chars().any(char::is_control) {
        return fail(format!("{what} must not contain control characters"));
    }
    if text.trim() != text {
        return fail(format!("{what} must not start or end with white space"));
    }
    Ok(())
}

/// At most [`MAX_ECHO_CHARS`] characters of `text`, followed by `…` when it was cut: all of a
/// client's input that an error message may quote back.
pub fn excerpt(text: &str) -> String {
    excerpt_to(text, MAX_ECHO_CHARS)
}

/// Longest text [`clip_quoted`] returns, in characters.
pub const MAX_QUOTING_ERROR_CHARS: usize = 160;

/// An error text from a parser (serde, SDP, ICE) that may quote the client's input, made safe to
/// send back: every piece between quotes or backticks cut to an [`excerpt`], and the whole to
/// [`MAX_QUOTING_ERROR_CHARS`] characters.
pub fn clip_quoted(text: &str) -> String {
    let mut out = String::new();
    let mut piece = String::new();
    for c in text.chars() {
        if matches!(c, '`' | '"' | '\'') {
            out.push_str(&excerpt(&piece));
            out.push(c);
            piece.clear();
        } else {
            piece.push(c);
        }
    }
    out.push_str(&excerpt(&piece));
    excerpt_to(&out, MAX_QUOTING_ERROR_CHARS)
}

/// At most `max_chars` characters of `text`, followed by `…` when it was cut.
pub fn excerpt_to(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// Characters that change the direction text is shown in (Unicode bidi controls): in a name
/// they make it show in a misleading order (`admin\u{202e}gnp.exe` shows as `adminexe.png`).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Invisible characters that have no use in a name but to hide or fake text (zero-width spaces,
/// word joiners, byte order marks, Hangul fillers used as blanks, ...). Joiners that emoji and
/// some scripts need (U+200C, U+200D), variation selectors and emoji tags are not among them.
fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{2060}'..='\u{2065}'
            | '\u{206A}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
    )
}

/// Format characters (general category Cf): they show nothing by themselves.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// Whether `c` shows something on its own: not white space, control, format or combining
/// mark, and not one of the blank-looking fillers (Hangul fillers, the blank Braille pattern).
fn is_visible(c: char) -> bool {
    !(c.is_whitespace()
        || c.is_control()
        || is_format(c)
        || unicode_normalization::char::is_combining_mark(c)
        || matches!(
            c,
            '\u{115F}' | '\u{1160}' | '\u{2800}' | '\u{3164}' | '\u{FFA0}'
        ))
}

/// `U+202E RIGHT-TO-LEFT OVERRIDE`: a character named so a person can find it.
fn describe(c: char) -> String {
    let name = match c {
        '\u{00AD}' => " SOFT HYPHEN",
        '\u{061C}' => " ARABIC LETTER MARK",
        '\u{180E}' => " MONGOLIAN VOWEL SEPARATOR",
        '\u{200B}' => " ZERO WIDTH SPACE",
        '\u{200E}' => " LEFT-TO-RIGHT MARK",
        '\u{200F}' => " RIGHT-TO-LEFT MARK",
        '\u{202A}' => " LEFT-TO-RIGHT EMBEDDING",
        '\u{202B}' => " RIGHT-TO-LEFT EMBEDDING",
        '\u{202C}' => " POP DIRECTIONAL FORMATTING",
        '\u{202D}' => " LEFT-TO-RIGHT OVERRIDE",
        '\u{202E}' => " RIGHT-TO-LEFT OVERRIDE",
        '\u{2060}' => " WORD JOINER",
        '\u{2066}' => " LEFT-TO-RIGHT ISOLATE",
        '\u{2067}' => " RIGHT-TO-LEFT ISOLATE",
        '\u{2068}' => " FIRST STRONG ISOLATE",
        '\u{2069}' => " POP DIRECTIONAL ISOLATE",
        '\u{3164}' => " HANGUL FILLER",
        '\u{FEFF}' => " ZERO WIDTH NO-BREAK SPACE",
        '\u{FFA0}' => " HALFWIDTH HANGUL FILLER",
        _ => "",
    };
    format!("U+{:04X}{name}", u32::from(c))
}

/// Checks a room or display name (`what`) and returns it in NFC: not empty, no control
/// characters or line breaks, no text-direction controls, no invisible characters, something
/// visible, no surrounding white space, at most `max_chars` grapheme clusters of at most
/// [`MAX_CODE_POINTS_PER_CHAR`] code points each.
fn check_name(
    what: &str,
    raw: &str,
    max_chars: usize,
    code: ErrorCode,
) -> Result<String, InvalidName> {
    let fail = |message: String| Err(InvalidName { code, message });
    // A name longer than this cannot pass the length check; do not normalize a huge input.
    if raw.len() > max_chars * MAX_CODE_POINTS_PER_CHAR * 4 {
        return fail(format!(
            "{what} is far too long; at most {max_chars} characters are allowed"
        ));
    }
    // What the user typed and what another keyboard sends for the same text are one name.
    let name: String = raw.nfc().collect();
    if name.trim().is_empty() {
        return fail(format!("{what} must not be empty"));
    }
    if let Some(c) = name.chars().find(|&c| is_bidi_control(c)) {
        return fail(format!(
            "names can't contain text-direction control characters (this {what} has {}, \
             which can make text show in a misleading order); type it again without it",
            describe(c)
        ));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
    {
        return fail(format!(
            "{what} must not contain control characters or line breaks"
        ));
    }
    if let Some(c) = name.chars().find(|&c| is_hidden(c)) {
        return fail(format!(
            "names can't contain invisible characters (this {what} has {}); type it again \
             without it",
            describe(c)
        ));
    }
    if !name.chars().any(is_visible) {
        return fail(format!(
            "this {what} has nothing visible in it; use at least one letter, digit or symbol"
        ));
    }
    if name.trim() != name {
        return fail(format!("{what} must not start or end with white space"));
    }
    let mut chars = 0;
    for cluster in name.graphemes(true) {
        chars += 1;
        if cluster.chars().count() > MAX_CODE_POINTS_PER_CHAR {
            return fail(format!(
                "this {what} has a character with too many marks stacked on it (at most \
                 {MAX_CODE_POINTS_PER_CHAR} code points each); remove some"
            ));
        }
    }
    if chars > max_chars {
        return fail(format!(
            "{what} is {chars} characters long; at most {max_chars} are allowed"
        ));
    }
    Ok(name)
}

/// Checks a room name (see [`validate_display_name`] for the rules, which are the same) and
/// returns it in Unicode NFC, so the same name typed on two keyboards is the same room.
pub fn validate_room_name(name: &str) -> Result<RoomName, InvalidName> {
    let name = check_name(
        "room name",
        name,
        MAX_ROOM_NAME_CHARS,
        ErrorCode::InvalidRoomName,
    )?;
    Ok(RoomName::new(name))
}

/// Checks a display name and returns it in Unicode NFC (the form the server stores and shows
/// others): 1 to [`MAX_DISPLAY_NAME_CHARS`] characters as a person counts them (grapheme
/// clusters), something visible, no control characters or line breaks, no text-direction
/// controls (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C), no invisible characters
/// such as U+200B, no surrounding white space.
pub fn validate_display_name(name: &str) -> Result<String, InvalidName> {
    check_name(
        "display name",
        name,
        MAX_DISPLAY_NAME_CHARS,
        ErrorCode::InvalidDisplayName,
    )
}

/// Checks a track id: 1 to 128 characters from the SDP `token` set (it is used as an `msid`).
pub fn validate_track_id(id: &str) -> Result<TrackId, InvalidName> {
    let fail = |message: String| {
        Err(InvalidName {
            code: ErrorCode::InvalidTrack,
            message,
        })
    };
    if id.is_empty() || id.len() > MAX_TRACK_ID_CHARS {
        return fail(format!(
            "track id must be 1 to {MAX_TRACK_ID_CHARS} characters"
        ));
    }
    // RFC 8866 token-char: %x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39 / %x41-5A / %x5E-7E
    let token_char = |c: char| matches!(c, '!' | '#'..='\'' | '*' | '+' | '-' | '.' | '0'..='9' | 'A'..='Z' | '^'..='~');
    if !id.chars().all(token_char) {
        return fail(format!(
            "track id `{}` has characters an SDP msid cannot carry",
            excerpt(id)
        ));
    }
    Ok(TrackId::new(id))
}

/// Checks that `metadata` serializes to at most [`MAX_METADATA_BYTES`].
pub fn validate_metadata(metadata: &serde_json::Value) -> Result<(), InvalidName> {
    let len = metadata.to_string().len();
    if len > MAX_METADATA_BYTES {
        return Err(InvalidName {
            code: ErrorCode::InvalidMessage,
            message: format!("metadata is {len} bytes; at most {MAX_METADATA_BYTES} are allowed"),
        });
    }
    Ok(())
}

/// Checks a chat text and returns it trimmed, with line breaks as `\n`: not empty, at most
/// [`MAX_CHAT_BYTES`] of UTF-8, no control characters but line breaks and tabs.
pub fn validate_chat_text(text: &str) -> Result<String, InvalidName> {
    // Windows and old Mac line breaks are line breaks too.
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let text = text.trim();
    if text.is_empty() {
        return Err(InvalidName {
            code: ErrorCode::InvalidMessage,
            message: "chat text is empty".into(),
        });
    }
    if text.len() > MAX_CHAT_BYTES {
        return Err(InvalidName {
            code: ErrorCode::MessageTooLong,
            message: format!(
                "chat text is {} bytes long; at most {MAX_CHAT_BYTES} are allowed: split it",
                text.len()
            ),
        });
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(InvalidName {
            code: ErrorCode::InvalidMessage,
            message:
                "chat text must not contain control characters other than line breaks and tabs"
                    .into(),
        });
    }
    Ok(text.to_owned())
}

/// Checks a removal reason and returns it trimmed (`None` when blank): at most
/// [`MAX_REASON_CHARS`] characters, no control characters.
pub fn validate_reason(reason: Option<&str>) -> Result<Option<String>, InvalidName> {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    check_text(
        "reason",
        reason,
        MAX_REASON_CHARS,
        ErrorCode::InvalidMessage,
    )?;
    Ok(Some(reason.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        assert!(validate_room_name("standup").is_ok());
        assert!(validate_room_name("Café ☕ 3").is_ok());
        for bad in ["", "   ", " lead", "tab\there", "nl\n", &"x".repeat(65)] {
            let err = validate_room_name(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRoomName, "{bad:?}");
        }
        assert!(validate_room_name(&"é".repeat(64)).is_ok());
    }

    #[test]
    fn display_names() {
        assert!(validate_display_name("Ada Lovelace").is_ok());
        let err = validate_display_name("\u{7}bell").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidDisplayName);
    }

    fn refused(name: &str) -> String {
        let err = validate_display_name(name).expect_err(name);
        assert_eq!(err.code, ErrorCode::InvalidDisplayName, "{name:?}");
        err.message
    }

    #[test]
    fn names_are_returned_in_nfc() {
        assert_eq!(validate_display_name("e\u{301}").expect("ok"), "\u{e9}");
        assert_eq!(
            validate_display_name("Zo\u{308}e").expect("ok"),
            "Zo\u{308}e".nfc().collect::<String>()
        );
        assert_eq!(
            validate_room_name("Cafe\u{301}").expect("ok").as_str(),
            "Caf\u{e9}"
        );
        // Hangul typed as jamo becomes the syllable.
        assert_eq!(
            validate_display_name("\u{1112}\u{1161}\u{11AB}").expect("ok"),
            "\u{D55C}"
        );
    }

    #[test]
    fn text_direction_controls_are_refused() {
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            let message = refused(&format!("ad{c}min"));
            assert!(
                message.contains("text-direction control characters"),
                "{message}"
            );
            assert!(
                message.contains(&format!("U+{:04X}", u32::from(c))),
                "{message}"
            );
        }
        let message = refused("admin\u{202e}gnp.exe");
        assert!(message.contains("RIGHT-TO-LEFT OVERRIDE"), "{message}");
        let err = validate_room_name("room\u{2067}1").expect_err("bidi");
        assert_eq!(err.code, ErrorCode::InvalidRoomName);
        assert!(
            err.message
                .starts_with("names can't contain text-direction")
        );
    }

    #[test]
    fn invisible_names_are_refused() {
        for name in [
            "\u{200B}",
            "\u{2060}",
            "\u{FEFF}",
            "\u{3164}",
            "\u{FFA0}",
            "\u{115F}",
            "\u{1160}",
            "\u{115F}\u{1160}",
            "\u{2800}",
            "\u{2800}\u{2800}\u{2800}",
            "\u{301}",
            "\u{301}\u{302}\u{303}",
            "\u{200D}",
            "\u{200C}\u{200D}",
            "\u{FE0F}",
            "\u{E0061}\u{E007F}",
            "\u{3000}",
            "\u{A0}\u{A0}",
        ] {
            let message = refused(name);
            assert!(
                message.contains("nothing visible")
                    || message.contains("invisible characters")
                    || message.contains("must not be empty"),
                "{name:?}: {message}"
            );
        }
        let message = refused("\u{2800}");
        assert!(message.contains("nothing visible"), "{message}");
        let message = refused("\u{3164}");
        assert!(message.contains("U+3164 HANGUL FILLER"), "{message}");
        // Hidden inside a real name: a lookalike of another name.
        for name in [
            "ad\u{200B}min",
            "admin\u{2060}",
            "\u{FEFF}admin",
            "a\u{AD}dmin",
        ] {
            let message = refused(name);
            assert!(message.contains("invisible characters"), "{message}");
        }
        assert!(validate_room_name("\u{200B}").is_err());
        assert!(validate_room_name("\u{2800}").is_err());
    }

    #[test]
    fn line_breaks_and_controls_are_refused() {
        for name in ["a\u{2028}b", "a\u{2029}b", "a\nb", "a\tb", "\u{85}x"] {
            refused(name);
        }
    }

    #[test]
    fn the_length_counts_what_a_person_sees() {
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}";
        assert_eq!(family.chars().count(), 7);
        let sixteen = family.repeat(16);
        assert_eq!(
            validate_display_name(&sixteen).expect("16 families fit"),
            sixteen
        );
        assert!(validate_display_name(&family.repeat(64)).is_ok());
        let message = refused(&family.repeat(65));
        assert!(message.contains("65 characters"), "{message}");
        // 64 decomposed é are 128 code points but 64 characters.
        assert!(validate_display_name(&"e\u{301}".repeat(64)).is_ok());
        assert!(validate_display_name(&"\u{e9}".repeat(64)).is_ok());
        let message = refused(&"\u{e9}".repeat(65));
        assert!(message.contains("at most 64"), "{message}");
        refused(&"e\u{301}".repeat(65));
        // Flags, skin tones, tag sequences and joiners that scripts need are fine.
        for name in [
            "\u{1F1EB}\u{1F1F7} Ada",
            "\u{1F44B}\u{1F3FD}",
            "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
            "\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0645}",
            "\u{0915}\u{094D}\u{200D}\u{0937}",
            "\u{1F468}\u{1F3FB}\u{200D}\u{1F469}\u{1F3FB}\u{200D}\u{1F467}\u{1F3FB}\u{200D}\u{1F466}\u{1F3FB}",
        ] {
            assert!(validate_display_name(name).is_ok(), "{name:?}");
        }
        // Marks stacked without end on one letter are refused.
        // (`x` has no precomposed form with an acute, so NFC keeps all 17 code points.)
        let zalgo = format!("x{}", "\u{301}".repeat(MAX_CODE_POINTS_PER_CHAR));
        let message = refused(&zalgo);
        assert!(message.contains("too many marks"), "{message}");
        let message = refused(&"x".repeat(100_000));
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn excerpts_are_short() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(1000);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), MAX_ECHO_CHARS + 1);
        assert!(cut.ends_with('…'));
        let exact = "x".repeat(MAX_ECHO_CHARS);
        assert_eq!(excerpt(&exact), exact);
        let err = validate_track_id(&format!("{} space", "x".repeat(120))).unwrap_err();
        assert!(err.message.chars().count() < 150, "{}", err.message);
    }

    #[test]
    fn track_ids() {
        assert!(validate_track_id("3f2c-9a_video.1").is_ok());
        assert!(validate_track_id("{a1b2c3d4-0000-4000-8000-000000000000}").is_ok());
        assert!(validate_track_id("with space").is_err());
        assert!(validate_track_id("colon:no").is_err());
        assert!(validate_track_id("").is_err());
    }

    #[test]
    fn chat_texts() {
        assert_eq!(validate_chat_text("  hi\n").expect("ok"), "hi");
        assert_eq!(
            validate_chat_text("line 1\nline 2\tx").expect("ok"),
            "line 1\nline 2\tx"
        );
        assert_eq!(validate_chat_text("a\r\nb\rc").expect("ok"), "a\nb\nc");
        assert_eq!(
            validate_chat_text(" \n ").unwrap_err().code,
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            validate_chat_text("bell\u{7}").unwrap_err().code,
            ErrorCode::InvalidMessage
        );
        // The limit counts bytes after trimming: padding does not count, multi-byte text does.
        let padded = format!("  {}  ", "x".repeat(MAX_CHAT_BYTES));
        assert!(validate_chat_text(&padded).is_ok());
        let err = validate_chat_text(&"é".repeat(MAX_CHAT_BYTES / 2 + 1)).unwrap_err();
        assert_eq!(err.code, ErrorCode::MessageTooLong);
    }

    #[test]
    fn reasons() {
        assert_eq!(validate_reason(None).expect("ok"), None);
        assert_eq!(validate_reason(Some("  ")).expect("ok"), None);
        assert_eq!(
            validate_reason(Some(" off topic ")).expect("ok").as_deref(),
            Some("off topic")
        );
        assert!(validate_reason(Some(&"x".repeat(201))).is_err());
    }

    #[test]
    fn metadata_size() {
        assert!(validate_metadata(&serde_json::json!({"avatar": "x"})).is_ok());
        let big = serde_json::json!({"blob": "x".repeat(MAX_METADATA_BYTES)});
        assert!(validate_metadata(&big).is_err());
    }
}
