//! Server configuration: command-line flags, each also readable from a `VIDEOROOM_*` environment
//! variable, and optionally a TOML file (`--config`) whose keys are the flag names in snake_case.
//! Precedence: flag > environment > file > default.

use clap::Parser;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use videoroom_protocol::IceServer;

/// Everything `videoroom-server` can be told.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "videoroom-server",
    version,
    about = "Videoroom SFU: rooms, WebSocket signaling and WebRTC media forwarding",
    long_about = "Videoroom SFU: rooms, WebSocket signaling at /ws and WebRTC media forwarding.\n\
                  Every flag can also be set by the environment variable shown, or by a key of the \
                  same name (snake_case) in the TOML file given with --config."
)]
pub struct Cli {
    /// TOML file with any of the settings below (keys in snake_case, e.g. `max_peers_per_room = 8`).
    #[arg(long, env = "VIDEOROOM_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTP/WebSocket listen address [default: 0.0.0.0:8080].
    #[arg(long, env = "VIDEOROOM_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// IP address the media UDP socket binds to [default: 0.0.0.0, i.e. every interface; on a
    /// host with several addresses, give the one clients reach].
    #[arg(long, env = "VIDEOROOM_RTC_BIND_IP")]
    pub rtc_bind_ip: Option<IpAddr>,
    /// The one UDP port every peer's media uses [default: 7882; 0 picks a free one].
    #[arg(long, env = "VIDEOROOM_UDP_PORT")]
    pub udp_port: Option<u16>,
    /// Media worker threads; a room's peers all live on one [default: one per core beyond two,
    /// at least 1].
    #[arg(long, env = "VIDEOROOM_MEDIA_WORKERS")]
    pub media_workers: Option<usize>,
    /// The one TCP port for ICE over TCP (RFC 6544, passive), a fallback for participants whose
    /// network blocks UDP; `off` turns it off [default: 7881; 0 picks a free one].
    #[arg(long, env = "VIDEOROOM_TCP_PORT", value_name = "PORT|off")]
    pub tcp_port: Option<TcpPort>,
    /// Deprecated: the media now uses one UDP port (`--udp-port`). An ICE port range `MIN-MAX`
    /// is still accepted and means `--udp-port MIN`.
    #[arg(long, env = "VIDEOROOM_ICE_PORT_RANGE")]
    pub ice_port_range: Option<String>,
    /// Public IP to advertise in ICE candidates when the server is behind a 1:1 NAT.
    #[arg(long, env = "VIDEOROOM_PUBLIC_IP")]
    pub public_ip: Option<IpAddr>,
    /// STUN/TURN URL handed to clients (repeatable; comma-separated in the environment).
    #[arg(
        long = "ice-server",
        env = "VIDEOROOM_ICE_SERVERS",
        value_delimiter = ','
    )]
    pub ice_servers: Vec<String>,
    /// User name for the TURN URLs.
    #[arg(long, env = "VIDEOROOM_TURN_USERNAME")]
    pub turn_username: Option<String>,
    /// Credential for the TURN URLs.
    #[arg(long, env = "VIDEOROOM_TURN_CREDENTIAL")]
    pub turn_credential: Option<String>,
    /// Most peers in one room [default: 16].
    #[arg(long, env = "VIDEOROOM_MAX_PEERS_PER_ROOM")]
    pub max_peers_per_room: Option<usize>,
    /// Largest signaling message in bytes; larger ones close the socket with 1009 [default: 65536].
    #[arg(long, env = "VIDEOROOM_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Most simultaneous connections, HTTP and WebSocket; more get HTTP 503 [default: 2000].
    #[arg(long, env = "VIDEOROOM_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Longest wait for a request's complete headers, on a new connection or between requests on
    /// a kept-alive one (e.g. `10s`); then the connection is closed [default: 10s].
    #[arg(long, env = "VIDEOROOM_HTTP_HEADER_TIMEOUT", value_parser = humantime::parse_duration)]
    pub http_header_timeout: Option<Duration>,
    /// A connection not upgraded to a WebSocket that moves no byte for this long is closed
    /// [default: 60s].
    #[arg(long, env = "VIDEOROOM_HTTP_IDLE_TIMEOUT", value_parser = humantime::parse_duration)]
    pub http_idle_timeout: Option<Duration>,
    /// WebSocket upgrades per second from one client IP (an IPv6 /64 counts as one); more get
    /// HTTP 429. 0 turns the limit off [default: 20].
    #[arg(long, env = "VIDEOROOM_MAX_UPGRADES_PER_IP_PER_SEC")]
    pub max_upgrades_per_ip_per_sec: Option<u32>,
    /// WebSocket upgrades one client IP may make at once [default: 100].
    #[arg(long, env = "VIDEOROOM_UPGRADE_BURST_PER_IP")]
    pub upgrade_burst_per_ip: Option<u32>,
    /// Joins per second from one client IP; more get `join_error` `rate_limited`. 0 turns the
    /// limit off [default: 20].
    #[arg(long, env = "VIDEOROOM_MAX_JOINS_PER_IP_PER_SEC")]
    pub max_joins_per_ip_per_sec: Option<u32>,
    /// Joins one client IP may make at once [default: 100].
    #[arg(long, env = "VIDEOROOM_JOIN_BURST_PER_IP")]
    pub join_burst_per_ip: Option<u32>,
    /// Signaling messages per second on one connection; more get `error` `rate_limited`. 0 turns
    /// the limit off [default: 20].
    #[arg(long, env = "VIDEOROOM_MAX_MESSAGES_PER_SEC")]
    pub max_messages_per_sec: Option<u32>,
    /// Signaling messages one connection may send at once [default: 100].
    #[arg(long, env = "VIDEOROOM_MESSAGE_BURST")]
    pub message_burst: Option<u32>,
    /// Reverse proxy whose X-Forwarded-For header names the client IP for the limits
    /// (repeatable; comma-separated in the environment). Default: none, the header is ignored.
    #[arg(
        long = "trusted-proxy",
        env = "VIDEOROOM_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<IpAddr>,
    /// Print logs as JSON lines instead of text.
    #[arg(long, env = "VIDEOROOM_LOG_JSON")]
    pub log_json: bool,
    /// Who may join: `open` (anyone who knows a room's name) or `token` (holders of an
    /// invitation signed with --secret) [default: open].
    #[arg(long, env = "VIDEOROOM_AUTH")]
    pub auth: Option<AuthMode>,
    /// Secret that signs and checks invitation tokens (at least 32 bytes; `openssl rand -hex 32`).
    #[arg(long, env = "VIDEOROOM_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// File holding the token secret (its content, trimmed).
    #[arg(long, env = "VIDEOROOM_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,
    /// The server's public base URL, used in invite links (e.g. `https://meet.example.org`).
    #[arg(long, env = "VIDEOROOM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Directory of the web app (the built `ui/`), served at `/` and `/r/ROOM`; without it the
    /// server serves only `/ws`, `/healthz` and `/metrics`.
    #[arg(long, env = "VIDEOROOM_WEB_ROOT")]
    pub web_root: Option<PathBuf>,
    /// TLS certificate chain (PEM), with --tls-key: serve HTTPS. Reloaded when the file changes.
    #[arg(long, env = "VIDEOROOM_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1), with --tls-cert.
    #[arg(long, env = "VIDEOROOM_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address (behind a reverse proxy that does TLS).
    /// Without it and without --tls-cert, such an address gets a self-signed certificate.
    #[arg(long, env = "VIDEOROOM_NO_TLS")]
    pub no_tls: bool,
    /// Directory for what the server keeps between runs: the self-signed certificate, so that
    /// browsers and apps that trusted it keep trusting it after a restart.
    #[arg(long, env = "VIDEOROOM_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Something to do other than serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Who may join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Anyone who knows a room's name; a room's first participant moderates it.
    #[default]
    Open,
    /// Holders of a token signed with the server's secret; its grants decide who moderates.
    Token,
}

