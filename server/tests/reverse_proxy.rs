//! The reverse-proxy configurations in README.md ("### Behind a reverse proxy") work as written:
//! the README's nginx block and Caddy block run in the real nginx and Caddy (child processes on
//! loopback, everything they write in a temporary directory) in front of a real server started
//! as the README says (plain HTTP on loopback, `--trusted-proxy 127.0.0.1`, `--web-root`).
//! Through each proxy, over HTTPS: `/healthz` answers, `/r/ROOM` serves the web app's
//! `index.html`, two WebRTC participants join over `wss://` and receive each other's audio and
//! video (media itself goes straight to the server over UDP), and the server counts WebSocket
//! upgrades per client address taken from the proxy's `X-Forwarded-For`, which a client cannot
//! choose.
//!
//! Only what differs between a public host and this test is replaced in the README's text,
//! each replacement checked to apply:
//! - the domain `meet.example.org` → `localhost` (the test's certificates are for it);
//! - nginx: `listen 443 ssl;` → `listen 127.0.0.1:PORT ssl;` (a free port; no root needed), and
//!   certbot's `/etc/letsencrypt/live/meet.example.org/{fullchain,privkey}.pem` → files in the
//!   temporary directory (a certificate for `localhost` signed by a test authority, rcgen);
//! - Caddy: the site address gets the free port (`localhost:PORT`); the certificate is Caddy's
//!   own, from its local authority (Caddy always uses that one for `localhost`);
//! - the upstream `127.0.0.1:8080` → the test server's address.
//!
//! Around the README's text only what keeps each proxy inside its directory is added: for
//! nginx, `events {}`/`http {}` with its temporary-file paths, `-p`/`-e stderr` and
//! `-g 'daemon off; master_process off; pid …; error_log stderr;'`; for Caddy, a global
//! options block (`admin off`, `local_certs`, `skip_install_trust`, `default_bind 127.0.0.1`,
//! no HTTP redirect listener, storage in the directory) and HOME/XDG directories there.
//!
//! A proxy that is not installed fails the test (`apt-get install nginx caddy`; scripts/test.sh
//! installs both).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::Connector;
use videoroom_server::Config;
use videoroom_server::limits::{Rate, RateLimits};
use videoroom_testkit::*;

