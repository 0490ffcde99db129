//! The web app in a browser: `videoroom-server` serving the built UI (`--web-root ui/dist`),
//! and headless Debian Chromium driven through it by `browser/driver.mjs` (playwright-core),
//! one JSON command per line.

use crate::procs::Group;
use crate::xvfb::log_file;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

/// The repository root (this crate's parent).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("desktop-tests has a parent")
        .to_path_buf()
}

/// The built web app, `ui/dist`; panics with how to build it if it is not there.
pub fn web_root() -> PathBuf {
    let root = repo_root();
    let dist = root.join("ui/dist");
    assert!(
        dist.join("index.html").is_file(),
        "no built web app at {}: build it first with `npm ci && npm run build` in {} \
         (scripts/test.sh does, before cargo test)",
        dist.display(),
        root.join("ui").display()
    );
    let built = std::fs::metadata(dist.join("index.html")).and_then(|m| m.modified());
    if let Ok(built) = built
        && let Some(newer) = crate::newer_than(&root.join("ui/src"), built)
    {
        eprintln!(
            "warning: {} is newer than {}: the test runs the web app as it was built",
            newer.display(),
            dist.display()
        );
    }
    dist
}

/// A `videoroom-server` process serving the web app; killed on drop.
#[derive(Debug)]
pub struct WebServer {
    group: Group,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Over HTTPS: the certificate's SHA-256 fingerprint, as the server printed it.
    pub fingerprint: Option<String>,
    log: PathBuf,
}

impl WebServer {
    /// Starts `<profile>/videoroom-server --web-root <web_root>` on a free loopback port (plain
    /// HTTP: loopback is a secure context for the browser). Returns once it listens.
    pub async fn start(web_root: &Path, log: &Path) -> Self {
        Self::start_on("127.0.0.1:0", web_root, log).await
    }

    /// [`WebServer::start`] on `listen` (`127.0.0.1:PORT`: the same address again after a
    /// restart).
    pub async fn start_on(listen: &str, web_root: &Path, log: &Path) -> Self {
        Self::start_with(listen, &[], web_root, log).await
    }

    /// [`WebServer::start_on`] with more flags (`--tls-cert …`). A server on every interface
    /// (`0.0.0.0:0`) is reached at 127.0.0.1; one that serves HTTPS prints its certificate's
    /// fingerprint, which is read too.
    pub async fn start_with(listen: &str, args: &[String], web_root: &Path, log: &Path) -> Self {
        let bin = crate::profile_dir().join("videoroom-server");
        assert!(
            bin.is_file(),
            "no server binary at {}: build it with `cargo build -p videoroom-server`",
            bin.display()
        );
        let mut command = Command::new(&bin);
        command
            .env_clear()
            .env("RUST_LOG", "info")
            .args(["--listen", listen, "--rtc-bind-ip", "127.0.0.1"])
            .args(["--udp-port", "0", "--tcp-port", "0"])
            .arg("--web-root")
            .arg(web_root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file(log));
        let mut group = Group::spawn("videoroom-server", &mut command)
            .unwrap_or_else(|e| panic!("starting {} failed: {e}", bin.display()));
        let stdout = group
            .child_mut()
            .stdout
            .take()
            .expect("the server's stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        // stdout carries exactly the `listening on ADDR` line.
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the server did not say where it listens within 30 s; its log:\n{}",
                    crate::tail(log, 30)
                )
            })
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                panic!(
                    "the server exited before listening (does it know --web-root?); its log:\n{}",
                    crate::tail(log, 30)
                )
            });
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from the server: {line:?}"))
            .trim()
            .replace("0.0.0.0:", "127.0.0.1:");
        // Over HTTPS the next line is the certificate's fingerprint; plain HTTP prints nothing
        // more (the wait is short then, and bounded).
        let tls_expected = !listen.starts_with("127.") || args.iter().any(|a| a == "--tls-cert");
        let fingerprint = if tls_expected {
            let next = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await;
            let line = next.ok().and_then(Result::ok).flatten().unwrap_or_default();
            line.strip_prefix("HTTPS certificate SHA-256 fingerprint: ")
                .map(|f| f.trim().to_owned())
        } else {
            None
        };
        Self {
            group,
            addr,
            fingerprint,
            log: log.to_path_buf(),
        }
    }

    /// `ws://ADDR/ws`, or `wss://` over HTTPS.
    pub fn ws_url(&self) -> String {
        let scheme = if self.fingerprint.is_some() {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}/ws", self.addr)
    }

    /// `http://ADDR`, or `https://` over HTTPS.
    pub fn http_url(&self) -> String {
        let scheme = if self.fingerprint.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The last lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        crate::tail(&self.log, n)
    }

    /// SIGTERM (a graceful shutdown), then SIGKILL after 5 s.
    pub async fn stop(mut self) {
        self.group.stop(Duration::from_secs(5)).await;
    }
}

