//! Joining a server that admits invitation holders only (`--auth token`) with a pasted invite
//! link: the link fills the server and room fields and shows the invitation; an expired link is
//! refused with a message that says so and the lobby stays; a valid link joins the room, where a
//! bot invited as moderator already is. That link makes the app a moderator too: in the People
//! panel it has the server sign a new invitation; the link shown is this server's and room's,
//! and a second bot joins with its token (as a plain participant, as asked).
//!
//! Same prerequisites as `e2e.rs`; logs in `<target>/e2e/invite/`.

use std::time::{Duration, Instant};
use videoroom_desktop_tests::bot::{self, BotSpec};
use videoroom_desktop_tests::driver::{Launched, Session, testid};
use videoroom_desktop_tests::{wait_for, within, work_dir};
use videoroom_server::auth::{Authority, Claims, unix_now};
use videoroom_server::invite::{base_url, invite_link};
use videoroom_server::{AuthMode, Config};
use videoroom_testkit::{start_server, test_config};

const ROOM: &str = "Board meeting";
const BOT: &str = "Grace";
const ME: &str = "Ada";
const SECRET: &str = "an end-to-end secret of 32+ bytes";
const BOUND: Duration = Duration::from_secs(20);
const SCENARIO_BOUND: Duration = Duration::from_secs(120);
/// WebDriver's Tab key.
const TAB: &str = "\u{E004}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_link_fills_the_lobby_and_joins() {
    let started = Instant::now();
    let work = work_dir("invite");
    let mut config = Config {
        auth: AuthMode::Token,
        secret: Some(SECRET.into()),
        ..test_config()
    };
    let server = start_server(config.clone()).await;
    config.public_url = Some(format!("http://{}", server.local_addr()));
    let authority = Authority::new(SECRET.as_bytes()).expect("secret");
    let sign = |claims: &Claims| authority.issue(claims).expect("signs");
    let now = unix_now();
    let mut valid = Claims::new(ROOM, now, Duration::from_secs(3600));
    valid.grants.moderator = true;
    let valid = sign(&valid);
    let mut expired = Claims::new(ROOM, now - 7200, Duration::from_secs(3600));
    expired.nbf = None;
    let expired = sign(&expired);
    let mut host = Claims::new(ROOM, now, Duration::from_secs(3600));
    host.grants.moderator = true;
    let host = sign(&host);
    let base = base_url(&config);
    let link = |token: &str| invite_link(&base, ROOM, Some(token)).expect("a link");

    let url = format!("ws://{}/ws", server.local_addr());
    let events = work.join("bot-events.jsonl");
    let bot_log = work.join("bot.log");
    let mut spec = BotSpec::new(&url, ROOM, BOT, &bot_log);
    spec.args = [
        "--video",
        "pattern",
        "--audio",
        "none",
        "--duration",
        "180s",
    ]
    .map(String::from)
    .to_vec();
    spec.args.extend(["--token".to_owned(), host]);
    spec.events = Some(events.clone());
    let _grace = spec.spawn();

    let app = Launched::start(&work, true).await;
    let outcome = within(SCENARIO_BOUND, async {
        let s = &app.session;
        s.wait_lobby(Duration::from_secs(60)).await?;
        bot::wait_event(&events, "joined", BOUND, |e| e["moderator"] == true).await?;
        scenario(s, &url, &link(&expired), &link(&valid)).await?;
        bot::wait_event(&events, "peer_joined", BOUND, |e| e["name"] == ME).await?;
        let made = invite_from_the_app(s, &base_url(&config)).await?;
        let token = made
            .split_once("#token=")
            .map(|(_, t)| t.to_owned())
            .ok_or_else(|| format!("no token in the link {made:?}"))?;
        let lin_events = work.join("lin-events.jsonl");
        let mut lin = BotSpec::new(&url, ROOM, "Lin", &work.join("lin.log"));
        lin.args = [
            "--video",
            "none",
            "--audio",
            "none",
            "--duration",
            "60s",
            "--token",
        ]
        .map(String::from)
        .to_vec();
        lin.args.push(token);
        lin.events = Some(lin_events.clone());
        let _lin = lin.spawn();
        bot::wait_event(&lin_events, "joined", BOUND, |e| e["moderator"] == false).await?;
        s.wait_css(&format!(r#"{}[data-name="Lin"]"#, testid("tile")), BOUND)
            .await
            .map(|_| ())
    })
    .await;
    app.conclude(
        &work,
        outcome,
        &[("bot events", &events), ("bot output", &bot_log)],
    )
    .await;
    server.shutdown(Duration::from_secs(2)).await;
    eprintln!("e2e passed in {:.1?}", started.elapsed());
}

async fn scenario(s: &Session, url: &str, expired: &str, valid: &str) -> Result<(), String> {
    let step = Instant::now();
    s.type_into(&testid("display-name"), ME).await?;

    // An expired link: the fields fill in, the join is refused saying why, the lobby stays.
    paste_link(s, expired, url).await?;
    s.click(&testid("join")).await?;
    s.wait_attr(&testid("lobby-error"), "data-kind", "invitation", BOUND)
        .await?;
    let shown = s
        .wait_css(&testid("lobby-error"), BOUND)
        .await?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    if !shown.to_lowercase().contains("expired") {
        return Err(format!("the refusal of an expired link reads {shown:?}"));
    }
    eprintln!("expired link refused: {shown:?} ({:.1?})", step.elapsed());

    // A valid one joins; the bot is there.
    paste_link(s, valid, url).await?;
    s.click(&testid("join")).await?;
    s.wait_css(&testid("room"), BOUND).await?;
    s.wait_css(&format!(r#"{}[data-name="{BOT}"]"#, testid("tile")), BOUND)
        .await?;
    s.wait_drawn(BOT, BOUND).await?;
    eprintln!("joined with the invite link ({:.1?})", step.elapsed());
    Ok(())
}

/// Opens the People panel and has the server sign an invitation (1 day, not as moderator);
/// returns the link the panel shows once it is copied.
async fn invite_from_the_app(s: &Session, base: &str) -> Result<String, String> {
    s.click(&testid("people-toggle")).await?;
    // The moderator's part of the panel shows once `joined` said we moderate.
    // The panel slides in and the tiles move aside: click once the button takes it.
    wait_for(BOUND, "the invite button takes the click", async || {
        s.click(&testid("copy-invite")).await
    })
    .await?;
    let link = wait_for(BOUND, "the panel shows the invite link made", async || {
        let link = s.value(&testid("invite-link")).await?;
        if link.is_empty() {
            Err("no link yet".to_owned())
        } else {
            Ok(link)
        }
    })
    .await?;
    let expected = format!("{base}/r/Board%20meeting#token=");
    if !link.starts_with(&expected) {
        return Err(format!("the invite link {link:?} is not {expected}…"));
    }
    eprintln!("the app made an invite link: {link}");
    Ok(link)
}

/// Types an invite link into the server field and leaves it (Tab; WebDriver cannot paste):
/// the lobby turns it into the server's address, the room and the invitation.
async fn paste_link(s: &Session, link: &str, url: &str) -> Result<(), String> {
    let field = s.wait_css(&testid("server-url"), BOUND).await?;
    field.clear().await.map_err(|e| e.to_string())?;
    field
        .send_keys(&format!("{link}{TAB}"))
        .await
        .map_err(|e| e.to_string())?;
    wait_for(BOUND, "the link fills the lobby", async || {
        let (server, room) = (
            s.value(&testid("server-url")).await?,
            s.value(&testid("room-name")).await?,
        );
        match (server == url, room == ROOM) {
            (true, true) => Ok(()),
            _ => Err(format!("server {server:?}, room {room:?}")),
        }
    })
    .await?;
    let chip = s.wait_css(&testid("invite-chip"), BOUND).await?;
    let text = chip.text().await.map_err(|e| e.to_string())?;
    if !text.contains(ROOM) {
        return Err(format!("the invitation chip reads {text:?}"));
    }
    Ok(())
}
