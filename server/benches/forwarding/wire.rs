//! Wire-to-wire forwarding latency of the server alone, from a loopback capture.
//!
//! SRTP leaves the RTP header in the clear. Both engines keep the publisher's RTP timestamp and
//! its sequence numbers up to a per-leg offset (the new engine's `seq_offset`, bumped when it
//! drops a packet on purpose; 0 in the old one), and give every leg its own SSRC (and maybe
//! payload type). So, in a capture of `lo`:
//! - a datagram **to** one of the server's UDP ports is an arrival (a publisher's packet), one
//!   **from** one of them a departure (a leg's packet) — the ports come from `/proc`, so this
//!   works with the new engine's one port as with the old engine's port per peer;
//! - each departing SSRC is mapped to the arriving SSRC and sequence offset that most of its
//!   packets agree with (same RTP timestamp, same sequence number minus the offset);
//! - the latency of a departure is its capture time minus that of its arrival, both kernel
//!   timestamps, without the load process's send and receive stacks.
//!
//! GSO: on loopback a GSO send is captured as one datagram holding several RTP packets of one
//! SSRC back to back, the same size except the last; such a datagram is split where the next
//! header (same SSRC, next sequence number) starts. Needs `tcpdump` (Debian package) and root.

use pcap_file::pcap::PcapReader;
use std::collections::{HashMap, HashSet};
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
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
    /// Forwarded packets matched to their arrival.
    pub samples: usize,
    /// Forwarded packets seen but not matched (their arrival was before the capture, or the
    /// leg's sequence offset changed in a way the matcher did not follow).
    pub unmatched: usize,
    /// Captured datagrams that held more than one RTP packet (GSO).
    pub gso_datagrams: usize,
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

    /// Stops the capture and computes the latency of every forwarded packet in it; the server's
    /// UDP ports tell arrivals from departures.
    pub fn finish(mut self, server_ports: &HashSet<u16>) -> Result<WireLatency, String> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let result = analyse(&self.path, server_ports);
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

/// One RTP packet seen on the wire.
#[derive(Clone, Copy)]
struct Rtp {
    at: Duration,
    ssrc: u32,
    seq: u16,
    ts: u32,
}

/// The clear header fields of an RTP packet, or `None` for anything else (STUN, DTLS, RTCP).
fn rtp_header(b: &[u8]) -> Option<(u8, u16, u32, u32)> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let pt = b[1] & 0x7f;
    if !(96..=127).contains(&pt) && pt != 0 && pt != 8 && pt != 9 {
        return None; // RTCP (200–206 & 0x7f = 72–78) and anything else
    }
    let seq = u16::from_be_bytes([b[2], b[3]]);
    let ts = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    let ssrc = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
    Some((pt, seq, ts, ssrc))
}

/// The RTP packets of one UDP payload: one, or several back to back for a GSO datagram (every
/// segment as long as the first, the last one shorter or equal).
fn split_gso(payload: &[u8]) -> Vec<(u16, u32, u32)> {
    let Some((_, seq, ts, ssrc)) = rtp_header(payload) else {
        return Vec::new();
    };
    let mut out = vec![(seq, ts, ssrc)];
    // A single RTP packet of these stacks is at most ~1.2 KB; only a GSO datagram is longer.
    if payload.len() <= 1500 {
        return out;
    }
    let next_starts_at = |k: usize| {
        rtp_header(&payload[k..]).is_some_and(|(_, s, _, c)| c == ssrc && s == seq.wrapping_add(1))
    };
    let Some(segment) = (12..payload.len() - 12).find(|&k| next_starts_at(k)) else {
        return out;
    };
    let mut at = segment;
    while at < payload.len() {
        match rtp_header(&payload[at..]) {
            Some((_, s, t, c)) if c == ssrc => out.push((s, t, c)),
            _ => break,
        }
        at += segment;
    }
    out
}

