//! The `videoroom-server` binary: parse configuration, log, serve until SIGINT/SIGTERM.

use clap::Parser;
use std::process::ExitCode;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// The WebRTC stack's crates, whose per-packet warnings are capped at `error` (see `main`).
const RTC_CRATES: [&str; 9] = [
    "rtc",
    "rtc_ice",
    "rtc_dtls",
    "rtc_srtp",
    "rtc_sctp",
    "rtc_interceptor",
    "rtc_stun",
    "rtc_rtp",
    "rtc_rtcp",
];
use videoroom_server::{Cli, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.clone();
    let config = match Config::from_cli(cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("videoroom-server: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(command) = command {
        return match videoroom_server::invite::run(&config, command) {
            Ok(out) => {
                println!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("videoroom-server: {e}");
                ExitCode::from(2)
            }
        };
    }
    // rtc logs every bad datagram or refused packet at warn (through `log`), with the ICE
    // usernames in it: its lines are kept to errors unless RUST_LOG names an rtc crate itself, so
    // hostile traffic cannot flood the log whatever level is asked for.
    let rust_log = std::env::var("RUST_LOG").unwrap_or_default();
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if !rust_log.contains("rtc") {
        for crate_name in RTC_CRATES {
            if let Ok(directive) = format!("{crate_name}=error").parse() {
                filter = filter.add_directive(directive);
            }
        }
    }
    // Logs go to stderr; stdout carries the `listening on` line that scripts read (and the
    // certificate's fingerprint over HTTPS).
    if config.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init();
    }
    // Signal handlers go in before anything can be told we are up: a SIGINT/SIGTERM arriving
    // before them would kill the process instead of draining it.
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("videoroom-server: cannot listen for SIGINT/SIGTERM: {e}");
            return ExitCode::from(1);
        }
    };
    log_fd_limit(videoroom_server::fd_limit::raise());
    let listen = config.listen;
    let server = match videoroom_server::start(config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("videoroom-server: cannot serve on {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    // Printed on stdout so scripts and tests can find the port when --listen uses port 0.
    println!("listening on {}", server.local_addr());
    if let Some(fingerprint) = server.tls_fingerprint() {
        // People compare this with what their browser or the desktop app shows them.
        println!("HTTPS certificate SHA-256 fingerprint: {fingerprint}");
    }
    signals.wait().await;
    // Exit within 5 s whatever happens: 4 s for a clean drain, then we go.
    if !server.shutdown(Duration::from_secs(4)).await {
        tracing::warn!("some sessions did not end within 4 s; exiting anyway");
    }
    ExitCode::SUCCESS
}

/// Says how many peers the open-file limit leaves room for (after raising it to the hard limit).
fn log_fd_limit(limit: Result<videoroom_server::fd_limit::FdLimit, std::io::Error>) {
    match limit {
        Ok(limit) => match limit.soft {
            Some(soft) => tracing::info!(
                open_files = soft,
                raised_from = limit.raised_from,
                peers = limit.peer_capacity(),
                "open-file limit {soft}: room for about {} peers",
                limit.peer_capacity().unwrap_or_default()
            ),
            None => tracing::info!("no open-file limit"),
        },
        Err(e) => tracing::warn!(
            "cannot raise the open-file limit to the hard limit ({e}); fewer peers fit: raise              LimitNOFILE (systemd) or `ulimit -n`"
        ),
    }
}

/// SIGINT and SIGTERM listeners.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => tracing::info!("SIGINT received"),
            _ = self.terminate.recv() => tracing::info!("SIGTERM received"),
        }
    }
}
