//! TLS for the RTMPS and HTTPS listeners: the certificate and key named by
//! `server.tlsCertFile` and `server.tlsKeyFile` (the key in clear PEM or as a `sealed:v1:`
//! value), or else a self-signed device certificate made at first start and kept in the data
//! directory, its key sealed by the box's keyring (the certificate is public and stays in
//! clear). Blocking: the daemon calls [`server_config`] as a job on the storage worker, before
//! serving starts.
//!
//! A device key that no longer opens while the keyring has a data key (the disk was moved to
//! another TPM, the blob is corrupt) is kept aside and a new device certificate is made: the
//! old one cannot be used again on this box, and without TLS the panel could not be reached to
//! log in. A key that cannot be opened because no data key is open at all, or a sealed
//! `server.tlsKeyFile` that does not open, is refused: RTMPS and HTTPS are not served.

use crate::config::ServerSettings;
use crate::secrets::keyring::KeyringError;
use crate::secrets::{Keyring, Unopenable, envelope};
use crate::storage::fs::{Fs, write_private};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The device certificate's file in the data directory.
pub const DEVICE_CERT: &str = "device-cert.pem";
/// The device key's file in the data directory: a `sealed:v1:` value of its PEM.
pub const DEVICE_KEY: &str = "device-key.sealed";
/// The device key's file of older versions, in clear: sealed at start, then removed.
pub const CLEAR_DEVICE_KEY: &str = "device-key.pem";
/// What a TLS private key is sealed for: the device key, and a sealed `server.tlsKeyFile`.
pub const KEY_NAME: &str = "device TLS key";
/// Added to the names of a device certificate and key kept aside because the key did not open.
pub const UNOPENED: &str = ".unopened";

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
    /// A sealed key file does not open with this box's keyring.
    #[error("{}: the sealed key does not open: {reason}", .path.display())]
    Sealed {
        /// The file.
        path: PathBuf,
        /// Why it does not open.
        reason: String,
    },
    /// The device certificate could not be made or kept.
    #[error("cannot make the device certificate: {0}")]
    Generate(String),
    /// rustls refused the certificate and key.
    #[error("certificate and key do not make a TLS server: {0}")]
    Config(String),
}

/// What RTMPS and HTTPS serve with.
pub struct Tls {
    /// The server configuration; `None` when the key does not open: then RTMPS and HTTPS are
    /// not served.
    pub config: Option<Arc<ServerConfig>>,
    /// The key that did not open, for the system status.
    pub unopenable: Option<Unopenable>,
}

/// The TLS server configuration the settings ask for, making (or sealing) the device
/// certificate's key through `fs` with `keyring` if needed.
pub fn server_config(server: &ServerSettings, fs: &dyn Fs, keyring: &Keyring) -> Result<Tls, TlsError> {
    let (cert, key) = match (&server.tls_cert_file, &server.tls_key_file) {
        (Some(cert), Some(key)) => (cert, key),
        _ => return device_certificate(&server.data_dir, fs, keyring),
    };
    match config_from_files(cert, key, keyring) {
        Ok(config) => Ok(Tls { config: Some(config), unopenable: None }),
        Err(TlsError::Sealed { path, reason }) => {
            let why = format!(
                "{reason}; RTMPS and HTTPS are not served: put the key in server.tlsKeyFile again (in clear, or \
                 sealed on this box)"
            );
            Ok(refused(&path, "server.tlsKeyFile", why))
        }
        Err(e) => Err(e),
    }
}

/// A TLS server configuration from a PEM certificate chain and its private key (clear PEM, or
/// a `sealed:v1:` value `keyring` opens), which must parse and belong together. What is wrong
/// names the file, never its content.
pub fn config_from_files(cert_path: &Path, key_path: &Path, keyring: &Keyring) -> Result<Arc<ServerConfig>, TlsError> {
    let read = |path: &Path| std::fs::read(path).map(Zeroizing::new).map_err(|e| file_error(path, e.to_string()));
    let (cert, key) = (read(cert_path)?, read(key_path)?);
    let key = match sealed_text(&key) {
        Some(sealed) => {
            keyring
                .open(KEY_NAME, sealed)
                .map_err(|e| TlsError::Sealed { path: key_path.to_path_buf(), reason: e.to_string() })?
                .clear
        }
        None => key,
    };
    config_from_pem(cert_path, &cert, key_path, &key)
}

