//! Screen sharing in the web app (the browser media backend), end to end: `videoroom-server`
//! serves the built UI, headless Chromium joins a room at `/r/ROOM`, then
//!
//! - a bot shares a screen (`--screen pattern`, stopping after `--screen-for`): the page turns
//!   to the presentation layout (`data-layout="presentation"`), the stage tile is the bot's
//!   screen and plays it (frames drawn rise, pixels change); when the bot stops, the grid is
//!   back;
//! - the page shares its own screen through the control bar's `share-screen` button: the
//!   button is pressed, our "Your screen" tile plays the capture, the bot's `--events` show a
//!   `track_added` of source `screen` from the page and `track_ready` (its first frame
//!   decoded); the button again stops it, the bot sees `track_removed`, and its
//!   `--stats-json` counts the frames it decoded of the page's screen.
//!
//! No dialog, headless: Debian's Chromium answers `getDisplayMedia` with a fake 1920×1080
//! "screen" when it runs with `--use-fake-ui-for-media-stream` (accepts the picker) **and**
//! `--use-fake-device-for-media-stream` (the fake capture device), both among the driver's
//! flags (`browser/driver.mjs`). The first alone fails with NotReadableError (no screen to
//! capture headless); without it the picker cannot show and the page is closed.
//! `--auto-select-desktop-capture-source`, `--auto-accept-this-tab-capture` and
//! `--auto-select-tab-capture-source-by-title` are not needed (and without the fake UI do not
//! help). No user gesture is needed either with these flags.
//!
//! Needs the built web app (`npm run build` in ui/), `cargo build -p videoroom-bot -p
//! videoroom-server`, Debian's chromium and `npm ci` in desktop-tests/browser (see
//! `e2e_browser.rs`). Logs in `<target>/e2e/browser-screen/`.

use std::path::Path;
use std::time::{Duration, Instant};
use videoroom_desktop_tests::bot::{self, BotSpec};
use videoroom_desktop_tests::browser::{Browser, WebServer, web_root};
use videoroom_desktop_tests::driver::testid;
use videoroom_desktop_tests::procs::Group;
use videoroom_desktop_tests::{tail, wait_for, within, work_dir};

const ROOM: &str = "browser-screen";
const BOT: &str = "Grace";
const BOT_SCREEN: &str = "Grace's screen";
const WEB: &str = "Chrome";
/// Our own share's tile in the page.
const OWN_SCREEN: &str = "Your screen";
/// The size of the bot's shared pattern (the stage shows it as it is).
const BOT_SCREEN_SIZE: (u64, u64) = (1280, 720);
/// How long the bot shares: time enough to see its screen play on the stage.
const BOT_SHARES_FOR: Duration = Duration::from_secs(20);
/// Conditions that normally hold within a few seconds (Chromium, a bot and the server on two
/// cores).
const BOUND: Duration = Duration::from_secs(30);
/// Frames the page must encode of its screen after the bot decoded the first one, before the
/// share stops (3 s at 15 fps).
const MORE_FRAMES: u64 = 45;
/// Frames the bot must have decoded of the page's screen by then.
const MIN_DECODED: u64 = 30;
const SCENARIO_BOUND: Duration = Duration::from_secs(170);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bots_screen_takes_the_stage_and_the_browser_shares_its_own() {
    let started = Instant::now();
    let work = work_dir("browser-screen");
    let dist = web_root();
    let server = WebServer::start(&dist, &work.join("server.log")).await;
    let browser = Browser::start(None, &work.join("browser.log")).await;
    let bot_log = work.join("bot.log");
    let outcome = within(SCENARIO_BOUND, scenario(&browser, &server, &work)).await;
    let browser_tail = browser.log_tail(40);
    browser.quit().await;
    let server_tail = server.log_tail(20);
    server.stop().await;
    if let Err(e) = outcome {
        panic!(
            "{e}\n\n--- browser driver and pages ---\n{browser_tail}\n\n--- server ---\n\
             {server_tail}\n\n--- bot ---\n{}\n\n--- bot events ---\n{}",
            tail(&bot_log, 20),
            tail(&work.join("bot-events.jsonl"), 30)
        );
    }
    eprintln!("e2e_browser_screen passed in {:.1?}", started.elapsed());
}

