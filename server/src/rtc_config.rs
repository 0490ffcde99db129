//! How the server's PeerConnections are built: bind address, ICE port range, 1:1 NAT address.

use crate::config::Config;
use crate::media;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use webrtc::peer_connection::{PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler};

/// Builds server-side PeerConnections as configured.
#[derive(Debug)]
pub struct RtcConfig {
    bind_ip: IpAddr,
    port_range: Option<(u16, u16)>,
    public_ip: Option<IpAddr>,
    cursor: AtomicU32,
}

impl RtcConfig {
    /// From the server configuration.
    pub fn new(config: &Config) -> Self {
        Self {
            bind_ip: config.rtc_bind_ip,
            port_range: config.ice_port_range,
            public_ip: config.public_ip,
            cursor: AtomicU32::new(0),
        }
    }

    /// A new PeerConnection whose events go to `handler`. With a port range, the ports are tried
    /// in turn from where the last connection left off until one binds.
    pub async fn build_peer_connection(
        &self,
        handler: Arc<dyn PeerConnectionEventHandler>,
    ) -> Result<Arc<dyn PeerConnection>, webrtc::error::Error> {
        let ports: Vec<u16> = match self.port_range {
            None => vec![0],
            Some((lo, hi)) => {
                let n = u32::from(hi - lo) + 1;
                let start = self.cursor.fetch_add(1, Ordering::Relaxed) % n;
                (0..n).map(|i| lo + ((start + i) % n) as u16).collect()
            }
        };
        let mut last_error = None;
        for port in ports {
            let (engine, registry) = media::engine_and_interceptors()?;
            // rtc 0.21 stores `SettingEngine::with_nat_1to1_ips` but never reads it, so the public
            // address is applied to what we advertise instead (`advertise`, `advertise_sdp`).
            // The server is always the DTLS server: when it answers a client's offer it says
            // `setup:passive`, and when it offers (`actpass`) clients answer `active`. Left to
            // the default (`active` when answering), a client that answered the server's offer
            // first and then offered itself would see the server switch roles, which Chromium
            // refuses ("Failed to set SSL role for the transport").
            let settings = media::setting_engine()
                .with_answering_dtls_role(rtc::peer_connection::transport::RTCDtlsRole::Server);
            let built = PeerConnectionBuilder::new()
                .with_media_engine(engine)
                .with_interceptor_registry(registry)
                .with_setting_engine(settings.build())
                .with_handler(Arc::clone(&handler))
                .with_udp_addrs(vec![SocketAddr::new(self.bind_ip, port)])
                .build()
                .await;
            match built {
                Ok(pc) => return Ok(Arc::new(pc)),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error
            .unwrap_or_else(|| webrtc::error::Error::Other("ICE port range is empty".to_owned())))
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
