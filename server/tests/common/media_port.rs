//! Helpers of the media-port loopback tests (`media_port_hostile`, `media_port_many_rooms`,
//! `media_connect_time`): the server binary as a child process (its log, RSS and HTTP
//! endpoints), floods of datagrams at the one UDP port, forged DTLS/SRTP/STUN, and small
//! statistics. Included with `#[path = "common/media_port.rs"] mod media_port;`.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The drop reasons of `videoroom_media_dropped_datagrams_total`, in the order printed.
pub const DROP_REASONS: [&str; 5] = [
    "malformed",
    "oversized",
    "unknown_ufrag",
    "unknown_source",
    "stun_rate_limited",
];

/// The `videoroom-server` binary running as a child process, its stderr (the tracing output)
/// collected line by line. Killed when dropped.
pub struct ChildServer {
    child: Child,
    /// The HTTP/WebSocket address (`--listen 127.0.0.1:0`).
    pub http: SocketAddr,
    /// The media engine's UDP address (`--udp-port 0`), read from its `media engine listening`
    /// log line.
    pub udp: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl ChildServer {
    /// Starts the binary on loopback (HTTP, UDP and ICE-TCP on ports it picks) with
    /// `RUST_LOG=rust_log`, or without `RUST_LOG` (the binary's default filter) for `None`, no
    /// colours, and waits (at most 20 s) until it listens on HTTP and UDP.
    pub fn spawn(rust_log: Option<&str>) -> ChildServer {
        let mut command = Command::new(env!("CARGO_BIN_EXE_videoroom-server"));
        match rust_log {
            Some(filter) => command.env("RUST_LOG", filter),
            None => command.env_remove("RUST_LOG"),
        };
        let mut child = command
            .args([
                "--listen",
                "127.0.0.1:0",
                "--rtc-bind-ip",
                "127.0.0.1",
                "--udp-port",
                "0",
                "--tcp-port",
                "0",
            ])
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Keeps reading to the end, so a later line never meets a closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = ChildServer {
            child,
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            udp: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "the server did not print `listening on` within 20 s; its log:\n{}",
                    server.log_since(0).join("\n")
                );
            };
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                server.http = addr.parse().expect("listening address");
                break;
            }
        }
        loop {
            let found = server
                .log_since(0)
                .iter()
                .filter(|l| l.contains("media engine listening"))
                .find_map(|l| {
                    let rest = &l[l.find("udp=")? + 4..];
                    rest.split_whitespace().next()?.parse::<SocketAddr>().ok()
                });
            if let Some(udp) = found {
                server.udp = udp;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no `media engine listening udp=` line within 20 s (RUST_LOG must allow info \
                 for the engine): {:?}",
                server.log_since(0)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// The WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.http)
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Log lines so far.
    pub fn log_len(&self) -> usize {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Log lines from index `from` on.
    pub fn log_since(&self, from: usize) -> Vec<String> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.get(from..).map(<[String]>::to_vec).unwrap_or_default()
    }

    /// The child's resident set size (`VmRSS`) in KiB.
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS:")
    }

    /// The child's peak resident set size (`VmHWM`) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmHWM:")
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `kB` field of `/proc/<pid>/status`.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// `GET http://{http}{path}`: status and body.
pub async fn http_get(http: SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(format!("http://{http}{path}"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// The value of the sample `name` (with its labels, e.g. `x_total{reason="a"}`) in a
/// Prometheus text exposition.
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let value = l.strip_prefix(name)?.strip_prefix(' ')?;
        value.trim().parse::<f64>().ok().map(|v| v as u64)
    })
}

/// `videoroom_media_dropped_datagrams_total` per reason, in [`DROP_REASONS`] order.
pub fn drop_counts(text: &str) -> [u64; 5] {
    DROP_REASONS.map(|r| {
        metric(
            text,
            &format!("videoroom_media_dropped_datagrams_total{{reason=\"{r}\"}}"),
        )
        .unwrap_or_else(|| panic!("no drop counter for {r} in /metrics:\n{text}"))
    })
}

/// Formats drop counters as `reason=n` pairs.
pub fn format_drops(counts: &[u64; 5]) -> String {
    DROP_REASONS
        .iter()
        .zip(counts)
        .map(|(r, n)| format!("{r}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// UDP datagrams the kernel dropped for a full receive buffer, machine-wide (IPv4
/// `RcvbufErrors` of `/proc/net/snmp`): what a flood can lose before the server sees it.
pub fn udp_rcvbuf_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").expect("/proc/net/snmp");
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        panic!("no Udp lines in /proc/net/snmp");
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .expect("RcvbufErrors")
}

/// What a flood did.
#[derive(Debug, Default, Clone, Copy)]
pub struct FloodReport {
    /// Datagrams handed to the kernel.
    pub sent: u64,
    /// `send_to` calls that failed.
    pub send_errors: u64,
    /// Datagrams the flooding sockets received back (there should be none).
    pub replies: u64,
    /// From the first send to the last.
    pub elapsed: Duration,
}

/// Fires `total` datagrams of random length (0..1600) and random bytes at `target` from
/// `sockets` local sockets at once (one thread each, seeded from `seed`), as fast as they go.
/// Blocking: run it on a blocking thread.
pub fn random_flood(target: SocketAddr, total: usize, sockets: usize, seed: u64) -> FloodReport {
    let start = Instant::now();
    let threads: Vec<_> = (0..sockets)
        .map(|i| {
            let n = total / sockets + usize::from(i < total % sockets);
            std::thread::spawn(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").expect("flood socket");
                let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
                let mut buf = [0_u8; 1600];
                let mut report = FloodReport::default();
                for k in 0..n {
                    let len = rng.random_range(0..1600);
                    rng.fill_bytes(&mut buf[..len]);
                    match socket.send_to(&buf[..len], target) {
                        Ok(_) => report.sent += 1,
                        Err(_) => report.send_errors += 1,
                    }
                    if k % 256 == 0 {
                        report.replies += drain_replies(&socket);
                    }
                }
                report.replies += drain_replies(&socket);
                report
            })
        })
        .collect();
    let mut report = FloodReport::default();
    for t in threads {
        let r = t.join().expect("flood thread");
        report.sent += r.sent;
        report.send_errors += r.send_errors;
        report.replies += r.replies;
    }
    report.elapsed = start.elapsed();
    report
}

/// Datagrams queued on `socket`, read without waiting.
fn drain_replies(socket: &UdpSocket) -> u64 {
    let mut buf = [0_u8; 2048];
    let mut n = 0;
    if socket.set_nonblocking(true).is_err() {
        return 0;
    }
    while socket.recv_from(&mut buf).is_ok() {
        n += 1;
    }
    let _ = socket.set_nonblocking(false);
    n
}

/// Waits up to `timeout` for one datagram on `socket`; whether one came.
pub fn got_datagram_within(socket: &UdpSocket, timeout: Duration) -> bool {
    let mut buf = [0_u8; 2048];
    socket.set_nonblocking(false).expect("blocking");
    socket
        .set_read_timeout(Some(timeout))
        .expect("read timeout");
    socket.recv_from(&mut buf).is_ok()
}

/// A DTLS 1.2 ClientHello record as a WebRTC client sends it first (epoch 0, ECDHE-ECDSA
/// suites, use_srtp, extended master secret), with a random `random`.
pub fn dtls_client_hello(rng: &mut impl RngCore) -> Vec<u8> {
    let mut body = vec![0xFE, 0xFD]; // client_version DTLS 1.2
    let mut random = [0_u8; 32];
    rng.fill_bytes(&mut random);
    body.extend_from_slice(&random);
    body.push(0); // session_id
    body.push(0); // cookie
    body.extend_from_slice(&[0, 4, 0xC0, 0x2B, 0xC0, 0x2F]); // cipher suites
    body.extend_from_slice(&[1, 0]); // compression: null
    let extensions: &[u8] = &[
        0x00, 0x0A, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1D, 0x00, 0x17, // supported_groups
        0x00, 0x0B, 0x00, 0x02, 0x01, 0x00, // ec_point_formats
        0x00, 0x0E, 0x00, 0x07, 0x00, 0x04, 0x00, 0x07, 0x00, 0x01, 0x00, // use_srtp
        0x00, 0x17, 0x00, 0x00, // extended_master_secret
    ];
    body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    body.extend_from_slice(extensions);
    let len = body.len() as u32;
    let mut handshake = vec![1]; // client_hello
    handshake.extend_from_slice(&len.to_be_bytes()[1..]);
    handshake.extend_from_slice(&[0, 0]); // message_seq
    handshake.extend_from_slice(&[0, 0, 0]); // fragment_offset
    handshake.extend_from_slice(&len.to_be_bytes()[1..]); // fragment_length
    handshake.extend_from_slice(&body);
    let mut record = vec![22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0]; // handshake, DTLS 1.2, epoch 0
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// An SRTP-looking datagram: RTP version 2 (first byte 0x80), a media payload type, random
/// header fields and a random body (20..1200 bytes in all).
pub fn forged_srtp(rng: &mut impl RngCore) -> Vec<u8> {
    let len = 20 + (rng.next_u32() as usize) % 1180;
    let mut b = vec![0_u8; len];
    rng.fill_bytes(&mut b);
    b[0] = 0x80;
    b[1] = if rng.next_u32().is_multiple_of(2) {
        96
    } else {
        111
    };
    b
}

/// A STUN Binding request with USERNAME `username`, MESSAGE-INTEGRITY keyed with `password`
/// and FINGERPRINT, built by rtc-stun (what an ICE agent sends as a check).
pub fn stun_binding_request(username: &str, password: &str) -> Vec<u8> {
    use rtc::stun::attributes::ATTR_USERNAME;
    use rtc::stun::fingerprint::FINGERPRINT;
    use rtc::stun::integrity::MessageIntegrity;
    use rtc::stun::message::{BINDING_REQUEST, Message, Setter, TransactionId};
    use rtc::stun::textattrs::Username;
    let provider = rtc::crypto::default_provider().expect("a built-in crypto provider");
    let setters: Vec<Box<dyn Setter + '_>> = vec![
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId::new()),
        Box::new(Username::new(ATTR_USERNAME, username.to_owned())),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
            password.to_owned(),
            provider.crypto(),
        )),
        Box::new(FINGERPRINT),
    ];
    let mut m = Message::new();
    m.build(&setters).expect("build a STUN message");
    m.raw
}

