//! The app on the machine's own devices (no synthetic media). A CI machine has no camera: the
//! lobby says "No camera found" and will not turn a camera on, and joining still works — the
//! person sees and hears the others, their own tile shows initials, and the others see them
//! join without video. (On a machine with a camera the lobby must not claim there is none.)
//!
//! Same prerequisites as `e2e.rs`; logs and the lobby's picture (`lobby-screen.png`) in
//! `<target>/e2e/no-devices/`.

use std::time::{Duration, Instant};
use videoroom_desktop_tests::bot::{self, BotSpec};
use videoroom_desktop_tests::driver::{Launched, Media, Session, testid};
use videoroom_desktop_tests::{tail, wait_for, within, work_dir};
use videoroom_testkit::{start_server, test_config, ws_url};

const ROOM: &str = "no-devices";
const BOT: &str = "Bot1";
const ME: &str = "Ada";
const BOUND: Duration = Duration::from_secs(20);
const SCENARIO_BOUND: Duration = Duration::from_secs(120);

/// Whether this machine has a V4L2 video node at all.
fn machine_has_camera() -> bool {
    std::fs::read_dir("/dev").is_ok_and(|dir| {
        dir.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("video"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_camera_the_lobby_says_so_and_joining_still_works() {
    let started = Instant::now();
    let work = work_dir("no-devices");
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let bot_log = work.join("bot.log");
    let events = work.join("bot-events.jsonl");
    let mut spec = BotSpec::publishing(&url, ROOM, BOT, &bot_log);
    spec.events = Some(events.clone());
    let _bot = spec.spawn();
    let app = Launched::start_with(&work, true, Media::Devices).await;

    let outcome = within(SCENARIO_BOUND, async {
        let s = &app.session;
        let camera = machine_has_camera();
        lobby(s, camera).await?;
        // For a person to look at: what the lobby shows without devices.
        app.xvfb
            .screenshot()?
            .write_png(&work.join("lobby-screen.png"))?;
        if camera {
            eprintln!("this machine has a camera: only the lobby was checked");
            return Ok(());
        }
        s.join(&url, ROOM, ME).await?;
        in_the_room(s).await?;
        // Bot1 sees Ada arrive, and no video from her.
        wait_for(BOUND, &format!("{BOT} sees {ME} join"), async || {
            if bot::saw(&bot::events(&events), "peer_joined", ME, None) {
                Ok(())
            } else {
                Err(tail(&events, 5))
            }
        })
        .await?;
        if bot::saw(&bot::events(&events), "track_added", ME, Some("video")) {
            return Err(format!(
                "{BOT} got a video track from {ME}, who has no camera"
            ));
        }
        eprintln!("in the room without a camera ({:.1?})", started.elapsed());
        Ok(())
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

/// The preview and the camera toggle tell the truth about the camera.
async fn lobby(s: &Session, camera: bool) -> Result<(), String> {
    s.wait_lobby(Duration::from_secs(60)).await?;
    let preview = testid("preview");
    let says_none = async || {
        let text = s
            .wait_css(&preview, BOUND)
            .await?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((text.contains("No camera found"), text))
    };
    if camera {
        // Devices are listed asynchronously; give the listing time, then it must not say none.
        s.wait_attr(&preview, "data-camera-off", "false", BOUND)
            .await?;
        let (none, text) = says_none().await?;
        return if none {
            Err(format!("the machine has a camera, the lobby says {text:?}"))
        } else {
            Ok(())
        };
    }
    let text = wait_for(
        BOUND,
        "the preview says no camera was found",
        async || match says_none().await? {
            (true, text) => Ok(text),
            (false, text) => Err(text),
        },
    )
    .await?;
    let toggle = s.wait_css(&testid("lobby-camera-toggle"), BOUND).await?;
    if toggle.is_enabled().await.map_err(|e| e.to_string())? {
        return Err("the lobby's camera toggle is enabled without a camera".into());
    }
    // And an error message that says what to do.
    let error = s.wait_css(&testid("lobby-error"), BOUND).await?;
    let message = error.text().await.map_err(|e| e.to_string())?;
    let kind = error.attr("data-kind").await.map_err(|e| e.to_string())?;
    if kind.as_deref() != Some("device")
        || !message.contains("No camera found")
        || !message.contains("connect one")
    {
        return Err(format!(
            "the lobby's error should say no camera was found and what to do: {kind:?} {message:?}"
        ));
    }
    eprintln!("lobby preview: {text:?}; camera toggle disabled; error {message:?}");
    Ok(())
}

/// Bot1's video arrives; the own tile shows initials; the camera button is off.
async fn in_the_room(s: &Session) -> Result<(), String> {
    s.wait_drawn(BOT, BOUND).await?;
    let own = format!(r#"{}[data-self="true"]"#, testid("tile"));
    s.wait_attr(&own, "data-camera-off", "true", BOUND).await?;
    s.wait_css(&format!("{own} .placeholder .avatar"), BOUND)
        .await?;
    s.wait_attr(&testid("camera-toggle"), "data-on", "false", BOUND)
        .await?;
    Ok(())
}
