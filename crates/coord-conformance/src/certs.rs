//! TLS files made at test time: a CA, and a certificate it signed for
//! `127.0.0.1` and `localhost` (servers and clients of the TLS tests use the
//! same one).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// Where the PEM files were written.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The CA's certificate.
    pub ca: PathBuf,
    /// The certificate for `127.0.0.1` and `localhost`.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// Writes `ca.pem`, `cert.pem` and `key.pem` into `dir` (created if missing).
///
/// # Panics
/// When a certificate cannot be made or written: a test without its files is broken.
pub fn write(dir: &Path) -> TlsFiles {
    std::fs::create_dir_all(dir).expect("a directory for the TLS files");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "coord test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key")).expect("CA certificate");
    let key = KeyPair::generate().expect("key");
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("certificate parameters");
    params.distinguished_name.push(DnType::CommonName, "coord test");
    let cert = params.signed_by(&key, &ca).expect("certificate");
    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.ca, ca.pem()).expect("write the CA");
    std::fs::write(&files.cert, cert.pem()).expect("write the certificate");
    std::fs::write(&files.key, key.serialize_pem()).expect("write the key");
    files
}
