//! One UI, two media backends, end to end: `videoroom-server` serves the built web app
//! (`--web-root ui/dist`); headless Chromium opens it at `/r/ROOM` (the real UI, with fake
//! camera and a microphone playing a 660 Hz tone) and joins a room together with the desktop
//! app under Xvfb and a bot. Then:
//!
//! - every participant decodes every other's video: in the browser a tile's `<video>` has a
//!   size and more than 60 frames, and its pixels change; in the app the tiles draw moving
//!   frames; the bot counts decoded frames;
//! - every participant hears the others: the browser's inbound audio has samples and a level;
//!   the app highlights the browser's tile as speaking; the bot hears the browser's 660 Hz;
//!   the browser highlights the bot's tile (its tone) as speaking;
//! - a mute in the browser shows in the app (and the bot), a mute in the app in the browser;
//!   the browser's camera off stops its camera and shows the initials in the app, on again
//!   brings the video back;
//! - the browser tab closed is gone from the app and the bot within 2 s.
//!
//! Also: the invite link's token is taken out of the address bar, and the lobby has no server
//! field (the page's origin is the server).
//!
//! Needs what `e2e.rs` needs, plus the built web app (`npm run build` in ui/), the server
//! binary (`cargo build -p videoroom-server`), Debian's chromium and `npm ci` in
//! desktop-tests/browser. Logs in `<target>/e2e/browser/`.

use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use videoroom_desktop_tests::bot::{self, BotSpec};
use videoroom_desktop_tests::browser::{Browser, WebServer, web_root, write_tone_wav};
use videoroom_desktop_tests::driver::{Launched, Session, testid};
use videoroom_desktop_tests::{wait_for, within, work_dir};

const ROOM: &str = "Web room";
const BOT: &str = "Bot1";
const ME: &str = "Ada";
const WEB: &str = "Chrome";
/// Chromium's microphone: a tone the bot can recognise (the bot's own is 440 Hz).
const WEB_TONE_HZ: u32 = 660;
/// Conditions that normally hold within a few seconds (three participants on two cores).
const BOUND: Duration = Duration::from_secs(30);
/// A closed tab must be gone from the others within this.
const GONE_WITHIN: Duration = Duration::from_secs(2);
const SCENARIO_BOUND: Duration = Duration::from_secs(175);
/// For the app's first 60 frames of a tile: a few seconds normally, but the debug app under
/// Xvfb draws only 2–5 frames a second (it drops the rest, as designed) while Chromium, the bot
/// and a build share this 2-core machine.
const APP_FRAMES_BOUND: Duration = Duration::from_secs(90);
/// How long frame rates are measured over.
const RATE_WINDOW: Duration = Duration::from_secs(2);
/// A JWT-shaped invitation: the open server ignores it; the page must take it out of its
/// address and join with it.
const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJyb29tIjoiV2ViIHJvb20ifQ.c2lnbmF0dXJl";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_the_app_and_a_bot_see_and_hear_each_other() {
    let started = Instant::now();
    let work = work_dir("browser");
    let dist = web_root();
    let server = WebServer::start(&dist, &work.join("server.log")).await;
    eprintln!(
        "server on {} with the web app of {}",
        server.addr,
        dist.display()
    );

    let wav = work.join("tone-660.wav");
    write_tone_wav(&wav, WEB_TONE_HZ, 2, 0.5).expect("writing the tone");
    let events = work.join("bot-events.jsonl");
    let stats = work.join("bot-stats.json");
    let bot_log = work.join("bot.log");
    let mut spec = BotSpec::publishing(&server.ws_url(), ROOM, BOT, &bot_log);
    spec.events = Some(events.clone());
    spec.stats = Some(stats.clone());
    let mut bot = spec.spawn();

    let app = Launched::start(&work, true).await;
    let browser_log = work.join("browser.log");
    let browser = Browser::start(Some(&wav), &browser_log).await;
    eprintln!("app and browser up after {:.1?}", started.elapsed());

    let outcome = within(
        SCENARIO_BOUND,
        scenario(&app.session, &browser, &server, &events),
    )
    .await;
    // The bot writes its statistics when it stops (SIGINT, as Ctrl-C).
    let heard = match outcome {
        Ok(()) => bot_heard_the_browser(&mut bot, &stats).await,
        Err(e) => Err(e),
    };
    let outcome = heard.map_err(|e| {
        format!(
            "{e}\n\n--- browser driver and pages (last 40 lines) ---\n{}\n\n--- server (last 20 lines) ---\n{}",
            browser.log_tail(40),
            server.log_tail(20)
        )
    });
    browser.quit().await;
    app.conclude(
        &work,
        outcome,
        &[("bot events", &events), ("bot output", &bot_log)],
    )
    .await;
    server.stop().await;
    eprintln!("e2e_browser passed in {:.1?}", started.elapsed());
}

