//! `--auth token`: a join must carry an invitation signed with the server's secret. Every way
//! a token can be wrong is refused with its own `join_error` code, before the room is looked at;
//! a valid token's grants decide who moderates and who may publish.

use std::time::Duration;
use videoroom_protocol::{ClientMessage, ErrorCode, PROTOCOL_VERSION, RoomName, ServerMessage};
use videoroom_server::auth::{Authority, Claims, unix_now};
use videoroom_server::{AuthMode, Config};
use videoroom_testkit::*;

const SECRET: &str = "a test secret of at least 32 bytes!!";
const ROOM: &str = "board";

fn config() -> Config {
    Config {
        auth: AuthMode::Token,
        secret: Some(SECRET.into()),
        ..test_config()
    }
}

fn sign(claims: &Claims) -> String {
    Authority::new(SECRET.as_bytes())
        .expect("secret")
        .issue(claims)
        .expect("signs")
}

fn claims() -> Claims {
    Claims::new(ROOM, unix_now(), Duration::from_secs(3600))
}

async fn join(
    client: &mut RawClient,
    room: &str,
    name: &str,
    token: Option<String>,
) -> ServerMessage {
    client
        .send(&ClientMessage::Join {
            protocol_version: PROTOCOL_VERSION,
            room: RoomName::new(room),
            display_name: name.into(),
            metadata: None,
            resume_token: None,
            token,
        })
        .await;
    client.recv().await
}

fn refusal(m: &ServerMessage) -> (ErrorCode, String) {
    match m {
        ServerMessage::JoinError { code, message } => (*code, message.clone()),
        other => panic!("expected join_error, got {other:?}"),
    }
}

#[tokio::test]
async fn every_bad_token_is_refused_with_its_own_code() {
    let server = start_server(config()).await;
    let url = ws_url(&server);
    // Someone is in the room: a refusal must not reveal it.
    let mut inside = RawClient::connect(&url).await;
    assert!(matches!(
        join(&mut inside, ROOM, "Grace", Some(sign(&claims()))).await,
        ServerMessage::Joined { .. }
    ));

    let now = unix_now();
    let mut expired = claims();
    expired.exp = now - 3600;
    let mut early = claims();
    early.nbf = Some(now + 3600);
    let mut named = claims();
    named.name = Some("Ada".into());
    let foreign = Authority::new(b"another secret, also 32 bytes long")
        .expect("secret")
        .issue(&claims())
        .expect("signs");
    let unsigned = {
        let signed = sign(&claims());
        let mut parts = signed.split('.');
        let (_, body) = (parts.next(), parts.next().expect("body"));
        // {"alg":"none","typ":"JWT"}
        format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{body}.")
    };
    let cases: Vec<(&str, Option<String>, &str, ErrorCode)> = vec![
        ("no token", None, "Ada", ErrorCode::TokenMissing),
        (
            "garbage",
            Some("not-a-token".into()),
            "Ada",
            ErrorCode::TokenInvalid,
        ),
        (
            "another secret",
            Some(foreign),
            "Ada",
            ErrorCode::TokenInvalid,
        ),
        ("alg none", Some(unsigned), "Ada", ErrorCode::TokenInvalid),
        (
            "expired",
            Some(sign(&expired)),
            "Ada",
            ErrorCode::TokenExpired,
        ),
        (
            "not yet valid",
            Some(sign(&early)),
            "Ada",
            ErrorCode::TokenNotYetValid,
        ),
        (
            "other name",
            Some(sign(&named)),
            "Linus",
            ErrorCode::TokenWrongName,
        ),
    ];
    let mut c = RawClient::connect(&url).await;
    for (what, token, name, code) in cases {
        let (got, message) = refusal(&join(&mut c, ROOM, name, token).await);
        assert_eq!(got, code, "{what}: {message}");
        assert!(
            !message.contains("Grace"),
            "{what} reveals who is in: {message}"
        );
        assert!(
            message.len() > 20,
            "{what}: a message a person can act on: {message}"
        );
    }
    let (got, _) = refusal(&join(&mut c, "elsewhere", "Ada", Some(sign(&claims()))).await);
    assert_eq!(got, ErrorCode::TokenWrongRoom);
    // The refused connection can still join with a good token; nobody saw the refusals.
    assert!(matches!(
        join(&mut c, ROOM, "Ada", Some(sign(&named))).await,
        ServerMessage::Joined { .. }
    ));
    let first = inside
        .recv_until(|m| !matches!(m, ServerMessage::Pong { .. }))
        .await;
    match first {
        ServerMessage::PeerJoined { peer } => assert_eq!(peer.display_name, "Ada"),
        other => panic!("Grace's first message is {other:?}"),
    }
}

