//! How the server's PeerConnections are built: bind address, ICE port range, 1:1 NAT address.

use crate::config::Config;
use crate::media;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceCandidateType,
    SettingEngineBuilder,
};

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
            let mut settings = SettingEngineBuilder::new();
            if let Some(ip) = self.public_ip {
                settings =
                    settings.with_nat_1to1_ips(vec![ip.to_string()], RTCIceCandidateType::Host);
            }
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