/// The text of `bytes` when it is a sealed value.
fn sealed_text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok().filter(|text| envelope::is_sealed(text))
}

fn file_error(path: &Path, reason: String) -> TlsError {
    TlsError::File { path: path.to_path_buf(), reason }
}

/// A TLS server configuration from the PEM certificate chain `cert` and the clear PEM key `key`,
/// read from the files named.
fn config_from_pem(cert_path: &Path, cert: &[u8], key_path: &Path, key: &[u8]) -> Result<Arc<ServerConfig>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert_path, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(cert_path, "no PEM certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| file_error(key_path, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// No TLS: the key `key` in `path` does not open, and `why`, logged.
fn refused(path: &Path, key: &str, why: String) -> Tls {
    log::error!("TLS: {key} ({}) does not open: {why}", path.display());
    let unopenable = Unopenable { place: path.display().to_string(), key: key.to_string(), why };
    Tls { config: None, unopenable: Some(unopenable) }
}

/// The device certificate's files in a data directory.
struct DeviceFiles {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    clear_key: PathBuf,
}

/// `path`'s content, `None` when it does not exist.
fn read(fs: &dyn Fs, path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, TlsError> {
    fs.read(path).map(|bytes| bytes.map(Zeroizing::new)).map_err(|e| failed(path, e))
}

/// `path` with `suffix` after its name.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The first of `.unopened`, `.unopened.2`, ... under which neither file of the pair has a copy
/// kept aside yet: a key kept aside is never overwritten (moved back to its TPM, it opens).
/// Blocking: it looks at the directory.
fn aside_suffix(files: &DeviceFiles) -> String {
    let free = |suffix: &String| [&files.key, &files.cert].iter().all(|path| !suffixed(path, suffix).exists());
    let suffixes = std::iter::once(UNOPENED.to_string()).chain((2..=u32::MAX).map(|n| format!("{UNOPENED}.{n}")));
    suffixes.into_iter().find(free).unwrap_or_else(|| UNOPENED.to_string())
}

fn failed(path: &Path, e: std::io::Error) -> TlsError {
    TlsError::Generate(format!("{}: {e}", path.display()))
}

/// The device certificate and its key: sealed now if an older version left it in clear, made
/// now if there is none or it no longer opens.
fn device_certificate(data_dir: &Path, fs: &dyn Fs, keyring: &Keyring) -> Result<Tls, TlsError> {
    let files = DeviceFiles {
        dir: data_dir.to_path_buf(),
        cert: data_dir.join(DEVICE_CERT),
        key: data_dir.join(DEVICE_KEY),
        clear_key: data_dir.join(CLEAR_DEVICE_KEY),
    };
    let cert = read(fs, &files.cert)?;
    let clear = read(fs, &files.clear_key)?;
    let sealed = read(fs, &files.key)?;
    let serving = |config| Ok(Tls { config: Some(config), unopenable: None });
    let did_not_open = match (&cert, &clear, &sealed) {
        (Some(cert), Some(clear), _) => {
            let config = config_from_pem(&files.cert, cert, &files.clear_key, clear)?;
            seal_clear_key(&files, fs, keyring, clear)?;
            return serving(config);
        }
        (Some(cert), None, Some(sealed)) => match keyring.open(KEY_NAME, &String::from_utf8_lossy(sealed)) {
            Ok(opened) => {
                let config = config_from_pem(&files.cert, cert, &files.key, &opened.clear)?;
                if opened.stale {
                    reseal(&files, fs, keyring, &opened.clear);
                }
                return serving(config);
            }
            Err(KeyringError::NoKey(why)) => {
                let why = format!("no data key is open ({why}); RTMPS and HTTPS are not served until it opens");
                return Ok(refused(&files.key, "the device TLS key", why));
            }
            Err(e) => Some(e.to_string()),
        },
        (None, None, Some(_)) => Some("its certificate is missing".to_string()),
        _ => None,
    };
    let suffix = aside_suffix(&files);
    if let Some(e) = &did_not_open {
        for path in [&files.key, &files.cert].into_iter().filter(|path| path.exists()) {
            fs.rename(path, &suffixed(path, &suffix)).map_err(|e| failed(path, e))?;
        }
        log::error!(
            "TLS: the device TLS key ({}) does not open: {e}; it is kept aside as {DEVICE_KEY}{suffix}, and a new \
             device certificate is made: clients that pinned the old one will see a new one",
            files.key.display()
        );
    }
    let Some(config) = make_device_certificate(&files, fs, keyring)? else {
        let why = "no data key is open to seal a new one; RTMPS and HTTPS are not served".to_string();
        return Ok(refused(&files.key, "the device TLS key", why));
    };
    if clear.is_some() {
        remove_clear_key(&files, fs)?;
    }
    let unopenable = did_not_open.map(|e| Unopenable {
        place: files.key.display().to_string(),
        key: "the device TLS key".to_string(),
        why: format!(
            "{e}; a new device certificate was made (the old pair is kept as {DEVICE_KEY}{suffix}): clients that \
             pinned the old certificate must trust the new one"
        ),
    });
    Ok(Tls { config: Some(config), unopenable })
}

/// A new self-signed device certificate, its key sealed, both written; `None` when no data key
/// is open to seal the key with.
fn make_device_certificate(
    files: &DeviceFiles,
    fs: &dyn Fs,
    keyring: &Keyring,
) -> Result<Option<Arc<ServerConfig>>, TlsError> {
    let names = vec!["rampart.local".to_string(), "localhost".to_string()];
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let key = Zeroizing::new(certified.signing_key.serialize_pem());
    let sealed = match keyring.seal(KEY_NAME, key.as_bytes()) {
        Ok(sealed) => sealed,
        Err(KeyringError::NoKey(_)) => return Ok(None),
        Err(e) => return Err(TlsError::Generate(e.to_string())),
    };
    let cert = certified.cert.pem();
    let config = config_from_pem(&files.cert, cert.as_bytes(), &files.key, key.as_bytes())?;
    write_private(fs, &files.key, sealed.as_bytes()).map_err(|e| failed(&files.key, e))?;
    write_private(fs, &files.cert, cert.as_bytes()).map_err(|e| failed(&files.cert, e))?;
    log::info!("made a self-signed device certificate: {} (its key sealed in {})", files.cert.display(), DEVICE_KEY);
    Ok(Some(config))
}

/// Seals the device key an older version left in clear, durably, then removes the clear file;
/// without a data key it stays in clear, with a warning.
fn seal_clear_key(files: &DeviceFiles, fs: &dyn Fs, keyring: &Keyring, clear: &[u8]) -> Result<(), TlsError> {
    let sealed = match keyring.seal(KEY_NAME, clear) {
        Ok(sealed) => sealed,
        Err(e) => {
            log::warn!("TLS: the device key {} stays in clear: {e}", files.clear_key.display());
            return Ok(());
        }
    };
    write_private(fs, &files.key, sealed.as_bytes()).map_err(|e| failed(&files.key, e))?;
    remove_clear_key(files, fs)?;
    log::info!("TLS: sealed the device key in {}; removed {} (it was in clear)", files.key.display(), CLEAR_DEVICE_KEY);
    Ok(())
}

/// Removes the clear device key of an older version, durably (the directory fsynced).
fn remove_clear_key(files: &DeviceFiles, fs: &dyn Fs) -> Result<(), TlsError> {
    fs.remove(&files.clear_key).map_err(|e| failed(&files.clear_key, e))?;
    fs.sync_dir(&files.dir).map_err(|e| failed(&files.dir, e))
}

/// Seals the device key again under the current data key (it opened under an older one); a
/// failure only leaves it as it was.
fn reseal(files: &DeviceFiles, fs: &dyn Fs, keyring: &Keyring, clear: &[u8]) {
    let written = keyring
        .seal(KEY_NAME, clear)
        .map_err(|e| e.to_string())
        .and_then(|sealed| write_private(fs, &files.key, sealed.as_bytes()).map_err(|e| e.to_string()));
    if let Err(e) = written {
        log::warn!("TLS: the device key stays sealed under an older data key: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::file::KeyFile;
    use crate::secrets::keyring::Mint;
    use crate::storage::fs::RealFs;
    use std::os::unix::fs::PermissionsExt;

    fn settings(dir: &Path) -> ServerSettings {
        let mut server = crate::config::load(None).unwrap().settings.server;
        server.data_dir = dir.to_path_buf();
        server
    }

    #[test]
    fn the_device_certificate_is_made_once_and_its_key_kept_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let (server, keyring) = (settings(dir.path()), Keyring::ephemeral());
        let made = server_config(&server, &RealFs, &keyring).unwrap();
        assert!(made.config.is_some() && made.unopenable.is_none());
        let first = std::fs::read(dir.path().join(DEVICE_CERT)).unwrap();
        for file in [DEVICE_KEY, DEVICE_CERT] {
            let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        let sealed = std::fs::read_to_string(dir.path().join(DEVICE_KEY)).unwrap();
        assert!(envelope::is_sealed(&sealed) && !sealed.contains("PRIVATE KEY"));
        assert!(keyring.open(KEY_NAME, &sealed).unwrap().clear.starts_with(b"-----BEGIN PRIVATE KEY-----"));
        server_config(&server, &RealFs, &keyring).unwrap().config.unwrap();
        assert_eq!(std::fs::read(dir.path().join(DEVICE_CERT)).unwrap(), first, "kept across starts");
        assert_eq!(std::fs::read_to_string(dir.path().join(DEVICE_KEY)).unwrap(), sealed, "not sealed again");
        assert!(!dir.path().join("device-key.sealed.new").exists(), "no temporary file left");
    }

    #[test]
    fn a_key_kept_aside_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let server = settings(dir.path());
        server_config(&server, &RealFs, &Keyring::ephemeral()).unwrap();
        let first = std::fs::read(dir.path().join(DEVICE_KEY)).unwrap();
        // On another box (another data key), then on a third: each pair that does not open is
        // kept aside under a name of its own.
        let moved = server_config(&server, &RealFs, &Keyring::ephemeral()).unwrap();
        assert!(moved.config.is_some() && moved.unopenable.is_some());
        let second = std::fs::read(dir.path().join(DEVICE_KEY)).unwrap();
        server_config(&server, &RealFs, &Keyring::ephemeral()).unwrap();
        assert_eq!(std::fs::read(dir.path().join(format!("{DEVICE_KEY}{UNOPENED}"))).unwrap(), first);
        assert_eq!(std::fs::read(dir.path().join(format!("{DEVICE_KEY}{UNOPENED}.2"))).unwrap(), second);
        assert!(dir.path().join(format!("{DEVICE_CERT}{UNOPENED}.2")).exists());

        // A sealed key whose certificate is gone is kept aside too.
        std::fs::remove_file(dir.path().join(DEVICE_CERT)).unwrap();
        let third = std::fs::read(dir.path().join(DEVICE_KEY)).unwrap();
        server_config(&server, &RealFs, &Keyring::ephemeral()).unwrap();
        assert_eq!(std::fs::read(dir.path().join(format!("{DEVICE_KEY}{UNOPENED}.3"))).unwrap(), third);
    }

    #[test]
    fn without_a_data_key_the_device_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let closed = Keyring::load(&KeyFile, &RealFs, dir.path(), Mint::Never);
        let tls = server_config(&settings(dir.path()), &RealFs, &closed).unwrap();
        assert!(tls.config.is_none());
        let unopenable = tls.unopenable.unwrap();
        assert_eq!(unopenable.key, "the device TLS key");
        assert!(unopenable.why.contains("no data key is open"), "{}", unopenable.why);
        assert!(!dir.path().join(DEVICE_KEY).exists() && !dir.path().join(DEVICE_CERT).exists());
    }

    #[test]
    fn a_provided_key_may_be_sealed_and_one_that_does_not_open_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.sealed"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        let keyring = Keyring::ephemeral();
        let sealed = keyring.seal(KEY_NAME, certified.signing_key.serialize_pem().as_bytes()).unwrap();
        std::fs::write(&key, sealed).unwrap();
        let mut server = settings(dir.path());
        (server.tls_cert_file, server.tls_key_file) = (Some(cert.clone()), Some(key.clone()));
        assert!(server_config(&server, &RealFs, &keyring).unwrap().config.is_some());

        let tls = server_config(&server, &RealFs, &Keyring::ephemeral()).unwrap();
        assert!(tls.config.is_none(), "another box's key: no TLS");
        let unopenable = tls.unopenable.unwrap();
        assert_eq!((unopenable.place, unopenable.key), (key.display().to_string(), "server.tlsKeyFile".to_string()));
        assert!(!dir.path().join(DEVICE_CERT).exists(), "never the device certificate in its place");
    }

    #[test]
    fn a_bad_certificate_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = settings(dir.path());
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
        server.tls_cert_file = Some(cert.clone());
        server.tls_key_file = Some(dir.path().join("key.pem"));
        let err = server_config(&server, &RealFs, &Keyring::ephemeral()).err().unwrap().to_string();
        assert!(err.starts_with(&cert.display().to_string()), "{err}");
    }
}
