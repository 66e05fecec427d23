//! The test's TLS client for the exporter's HTTPS endpoint: rustls, trusting only the
//! test CA, with a chosen client certificate and TLS version.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, ServerName};

use super::certs::{ClientIdentity, Pki};
use super::http::{parse_response, request, Response};

/// How the test's TLS client connects.
#[derive(Clone, Copy, Default)]
pub struct TlsClient<'a> {
    pub identity: Option<&'a ClientIdentity>,
    /// Only this TLS version (both when `None`).
    pub only: Option<&'static rustls::SupportedProtocolVersion>,
}

impl TlsClient<'_> {
    /// GET `path` over HTTPS, trusting only the test CA. `Err` when the handshake or
    /// the request fails.
    pub fn get(&self, pki: &Pki, address: &str, path: &str) -> Result<Response, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca.der()).unwrap();
        let versions: Vec<_> = match self.only {
            Some(version) => vec![version],
            None => vec![&rustls::version::TLS12, &rustls::version::TLS13],
        };
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&versions)
        .unwrap()
        .with_root_certificates(roots);
        let config = match self.identity {
            Some(identity) => builder
                .with_client_auth_cert(
                    identity.chain.clone(),
                    PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        let connection = rustls::ClientConnection::new(
            Arc::new(config),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let tcp = TcpStream::connect(address).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        tcp.set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        stream
            .write_all(request(path, &[]).as_bytes())
            .map_err(|e| format!("send: {e}"))?;
        let mut bytes = Vec::new();
        let read = stream.read_to_end(&mut bytes);
        // A server may close without close_notify after a complete response.
        if let Err(e) = read {
            if bytes.is_empty() {
                return Err(format!("read: {e}"));
            }
        }
        parse_response(&bytes).ok_or_else(|| {
            format!(
                "no HTTP response in {:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            )
        })
    }
}