async fn scenario(
    app: &Session,
    browser: &Browser,
    server: &WebServer,
    events: &Path,
) -> Result<(), String> {
    let step = Instant::now();
    // The app joins first (its lobby, as a person fills it).
    app.join(&server.ws_url(), ROOM, ME).await?;
    eprintln!("{ME} (app) in the room ({:.1?})", step.elapsed());

    // The browser opens an invite link of the served page.
    let url = format!(
        "{}/r/{}#token={TOKEN}",
        server.http_url(),
        ROOM.replace(' ', "%20")
    );
    let status = browser.open(WEB, &url).await?;
    if status != Some(200) {
        return Err(format!("GET {url} answered {status:?}"));
    }
    browser
        .wait_css(WEB, &testid("lobby"), Duration::from_secs(30))
        .await?;
    let lobby = browser.snapshot(WEB).await?;
    check_lobby(&lobby, server)?;
    browser.type_into(WEB, "display-name", WEB).await?;
    browser.click(WEB, "join").await?;
    if let Err(e) = browser
        .wait_css(WEB, &testid("room"), Duration::from_secs(30))
        .await
    {
        let shown = browser.snapshot(WEB).await.unwrap_or_default();
        return Err(format!(
            "the browser did not get into the room: {e}; it shows {shown:#}"
        ));
    }
    eprintln!("{WEB} (browser) in the room ({:.1?})", step.elapsed());

    // Everyone decodes everyone's video.
    let seen = browser_sees_video(browser, &[ME, BOT]).await?;
    eprintln!("{WEB} decodes: {seen} ({:.1?})", step.elapsed());
    let moved = app_sees_video(app, WEB).await?;
    eprintln!("{ME} draws {WEB}'s video: {moved} ({:.1?})", step.elapsed());
    let bot_video = app_sees_video(app, BOT).await?;
    eprintln!(
        "{ME} draws {BOT}'s video: {bot_video} ({:.1?})",
        step.elapsed()
    );
    wait_for(BOUND, &format!("{BOT} gets {WEB}'s tracks"), async || {
        let seen = bot::events(events);
        let audio = bot::saw(&seen, "track_added", WEB, Some("audio"));
        let video = bot::saw(&seen, "track_added", WEB, Some("video"));
        if audio && video {
            Ok(())
        } else {
            Err(format!("audio {audio}, video {video}"))
        }
    })
    .await?;

    // Everyone hears everyone: audio samples and levels in the browser, speaking rings.
    let heard = browser_hears(browser, &[ME, BOT]).await?;
    eprintln!("{WEB} hears: {heard} ({:.1?})", step.elapsed());
    let web_tile = format!(r#"{}[data-name="{WEB}"]"#, testid("tile"));
    app.wait_attr(&web_tile, "data-speaking", "true", BOUND)
        .await
        .map_err(|e| format!("{ME} does not hear {WEB} (no speaking ring): {e}"))?;
    wait_tile(browser, BOT, "the bot's tone lights its ring", |t| {
        t["speaking"] == true
    })
    .await?;
    eprintln!(
        "speaking rings: {WEB} in the app, {BOT} in the browser ({:.1?})",
        step.elapsed()
    );

    mutes(app, browser, events).await?;
    camera_off_and_on(app, browser).await?;
    eprintln!("mutes and camera seen across ({:.1?})", step.elapsed());

    // The tab closes: gone from the others within 2 s.
    let closing = Instant::now();
    browser.close(WEB).await?;
    let (app_gone, bot_gone) = gone(app, events, closing).await?;
    eprintln!(
        "{WEB}'s tab closed: gone from the app after {app_gone:.2?}, from the bot after \
         {bot_gone:.2?}"
    );
    if app_gone > GONE_WITHIN || bot_gone > GONE_WITHIN {
        return Err(format!(
            "a closed tab must be gone within {GONE_WITHIN:?}: app {app_gone:.2?}, bot {bot_gone:.2?}"
        ));
    }
    Ok(())
}

/// The lobby at `/r/ROOM#token=…`: the room filled in, no server field, the token taken out
/// of the address and shown as an invitation.
fn check_lobby(lobby: &Value, server: &WebServer) -> Result<(), String> {
    let expect_url = format!("{}/r/Web%20room", server.http_url());
    if lobby["url"] != expect_url.as_str() {
        return Err(format!(
            "the address bar shows {} (the token must go; expected {expect_url})",
            lobby["url"]
        ));
    }
    if lobby["roomField"] != ROOM {
        return Err(format!("the room field holds {}", lobby["roomField"]));
    }
    if lobby["serverField"] != false {
        return Err("the browser's lobby shows a server field".into());
    }
    if lobby["hooks"] != true {
        return Err("window.__vrTest is missing in the browser".into());
    }
    if let Some(err) = lobby["lobbyError"].as_object() {
        return Err(format!("the lobby shows an error: {err:?}"));
    }
    Ok(())
}

/// The tile of `name` in the browser's snapshot.
fn tile<'a>(snapshot: &'a Value, name: &str) -> Option<&'a Value> {
    snapshot["tiles"]
        .as_array()?
        .iter()
        .find(|t| t["name"] == name)
}