const SECTION: &str = "### Behind a reverse proxy";
/// The README's public name and upstream address, replaced here.
const DOMAIN: &str = "meet.example.org";
const UPSTREAM: &str = "127.0.0.1:8080";
/// In the test's `index.html`, to recognise it through the proxy.
const INDEX_MARKER: &str = "reverse-proxy-test-index";
/// WebSocket upgrades per client address at once (then one a second).
const UPGRADE_BURST: u32 = 5;
/// Bound for a proxy to start (Caddy creates its certificate authority first).
const START: Duration = Duration::from_secs(30);
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_nginx_configuration_proxies_the_app_signaling_and_client_addresses() {
    through_the_proxy(Kind::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_caddy_configuration_proxies_the_app_signaling_and_client_addresses() {
    through_the_proxy(Kind::Caddy).await;
}

async fn through_the_proxy(kind: Kind) {
    let web_root = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        web_root.path().join("index.html"),
        format!("<!doctype html><title>Videoroom</title><!-- {INDEX_MARKER} -->"),
    )
    .expect("index.html");
    let server = start_server(Config {
        web_root: Some(web_root.path().to_path_buf()),
        rate_limits: RateLimits {
            upgrades_per_ip: Rate {
                per_sec: 1,
                burst: UPGRADE_BURST,
            },
            trusted_proxies: vec![LOOPBACK],
            ..RateLimits::default()
        },
        ..test_config()
    })
    .await;
    let proxy = Proxy::start(kind, server.local_addr()).await;

    // The web app and the health check.
    let health = proxy.get(LOOPBACK, "/healthz").await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (200, "ok\n"),
        "{kind:?} /healthz"
    );
    let page = proxy.get(LOOPBACK, "/r/some-room").await;
    assert_eq!(page.status, 200, "{kind:?} /r/some-room: {}", page.head);
    assert!(
        page.body.contains(INDEX_MARKER),
        "{kind:?}: /r/some-room is not the web root's index.html: {}",
        page.body
    );

    // Two participants over the proxy's wss:// URL; their media goes to the server directly.
    let url = format!("wss://localhost:{}/ws", proxy.port);
    let tls = || Some(Connector::Rustls(Arc::clone(&proxy.tls)));
    let alice =
        TestPeer::join_with(&url, "behind-proxy", "alice", PeerOptions::default(), tls()).await;
    let bob = TestPeer::join_with(&url, "behind-proxy", "bob", PeerOptions::default(), tls()).await;
    for (receiver, publisher) in [(&alice, &bob), (&bob, &alice)] {
        assert_eq!(publisher.published.len(), 2, "audio and video");
        for (track_id, _) in &publisher.published {
            wait_until(
                WAIT,
                &format!(
                    "{} receives 100 packets of {track_id} ({kind:?})",
                    receiver.name
                ),
                || receiver.received_count(track_id.as_str()) >= 100,
            )
            .await;
            let n = receiver.check_received(track_id.as_str(), publisher.peer_id.as_str());
            assert!(n >= 100, "{n}");
        }
    }
    let metrics = server.metrics().render();
    assert!(metrics.contains("videoroom_peers 2"), "{metrics}");

    // The client's own address, from X-Forwarded-For: 127.0.0.2 spends its burst of upgrades
    // (each time claiming another address in its own X-Forwarded-For, which must not help:
    // the proxy appends the address it sees, and the server reads from the right).
    let first = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut accepted = 0;
    let refused = loop {
        let claimed = format!("203.0.113.{}", accepted + 1);
        match proxy.upgrade(first, Some(&claimed)).await {
            101 => accepted += 1,
            status => break status,
        }
        // Far more than the burst: only a refill of one a second lets more than 5 through.
        assert!(
            accepted <= UPGRADE_BURST + 5,
            "{kind:?}: {accepted} upgrades from one address all accepted: the server keys the \
             limit on the address the client claims"
        );
    };
    assert_eq!(refused, 429, "{kind:?}: the upgrade over the limit");
    assert!(
        accepted >= UPGRADE_BURST,
        "{kind:?}: only {accepted} upgrades before the limit"
    );
    // ...while 127.0.0.3, behind the same proxy, still has its whole burst: the server did not
    // count the proxy's own address.
    let second = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
    for i in 0..UPGRADE_BURST {
        assert_eq!(
            proxy.upgrade(second, None).await,
            101,
            "{kind:?}: upgrade {i} from a second client behind the proxy was refused: the server \
             counted the proxy's address, not the client's"
        );
    }
    let metrics = server.metrics().render();
    assert!(
        metrics.contains("videoroom_rate_limited_requests_total{kind=\"upgrade\"} 1\n"),
        "{metrics}"
    );
    drop((alice, bob));
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Nginx,
    Caddy,
}

/// A proxy process and how to reach it; killed on drop (its log printed if the test failed).
struct Proxy {
    kind: Kind,
    child: Child,
    port: u16,
    /// Trusts the proxy's certificate.
    tls: Arc<rustls::ClientConfig>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- {:?} log ---\n{log}", self.kind);
        }
    }
}

/// An HTTP response read through the proxy.
struct Response {
    status: u16,
    head: String,
    body: String,
}