/// Arrivals at and departures from the server, in capture order, and how many datagrams were
/// GSO runs.
fn rtp_packets(
    path: &PathBuf,
    server_ports: &HashSet<u16>,
) -> Result<(Vec<Rtp>, Vec<Rtp>, usize), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("capture file: {e}"))?;
    let mut reader = PcapReader::new(file).map_err(|e| format!("capture file: {e}"))?;
    let link_header = match u32::from(reader.header().datalink) {
        1 => 14,   // Ethernet (what Linux uses for lo)
        113 => 16, // Linux cooked capture
        0 => 4,    // BSD loopback
        other => return Err(format!("unexpected capture link type {other}")),
    };
    let (mut arrivals, mut departures, mut gso) = (Vec::new(), Vec::new(), 0);
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
        let Some(udp) = ip.get(ihl..) else { continue };
        if udp.len() < 8 {
            continue;
        }
        let src = u16::from_be_bytes([udp[0], udp[1]]);
        let dst = u16::from_be_bytes([udp[2], udp[3]]);
        let into = match (server_ports.contains(&src), server_ports.contains(&dst)) {
            (false, true) => &mut arrivals,
            (true, false) => &mut departures,
            _ => continue, // neither end is the server (or both: not media)
        };
        let rtp = split_gso(&udp[8..]);
        if rtp.len() > 1 {
            gso += 1;
        }
        for (seq, ts, ssrc) in rtp {
            into.push(Rtp {
                at: packet.timestamp,
                ssrc,
                seq,
                ts,
            });
        }
    }
    Ok((arrivals, departures, gso))
}

fn analyse(path: &PathBuf, server_ports: &HashSet<u16>) -> Result<WireLatency, String> {
    let (arrivals, departures, gso_datagrams) = rtp_packets(path, server_ports)?;
    // First sighting of each arriving (SSRC, seq); a NACK retransmission is a later one.
    let mut arrived: HashMap<(u32, u16), Rtp> = HashMap::with_capacity(arrivals.len());
    // Arrivals by RTP timestamp, to find the stream a departure came from.
    let mut by_ts: HashMap<u32, Vec<(u32, u16)>> = HashMap::new();
    for a in arrivals {
        if let std::collections::hash_map::Entry::Vacant(e) = arrived.entry((a.ssrc, a.seq)) {
            e.insert(a);
            by_ts.entry(a.ts).or_default().push((a.ssrc, a.seq));
        }
    }
    // First sighting of each departing (SSRC, seq), grouped by departing SSRC.
    let mut legs: HashMap<u32, Vec<Rtp>> = HashMap::new();
    let mut seen: HashSet<(u32, u16)> = HashSet::with_capacity(departures.len());
    for d in departures {
        if seen.insert((d.ssrc, d.seq)) {
            legs.entry(d.ssrc).or_default().push(d);
        }
    }
    let mut latencies: Vec<f64> = Vec::new();
    let mut unmatched = 0usize;
    for packets in legs.values() {
        // The (arriving SSRC, sequence offset) most of this leg's packets agree with.
        let mut votes: HashMap<(u32, u16), usize> = HashMap::new();
        for d in packets {
            for (ssrc, seq) in by_ts.get(&d.ts).into_iter().flatten() {
                *votes.entry((*ssrc, d.seq.wrapping_sub(*seq))).or_default() += 1;
            }
        }
        let Some(((source, offset), _)) = votes.into_iter().max_by_key(|(_, n)| *n) else {
            unmatched += packets.len();
            continue;
        };
        for d in packets {
            let exact = arrived
                .get(&(source, d.seq.wrapping_sub(offset)))
                .filter(|a| a.ts == d.ts);
            // The offset moved (a packet dropped on purpose): the nearest arrival of the same
            // stream and RTP timestamp.
            let found = exact.or_else(|| {
                by_ts
                    .get(&d.ts)?
                    .iter()
                    .filter(|(ssrc, _)| *ssrc == source)
                    .min_by_key(|(_, seq)| {
                        let delta = d.seq.wrapping_sub(offset).wrapping_sub(*seq);
                        delta.min(delta.wrapping_neg())
                    })
                    .and_then(|key| arrived.get(key))
            });
            match found {
                Some(a) if d.at >= a.at => latencies.push((d.at - a.at).as_secs_f64() * 1000.0),
                _ => unmatched += 1,
            }
        }
    }
    if latencies.is_empty() {
        return Err(format!(
            "the capture holds no forwarded RTP matched to its arrival ({unmatched} departures unmatched; server UDP ports {server_ports:?}; is tcpdump allowed to capture lo?)"
        ));
    }
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Ok(WireLatency {
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
        max_ms: pick(1.0),
        samples: latencies.len(),
        unmatched,
        gso_datagrams,
    })
}