/// `videoroom-server <command>`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Prints an invitation token and an invite link (needs the secret, as for `--auth token`).
    Token {
        /// The room: a name, a prefix ending in `*`, or `*` for any room.
        #[arg(long)]
        room: String,
        /// The display name the holder must use (any name if absent).
        #[arg(long)]
        name: Option<String>,
        /// How long the token is valid (e.g. `2h`, `7d`).
        #[arg(long, default_value = "2h", value_parser = humantime::parse_duration)]
        ttl: std::time::Duration,
        /// The holder may moderate the room.
        #[arg(long)]
        moderator: bool,
        /// The holder may only watch and listen (no publishing).
        #[arg(long)]
        no_publish: bool,
    },
}

/// The TOML file's shape: the same settings, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    rtc_bind_ip: Option<IpAddr>,
    udp_port: Option<u16>,
    media_workers: Option<usize>,
    tcp_port: Option<TcpPort>,
    ice_port_range: Option<String>,
    public_ip: Option<IpAddr>,
    ice_servers: Option<Vec<String>>,
    turn_username: Option<String>,
    turn_credential: Option<String>,
    max_peers_per_room: Option<usize>,
    max_message_bytes: Option<usize>,
    max_connections: Option<usize>,
    http_header_timeout: Option<String>,
    http_idle_timeout: Option<String>,
    max_upgrades_per_ip_per_sec: Option<u32>,
    upgrade_burst_per_ip: Option<u32>,
    max_joins_per_ip_per_sec: Option<u32>,
    join_burst_per_ip: Option<u32>,
    max_messages_per_sec: Option<u32>,
    message_burst: Option<u32>,
    trusted_proxies: Option<Vec<IpAddr>>,
    log_json: Option<bool>,
    auth: Option<AuthMode>,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    public_url: Option<String>,
    web_root: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    no_tls: Option<bool>,
    state_dir: Option<PathBuf>,
}

