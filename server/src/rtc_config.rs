//! How the server advertises its media address: behind a 1:1 NAT (`--public-ip`), host
//! candidates and SDP carry the public IP instead of the bound one.

use crate::config::Config;
use std::net::IpAddr;

/// The advertising rules.
#[derive(Debug)]
pub struct RtcConfig {
    public_ip: Option<IpAddr>,
}

impl RtcConfig {
    /// From the server configuration.
    pub fn new(config: &Config) -> Self {
        Self {
            public_ip: config.public_ip,
        }
    }
}

impl RtcConfig {
    /// A local ICE candidate (`candidate:<foundation> <component> <transport> <priority> <address>
    /// <port> typ <type> …`) as clients should see it: behind a 1:1 NAT, a host candidate's
    /// address becomes the public IP (the port maps one to one).
    pub fn advertise(&self, candidate: &str) -> String {
        let Some(public) = self.public_ip else {
            return candidate.to_owned();
        };
        let mut fields: Vec<&str> = candidate.split(' ').collect();
        let is_host = fields.get(6) == Some(&"typ") && fields.get(7) == Some(&"host");
        if !is_host || fields.len() < 8 {
            return candidate.to_owned();
        }
        let public = public.to_string();
        fields[4] = &public;
        fields.join(" ")
    }

    /// A local SDP with every `a=candidate:` line passed through [`advertise`](Self::advertise).
    pub fn advertise_sdp(&self, sdp: String) -> String {
        if self.public_ip.is_none() || !sdp.contains("a=candidate:") {
            return sdp;
        }
        sdp.split_inclusive("\r\n")
            .map(|line| match line.strip_prefix("a=") {
                Some(rest) if rest.starts_with("candidate:") => {
                    let (body, eol) = rest.split_at(rest.trim_end_matches(['\r', '\n']).len());
                    format!("a={}{eol}", self.advertise(body))
                }
                _ => line.to_owned(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_public_ip(ip: Option<&str>) -> RtcConfig {
        RtcConfig::new(&Config {
            public_ip: ip.map(|i| i.parse().expect("ip")),
            ..Config::default()
        })
    }

    #[test]
    fn host_candidates_get_the_public_address() {
        let rtc = with_public_ip(Some("203.0.113.7"));
        assert_eq!(
            rtc.advertise("candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host"),
            "candidate:1 1 udp 2130706431 203.0.113.7 50000 typ host"
        );
        let relay =
            "candidate:2 1 udp 16777215 198.51.100.1 3478 typ relay raddr 10.0.0.5 rport 50000";
        assert_eq!(rtc.advertise(relay), relay);
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host\r\na=end-of-candidates\r\n";
        assert_eq!(
            rtc.advertise_sdp(sdp.to_owned()),
            "v=0\r\na=candidate:1 1 udp 2130706431 203.0.113.7 50000 typ host\r\na=end-of-candidates\r\n"
        );
    }

    #[test]
    fn without_a_public_ip_nothing_changes() {
        let rtc = with_public_ip(None);
        let c = "candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host";
        assert_eq!(rtc.advertise(c), c);
    }
}
