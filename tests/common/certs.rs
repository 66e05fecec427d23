//! Certificates made at test time with rcgen: a certificate authority that issues
//! server and client certificates, and [`Pki`], a directory of PEM files for the
//! exporter's own TLS endpoint.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// A certificate authority made for one test.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    /// Its self-signed certificate.
    pub pem: String,
}

impl Authority {
    pub fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("key");
        let pem = params.self_signed(&key).expect("self-signed CA").pem();
        Authority {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// Its certificate, for a client's trust store.
    pub fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.pem.as_bytes()).expect("CA PEM")
    }

    /// A leaf certificate and its key (PEM): for a server with `names` (DNS names or
    /// IP addresses) as subjectAltName, or for a client.
    pub fn issue(&self, common_name: &str, names: &[&str], server: bool) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("names");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }

    /// A client certificate issued to `name`, as the test's TLS client presents it.
    pub fn client(&self, name: &str) -> ClientIdentity {
        let (cert, key) = self.issue(name, &[], false);
        ClientIdentity::parse(&format!("{cert}{key}"))
    }
}

/// A client certificate and its key, for the test's TLS client.
pub struct ClientIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key_pem: String,
}

impl ClientIdentity {
    /// From certificate and key PEM in one string.
    pub fn parse(pem: &str) -> ClientIdentity {
        ClientIdentity {
            chain: CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap(),
            key_pem: pem.to_string(),
        }
    }
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, as PEM
/// files in a directory of their own (where the web config file is written too, so
/// that relative paths are exercised): `ca.crt`, `server.crt`, `server.key`,
/// `other.key` (a key that belongs to no certificate here) and `client-ca.pem`.
pub struct Pki {
    dir: tempfile::TempDir,
    pub ca: Authority,
}

impl Pki {
    pub fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
            ca: Authority::new("cinder_exporter test CA"),
        };
        pki.write("ca.crt", &pki.ca.pem);
        let (cert, key) = pki
            .ca
            .issue("cinder_exporter", &["localhost", "127.0.0.1"], true);
        pki.write("server.crt", &cert);
        pki.write("server.key", &key);
        pki.write("other.key", &KeyPair::generate().unwrap().serialize_pem());
        let (cert, key) = pki.ca.issue("prometheus", &[], false);
        pki.write("client-ca.pem", &format!("{cert}{key}"));
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to the file `name` in the directory; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A client certificate signed by the test CA.
    pub fn client(&self) -> ClientIdentity {
        ClientIdentity::parse(&std::fs::read_to_string(self.path("client-ca.pem")).unwrap())
    }

    /// A client certificate signed by a CA the exporter does not trust.
    pub fn rogue_client(&self) -> ClientIdentity {
        Authority::new("rogue CA").client("prometheus")
    }

    /// Writes the web config into the directory and returns its path.
    pub fn web_config(&self, yaml: &str) -> PathBuf {
        self.write("web.yml", yaml)
    }
}
