//! The web app over HTTPS, as people reach a self-hosted server: headless Chromium opens
//! `https://…/r/ROOM`, joins over `wss://` and is in a call with a bot (which trusts the
//! server's certificate by the fingerprint the server printed). Twice:
//!
//! - a **self-signed** certificate: the server listens on every interface (`0.0.0.0`), so it
//!   makes one itself; Chromium is told to accept certificate errors, as a person clicking
//!   through the warning would;
//! - a **certificate file** (`--tls-cert/--tls-key`, made with `openssl req`, as an operator
//!   would): Chromium accepts exactly that certificate's key (`--ignore-certificate-errors-spki-list`)
//!   and nothing else.
//!
//! Each time the browser plays the bot's moving video and the bot decodes more than 60 frames
//! of the browser's. Needs what `e2e_browser.rs` needs, plus `openssl`. Logs in
//! `<target>/e2e/browser-https/`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use videoroom_desktop_tests::bot::{self, BotSpec};
use videoroom_desktop_tests::browser::{Browser, WebServer, web_root};
use videoroom_desktop_tests::driver::testid;
use videoroom_desktop_tests::{wait_for, within, work_dir};

const ROOM: &str = "secure";
const BOT: &str = "Bot1";
const WEB: &str = "Chrome";
const BOUND: Duration = Duration::from_secs(30);
const SCENARIO_BOUND: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_works_over_https_self_signed_and_with_a_certificate_file() {
    let started = Instant::now();
    let work = work_dir("browser-https");
    let dist = web_root();

    // 1. Self-signed: a server on every interface makes its own certificate.
    let self_signed = work.join("self-signed");
    std::fs::create_dir_all(&self_signed).expect("work dir");
    let server =
        WebServer::start_with("0.0.0.0:0", &[], &dist, &self_signed.join("server.log")).await;
    call_over_https(
        &server,
        &["--ignore-certificate-errors".to_owned()],
        &self_signed,
    )
    .await;
    server.stop().await;
    eprintln!("self-signed: passed ({:.1?})", started.elapsed());

    // 2. A certificate file, accepted by its key only.
    let files = work.join("certificate-file");
    std::fs::create_dir_all(&files).expect("work dir");
    let (cert, key, spki) = make_certificate(&files);
    let args = [
        "--tls-cert".to_owned(),
        cert.display().to_string(),
        "--tls-key".to_owned(),
        key.display().to_string(),
    ];
    let server =
        WebServer::start_with("127.0.0.1:0", &args, &dist, &files.join("server.log")).await;
    let printed = server
        .fingerprint
        .clone()
        .expect("the server prints its fingerprint");
    let expected = openssl_fingerprint(&cert);
    assert_eq!(
        printed, expected,
        "the server serves another certificate than the file's"
    );
    call_over_https(
        &server,
        &[format!("--ignore-certificate-errors-spki-list={spki}")],
        &files,
    )
    .await;
    server.stop().await;
    eprintln!("e2e_browser_https passed in {:.1?}", started.elapsed());
}

/// The browser and a bot in a call through `server` over HTTPS; panics with the logs if not.
async fn call_over_https(server: &WebServer, chromium_args: &[String], work: &Path) {
    let fingerprint = server
        .fingerprint
        .clone()
        .unwrap_or_else(|| panic!("the server serves no HTTPS:\n{}", server.log_tail(20)));
    assert!(server.http_url().starts_with("https://"));
    let bot_log = work.join("bot.log");
    let stats = work.join("bot-stats.json");
    let mut spec = BotSpec::publishing(&server.ws_url(), ROOM, BOT, &bot_log);
    spec.stats = Some(stats.clone());
    spec.args = vec!["--trust-certificate".into(), fingerprint];
    let mut bot = spec.spawn();
    let browser = Browser::start_with(None, chromium_args, &work.join("browser.log")).await;

    let outcome = within(SCENARIO_BOUND, async {
        let url = format!("{}/r/{ROOM}", server.http_url());
        let status = browser.open(WEB, &url).await?;
        if status != Some(200) {
            return Err(format!("{url} answered {status:?}"));
        }
        browser.wait_css(WEB, &testid("lobby"), BOUND).await?;
        browser.type_into(WEB, "display-name", WEB).await?;
        browser.click(WEB, "join").await?;
        browser.wait_css(WEB, &testid("room"), BOUND).await?;
        let frames = browser.wait_plays(WEB, BOT, BOUND).await?;
        eprintln!("{WEB} plays {BOT}'s video over wss:// ({frames} frames)");
        // The browser has sent twice what the bot must decode, then the bot's statistics.
        wait_for(
            BOUND,
            &format!("{WEB} sends 120 video frames"),
            async || {
                let stats = browser.stats(WEB).await?;
                let sent = stats["outbound"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|o| o["kind"] == "video")
                    .filter_map(|o| o["framesEncoded"].as_u64())
                    .sum::<u64>();
                if sent > 120 {
                    Ok(())
                } else {
                    Err(format!("{sent} frames sent"))
                }
            },
        )
        .await?;
        bot_frames_of_browser(&stats, &mut bot).await?;
        Ok(())
    })
    .await;
    let browser_tail = browser.log_tail(40);
    browser.quit().await;
    if let Err(e) = outcome {
        panic!(
            "{e}\n\n--- browser driver and pages ---\n{browser_tail}\n\n--- server ---\n{}\n\n\
             --- bot ---\n{}",
            server.log_tail(20),
            videoroom_desktop_tests::tail(&bot_log, 20)
        );
    }
}

/// Stops the bot (SIGINT writes its statistics) and checks it decoded more than 60 frames of
/// the browser's video.
async fn bot_frames_of_browser(
    stats: &Path,
    bot: &mut videoroom_desktop_tests::procs::Group,
) -> Result<u64, String> {
    let video = bot::stop_and_read_track(bot, stats, WEB, "video").await?;
    let frames = video["frames_decoded"].as_u64().unwrap_or(0);
    if frames > 60 {
        eprintln!("{BOT} decoded {frames} frames of {WEB}'s video");
        Ok(frames)
    } else {
        Err(format!("the bot decoded {frames} frames of {WEB}'s video"))
    }
}

/// A certificate for 127.0.0.1 and localhost, as an operator makes one with openssl; returns
/// the certificate and key files and the base64 SHA-256 of its public key (Chromium's SPKI form).
fn make_certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs (apt-get install openssl)");
    assert!(
        made.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let spki = Command::new("sh")
        .arg("-c")
        .arg(
            "openssl x509 -in \"$1\" -pubkey -noout | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | base64",
        )
        .arg("sh")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    let spki = String::from_utf8_lossy(&spki.stdout).trim().to_owned();
    assert_eq!(spki.len(), 44, "not a base64 SHA-256: {spki:?}");
    (cert, key, spki)
}

/// `openssl x509 -fingerprint -sha256`, in the server's `AA:BB:…` form.
fn openssl_fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("openssl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .rsplit('=')
        .next()
        .unwrap_or_default()
        .to_owned()
}