#[tokio::test]
async fn grants_decide_who_moderates_and_who_publishes() {
    let server = start_server(config()).await;
    let url = ws_url(&server);
    // First in, without the moderator grant: no moderator (token rooms don't use join order).
    let mut viewer_claims = claims();
    viewer_claims.grants.publish = false;
    let mut viewer = RawClient::connect(&url).await;
    match join(&mut viewer, ROOM, "Viewer", Some(sign(&viewer_claims))).await {
        ServerMessage::Joined { moderator, .. } => assert!(!moderator),
        other => panic!("{other:?}"),
    }
    let mut host_claims = claims();
    host_claims.grants.moderator = true;
    let mut host = RawClient::connect(&url).await;
    match join(&mut host, ROOM, "Host", Some(sign(&host_claims))).await {
        ServerMessage::Joined { moderator, .. } => assert!(moderator),
        other => panic!("{other:?}"),
    }
    // The viewer may not publish: its offer's tracks are refused before anything else.
    let offer = |id: &str| ClientMessage::SdpOffer {
        sdp: "v=0\r\n".into(),
        tracks: vec![videoroom_protocol::PublishedTrack {
            track_id: videoroom_protocol::TrackId::new(id),
            source: videoroom_protocol::TrackSource::Camera,
            muted: false,
        }],
    };
    viewer.send(&offer("viewer-cam")).await;
    match viewer
        .recv_until(|m| matches!(m, ServerMessage::Error { .. }))
        .await
    {
        ServerMessage::Error { code, message } => {
            assert_eq!(code, ErrorCode::PublishNotAllowed, "{message}");
        }
        _ => unreachable!(),
    }
    // The host may: its (junk) offer gets as far as the SDP parser.
    host.send(&offer("host-cam")).await;
    match host
        .recv_until(|m| matches!(m, ServerMessage::Error { .. }))
        .await
    {
        ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::InvalidSdp),
        _ => unreachable!(),
    }
    // The moderator grant is real: the host locks, the viewer cannot.
    viewer.send(&ClientMessage::LockRoom { locked: true }).await;
    match viewer
        .recv_until(|m| matches!(m, ServerMessage::Error { .. }))
        .await
    {
        ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::NotModerator),
        _ => unreachable!(),
    }
    host.send(&ClientMessage::LockRoom { locked: true }).await;
    host.recv_until(|m| matches!(m, ServerMessage::RoomUpdated { locked: true, .. }))
        .await;
    // With the host gone nobody inherits the grant in a token room.
    host.send(&ClientMessage::Leave).await;
    let next = viewer
        .recv_until(|m| {
            matches!(
                m,
                ServerMessage::PeerLeft { .. } | ServerMessage::PeerUpdated { .. }
            )
        })
        .await;
    assert!(matches!(next, ServerMessage::PeerLeft { .. }), "{next:?}");
    viewer
        .send(&ClientMessage::Chat {
            text: "still here".into(),
            to: None,
        })
        .await;
    let echo = viewer
        .recv_until(|m| {
            matches!(
                m,
                ServerMessage::Chat { .. } | ServerMessage::PeerUpdated { .. }
            )
        })
        .await;
    assert!(matches!(echo, ServerMessage::Chat { .. }), "{echo:?}");
}

#[tokio::test]
async fn open_servers_ignore_tokens() {
    let server = start_server(test_config()).await;
    let mut c = RawClient::connect(&ws_url(&server)).await;
    assert!(matches!(
        join(&mut c, ROOM, "Ada", Some("whatever".into())).await,
        ServerMessage::Joined {
            moderator: true,
            ..
        }
    ));
}

#[tokio::test]
async fn the_token_command_prints_a_token_the_server_takes_and_a_link() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_videoroom-server"))
        .args([
            "--secret",
            SECRET,
            "--public-url",
            "https://meet.example.org/",
        ])
        .args([
            "token",
            "--room",
            ROOM,
            "--name",
            "Ada",
            "--ttl",
            "10m",
            "--moderator",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf8");
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .expect("a token line")
        .to_owned();
    let link = text
        .lines()
        .find_map(|l| l.strip_prefix("invite link: "))
        .expect("a link line");
    assert_eq!(
        link,
        format!("https://meet.example.org/r/{ROOM}#token={token}")
    );

    let server = start_server(config()).await;
    let mut c = RawClient::connect(&ws_url(&server)).await;
    match join(&mut c, ROOM, "Ada", Some(token)).await {
        ServerMessage::Joined { moderator, .. } => assert!(moderator, "--moderator grants it"),
        other => panic!("{other:?}"),
    }
    // Without the secret there is no token, and the reason says what is missing.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_videoroom-server"))
        .args(["token", "--room", ROOM])
        .env_remove("VIDEOROOM_SECRET")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("secret"));
}

#[tokio::test]
async fn a_named_invitation_keeps_its_name_in_the_room() {
    let server = start_server(config()).await;
    let mut named = claims();
    named.name = Some("Guest".into());
    let mut c = RawClient::connect(&ws_url(&server)).await;
    assert!(matches!(
        join(&mut c, ROOM, "Guest", Some(sign(&named))).await,
        ServerMessage::Joined { .. }
    ));
    c.send(&ClientMessage::UpdatePeer {
        display_name: Some("CEO".into()),
        metadata: None,
    })
    .await;
    match c
        .recv_until(|m| {
            matches!(
                m,
                ServerMessage::Error { .. } | ServerMessage::PeerUpdated { .. }
            )
        })
        .await
    {
        ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::InvalidDisplayName),
        other => panic!("the rename went through: {other:?}"),
    }
    // Metadata alone may still change.
    c.send(&ClientMessage::UpdatePeer {
        display_name: None,
        metadata: Some(serde_json::json!({"avatar": "🦊"})),
    })
    .await;
    match c
        .recv_until(|m| {
            matches!(
                m,
                ServerMessage::Error { .. } | ServerMessage::PeerUpdated { .. }
            )
        })
        .await
    {
        ServerMessage::PeerUpdated { peer } => assert_eq!(peer.display_name, "Guest"),
        other => panic!("{other:?}"),
    }
}
