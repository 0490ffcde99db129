//! Screen sharing in the app, both ways.
//!
//! Viewing: a person is in a room when a bot joins with its camera, its microphone and a shared
//! screen (`--screen pattern`). The room turns to the presentation layout with the bot's screen
//! on the stage, drawing frames whose burned-in numbers rise; the bot's camera stays in its own
//! tile (in the strip), marked as sharing. A double click on that camera tile pins it to the
//! stage, another unpins it (the screen is back); `F` shows the stage full-window and Escape
//! leaves it; the bot leaving brings the grid back.
//!
//! Sharing: the person clicks "Share screen"; the picker lists the Xvfb screen with a live
//! thumbnail (drawn, and changing on the X screen); a click on it shares it. The bot in the room
//! gets a `screen` track from the person and decodes it; the app shows "Your screen" (not on the
//! stage) and the "You are sharing" indicator; `S` stops it and the bot sees the track go.
//!
//! Same prerequisites as `e2e.rs` (the app built with the UI embedded, the bot, Xvfb,
//! tauri-driver, WebKitWebDriver); logs in `<target>/e2e/screen-share/` and
//! `<target>/e2e/screen-share-app/`.

use std::path::Path;
use std::time::{Duration, Instant};
use videoroom_desktop_tests::bot::{self, BotSpec};
use videoroom_desktop_tests::driver::{Launched, Probe, Session, testid};
use videoroom_desktop_tests::{wait_for, within, work_dir};
use videoroom_testkit::{start_server, test_config, ws_url};

const ROOM: &str = "screen-share";
const BOT: &str = "Grace";
const SCREEN: &str = "Grace's screen";
const ME: &str = "Ada";
/// Conditions that normally hold within a second or two.
const BOUND: Duration = Duration::from_secs(20);
const SCENARIO_BOUND: Duration = Duration::from_secs(150);
/// WebDriver's key code for Escape.
const ESCAPE: char = '\u{E00C}';

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_screen_takes_the_stage_pins_and_the_grid_comes_back() {
    let started = Instant::now();
    let work = work_dir("screen-share");
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let app = Launched::start(&work, true).await;
    let bot_log = work.join("bot.log");
    let outcome = within(SCENARIO_BOUND, async {
        let s = &app.session;
        s.join(&url, ROOM, ME).await?;
        // Before anyone shares: the grid.
        s.wait_attr(&testid("room"), "data-layout", "grid", BOUND)
            .await?;
        let mut spec = BotSpec::publishing(&url, ROOM, BOT, &bot_log);
        spec.args.extend(["--screen", "pattern"].map(String::from));
        let bot = spec.spawn();
        scenario(s, bot).await
    })
    .await;
    app.conclude(&work, outcome, &[("bot output", &bot_log)])
        .await;
    server.shutdown(Duration::from_secs(2)).await;
    eprintln!("e2e passed in {:.1?}", started.elapsed());
}

