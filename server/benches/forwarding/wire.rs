//! Wire-to-wire forwarding latency of the server alone, from a loopback capture.
//!
//! SRTP leaves the RTP header in the clear and the server forwards the publisher's sequence
//! numbers, so in a capture of `lo` the same (payload type, sequence number) appears once on the
//! publisher's SSRC (arriving at the server) and once per subscriber's SSRC (leaving it). The
//! difference of the kernel's capture timestamps is the server's forwarding latency, without the
//! load process's send and receive stacks. Needs `tcpdump` (Debian package) and root.

use pcap_file::pcap::PcapReader;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `tcpdump -i lo` writing UDP packets to a file.
pub struct Capture {
    child: Child,
    path: PathBuf,
}

/// Latency of the server alone, from the capture.
pub struct WireLatency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Forwarded packets matched to their arrival.
    pub samples: usize,
}

impl Capture {
    /// Starts capturing UDP on loopback.
    pub fn start(tag: &str) -> Result<Capture, String> {
        let path =
            std::env::temp_dir().join(format!("videoroom-wire-{}-{tag}.pcap", std::process::id()));
        let child = Command::new("tcpdump")
            .args(["-i", "lo", "-n", "-U", "-B", "65536", "-w"])
            .arg(&path)
            .arg("udp")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot run tcpdump (apt-get install tcpdump; needs root): {e}")
            })?;
        Ok(Capture { child, path })
    }

    /// Stops the capture and computes the latency of every forwarded packet in it.
    pub fn finish(mut self) -> Result<WireLatency, String> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let result = analyse(&self.path);
        let _ = std::fs::remove_file(&self.path);
        result
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (capture time, SSRC, payload type, sequence number) of each RTP packet in the file.
fn rtp_packets(path: &PathBuf) -> Result<Vec<(Duration, u32, u8, u16)>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("capture file: {e}"))?;
    let mut reader = PcapReader::new(file).map_err(|e| format!("capture file: {e}"))?;
    let link_header = match u32::from(reader.header().datalink) {
        1 => 14,   // Ethernet (what Linux uses for lo)
        113 => 16, // Linux cooked capture
        0 => 4,    // BSD loopback
        other => return Err(format!("unexpected capture link type {other}")),
    };
    let mut out = Vec::new();
    while let Some(packet) = reader.next_packet() {
        let packet = packet.map_err(|e| format!("capture file: {e}"))?;
        let data = &packet.data[..];
        let Some(ip) = data.get(link_header..) else {
            continue;
        };
        if ip.first().map(|b| b >> 4) != Some(4) {
            continue;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let Some(rtp) = ip.get(ihl + 8..) else {
            continue;
        };
        if rtp.len() < 12 || rtp[0] >> 6 != 2 {
            continue; // not RTP (STUN, DTLS, or too short)
        }
        let pt = rtp[1] & 0x7f;
        if !(96..=127).contains(&pt) && pt != 0 && pt != 8 && pt != 9 {
            continue; // RTCP (200–206 & 0x7f = 72–78) and anything else
        }
        let seq = u16::from_be_bytes([rtp[2], rtp[3]]);
        let ssrc = u32::from_be_bytes([rtp[8], rtp[9], rtp[10], rtp[11]]);
        out.push((packet.timestamp, ssrc, pt, seq));
    }
    Ok(out)
}

fn analyse(path: &PathBuf) -> Result<WireLatency, String> {
    let packets = rtp_packets(path)?;
    // First sighting of each (pt, seq) per SSRC (a NACK retransmission is a later sighting).
    let mut first: HashMap<(u8, u16), HashMap<u32, Duration>> = HashMap::new();
    for (t, ssrc, pt, seq) in packets {
        let seen = first.entry((pt, seq)).or_default().entry(ssrc).or_insert(t);
        if t < *seen {
            *seen = t;
        }
    }
    // The publisher's SSRC of a payload type is the one that is earliest in most groups.
    let mut earliest_count: HashMap<(u8, u32), usize> = HashMap::new();
    for ((pt, _), by_ssrc) in &first {
        if let Some((ssrc, _)) = by_ssrc.iter().min_by_key(|(_, t)| **t) {
            *earliest_count.entry((*pt, *ssrc)).or_default() += 1;
        }
    }
    let mut publisher: HashMap<u8, (u32, usize)> = HashMap::new();
    for ((pt, ssrc), count) in earliest_count {
        let best = publisher.entry(pt).or_insert((ssrc, 0));
        if count > best.1 {
            *best = (ssrc, count);
        }
    }
    let mut latencies: Vec<f64> = Vec::new();
    for ((pt, _), by_ssrc) in &first {
        let Some((pub_ssrc, _)) = publisher.get(pt) else {
            continue;
        };
        let Some(arrival) = by_ssrc.get(pub_ssrc) else {
            continue;
        };
        for (ssrc, t) in by_ssrc {
            if ssrc != pub_ssrc && t >= arrival {
                latencies.push((*t - *arrival).as_secs_f64() * 1000.0);
            }
        }
    }
    if latencies.is_empty() {
        return Err(
            "the capture holds no forwarded RTP (is tcpdump allowed to capture lo?)".into(),
        );
    }
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Ok(WireLatency {
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
        max_ms: pick(1.0),
        samples: latencies.len(),
    })
}
