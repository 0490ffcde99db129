//! Network namespaces for tests that need a real network between a participant and the server:
//! a namespace joined to this host by a veth pair (a /30 of 10.213.0.0/16 per namespace), where
//! a test drops UDP (nftables) or shapes the link (`tc tbf`: rate limits). Needs root; a test
//! skips with a message when `ip netns add` is not permitted. Everything is removed on drop:
//! deleting the namespace deletes its end of the veth (and with it the host's end, and the
//! qdiscs on both) and its nft table.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::process::Command;

/// A namespace and the veth pair to it.
pub struct Netns {
    /// The namespace's name.
    pub ns: String,
    /// The host's end of the veth.
    pub host_if: String,
    /// The namespace's end of the veth.
    pub ns_if: String,
    /// The host's address on the pair.
    pub host_ip: Ipv4Addr,
    /// The namespace's address on the pair.
    pub ns_ip: Ipv4Addr,
}

/// Why there is no namespace.
pub enum NetError {
    /// Not permitted here (not root, or no CAP_NET_ADMIN): the test is skipped.
    NotPermitted(String),
    /// Anything else is a failure.
    Failed(String),
}

/// Runs `program` to completion; its stdout, or what it said on failure.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The name of the nft table [`Netns::block_udp`] adds.
const UDP_BLOCK_TABLE: &str = "videoroom_udp_block";

impl Netns {
    /// A new namespace `vr-<prefix>-…` joined to the host.
    pub fn new(prefix: &str) -> Result<Self, NetError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{n}", pid % 100_000);
        let ns = format!("vr-{prefix}-{tag}");
        // Interface names have at most 15 bytes.
        let host_if = format!("vth{tag}");
        let ns_if = format!("vtn{tag}");
        let k = (pid.wrapping_mul(4) + n) % 16_000;
        let base = 4 * k;
        let (b2, b3) = ((base >> 8) as u8, (base & 0xff) as u8);
        let host_ip = Ipv4Addr::new(10, 213, b2, b3 + 1);
        let ns_ip = Ipv4Addr::new(10, 213, b2, b3 + 2);

