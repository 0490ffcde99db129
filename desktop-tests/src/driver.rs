//! The app under WebDriver: `tauri-driver` (which starts WebKitWebDriver, which starts the app)
//! and a fantoccini session with helpers for the UI's test ids and `window.__vrTest`
//! (docs/desktop.md, "UI test hooks").

use crate::procs::Group;
use crate::xvfb::log_file;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// A running `tauri-driver`; it and everything it started (the native driver, the app, WebKit's
/// processes) are killed on drop.
#[derive(Debug)]
pub struct Driver {
    group: Group,
    port: u16,
    log: PathBuf,
}

fn tauri_driver_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TAURI_DRIVER") {
        return p.into();
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    match cargo_home.map(|h| h.join("bin/tauri-driver")) {
        Some(p) if p.is_file() => p,
        _ => "tauri-driver".into(),
    }
}

fn native_driver_bin() -> PathBuf {
    std::env::var_os("WEBKIT_WEBDRIVER")
        .map_or_else(|| "/usr/bin/WebKitWebDriver".into(), PathBuf::from)
}

impl Driver {
    /// Starts `tauri-driver` for an app on `display`, with the app's environment
    /// ([`crate::app_env`] + `VIDEOROOM_TEST_HOOKS=1`; WebKitWebDriver and the app inherit it).
    /// Its output and the app's go to `<work>/driver.log`. Returns once it answers `/status`.
    pub async fn start(display: &str, work: &Path, media: Media) -> Self {
        let native = native_driver_bin();
        assert!(
            native.is_file(),
            "no WebKitWebDriver at {} (apt-get install webkit2gtk-driver, or set WEBKIT_WEBDRIVER)",
            native.display()
        );
        let mut log = work.join("driver.log");
        let mut last_error = String::new();
        // A port picked by `free_port` can be taken before tauri-driver binds it: try again.
        for _ in 0..3 {
            let (port, native_port) = (crate::free_port(), crate::free_port());
            let mut command = Command::new(tauri_driver_bin());
            command
                .args(["--port", &port.to_string()])
                .args(["--native-port", &native_port.to_string()])
                .arg("--native-driver")
                .arg(&native)
                .envs(crate::app_env(display, work))
                .env("VIDEOROOM_TEST_HOOKS", "1")
                .env(
                    "VIDEOROOM_FAKE_MEDIA",
                    match media {
                        Media::Synthetic => "1",
                        Media::Devices => "0",
                    },
                )
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(log_file(&log))
                .stderr(log_file(&log));
            for var in crate::APP_ENV_CLEARED
                .iter()
                .filter(|v| **v != "VIDEOROOM_TEST_HOOKS")
            {
                command.env_remove(var);
            }
            let group = Group::spawn("tauri-driver", &mut command).unwrap_or_else(|e| {
                panic!(
                    "starting tauri-driver failed: {e} \
                     (cargo install tauri-driver --version 2.1.0 --locked, or set TAURI_DRIVER)"
                )
            });
            let mut driver = Self { group, port, log };
            // tauri-driver answers before WebKitWebDriver listens; /status is forwarded to it.
            let ready = crate::wait_for(
                Duration::from_secs(30),
                "tauri-driver and WebKitWebDriver answer GET /status",
                async || {
                    if let Some(status) = driver.group.exited() {
                        return Ok(Err(format!("tauri-driver exited: {status}")));
                    }
                    http_status(port, "/status").await.map(Ok)
                },
            )
            .await;
            match ready {
                Ok(Ok(200)) => return driver,
                Ok(Ok(code)) => last_error = format!("/status answered {code}"),
                Ok(Err(e)) | Err(e) => last_error = e,
            }
            driver.group.stop(Duration::from_secs(2)).await;
            log = driver.log.clone();
        }
        panic!(
            "tauri-driver did not come up: {last_error}; its log:\n{}",
            crate::tail(&log, 30)
        );
    }

    /// The tauri-driver process (its group holds the native driver, the app and WebKit).
    pub fn pid(&self) -> u32 {
        self.group.pid()
    }

    /// The last `n` lines of tauri-driver's, WebKitWebDriver's and the app's output.
    pub fn log_tail(&self, n: usize) -> String {
        crate::tail(&self.log, n)
    }

