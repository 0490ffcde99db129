//! A virtual X server for the app: `Xvfb -displayfd` picks a free display and tells us which.

use crate::image::Rgb;
use crate::procs::Group;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Screen size: the app's window is 1280×800 and there is no window manager to place it, so it
/// sits at (0, 0) and fills the screen.
pub const SCREEN: (u32, u32) = (1280, 800);

/// A running Xvfb; killed on drop.
#[derive(Debug)]
pub struct Xvfb {
    group: Group,
    display: String,
    fbdir: Option<PathBuf>,
}

impl Xvfb {
    /// Starts Xvfb on a free display. With `fbdir`, the screen is also a file there
    /// (`Xvfb_screen0`, XWD) for [`Xvfb::screenshot`]. Its stderr goes to `log`.
    pub async fn start(fbdir: Option<&Path>, log: &Path) -> Self {
        let (w, h) = SCREEN;
        let mut command = Command::new("Xvfb");
        // `-displayfd 1`: the display number arrives on our stdout pipe, once the server is ready.
        command
            .args(["-displayfd", "1", "-nolisten", "tcp", "-noreset"])
            .args(["-screen", "0", &format!("{w}x{h}x24")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file(log));
        if let Some(dir) = fbdir {
            std::fs::create_dir_all(dir).expect("fbdir");
            command.arg("-fbdir").arg(dir);
        }
        let mut group = Group::spawn("Xvfb", &mut command).unwrap_or_else(|e| {
            panic!("starting Xvfb failed: {e} (apt-get install xvfb; it must be on PATH)")
        });
        let stdout = group.child_mut().stdout.take().expect("stdout piped");
        let mut line = String::new();
        let read = tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await;
        let number: u32 = match read {
            Ok(Ok(_)) => line.trim().parse().unwrap_or_else(|_| {
                panic!(
                    "Xvfb printed {line:?}, not a display number; its log:\n{}",
                    crate::tail(log, 20)
                )
            }),
            _ => panic!(
                "Xvfb did not report a display within 30 s; its log:\n{}",
                crate::tail(log, 20)
            ),
        };
        Self {
            group,
            display: format!(":{number}"),
            fbdir: fbdir.map(Path::to_path_buf),
        }
    }

    /// `:N`, for `DISPLAY`.
    pub fn display(&self) -> &str {
        &self.display
    }

    pub fn pid(&self) -> u32 {
        self.group.pid()
    }

    /// What is on the screen now (needs `fbdir`).
    pub fn screenshot(&self) -> Result<Rgb, String> {
        let dir = self
            .fbdir
            .as_ref()
            .ok_or_else(|| "Xvfb was started without -fbdir".to_owned())?;
        let path = dir.join("Xvfb_screen0");
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Rgb::from_xwd(&bytes)
    }
}

/// A file for a child's output (appended), or nowhere if it cannot be created.
pub fn log_file(path: &Path) -> Stdio {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_or_else(|_| Stdio::null(), Stdio::from)
}
