//! The node's TLS server configuration: the certificate and key read from PEM files and read again
//! when the files change ([`ReloadingCertificate`]), so a renewed certificate is served without a
//! restart. The handshakes themselves run in `http_server`, bounded by [`HANDSHAKE_TIMEOUT`].

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How long a client has to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often, at most, the certificate files are looked at for a change.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsFilesError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// A file holds no usable PEM item of the kind wanted.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        what: String,
    },
}

/// A certificate chain and its key from two PEM files, read again when either file changes (a
/// failed reload keeps serving the last good pair, and says why in the log).
#[derive(Debug)]
pub struct ReloadingCertificate {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    modified: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn pem_error(path: &Path, what: impl std::fmt::Display) -> TlsFilesError {
    TlsFilesError::Pem {
        path: path.display().to_string(),
        what: what.to_string(),
    }
}

/// Reads a certificate chain and its private key from PEM files.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsFilesError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsFilesError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let chain = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(cert, e))?;
    if chain.is_empty() {
        return Err(pem_error(cert, "no CERTIFICATE in it"));
    }
    let private = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| pem_error(key, e))?;
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&private).map_err(|e| pem_error(key, e))?;
    Ok(CertifiedKey::new(chain, signing))
}

impl ReloadingCertificate {
    /// Reads `cert` and `key` now; refuses to start on files that do not load.
    pub fn open(cert: &Path, key: &Path) -> Result<ReloadingCertificate, TlsFilesError> {
        let loaded = Loaded {
            key: Arc::new(load_certified_key(cert, key)?),
            modified: (modified(cert), modified(key)),
            checked: Instant::now(),
        };
        Ok(ReloadingCertificate {
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            current: Mutex::new(loaded),
        })
    }

    /// The pair to serve: the one loaded, or a newer one when the files changed since.
    fn current(&self) -> Arc<CertifiedKey> {
        let mut loaded = self
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if loaded.checked.elapsed() >= RELOAD_CHECK {
            loaded.checked = Instant::now();
            let now = (modified(&self.cert_path), modified(&self.key_path));
            if now != loaded.modified {
                match load_certified_key(&self.cert_path, &self.key_path) {
                    Ok(key) => {
                        tracing::info!(cert = %self.cert_path.display(), "serving a renewed TLS certificate");
                        loaded.key = Arc::new(key);
                        loaded.modified = now;
                    }
                    // Half-written files (a renewal in progress) are read again at the next check.
                    Err(error) => tracing::warn!(%error, "reloading the TLS certificate"),
                }
            }
        }
        loaded.key.clone()
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// A server TLS configuration (HTTP/1.1) serving `certificate`.
pub fn server_config(
    certificate: Arc<dyn ResolvesServerCert>,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
