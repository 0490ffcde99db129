//! Who may join: open rooms, or signed tokens (JWT, HS256) naming the room, optionally the
//! display name, a validity window and grants (publish, subscribe, moderator).
//!
//! Pure over explicit time: [`Authority::verify`] takes `now` (seconds since the Unix epoch), so
//! tests step time instead of waiting for a token to expire. jsonwebtoken checks the signature
//! and the algorithm (only HS256 is accepted: `alg: none` and every other algorithm are
//! refused); validity and room are checked here.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use videoroom_protocol::ErrorCode;

/// Tolerated clock difference between the token's issuer and this server, in seconds.
pub const LEEWAY_SECS: u64 = 30;
/// Shortest secret taken, in bytes (HS256 wants at least 256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// What a participant may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Grants {
    /// May publish tracks.
    pub publish: bool,
    /// May receive the others' tracks.
    pub subscribe: bool,
    /// May moderate the room.
    pub moderator: bool,
}

impl Default for Grants {
    /// A participant of an open room: publishes and subscribes; moderation is decided by the
    /// room (its first participant).
    fn default() -> Self {
        Self {
            publish: true,
            subscribe: true,
            moderator: false,
        }
    }
}

/// The token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The room: an exact name, a prefix ending in `*` (`team-*`), or `*` for any room.
    pub room: String,
    /// If present, the display name the holder must join with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Expiry (seconds since the Unix epoch).
    pub exp: u64,
    /// Not valid before (seconds since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// What the holder may do.
    #[serde(default)]
    pub grants: Grants,
}

impl Claims {
    /// Claims for `room`, valid from `now` for `ttl`.
    pub fn new(room: impl Into<String>, now: u64, ttl: Duration) -> Self {
        Self {
            room: room.into(),
            name: None,
            exp: now.saturating_add(ttl.as_secs()),
            nbf: Some(now),
            iat: Some(now),
            grants: Grants::default(),
        }
    }

    /// Whether the claim covers `room` (the server's NFC form), whatever form the issuer used.
    fn allows_room(&self, room: &str) -> bool {
        use unicode_normalization::UnicodeNormalization;
        let nfc = |s: &str| s.nfc().collect::<String>();
        match self.room.strip_suffix('*') {
            Some(prefix) => room.starts_with(&nfc(prefix)),
            None => nfc(&self.room) == room,
        }
    }
}

/// What a valid token admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// What the holder may do.
    pub grants: Grants,
    /// The token names the holder: the display name may not be changed in the room.
    pub fixed_name: bool,
}

impl Admission {
    /// An open room's participant.
    pub fn open() -> Self {
        Self {
            grants: Grants::default(),
            fixed_name: false,
        }
    }
}

/// Why a token was refused. Each has its own `join_error` code; the messages say what to do and
/// reveal nothing of the room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The room needs a token and the join carried none.
    #[error(
        "this server needs an invitation: open the invite link you were sent, or ask the organizer for one"
    )]
    Missing,
    /// Not a token we signed (bad signature, another algorithm, `alg: none`, garbage).
    #[error("the invitation is not valid on this server: ask the organizer for a new link")]
    Invalid,
    /// Past its expiry.
    #[error("the invitation has expired: ask the organizer for a new link")]
    Expired,
    /// Before its start.
    #[error("the invitation is not valid yet: try again at the meeting's start")]
    NotYetValid,
    /// For another room.
    #[error("the invitation is for another room: open the link you were sent as it is")]
    WrongRoom,
    /// For another display name.
    #[error("the invitation is for the name {0:?}: join with that name")]
    WrongName(String),
}

impl TokenError {
    /// The `join_error` code.
    pub fn code(&self) -> ErrorCode {
        match self {
            TokenError::Missing => ErrorCode::TokenMissing,
            TokenError::Invalid => ErrorCode::TokenInvalid,
            TokenError::Expired => ErrorCode::TokenExpired,
            TokenError::NotYetValid => ErrorCode::TokenNotYetValid,
            TokenError::WrongRoom => ErrorCode::TokenWrongRoom,
            TokenError::WrongName(_) => ErrorCode::TokenWrongName,
        }
    }
}

/// Signs and checks tokens with the server's secret.
pub struct Authority {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authority { .. }")
    }
}