impl Proxy {
    async fn start(kind: Kind, upstream: SocketAddr) -> Proxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let log = dir.path().join("proxy.log");
        let d = dir.path().display();
        let (mut command, roots) = match kind {
            Kind::Nginx => {
                let (ca, leaf, key) = certificates();
                std::fs::write(dir.path().join("fullchain.pem"), leaf).expect("cert");
                std::fs::write(dir.path().join("privkey.pem"), key).expect("key");
                let server = substitute(
                    &readme_block("nginx"),
                    &[
                        (
                            "/etc/letsencrypt/live/meet.example.org/fullchain.pem",
                            format!("{d}/fullchain.pem"),
                        ),
                        (
                            "/etc/letsencrypt/live/meet.example.org/privkey.pem",
                            format!("{d}/privkey.pem"),
                        ),
                        ("listen 443 ssl;", format!("listen 127.0.0.1:{port} ssl;")),
                        (DOMAIN, "localhost".to_owned()),
                        (UPSTREAM, upstream.to_string()),
                    ],
                );
                // Every address nginx listens on is the test's (not port 443 of every interface).
                for listen in server
                    .lines()
                    .filter(|l| l.trim_start().starts_with("listen "))
                {
                    assert_eq!(
                        listen.trim(),
                        format!("listen 127.0.0.1:{port} ssl;"),
                        "another `listen` in the README's nginx block: update this test"
                    );
                }
                // Debian's nginx was built with temporary paths under /var/lib/nginx and its
                // access log in /var/log/nginx: all of them here instead.
                let conf = format!(
                    "events {{}}\nhttp {{\n\
                     access_log /dev/stderr;\n\
                     client_body_temp_path {d}/client_body;\n\
                     proxy_temp_path {d}/proxy;\n\
                     fastcgi_temp_path {d}/fastcgi;\n\
                     uwsgi_temp_path {d}/uwsgi;\n\
                     scgi_temp_path {d}/scgi;\n\
                     {server}}}\n"
                );
                let conf_path = dir.path().join("nginx.conf");
                std::fs::write(&conf_path, conf).expect("nginx.conf");
                let mut command = Command::new(binary("nginx"));
                // `-e stderr`: the log before the configuration is read (nginx ≥ 1.19.5).
                // No master process: one process to kill, nothing switching users.
                command
                    .arg("-e")
                    .arg("stderr")
                    .arg("-p")
                    .arg(format!("{d}/"))
                    .arg("-c")
                    .arg(&conf_path)
                    .arg("-g")
                    .arg(format!(
                        "daemon off; master_process off; pid {d}/nginx.pid; error_log stderr;"
                    ));
                (command, Roots::Given(ca))
            }
            Kind::Caddy => {
                let site = substitute(
                    &readme_block("caddy"),
                    &[
                        (DOMAIN, format!("localhost:{port}")),
                        (UPSTREAM, upstream.to_string()),
                    ],
                );
                let storage = dir.path().join("storage");
                let caddyfile = format!(
                    "{{\n\tadmin off\n\tlocal_certs\n\tskip_install_trust\n\
                     \tdefault_bind 127.0.0.1\n\tauto_https disable_redirects\n\
                     \thttp_port {}\n\thttps_port {port}\n\
                     \tstorage file_system {{\n\t\troot {}\n\t}}\n}}\n{site}",
                    free_port(),
                    storage.display()
                );
                let path = dir.path().join("Caddyfile");
                std::fs::write(&path, caddyfile).expect("Caddyfile");
                let mut command = Command::new(binary("caddy"));
                command
                    .arg("run")
                    .arg("--config")
                    .arg(&path)
                    .arg("--adapter")
                    .arg("caddyfile")
                    .env("HOME", dir.path())
                    .env("XDG_CONFIG_HOME", dir.path().join("config"))
                    .env("XDG_DATA_HOME", dir.path().join("data"));
                (
                    command,
                    Roots::CaddyAuthority(storage.join("pki/authorities/local/root.crt")),
                )
            }
        };
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("{kind:?} does not start: {e}"));
        let mut proxy = Proxy {
            kind,
            child,
            port,
            // Replaced below once the authority is known.
            tls: client_config(None),
            log,
            _dir: dir,
        };
        // Up when an HTTPS request through it is answered with the expected certificate.
        let deadline = tokio::time::Instant::now() + START;
        loop {
            if let Some(status) = proxy.child.try_wait().expect("proxy status") {
                panic!("{kind:?} exited with {status}");
            }
            if let Some(root) = roots.read() {
                proxy.tls = client_config(Some(root));
                if proxy.request(LOOPBACK, "/healthz", None).await.is_ok() {
                    return proxy;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{kind:?} did not answer over HTTPS on port {port} within {START:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET path` from the address `from`.
    async fn get(&self, from: IpAddr, path: &str) -> Response {
        self.request(from, path, None)
            .await
            .unwrap_or_else(|e| panic!("{:?}: GET {path}: {e}", self.kind))
    }

    /// A WebSocket upgrade of `/ws` from `from`, optionally claiming an `X-Forwarded-For`
    /// address of its own; the response's status.
    async fn upgrade(&self, from: IpAddr, claimed: Option<&str>) -> u16 {
        let headers = format!(
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{}",
            claimed
                .map(|ip| format!("X-Forwarded-For: {ip}\r\n"))
                .unwrap_or_default()
        );
        self.request(from, "/ws", Some(&headers))
            .await
            .unwrap_or_else(|e| panic!("{:?}: upgrade: {e}", self.kind))
            .status
    }

    /// One HTTP/1.1 request over TLS from a socket bound to `from`. Without `upgrade_headers`
    /// it asks for `Connection: close` and reads the whole answer; with them, only the head.
    async fn request(
        &self,
        from: IpAddr,
        path: &str,
        upgrade_headers: Option<&str>,
    ) -> std::io::Result<Response> {
        let exchange = async {
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(from, 0))?;
            let tcp = socket.connect((LOOPBACK, self.port).into()).await?;
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
            let mut tls = TlsConnector::from(Arc::clone(&self.tls))
                .connect(name, tcp)
                .await?;
            let extra = upgrade_headers.unwrap_or("Connection: close\r\n");
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: localhost:{}\r\n{extra}\r\n",
                self.port
            );
            tls.write_all(request.as_bytes()).await?;
            let mut bytes = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                let n = match tls.read(&mut buf).await {
                    Ok(n) => n,
                    // A peer closing without close_notify after a complete answer.
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
                    Err(e) => return Err(e),
                };
                if n == 0 {
                    break;
                }
                bytes.extend_from_slice(&buf[..n]);
                if upgrade_headers.is_some() && find(&bytes, b"\r\n\r\n").is_some() {
                    break;
                }
            }
            parse_response(&bytes)
        };
        tokio::time::timeout(WAIT, exchange)
            .await
            .unwrap_or_else(|_| panic!("{:?}: no answer to {path} within {WAIT:?}", self.kind))
    }
}

/// Where the client's trust anchor comes from.
enum Roots {
    /// The test's own authority (nginx).
    Given(rustls::pki_types::CertificateDer<'static>),
    /// Caddy's local authority, which it creates at start.
    CaddyAuthority(PathBuf),
}

impl Roots {
    fn read(&self) -> Option<rustls::pki_types::CertificateDer<'static>> {
        use rustls::pki_types::pem::PemObject;
        match self {
            Roots::Given(der) => Some(der.clone()),
            Roots::CaddyAuthority(path) => {
                rustls::pki_types::CertificateDer::from_pem_file(path).ok()
            }
        }
    }
}

fn client_config(
    root: Option<rustls::pki_types::CertificateDer<'static>>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(root) = root {
        roots.add(root).expect("trust anchor");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A test authority and, like certbot's files, a certificate for `localhost` it signed (PEM)
/// with its key (PEM).
fn certificates() -> (rustls::pki_types::CertificateDer<'static>, String, String) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "reverse_proxy test authority");
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().expect("key"))
        .expect("CA");
    let key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("certificate");
    (ca.der().clone(), leaf.pem(), key.serialize_pem())
}

/// The one fenced block of language `lang` in the README's reverse-proxy section.
fn readme_block(lang: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let start = readme
        .find(&format!("\n{SECTION}\n"))
        .unwrap_or_else(|| panic!("README.md has no `{SECTION}` section"));
    let mut blocks: Vec<(String, String)> = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in readme[start..].lines().skip(2) {
        if let Some((_, text)) = open.as_mut() {
            if line.starts_with("```") {
                blocks.extend(open.take());
            } else {
                text.push_str(line);
                text.push('\n');
            }
        } else if let Some(info) = line.strip_prefix("```") {
            open = Some((info.trim().to_owned(), String::new()));
        } else if line.starts_with('#') {
            break; // the next section
        }
    }
    let mut found: Vec<String> = blocks
        .into_iter()
        .filter(|(info, _)| info == lang)
        .map(|(_, text)| text)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "README.md's `{SECTION}` needs exactly one ```{lang} block"
    );
    found.remove(0)
}