/// Waits until the browser's tile of `name` satisfies `pred`.
async fn wait_tile(
    browser: &Browser,
    name: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Result<(), String> {
    wait_for(
        BOUND,
        &format!("{name}'s tile in the browser: {what}"),
        async || {
            let shot = browser.snapshot(WEB).await?;
            match tile(&shot, name) {
                Some(t) if pred(t) => Ok(()),
                Some(t) => Err(format!("{t}")),
                None => Err(format!("no tile; tiles: {}", shot["tiles"])),
            }
        },
    )
    .await
}

/// Each of `names`' tiles in the browser plays video: a size, more than 60 frames, frames
/// advancing and pixels changing between two looks half a second apart.
async fn browser_sees_video(browser: &Browser, names: &[&str]) -> Result<String, String> {
    let mut figures = Vec::new();
    for name in names {
        let first = wait_for(
            BOUND,
            &format!("the browser shows more than 60 frames of {name}'s video"),
            async || {
                let p = browser.probe(WEB, name).await?;
                let frames = p["drawn"].as_u64().unwrap_or(0);
                if p["width"].as_u64().unwrap_or(0) > 0 && frames > 60 {
                    Ok(p)
                } else {
                    Err(format!("{p}"))
                }
            },
        )
        .await?;
        let at = Instant::now();
        let later = wait_for(
            BOUND,
            &format!("{name}'s video moves on in the browser"),
            async || {
                let p = browser.probe(WEB, name).await?;
                let more = p["drawn"].as_u64() > first["drawn"].as_u64();
                let other = p["hash"] != first["hash"];
                if at.elapsed() >= RATE_WINDOW && more && other {
                    Ok(p)
                } else {
                    Err(format!("first {first}, now {p}"))
                }
            },
        )
        .await?;
        let frames = later["drawn"].as_u64().unwrap_or(0) - first["drawn"].as_u64().unwrap_or(0);
        figures.push(format!(
            "{name} {}×{}, {} frames, {:.1} fps",
            later["width"],
            later["height"],
            later["drawn"],
            frames as f64 / at.elapsed().as_secs_f64()
        ));
    }
    Ok(figures.join("; "))
}

/// The app's tile of `name` draws moving frames: more than 60, then more of them and other
/// pixels over [`RATE_WINDOW`].
async fn app_sees_video(app: &Session, name: &str) -> Result<String, String> {
    let first = wait_for(
        APP_FRAMES_BOUND,
        &format!("the app drew more than 60 frames of {name}'s video"),
        async || match app.probe(name).await? {
            p if p.drawn > 60 => Ok(p),
            p => Err(format!("{p:?}")),
        },
    )
    .await?;
    let at = Instant::now();
    let later = wait_for(
        BOUND,
        &format!("{name}'s video moves on in the app"),
        async || {
            let p = app.probe(name).await?;
            if at.elapsed() >= RATE_WINDOW && p.drawn > first.drawn && p.hash != first.hash {
                Ok(p)
            } else {
                Err(format!("first {first:?}, now {p:?}"))
            }
        },
    )
    .await?;
    Ok(format!(
        "tile {}×{}, {} frames drawn, {:.1} fps",
        later.width,
        later.height,
        later.drawn,
        (later.drawn - first.drawn) as f64 / at.elapsed().as_secs_f64()
    ))
}

/// The browser receives audio from each of `names`: samples and a level above silence.
async fn browser_hears(browser: &Browser, names: &[&str]) -> Result<String, String> {
    let shot = browser.snapshot(WEB).await?;
    let mut figures = Vec::new();
    for name in names {
        let peer = tile(&shot, name)
            .and_then(|t| t["peer"].as_str())
            .ok_or_else(|| format!("no tile of {name} in the browser"))?
            .to_owned();
        let audio = wait_for(
            BOUND,
            &format!("the browser receives {name}'s audio"),
            async || {
                let stats = browser.stats(WEB).await?;
                let inbound = stats["inbound"].as_array().cloned().unwrap_or_default();
                let audio = inbound
                    .iter()
                    .find(|r| r["kind"] == "audio" && r["peerId"] == peer.as_str())
                    .cloned()
                    .ok_or_else(|| format!("no inbound audio from {peer}: {stats}"))?;
                let samples = audio["totalSamplesReceived"].as_u64().unwrap_or(0);
                let level = audio["audioLevel"].as_f64().unwrap_or(0.0);
                // A second of 48 kHz audio, louder than silence.
                if samples > 48_000 && level > 0.01 {
                    Ok(audio)
                } else {
                    Err(format!("{audio}"))
                }
            },
        )
        .await?;
        figures.push(format!(
            "{name} {} samples, level {:.3}",
            audio["totalSamplesReceived"],
            audio["audioLevel"].as_f64().unwrap_or(0.0)
        ));
    }
    Ok(figures.join("; "))
}

/// The browser's mute shows in the app and the bot; the app's in the browser.
async fn mutes(app: &Session, browser: &Browser, events: &Path) -> Result<(), String> {
    let web_tile = format!(r#"{}[data-name="{WEB}"]"#, testid("tile"));
    let t = Instant::now();
    browser.click(WEB, "mic-toggle").await?;
    wait_for(
        BOUND,
        "the browser's microphone button says off",
        async || {
            let shot = browser.snapshot(WEB).await?;
            if shot["mic"] == "false" {
                Ok(())
            } else {
                Err(format!("mic-toggle data-on {}", shot["mic"]))
            }
        },
    )
    .await?;
    app.wait_attr(&web_tile, "data-mic-muted", "true", BOUND)
        .await?;
    let app_saw = t.elapsed();
    bot::wait_event(events, "track_muted", BOUND, |e| {
        e["name"] == WEB && e["kind"] == "audio"
    })
    .await?;
    // A muted microphone does not speak.
    app.wait_attr(&web_tile, "data-speaking", "false", BOUND)
        .await?;
    browser.click(WEB, "mic-toggle").await?;
    app.wait_attr(&web_tile, "data-mic-muted", "false", BOUND)
        .await?;
    bot::wait_event(events, "track_unmuted", BOUND, |e| {
        e["name"] == WEB && e["kind"] == "audio"
    })
    .await?;
    eprintln!("{WEB}'s mute reached the app in {app_saw:.2?}; the bot saw it too");

    let t = Instant::now();
    let mic = testid("mic-toggle");
    app.click(&mic).await?;
    app.wait_attr(&mic, "data-on", "false", BOUND).await?;
    wait_tile(browser, ME, "shows the muted microphone", |t| {
        t["micMuted"] == true
    })
    .await?;
    let web_saw = t.elapsed();
    app.click(&mic).await?;
    app.wait_attr(&mic, "data-on", "true", BOUND).await?;
    wait_tile(browser, ME, "shows the microphone on again", |t| {
        t["micMuted"] == false
    })
    .await?;
    eprintln!("{ME}'s mute reached the browser in {web_saw:.2?}");
    Ok(())
}

/// The browser's camera off: its camera stops (no live camera track) and the app shows the
/// initials; on again: new frames in the app.
async fn camera_off_and_on(app: &Session, browser: &Browser) -> Result<(), String> {
    let web_tile = format!(r#"{}[data-name="{WEB}"]"#, testid("tile"));
    browser.click(WEB, "camera-toggle").await?;
    app.wait_attr(&web_tile, "data-camera-off", "true", BOUND)
        .await?;
    app.wait_css(&format!("{web_tile} .placeholder .avatar"), BOUND)
        .await?;
    let stats = browser.stats(WEB).await?;
    if stats["local"]["camera"] != Value::Null {
        return Err(format!(
            "the browser's camera is still open with the camera off: {}",
            stats["local"]
        ));
    }
    let before = app.probe(WEB).await.ok();
    browser.click(WEB, "camera-toggle").await?;
    app.wait_attr(&web_tile, "data-camera-off", "false", BOUND)
        .await?;
    wait_for(
        BOUND,
        &format!("{WEB}'s video is back in the app"),
        async || {
            let p = app.probe(WEB).await?;
            match &before {
                Some(b) if p.drawn <= b.drawn => Err(format!("before {b:?}, now {p:?}")),
                _ if p.drawn == 0 => Err(format!("{p:?}")),
                _ => Ok(()),
            }
        },
    )
    .await?;
    let stats = browser.stats(WEB).await?;
    if stats["local"]["camera"] != "live" {
        return Err(format!(
            "the browser's camera is not live after turning it on: {}",
            stats["local"]
        ));
    }
    Ok(())
}

/// How long after `since` the browser's tile left the app, and the bot logged `peer_left`.
async fn gone(
    app: &Session,
    events: &Path,
    since: Instant,
) -> Result<(Duration, Duration), String> {
    let web_tile = format!(r#"{}[data-name="{WEB}"]"#, testid("tile"));
    let (mut app_gone, mut bot_gone) = (None, None);
    while app_gone.is_none() || bot_gone.is_none() {
        if since.elapsed() > BOUND {
            return Err(format!(
                "{WEB} still there {BOUND:?} after its tab closed: app {app_gone:?}, bot {bot_gone:?}"
            ));
        }
        if app_gone.is_none() && app.count(&web_tile).await? == 0 {
            app_gone = Some(since.elapsed());
        }
        if bot_gone.is_none() && bot::saw(&bot::events(events), "peer_left", WEB, None) {
            bot_gone = Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok((app_gone.unwrap_or_default(), bot_gone.unwrap_or_default()))
}

/// Stops the bot (SIGINT: it writes its statistics) and checks it decoded the browser's
/// video and heard its 660 Hz.
async fn bot_heard_the_browser(
    bot: &mut videoroom_desktop_tests::procs::Group,
    stats: &Path,
) -> Result<(), String> {
    let video = bot::stop_and_read_track(bot, stats, WEB, "video").await?;
    let frames = video["frames_decoded"].as_u64().unwrap_or(0);
    if frames <= 60 {
        return Err(format!(
            "the bot decoded {frames} frames of {WEB}'s video: {video:#}"
        ));
    }
    let audio = bot::remote_track(stats, WEB, "audio")?;
    let hz = audio["dominant_hz"].as_f64();
    let packets = audio["packets_received"].as_u64().unwrap_or(0);
    if !hz.is_some_and(|hz| (hz - f64::from(WEB_TONE_HZ)).abs() < 15.0) || packets == 0 {
        return Err(format!(
            "the bot does not hear {WEB}'s {WEB_TONE_HZ} Hz (dominant {hz:?} Hz, {packets} packets): {audio:#}"
        ));
    }
    eprintln!(
        "{BOT} decoded {frames} frames of {WEB}'s video and heard {:.1} Hz ({packets} packets)",
        hz.unwrap_or_default()
    );
    Ok(())
}
