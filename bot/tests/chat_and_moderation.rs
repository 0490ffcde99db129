//! Chat, raised hands and moderation between real `videoroom-bot` processes: a moderator bot
//! driven through `--commands-from-stdin` chats privately, mutes, removes, locks, unlocks and
//! ends the meeting; the others' `--events` logs and exit codes show what they went through.

mod common;

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;
use videoroom_testkit::{start_server, test_config, ws_url};

/// Bound for anything that normally happens within a second or two.
const WAIT: Duration = Duration::from_secs(30);

/// Light media: no video (no VP8 encoding or decoding on a 2-core machine), a tone as the
/// microphone so there is a microphone track to mute.
const LIGHT: &[&str] = &["--video", "none", "--audio", "tone"];

/// A bot whose `--events` log is at `events`.
struct Watched {
    bot: common::Bot,
    events: PathBuf,
}

/// Starts a bot as [`common::spawn`] does, with light media and an event log.
fn spawn_watched(url: &str, room: &str, name: &str, extra: &[&str]) -> Watched {
    let events = common::temp_path(&format!("{name}-events.jsonl"));
    let events_arg = events.to_string_lossy().into_owned();
    let mut args: Vec<&str> = LIGHT.to_vec();
    args.extend(["--events", &events_arg]);
    args.extend(extra);
    Watched {
        bot: common::spawn(url, room, name, &args),
        events,
    }
}

/// Starts a moderator bot that reads its chat lines and commands from the returned stdin (the
/// same command line as [`common::spawn`], which leaves stdin inherited).
fn spawn_moderator(url: &str, room: &str, name: &str) -> (Watched, ChildStdin) {
    let stats = common::temp_path(&format!("{name}.json"));
    let events = common::temp_path(&format!("{name}-events.jsonl"));
    let mut child = Command::new(common::BOT)
        .args(["--server", url, "--room", room, "--name", name])
        .args(["--media-ip", "127.0.0.1"])
        .arg("--stats-json")
        .arg(&stats)
        .args(LIGHT)
        .arg("--events")
        .arg(&events)
        .arg("--commands-from-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("bot starts");
    let stdin = child.stdin.take().expect("stdin piped");
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, lines) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            let _ = tx.send(line);
        }
    });
    let bot = common::Bot {
        child,
        lines,
        seen: Vec::new(),
        stats: Some(stats),
    };
    (Watched { bot, events }, stdin)
}

/// Types one line into a bot's standard input.
async fn type_line(stdin: &mut ChildStdin, line: &str) {
    stdin
        .write_all(format!("{line}\n").as_bytes())
        .await
        .expect("writing to the bot's stdin");
    stdin.flush().await.expect("flushing the bot's stdin");
}