/// `block` with each `(from, to)` replaced; each `from` must occur (else the README changed
/// under this test, which then says what to update).
fn substitute(block: &str, replacements: &[(&str, String)]) -> String {
    let mut out = block.to_owned();
    for (from, to) in replacements {
        assert!(
            out.contains(from),
            "the README block no longer contains `{from}` (update server/tests/reverse_proxy.rs):\n{out}"
        );
        out = out.replace(from, to);
    }
    assert!(!out.contains(DOMAIN), "`{DOMAIN}` left in:\n{out}");
    out
}

/// The proxy binary, also from /usr/sbin (nginx's place, not on every user's PATH).
fn binary(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: this test runs the real {name} with the README's \
                 configuration (Debian package `{name}`; scripts/test.sh installs it)"
            )
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind((LOOPBACK, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Status line, head and body (chunked or not) of an HTTP/1.1 response.
fn parse_response(bytes: &[u8]) -> std::io::Result<Response> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let end = find(bytes, b"\r\n\r\n").ok_or_else(|| invalid("no complete response head"))?;
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("no status"))?;
    let mut body = &bytes[end + 4..];
    let mut decoded = Vec::new();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        loop {
            let line_end = find(body, b"\r\n").ok_or_else(|| invalid("chunk size"))?;
            let size = std::str::from_utf8(&body[..line_end])
                .ok()
                .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
                .ok_or_else(|| invalid("chunk size"))?;
            if size == 0 {
                break;
            }
            let chunk = body
                .get(line_end + 2..line_end + 2 + size)
                .ok_or_else(|| invalid("short chunk"))?;
            decoded.extend_from_slice(chunk);
            body = body.get(line_end + 4 + size..).unwrap_or_default();
        }
    } else {
        decoded.extend_from_slice(body);
    }
    Ok(Response {
        status,
        head,
        body: String::from_utf8_lossy(&decoded).into_owned(),
    })
}
