//! What a settings change must not break, checked before it is written: the settings name
//! files and directories that the next start needs, and a change that names a bad one is
//! refused now, with the key and why, instead of failing that start.

use crate::config::Settings;
use crate::http::client::HttpClient;
use crate::tls;
use std::path::Path;

/// What a settings change must not break, checked before it is written, so that a failing next
/// start is never the first sign: a certificate and key that parse and match, a trust file that
/// parses, and a data directory fit to be rampart's.
pub fn vet(current: &Settings, next: &Settings) -> Vec<(&'static str, String)> {
    let (old, new) = (&current.server, &next.server);
    let mut problems = Vec::new();
    let pair = |s: &crate::config::ServerSettings| (s.tls_cert_file.clone(), s.tls_key_file.clone());
    // One without the other is the rules' to refuse (config/rules.rs).
    if let (true, (Some(cert), Some(key))) = (pair(old) != pair(new), pair(new)) {
        if let Err(e) = tls::config_from_files(&cert, &key) {
            problems.push(("server.tlsCertFile", e.to_string()));
        }
    }
    if old.tls_trust_file != new.tls_trust_file {
        if let Err(e) = HttpClient::new(new.tls_trust_file.as_deref()) {
            problems.push(("server.tlsTrustFile", e.to_string()));
        }
    }
    if old.data_dir != new.data_dir {
        if let Err(why) = fit_data_dir(&new.data_dir, &old.data_dir) {
            problems.push(("data.dir", why));
        }
    }
    problems
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