        let _ = run("ip", &["netns", "del", &ns]);
        if let Err(e) = run("ip", &["netns", "add", &ns]) {
            let lower = e.to_lowercase();
            return Err(
                if lower.contains("permission") || lower.contains("not permitted") {
                    NetError::NotPermitted(e)
                } else {
                    NetError::Failed(e)
                },
            );
        }
        let net = Self {
            ns,
            host_if,
            ns_if,
            host_ip,
            ns_ip,
        };
        let fail = NetError::Failed;
        let host_cidr = format!("{host_ip}/30");
        let ns_cidr = format!("{ns_ip}/30");
        run(
            "ip",
            &[
                "link",
                "add",
                &net.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &net.ns_if,
            ],
        )
        .map_err(fail)?;
        run("ip", &["link", "set", &net.ns_if, "netns", &net.ns]).map_err(fail)?;
        run("ip", &["addr", "add", &host_cidr, "dev", &net.host_if]).map_err(fail)?;
        run("ip", &["link", "set", &net.host_if, "up"]).map_err(fail)?;
        run(
            "ip",
            &["-n", &net.ns, "addr", "add", &ns_cidr, "dev", &net.ns_if],
        )
        .map_err(fail)?;
        run("ip", &["-n", &net.ns, "link", "set", &net.ns_if, "up"]).map_err(fail)?;
        run("ip", &["-n", &net.ns, "link", "set", "lo", "up"]).map_err(fail)?;
        Ok(net)
    }

    /// [`Netns::new`], or `None` (with a message) when this environment does not permit one.
    pub fn or_skip(prefix: &str) -> Option<Self> {
        match Self::new(prefix) {
            Ok(net) => Some(net),
            Err(NetError::NotPermitted(e)) => {
                eprintln!("SKIPPED: cannot create a network namespace here ({e}); run as root");
                None
            }
            Err(NetError::Failed(e)) => panic!("setting up a network namespace: {e}"),
        }
    }

    /// Drops all UDP in and out of the namespace, loopback included.
    pub fn block_udp(&self) -> Result<(), String> {
        let rules = format!(
            "table inet {UDP_BLOCK_TABLE} {{\n\
             chain input {{ type filter hook input priority 0; policy accept; meta l4proto udp counter drop; }}\n\
             chain output {{ type filter hook output priority 0; policy accept; meta l4proto udp counter drop; }}\n\
             }}\n"
        );
        let script = std::env::temp_dir().join(format!("{}.nft", self.ns));
        std::fs::write(&script, rules).map_err(|e| e.to_string())?;
        let script_path = script.to_str().unwrap_or_default().to_owned();
        let loaded = run(
            "ip",
            &["netns", "exec", &self.ns, "nft", "-f", &script_path],
        );
        let _ = std::fs::remove_file(&script);
        loaded.map(|_| ()).map_err(|e| {
            format!("{e} (the nftables package provides `nft`: apt-get install nftables)")
        })
    }

    /// UDP datagrams [`Netns::block_udp`] dropped (both directions).
    pub fn udp_dropped(&self) -> u64 {
        let listing = run(
            "ip",
            &[
                "netns",
                "exec",
                &self.ns,
                "nft",
                "list",
                "table",
                "inet",
                UDP_BLOCK_TABLE,
            ],
        )
        .unwrap_or_default();
        listing
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[0] == "packets")
            .filter_map(|w| w[1].parse::<u64>().ok())
            .sum()
    }

    /// Limits what flows from the host into the namespace (the namespace's downlink) to
    /// `kbit_per_s` with `tc tbf` on the host's end of the veth (a 200 ms queue, dropping
    /// what does not fit); `None` lifts the limit.
    pub fn limit_downlink(&self, kbit_per_s: Option<u32>) -> Result<(), String> {
        limit(None, &self.host_if, kbit_per_s)
    }

    /// Limits what flows from the namespace to the host (its uplink), like
    /// [`Netns::limit_downlink`], on the namespace's end of the veth.
    pub fn limit_uplink(&self, kbit_per_s: Option<u32>) -> Result<(), String> {
        limit(Some(&self.ns), &self.ns_if, kbit_per_s)
    }

    /// A server in this process on the host's end of the veth: HTTP (plain) and media on
    /// `host_ip`, ICE over TCP on a free port when `ice_tcp`. Its `ws://` URL comes with it.
    pub async fn server(&self, ice_tcp: bool) -> (videoroom_server::RunningServer, String) {
        let ip = std::net::IpAddr::V4(self.host_ip);
        let server = videoroom_testkit::start_server(videoroom_server::Config {
            listen: std::net::SocketAddr::new(ip, 0),
            rtc_bind_ip: ip,
            tcp_port: ice_tcp.then_some(0),
            tls: videoroom_server::config::TlsSetting::Off,
            ..videoroom_testkit::test_config()
        })
        .await;
        let url = format!("ws://{}/ws", server.local_addr());
        (server, url)
    }

    /// `program` run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.ns, program]);
        command
    }
}

/// `tc qdisc replace … tbf` on `dev` (in namespace `ns`), or its removal.
fn limit(ns: Option<&str>, dev: &str, kbit_per_s: Option<u32>) -> Result<(), String> {
    let mut args: Vec<String> = Vec::new();
    if let Some(ns) = ns {
        args.extend(["-n".into(), ns.into()]);
    }
    match kbit_per_s {
        Some(rate) => {
            // Burst: at least one full-size packet, and ~10 ms at the rate.
            let burst = (rate as usize * 1000 / 8 / 100).max(4_000);
            args.extend(
                [
                    "qdisc",
                    "replace",
                    "dev",
                    dev,
                    "root",
                    "tbf",
                    "rate",
                    &format!("{rate}kbit"),
                    "burst",
                    &burst.to_string(),
                    "latency",
                    "200ms",
                ]
                .map(str::to_owned),
            );
        }
        None => args.extend(["qdisc", "del", "dev", dev, "root"].map(str::to_owned)),
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run("tc", &args) {
        Ok(_) => Ok(()),
        // Lifting a limit that is not there is no error.
        Err(e) if kbit_per_s.is_none() && e.contains("No such file") => Ok(()),
        Err(e) => Err(format!("{e} (the iproute2 package provides `tc`)")),
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.ns]);
        // Normally gone with the namespace's end of the pair; in case the move failed.
        let _ = run("ip", &["link", "del", &self.host_if]);
    }
}