/// The `a=ice-ufrag` of an SDP.
pub fn ice_ufrag(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        .map(str::to_owned)
}

/// What a [`Spoofer`] fired and got back.
#[derive(Debug, Default, Clone)]
pub struct SpoofReport {
    /// Forged DTLS ClientHellos sent.
    pub client_hellos: u64,
    /// Forged SRTP datagrams sent.
    pub srtp: u64,
    /// Datagrams the spoofing socket received (there should be none).
    pub replies: u64,
    /// When each burst (one ClientHello, then `n` forged SRTP) was fired, with its `n`.
    pub sent_at: Vec<(Instant, u64)>,
}

impl SpoofReport {
    /// ClientHellos sent before `t`.
    pub fn client_hellos_before(&self, t: Instant) -> usize {
        self.sent_at.iter().filter(|(at, _)| *at < t).count()
    }

    /// Forged SRTP datagrams sent before `t`.
    pub fn srtp_before(&self, t: Instant) -> u64 {
        self.sent_at
            .iter()
            .filter(|(at, _)| *at < t)
            .map(|(_, n)| n)
            .sum()
    }

    /// Everything fired.
    pub fn fired(&self) -> u64 {
        self.client_hellos + self.srtp
    }
}

/// A second local socket firing forged ClientHellos and SRTP at the media port until stopped
/// (one ClientHello and ten SRTP datagrams per millisecond, at most `max_for`).
/// [`Spoofer::start`] returns once the first burst is out.
pub struct Spoofer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(SpoofReport, UdpSocket)>,
    /// The spoofing socket's address.
    pub local: SocketAddr,
}