/// A configuration the server could not use.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML file is not valid.
    #[error("config file {path} is invalid: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// The media UDP port when none is configured (LiveKit's choice too; open it in the firewall).
pub const DEFAULT_UDP_PORT: u16 = 7882;
/// The ICE-TCP port when none is configured (LiveKit's choice too; open it in the firewall).
pub const DEFAULT_TCP_PORT: u16 = 7881;

/// `--tcp-port`: a port number (0 picks a free one) or `off`. In the TOML file: an integer or
/// the string `"off"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum TcpPort {
    /// ICE over TCP on this port.
    Port(u16),
    /// `off`: no ICE-TCP listener and no TCP candidate.
    Off(TcpOff),
}

/// The word `off` of [`TcpPort::Off`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TcpOff {
    /// `off`.
    #[serde(rename = "off")]
    Off,
}

impl TcpPort {
    /// The port, or `None` for `off`.
    pub fn port(self) -> Option<u16> {
        match self {
            TcpPort::Port(p) => Some(p),
            TcpPort::Off(_) => None,
        }
    }
}

impl std::str::FromStr for TcpPort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(TcpPort::Off(TcpOff::Off));
        }
        s.parse::<u16>()
            .map(TcpPort::Port)
            .map_err(|_| format!("`{s}` is not a TCP port (0-65535) or `off`"))
    }
}

/// The server's effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP/WebSocket listen address.
    pub listen: SocketAddr,
    /// IP the WebRTC sockets bind to.
    pub rtc_bind_ip: IpAddr,
    /// The media UDP port (0: any free port).
    pub udp_port: u16,
    /// Media worker threads (at least 1).
    pub media_workers: usize,
    /// The deprecated ICE port range, if one was given (its first port is `udp_port`).
    pub ice_port_range: Option<(u16, u16)>,
    /// The ICE-TCP port (`Some(0)`: any free port; `None`: ICE over TCP off, the default of
    /// [`Config::default`], which tests use).
    pub tcp_port: Option<u16>,
    /// Whether the UDP host candidates are advertised (always, except in tests that prove a
    /// call works over ICE-TCP alone; not a flag).
    pub media_udp_candidates: bool,
    /// Public IP advertised in host candidates (1:1 NAT).
    pub public_ip: Option<IpAddr>,
    /// STUN/TURN servers handed to clients (the server itself needs none).
    pub ice_servers: Vec<IceServer>,
    /// Most peers in one room.
    pub max_peers_per_room: usize,
    /// Largest signaling message in bytes.
    pub max_message_bytes: usize,
    /// Most simultaneous connections, HTTP and WebSocket.
    pub max_connections: usize,
    /// Longest wait for a request's complete headers.
    pub http_header_timeout: Duration,
    /// Longest a connection not upgraded to a WebSocket may move no byte.
    pub http_idle_timeout: Duration,
    /// Abuse limits per client IP and per connection.
    pub rate_limits: crate::limits::RateLimits,
    /// JSON logs.
    pub log_json: bool,
    /// Who may join.
    pub auth: AuthMode,
    /// The token secret (required with [`AuthMode::Token`] and for `token`).
    pub secret: Option<String>,
    /// Base URL for invite links.
    pub public_url: Option<String>,
    /// The web app's directory.
    pub web_root: Option<PathBuf>,
    /// Plain HTTP or HTTPS, and with which certificate.
    pub tls: TlsSetting,
    /// Where the self-signed certificate is kept between runs (none: a new one each start).
    pub state_dir: Option<PathBuf>,
}