async fn scenario(browser: &Browser, server: &WebServer, work: &Path) -> Result<(), String> {
    let step = Instant::now();
    let room = testid("room");
    browser
        .open(WEB, &format!("{}/r/{ROOM}", server.http_url()))
        .await?;
    browser.wait_css(WEB, &testid("lobby"), BOUND).await?;
    browser.type_into(WEB, "display-name", WEB).await?;
    browser.click(WEB, "join").await?;
    browser.wait_css(WEB, &room, BOUND).await?;
    // Nobody shares yet: the grid.
    browser
        .wait_css(WEB, &format!(r#"{room}[data-layout="grid"]"#), BOUND)
        .await?;
    eprintln!("{WEB} in the room, grid layout ({:.1?})", step.elapsed());

    let events = work.join("bot-events.jsonl");
    let stats = work.join("bot-stats.json");
    let mut spec = BotSpec::publishing(&server.ws_url(), ROOM, BOT, &work.join("bot.log"));
    spec.args.extend([
        "--screen".to_owned(),
        "pattern".to_owned(),
        "--screen-size".to_owned(),
        format!("{}x{}", BOT_SCREEN_SIZE.0, BOT_SCREEN_SIZE.1),
        "--screen-for".to_owned(),
        format!("{}s", BOT_SHARES_FOR.as_secs()),
    ]);
    spec.events = Some(events.clone());
    spec.stats = Some(stats.clone());
    let mut bot = spec.spawn();

    bots_screen_on_the_stage(browser, &events).await?;
    eprintln!("(a) done ({:.1?})", step.elapsed());
    the_browser_shares(browser, &mut bot, &events, &stats).await?;
    eprintln!("(b) done ({:.1?})", step.elapsed());
    Ok(())
}

/// (a) The bot shares: presentation layout, its screen plays on the stage; it stops: the grid.
async fn bots_screen_on_the_stage(browser: &Browser, events: &Path) -> Result<(), String> {
    let spawned = Instant::now();
    let room = testid("room");
    browser
        .wait_css(
            WEB,
            &format!(r#"{room}[data-layout="presentation"]"#),
            BOUND,
        )
        .await?;
    let presentation_at = spawned.elapsed();
    browser
        .wait_css(
            WEB,
            &format!(r#"{}[data-name="{BOT_SCREEN}"]"#, testid("stage-tile")),
            BOUND,
        )
        .await?;
    // The stage plays the bot's screen: frames drawn rise and its pixels change.
    let drawn = browser.wait_plays(WEB, BOT_SCREEN, BOUND).await?;
    let playing_at = spawned.elapsed();
    let probe = browser.probe(WEB, BOT_SCREEN).await?;
    let shared = bot::find_event(events, "screen_share_started", BOUND, |_| true).await?;
    // The bot's event times count from its start, about when it was spawned.
    let share_ms = shared["t_ms"].as_u64().unwrap_or(0);
    eprintln!(
        "{BOT} shares at {share_ms} ms after its start; the page shows the presentation layout \
         after {presentation_at:.2?} and plays the screen on the stage after {playing_at:.2?} \
         ({drawn} frames drawn, {}×{})",
        probe["width"], probe["height"]
    );
    let (w, h) = BOT_SCREEN_SIZE;
    if probe["width"].as_u64() != Some(w) || probe["height"].as_u64() != Some(h) {
        return Err(format!(
            "the stage shows {}×{}, the bot shares {w}×{h}: {probe}",
            probe["width"], probe["height"]
        ));
    }

    // `--screen-for` ends the share: the grid comes back, with the bot's camera tile.
    let grid = format!(r#"{room}[data-layout="grid"]"#);
    browser.wait_css(WEB, &grid, BOT_SHARES_FOR + BOUND).await?;
    let back_at = spawned.elapsed();
    let ended = bot::find_event(events, "screen_share_ended", BOUND, |_| true).await?;
    if ended["reason"] != "stopped" {
        return Err(format!("the bot's share ended otherwise: {ended}"));
    }
    let shot = browser.snapshot(WEB).await?;
    let names: Vec<&str> = shot["tiles"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    if !names.contains(&BOT) || names.contains(&BOT_SCREEN) {
        return Err(format!(
            "after the share the grid shows {names:?}: {BOT}'s camera, and no screen, expected"
        ));
    }
    eprintln!(
        "{BOT} stopped sharing at {} ms after its start; the grid is back after {back_at:.2?} \
         (tiles {names:?})",
        ended["t_ms"]
    );
    Ok(())
}

/// (b) The page shares its screen with the control bar's button; the bot decodes it; the
/// button again stops it.
async fn the_browser_shares(
    browser: &Browser,
    bot: &mut Group,
    events: &Path,
    stats: &Path,
) -> Result<(), String> {
    let button = testid("share-screen");
    let clicked = Instant::now();
    browser.click(WEB, "share-screen").await?;
    browser
        .wait_css(WEB, &format!(r#"{button}[aria-pressed="true"]"#), BOUND)
        .await?;
    let added = bot::find_event(events, "track_added", BOUND, |e| {
        e["name"] == WEB && e["source"] == "screen"
    })
    .await?;
    let track_id = added["track_id"]
        .as_str()
        .ok_or_else(|| format!("track_added without a track id: {added}"))?
        .to_owned();
    let added_at = clicked.elapsed();
    bot::find_event(events, "track_ready", BOUND, |e| e["track_id"] == track_id).await?;
    let ready_at = clicked.elapsed();
    // Our own tile plays what we share.
    let own = browser.wait_plays(WEB, OWN_SCREEN, BOUND).await?;
    eprintln!(
        "{WEB} shares: {BOT} got track_added (source screen) {added_at:.2?} after the click, \
         its first frame decoded after {ready_at:.2?}; \"{OWN_SCREEN}\" plays ({own} frames)"
    );

    // The page goes on sending; then the button stops the share.
    let at_ready = encoded(browser).await?;
    let sent = wait_for(
        BOUND,
        &format!("{WEB} encodes {MORE_FRAMES} more frames of its screen"),
        async || {
            let out = browser
                .outbound(WEB, "screen")
                .await?
                .ok_or("no outbound screen stream")?;
            if out["framesEncoded"].as_u64().unwrap_or(0) >= at_ready + MORE_FRAMES {
                Ok(out)
            } else {
                Err(format!("{out}"))
            }
        },
    )
    .await?;
    let stopping = Instant::now();
    browser.click(WEB, "share-screen").await?;
    browser
        .wait_css(WEB, &format!(r#"{button}[aria-pressed="false"]"#), BOUND)
        .await?;
    bot::find_event(events, "track_removed", BOUND, |e| {
        e["track_id"] == track_id
    })
    .await?;
    let removed_at = stopping.elapsed();
    if browser.outbound(WEB, "screen").await?.is_some() {
        return Err(format!(
            "the page still sends a screen after stopping: {}",
            browser.stats(WEB).await?
        ));
    }

    // The bot writes its statistics when it stops.
    bot::stop(bot).await?;
    let screen = bot::remote_track_by_id(stats, &track_id)?;
    let decoded = screen["frames_decoded"].as_u64().unwrap_or(0);
    if decoded < MIN_DECODED || screen["source"] != "screen" {
        return Err(format!(
            "{BOT} decoded {decoded} frames of {WEB}'s screen (at least {MIN_DECODED} expected): {screen:#}"
        ));
    }
    eprintln!(
        "{WEB} sent {} frames ({} px wide, {} packets); stopped: {BOT} saw track_removed after \
         {removed_at:.2?}; {BOT} decoded {decoded} frames of it, first one {} ms after it was added",
        sent["framesEncoded"],
        sent["frameWidth"],
        sent["packetsSent"],
        screen["join_to_first_frame_ms"]
    );
    Ok(())
}

/// Frames the page encoded of its screen so far.
async fn encoded(browser: &Browser) -> Result<u64, String> {
    wait_for(
        BOUND,
        &format!("{WEB} sends its screen"),
        async || match browser.outbound(WEB, "screen").await? {
            Some(out) => Ok(out["framesEncoded"].as_u64().unwrap_or(0)),
            None => Err(format!(
                "no outbound screen in {}",
                browser.stats(WEB).await?
            )),
        },
    )
    .await
}
