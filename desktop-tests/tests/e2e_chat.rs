//! Chat, raised hands and moderation in the desktop app, against a bot that is the room's
//! moderator (it joined first). The bot's messages appear in the app, with an unread badge while
//! the panel is closed; a message made of markup and script shows as plain text and runs
//! nothing; the app's message reaches the bot; the app's raised hand is seen by the bot; the bot
//! mutes the app's microphone (the app's button shows it off, and a notice says who did it);
//! the bot removes the app, which goes back to the lobby showing the bot's reason.
//!
//! Same prerequisites as `e2e.rs`; logs in `<target>/e2e/chat/`.

use std::path::Path;
use std::time::{Duration, Instant};
use videoroom_desktop_tests::bot::{self, BotSpec};
use videoroom_desktop_tests::driver::{Launched, Session, testid};
use videoroom_desktop_tests::procs::Group;
use videoroom_desktop_tests::{wait_for, within, work_dir};
use videoroom_testkit::{start_server, test_config, ws_url};

const ROOM: &str = "chat";
const BOT: &str = "Grace";
const ME: &str = "Ada";
/// A message that would run script or draw markup if the chat rendered it as HTML.
const MARKUP: &str =
    r#"<b>bold</b><script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 2">"#;
const REASON: &str = "Time to go";
const BOUND: Duration = Duration::from_secs(20);
const SCENARIO_BOUND: Duration = Duration::from_secs(150);
/// WebDriver's Enter key.
const ENTER: &str = "\u{E007}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_hand_mute_and_removal_by_a_moderator() {
    let started = Instant::now();
    let work = work_dir("chat");
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let events = work.join("bot-events.jsonl");
    let bot_log = work.join("bot.log");
    // The bot comes first: the first participant of an open room is its moderator.
    let mut spec = BotSpec::new(&url, ROOM, BOT, &bot_log);
    spec.args = ["--video", "none", "--audio", "none", "--duration", "180s"]
        .map(String::from)
        .to_vec();
    spec.events = Some(events.clone());
    spec.commands = true;
    let mut grace = spec.spawn();
    let app = Launched::start(&work, true).await;
    let outcome = within(SCENARIO_BOUND, async {
        bot::wait_event(&events, "joined", BOUND, |e| e["moderator"] == true).await?;
        scenario(&app, &mut grace, &url, &events, &work).await
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

async fn scenario(
    app: &Launched,
    grace: &mut Group,
    url: &str,
    events: &Path,
    work: &Path,
) -> Result<(), String> {
    let s = &app.session;
    let step = Instant::now();
    s.join(url, ROOM, ME).await?;
    s.wait_css(&format!(r#"{}[data-name="{BOT}"]"#, testid("tile")), BOUND)
        .await?;
    wait_bot_saw(events, "peer_joined", |e| e["name"] == ME).await?;

    // Two messages while the panel is closed: the badge counts them.
    bot::say(grace, "Hello from Grace").await?;
    wait_text(s, &testid("unread-badge"), "1").await?;
    bot::say(grace, MARKUP).await?;
    wait_text(s, &testid("unread-badge"), "2").await?;
    eprintln!("unread badge counts 2 ({:.1?})", step.elapsed());

    // Opened: both messages, the markup as literal text; nothing of it became an element.
    s.click(&testid("chat-toggle")).await?;
    let from_bot = format!(r#"{}[data-from="{BOT}"]"#, testid("chat-message"));
    wait_for(BOUND, "both messages are listed", async || {
        match s.count(&from_bot).await? {
            2 => Ok(()),
            n => Err(format!("{n} messages from {BOT}")),
        }
    })
    .await?;
    let texts = all_texts(s, &format!("{from_bot} .chat-text")).await?;
    if texts != ["Hello from Grace", MARKUP] {
        return Err(format!("the chat shows {texts:?}"));
    }
    let list = testid("chat-list");
    let injected = s
        .count(&format!("{list} b, {list} script, {list} img"))
        .await?;
    let pwned = s
        .client
        .execute("return window.__pwned === undefined;", vec![])
        .await
        .map_err(|e| e.to_string())?;
    if injected != 0 || pwned != serde_json::Value::Bool(true) {
        return Err(format!(
            "markup in a message became {injected} elements (script ran: {})",
            pwned != serde_json::Value::Bool(true)
        ));
    }
    if s.count(&testid("unread-badge")).await? != 0 {
        return Err("the unread badge stays with the chat open".into());
    }
    eprintln!(
        "messages shown as text, badge cleared ({:.1?})",
        step.elapsed()
    );

    // Ada writes; Enter sends.
    let input = s.wait_css(&testid("chat-input"), BOUND).await?;
    input
        .send_keys(&format!("Hi Grace{ENTER}"))
        .await
        .map_err(|e| format!("typing into the chat: {e}"))?;
    wait_bot_saw(events, "chat", |e| {
        e["from"] == ME && e["text"] == "Hi Grace"
    })
    .await?;
    let own = format!(r#"{}[data-own="true"]"#, testid("chat-message"));
    s.wait_css(&own, BOUND).await?;
    if !s.value(&testid("chat-input")).await?.is_empty() {
        return Err("the chat input keeps the sent text".into());
    }
    eprintln!("{ME}'s message reached {BOT} ({:.1?})", step.elapsed());

    // A raised hand, seen by the bot and on Ada's own tile.
    s.click(&testid("hand-toggle")).await?;
    s.wait_attr(&testid("hand-toggle"), "aria-pressed", "true", BOUND)
        .await?;
    wait_bot_saw(events, "peer_updated", |e| {
        e["name"] == ME && e["hand_raised"] == true
    })
    .await?;
    s.wait_attr(
        &format!(r#"{}[data-self="true"]"#, testid("tile")),
        "data-hand",
        "true",
        BOUND,
    )
    .await?;
    eprintln!("hand raised, seen by {BOT} ({:.1?})", step.elapsed());

    // The moderator mutes Ada: her button shows it, a notice says who, the bot sees the mute.
    // (A track is published on its first packet: once the bot has Ada's microphone, the mute
    // reaches it as `track_muted`.)
    s.wait_attr(&testid("mic-toggle"), "data-on", "true", BOUND)
        .await?;
    wait_bot_saw(events, "track_added", |e| {
        e["name"] == ME && e["kind"] == "audio"
    })
    .await?;
    bot::say(grace, &format!("/mute {ME}")).await?;
    s.wait_attr(&testid("mic-toggle"), "data-on", "false", BOUND)
        .await?;
    wait_for(BOUND, "a notice names who muted us", async || {
        let toasts = all_texts(s, &testid("toast")).await?;
        match toasts.iter().any(|t| t.contains(BOT) && t.contains("mute")) {
            true => Ok(()),
            false => Err(format!("notices: {toasts:?}")),
        }
    })
    .await?;
    wait_bot_saw(events, "track_muted", |e| {
        e["name"] == ME && e["kind"] == "audio"
    })
    .await?;
    eprintln!("muted by {BOT} ({:.1?})", step.elapsed());
    // What a person sees now: the chat, the raised hand, the notice (for a look by eye).
    app.xvfb
        .screenshot()?
        .write_png(&work.join("chat-screen.png"))?;

    // Removed, with a reason: back in the lobby, which says who and why.
    bot::say(grace, &format!("/remove {ME} {REASON}")).await?;
    s.wait_css(&testid("lobby"), BOUND).await?;
    let shown = wait_for(BOUND, "the lobby says why", async || {
        let el = s
            .wait_css(&testid("lobby-error"), Duration::from_secs(1))
            .await?;
        let text = el.text().await.map_err(|e| e.to_string())?;
        match text.contains(REASON) && text.contains(BOT) {
            true => Ok(text),
            false => Err(format!("lobby error: {text:?}")),
        }
    })
    .await?;
    s.wait_attr(&testid("lobby-error"), "data-kind", "removed", BOUND)
        .await?;
    wait_bot_saw(events, "peer_left", |e| e["name"] == ME).await?;
    eprintln!(
        "removed: the lobby shows {shown:?} ({:.1?})",
        step.elapsed()
    );
    Ok(())
}

/// Waits until the bot logged `event` matching `pred`.
async fn wait_bot_saw(
    events: &Path,
    event: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Result<(), String> {
    bot::wait_event(events, event, BOUND, pred).await
}

/// Waits until the first element matching `css` shows `text`.
async fn wait_text(s: &Session, css: &str, text: &str) -> Result<(), String> {
    wait_for(BOUND, &format!("{css} shows {text:?}"), async || {
        let shown = all_texts(s, css).await?;
        match shown.first().map(|t| t.trim() == text) {
            Some(true) => Ok(()),
            _ => Err(format!("shows {shown:?}")),
        }
    })
    .await
}

/// The text of every element matching `css`.
async fn all_texts(s: &Session, css: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for el in s
        .client
        .find_all(fantoccini::Locator::Css(css))
        .await
        .map_err(|e| format!("{css}: {e}"))?
    {
        out.push(el.text().await.map_err(|e| format!("{css}: {e}"))?);
    }
    Ok(out)
}
