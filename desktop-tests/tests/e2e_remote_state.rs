//! What the app shows of someone else's camera and microphone: a person joins a room, a bot
//! joins after them with its camera and microphone on, then turns both off. The bot's tile
//! first draws its video without the muted icon and is highlighted as speaking (its tone), then
//! shows the initials placeholder and the muted-microphone icon and is no longer highlighted;
//! the app's own tile is untouched.
//!
//! Same prerequisites as `e2e.rs`; logs in `<target>/e2e/remote-state/`.

use std::time::{Duration, Instant};
use videoroom_desktop_tests::bot::BotSpec;
use videoroom_desktop_tests::driver::{Launched, Session, testid};
use videoroom_desktop_tests::{within, work_dir};
use videoroom_testkit::{start_server, test_config, ws_url};

const ROOM: &str = "remote-state";
const BOT: &str = "Grace Hopper";
const ME: &str = "Ada";
/// When the bot turns its camera and microphone off, after it joined. Its video must be on
/// the app's screen before that: first frames normally arrive within a second.
const OFF_AFTER: &str = "10s";
const BOUND: Duration = Duration::from_secs(20);
const SCENARIO_BOUND: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_camera_off_shows_initials_and_mic_off_shows_the_icon() {
    let started = Instant::now();
    let work = work_dir("remote-state");
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let app = Launched::start(&work, true).await;
    let bot_log = work.join("bot.log");
    let outcome = within(SCENARIO_BOUND, async {
        let s = &app.session;
        s.join(&url, ROOM, ME).await?;
        // The bot comes in once Ada is in the room, so its timer starts after her join.
        let mut spec = BotSpec::publishing(&url, ROOM, BOT, &bot_log);
        spec.args
            .extend(["--camera-off-at", OFF_AFTER, "--mic-off-at", OFF_AFTER].map(String::from));
        let _bot = spec.spawn();
        scenario(s).await
    })
    .await;
    app.conclude(&work, outcome, &[("bot output", &bot_log)])
        .await;
    server.shutdown(Duration::from_secs(2)).await;
    eprintln!("e2e passed in {:.1?}", started.elapsed());
}

async fn scenario(s: &Session) -> Result<(), String> {
    let step = Instant::now();
    let tile = format!(r#"{}[data-name="{BOT}"]"#, testid("tile"));
    let mine = format!(r#"{}[data-self="true"]"#, testid("tile"));
    s.wait_css(&tile, BOUND).await?;

    // Camera and microphone on: video drawn, no placeholder, no muted icon.
    s.wait_drawn(BOT, BOUND).await?;
    let before = (
        s.attr(&tile, "data-camera-off").await?,
        s.attr(&tile, "data-mic-muted").await?,
        s.count(&format!("{tile} .placeholder")).await?,
        s.count(&format!("{tile} .muted-icon")).await?,
    );
    let on = (Some("false".to_owned()), Some("false".to_owned()), 0, 0);
    if before != on {
        return Err(format!(
            "with {BOT}'s camera and microphone on, the tile shows (camera-off, mic-muted, \
             placeholders, muted icons) = {before:?}; expected {on:?}"
        ));
    }
    eprintln!("{BOT}'s video is on screen ({:.1?})", step.elapsed());
    // Its tone is loud enough to count as speaking: the tile is highlighted.
    s.wait_attr(&tile, "data-speaking", "true", BOUND).await?;
    eprintln!(
        "{BOT}'s tile is highlighted as speaking ({:.1?})",
        step.elapsed()
    );

    // Both off: initials in place of the video, the muted icon by the name.
    s.wait_attr(&tile, "data-camera-off", "true", BOUND).await?;
    s.wait_attr(&tile, "data-mic-muted", "true", BOUND).await?;
    let avatar = s
        .wait_css(&format!("{tile} .placeholder .avatar"), BOUND)
        .await?;
    let initials = avatar.text().await.map_err(|e| e.to_string())?;
    if initials.trim() != "GH" {
        return Err(format!(
            "{BOT}'s placeholder shows {initials:?}, not \"GH\""
        ));
    }
    // A muted microphone does not speak.
    s.wait_attr(&tile, "data-speaking", "false", BOUND).await?;
    let icon = s.wait_css(&format!("{tile} .muted-icon"), BOUND).await?;
    if !icon.is_displayed().await.map_err(|e| e.to_string())? {
        return Err(format!(
            "{BOT}'s muted-microphone icon is in the page but hidden"
        ));
    }
    // Ada's own tile does not change with someone else's devices.
    let own = (
        s.attr(&mine, "data-camera-off").await?,
        s.attr(&mine, "data-mic-muted").await?,
    );
    if own != (Some("false".to_owned()), Some("false".to_owned())) {
        return Err(format!("{ME}'s own tile turned to {own:?}"));
    }
    eprintln!(
        "{BOT}'s camera and microphone went off: initials {initials:?}, muted icon shown ({:.1?})",
        step.elapsed()
    );
    Ok(())
}