/// Writes a WAV file (48 kHz, mono, 16 bit) of a sine at `hz`, `secs` long, at `amplitude`
/// of full scale: Chromium's fake microphone plays it in a loop
/// (`--use-file-for-fake-audio-capture`). Whole periods, so the loop has no click.
pub fn write_tone_wav(path: &Path, hz: u32, secs: u32, amplitude: f64) -> std::io::Result<()> {
    const RATE: u32 = 48_000;
    let samples = RATE * secs;
    let data_len = samples * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let t = f64::from(i) / f64::from(RATE);
        let v = amplitude * (std::f64::consts::TAU * f64::from(hz) * t).sin();
        out.extend_from_slice(&((v * 32767.0).round() as i16).to_le_bytes());
    }
    std::fs::write(path, out)
}

struct Pipe {
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

/// `node browser/driver.mjs`: Chromium tabs on the web app. Killed (with Chromium) on drop.
pub struct Browser {
    group: Mutex<Group>,
    pipe: Mutex<Pipe>,
    log: PathBuf,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").field("log", &self.log).finish()
    }
}

impl Browser {
    /// Starts the driver (Chromium starts with the first tab). `fake_audio`: a WAV file for
    /// Chromium's microphone. Its output and the pages' consoles go to `log`.
    pub async fn start(fake_audio: Option<&Path>, log: &Path) -> Self {
        Self::start_with(fake_audio, &[], log).await
    }

