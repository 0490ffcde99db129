//! HTTPS: a self-signed certificate with its fingerprint, certificate files reloaded when they
//! change (and kept when the new ones are broken), `wss://` joins, plain HTTP refused.

use futures::{SinkExt, StreamExt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use videoroom_protocol::{ClientMessage, PROTOCOL_VERSION, RoomName, ServerMessage};
use videoroom_server::config::TlsSetting;
use videoroom_server::{Config, RunningServer};
use videoroom_testkit::*;

/// Accepts any certificate and remembers the one presented (the test checks its fingerprint).
#[derive(Debug, Default)]
struct Remember(Mutex<Option<CertificateDer<'static>>>);

impl ServerCertVerifier for Remember {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.0.lock().expect("test setup") = Some(end_entity.clone().into_owned());
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Connects over TLS; returns the stream and the fingerprint of the certificate presented.
async fn connect(
    server: &RunningServer,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    String,
) {
    let remember = Arc::new(Remember::default());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("test setup")
    .dangerous()
    .with_custom_certificate_verifier(Arc::clone(&remember) as _)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("test setup");
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("test setup"), tcp)
        .await
        .expect("TLS handshake");
    let cert = remember
        .0
        .lock()
        .expect("test setup")
        .clone()
        .expect("a certificate");
    (stream, videoroom_server::tls::fingerprint(&cert))
}

async fn https_get(server: &RunningServer, path: &str) -> (String, String) {
    let (mut stream, fingerprint) = connect(server).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("test setup");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    (String::from_utf8_lossy(&response).into_owned(), fingerprint)
}

fn with_tls(tls: TlsSetting) -> Config {
    Config {
        tls,
        ..test_config()
    }
}

#[tokio::test]
async fn a_self_signed_certificate_serves_https_and_wss_joins() {
    let server = start_server(with_tls(TlsSetting::SelfSigned)).await;
    assert_eq!(server.scheme(), "https");
    let expected = server.tls_fingerprint().expect("a fingerprint");
    assert_eq!(expected.len(), 32 * 3 - 1, "AA:BB:… form: {expected}");

    let (response, fingerprint) = https_get(&server, "/healthz").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok\n"), "{response}");
    assert_eq!(fingerprint, expected);

    // A WebSocket join over the same TLS connection kind.
    let (stream, _) = connect(&server).await;
    let url = format!("wss://localhost:{}/ws", server.local_addr().port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("WebSocket upgrade over TLS");
    let join = ClientMessage::Join {
        protocol_version: PROTOCOL_VERSION,
        room: RoomName::new("tls"),
        display_name: "Ada".into(),
        metadata: None,
        resume_token: None,
        token: None,
    };
    ws.send(Message::text(
        serde_json::to_string(&join).expect("test setup"),
    ))
    .await
    .expect("test setup");
    let reply = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => break Ok(text),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => break Err(format!("{other:?}")),
            }
        }
    })
    .await
    .expect("a reply in time")
    .expect("a text message");
    let reply: ServerMessage = serde_json::from_str(&reply).expect("a server message");
    assert!(
        matches!(reply, ServerMessage::Joined { .. }),
        "not joined: {reply:?}"
    );
}

#[tokio::test]
async fn a_kept_self_signed_certificate_survives_a_restart() {
    let state = tempfile::tempdir().expect("test setup");
    let config = Config {
        state_dir: Some(state.path().to_path_buf()),
        ..with_tls(TlsSetting::SelfSigned)
    };
    let first = start_server(config.clone()).await;
    let fingerprint = first.tls_fingerprint().expect("test setup");
    assert!(first.shutdown(WAIT).await);
    use std::os::unix::fs::PermissionsExt;
    let key_mode = std::fs::metadata(state.path().join("self-signed.key"))
        .expect("test setup")
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600, "the key is readable by others");
    let second = start_server(config).await;
    assert_eq!(second.tls_fingerprint().expect("test setup"), fingerprint);
    assert_eq!(https_get(&second, "/healthz").await.1, fingerprint);
    // Without a state directory every start makes a new one.
    let fresh = start_server(with_tls(TlsSetting::SelfSigned)).await;
    assert_ne!(fresh.tls_fingerprint().expect("test setup"), fingerprint);
}

#[tokio::test]
async fn plain_http_on_the_https_port_gets_nothing_and_is_counted() {
    let server = start_server(with_tls(TlsSetting::SelfSigned)).await;
    let mut tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("test setup");
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("test setup");
    let mut response = Vec::new();
    let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut response)).await;
    assert!(
        !String::from_utf8_lossy(&response).contains("ok"),
        "plain HTTP was served"
    );
    let metrics = server.metrics();
    wait_until(WAIT, "the failed handshake is counted", || {
        metrics.tls_handshakes_failed.get() == 1
    })
    .await;
}

fn write_pair(dir: &Path, name: &str) -> String {
    let generated = rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("test setup");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    // Key first, certificate second, each replaced whole: what renewal tools do.
    std::fs::write(dir.join("key.tmp"), generated.signing_key.serialize_pem()).expect("test setup");
    std::fs::rename(dir.join("key.tmp"), &key).expect("test setup");
    std::fs::write(dir.join("cert.tmp"), generated.cert.pem()).expect("test setup");
    std::fs::rename(dir.join("cert.tmp"), &cert).expect("test setup");
    videoroom_server::tls::fingerprint(generated.cert.der())
}

#[tokio::test]
async fn certificate_files_are_served_and_reloaded_when_renewed() {
    let dir = tempfile::tempdir().expect("test setup");
    let first = write_pair(dir.path(), "first.example");
    let server = start_server(with_tls(TlsSetting::Files {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    }))
    .await;
    assert_eq!(https_get(&server, "/healthz").await.1, first);

    // A broken renewal (garbage in the certificate file) keeps the old certificate.
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").expect("test setup");
    let metrics = server.metrics();
    wait_until(WAIT, "the broken renewal is tried", || {
        metrics.tls_reloads_failed.get() >= 1
    })
    .await;
    let (response, fingerprint) = https_get(&server, "/healthz").await;
    assert_eq!(fingerprint, first, "a broken file replaced the certificate");
    assert!(response.starts_with("HTTP/1.1 200"));

    // A real renewal is picked up without a restart.
    let second = write_pair(dir.path(), "second.example");
    assert_ne!(first, second);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, fingerprint) = https_get(&server, "/healthz").await;
        if fingerprint == second {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renewed certificate was not served within {WAIT:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(server.tls_fingerprint().as_deref(), Some(second.as_str()));
    assert!(metrics.tls_reloads.get() >= 1);
}

#[tokio::test]
async fn unusable_certificate_files_stop_the_start_with_the_file_named() {
    let dir = tempfile::tempdir().expect("test setup");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, "-----BEGIN NOTHING-----\n").expect("test setup");
    std::fs::write(&key, "").expect("test setup");
    let files = TlsSetting::Files {
        cert: cert.clone(),
        key,
    };
    let Err(error) = videoroom_server::start(with_tls(files)).await else {
        panic!("started with unusable certificate files");
    };
    assert!(
        error.to_string().contains(&cert.display().to_string()),
        "{error}"
    );
}