    /// Launches `app` through WebDriver and returns the session on its window.
    pub async fn open(&self, app: &Path) -> Session {
        let mut caps = serde_json::Map::new();
        // No `browserName`: tauri-driver turns this into `webkitgtk:browserOptions`.
        caps.insert(
            "tauri:options".into(),
            json!({ "application": app.to_string_lossy() }),
        );
        // WebKitWebDriver waits for the app's automation session for ever (e.g. if the binary is
        // no WebKitGTK app, or crashes at start): bound it.
        let bound = Duration::from_secs(60);
        let connect = tokio::time::timeout(
            bound,
            ClientBuilder::new(HttpConnector::new())
                .capabilities(caps)
                .connect(&format!("http://127.0.0.1:{}", self.port)),
        )
        .await;
        match connect {
            Ok(Ok(client)) => Session { client },
            Ok(Err(e)) => panic!(
                "WebDriver could not start {}: {e}; driver + app output:\n{}",
                app.display(),
                self.log_tail(40)
            ),
            Err(_) => panic!(
                "WebDriver did not get a session on {} within {bound:?} (did the app start? is \
                 it the Tauri app?); driver + app output:\n{}",
                app.display(),
                self.log_tail(40)
            ),
        }
    }

    /// Terminates tauri-driver and everything it started.
    pub async fn stop(&mut self) {
        self.group.stop(Duration::from_secs(3)).await;
    }
}

/// The status code of `GET path` on 127.0.0.1:`port`.
async fn http_status(port: u16, path: &str) -> Result<u16, String> {
    let request = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head)
    };
    let head = tokio::time::timeout(Duration::from_secs(5), request)
        .await
        .map_err(|_| format!("GET {path}: no answer within 5 s"))?
        .map_err(|e| format!("GET {path}: {e}"))?;
    // "HTTP/1.1 200"
    String::from_utf8_lossy(&head[9..12])
        .parse()
        .map_err(|_| format!("GET {path}: not HTTP: {:?}", String::from_utf8_lossy(&head)))
}

/// What `window.__vrTest.probe(name)` returns: the render worker's view of one tile.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Frames drawn in the tile so far.
    pub drawn: u64,
    /// FNV-1a hash of a subsample of the tile's pixels.
    pub hash: u64,
    /// Burned-in frame number of the last drawn frame (if it decoded).
    pub frame_number: Option<u64>,
    pub width: u64,
    pub height: u64,
}

/// `[data-testid=<id>]`.
pub fn testid(id: &str) -> String {
    format!("[data-testid={id}]")
}

/// A WebDriver session on the app's window.
#[derive(Debug)]
pub struct Session {
    pub client: Client,
}

impl Session {
    /// The element matching `css` once it exists, within `bound`.
    pub async fn wait_css(&self, css: &str, bound: Duration) -> Result<Element, String> {
        crate::wait_for(bound, &format!("{css} is shown"), async || {
            self.client
                .find(Locator::Css(css))
                .await
                .map_err(|e| e.to_string())
        })
        .await
    }

    /// Where the element matching `css` is on the screen, in whole pixels, once it exists
    /// (within `bound`).
    pub async fn wait_rect(
        &self,
        css: &str,
        bound: Duration,
    ) -> Result<crate::image::Rect, String> {
        let (x, y, w, h) = self
            .wait_css(css, bound)
            .await?
            .rectangle()
            .await
            .map_err(|e| format!("{css} rectangle: {e}"))?;
        Ok(crate::image::Rect {
            x: x.max(0.0) as u32,
            y: y.max(0.0) as u32,
            w: w as u32,
            h: h as u32,
        })
    }

    /// Attribute `name` of the first element matching `css` (None: no such attribute).
    pub async fn attr(&self, css: &str, name: &str) -> Result<Option<String>, String> {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .map_err(|e| format!("{css}: {e}"))?;
        el.attr(name)
            .await
            .map_err(|e| format!("{css} @{name}: {e}"))
    }