impl Spoofer {
    /// Starts firing at `target`.
    pub fn start(target: SocketAddr, seed: u64, max_for: Duration) -> Spoofer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("spoofing socket");
        let local = socket.local_addr().expect("local");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut report = SpoofReport::default();
            let start = Instant::now();
            while !stopped.load(Ordering::Relaxed) && start.elapsed() < max_for {
                let at = Instant::now();
                let mut srtp = 0;
                if socket.send_to(&dtls_client_hello(&mut rng), target).is_ok() {
                    report.client_hellos += 1;
                }
                for _ in 0..10 {
                    if socket.send_to(&forged_srtp(&mut rng), target).is_ok() {
                        srtp += 1;
                    }
                }
                report.srtp += srtp;
                report.sent_at.push((at, srtp));
                let _ = first_tx.send(());
                report.replies += drain_replies(&socket);
                std::thread::sleep(Duration::from_millis(1));
            }
            (report, socket)
        });
        first_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the spoofer fires within 5 s");
        Spoofer {
            stop,
            thread,
            local,
        }
    }

    /// Stops firing; the report and the socket (to listen on afterwards).
    pub fn stop(self) -> (SpoofReport, UdpSocket) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("spoofer thread")
    }
}

/// The longest time without an arrival in `[from, to]`, counting the edges (a stall that starts
/// before `to` and lasts past it counts up to `to`). `arrivals` need not be sorted.
pub fn largest_gap(arrivals: &[Instant], from: Instant, to: Instant) -> Duration {
    let mut inside: Vec<Instant> = arrivals
        .iter()
        .copied()
        .filter(|t| *t >= from && *t <= to)
        .collect();
    inside.sort();
    let mut edges = Vec::with_capacity(inside.len() + 2);
    edges.push(from);
    edges.extend(inside);
    edges.push(to);
    edges
        .windows(2)
        .map(|w| w[1].saturating_duration_since(w[0]))
        .max()
        .unwrap_or_default()
}

/// The `p`-th percentile (0..=100, nearest rank) of `values`.
pub fn percentile(values: &[Duration], p: usize) -> Duration {
    let mut v = values.to_vec();
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * v.len()).div_ceil(100).clamp(1, v.len());
    v[rank - 1]
}

/// Milliseconds with one decimal, for printing.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Random bytes' `Rng` for callers that need one seeded.
pub fn seeded(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Whether a log line holds something like a byte dump: a long run of hex digits, or a Rust
/// `[1, 2, 3, …]` list of many numbers.
pub fn looks_like_a_dump(line: &str) -> bool {
    let mut hex_run = 0;
    for c in line.chars() {
        if c.is_ascii_hexdigit() {
            hex_run += 1;
            if hex_run >= 128 {
                return true;
            }
        } else {
            hex_run = 0;
        }
    }
    let numbers = line
        .split([',', '[', ']'])
        .filter(|s| {
            let s = s.trim();
            !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit())
        })
        .count();
    numbers >= 64
}
