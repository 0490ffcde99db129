//! The server goes away mid-call and comes back: the app shows the "reconnecting" banner while
//! it is gone, rejoins by itself once it is back (same address), the banner goes and the bot's
//! video moves again, without anyone touching the app.
//!
//! Same prerequisites as `e2e.rs`; logs in `<target>/e2e/reconnect/`.

use std::time::{Duration, Instant};
use videoroom_desktop_tests::bot::BotSpec;
use videoroom_desktop_tests::driver::{Launched, Session, testid};
use videoroom_desktop_tests::{wait_for, within, work_dir};
use videoroom_testkit::{start_server, test_config, ws_url};

const ROOM: &str = "reconnect";
const BOT: &str = "Bot1";
const ME: &str = "Ada";
const BOUND: Duration = Duration::from_secs(20);
/// Rejoining waits up to 5 s between attempts (the engine's backoff), plus ICE and DTLS.
const BACK_BOUND: Duration = Duration::from_secs(40);
const SCENARIO_BOUND: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_rides_out_a_server_restart() {
    let started = Instant::now();
    let work = work_dir("reconnect");
    let server = start_server(test_config()).await;
    let addr = server.local_addr();
    let url = ws_url(&server);
    let bot_log = work.join("bot.log");
    let _bot = BotSpec::publishing(&url, ROOM, BOT, &bot_log).spawn();
    let app = Launched::start(&work, true).await;

    let mut server = Some(server);
    let outcome = within(SCENARIO_BOUND, async {
        let s = &app.session;
        s.join(&url, ROOM, ME).await?;
        let before = video_moves(s, None).await?;
        eprintln!(
            "in the room; {BOT}'s video at frame {before} ({:.1?})",
            started.elapsed()
        );
        if s.count(&testid("banner")).await? != 0 {
            return Err("a connection banner is shown while connected".into());
        }

        // The server stops (rooms closed, sockets gone).
        if let Some(old) = server.take() {
            old.shutdown(Duration::from_secs(2)).await;
        }
        let banner = testid("banner");
        s.wait_attr(&banner, "data-state", "reconnecting", BOUND)
            .await?;
        let text = s
            .wait_css(&banner, BOUND)
            .await?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        if !text.to_lowercase().contains("reconnecting") {
            return Err(format!("the banner says {text:?}"));
        }
        // Still in the room view, not thrown back to the lobby.
        s.wait_css(&testid("room"), BOUND).await?;
        eprintln!("server gone: banner {text:?} ({:.1?})", started.elapsed());

        // Back on the same address: the app rejoins on its own.
        let mut config = test_config();
        config.listen = addr;
        server = Some(start_server(config).await);
        wait_for(BACK_BOUND, "the banner goes away", async || {
            match s.count(&banner).await? {
                0 => Ok(()),
                n => Err(format!(
                    "{n} banner(s): {:?}",
                    s.attr(&banner, "data-state").await
                )),
            }
        })
        .await?;
        let after = video_moves(s, Some(before)).await?;
        eprintln!(
            "server back: banner gone, {BOT}'s video at frame {after} ({:.1?})",
            started.elapsed()
        );
        Ok(())
    })
    .await;
    app.conclude(&work, outcome, &[("bot output", &bot_log)])
        .await;
    if let Some(server) = server {
        server.shutdown(Duration::from_secs(2)).await;
    }
    eprintln!("e2e passed in {:.1?}", started.elapsed());
}

/// Waits until the bot's tile draws a frame numbered past `after` (any frame if `None`) and
/// then a later one; returns the later frame number.
async fn video_moves(s: &Session, after: Option<u64>) -> Result<u64, String> {
    let tile = format!(r#"{}[data-name="{BOT}"]"#, testid("tile"));
    s.wait_css(&tile, BACK_BOUND).await?;
    let first = wait_for(
        BACK_BOUND,
        &format!("{BOT}'s tile draws a frame past {after:?}"),
        async || match s.probe(BOT).await? {
            p if p.drawn > 0 && p.frame_number > after => Ok(p.frame_number),
            p => Err(format!("{p:?}")),
        },
    )
    .await?;
    wait_for(
        BOUND,
        &format!("{BOT}'s tile draws a frame past {first:?}"),
        async || match s.probe(BOT).await? {
            p if p.frame_number > first => Ok(p.frame_number.unwrap_or_default()),
            p => Err(format!("{p:?}")),
        },
    )
    .await
}
