//! HTTPS for the web app and `wss://` signaling (rustls, ring).
//!
//! - `--tls-cert`/`--tls-key`: PEM files. They are checked every [`RELOAD_EVERY`]: when either
//!   changes (a renewal), the new pair is loaded and served to new connections; a pair that does
//!   not load (half-written, mismatched) is logged and the old one kept.
//! - A non-loopback address without files (and without `--no-tls`): a certificate generated at
//!   start-up for `localhost`, the listen address, `--public-ip` and `--public-url`'s host, and
//!   kept in `--state-dir` (if given) so that a restart does not make everyone trust anew. Its
//!   SHA-256 fingerprint is logged so people can check what their browser or the desktop app
//!   shows them.

use crate::Metrics;
use crate::config::{Config, TlsSetting};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How often the certificate files are looked at.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM.
    #[error("{}: {reason}", path.display())]
    File {
        /// The certificate or key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key does not suit rustls (unsupported algorithm) or does not match the certificate.
    #[error("TLS key {}: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What rustls said.
        reason: String,
    },
    /// Generating the self-signed certificate failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
}

/// What the listener serves with.
pub struct Tls {
    /// Accepts TLS connections.
    pub acceptor: TlsAcceptor,
    /// SHA-256 of the certificate served now (`AA:BB:…`).
    pub fingerprint: Arc<RwLock<String>>,
}

/// Sets up TLS as `config` says (`None`: plain HTTP). With certificate files, a task reloads
/// them when they change until `shutdown`.
pub fn setup(
    config: &Config,
    metrics: &Arc<Metrics>,
    shutdown: &CancellationToken,
) -> Result<Option<Tls>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (key, files) = match &config.tls {
        TlsSetting::Off => return Ok(None),
        TlsSetting::SelfSigned => (kept_self_signed(config, &provider)?, None),
        TlsSetting::Files { cert, key } => (
            load_pair(cert, key, &provider)?,
            Some((cert.clone(), key.clone())),
        ),
    };
    let fingerprint = Arc::new(RwLock::new(fingerprint(&key.cert[0])));
    let current = Arc::new(Current(RwLock::new(Arc::new(key))));
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Generate(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::clone(&current) as Arc<dyn ResolvesServerCert>);
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    let shown = fingerprint.read().map(|f| f.clone()).unwrap_or_default();
    match files {
        None => warn!(
            fingerprint = %shown,
            "serving HTTPS with a self-signed certificate (no --tls-cert/--tls-key): browsers will \
             warn, and people should check this SHA-256 fingerprint before trusting it"
        ),
        Some((cert, key)) => {
            info!(fingerprint = %shown, cert = %cert.display(), "serving HTTPS");
            tokio::spawn(reload_when_changed(
                cert,
                key,
                provider,
                current,
                Arc::clone(&fingerprint),
                Arc::clone(metrics),
                shutdown.clone(),
            ));
        }
    }
    Ok(Some(Tls {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        fingerprint,
    }))
}

/// The certificate served to new connections.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok().map(|key| Arc::clone(&key))
    }
}

/// `AA:BB:…`: the SHA-256 of a certificate's DER ([`crate::media::sha256_fingerprint`]).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    crate::media::sha256_fingerprint(cert.as_ref())
}

fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let file_error = |path: &Path, reason: String| TlsError::File {
        path: path.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| file_error(cert_path, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(cert_path, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(
            cert_path,
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| file_error(key_path, format!("no usable PEM private key: {e}")))?;
    let key_error = |e: rustls::Error| TlsError::Key {
        path: key_path.to_path_buf(),
        reason: e.to_string(),
    };
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(key_error)?;
    Ok(certified)
}

/// The self-signed certificate kept in `--state-dir` from an earlier run, or a new one (kept
/// there for the next run, the key readable by the server's user only).
fn kept_self_signed(config: &Config, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let Some(dir) = &config.state_dir else {
        return self_signed(config, provider).map(|(key, _, _)| key);
    };
    let (cert_path, key_path) = (dir.join("self-signed.crt"), dir.join("self-signed.key"));
    if cert_path.is_file() && key_path.is_file() {
        match load_pair(&cert_path, &key_path, provider) {
            Ok(key) => return Ok(key),
            Err(e) => warn!("{e}; generating a new self-signed certificate"),
        }
    }
    let (key, cert_pem, key_pem) = self_signed(config, provider)?;
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| write_private(&key_path, key_pem.as_bytes()))
        .and_then(|()| std::fs::write(&cert_path, cert_pem));
    if let Err(e) = written {
        warn!(
            "cannot keep the self-signed certificate in {}: {e}; the next start makes a new one",
            dir.display()
        );
    }
    Ok(key)
}

/// Writes `bytes` to `path`, readable by this user only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// A new certificate for the server's names, with its PEM certificate and key.
fn self_signed(
    config: &Config,
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, String, String), TlsError> {
    let mut names = vec!["localhost".to_owned()];
    if !config.listen.ip().is_unspecified() {
        names.push(config.listen.ip().to_string());
    }
    if let Some(ip) = config.public_ip {
        names.push(ip.to_string());
    }
    if let Some(host) = config
        .public_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()))
    {
        names.push(host);
    }
    names.dedup();
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let certified = CertifiedKey::from_der(vec![generated.cert.der().clone()], key, provider)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok((
        certified,
        generated.cert.pem(),
        generated.signing_key.serialize_pem(),
    ))
}

/// A file's identity for change detection: modification time and length.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

async fn reload_when_changed(
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Arc<Current>,
    fingerprint: Arc<RwLock<String>>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut seen = (stamp(&cert), stamp(&key));
    let mut ticks = tokio::time::interval(RELOAD_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let now = (stamp(&cert), stamp(&key));
        if now == seen {
            continue;
        }
        seen = now;
        match load_pair(&cert, &key, &provider) {
            Ok(pair) => {
                let shown = self::fingerprint(&pair.cert[0]);
                info!(fingerprint = %shown, "TLS certificate reloaded");
                metrics.tls_reloads.inc();
                if let Ok(mut slot) = current.0.write() {
                    *slot = Arc::new(pair);
                }
                if let Ok(mut f) = fingerprint.write() {
                    *f = shown;
                }
            }
            // Renewal tools write the two files one after the other: the next change retries.
            Err(e) => {
                metrics.tls_reloads_failed.inc();
                warn!("TLS certificate not reloaded, still serving the previous one: {e}");
            }
        }
    }
}