async fn scenario<B>(s: &Session, bot: B) -> Result<(), String> {
    let step = Instant::now();
    let room = testid("room");
    let stage = testid("stage-tile");
    let camera_in_strip = format!(r#"{}[data-name="{BOT}"]"#, testid("strip-tile"));
    let screen_in_strip = format!(r#"{}[data-name="{SCREEN}"]"#, testid("strip-tile"));

    // The share turns the room into the presentation layout, the screen on the stage.
    s.wait_attr(&room, "data-layout", "presentation", BOUND)
        .await?;
    s.wait_attr(&stage, "data-name", SCREEN, BOUND).await?;
    expect_attr(s, &stage, "data-kind", "screen").await?;
    // The stage draws the bot's screen, and it moves: burned-in frame numbers rise.
    let first = s.wait_drawn(SCREEN, BOUND).await?;
    let later = rising(s, SCREEN, &first).await?;
    eprintln!(
        "{SCREEN} is on the stage, frames {:?} → {:?} ({:.1?})",
        first.frame_number,
        later.frame_number,
        step.elapsed()
    );

    // The bot's camera stays in its own tile, in the strip, marked as sharing; the stage is
    // the big one.
    s.wait_css(&camera_in_strip, BOUND).await?;
    expect_attr(s, &camera_in_strip, "data-kind", "person").await?;
    s.wait_attr(&camera_in_strip, "data-sharing", "true", BOUND)
        .await?;
    s.wait_drawn(BOT, BOUND).await?;
    let stage_area = area(s, &stage).await?;
    let strip_area = area(s, &camera_in_strip).await?;
    if stage_area < 4.0 * strip_area {
        return Err(format!(
            "the stage ({stage_area} px²) is not much larger than a strip tile ({strip_area} px²)"
        ));
    }
    let person = format!(r#"{}[data-name="{BOT}"]"#, testid("person"));
    s.click(&testid("people-toggle")).await?;
    s.wait_attr(&person, "data-sharing", "true", BOUND).await?;
    s.wait_css(&format!("{person} {}", testid("person-sharing")), BOUND)
        .await?;
    s.click(&testid("people-toggle")).await?;
    eprintln!(
        "{BOT}'s camera is in the strip, {BOT} is marked as sharing ({:.1?})",
        step.elapsed()
    );

    // A double click on the camera pins it to the stage; the screen goes to the strip.
    s.toggle_pin(&camera_in_strip, &stage, ("data-name", BOT), BOUND)
        .await?;
    expect_attr(s, &stage, "data-pinned", "true").await?;
    s.wait_css(&screen_in_strip, BOUND).await?;
    let camera = s.wait_drawn(BOT, BOUND).await?;
    rising(s, BOT, &camera).await?;
    eprintln!(
        "{BOT}'s camera is pinned to the stage ({:.1?})",
        step.elapsed()
    );

    // Again: unpinned, the screen is back on the stage.
    s.toggle_pin(&stage, &stage, ("data-name", SCREEN), BOUND)
        .await?;
    expect_attr(s, &stage, "data-pinned", "false").await?;
    s.wait_css(&camera_in_strip, BOUND).await?;
    eprintln!(
        "unpinned: {SCREEN} is back on the stage ({:.1?})",
        step.elapsed()
    );

    // F: the stage fills the window, the strip and the controls go; Escape brings them back.
    s.press('f').await?;
    wait_class(s, &room, "full-window", true).await?;
    if s.count(&testid("strip-tile")).await? != 0 {
        // Strip tiles stay in the DOM (their canvases live on) but are not laid out.
        let shown = s
            .client
            .find(fantoccini::Locator::Css(&camera_in_strip))
            .await
            .map_err(|e| e.to_string())?
            .is_displayed()
            .await
            .map_err(|e| e.to_string())?;
        if shown {
            return Err("full-window still shows the strip".into());
        }
    }
    s.press(ESCAPE).await?;
    wait_class(s, &room, "full-window", false).await?;
    s.wait_attr(&stage, "data-name", SCREEN, BOUND).await?;
    eprintln!("full-window on and off ({:.1?})", step.elapsed());

    // The bot leaves: the grid comes back, with only our own tile.
    drop(bot);
    s.wait_attr(&room, "data-layout", "grid", BOUND).await?;
    wait_for(BOUND, "only our own tile is left", async || {
        match (
            s.count(&testid("tile")).await?,
            s.count(&stage).await?,
            s.count(&testid("strip-tile")).await?,
        ) {
            (1, 0, 0) => Ok(()),
            other => Err(format!("(grid, stage, strip) tiles = {other:?}")),
        }
    })
    .await?;
    eprintln!("{BOT} left: the grid is back ({:.1?})", step.elapsed());
    Ok(())
}

/// Waits until `name`'s tile has drawn more frames since `since` and shows newer content:
/// rising burned-in frame numbers (or, where the stamp does not decode, a changed picture).
async fn rising(s: &Session, name: &str, since: &Probe) -> Result<Probe, String> {
    wait_for(
        BOUND,
        &format!("{name}'s tile draws new frames"),
        async || {
            let p = s.probe(name).await?;
            let newer = match (since.frame_number, p.frame_number) {
                (Some(a), Some(b)) => b > a,
                _ => p.hash != since.hash,
            };
            if p.drawn > since.drawn && newer {
                Ok(p)
            } else {
                Err(format!("{since:?} → {p:?}"))
            }
        },
    )
    .await
}

async fn expect_attr(s: &Session, css: &str, name: &str, want: &str) -> Result<(), String> {
    match s.attr(css, name).await? {
        Some(v) if v == want => Ok(()),
        other => Err(format!("{css} has {name}={other:?}, expected {want:?}")),
    }
}

async fn wait_class(s: &Session, css: &str, class: &str, on: bool) -> Result<(), String> {
    wait_for(
        BOUND,
        &format!("{css} {} class {class}", if on { "has" } else { "lacks" }),
        async || {
            let classes = s.attr(css, "class").await?.unwrap_or_default();
            if classes.split_whitespace().any(|c| c == class) == on {
                Ok(())
            } else {
                Err(format!("class={classes:?}"))
            }
        },
    )
    .await
}

async fn area(s: &Session, css: &str) -> Result<f64, String> {
    let el = s.wait_css(css, BOUND).await?;
    let (_, _, w, h) = el
        .rectangle()
        .await
        .map_err(|e| format!("{css} rectangle: {e}"))?;
    Ok(w * h)
}

/// The room of the sharing test.
const SHARE_ROOM: &str = "screen-share-app";
/// Our own share's tile.
const OWN_SCREEN: &str = "Your screen";
/// Frames of our screen the bot must have decoded (≥ 2 s at the 5 fps floor of a still screen).
const MIN_DECODED: u64 = 10;
/// Frames captured (burned-in numbers on the "Your screen" tile) before the share is stopped:
/// 2 s at 15 fps.
const MIN_CAPTURED: u64 = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_shares_its_screen_through_the_picker_and_a_bot_decodes_it() {
    let started = Instant::now();
    let work = work_dir("screen-share-app");
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let app = Launched::start(&work, true).await;
    let bot_log = work.join("bot.log");
    let events = work.join("bot-events.jsonl");
    let stats = work.join("bot-stats.json");
    let outcome = within(SCENARIO_BOUND, async {
        let s = &app.session;
        s.join(&url, SHARE_ROOM, ME).await?;
        let mut spec = BotSpec::publishing(&url, SHARE_ROOM, BOT, &bot_log);
        spec.events = Some(events.clone());
        spec.stats = Some(stats.clone());
        let mut bot = spec.spawn();
        share_and_stop(&app, &events, &work).await?;
        // The bot's own count of what it decoded of our screen.
        bot::stop(&mut bot).await?;
        let track = bot::remote_track_of_source(&stats, ME, "screen")?;
        let decoded = track["frames_decoded"].as_u64().unwrap_or(0);
        eprintln!(
            "the bot decoded {decoded} frames of {ME}'s screen (announcement → first frame \
             {} ms, capture → decode p50 {} ms, freezes {})",
            track["join_to_first_frame_ms"], track["capture_to_decode"]["p50_ms"], track["freezes"]
        );
        if decoded < MIN_DECODED {
            return Err(format!(
                "the bot decoded only {decoded} frames of {ME}'s screen: {track:#}"
            ));
        }
        Ok(())
    })
    .await;
    app.conclude(&work, outcome, &[("bot output", &bot_log)])
        .await;
    server.shutdown(Duration::from_secs(2)).await;
    eprintln!("e2e passed in {:.1?}", started.elapsed());
}

/// Shares through the picker and stops; saves what Xvfb shows with the picker open
/// (`picker-screen.png`) and while sharing (`sharing-screen.png`) in `work`.
async fn share_and_stop(app: &Launched, events: &Path, work: &Path) -> Result<(), String> {
    let s = &app.session;
    let step = Instant::now();
    let button = testid("share-screen");
    let picker = testid("screen-picker");
    let screen_source = format!(r#"{}[data-kind="screen"]"#, testid("screen-source"));
    let own_tile = r#"[data-track="screen"]"#;

    // The bot is in the room (and so sees our tracks as they come).
    s.wait_css(&format!(r#"{}[data-name="{BOT}"]"#, testid("tile")), BOUND)
        .await?;
    s.wait_attr(&button, "aria-pressed", "false", BOUND).await?;

    // The button opens our picker; it lists the X screen with a thumbnail that draws.
    s.click(&button).await?;
    s.wait_css(&picker, BOUND).await?;
    s.wait_attr(&screen_source, "data-drawn", "true", BOUND)
        .await?;
    let id = s.attr(&screen_source, "data-source-id").await?;
    live_thumbnail(app, &format!("{screen_source} .source-thumb")).await?;
    app.xvfb
        .screenshot()?
        .write_png(&work.join("picker-screen.png"))?;
    eprintln!(
        "the picker shows {id:?} with a live thumbnail ({:.1?})",
        step.elapsed()
    );

    // A click on it shares it: the picker closes, the button is pressed.
    s.click(&screen_source).await?;
    let clicked = Instant::now();
    s.wait_attr(&button, "aria-pressed", "true", BOUND).await?;
    wait_count(s, &picker, 0).await?;

    // The bot gets our screen track and decodes it.
    let added = bot::find_event(events, "track_added", BOUND, |e| {
        e["name"] == ME && e["source"] == "screen"
    })
    .await?;
    let track_id = added["track_id"].as_str().unwrap_or_default().to_owned();
    let ready = bot::find_event(events, "track_ready", BOUND, |e| {
        e["track_id"] == track_id.as_str()
    })
    .await?;
    let first_frame = clicked.elapsed();
    let in_bot = ready["t_ms"].as_u64().zip(added["t_ms"].as_u64());
    eprintln!(
        "click → the bot decoded our screen's first frame: {first_frame:.1?} (polled every \
         0.1 s; in the bot, track_added → first frame {} ms)",
        in_bot.map_or_else(|| "?".to_owned(), |(r, a)| r.saturating_sub(a).to_string())
    );

    // "Your screen" is a tile of its own, drawing; nobody else shares, so no stage; the
    // indicator says we share, and the People tab marks us.
    s.wait_attr(own_tile, "data-name", OWN_SCREEN, BOUND)
        .await?;
    s.wait_attr(&testid("room"), "data-layout", "grid", BOUND)
        .await?;
    s.wait_css(&testid("sharing-indicator"), BOUND).await?;
    let own = format!(r#"{}[data-self="true"]"#, testid("person"));
    s.click(&testid("people-toggle")).await?;
    s.wait_attr(&own, "data-sharing", "true", BOUND).await?;
    s.click(&testid("people-toggle")).await?;
    // Our preview draws new frames; the share goes on until MIN_CAPTURED more were captured
    // (the frame numbers the tile shows), so the bot has had time to decode some.
    let first = s.wait_drawn(OWN_SCREEN, BOUND).await?;
    let enough = first.frame_number.map(|n| n + MIN_CAPTURED);
    let later = wait_for(
        BOUND,
        &format!("{OWN_SCREEN} shows frames {MIN_CAPTURED} captures newer"),
        async || {
            let p = s.probe(OWN_SCREEN).await?;
            let newer = match (enough, p.frame_number) {
                (Some(want), Some(n)) => n >= want,
                // No numbers in the header: three more frames drawn, with new content.
                _ => p.drawn >= first.drawn + 3 && p.hash != first.hash,
            };
            if p.drawn > first.drawn && newer {
                Ok(p)
            } else {
                Err(format!("{first:?} → {p:?}"))
            }
        },
    )
    .await?;
    app.xvfb
        .screenshot()?
        .write_png(&work.join("sharing-screen.png"))?;
    eprintln!(
        "{OWN_SCREEN} drew {} frames, captures {:?} → {:?} ({:.1?})",
        later.drawn,
        first.frame_number,
        later.frame_number,
        step.elapsed()
    );

    // S stops it: the button lets go, the tile and the indicator go, the bot sees the track go.
    s.press('s').await?;
    let stopped = Instant::now();
    s.wait_attr(&button, "aria-pressed", "false", BOUND).await?;
    wait_count(s, own_tile, 0).await?;
    wait_count(s, &testid("sharing-indicator"), 0).await?;
    bot::find_event(events, "track_removed", BOUND, |e| {
        e["track_id"] == track_id.as_str()
    })
    .await?;
    eprintln!(
        "S stopped the share; the bot saw the track go after {:.1?} ({:.1?})",
        stopped.elapsed(),
        step.elapsed()
    );
    Ok(())
}

/// The thumbnail at `css` shows a picture on the X screen (many colours, not the placeholder)
/// that changes (the screen it shows has the bot's moving pattern on it).
async fn live_thumbnail(app: &Launched, css: &str) -> Result<(), String> {
    let rect = app.session.wait_rect(css, BOUND).await?;
    let first = wait_for(BOUND, "the thumbnail has many colours", async || {
        let screen = app.xvfb.screenshot()?;
        match screen.colours_in(rect) {
            n if n >= 12 => Ok(screen.hash_in(rect)),
            n => Err(format!("{n} colours at {rect:?}")),
        }
    })
    .await?;
    wait_for(BOUND, "the thumbnail changes", async || {
        let hash = app.xvfb.screenshot()?.hash_in(rect);
        if hash != first {
            Ok(())
        } else {
            Err(format!("the same picture at {rect:?}"))
        }
    })
    .await
}

async fn wait_count(s: &Session, css: &str, want: usize) -> Result<(), String> {
    wait_for(BOUND, &format!("{want} × {css}"), async || {
        match s.count(css).await? {
            n if n == want => Ok(()),
            n => Err(format!("{n} shown")),
        }
    })
    .await
}
