//! A join that cannot happen is explained in the lobby, in words a person can act on, and the
//! lobby stays ready for another try: first a server that is not there, then (same window) a
//! room that is full.
//!
//! Same prerequisites as `e2e.rs`; logs in `<target>/e2e/lobby-errors/`.

use std::time::{Duration, Instant};
use videoroom_desktop_tests::bot::{self, BotSpec};
use videoroom_desktop_tests::driver::{Launched, Session, testid};
use videoroom_desktop_tests::{free_port, tail, wait_for, work_dir};
use videoroom_testkit::{start_server, test_config, ws_url};

const ROOM: &str = "e2e";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lobby_errors_say_what_to_do() {
    let started = Instant::now();
    let work = work_dir("lobby-errors");
    // Rooms of one: the bot fills the room.
    let mut config = test_config();
    config.max_peers_per_room = 1;
    let server = start_server(config).await;
    let url = ws_url(&server);
    let bot_log = work.join("bot.log");
    let bot_events = work.join("bot-events.jsonl");
    let mut spec = BotSpec::publishing(&url, ROOM, "Bot1", &bot_log);
    spec.events = Some(bot_events.clone());
    let _bot = spec.spawn();
    let app = Launched::start(&work, true).await;
    // A port nobody listens on (it was free a moment ago): the connection is refused.
    let nowhere = format!("ws://127.0.0.1:{}/ws", free_port());

    let outcome = async {
        let s = &app.session;
        s.wait_lobby(Duration::from_secs(60)).await?;

        let (kind, text) = failed_join(s, &nowhere).await?;
        let lower = text.to_lowercase();
        if kind.as_deref() != Some("unreachable")
            || !(lower.contains("can't reach") || lower.contains("cannot reach"))
            || text.matches(nowhere.as_str()).count() != 1
        {
            return Err(format!(
                "the lobby error should say, of kind unreachable, once that it can't reach \
                 {nowhere}: {kind:?} {text:?}"
            ));
        }

        // The bot is in the room before the app tries it.
        wait_for(Duration::from_secs(30), "the bot has joined", async || {
            if bot::events(&bot_events)
                .iter()
                .any(|e| e["event"] == "joined")
            {
                Ok(())
            } else {
                Err(tail(&bot_log, 5))
            }
        })
        .await?;
        let (kind, text) = failed_join(s, &url).await?;
        if kind.as_deref() != Some("room_full") || !text.to_lowercase().contains("full") {
            return Err(format!(
                "the lobby error should say, of kind room_full, that the room is full: \
                 {kind:?} {text:?}"
            ));
        }
        Ok::<(), String>(())
    }
    .await;
    app.conclude(&work, outcome, &[("bot output", &bot_log)])
        .await;
    server.shutdown(Duration::from_secs(2)).await;
    eprintln!("passed in {:.1?}", started.elapsed());
}

/// Fills the lobby with `url`, joins, and returns the error shown (kind, text) once the lobby
/// is ready for another try (join enabled, no room view).
async fn failed_join(s: &Session, url: &str) -> Result<(Option<String>, String), String> {
    s.type_into(&testid("server-url"), url).await?;
    s.type_into(&testid("room-name"), ROOM).await?;
    s.type_into(&testid("display-name"), "Ada").await?;
    s.click(&testid("join")).await?;
    // The error of this attempt: the previous one is cleared when joining starts.
    let error = wait_for(
        Duration::from_secs(30),
        &format!("the lobby shows why joining {url} failed"),
        async || {
            let el = s
                .client
                .find(fantoccini::Locator::Css(&testid("lobby-error")))
                .await
                .map_err(|e| e.to_string())?;
            let text = el.text().await.map_err(|e| e.to_string())?;
            let kind = el.attr("data-kind").await.map_err(|e| e.to_string())?;
            if text.contains(url) || kind.as_deref() != Some("unreachable") {
                Ok((kind, text))
            } else {
                Err(format!("still the previous error: {text:?}"))
            }
        },
    )
    .await?;
    eprintln!("lobby error ({:?}): {:?}", error.0, error.1);
    // Still in the lobby, ready to try again.
    let join = s.wait_css(&testid("join"), Duration::from_secs(5)).await?;
    wait_for(
        Duration::from_secs(5),
        "the join button is enabled again",
        async || match join.is_enabled().await {
            Ok(true) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await?;
    if s.count(&testid("room")).await? != 0 {
        return Err("a room is shown after a failed join".into());
    }
    Ok(error)
}