/// How the HTTP listener does TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSetting {
    /// Plain HTTP: a loopback address, or `--no-tls`.
    Off,
    /// A certificate generated at start-up (a non-loopback address without certificate files).
    SelfSigned,
    /// Certificate and key files, reloaded when they change.
    Files {
        /// PEM certificate chain.
        cert: PathBuf,
        /// PEM private key.
        key: PathBuf,
    },
}

impl TlsSetting {
    fn resolve(
        listen: SocketAddr,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        no_tls: bool,
    ) -> Result<Self, ConfigError> {
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(TlsSetting::Files { cert, key }),
            (None, None) if no_tls || listen.ip().is_loopback() => Ok(TlsSetting::Off),
            (None, None) => Ok(TlsSetting::SelfSigned),
            _ => Err(ConfigError::Invalid(
                "--tls-cert and --tls-key go together".into(),
            )),
        }
    }
}

impl Config {
    /// The UDP port the media engine binds: `udp_port`, or the first port of the deprecated
    /// ICE port range when only that was given.
    pub fn media_udp_port(&self) -> u16 {
        match (self.udp_port, self.ice_port_range) {
            (0, Some((lo, _))) => lo,
            (port, _) => port,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            rtc_bind_ip: IpAddr::from([0, 0, 0, 0]),
            udp_port: 0,
            media_workers: 1,
            ice_port_range: None,
            tcp_port: None,
            media_udp_candidates: true,
            public_ip: None,
            ice_servers: Vec::new(),
            max_peers_per_room: 16,
            max_message_bytes: 64 * 1024,
            max_connections: 2000,
            http_header_timeout: Duration::from_secs(10),
            http_idle_timeout: Duration::from_secs(60),
            rate_limits: crate::limits::RateLimits::default(),
            log_json: false,
            auth: AuthMode::Open,
            secret: None,
            public_url: None,
            web_root: None,
            tls: TlsSetting::Off,
            state_dir: None,
        }
    }
}

