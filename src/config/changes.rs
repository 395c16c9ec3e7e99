//! Changing settings while the daemon runs: a change to one file (the server's or an
//! application's) is checked exactly as a start would check it, written through the atomic
//! writer with the user's comments and key order kept, and handed back as the settings now in
//! force, with the keys that take effect only after a restart. A change that fails its checks
//! changes nothing.

use super::keys::{APP_KEYS, KeyDef, SERVER_KEYS};
use super::{Invalid, Problem, Settings, check_app_text, check_server_text, properties};
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
    let (writer, name, table) = match target {
        Target::Server => (&files.server, "server.properties".to_string(), SERVER_KEYS),
        Target::App(app) if current.apps.contains_key(app) => (&files.apps, format!("{app}.properties"), APP_KEYS),
        Target::App(app) => {
            return Err(invalid(files.dir.join("apps").join(format!("{app}.properties")), None, "no such application"));
        }
    };
    let dir = writer.dir().to_path_buf();
    let path = dir.join(&name);
    let old = match writer.load(&name, &|_| true) {
        Ok(loaded) => String::from_utf8_lossy(loaded.as_ref().map_or(&[][..], |f| f.body())).into_owned(),
        Err(e) => return Err(invalid(path, None, &e.to_string())),
    };
    let new = edited(&old, values, table, &path)?;

    let mut settings = current.clone();
    let warnings = match target {
        Target::Server => check_server_text(&new, &path).map(|(server, warnings)| {
            settings.server = server;
            current.overrides.apply(&mut settings.server);
            warnings
        })?,
        Target::App(app) => check_app_text(&new, &path).map(|(parsed, warnings)| {
            settings.apps.insert(app.clone(), parsed);
            warnings
        })?,
    };
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

/// The file's text with `values` set in place (keeping the key as the user wrote it) or appended.
fn edited(old: &str, values: &[(String, String)], table: &'static [KeyDef], path: &Path) -> Result<String, Invalid> {
    let entries = properties::parse(old).map_err(|e| invalid(path.to_path_buf(), None, &e.to_string()))?;
    let mut in_place = Vec::new();
    let mut appended = Vec::new();
    for (key, value) in values {
        let Some(def) = table.iter().find(|def| def.answers_to(key)) else {
            return Err(invalid(path.to_path_buf(), Some(key), "unknown setting"));
        };
        let written = entries.iter().rev().find(|e| def.answers_to(e.key.strip_prefix("settings.").unwrap_or(&e.key)));
        match written {
            Some(entry) => in_place.push((entry, value.clone())),
            None => appended.push((def.key.to_string(), value.clone())),
        }
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
