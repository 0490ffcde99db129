//! Servers whose self-signed certificate the person trusted, by SHA-256 fingerprint, kept in
//! `trusted-servers.json` beside the settings (this user only). One fingerprint per server
//! (`host:port`): trusting a new one replaces the old, and a changed certificate is refused
//! until the person looks at the new fingerprint and trusts it.

use crate::api::{ErrorKind, UiError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use videoroom_client::tls::normalize_fingerprint;

/// `host:port` of a `ws[s]://` or `http[s]://` URL (the scheme's default port if none).
pub fn server_key(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    let host = parsed.host_str()?.to_ascii_lowercase();
    let port = parsed.port_or_known_default()?;
    Some(format!("{host}:{port}"))
}

/// The trust file.
#[derive(Debug, Clone)]
pub struct TrustStore {
    path: PathBuf,
}

impl TrustStore {
    /// The store in `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    fn read(&self) -> BTreeMap<String, String> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("{}: {e}; trusting no certificate", self.path.display());
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        }
    }

    /// The fingerprints trusted for the server at `url`.
    pub fn trusted_for(&self, url: &str) -> Vec<String> {
        server_key(url)
            .and_then(|key| self.read().remove(&key))
            .into_iter()
            .collect()
    }

    /// Trusts `fingerprint` for the server at `url` from now on.
    pub fn trust(&self, url: &str, fingerprint: &str) -> Result<(), UiError> {
        let key = server_key(url).ok_or_else(|| {
            UiError::new(
                ErrorKind::Refused,
                format!("{url} is not a server address."),
                Some("Use wss://host:port/ws."),
            )
        })?;
        let fingerprint = normalize_fingerprint(fingerprint).ok_or_else(|| {
            UiError::new(
                ErrorKind::Refused,
                "That is not a SHA-256 fingerprint.",
                Some("It has 32 pairs of hex digits, like AB:CD:…"),
            )
        })?;
        let mut all = self.read();
        all.insert(key, fingerprint);
        let json = serde_json::to_vec_pretty(&all).unwrap_or_default();
        write_private(&self.path, &json).map_err(|e| {
            UiError::new(
                ErrorKind::Internal,
                format!("Cannot save {}: {e}.", self.path.display()),
                Some("Check that the directory is writable."),
            )
        })
    }
}

/// Writes `bytes` to `path` atomically (a crash leaves the old file), readable by this user
/// only: the settings may hold an invitation token, the trust file decides whom we trust.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp); // a leftover keeps its own mode
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    drop(file);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB";

    #[test]
    fn servers_are_keyed_by_host_and_port() {
        assert_eq!(
            server_key("wss://Meet.Example.org/ws").as_deref(),
            Some("meet.example.org:443")
        );
        assert_eq!(
            server_key("wss://10.0.0.2:8443/ws").as_deref(),
            Some("10.0.0.2:8443")
        );
        assert_eq!(server_key("nonsense"), None);
    }

    #[test]
    fn a_trusted_fingerprint_is_kept_per_server_and_replaced() {
        let dir = std::env::temp_dir().join(format!("videoroom-trust-{}", std::process::id()));
        let store = TrustStore::new(dir.join("trusted-servers.json"));
        assert!(store.trusted_for("wss://a:8443/ws").is_empty());
        store
            .trust("wss://a:8443/ws", &FP.to_lowercase())
            .expect("trusts");
        assert_eq!(store.trusted_for("wss://a:8443/other"), vec![FP.to_owned()]);
        assert!(store.trusted_for("wss://b:8443/ws").is_empty());
        let other = FP.replace("AB", "CD");
        store.trust("wss://a:8443/ws", &other).expect("trusts");
        assert_eq!(store.trusted_for("wss://a:8443/ws"), vec![other]);
        assert!(store.trust("wss://a:8443/ws", "AB:CD").is_err());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("trusted-servers.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(dir);
    }
}