impl Config {
    /// Merges flags and environment (already in `cli`) over the file named by `--config` and the
    /// defaults, and checks the result.
    pub fn from_cli(cli: Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    source,
                })?
            }
            None => FileConfig::default(),
        };
        let d = Config::default();
        let urls = if cli.ice_servers.is_empty() {
            file.ice_servers.unwrap_or_default()
        } else {
            cli.ice_servers
        };
        let username = cli.turn_username.or(file.turn_username);
        let credential = cli.turn_credential.or(file.turn_credential);
        let ice_servers = urls
            .into_iter()
            .filter(|u| !u.trim().is_empty())
            .map(|url| {
                let url = url.trim().to_owned();
                if !(url.starts_with("stun:")
                    || url.starts_with("turn:")
                    || url.starts_with("turns:"))
                {
                    return Err(ConfigError::Invalid(format!(
                        "ICE server `{url}` must start with stun:, turn: or turns:"
                    )));
                }
                let is_turn = !url.starts_with("stun:");
                Ok(IceServer {
                    urls: vec![url],
                    username: if is_turn { username.clone() } else { None },
                    credential: if is_turn { credential.clone() } else { None },
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ice_port_range = cli
            .ice_port_range
            .or(file.ice_port_range)
            .map(|r| parse_port_range(&r))
            .transpose()?;
        let udp_port = cli.udp_port.or(file.udp_port);
        let udp_port = match (udp_port, ice_port_range) {
            (Some(port), Some((lo, hi))) if port != 0 && port != lo => {
                return Err(ConfigError::Invalid(format!(
                    "--udp-port {port} and --ice-port-range {lo}-{hi} disagree: give only --udp-port (the media uses one UDP port)"
                )));
            }
            (Some(port), _) => port,
            (None, Some((lo, _))) => lo,
            (None, None) => DEFAULT_UDP_PORT,
        };
        let listen = cli.listen.or(file.listen).unwrap_or(d.listen);
        let config = Config {
            listen,
            rtc_bind_ip: cli
                .rtc_bind_ip
                .or(file.rtc_bind_ip)
                .unwrap_or(d.rtc_bind_ip),
            udp_port,
            media_workers: match cli.media_workers.or(file.media_workers) {
                Some(0) => {
                    return Err(ConfigError::Invalid(
                        "--media-workers must be at least 1".to_owned(),
                    ));
                }
                Some(n) => n,
                None => crate::engine::worker::default_workers(),
            },
            ice_port_range,
            tcp_port: cli
                .tcp_port
                .or(file.tcp_port)
                .unwrap_or(TcpPort::Port(DEFAULT_TCP_PORT))
                .port(),
            media_udp_candidates: d.media_udp_candidates,
            public_ip: cli.public_ip.or(file.public_ip),
            ice_servers,
            max_peers_per_room: cli
                .max_peers_per_room
                .or(file.max_peers_per_room)
                .unwrap_or(d.max_peers_per_room),
            max_message_bytes: cli
                .max_message_bytes
                .or(file.max_message_bytes)
                .unwrap_or(d.max_message_bytes),
            max_connections: cli
                .max_connections
                .or(file.max_connections)
                .unwrap_or(d.max_connections),
            http_header_timeout: duration(
                "http_header_timeout",
                cli.http_header_timeout,
                file.http_header_timeout,
            )?
            .unwrap_or(d.http_header_timeout),
            http_idle_timeout: duration(
                "http_idle_timeout",
                cli.http_idle_timeout,
                file.http_idle_timeout,
            )?
            .unwrap_or(d.http_idle_timeout),
            rate_limits: crate::limits::RateLimits {
                upgrades_per_ip: rate(
                    (
                        cli.max_upgrades_per_ip_per_sec,
                        file.max_upgrades_per_ip_per_sec,
                    ),
                    (cli.upgrade_burst_per_ip, file.upgrade_burst_per_ip),
                    d.rate_limits.upgrades_per_ip,
                ),
                joins_per_ip: rate(
                    (cli.max_joins_per_ip_per_sec, file.max_joins_per_ip_per_sec),
                    (cli.join_burst_per_ip, file.join_burst_per_ip),
                    d.rate_limits.joins_per_ip,
                ),
                messages_per_connection: rate(
                    (cli.max_messages_per_sec, file.max_messages_per_sec),
                    (cli.message_burst, file.message_burst),
                    d.rate_limits.messages_per_connection,
                ),
                trusted_proxies: if cli.trusted_proxies.is_empty() {
                    file.trusted_proxies.unwrap_or_default()
                } else {
                    cli.trusted_proxies
                },
            },
            log_json: cli.log_json || file.log_json.unwrap_or(false),
            auth: cli.auth.or(file.auth).unwrap_or_default(),
            secret: read_secret(
                cli.secret.or(file.secret),
                cli.secret_file.or(file.secret_file),
            )?,
            public_url: cli
                .public_url
                .or(file.public_url)
                .map(|u| u.trim_end_matches('/').to_owned()),
            web_root: cli.web_root.or(file.web_root),
            tls: TlsSetting::resolve(
                listen,
                cli.tls_cert.or(file.tls_cert),
                cli.tls_key.or(file.tls_key),
                cli.no_tls || file.no_tls.unwrap_or(false),
            )?,
            state_dir: cli.state_dir.or(file.state_dir),
        };
        config.check()?;
        Ok(config)
    }

    /// The token authority, if a secret is configured.
    pub fn authority(&self) -> Result<Option<crate::auth::Authority>, ConfigError> {
        self.secret
            .as_deref()
            .map(|s| crate::auth::Authority::new(s.as_bytes()).map_err(ConfigError::Invalid))
            .transpose()
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.auth == AuthMode::Token && self.secret.is_none() {
            return Err(ConfigError::Invalid(
                "--auth token needs a secret: --secret, --secret-file or VIDEOROOM_SECRET                  (make one with `openssl rand -hex 32`)"
                    .into(),
            ));
        }
        self.authority()?;
        if self.max_peers_per_room == 0 {
            return Err(ConfigError::Invalid(
                "max peers per room must be at least 1".into(),
            ));
        }
        if self.max_message_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "max message size must be at least 1024 bytes (an SDP offer is ~5 KiB)".into(),
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "max connections must be at least 1".into(),
            ));
        }
        if self.http_header_timeout < Duration::from_millis(100)
            || self.http_idle_timeout < Duration::from_millis(100)
        {
            return Err(ConfigError::Invalid(
                "HTTP header and idle timeouts must be at least 100ms".into(),
            ));
        }
        self.rate_limits.check().map_err(ConfigError::Invalid)?;
        Ok(())
    }
}

