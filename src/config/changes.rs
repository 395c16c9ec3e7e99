//! Changing settings while the daemon runs: a change to one file (the server's or an
//! application's) is checked exactly as a start would check it, written through the atomic
//! writer with the user's comments and key order kept, and handed back as the settings now in
//! force, with the keys that take effect only after a restart. A change that fails its checks
//! changes nothing.
//!
//! Secrets are written sealed: a secret set through a change is checked in clear (as a start
//! would), then sealed with the box's data key before it is written; when no key is open the
//! change is refused. At start, the secrets a user wrote in clear are sealed and their files
//! rewritten once ([`ConfigFiles::seal_clear_secrets`]).

use super::keys::{APP_KEYS, KeyDef, SERVER_KEYS};
use super::{FileSecrets, Invalid, Problem, SecretStatus, Settings, check_app_text, check_server_text, properties};
use crate::secrets::Keyring;
use crate::secrets::envelope::is_sealed;
use crate::storage::fs::{Fs, RealFs};
use crate::storage::mount::Remount;
use crate::storage::writer::{AtomicWriter, Provenance, WriteError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Checks a change against the world beyond the files (that a named file parses, that a
/// directory is fit for its use), given the settings in force and those the change makes: a
/// `(key, why)` for each problem. The daemon supplies it; it knows what the settings name.
pub type Vet = Box<dyn Fn(&Settings, &Settings) -> Vec<(&'static str, String)> + Send + Sync>;

/// The configuration directory's writers: `server.properties` in it and `apps/` below it share
/// the partition, so they share its remount, and whether it was left writable.
pub struct ConfigFiles {
    dir: PathBuf,
    remount: Remount,
    server: AtomicWriter<Arc<dyn Fs>>,
    apps: AtomicWriter<Arc<dyn Fs>>,
    vet: Option<Vet>,
    keyring: Option<Arc<Keyring>>,
}

impl ConfigFiles {
    /// The writers of `config_dir` on the real file system (see [`ConfigFiles::with_fs`]).
    pub fn new(config_dir: &Path) -> Self {
        ConfigFiles::with_fs(config_dir, Arc::new(RealFs))
    }

    /// The writers of `config_dir` over `fs`, remounting it around writes when it is a
    /// read-only mount.
    pub fn with_fs(config_dir: &Path, fs: Arc<dyn Fs>) -> Self {
        let remount = Remount::for_dir(config_dir);
        let writer = |dir: PathBuf| AtomicWriter::with_fs(&dir, fs.clone(), remount.clone());
        ConfigFiles {
            dir: config_dir.to_path_buf(),
            server: writer(config_dir.to_path_buf()),
            apps: writer(config_dir.join("apps")),
            remount,
            vet: None,
            keyring: None,
        }
    }

    /// These writers, sealing secrets with `keyring` (without one, a change that sets a secret
    /// is refused: secrets are never written in clear).
    pub fn sealing_with(self, keyring: Arc<Keyring>) -> Self {
        ConfigFiles { keyring: Some(keyring), ..self }
    }

    /// The writer, file name and table of `target`'s file.
    fn file_of(&self, target: &Target) -> (&AtomicWriter<Arc<dyn Fs>>, String, &'static [KeyDef]) {
        match target {
            Target::Server => (&self.server, "server.properties".to_string(), SERVER_KEYS),
            Target::App(app) => (&self.apps, format!("{app}.properties"), APP_KEYS),
        }
    }

    /// The text of the file `name` that `writer` keeps (empty when there is none).
    fn text_of(writer: &AtomicWriter<Arc<dyn Fs>>, name: &str) -> Result<String, WriteError> {
        let loaded = writer.load(name, &|_| true)?;
        Ok(String::from_utf8_lossy(loaded.as_ref().map_or(&[][..], |f| f.body())).into_owned())
    }

    /// Seals every secret of `settings` written in clear (or sealed under an older data key)
    /// and rewrites each file that holds one, once, through the atomic writer (comments and key
    /// order kept); `settings` then hold the sealed values. One log line per key, never the
    /// value. When no data key is open, the clear values stay in force as written and the log
    /// says they could not be sealed. Blocking: call it from a job on the storage worker.
    pub fn seal_clear_secrets(&self, settings: &mut Settings) {
        let Some(keyring) = &self.keyring else { return };
        let mut plan = Vec::new();
        for FileSecrets { place, target, secrets } in settings.secrets() {
            let mut sealed = Vec::new();
            for (def, secret) in secrets.into_iter().filter(|(_, secret)| secret.needs_sealing()) {
                let what = match secret.status() {
                    SecretStatus::Stale => "was sealed under an older data key",
                    _ => "was written in clear",
                };
                match secret.seal(def.key, keyring) {
                    Some(Ok(text)) => sealed.push((def.key, what, text)),
                    Some(Err(e)) => {
                        log::warn!("{place}: {} {what} and could not be sealed ({e}): in force as written", def.key)
                    }
                    None => {}
                }
            }
            if !sealed.is_empty() {
                plan.push((place, target, sealed));
            }
        }
        for (place, target, sealed) in plan {
            let values: Vec<(String, String)> =
                sealed.iter().map(|(key, _, text)| (key.to_string(), text.clone())).collect();
            let (writer, name, table) = self.file_of(&target);
            let written = Self::text_of(writer, &name)
                .map_err(|e| e.to_string())
                .and_then(|old| edited(&old, &values, table, &writer.dir().join(&name)).map_err(|e| e.to_string()))
                .and_then(|new| writer.write(&name, new.as_bytes()).map_err(|e| e.to_string()));
            if let Err(e) = written {
                log::warn!("{place}: could not be rewritten with its secrets sealed ({e}): they stay as written");
                continue;
            }
            for (key, what, text) in sealed {
                if let Some(secret) = settings.secret_mut(&target, key) {
                    secret.sealed_as(text);
                }
                log::info!("{place}: {key} {what}: sealed");
            }
        }
    }

    /// These writers, refusing every change that `vet` finds a problem with.
    pub fn vetted_by(self, vet: Vet) -> Self {
        ConfigFiles { vet: Some(vet), ..self }
    }

    /// True when a remount back to read-only failed and the partition is writable now.
    pub fn stuck_writable(&self) -> bool {
        self.remount.stuck_writable()
    }

    /// Removes the temporary files an interrupted write left; how many, in which directory.
    pub fn remove_stale_temps(&self) -> Result<Vec<(PathBuf, usize)>, WriteError> {
        let mut removed = Vec::new();
        for writer in [&self.server, &self.apps].into_iter().filter(|w| w.dir().is_dir()) {
            removed.push((writer.dir().to_path_buf(), writer.remove_stale_temps()?));
        }
        Ok(removed)
    }

    /// Makes each file edited by hand since rampart wrote it its own last good copy: rewritten
    /// with a fresh header and its text as the user left it, so that a file torn later falls
    /// back to the edit, not to what was there before. Returns the files adopted (call at start).
    pub fn adopt_hand_edits(&self) -> Result<Vec<PathBuf>, WriteError> {
        let mut adopted = Vec::new();
        let apps = std::fs::read_dir(self.apps.dir()).into_iter().flatten().flatten();
        let app_files = apps.map(|entry| entry.file_name().to_string_lossy().into_owned());
        let files = std::iter::once((&self.server, "server.properties".to_string()))
            .chain(app_files.filter(|n| n.ends_with(".properties") && !n.starts_with('.')).map(|n| (&self.apps, n)));
        for (writer, name) in files {
            if let Some(file) = writer.load(&name, &|_| true)?.filter(|f| f.provenance == Provenance::EditedByHand) {
                writer.write(&name, file.body())?;
                adopted.push(writer.dir().join(name));
            }
        }
        Ok(adopted)
    }
}

/// Which file a change is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `server.properties`.
    Server,
    /// `apps/<App>.properties`.
    App(String),
}

/// A change that was written.
#[derive(Debug)]
pub struct Applied {
    /// The settings now in force (those marked restart-needed only after a restart).
    pub settings: Settings,
    /// The keys that changed but take effect only after a restart.
    pub restart_needed: Vec<&'static str>,
    /// What the new file was warned about.
    pub warnings: Vec<Problem>,
}

/// Sets `values` (key, properties text) in the file of `target` under `config_dir`.
pub fn apply(
    files: &ConfigFiles,
    current: &Settings,
    target: &Target,
    values: &[(String, String)],
) -> Result<Applied, Invalid> {
    if let Target::App(app) = target {
        if !current.apps.contains_key(app) {
            return Err(invalid(files.dir.join("apps").join(format!("{app}.properties")), None, "no such application"));
        }
    }
    let (writer, name, table) = files.file_of(target);
    let dir = writer.dir().to_path_buf();
    let path = dir.join(&name);
    let old = ConfigFiles::text_of(writer, &name).map_err(|e| invalid(path.clone(), None, &e.to_string()))?;
    // Checked with the secrets in clear, as a start would check them; then written sealed.
    read_target(current, target, &edited(&old, values, table, &path)?, &path)?;
    let sealed = sealed_values(files.keyring.as_deref(), values, table, &path)?;
    let new = edited(&old, &sealed, table, &path)?;
    let (mut settings, warnings) = read_target(current, target, &new, &path)?;
    if let Some(keyring) = &files.keyring {
        settings.open_secrets(keyring);
    }
    let vetted = files.vet.as_ref().map(|vet| vet(current, &settings)).unwrap_or_default();
    if !vetted.is_empty() {
        let problems = vetted
            .into_iter()
            .map(|(key, message)| Problem { file: path.clone(), line: None, key: Some(key.to_string()), message })
            .collect();
        return Err(Invalid { problems, warnings });
    }
    if writer.fs().create_dir_all(&dir).is_err() && !dir.is_dir() {
        return Err(invalid(dir, None, "cannot create the directory"));
    }
    writer.write(&name, new.as_bytes()).map_err(|e| invalid(path, None, &e.to_string()))?;
    let restart_needed =
        changed_keys(current, &settings, target).into_iter().filter(|def| def.restart).map(|def| def.key).collect();
    Ok(Applied { settings, restart_needed, warnings })
}

/// The settings `current` become with `text` as the file of `target`, checked as a start would
/// check them, and what they were warned about.
fn read_target(
    current: &Settings,
    target: &Target,
    text: &str,
    path: &Path,
) -> Result<(Settings, Vec<Problem>), Invalid> {
    let mut settings = current.clone();
    let warnings = match target {
        Target::Server => check_server_text(text, path).map(|(server, warnings)| {
            settings.server = server;
            current.overrides.apply(&mut settings.server);
            warnings
        })?,
        Target::App(app) => check_app_text(text, path).map(|(parsed, warnings)| {
            settings.apps.insert(app.clone(), parsed);
            warnings
        })?,
    };
    Ok((settings, warnings))
}

/// `values` with each secret sealed for its key: a clear one is sealed with `keyring`, a sealed
/// one must open with it, and an empty one unsets it. Refused when no data key is open.
fn sealed_values(
    keyring: Option<&Keyring>,
    values: &[(String, String)],
    table: &'static [KeyDef],
    path: &Path,
) -> Result<Vec<(String, String)>, Invalid> {
    let mut out = Vec::with_capacity(values.len());
    for (key, value) in values {
        let text = value.trim();
        let Some(def) = table.iter().find(|def| def.answers_to(key)).filter(|def| def.secret && !text.is_empty())
        else {
            out.push((key.clone(), value.clone()));
            continue;
        };
        let refused = |why: String| invalid(path.to_path_buf(), Some(key), &why);
        let keyring = keyring.ok_or_else(|| refused(format!("cannot seal {key}: the box's keyring is not open")))?;
        let sealed = match is_sealed(text) {
            true => {
                keyring.open(def.key, text).map(|_| text.to_string()).map_err(|e| refused(format!("{key}: {e}")))?
            }
            false => keyring.seal(def.key, text.as_bytes()).map_err(|e| refused(format!("cannot seal {key}: {e}")))?,
        };
        out.push((key.clone(), sealed));
    }
    Ok(out)
}

/// The file's text with `values` set in place (keeping the key as the user wrote it, on every
/// line that sets it, so that no earlier copy keeps an old value) or appended.
fn edited(old: &str, values: &[(String, String)], table: &'static [KeyDef], path: &Path) -> Result<String, Invalid> {
    let entries = properties::parse(old).map_err(|e| invalid(path.to_path_buf(), None, &e.to_string()))?;
    let mut in_place = Vec::new();
    let mut appended = Vec::new();
    for (key, value) in values {
        let Some(def) = table.iter().find(|def| def.answers_to(key)) else {
            return Err(invalid(path.to_path_buf(), Some(key), "unknown setting"));
        };
        let mut written =
            entries.iter().filter(|e| def.answers_to(e.key.strip_prefix("settings.").unwrap_or(&e.key))).peekable();
        if written.peek().is_none() {
            appended.push((def.key.to_string(), value.clone()));
        }
        in_place.extend(written.map(|entry| (entry, value.clone())));
    }
    Ok(properties::update(old, &in_place, &appended))
}

/// The keys whose values differ between `before` and `after` in the target's file.
fn changed_keys(before: &Settings, after: &Settings, target: &Target) -> Vec<&'static KeyDef> {
    let (old, new) = match target {
        Target::Server => (before.server.rendered(), after.server.rendered()),
        Target::App(app) => match (before.apps.get(app), after.apps.get(app)) {
            (Some(old), Some(new)) => (old.rendered(), new.rendered()),
            _ => return Vec::new(),
        },
    };
    old.into_iter().zip(new).filter(|((_, a), (_, b))| a != b).map(|((def, _), _)| def).collect()
}

fn invalid(file: PathBuf, key: Option<&str>, message: &str) -> Invalid {
    let problem = Problem { file, line: None, key: key.map(str::to_string), message: message.to_string() };
    Invalid { problems: vec![problem], warnings: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SecretStatus, load};
    use crate::secrets::file::KeyFile;
    use crate::secrets::keyring::Mint;

    fn config(app: &str, server: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("apps")).unwrap();
        std::fs::write(dir.path().join("apps/LiveApp.properties"), app).unwrap();
        std::fs::write(dir.path().join("server.properties"), server).unwrap();
        dir
    }

    fn keyring(dir: &Path, mint: Mint) -> Arc<Keyring> {
        Arc::new(Keyring::load(&KeyFile, &RealFs, &dir.join("data"), mint))
    }

    #[test]
    fn the_open_pass_opens_seals_and_lists_what_does_not_open() {
        let probe = tempfile::tempdir().unwrap();
        let keys = keyring(probe.path(), Mint::IfNoneOpens);
        let moved = keys.seal("jwtSecretKey", b"moved").unwrap();
        let dir = config(
            "# ours\ntokenHashSecret=clear-hash\ntimeTokenPeriod=30\n",
            &format!("server.jwtServerSecretKey={moved}\n"),
        );
        std::fs::rename(probe.path().join("data"), dir.path().join("data")).unwrap();
        let mut settings = load(Some(dir.path())).unwrap().settings;
        settings.open_secrets(&keys);
        let unopenable = settings.unopenable();
        assert_eq!(unopenable.len(), 1, "{unopenable:?}");
        assert_eq!(
            (unopenable[0].place.as_str(), unopenable[0].key.as_str()),
            ("server.properties", "server.jwtServerSecretKey")
        );
        assert!(unopenable[0].why.contains("does not open"), "{unopenable:?}");

        let files = ConfigFiles::new(dir.path()).sealing_with(keys.clone());
        files.seal_clear_secrets(&mut settings);
        let app = &settings.apps["LiveApp"];
        assert_eq!(app.token_hash_secret.status(), SecretStatus::Sealed);
        let text = std::fs::read_to_string(dir.path().join("apps/LiveApp.properties")).unwrap();
        assert!(!text.contains("clear-hash") && text.contains("# ours\ntokenHashSecret=sealed:v1:"), "{text}");
        assert!(text.ends_with("timeTokenPeriod=30\n"), "{text}");

        let mut reread = load(Some(dir.path())).unwrap().settings;
        reread.open_secrets(&keys);
        assert_eq!(reread.apps["LiveApp"].token_hash_secret, app.token_hash_secret);
        assert_eq!(reread.unopenable(), unopenable, "the unopenable one is left as it was");
    }

    #[test]
    fn a_change_seals_its_secret_or_is_refused_without_a_key() {
        let dir = config("", "");
        let current = load(Some(dir.path())).unwrap().settings;
        let secret = vec![("tokenHashSecret".to_string(), "entered-secret".to_string())];
        let app = Target::App("LiveApp".into());

        let no_key = ConfigFiles::new(dir.path()).sealing_with(keyring(dir.path(), Mint::Never));
        let refused = apply(&no_key, &current, &app, &secret).unwrap_err().to_string();
        assert!(refused.contains("cannot seal tokenHashSecret: no data key is open"), "{refused}");
        let unsealed = apply(&ConfigFiles::new(dir.path()), &current, &app, &secret).unwrap_err().to_string();
        assert!(unsealed.contains("cannot seal tokenHashSecret"), "never written in clear: {unsealed}");

        let keys = keyring(dir.path(), Mint::IfNoneOpens);
        let files = ConfigFiles::new(dir.path()).sealing_with(keys.clone());
        let applied = apply(&files, &current, &app, &secret).unwrap();
        let value = &applied.settings.apps["LiveApp"].token_hash_secret;
        assert_eq!(value.opened().map(|s| s.expose().as_str()), Some("entered-secret"));
        let text = std::fs::read_to_string(dir.path().join("apps/LiveApp.properties")).unwrap();
        assert!(text.contains("tokenHashSecret=sealed:v1:") && !text.contains("entered-secret"), "{text}");

        let foreign = Keyring::ephemeral().seal("tokenHashSecret", b"x").unwrap();
        let sent = vec![("tokenHashSecret".to_string(), foreign)];
        let refused = apply(&files, &applied.settings, &app, &sent).unwrap_err().to_string();
        assert!(refused.contains("does not open"), "a sealed value is taken only when it opens: {refused}");
        let short = vec![
            ("playJwtControlEnabled".to_string(), "true".to_string()),
            ("jwtStreamSecretKey".to_string(), "too-short".to_string()),
        ];
        let refused = apply(&files, &applied.settings, &app, &short).unwrap_err().to_string();
        assert!(refused.contains("at least 32 characters"), "checked in clear before sealing: {refused}");
    }
}