    /// [`Browser::start`] with more Chromium flags (e.g. `--ignore-certificate-errors`).
    pub async fn start_with(
        fake_audio: Option<&Path>,
        chromium_args: &[String],
        log: &Path,
    ) -> Self {
        let dir = repo_root().join("desktop-tests/browser");
        assert!(
            dir.join("node_modules/playwright-core").exists(),
            "playwright-core is not installed: run `npm ci` in {} (scripts/test.sh does)",
            dir.display()
        );
        assert!(
            Path::new("/usr/bin/chromium").exists(),
            "Debian's chromium is not installed (apt-get install chromium; scripts/test.sh does)"
        );
        let mut command = Command::new("node");
        command
            .arg(dir.join("driver.mjs"))
            .args(["--chromium", "/usr/bin/chromium"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file(log));
        if let Some(wav) = fake_audio {
            command.arg("--fake-audio").arg(wav);
        }
        for arg in chromium_args {
            command.arg("--chromium-arg").arg(arg);
        }
        let mut group = Group::spawn("browser driver", &mut command)
            .unwrap_or_else(|e| panic!("starting node failed: {e} (is Node.js installed?)"));
        let child = group.child_mut();
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Self {
            group: Mutex::new(group),
            pipe: Mutex::new(Pipe {
                stdin,
                stdout,
                next_id: 1,
            }),
            log: log.to_path_buf(),
        }
    }

    /// The last lines of the driver's and the pages' output.
    pub fn log_tail(&self, n: usize) -> String {
        crate::tail(&self.log, n)
    }

    /// Waits (each step at most `bound`) until `person`'s tile in `tab` plays: more than 30
    /// frames drawn, then more frames with other pixels. Returns the frames drawn by then.
    pub async fn wait_plays(
        &self,
        tab: &str,
        person: &str,
        bound: Duration,
    ) -> Result<u64, String> {
        let first = crate::wait_for(bound, &format!("{person}'s video plays"), async || {
            let p = self.probe(tab, person).await?;
            if p["width"].as_u64().unwrap_or(0) > 0 && p["drawn"].as_u64().unwrap_or(0) > 30 {
                Ok(p)
            } else {
                Err(format!("{p}"))
            }
        })
        .await?;
        let later: Value =
            crate::wait_for(bound, &format!("{person}'s video moves on"), async || {
                let p = self.probe(tab, person).await?;
                if p["drawn"].as_u64() > first["drawn"].as_u64() && p["hash"] != first["hash"] {
                    Ok(p)
                } else {
                    Err(format!("first {first}, now {p}"))
                }
            })
            .await?;
        Ok(later["drawn"].as_u64().unwrap_or(0))
    }

    /// Sends `cmd` and waits (at most `bound`) for its answer's fields.
    pub async fn call(&self, mut cmd: Value, bound: Duration) -> Result<Value, String> {
        let mut pipe = self.pipe.lock().await;
        let id = pipe.next_id;
        pipe.next_id += 1;
        cmd["id"] = json!(id);
        let what = cmd["cmd"].as_str().unwrap_or("?").to_owned();
        let exchange = async {
            pipe.stdin
                .write_all(format!("{cmd}\n").as_bytes())
                .await
                .map_err(|e| format!("writing to the driver: {e}"))?;
            pipe.stdin
                .flush()
                .await
                .map_err(|e| format!("writing to the driver: {e}"))?;
            loop {
                let line = pipe
                    .stdout
                    .next_line()
                    .await
                    .map_err(|e| format!("reading from the driver: {e}"))?
                    .ok_or_else(|| "the driver exited".to_owned())?;
                let Ok(answer) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                // An answer to an earlier command that timed out is skipped.
                if answer["id"] == json!(id) {
                    return Ok::<Value, String>(answer);
                }
            }
        };
        let answer = tokio::time::timeout(bound, exchange).await.map_err(|_| {
            format!("the browser driver did not answer `{what}` within {bound:?}")
        })??;
        if answer["ok"] == true {
            Ok(answer)
        } else {
            Err(format!(
                "`{what}` failed in the browser: {}",
                answer["error"].as_str().unwrap_or("?")
            ))
        }
    }

    /// Opens `url` in a fresh browser called `tab`; the HTTP status of the page.
    pub async fn open(&self, tab: &str, url: &str) -> Result<Option<u64>, String> {
        let a = self
            .call(
                json!({"cmd": "open", "tab": tab, "url": url}),
                Duration::from_secs(90),
            )
            .await?;
        Ok(a["status"].as_u64())
    }

    /// Types `text` into the input with `testid` (replacing what it held).
    pub async fn type_into(&self, tab: &str, testid: &str, text: &str) -> Result<(), String> {
        let a = self
            .call(
                json!({"cmd": "type", "tab": tab, "testid": testid, "text": text}),
                Duration::from_secs(20),
            )
            .await?;
        match a["value"].as_str() {
            Some(v) if v == text => Ok(()),
            other => Err(format!("{testid} holds {other:?} after typing {text:?}")),
        }
    }

    pub async fn click(&self, tab: &str, testid: &str) -> Result<(), String> {
        self.call(
            json!({"cmd": "click", "tab": tab, "testid": testid}),
            Duration::from_secs(20),
        )
        .await
        .map(|_| ())
    }

    /// Waits until `css` matches in `tab` (at most `bound`).
    pub async fn wait_css(&self, tab: &str, css: &str, bound: Duration) -> Result<(), String> {
        let ms = bound.as_millis() as u64;
        self.call(
            json!({"cmd": "wait", "tab": tab, "css": css, "timeoutMs": ms}),
            bound + Duration::from_secs(10),
        )
        .await
        .map(|_| ())
    }

    /// What the page shows (see driver.mjs `snapshot`).
    pub async fn snapshot(&self, tab: &str) -> Result<Value, String> {
        let a = self
            .call(
                json!({"cmd": "snapshot", "tab": tab}),
                Duration::from_secs(20),
            )
            .await?;
        Ok(a["snapshot"].clone())
    }

    /// `window.__vrTest.probe(person)` in `tab`.
    pub async fn probe(&self, tab: &str, person: &str) -> Result<Value, String> {
        let a = self
            .call(
                json!({"cmd": "probe", "tab": tab, "person": person}),
                Duration::from_secs(20),
            )
            .await?;
        Ok(a["probe"].clone())
    }

    /// `window.__vrTest.stats()` in `tab`: the browser's media statistics per track.
    pub async fn stats(&self, tab: &str) -> Result<Value, String> {
        let a = self
            .call(json!({"cmd": "stats", "tab": tab}), Duration::from_secs(20))
            .await?;
        Ok(a["stats"].clone())
    }

    /// From [`Browser::stats`]: the page's outbound RTP stream of `source` (`camera`,
    /// `microphone`, `screen`), if it sends one (`packetsSent`, `framesEncoded`, `frameWidth`).
    pub async fn outbound(&self, tab: &str, source: &str) -> Result<Option<Value>, String> {
        let stats = self.stats(tab).await?;
        Ok(stats["outbound"]
            .as_array()
            .and_then(|o| o.iter().find(|r| r["source"] == source).cloned()))
    }

    /// Closes `tab` as a person would; returns once the browser has closed it.
    pub async fn close(&self, tab: &str) -> Result<(), String> {
        self.call(json!({"cmd": "close", "tab": tab}), Duration::from_secs(30))
            .await
            .map(|_| ())
    }

    /// Closes every tab and ends the driver.
    pub async fn quit(self) {
        let _ = self
            .call(json!({"cmd": "quit"}), Duration::from_secs(30))
            .await;
        self.group.lock().await.stop(Duration::from_secs(5)).await;
    }
}
