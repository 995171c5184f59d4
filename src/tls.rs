//! TLS termination with rustls: certificate and key from PEM files, ALPN
//! `h2` and `http/1.1`, and reloads that swap the certificate for new
//! handshakes while established connections carry on untouched.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not the PEM expected.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the pair (key not matching the certificate, ...).
    #[error("certificate and key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The current TLS settings of a listener, swappable at run time.
#[derive(Clone)]
pub struct TlsTerminator {
    cert: PathBuf,
    key: PathBuf,
    current: Arc<ArcSwap<Loaded>>,
}

struct Loaded {
    config: Arc<ServerConfig>,
    digest: [u8; 32],
}

impl std::fmt::Debug for TlsTerminator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTerminator")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl TlsTerminator {
    /// Loads the certificate chain and key at `cert` and `key`.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let loaded = load(cert, key)?;
        Ok(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: Arc::new(ArcSwap::from_pointee(loaded)),
        })
    }

    /// An acceptor for the next handshake, with the current certificate.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load().config.clone())
    }

    /// Re-reads the files; swaps in the new certificate if they changed.
    /// On error the current certificate stays in use. Returns whether a new
    /// certificate was installed.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let digest = digest_files(&self.cert, &self.key)?;
        if digest == self.current.load().digest {
            return Ok(false);
        }
        self.current.store(Arc::new(load(&self.cert, &self.key)?));
        Ok(true)
    }

    /// Reloads now, logging the outcome.
    pub fn reload_and_log(&self) {
        match self.reload() {
            Ok(true) => tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded"),
            Ok(false) => {}
            Err(error) => {
                tracing::error!(%error, "TLS certificate reload failed; keeping the current one")
            }
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn digest_files(cert: &Path, key: &Path) -> Result<[u8; 32], TlsError> {
    let mut hasher = Sha256::new();
    hasher.update(read(cert)?);
    hasher.update(read(key)?);
    Ok(hasher.finalize().into())
}

fn load(cert_path: &Path, key_path: &Path) -> Result<Loaded, TlsError> {
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    let pem_error = |path: &Path, message: String| TlsError::Pem {
        path: path.to_owned(),
        message,
    };
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| pem_error(cert_path, error.to_string()))?;
    if chain.is_empty() {
        return Err(pem_error(cert_path, "no certificate found".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|error| pem_error(key_path, error.to_string()))?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut hasher = Sha256::new();
    hasher.update(&cert_pem);
    hasher.update(&key_pem);
    Ok(Loaded {
        config: Arc::new(config),
        digest: hasher.finalize().into(),
    })
}
