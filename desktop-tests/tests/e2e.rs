//! The desktop app end to end, as a person uses it: open the app, fill the lobby, join a room
//! where a bot already is, see the bot's video move, mute and unmute the microphone (button,
//! then `M`) and the camera (`V`, then the button) and have the bot see it, leave and find the
//! lobby as it was.
//!
//! Needs the app built with the UI embedded (`cargo tauri build --debug --bundles deb`), the bot
//! (`cargo build -p videoroom-bot`), Xvfb, tauri-driver and WebKitWebDriver; see the crate docs.
//! Leaves its logs and screenshots in `<target>/e2e/room/` (`room.png` = WebDriver screenshot,
//! `room-screen.png` = what Xvfb shows).

use std::path::Path;
use std::time::{Duration, Instant};
use videoroom_desktop_tests::bot::{self, BotSpec};
use videoroom_desktop_tests::driver::{Launched, Probe, Session, testid};
use videoroom_desktop_tests::image::Rgb;
use videoroom_desktop_tests::{wait_for, within, work_dir};
use videoroom_testkit::{start_server, test_config, ws_url};

const ROOM: &str = "e2e";
const BOT: &str = "Bot1";
const ME: &str = "Ada";
/// Conditions that normally hold within a second or two.
const BOUND: Duration = Duration::from_secs(20);
/// The whole scenario; the test must stay well under 3 minutes.
const SCENARIO_BOUND: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_see_the_bot_mute_and_leave() {
    let started = Instant::now();
    let work = work_dir("room");
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let events = work.join("bot-events.jsonl");
    let bot_log = work.join("bot.log");
    let mut spec = BotSpec::publishing(&url, ROOM, BOT, &bot_log);
    spec.events = Some(events.clone());
    let _bot = spec.spawn();

    let app = Launched::start(&work, true).await;
    eprintln!("app window open after {:.1?}", started.elapsed());
    let outcome = within(SCENARIO_BOUND, scenario(&app, &url, &events, &work)).await;
    app.conclude(
        &work,
        outcome,
        &[("bot events", &events), ("bot output", &bot_log)],
    )
    .await;
    server.shutdown(Duration::from_secs(2)).await;
    eprintln!("e2e passed in {:.1?}", started.elapsed());
}

