//! What a settings change must not break, checked before it is written: the settings name
//! files and directories that the next start needs, and a change that names a bad one is
//! refused now, with the key and why, instead of failing that start.

use crate::config::Settings;
use crate::net::client::HttpClient;
use crate::secrets::Keyring;
use crate::tls;
use std::path::Path;

/// What a settings change must not break, checked before it is written, so that a failing next
/// start is never the first sign: a certificate and key that parse and match, a trust file that
/// parses, and a data directory fit to be rampart's. A sealed key must open with `keyring`.
pub fn vet(current: &Settings, next: &Settings, keyring: &Keyring) -> Vec<(&'static str, String)> {
    let (old, new) = (&current.server, &next.server);
    let mut problems = Vec::new();
    let pair = |s: &crate::config::ServerSettings| (s.tls_cert_file.clone(), s.tls_key_file.clone());
    // One without the other is the rules' to refuse (config/rules.rs).
    if let (true, (Some(cert), Some(key))) = (pair(old) != pair(new), pair(new)) {
        let checked = small_file(&cert).and(small_file(&key));
        if let Err(e) = checked.and_then(|()| tls::config_from_files(&cert, &key, keyring).map_err(|e| e.to_string())) {
            problems.push(("server.tlsCertFile", e));
        }
    }
    if let (true, Some(trust)) = (old.tls_trust_file != new.tls_trust_file, &new.tls_trust_file) {
        let checked =
            small_file(trust).and_then(|()| HttpClient::new(Some(trust)).map(drop).map_err(|e| e.to_string()));
        if let Err(e) = checked {
            problems.push(("server.tlsTrustFile", e));
        }
    }
    if old.data_dir != new.data_dir {
        if let Err(why) = fit_data_dir(&new.data_dir, &old.data_dir) {
            problems.push(("data.dir", why));
        }
    }
    problems
}

/// Largest certificate, key or trust file read at change time.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// Whether `path` is a regular file small enough to read (not a device, a FIFO or a huge file,
/// which would hang or exhaust the daemon while it is read).
fn small_file(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if meta.len() > MAX_PEM_BYTES {
        return Err(format!("{} is larger than {MAX_PEM_BYTES} bytes", path.display()));
    }
    Ok(())
}

/// Whether `dir` can become the data directory in place of `current`: an existing directory,
/// owned by the user that owns the current one (rampart's), and empty or rampart's already.
fn fit_data_dir(dir: &Path, current: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let ours = std::fs::metadata(current).map(|m| m.uid()).unwrap_or(meta.uid());
    if meta.uid() != ours {
        return Err(format!("{} is not owned by rampart's user (uid {ours})", dir.display()));
    }
    let names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let rampart_file = |n: &String| n == "admin.json" || n == "audit.log" || n.starts_with("store-");
    if !names.is_empty() && !names.iter().any(rampart_file) {
        return Err(format!("{} holds other files: a data directory must be empty or rampart's own", dir.display()));
    }
    Ok(())
}
