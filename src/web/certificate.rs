//! The endpoint's certificate and key, read again when their files change on disk, so
//! that a renewed certificate (cert-manager, certbot, an operator's `cp`) is served
//! without a restart or a reload, as exporter-toolkit does.
//!
//! The files are looked at when a client connects, at most once per
//! [`RECHECK_INTERVAL`]: two `stat` calls, no reading while nothing changed. A pair
//! that cannot be used (half-written, a key that does not match) keeps the one in
//! service and is logged once; it is tried again when the files change again.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tracing::{info, warn};

use super::tls::{read_certificates, read_private_key, TlsError};

/// How often a connecting client may make the files be looked at.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The certificate files and the pair last read from them.
pub struct CertificateFiles {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    state: Mutex<Served>,
}

/// The pair in service and what the files looked like when it was (last) decided.
struct Served {
    key: Arc<CertifiedKey>,
    seen: (FileStamp, FileStamp),
    checked: Instant,
}

/// What tells a file changed: its modification time, size and inode (a renamed-over
/// file, as `kubectl` and certbot write them, has a new inode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt as _;
        let metadata = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            inode: metadata.ino(),
        })
    }
}

impl CertificateFiles {
    /// Reads the pair; an unusable pair is an error naming the web config key.
    pub fn load(
        cert_file: &Path,
        key_file: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<CertificateFiles, TlsError> {
        let seen = stamps(cert_file, key_file);
        let key = read_pair(cert_file, key_file, &provider)?;
        Ok(CertificateFiles {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            provider,
            state: Mutex::new(Served {
                key,
                seen,
                checked: Instant::now(),
            }),
        })
    }

    /// The pair to serve now, read again first if the files changed.
    fn current(&self) -> Arc<CertifiedKey> {
        let mut served = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if served.checked.elapsed() >= RECHECK_INTERVAL {
            served.checked = Instant::now();
            let now = stamps(&self.cert_file, &self.key_file);
            if now != served.seen {
                served.seen = now;
                match read_pair(&self.cert_file, &self.key_file, &self.provider) {
                    Ok(key) => {
                        info!(cert_file = %self.cert_file.display(), "TLS certificate changed on disk; serving the new one");
                        served.key = key;
                    }
                    Err(e) => warn!(
                        "TLS certificate files changed but cannot be used ({}: {}); still serving the previous certificate",
                        e.key, e.message
                    ),
                }
            }
        }
        Arc::clone(&served.key)
    }
}

fn stamps(cert_file: &Path, key_file: &Path) -> (FileStamp, FileStamp) {
    let missing = FileStamp {
        modified: None,
        len: 0,
        inode: 0,
    };
    (
        FileStamp::of(cert_file).unwrap_or(missing),
        FileStamp::of(key_file).unwrap_or(missing),
    )
}

/// Reads a certificate chain and its key, checking that they belong together.
fn read_pair(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = read_certificates(cert_file, "cert_file")?;
    let key = read_private_key(key_file)?;
    CertifiedKey::from_der(chain, key, provider)
        .map(Arc::new)
        .map_err(|e| TlsError {
            key: "key_file",
            message: format!(
                "{} does not go with the certificate in {}: {e}",
                key_file.display(),
                cert_file.display()
            ),
        })
}

impl ResolvesServerCert for CertificateFiles {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl fmt::Debug for CertificateFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateFiles")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish()
    }
}