impl Watched {
    /// Waits (at most [`WAIT`]) for an event satisfying `pred` in the bot's log; returns it.
    async fn wait_event(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let events = common::read_events(&self.events);
            if let Some(event) = events.iter().find(|e| pred(e)) {
                return event.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "{what}: not in {} within {WAIT:?}; the log: {events:#?}\nstdout: {:?}",
                    self.events.display(),
                    self.bot.seen
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every event so far.
    fn events(&self) -> Vec<Value> {
        common::read_events(&self.events)
    }

    /// Stops a bot that would run on: kills it and reaps it.
    async fn stop(mut self) {
        let _ = self.bot.child.kill().await;
    }
}

/// Runs a bot to its end with piped output (for a join that should be refused, or a short stay).
async fn run_bot(url: &str, room: &str, name: &str, extra: &[&str]) -> Output {
    tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(common::BOT)
            .args(["--server", url, "--room", room, "--name", name])
            .args([
                "--media-ip",
                "127.0.0.1",
                "--video",
                "none",
                "--audio",
                "none",
            ])
            .args(extra)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("bot exits in time")
    .expect("bot runs")
}

/// The audio frames per second a status line says the bot sent (`| out 0.0 fps, 50 audio/s`).
fn audio_out_per_s(line: &str) -> Option<f64> {
    let out = line.split("| out ").nth(1)?;
    let audio = out.split(", ").nth(1)?;
    audio.strip_suffix(" audio/s")?.parse().ok()
}

/// Waits (at most [`WAIT`]) for a stdout line satisfying `pred` among those not read yet.
async fn next_line_where(bot: &mut common::Bot, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let line = tokio::time::timeout_at(deadline, bot.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("{what}: not within {WAIT:?}; saw {:?}", bot.seen))
            .unwrap_or_else(|| panic!("{what}: output ended; saw {:?}", bot.seen));
        bot.seen.push(line.clone());
        if pred(&line) {
            return line;
        }
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn is(event: &Value, kind: &str) -> bool {
    event["event"] == kind
}

/// A joins first (the moderator) and confirms it in its log.
async fn moderator_joins(url: &str, room: &str) -> (Watched, ChildStdin) {
    let (a, stdin) = spawn_moderator(url, room, "A");
    let joined = a.wait_event("A joined", |e| is(e, "joined")).await;
    assert_eq!(
        joined["moderator"], true,
        "the first one moderates: {joined}"
    );
    assert_eq!(joined["locked"], false, "{joined}");
    (a, stdin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_private_messages_and_raised_hands_reach_the_others() {
    let started = std::time::Instant::now();
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let (a, mut a_in) = moderator_joins(&url, "chat").await;
    let b = spawn_watched(
        &url,
        "chat",
        "B",
        &["--say", "hello from B", "--raise-hand"],
    );
    let joined = b.wait_event("B joined", |e| is(e, "joined")).await;
    assert_eq!(
        joined["moderator"], false,
        "only the first moderates: {joined}"
    );

    // B's message to everyone and its raised hand, as A sees them.
    let chat = a
        .wait_event("B's chat at A", |e| is(e, "chat") && e["from"] == "B")
        .await;
    assert_eq!(chat["text"], "hello from B", "{chat}");
    assert_eq!(chat["private"], false, "{chat}");
    assert!(chat["to"].is_null(), "{chat}");
    let hand = a
        .wait_event("B's hand at A", |e| {
            is(e, "peer_updated") && e["name"] == "B" && e["hand_raised"] == true
        })
        .await;
    assert_eq!(hand["moderator"], false, "{hand}");
    // The sender gets its own message back (the server's confirmation).
    b.wait_event("B's own chat echoed", |e| {
        is(e, "chat") && e["from"] == "B" && e["text"] == "hello from B"
    })
    .await;

    // A private message, typed into A.
    type_line(&mut a_in, "/msg B psst").await;
    let private = b
        .wait_event("A's private message at B", |e| {
            is(e, "chat") && e["text"] == "psst"
        })
        .await;
    assert_eq!(private["from"], "A", "{private}");
    assert_eq!(private["private"], true, "{private}");
    assert!(private["to"].is_string(), "a recipient is named: {private}");
    let echo = a
        .wait_event("A's private message echoed", |e| {
            is(e, "chat") && e["text"] == "psst"
        })
        .await;
    assert_eq!(echo["private"], true, "{echo}");
    assert_eq!(echo["to"], "B", "{echo}");

    // Markup is plain text: delivered exactly as typed.
    let markup = "<b>x</b><script>y</script>";
    type_line(&mut a_in, markup).await;
    let chat = b
        .wait_event("A's markup at B", |e| {
            is(e, "chat") && e["from"] == "A" && !e["private"].as_bool().unwrap_or(true)
        })
        .await;
    assert_eq!(chat["text"], markup, "{chat}");
    assert!(chat["to"].is_null(), "{chat}");

    // Nothing went wrong on either side, and B's own hand came back raised.
    b.wait_event("B's own hand", |e| {
        is(e, "peer_updated") && e["name"] == "B" && e["hand_raised"] == true
    })
    .await;
    for bot in [&a, &b] {
        let errors: Vec<Value> = bot
            .events()
            .into_iter()
            .filter(|e| is(e, "error"))
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
    }
    drop(a_in);
    a.stop().await;
    b.stop().await;
    server.shutdown(Duration::from_secs(2)).await;
    eprintln!("chat test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderator_mutes_removes_locks_and_unlocks() {
    let started = std::time::Instant::now();
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let (a, mut a_in) = moderator_joins(&url, "mod").await;
    let mut b = spawn_watched(&url, "mod", "B", &[]);
    // The server mutes B's published microphone: wait until A has it.
    a.wait_event("B's microphone at A", |e| {
        is(e, "track_added") && e["name"] == "B" && e["kind"] == "audio"
    })
    .await;
    b.wait_event("B joined", |e| is(e, "joined")).await;
    // B's tone is going out.
    next_line_where(&mut b.bot, "B sending audio", |l| {
        audio_out_per_s(l).is_some_and(|n| n > 0.0)
    })
    .await;

    type_line(&mut a_in, "/mute B").await;
    let moderated = b.wait_event("B moderated", |e| is(e, "moderated")).await;
    assert_eq!(moderated["action"], "mute_microphone", "{moderated}");
    assert_eq!(moderated["by"], "A", "{moderated}");
    // The engine turned B's microphone off itself: after the line telling of the mute, B's
    // status soon shows no audio going out.
    next_line_where(&mut b.bot, "B tells of the mute", |l| {
        l.contains("\"moderated\"")
    })
    .await;
    next_line_where(&mut b.bot, "B's microphone off", |l| {
        audio_out_per_s(l) == Some(0.0)
    })
    .await;
    a.wait_event("B's microphone muted at A", |e| {
        is(e, "track_muted") && e["name"] == "B" && e["kind"] == "audio"
    })
    .await;

    type_line(&mut a_in, "/remove B go away").await;
    let code = b.bot.wait_exit(WAIT).await;
    let removed = b.events().into_iter().find(|e| is(e, "removed"));
    assert_eq!(code, 7, "B removed; its log: {:#?}", b.events());
    let removed = removed.expect("B's log has `removed`");
    assert_eq!(removed["reason"], "go away", "{removed}");
    assert_eq!(removed["by"], "A", "{removed}");
    a.wait_event("B gone at A", |e| is(e, "peer_left") && e["name"] == "B")
        .await;

    // Locked: C is refused.
    type_line(&mut a_in, "/lock").await;
    a.wait_event("room locked", |e| {
        is(e, "room_locked") && e["locked"] == true
    })
    .await;
    let out = run_bot(&url, "mod", "C", &["--duration", "2s"]).await;
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).to_lowercase().contains("locked"),
        "{}",
        stderr(&out)
    );

    // Unlocked: C gets in and leaves when its time is up.
    type_line(&mut a_in, "/unlock").await;
    a.wait_event("room unlocked", |e| {
        is(e, "room_locked") && e["locked"] == false
    })
    .await;
    let out = run_bot(&url, "mod", "C", &["--duration", "2s"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    a.wait_event("C joined at A", |e| {
        is(e, "peer_joined") && e["name"] == "C"
    })
    .await;
    a.wait_event("C left at A", |e| is(e, "peer_left") && e["name"] == "C")
        .await;

    drop(a_in);
    a.stop().await;
    server.shutdown(Duration::from_secs(2)).await;
    eprintln!("moderation test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_the_meeting_sends_everyone_away_with_code_7() {
    let started = std::time::Instant::now();
    let server = start_server(test_config()).await;
    let url = ws_url(&server);
    let (mut a, mut a_in) = moderator_joins(&url, "end").await;
    let mut b = spawn_watched(&url, "end", "B", &[]);
    a.wait_event("B at A", |e| is(e, "peer_joined") && e["name"] == "B")
        .await;
    b.wait_event("B joined", |e| is(e, "joined")).await;

    type_line(&mut a_in, "/end").await;
    let b_code = b.bot.wait_exit(WAIT).await;
    assert_eq!(b_code, 7, "B: {:#?}", b.events());
    // A, the moderator, gets `meeting_ended` too and goes the same way, by itself: its stdin
    // stays open, as a terminal's would.
    let a_exit = tokio::time::timeout(Duration::from_secs(10), a.bot.child.wait()).await;
    let a_code = match a_exit {
        Ok(status) => status.expect("wait").code().expect("exited normally"),
        Err(_) => {
            let finished = a.bot.report()["name"] == "A";
            drop(a_in);
            let after_eof = a.bot.wait_exit(WAIT).await;
            panic!(
                "A did not exit within 10 s of the meeting's end although it had finished its \
                 run (stats written: {finished}); it exited with {after_eof} only once its \
                 stdin was closed: the blocking read behind --commands-from-stdin holds up the \
                 runtime's shutdown. A's log: {:#?}",
                a.events()
            );
        }
    };
    assert_eq!(a_code, 7, "A, the moderator, too: {:#?}", a.events());
    let ended = b
        .events()
        .into_iter()
        .find(|e| is(e, "meeting_ended"))
        .expect("B's log has `meeting_ended`");
    assert_eq!(ended["by"], "A", "{ended}");
    assert!(
        a.events().iter().any(|e| is(e, "meeting_ended")),
        "A's log has `meeting_ended`: {:#?}",
        a.events()
    );
    // Both still wrote their stats.
    assert_eq!(a.bot.report()["name"], "A");
    assert_eq!(b.bot.report()["name"], "B");
    server.shutdown(Duration::from_secs(2)).await;
    eprintln!("end-meeting test took {:?}", started.elapsed());
}