async fn scenario(app: &Launched, url: &str, events: &Path, work: &Path) -> Result<(), String> {
    let s = &app.session;
    let step = Instant::now();

    // The lobby, filled in as a person would.
    s.wait_lobby(Duration::from_secs(60)).await?;
    s.type_into(&testid("server-url"), url).await?;
    s.type_into(&testid("room-name"), ROOM).await?;
    s.type_into(&testid("display-name"), ME).await?;
    s.click(&testid("join")).await?;
    if let Err(e) = s.wait_css(&testid("room"), Duration::from_secs(30)).await {
        return Err(format!(
            "joining: {e} (lobby error: {:?})",
            lobby_error(s).await
        ));
    }
    let bot_tile = format!(r#"{}[data-name="{BOT}"]"#, testid("tile"));
    s.wait_css(&bot_tile, BOUND).await?;
    eprintln!("in the room with {BOT}'s tile after {:.1?}", step.elapsed());

    // Bot1's video moves: more frames drawn, other pixels, higher burned-in frame numbers.
    let drawn = s.wait_drawn(BOT, BOUND).await?;
    let first = (Instant::now(), drawn);
    let later = wait_for(
        BOUND,
        &format!("{BOT}'s tile shows newer frames"),
        async || {
            let p = s.probe(BOT).await?;
            if moved(&first, &p) {
                Ok(p)
            } else {
                Err(format!("first {:?}, now {p:?}", first.1))
            }
        },
    )
    .await?;
    eprintln!(
        "{BOT}'s video moves: {:?} → {later:?} ({:.1?})",
        first.1,
        step.elapsed()
    );

    // Microphone: the button, then the keyboard; the bot sees both, the button follows.
    let mic = testid("mic-toggle");
    s.wait_attr(&mic, "data-on", "true", BOUND).await?;
    s.click(&mic).await?;
    s.wait_attr(&mic, "data-on", "false", BOUND).await?;
    let muted_at = wait_event(events, "track_muted", "audio", 0).await?;
    // The focus is on the button now, not in a text field, so `m` is the shortcut.
    s.press('m').await?;
    s.wait_attr(&mic, "data-on", "true", BOUND).await?;
    wait_event(events, "track_unmuted", "audio", muted_at + 1).await?;
    eprintln!(
        "{BOT} saw {ME}'s microphone go off and on ({:.1?})",
        step.elapsed()
    );

    // Camera: `V`, then the button; the bot sees the video track muted and back, and the own
    // tile shows the initials meanwhile.
    let camera = testid("camera-toggle");
    let own = format!(r#"{}[data-self="true"]"#, testid("tile"));
    s.wait_attr(&camera, "data-on", "true", BOUND).await?;
    s.press('v').await?;
    s.wait_attr(&camera, "data-on", "false", BOUND).await?;
    s.wait_attr(&own, "data-camera-off", "true", BOUND).await?;
    let off_at = wait_event(events, "track_muted", "video", 0).await?;
    s.click(&camera).await?;
    s.wait_attr(&camera, "data-on", "true", BOUND).await?;
    s.wait_attr(&own, "data-camera-off", "false", BOUND).await?;
    wait_event(events, "track_unmuted", "video", off_at + 1).await?;
    eprintln!(
        "{BOT} saw {ME}'s camera go off and on ({:.1?})",
        step.elapsed()
    );

    screenshots(app, &bot_tile, work).await?;

    // Leave: back in the lobby with what was typed, and the bot sees Ada go.
    s.click(&testid("leave")).await?;
    s.wait_lobby(BOUND).await?;
    let kept = (
        s.value(&testid("server-url")).await?,
        s.value(&testid("room-name")).await?,
        s.value(&testid("display-name")).await?,
    );
    if kept != (url.to_owned(), ROOM.to_owned(), ME.to_owned()) {
        return Err(format!("the lobby after leaving holds {kept:?}"));
    }
    wait_for(
        BOUND,
        &format!("{BOT} sees {ME} leave (peer_left)"),
        async || {
            let seen = bot::events(events);
            if bot::saw(&seen, "peer_left", ME, None) {
                Ok(())
            } else {
                Err(format!("{} events", seen.len()))
            }
        },
    )
    .await?;
    eprintln!("left; lobby kept its values ({:.1?})", step.elapsed());
    Ok(())
}

/// Whether `now` shows the tile moved on since `first`, at least 500 ms later.
fn moved(first: &(Instant, Probe), now: &Probe) -> bool {
    let (at, p) = first;
    at.elapsed() >= Duration::from_millis(500)
        && now.drawn > p.drawn
        && now.hash != p.hash
        && matches!((p.frame_number, now.frame_number), (Some(a), Some(b)) if b > a)
}

/// Waits (10 s) until the bot logged `event` for Ada's track of `kind` at or after line `from`;
/// returns the line's index.
async fn wait_event(events: &Path, event: &str, kind: &str, from: usize) -> Result<usize, String> {
    wait_for(
        Duration::from_secs(10),
        &format!("{BOT} logs {event} for {ME}'s {kind}"),
        async || {
            let seen = bot::events(events);
            seen.iter()
                .enumerate()
                .skip(from)
                .find(|(_, e)| bot::saw(std::slice::from_ref(e), event, ME, Some(kind)))
                .map(|(i, _)| i)
                .ok_or_else(|| format!("{} events so far", seen.len()))
        },
    )
    .await
}

/// The text of the lobby's error, if one is shown.
async fn lobby_error(s: &Session) -> Option<String> {
    let el = s
        .client
        .find(fantoccini::Locator::Css(&testid("lobby-error")))
        .await
        .ok()?;
    el.text().await.ok()
}

/// Saves the WebDriver screenshot (`room.png`) and Xvfb's screen (`room-screen.png`), and checks
/// that the bot's tile shows the pattern on the screen. (WebDriver's snapshot may leave
/// canvases drawn from a worker black; the X framebuffer is what a person sees.)
async fn screenshots(app: &Launched, bot_tile: &str, work: &Path) -> Result<(), String> {
    let s = &app.session;
    let rect = s.wait_rect(bot_tile, BOUND).await?;
    let png = s
        .client
        .screenshot()
        .await
        .map_err(|e| format!("screenshot: {e}"))?;
    let shot_path = work.join("room.png");
    std::fs::write(&shot_path, &png).map_err(|e| format!("{}: {e}", shot_path.display()))?;
    let shot = Rgb::from_png(&png)?;
    let screen = app.xvfb.screenshot()?;
    screen.write_png(&work.join("room-screen.png"))?;
    // Also where the other build artefacts are: <target>/e2e/room.png.
    let _ = std::fs::copy(&shot_path, work.join("../room.png"));
    let (in_shot, on_screen) = (shot.colours_in(rect), screen.colours_in(rect));
    eprintln!(
        "{BOT}'s tile at {rect:?}: {in_shot} colours in the WebDriver screenshot, \
         {on_screen} on the screen"
    );
    // The pattern has many colours; a black or flat tile 1–3.
    if on_screen < 8 {
        return Err(format!(
            "{BOT}'s tile at {rect:?} looks empty on the screen ({on_screen} colours); \
             see {}",
            work.join("room-screen.png").display()
        ));
    }
    Ok(())
}