impl Authority {
    /// An authority over `secret` (at least [`MIN_SECRET_BYTES`]).
    pub fn new(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the token secret is {} bytes; use at least {MIN_SECRET_BYTES} (e.g. `openssl rand -hex 32`)",
                secret.len()
            ));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        // Time and room are checked by `verify` against an explicit `now`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        })
    }

    /// A signed token carrying `claims`.
    pub fn issue(&self, claims: &Claims) -> Result<String, String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| format!("cannot sign the token: {e}"))
    }

    /// Checks `token` for a join of `room` as `name` at `now` (seconds since the Unix epoch);
    /// returns its grants, and whether it fixes the name.
    pub fn verify(
        &self,
        token: Option<&str>,
        room: &str,
        name: &str,
        now: u64,
    ) -> Result<Admission, TokenError> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::Missing)?;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        if now > claims.exp.saturating_add(LEEWAY_SECS) {
            return Err(TokenError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| now.saturating_add(LEEWAY_SECS) < nbf)
        {
            return Err(TokenError::NotYetValid);
        }
        if !claims.allows_room(room) {
            return Err(TokenError::WrongRoom);
        }
        // Names are compared as the server keeps them (NFC), whatever form the issuer used.
        if let Some(expected) = &claims.name
            && videoroom_protocol::validate_display_name(expected).as_deref() != Ok(name)
        {
            return Err(TokenError::WrongName(expected.clone()));
        }
        Ok(Admission {
            grants: claims.grants,
            fixed_name: claims.name.is_some(),
        })
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_800_000_000;

    fn authority() -> Authority {
        Authority::new(SECRET).expect("secret long enough")
    }

    fn token(claims: &Claims) -> String {
        authority().issue(claims).expect("signs")
    }

    #[test]
    fn a_valid_token_gives_its_grants() {
        let mut claims = Claims::new("standup", NOW, Duration::from_secs(3600));
        claims.grants.moderator = true;
        let t = token(&claims);
        let grants = authority()
            .verify(Some(&t), "standup", "Ada", NOW + 10)
            .expect("valid")
            .grants;
        assert!(grants.moderator && grants.publish && grants.subscribe);
    }

    #[test]
    fn validity_window_with_leeway() {
        let t = token(&Claims::new("r", NOW, Duration::from_secs(60)));
        let a = authority();
        assert!(a.verify(Some(&t), "r", "x", NOW + 60 + LEEWAY_SECS).is_ok());
        assert_eq!(
            a.verify(Some(&t), "r", "x", NOW + 61 + LEEWAY_SECS),
            Err(TokenError::Expired)
        );
        assert!(a.verify(Some(&t), "r", "x", NOW - LEEWAY_SECS).is_ok());
        assert_eq!(
            a.verify(Some(&t), "r", "x", NOW - LEEWAY_SECS - 1),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn rooms_exact_prefix_or_any() {
        let a = authority();
        let exact = token(&Claims::new("team", NOW, Duration::from_secs(60)));
        assert!(a.verify(Some(&exact), "team", "x", NOW).is_ok());
        assert_eq!(
            a.verify(Some(&exact), "team-2", "x", NOW),
            Err(TokenError::WrongRoom)
        );
        let prefix = token(&Claims::new("team-*", NOW, Duration::from_secs(60)));
        assert!(a.verify(Some(&prefix), "team-2", "x", NOW).is_ok());
        assert_eq!(
            a.verify(Some(&prefix), "other", "x", NOW),
            Err(TokenError::WrongRoom)
        );
        let any = token(&Claims::new("*", NOW, Duration::from_secs(60)));
        assert!(a.verify(Some(&any), "anything", "x", NOW).is_ok());
        // A decomposed "é" in the claim covers the server's composed room name.
        let decomposed = token(&Claims::new("Cafe\u{301}", NOW, Duration::from_secs(60)));
        assert!(a.verify(Some(&decomposed), "Caf\u{e9}", "x", NOW).is_ok());
    }

    #[test]
    fn a_named_token_is_for_that_name_only() {
        let mut claims = Claims::new("r", NOW, Duration::from_secs(60));
        claims.name = Some("Ada".into());
        let t = token(&claims);
        assert!(
            authority()
                .verify(Some(&t), "r", "Ada", NOW)
                .is_ok_and(|a| a.fixed_name)
        );
        assert_eq!(
            authority().verify(Some(&t), "r", "Grace", NOW),
            Err(TokenError::WrongName("Ada".into()))
        );
        // A decomposed "é" in the token matches the server's composed (NFC) display name.
        claims.name = Some("Rene\u{301}".into());
        let t = token(&claims);
        assert!(authority().verify(Some(&t), "r", "Ren\u{e9}", NOW).is_ok());
    }

    #[test]
    fn forged_unsigned_and_foreign_tokens_are_invalid() {
        let a = authority();
        assert_eq!(a.verify(None, "r", "x", NOW), Err(TokenError::Missing));
        assert_eq!(
            a.verify(Some("  "), "r", "x", NOW),
            Err(TokenError::Missing)
        );
        assert_eq!(
            a.verify(Some("not.a.token"), "r", "x", NOW),
            Err(TokenError::Invalid)
        );
        // Signed with another secret.
        let other = Authority::new(b"another secret of thirty-two byte").expect("ok");
        let foreign = other
            .issue(&Claims::new("r", NOW, Duration::from_secs(60)))
            .expect("signs");
        assert_eq!(
            a.verify(Some(&foreign), "r", "x", NOW),
            Err(TokenError::Invalid)
        );
        // `alg: none`, unsigned, with the same claims.
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims =
            serde_json::to_vec(&Claims::new("r", NOW, Duration::from_secs(60))).expect("json");
        let none = format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(claims)
        );
        assert_eq!(
            a.verify(Some(&none), "r", "x", NOW),
            Err(TokenError::Invalid)
        );
        // HS512 with the right secret is still not HS256.
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &Claims::new("r", NOW, Duration::from_secs(60)),
            &EncodingKey::from_secret(SECRET),
        )
        .expect("signs");
        assert_eq!(
            a.verify(Some(&hs512), "r", "x", NOW),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(Authority::new(b"short").is_err());
    }
}
