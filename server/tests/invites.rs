//! `create_invite`: a moderator gets a signed invitation to the room (token auth) or the room's
//! address (open rooms); the invitation admits its holder with the grants asked for; no one
//! else may ask.

mod common;

use common::*;
use videoroom_protocol::{ClientMessage, ErrorCode, PROTOCOL_VERSION, RoomName, ServerMessage};
use videoroom_server::auth::{Authority, Claims, unix_now};
use videoroom_server::{AuthMode, Config};
use videoroom_testkit::*;

const SECRET: &str = "a test secret of at least 32 bytes!!";
const ROOM: &str = "design review";

fn token_config() -> Config {
    Config {
        auth: AuthMode::Token,
        secret: Some(SECRET.into()),
        public_url: Some("https://meet.example.org".into()),
        ..test_config()
    }
}

fn sign(moderator: bool) -> String {
    let mut claims = Claims::new(ROOM, unix_now(), std::time::Duration::from_secs(600));
    claims.grants.moderator = moderator;
    Authority::new(SECRET.as_bytes())
        .expect("secret")
        .issue(&claims)
        .expect("signs")
}

async fn join_with(url: &str, name: &str, token: String) -> Member {
    let mut client = RawClient::connect(url).await;
    client
        .send(&ClientMessage::Join {
            protocol_version: PROTOCOL_VERSION,
            room: RoomName::new(ROOM),
            display_name: name.into(),
            metadata: None,
            resume_token: None,
            token: Some(token),
        })
        .await;
    let joined = client.recv().await;
    assert!(
        matches!(joined, ServerMessage::Joined { .. }),
        "{name}: {joined:?}"
    );
    Member::new(client, name, joined)
}

fn create(ttl_secs: u64, moderator: bool) -> ClientMessage {
    ClientMessage::CreateInvite {
        ttl_secs,
        moderator,
    }
}

async fn invitation(member: &mut Member) -> (Option<String>, Option<String>, Option<u64>) {
    match member
        .recv_until(|m| matches!(m, ServerMessage::InviteCreated { .. }))
        .await
    {
        ServerMessage::InviteCreated {
            token,
            url,
            expires_at,
        } => (token, url, expires_at),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_moderator_invitation_admits_its_holder_with_the_grants_asked_for() {
    let server = start_server(token_config()).await;
    let url = ws_url(&server);
    let mut grace = join_with(&url, "Grace", sign(true)).await;
    assert!(grace.joined.moderator);

    let before = unix_now();
    grace.send(create(3600, false)).await;
    let (token, link, expires_at) = invitation(&mut grace).await;
    let token = token.expect("a token");
    let expires_at = expires_at.expect("an expiry");
    assert!((before + 3600..=unix_now() + 3600).contains(&expires_at));
    assert_eq!(
        link.as_deref(),
        Some(format!("https://meet.example.org/r/design%20review#token={token}").as_str())
    );
    let ada = join_with(&url, "Ada", token).await;
    assert!(!ada.joined.moderator, "a plain invitation made a moderator");

    grace.send(create(600, true)).await;
    let (token, _, _) = invitation(&mut grace).await;
    let lin = join_with(&url, "Lin", token.expect("a token")).await;
    assert!(lin.joined.moderator, "a moderator invitation did not");
}

#[tokio::test]
async fn only_moderators_may_invite_and_within_the_bounds() {
    let server = start_server(token_config()).await;
    let url = ws_url(&server);
    let mut grace = join_with(&url, "Grace", sign(true)).await;
    let mut ada = join_with(&url, "Ada", sign(false)).await;
    grace
        .recv_until(|m| matches!(m, ServerMessage::PeerJoined { .. }))
        .await;

    ada.send(create(3600, true)).await;
    ada.expect_error(ErrorCode::NotModerator).await;
    for ttl in [0, 59, 30 * 24 * 3600 + 1, u64::MAX] {
        grace.send(create(ttl, false)).await;
        grace.expect_error(ErrorCode::InvalidMessage).await;
    }
    // Nobody else hears of it.
    ada.expect_nothing_pending().await;
}

#[tokio::test]
async fn an_open_room_invitation_is_its_address() {
    let server = start_server(Config {
        public_url: Some("https://meet.example.org/".into()),
        ..test_config()
    })
    .await;
    let url = ws_url(&server);
    let mut first = Member::join(&url, ROOM, "Grace").await;
    let mut second = Member::join(&url, ROOM, "Ada").await;
    first
        .recv_until(|m| matches!(m, ServerMessage::PeerJoined { .. }))
        .await;
    first.send(create(3600, false)).await;
    let (token, link, expires_at) = invitation(&mut first).await;
    assert_eq!((token, expires_at), (None, None));
    assert_eq!(
        link.as_deref(),
        Some("https://meet.example.org/r/design%20review")
    );
    // Moderation rules still hold: the second participant is not the moderator.
    second.send(create(3600, false)).await;
    second.expect_error(ErrorCode::NotModerator).await;
}
