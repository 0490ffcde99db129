//! Issue 11 in the app, against the real server: active speakers and viewer hints. A person
//! joins, a bot joins with its camera and its tone. The bot's tile rings because the server
//! says so (`active_speakers`, from the audio-level extension: the UI store's `serverSpeakers`
//! holds the bot, and its `recentSpeakers` too). Then viewer hints: with our own tile pinned
//! and the stage full-window, the bot's tile is not shown, so the app tells the server 0×0 and
//! the server stops forwarding it (its `paused_tracks` gauge goes to 1); leaving full-window
//! shows the tile again and the gauge goes back to 0.
//!
//! Same prerequisites as `e2e.rs`; logs in `<target>/e2e/speakers-view/`.

use std::time::{Duration, Instant};
use videoroom_desktop_tests::bot::BotSpec;
use videoroom_desktop_tests::driver::{Launched, Session, testid};
use videoroom_desktop_tests::{wait_for, within, work_dir};
use videoroom_testkit::{start_server, test_config, ws_url};

const ROOM: &str = "speakers-view";
const BOT: &str = "Grace Hopper";
const ME: &str = "Ada";
/// Conditions that normally hold within a second or two.
const BOUND: Duration = Duration::from_secs(20);
const SCENARIO_BOUND: Duration = Duration::from_secs(120);
/// WebDriver's key code for Escape.
const ESCAPE: char = '\u{E00C}';

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_speakers_ring_and_a_hidden_tile_pauses_its_video() {
    let started = Instant::now();
    let work = work_dir("speakers-view");
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let metrics = server.metrics();
    let app = Launched::start(&work, false).await;
    let bot_log = work.join("bot.log");
    let outcome = within(SCENARIO_BOUND, async {
        let s = &app.session;
        s.join(&url, ROOM, ME).await?;
        let _bot = BotSpec::publishing(&url, ROOM, BOT, &bot_log).spawn();
        scenario(s, &|| metrics.paused_tracks.get()).await
    })
    .await;
    app.conclude(&work, outcome, &[("bot output", &bot_log)])
        .await;
    server.shutdown(Duration::from_secs(2)).await;
    eprintln!("e2e passed in {:.1?}", started.elapsed());
}

async fn scenario(s: &Session, paused: &(dyn Fn() -> i64 + Sync)) -> Result<(), String> {
    let step = Instant::now();
    let tile = format!(r#"{}[data-name="{BOT}"]"#, testid("tile"));
    s.wait_css(&tile, BOUND).await?;
    s.wait_drawn(BOT, BOUND).await?;
    let bot_id = s
        .attr(&tile, "data-peer")
        .await?
        .ok_or("the bot's tile has no data-peer")?;

    // The ring, from the server's list.
    s.wait_attr(&tile, "data-speaking", "true", BOUND).await?;
    let said = wait_for(BOUND, "the server lists the bot as speaking", async || {
        let state = s.state().await;
        let room = &state["room"];
        let listed = |key: &str| {
            room[key]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|id| id.as_str() == Some(bot_id.as_str())))
        };
        if listed("serverSpeakers") && listed("recentSpeakers") {
            Ok(())
        } else {
            Err(format!(
                "serverSpeakers={} recentSpeakers={}",
                room["serverSpeakers"], room["recentSpeakers"]
            ))
        }
    })
    .await;
    said?;
    eprintln!(
        "{BOT}'s tile rings from the server's active_speakers ({:.1?})",
        step.elapsed()
    );

    // Viewer hints: shown, nothing paused.
    if paused() != 0 {
        return Err(format!(
            "{} tracks paused while everything is on screen",
            paused()
        ));
    }
    // Our own tile on the stage, full-window: the bot's tile is not shown.
    let mine = format!(r#"{}[data-self="true"]"#, testid("tile"));
    let stage = testid("stage-tile");
    s.toggle_pin(&mine, &stage, ("data-self", "true"), BOUND)
        .await?;
    let room = testid("room");
    let hidden_at = Instant::now();
    s.press('f').await?;
    wait_for(
        BOUND,
        "the server pauses the hidden track",
        async || match paused() {
            1 => Ok(()),
            n => Err(format!("paused_tracks={n}")),
        },
    )
    .await?;
    eprintln!(
        "full-window: the bot's video is paused at the server {:.1?} after the key",
        hidden_at.elapsed()
    );
    let shown_at = Instant::now();
    s.press(ESCAPE).await?;
    wait_for(
        BOUND,
        "the server forwards the track again",
        async || match paused() {
            0 => Ok(()),
            n => Err(format!("paused_tracks={n}")),
        },
    )
    .await?;
    let classes = s.attr(&room, "class").await?.unwrap_or_default();
    if classes.split_whitespace().any(|c| c == "full-window") {
        return Err("Escape did not leave full-window".into());
    }
    eprintln!(
        "back from full-window: forwarded again {:.1?} after the key",
        shown_at.elapsed()
    );
    Ok(())
}