/// The secret given directly, or read from a file (trimmed).
fn read_secret(
    secret: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<String>, ConfigError> {
    match (secret, file) {
        (Some(_), Some(_)) => Err(ConfigError::Invalid(
            "give the secret either with --secret or with --secret-file, not both".into(),
        )),
        (Some(s), None) => Ok(Some(s.trim().to_owned())),
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map(|s| Some(s.trim().to_owned()))
            .map_err(|source| ConfigError::Read { path, source }),
        (None, None) => Ok(None),
    }
}

/// A rate limit from flag-or-environment and file values (`(cli, file)` each), else `default`.
fn rate(
    per_sec: (Option<u32>, Option<u32>),
    burst: (Option<u32>, Option<u32>),
    default: crate::limits::Rate,
) -> crate::limits::Rate {
    crate::limits::Rate {
        per_sec: per_sec.0.or(per_sec.1).unwrap_or(default.per_sec),
        burst: burst.0.or(burst.1).unwrap_or(default.burst),
    }
}

/// A duration from flag-or-environment (already parsed), else from the file (`10s`, `1m`).
fn duration(
    key: &str,
    cli: Option<Duration>,
    file: Option<String>,
) -> Result<Option<Duration>, ConfigError> {
    match (cli, file) {
        (Some(d), _) => Ok(Some(d)),
        (None, Some(text)) => humantime::parse_duration(&text).map(Some).map_err(|e| {
            ConfigError::Invalid(format!(
                "{key} `{text}` is not a duration like `10s` or `1m`: {e}"
            ))
        }),
        (None, None) => Ok(None),
    }
}

fn parse_port_range(text: &str) -> Result<(u16, u16), ConfigError> {
    let bad = || {
        ConfigError::Invalid(format!(
            "ICE port range `{text}` must look like 50000-50100"
        ))
    };
    let (lo, hi) = text.split_once('-').ok_or_else(bad)?;
    let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
    if lo == 0 || hi < lo {
        return Err(bad());
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("videoroom-server").chain(args.iter().copied()))
            .expect("flags parse")
    }

    #[test]
    fn defaults() {
        let c = Config::from_cli(cli(&[])).expect("valid");
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.max_peers_per_room, 16);
        assert_eq!(c.max_message_bytes, 65536);
        assert!(c.ice_port_range.is_none());
        assert_eq!(c.udp_port, DEFAULT_UDP_PORT);
        assert_eq!(c.tcp_port, Some(DEFAULT_TCP_PORT));
        assert!(c.media_udp_candidates);
        assert_eq!(Config::default().tcp_port, None, "off in tests");
    }

    #[test]
    fn tcp_port_from_flag_and_file() {
        let tcp = |args: &[&str]| Config::from_cli(cli(args)).map(|c| c.tcp_port);
        assert_eq!(tcp(&["--tcp-port", "443"]).unwrap(), Some(443));
        assert_eq!(tcp(&["--tcp-port", "0"]).unwrap(), Some(0));
        assert_eq!(tcp(&["--tcp-port", "off"]).unwrap(), None);
        assert_eq!(tcp(&["--tcp-port", "OFF"]).unwrap(), None);
        assert!(Cli::try_parse_from(["videoroom-server", "--tcp-port", "70000"]).is_err());
        assert!(Cli::try_parse_from(["videoroom-server", "--tcp-port", "no"]).is_err());

        let dir = std::env::temp_dir().join(format!("vr-tcp-port-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let file = |text: &str| {
            let path = dir.join("server.toml");
            std::fs::write(&path, text).expect("write");
            Config::from_cli(cli(&["--config", path.to_str().expect("utf8")]))
        };
        assert_eq!(file("tcp_port = 8443\n").unwrap().tcp_port, Some(8443));
        assert_eq!(file("tcp_port = \"off\"\n").unwrap().tcp_port, None);
        assert!(file("tcp_port = \"on\"\n").is_err());
        let path = dir.join("server.toml");
        std::fs::write(&path, "tcp_port = 8443\n").expect("write");
        let c = Config::from_cli(cli(&[
            "--config",
            path.to_str().expect("utf8"),
            "--tcp-port",
            "9443",
        ]))
        .expect("valid");
        assert_eq!(c.tcp_port, Some(9443), "flag beats file");
    }

    #[test]
    fn https_unless_loopback_or_told_otherwise() {
        let tls = |args: &[&str]| Config::from_cli(cli(args)).map(|c| c.tls);
        assert_eq!(
            tls(&[]).unwrap(),
            TlsSetting::SelfSigned,
            "0.0.0.0 by default"
        );
        assert_eq!(
            tls(&["--listen", "127.0.0.1:8080"]).unwrap(),
            TlsSetting::Off
        );
        assert_eq!(tls(&["--listen", "[::1]:8080"]).unwrap(), TlsSetting::Off);
        assert_eq!(tls(&["--no-tls"]).unwrap(), TlsSetting::Off);
        assert_eq!(
            tls(&["--tls-cert", "/c.pem", "--tls-key", "/k.pem"]).unwrap(),
            TlsSetting::Files {
                cert: "/c.pem".into(),
                key: "/k.pem".into()
            }
        );
        assert!(
            Cli::try_parse_from(["videoroom-server", "--tls-cert", "/c.pem"]).is_err(),
            "a certificate without its key"
        );
    }

    #[test]
    fn flags_and_file() {
        let dir = std::env::temp_dir().join(format!("vr-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("server.toml");
        std::fs::write(
            &path,
            "max_peers_per_room = 4\nice_port_range = \"50000-50010\"\n",
        )
        .expect("write");
        let c = Config::from_cli(cli(&[
            "--config",
            path.to_str().expect("utf8"),
            "--max-peers-per-room",
            "8",
            "--ice-server",
            "stun:stun.example.org:3478",
            "--public-ip",
            "203.0.113.7",
        ]))
        .expect("valid");
        assert_eq!(c.max_peers_per_room, 8, "flag beats file");
        assert_eq!(c.ice_port_range, Some((50000, 50010)));
        assert_eq!(
            c.ice_servers[0].urls,
            vec!["stun:stun.example.org:3478".to_owned()]
        );
        assert_eq!(c.public_ip, Some("203.0.113.7".parse().expect("ip")));
    }

    #[test]
    fn token_auth_needs_a_long_enough_secret() {
        assert!(Config::from_cli(cli(&["--auth", "token"])).is_err());
        assert!(Config::from_cli(cli(&["--auth", "token", "--secret", "short"])).is_err());
        let secret = "0123456789abcdef0123456789abcdef";
        let c = Config::from_cli(cli(&["--auth", "token", "--secret", secret])).expect("valid");
        assert_eq!(c.auth, AuthMode::Token);
        let dir = std::env::temp_dir().join(format!("vr-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("secret");
        std::fs::write(&path, format!("{secret}\n")).expect("write");
        let c = Config::from_cli(cli(&[
            "--auth",
            "token",
            "--secret-file",
            path.to_str().expect("utf8"),
        ]))
        .expect("valid");
        assert_eq!(c.secret.as_deref(), Some(secret));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Config::from_cli(cli(&["--ice-port-range", "9-1"])).is_err());
        assert!(Config::from_cli(cli(&["--ice-server", "http://x"])).is_err());
        assert!(Config::from_cli(cli(&["--max-peers-per-room", "0"])).is_err());
    }

    #[test]
    fn http_timeouts() {
        let c = Config::from_cli(cli(&[])).expect("valid");
        assert_eq!(c.http_header_timeout, Duration::from_secs(10));
        assert_eq!(c.http_idle_timeout, Duration::from_secs(60));
        let dir = std::env::temp_dir().join(format!("vr-timeouts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("server.toml");
        std::fs::write(&path, "http_idle_timeout = \"2m\"\n").expect("write");
        let c = Config::from_cli(cli(&[
            "--config",
            path.to_str().expect("utf8"),
            "--http-header-timeout",
            "500ms",
        ]))
        .expect("valid");
        assert_eq!(c.http_header_timeout, Duration::from_millis(500));
        assert_eq!(c.http_idle_timeout, Duration::from_secs(120));
        assert!(Cli::try_parse_from(["videoroom-server", "--http-header-timeout", "ten"]).is_err());
        assert!(Config::from_cli(cli(&["--http-idle-timeout", "0s"])).is_err());
        std::fs::write(&path, "http_header_timeout = \"soon\"\n").expect("write");
        assert!(Config::from_cli(cli(&["--config", path.to_str().expect("utf8")])).is_err());
    }
}
