//! The browser backend rides out a server restart, as the desktop app does (`e2e_reconnect.rs`):
//! headless Chromium on the served web app is in a room with a bot; the server stops (every
//! session gets `closing`) and comes back on the same address. The page shows the
//! "reconnecting" banner while it is gone, rejoins by itself (backoff, `resume_token`, a new
//! peer id and new track ids), the banner goes, the bot's video plays again, and the page does
//! not show its own earlier session as somebody else.
//!
//! Needs the built web app, the server and bot binaries, Debian's chromium and `npm ci` in
//! desktop-tests/browser (see `e2e_browser.rs`). Logs in `<target>/e2e/browser-reconnect/`.

use std::time::{Duration, Instant};
use videoroom_desktop_tests::bot::BotSpec;
use videoroom_desktop_tests::browser::{Browser, WebServer, web_root};
use videoroom_desktop_tests::driver::testid;
use videoroom_desktop_tests::{free_port, wait_for, within, work_dir};

const ROOM: &str = "browser-reconnect";
const BOT: &str = "Bot1";
const WEB: &str = "Chrome";
const BOUND: Duration = Duration::from_secs(30);
/// Rejoining waits up to 5 s between attempts, plus ICE and DTLS.
const BACK_BOUND: Duration = Duration::from_secs(40);
const SCENARIO_BOUND: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_rides_out_a_server_restart() {
    let started = Instant::now();
    let work = work_dir("browser-reconnect");
    let dist = web_root();
    let listen = format!("127.0.0.1:{}", free_port());
    let log = work.join("server.log");
    let server = WebServer::start_on(&listen, &dist, &log).await;
    let bot_log = work.join("bot.log");
    let _bot = BotSpec::publishing(&server.ws_url(), ROOM, BOT, &bot_log).spawn();
    let browser = Browser::start(None, &work.join("browser.log")).await;

    let mut server = Some(server);
    let outcome = within(SCENARIO_BOUND, async {
        let url = format!("http://{listen}/r/{ROOM}");
        browser.open(WEB, &url).await?;
        browser
            .wait_css(WEB, &testid("lobby"), BOUND)
            .await?;
        browser.type_into(WEB, "display-name", WEB).await?;
        browser.click(WEB, "join").await?;
        browser.wait_css(WEB, &testid("room"), BOUND).await?;
        let before = browser.wait_plays(WEB, BOT, BOUND).await?;
        let first_id = self_id(&browser).await?;
        eprintln!(
            "in the room as {first_id}; {BOT}'s video plays ({before} frames) ({:.1?})",
            started.elapsed()
        );

        // The server stops: every session gets `closing`, then the socket closes.
        if let Some(old) = server.take() {
            old.stop().await;
        }
        wait_for(BOUND, "the page shows the reconnecting banner", async || {
            match browser.snapshot(WEB).await?["banner"].as_str() {
                Some("reconnecting") => Ok(()),
                other => Err(format!("banner {other:?}")),
            }
        })
        .await?;
        eprintln!("banner: reconnecting ({:.1?})", started.elapsed());

        // Back on the same address: the page rejoins by itself.
        let back = Instant::now();
        server = Some(WebServer::start_on(&listen, &dist, &log).await);
        wait_for(BACK_BOUND, "the banner goes", async || {
            let shot = browser.snapshot(WEB).await?;
            if shot["view"] == "room" && shot["banner"].is_null() {
                Ok(())
            } else {
                Err(format!("view {}, banner {}", shot["view"], shot["banner"]))
            }
        })
        .await?;
        let after = browser.wait_plays(WEB, BOT, BACK_BOUND).await?;
        let second_id = self_id(&browser).await?;
        if second_id == first_id {
            return Err(format!("the rejoin kept the peer id {first_id}"));
        }
        let tiles = browser.snapshot(WEB).await?["tiles"].clone();
        let names: Vec<&str> = tiles
            .as_array()
            .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
            .unwrap_or_default();
        if names.len() != 2 || !names.contains(&WEB) || !names.contains(&BOT) {
            return Err(format!(
                "after the rejoin the page shows the tiles {names:?} (our earlier session must not be one)"
            ));
        }
        eprintln!(
            "rejoined as {second_id} {:.1?} after the server came back; {BOT}'s video plays \
             again ({after} frames)",
            back.elapsed()
        );
        Ok(())
    })
    .await;
    let browser_tail = browser.log_tail(40);
    browser.quit().await;
    if let Some(server) = server {
        server.stop().await;
    }
    if let Err(e) = outcome {
        panic!(
            "{e}\n\n--- browser driver and pages ---\n{browser_tail}\n\n--- server ---\n{}\n\n\
             --- bot ---\n{}",
            videoroom_desktop_tests::tail(&log, 20),
            videoroom_desktop_tests::tail(&bot_log, 20)
        );
    }
    eprintln!("e2e_browser_reconnect passed in {:.1?}", started.elapsed());
}

/// Our peer id, as the page's media statistics say.
async fn self_id(browser: &Browser) -> Result<String, String> {
    let stats = browser.stats(WEB).await?;
    stats["selfId"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no selfId in {stats}"))
}
