//! TLS for `wss://` servers: certificates signed by an authority the system trusts, or a
//! self-signed one the person trusted by its SHA-256 fingerprint (trust on first use: the app
//! shows the fingerprint and asks once; it never accepts an unknown certificate silently).

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::{Arc, Mutex, OnceLock};

/// `AA:BB:…`: the SHA-256 of a certificate's DER, as the server logs it.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    videoroom_webrtc::sha256_fingerprint(cert.as_ref())
}

/// Normalises a fingerprint typed or pasted by a person (`aa:bb…`, `AABB…`, spaces).
pub fn normalize_fingerprint(text: &str) -> Option<String> {
    let hex: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let upper = hex.to_ascii_uppercase();
    let pairs: Vec<&str> = (0..32).map(|i| &upper[i * 2..i * 2 + 2]).collect();
    Some(pairs.join(":"))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's trusted authorities, loaded once (`/etc/ssl/certs` on Debian).
fn system_verifier() -> Option<Arc<WebPkiServerVerifier>> {
    static VERIFIER: OnceLock<Option<Arc<WebPkiServerVerifier>>> = OnceLock::new();
    VERIFIER
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let loaded = rustls_native_certs::load_native_certs();
            for error in &loaded.errors {
                tracing::warn!("loading the system's certificate authorities: {error}");
            }
            let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
            tracing::debug!(added, "system certificate authorities loaded");
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .ok()
        })
        .clone()
}

/// Checks the server's certificate against the system's authorities, or else against the
/// fingerprints the person trusted; remembers the fingerprint of a certificate it refused.
#[derive(Debug)]
struct Verifier {
    system: Option<Arc<WebPkiServerVerifier>>,
    trusted: Vec<String>,
    refused: Arc<Mutex<Option<String>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = fingerprint(end_entity);
        if self.trusted.contains(&seen) {
            return Ok(ServerCertVerified::assertion());
        }
        let verdict = match &self.system {
            Some(system) => {
                system.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        };
        if verdict.is_err()
            && let Ok(mut refused) = self.refused.lock()
        {
            *refused = Some(seen);
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS client configuration for one connection attempt, and where the fingerprint of a
/// certificate it refused ends up.
pub(crate) struct Attempt {
    pub config: Arc<rustls::ClientConfig>,
    pub refused: Arc<Mutex<Option<String>>>,
}

/// A client configuration that trusts the system's authorities and `trusted` fingerprints.
pub(crate) fn attempt(trusted: &[String]) -> Result<Attempt, rustls::Error> {
    let provider = provider();
    let refused = Arc::new(Mutex::new(None));
    let verifier = Verifier {
        system: system_verifier(),
        trusted: trusted
            .iter()
            .filter_map(|f| normalize_fingerprint(f))
            .collect(),
        refused: Arc::clone(&refused),
        provider: Arc::clone(&provider),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Attempt {
        config: Arc::new(config),
        refused,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_normalised_whatever_their_spelling() {
        let canonical = (0..32).map(|_| "AB").collect::<Vec<_>>().join(":");
        assert_eq!(
            normalize_fingerprint(&canonical.to_lowercase()),
            Some(canonical.clone())
        );
        assert_eq!(
            normalize_fingerprint(&"ab".repeat(32)),
            Some(canonical.clone())
        );
        assert_eq!(normalize_fingerprint("AB:CD"), None);
        assert_eq!(normalize_fingerprint(&"zz".repeat(32)), None);
    }
}
