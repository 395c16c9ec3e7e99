//! TLS for the RTMPS and HTTPS listeners: the certificate and key named by
//! `server.tlsCertFile` and `server.tlsKeyFile`, or else a self-signed device certificate made at
//! first start and kept in the data directory (its key readable by the daemon only). Blocking:
//! the daemon calls [`server_config`] as a job on the storage worker, before serving starts.

use crate::config::ServerSettings;
use crate::storage::fs::{Fs, write_private};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The device certificate's file in the data directory.
pub const DEVICE_CERT: &str = "device-cert.pem";
/// The device key's file in the data directory.
pub const DEVICE_KEY: &str = "device-key.pem";

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or holds nothing usable.
    #[error("{}: {reason}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The device certificate could not be made or kept.
    #[error("cannot make the device certificate: {0}")]
    Generate(String),
    /// rustls refused the certificate and key.
    #[error("certificate and key do not make a TLS server: {0}")]
    Config(String),
}

/// The TLS server configuration the settings ask for, making the device certificate through
/// `fs` if needed.
pub fn server_config(server: &ServerSettings, fs: &dyn Fs) -> Result<Arc<ServerConfig>, TlsError> {
    let (cert_path, key_path) = match (&server.tls_cert_file, &server.tls_key_file) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        _ => device_certificate(&server.data_dir, fs)?,
    };
    config_from_files(&cert_path, &key_path)
}

/// A TLS server configuration from a PEM certificate chain and its private key, which must
/// parse and belong together. What is wrong names the file, never its content.
pub fn config_from_files(cert_path: &Path, key_path: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let file_error = |path: &Path, reason: String| TlsError::File { path: path.to_path_buf(), reason };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| file_error(cert_path, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(cert_path, "no PEM certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| file_error(key_path, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// The device certificate's files, made now if they do not exist yet.
fn device_certificate(data_dir: &Path, fs: &dyn Fs) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert_path = data_dir.join(DEVICE_CERT);
    let key_path = data_dir.join(DEVICE_KEY);
    let exists = |path: &Path| fs.read(path).map(|bytes| bytes.is_some());
    let generate = |path: &Path, e: std::io::Error| TlsError::Generate(format!("{}: {e}", path.display()));
    if exists(&cert_path).map_err(|e| generate(&cert_path, e))?
        && exists(&key_path).map_err(|e| generate(&key_path, e))?
    {
        return Ok((cert_path, key_path));
    }
    let names = vec!["rampart.local".to_string(), "localhost".to_string()];
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let write = |path: &Path, pem: String| {
        write_private(fs, path, pem.as_bytes()).map_err(|e| TlsError::Generate(format!("{}: {e}", path.display())))
    };
    write(&key_path, certified.signing_key.serialize_pem())?;
    write(&cert_path, certified.cert.pem())?;
    log::info!("made a self-signed device certificate: {}", cert_path.display());
    Ok((cert_path, key_path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_device_certificate_is_made_once_and_its_key_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = crate::config::load(None).unwrap().settings.server;
        server.data_dir = dir.path().to_path_buf();
        server_config(&server, &crate::storage::fs::RealFs).unwrap();
        let first = std::fs::read(dir.path().join(DEVICE_CERT)).unwrap();
        for file in [DEVICE_KEY, DEVICE_CERT] {
            let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        server_config(&server, &crate::storage::fs::RealFs).unwrap();
        assert_eq!(std::fs::read(dir.path().join(DEVICE_CERT)).unwrap(), first, "kept across starts");
        assert!(!dir.path().join("device-key.pem.new").exists(), "no temporary file left");
    }

    #[test]
    fn a_bad_certificate_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = crate::config::load(None).unwrap().settings.server;
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        server.tls_cert_file = Some(cert.clone());
        server.tls_key_file = Some(dir.path().join("key.pem"));
        let err = server_config(&server, &crate::storage::fs::RealFs).unwrap_err().to_string();
        assert!(err.starts_with(&cert.display().to_string()), "{err}");
    }
}
