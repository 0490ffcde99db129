//! Server configuration: command-line flags, each also readable from a `VIDEOROOM_*` environment
//! variable, and optionally a TOML file (`--config`) whose keys are the flag names in snake_case.
//! Precedence: flag > environment > file > default.

use clap::Parser;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
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
    /// IP address the WebRTC UDP sockets bind to [default: 0.0.0.0, i.e. every interface].
    #[arg(long, env = "VIDEOROOM_RTC_BIND_IP")]
    pub rtc_bind_ip: Option<IpAddr>,
    /// ICE UDP port range, `MIN-MAX` (e.g. `50000-50100`); one port per peer. Default: ephemeral ports.
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
    /// Most simultaneous WebSocket connections [default: 2000].
    #[arg(long, env = "VIDEOROOM_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Print logs as JSON lines instead of text.
    #[arg(long, env = "VIDEOROOM_LOG_JSON")]
    pub log_json: bool,
}

/// The TOML file's shape: the same settings, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    rtc_bind_ip: Option<IpAddr>,
    ice_port_range: Option<String>,
    public_ip: Option<IpAddr>,
    ice_servers: Option<Vec<String>>,
    turn_username: Option<String>,
    turn_credential: Option<String>,
    max_peers_per_room: Option<usize>,
    max_message_bytes: Option<usize>,
    max_connections: Option<usize>,
    log_json: Option<bool>,
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

/// The server's effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP/WebSocket listen address.
    pub listen: SocketAddr,
    /// IP the WebRTC sockets bind to.
    pub rtc_bind_ip: IpAddr,
    /// Inclusive ICE UDP port range, or `None` for ephemeral ports.
    pub ice_port_range: Option<(u16, u16)>,
    /// Public IP advertised in host candidates (1:1 NAT).
    pub public_ip: Option<IpAddr>,
    /// STUN/TURN servers handed to clients (the server itself needs none).
    pub ice_servers: Vec<IceServer>,
    /// Most peers in one room.
    pub max_peers_per_room: usize,
    /// Largest signaling message in bytes.
    pub max_message_bytes: usize,
    /// Most simultaneous WebSocket connections.
    pub max_connections: usize,
    /// JSON logs.
    pub log_json: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            rtc_bind_ip: IpAddr::from([0, 0, 0, 0]),
            ice_port_range: None,
            public_ip: None,
            ice_servers: Vec::new(),
            max_peers_per_room: 16,
            max_message_bytes: 64 * 1024,
            max_connections: 2000,
            log_json: false,
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
        let config = Config {
            listen: cli.listen.or(file.listen).unwrap_or(d.listen),
            rtc_bind_ip: cli
                .rtc_bind_ip
                .or(file.rtc_bind_ip)
                .unwrap_or(d.rtc_bind_ip),
            ice_port_range,
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
            log_json: cli.log_json || file.log_json.unwrap_or(false),
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
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
        Ok(())
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
    fn bad_values_are_refused() {
        assert!(Config::from_cli(cli(&["--ice-port-range", "9-1"])).is_err());
        assert!(Config::from_cli(cli(&["--ice-server", "http://x"])).is_err());
        assert!(Config::from_cli(cli(&["--max-peers-per-room", "0"])).is_err());
    }
}