    /// How many elements match `css` now.
    pub async fn count(&self, css: &str) -> Result<usize, String> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|v| v.len())
            .map_err(|e| format!("{css}: {e}"))
    }

    /// Fills the lobby (server, room, name) as a person would, clicks join and waits for the
    /// room view.
    pub async fn join(&self, url: &str, room: &str, name: &str) -> Result<(), String> {
        self.wait_lobby(Duration::from_secs(60)).await?;
        self.type_into(&testid("server-url"), url).await?;
        self.type_into(&testid("room-name"), room).await?;
        self.type_into(&testid("display-name"), name).await?;
        self.click(&testid("join")).await?;
        self.wait_css(&testid("room"), Duration::from_secs(30))
            .await
            .map(|_| ())
    }

    /// Waits until attribute `name` of `css` is `value`.
    pub async fn wait_attr(
        &self,
        css: &str,
        name: &str,
        value: &str,
        bound: Duration,
    ) -> Result<(), String> {
        crate::wait_for(
            bound,
            &format!("{css} has {name}={value:?}"),
            async || match self.attr(css, name).await? {
                Some(v) if v == value => Ok(()),
                other => Err(format!("{name} is {other:?}")),
            },
        )
        .await
    }

    /// The `value` of an input or select.
    pub async fn value(&self, css: &str) -> Result<String, String> {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .map_err(|e| format!("{css}: {e}"))?;
        el.prop("value")
            .await
            .map_err(|e| format!("{css}.value: {e}"))
            .map(Option::unwrap_or_default)
    }

    /// Replaces the text of the input `css` by typing `text`, and checks it took.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .map_err(|e| format!("{css}: {e}"))?;
        el.clear()
            .await
            .map_err(|e| format!("clearing {css}: {e}"))?;
        el.send_keys(text)
            .await
            .map_err(|e| format!("typing into {css}: {e}"))?;
        let now = self.value(css).await?;
        if now == text {
            Ok(())
        } else {
            Err(format!("{css} holds {now:?} after typing {text:?}"))
        }
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) -> Result<(), String> {
        self.client
            .find(Locator::Css(css))
            .await
            .map_err(|e| format!("{css}: {e}"))?
            .click()
            .await
            .map_err(|e| format!("clicking {css}: {e}"))
    }

    /// Presses and releases `key` on whatever has the focus.
    pub async fn press(&self, key: char) -> Result<(), String> {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let actions = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
        self.client
            .perform_actions(actions)
            .await
            .map_err(|e| format!("pressing {key:?}: {e}"))
    }

    /// `window.__vrTest.probe(name)`.
    pub async fn probe(&self, name: &str) -> Result<Probe, String> {
        const SCRIPT: &str = r#"
            const [name, done] = arguments;
            if (!window.__vrTest) {
                done({ error: "window.__vrTest is missing (is VIDEOROOM_TEST_HOOKS=1 set?)" });
                return;
            }
            window.__vrTest.probe(name).then(
                (r) => done({ ok: r }),
                (e) => done({ error: String((e && e.message) || e) }),
            );
        "#;
        let out = self
            .client
            .execute_async(SCRIPT, vec![json!(name)])
            .await
            .map_err(|e| format!("probe({name:?}): {e}"))?;
        if let Some(e) = out.get("error") {
            return Err(format!("probe({name:?}): {}", e.as_str().unwrap_or("?")));
        }
        let r = &out["ok"];
        let num = |k: &str| r[k].as_f64().map(|v| v as u64);
        Ok(Probe {
            drawn: num("drawn").ok_or_else(|| format!("probe({name:?}) returned {out}"))?,
            hash: num("hash").unwrap_or_default(),
            frame_number: num("frameNumber"),
            width: num("width").unwrap_or_default(),
            height: num("height").unwrap_or_default(),
        })
    }

    /// Waits until `name`'s tile has drawn a frame; returns the probe that saw it.
    pub async fn wait_drawn(&self, name: &str, bound: Duration) -> Result<Probe, String> {
        crate::wait_for(
            bound,
            &format!("{name}'s tile has drawn a frame"),
            async || match self.probe(name).await? {
                p if p.drawn > 0 => Ok(p),
                p => Err(format!("{p:?}")),
            },
        )
        .await
    }

    /// `window.__vrTest.state()`: the UI store as JSON (Null if unavailable).
    pub async fn state(&self) -> Value {
        self.client
            .execute(
                "return window.__vrTest ? window.__vrTest.state() : null;",
                vec![],
            )
            .await
            .unwrap_or(Value::Null)
    }

    /// Where the window is (`tauri://localhost/` for a built app).
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map_or_else(|e| format!("(unknown: {e})"), |u| u.to_string())
    }

    /// Waits for the lobby. A dev build of the app (it loads the Vite dev server on :5173) with
    /// no dev server running fails at once, saying how to build the app properly.
    pub async fn wait_lobby(&self, bound: Duration) -> Result<Element, String> {
        let css = testid("lobby");
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let why = match self.client.find(Locator::Css(&css)).await {
                Ok(el) => return Ok(el),
                Err(e) => e.to_string(),
            };
            let url = self.url().await;
            if url.contains(":5173")
                && tokio::net::TcpStream::connect(("127.0.0.1", 5173))
                    .await
                    .is_err()
            {
                return Err(format!(
                    "this is a dev build of the app (--no-default-features): it loads {url}, \
                     where no Vite dev server runs. Build it with the UI embedded: `cargo tauri \
                     build --debug --bundles deb`, or `npm run build` in ui/ and then a plain \
                     `cargo build -p videoroom-desktop`"
                ));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "timed out after {bound:?} waiting until {css} is shown; the window shows \
                     {url}; last: {why}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// What the app captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// The moving pattern and a tone (`VIDEOROOM_FAKE_MEDIA=1`).
    Synthetic,
    /// The machine's own cameras and microphones (none on a CI machine).
    Devices,
}

/// Xvfb, tauri-driver and a WebDriver session on the app, torn down in reverse on drop.
#[derive(Debug)]
pub struct Launched {
    pub session: Session,
    pub driver: Driver,
    pub xvfb: crate::xvfb::Xvfb,
}

impl Launched {
    /// Starts Xvfb (with a framebuffer file in `<work>/fb` if `framebuffer`), tauri-driver and
    /// the app; returns once the app's window is open (not yet the lobby).
    pub async fn start(work: &Path, framebuffer: bool) -> Self {
        Self::start_with(work, framebuffer, Media::Synthetic).await
    }

    /// [`Launched::start`] with the given media.
    pub async fn start_with(work: &Path, framebuffer: bool, media: Media) -> Self {
        let app = crate::app_bin();
        let fbdir = work.join("fb");
        let xvfb = crate::xvfb::Xvfb::start(
            framebuffer.then_some(fbdir.as_path()),
            &work.join("xvfb.log"),
        )
        .await;
        let driver = Driver::start(xvfb.display(), work, media).await;
        let session = driver.open(&app).await;
        Self {
            session,
            driver,
            xvfb,
        }
    }

    /// What a failure report needs: the UI store, the last lines of the driver's and the app's
    /// output, and the screen saved as `<work>/failure-screen.png` (with a framebuffer).
    pub async fn failure_context(&self, work: &Path) -> String {
        let state = tokio::time::timeout(Duration::from_secs(10), self.session.state())
            .await
            .unwrap_or_default();
        let screen = work.join("failure-screen.png");
        let saved = self
            .xvfb
            .screenshot()
            .and_then(|s| s.write_png(&screen))
            .map_or_else(
                |e| format!("no screenshot: {e}"),
                |()| format!("the screen: {}", screen.display()),
            );
        format!(
            "--- UI state ---\n{state:#}\n\n--- driver + app output (last 60 lines) ---\n{}\n\n\
             ({saved}; everything in {})",
            self.driver.log_tail(60),
            work.display()
        )
    }

    /// Ends a test: on `Err`, panics with it, the failure context and the last lines of each
    /// of `logs` (title, file); on `Ok`, stops everything.
    pub async fn conclude(self, work: &Path, outcome: Result<(), String>, logs: &[(&str, &Path)]) {
        if let Err(e) = outcome {
            let mut report = format!("{e}\n\n{}", self.failure_context(work).await);
            for (title, path) in logs {
                report.push_str(&format!("\n\n--- {title} ---\n{}", crate::tail(path, 30)));
            }
            panic!("{report}");
        }
        self.stop().await;
    }

    /// Ends the WebDriver session (closing the app), then stops the driver and Xvfb.
    pub async fn stop(self) {
        let Self {
            session,
            mut driver,
            xvfb,
        } = self;
        let _ = tokio::time::timeout(Duration::from_secs(10), session.client.close()).await;
        driver.stop().await;
        drop(xvfb);
    }
}
