//! `videoroom-server token`: an invitation token and the invite link that carries it.

use crate::auth::{Claims, unix_now};
use crate::config::{Command, Config, TlsSetting};
use std::net::IpAddr;

/// Runs a subcommand; returns what to print.
pub fn run(config: &Config, command: Command) -> Result<String, String> {
    match command {
        Command::Token {
            room,
            name,
            ttl,
            moderator,
            no_publish,
        } => {
            let authority = config
                .authority()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    "a token needs the server's secret: --secret, --secret-file or \
                     VIDEOROOM_SECRET (the same one the server runs with)"
                        .to_owned()
                })?;
            let mut claims = Claims::new(room.clone(), unix_now(), ttl);
            claims.name = name;
            claims.grants.moderator = moderator;
            claims.grants.publish = !no_publish;
            let token = authority.issue(&claims)?;
            let mut out = format!("token: {token}\n");
            match invite_link(&base_url(config), &room, Some(&token)) {
                Some(link) => out.push_str(&format!("invite link: {link}")),
                None => out.push_str(
                    "(no invite link for a room prefix or `*`: hand out the token itself)",
                ),
            }
            if config.public_url.is_none() {
                out.push_str("\n(set --public-url to the address people reach this server at)");
            }
            Ok(out)
        }
    }
}

/// `--public-url`, or else the listen address (`localhost` for every interface), with the
/// scheme the server speaks.
pub fn base_url(config: &Config) -> String {
    config.public_url.clone().unwrap_or_else(|| {
        let host = match config.listen.ip() {
            ip if ip.is_unspecified() => "localhost".to_owned(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let scheme = if config.tls == TlsSetting::Off {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}:{}", config.listen.port())
    })
}

/// `<base>/r/<room>#token=<token>`: the room in the path, the token in the fragment (a browser
/// never sends a fragment to a server, nor in a `Referer`). Without a token, the room's address.
/// `None` for room patterns.
pub fn invite_link(base: &str, room: &str, token: Option<&str>) -> Option<String> {
    if room.ends_with('*') {
        return None;
    }
    let mut url = url::Url::parse(base).ok()?;
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(["r", room]);
    if let Some(token) = token {
        url.set_fragment(Some(&format!("token={token}")));
    }
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_room_in_the_path_and_the_token_in_the_fragment() {
        let config = Config {
            public_url: Some("https://meet.example.org".into()),
            ..Config::default()
        };
        let base = base_url(&config);
        assert_eq!(
            invite_link(&base, "Team sync", Some("abc.def.ghi")).as_deref(),
            Some("https://meet.example.org/r/Team%20sync#token=abc.def.ghi")
        );
        assert_eq!(
            invite_link(&base, "Team sync", None).as_deref(),
            Some("https://meet.example.org/r/Team%20sync")
        );
        assert_eq!(invite_link(&base, "team-*", Some("t")), None);
        let local = base_url(&Config::default());
        assert_eq!(
            invite_link(&local, "r", Some("t")).as_deref(),
            Some("http://localhost:8080/r/r#token=t")
        );
        let tls = Config {
            tls: TlsSetting::SelfSigned,
            listen: "192.0.2.7:8443".parse().unwrap(),
            ..Config::default()
        };
        assert_eq!(base_url(&tls), "https://192.0.2.7:8443");
    }
}
