//! TLS for the HTTP endpoint: a rustls server configuration (ring provider, the one
//! mysql_async already links) built from the PEM files and client-certificate policy
//! that `--web.config.file` names, in exporter-toolkit's terms.
//!
//! The configuration is built when the web config is read (at start and on reload); a
//! problem is reported with the web config key it comes from, so the caller can point
//! at the right line. The certificate itself follows its files ([`CertificateFiles`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};

use super::certificate::CertificateFiles;

/// A client must finish the TLS handshake within this time, or a client that opens a
/// connection and stalls mid-handshake would hold a connection slot indefinitely.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The TLS versions rustls speaks; exporter-toolkit's `TLS10` and `TLS11` are not among
/// them and are refused when the web config is parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    fn protocol(self) -> &'static rustls::SupportedProtocolVersion {
        match self {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::Tls12 => "TLS12",
            TlsVersion::Tls13 => "TLS13",
        })
    }
}

/// exporter-toolkit's `client_auth_type` values, named as Go's `crypto/tls` names them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    NoClientCert,
    /// A certificate is asked for but neither required nor verified.
    RequestClientCert,
    /// A certificate is required but not verified against a CA.
    RequireAnyClientCert,
    /// A certificate is optional; one that is sent must verify against `client_ca_file`.
    VerifyClientCertIfGiven,
    /// A certificate is required and must verify against `client_ca_file`.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    /// The names `client_auth_type` takes.
    pub const NAMES: [&'static str; 5] = [
        "NoClientCert",
        "RequestClientCert",
        "RequireAnyClientCert",
        "VerifyClientCertIfGiven",
        "RequireAndVerifyClientCert",
    ];

    /// The policy named `name`, spelled exactly as in [`Self::NAMES`].
    pub fn from_name(name: &str) -> Option<ClientAuth> {
        Some(match name {
            "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            "RequireAnyClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            _ => return None,
        })
    }

    /// Whether this policy checks certificates against `client_ca_file`.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The validated TLS settings, file paths already resolved against the web config's
/// directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_auth: ClientAuth,
    /// Required exactly when `client_auth` verifies certificates.
    pub client_ca_file: Option<PathBuf>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
}

/// What went wrong building the TLS configuration, and under which web config key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    /// The `tls_server_config` key whose value is at fault.
    pub key: &'static str,
    pub message: String,
}

/// Reads the certificate chain, key and client CAs and builds the server configuration.
/// The server speaks HTTP/1.1 only, and says so in ALPN.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certificate = CertificateFiles::load(
        &settings.cert_file,
        &settings.key_file,
        Arc::clone(&provider),
    )?;
    let verifier = client_verifier(settings, &provider)?;
    let versions: Vec<_> = [TlsVersion::Tls12, TlsVersion::Tls13]
        .into_iter()
        .filter(|v| (settings.min_version..=settings.max_version).contains(v))
        .map(TlsVersion::protocol)
        .collect();
    let mut config = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError {
            key: "min_version",
            message: format!("unusable TLS versions: {e}"),
        })?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(certificate));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn client_verifier(
    settings: &TlsSettings,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let algorithms = provider.signature_verification_algorithms;
    match settings.client_auth {
        ClientAuth::NoClientCert => Ok(WebPkiClientVerifier::no_client_auth()),
        ClientAuth::RequestClientCert => Ok(Arc::new(AnyClientCert {
            mandatory: false,
            algorithms,
        })),
        ClientAuth::RequireAnyClientCert => Ok(Arc::new(AnyClientCert {
            mandatory: true,
            algorithms,
        })),
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let Some(ca_file) = &settings.client_ca_file else {
                return Err(TlsError {
                    key: "client_ca_file",
                    message: format!(
                        "client_auth_type {} needs client_ca_file",
                        settings.client_auth
                    ),
                });
            };
            let mut roots = RootCertStore::empty();
            for certificate in read_certificates(ca_file, "client_ca_file")? {
                roots.add(certificate).map_err(|e| TlsError {
                    key: "client_ca_file",
                    message: format!("{}: unusable CA certificate: {e}", ca_file.display()),
                })?;
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
            let builder = if settings.client_auth == ClientAuth::VerifyClientCertIfGiven {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder.build().map_err(|e| TlsError {
                key: "client_ca_file",
                message: format!("{}: {e}", ca_file.display()),
            })
        }
    }
}

/// Go's `RequestClientCert` and `RequireAnyClientCert`: the client proves it holds the
/// key of the certificate it sends (the handshake signature is checked), but the
/// certificate itself is not checked against any CA.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn read_pem(path: &Path, key: &'static str) -> Result<Vec<u8>, TlsError> {
    let failed = |message: String| TlsError {
        key,
        message: format!("cannot read {}: {message}", path.display()),
    };
    // Only regular files, at most 1 MiB: certificates and keys are a few KiB, and a
    // path mistyped as `/dev/zero`, or a FIFO, must not make a handshake or a reload
    // read forever.
    crate::config::read_file(path).map_err(failed)
}

pub(super) fn read_certificates(
    path: &Path,
    key: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_pem(path, key)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError {
            key,
            message: format!("{}: bad PEM: {e}", path.display()),
        })?;
    if certificates.is_empty() {
        return Err(TlsError {
            key,
            message: format!(
                "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) found",
                path.display()
            ),
        });
    }
    Ok(certificates)
}

pub(super) fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_pem(path, "key_file")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError {
        key: "key_file",
        message: format!("{}: no usable PEM private key: {e}", path.display()),
    })
}
