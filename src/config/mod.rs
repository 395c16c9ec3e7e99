//! Typed settings: read from a configuration directory (or the embedded defaults), checked
//! completely at load, and never stringly-typed past this module.
//!
//! A directory holds `server.properties` and `apps/<App>.properties`, one file per application.

pub mod changes;
pub mod keys;
pub mod live;
mod load;
pub mod properties;
mod rules;
pub mod secret_setting;
pub mod values;

pub use keys::{AppSettings, KeyDef, ServerSettings};
pub use secret_setting::{SecretSetting, SecretStatus};

use crate::secrets::{Keyring, Unopenable};
use changes::Target;

use load::FileSource;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The application served when no configuration names one.
pub const DEFAULT_APP: &str = "LiveApp";

/// Where a setting lives: the server file or an application file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `server.properties`.
    Server,
    /// `apps/<App>.properties`.
    App,
}

/// Everything the daemon is configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The box-wide settings.
    pub server: ServerSettings,
    /// Each application's settings, by application name.
    pub apps: BTreeMap<String, AppSettings>,
    /// What the command line set, which wins over the files for as long as the daemon runs.
    pub overrides: Overrides,
}

/// Settings given on the command line: they win over the files' at start and after every
/// change made while the daemon runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// `--data DIR`: the data directory instead of `data.dir`.
    pub data_dir: Option<PathBuf>,
}

impl Overrides {
    /// Puts the overridden values into `server`.
    pub fn apply(&self, server: &mut ServerSettings) {
        if let Some(dir) = &self.data_dir {
            server.data_dir.clone_from(dir);
        }
    }
}

impl Settings {
    /// These settings with `overrides` in force, now and after every change.
    pub fn overridden(mut self, overrides: Overrides) -> Self {
        overrides.apply(&mut self.server);
        self.overrides = overrides;
        self
    }

    /// The secret settings of each file, the server's first.
    pub fn secrets(&self) -> Vec<FileSecrets<'_>> {
        let server =
            FileSecrets { place: place_of(&Target::Server), target: Target::Server, secrets: self.server.secrets() };
        let apps = self.apps.iter().map(|(name, app)| {
            let target = Target::App(name.clone());
            FileSecrets { place: place_of(&target), target, secrets: app.secrets() }
        });
        std::iter::once(server).chain(apps).collect()
    }

    /// The secret setting `key` of `target`'s file.
    pub fn secret_mut(&mut self, target: &Target, key: &str) -> Option<&mut SecretSetting> {
        let secrets = match target {
            Target::Server => self.server.secrets_mut(),
            Target::App(app) => self.apps.get_mut(app)?.secrets_mut(),
        };
        secrets.into_iter().find(|(def, _)| def.key == key).map(|(_, secret)| secret)
    }

    /// Opens every sealed secret with `keyring` (in memory; once at start, and after a change).
    pub fn open_secrets(&mut self, keyring: &Keyring) {
        let apps = self.apps.values_mut().flat_map(AppSettings::secrets_mut);
        for (def, secret) in self.server.secrets_mut().into_iter().chain(apps) {
            secret.open(def.key, keyring);
        }
    }

    /// The secrets that are sealed and do not open, with where they are and why: what needs
    /// them refuses.
    pub fn unopenable(&self) -> Vec<Unopenable> {
        let mut out = Vec::new();
        for FileSecrets { place, secrets, .. } in self.secrets() {
            for (def, secret) in secrets {
                if let Some(why) = secret.unopenable() {
                    out.push(Unopenable { place: place.clone(), key: def.key.to_string(), why: why.to_string() });
                }
            }
        }
        out
    }
}

/// The secret settings of one file.
pub struct FileSecrets<'a> {
    /// Where the file is kept (`server.properties`, `apps/<App>.properties`).
    pub place: String,
    /// The file, as a change names it.
    pub target: Target,
    /// Its secret settings, in table order.
    pub secrets: Vec<(&'static KeyDef, &'a SecretSetting)>,
}

/// Where a target's settings are kept, relative to the configuration directory.
pub fn place_of(target: &Target) -> String {
    match target {
        Target::Server => "server.properties".to_string(),
        Target::App(app) => format!("apps/{app}.properties"),
    }
}

/// One thing wrong (or worth a warning) in a configuration, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file at fault.
    pub file: PathBuf,
    /// The line at fault, when the problem has one.
    pub line: Option<usize>,
    /// The key at fault, when the problem has one.
    pub key: Option<String>,
    /// What is wrong, with the value (secrets as `***`) and what was expected.
    pub message: String,
}

impl Problem {
    fn at(file: &Path, line: usize, key: Option<&str>, message: String) -> Self {
        Problem { file: file.to_path_buf(), line: Some(line), key: key.map(str::to_string), message }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A configuration that loaded, and what it was warned about.
#[derive(Debug)]
pub struct Loaded {
    /// The settings in force.
    pub settings: Settings,
    /// Things that did not stop the load (unknown keys, risky values).
    pub warnings: Vec<Problem>,
}

/// A configuration that cannot be used: every problem found, and the warnings besides.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct Invalid {
    /// What stops the start.
    pub problems: Vec<Problem>,
    /// What would only have been warned about.
    pub warnings: Vec<Problem>,
}

/// Loads the configuration in `dir`, or the embedded defaults (one app, `LiveApp`) when `None`.
pub fn load(dir: Option<&Path>) -> Result<Loaded, Invalid> {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let settings = match dir {
        None => read_defaults(&mut problems, &mut warnings),
        Some(dir) => read_dir(dir, &mut problems, &mut warnings),
    };
    match settings {
        Some(settings) if problems.is_empty() => Ok(Loaded { settings, warnings }),
        _ => Err(Invalid { problems, warnings }),
    }
}

fn read_defaults(problems: &mut Vec<Problem>, warnings: &mut Vec<Problem>) -> Option<Settings> {
    let server = read_server(None, Path::new("server.properties"), problems, warnings)?;
    let app_path = PathBuf::from(format!("apps/{DEFAULT_APP}.properties"));
    let app = read_app(None, &app_path, problems, warnings)?;
    Some(Settings { server, apps: BTreeMap::from([(DEFAULT_APP.to_string(), app)]), overrides: Overrides::default() })
}

fn read_dir(dir: &Path, problems: &mut Vec<Problem>, warnings: &mut Vec<Problem>) -> Option<Settings> {
    if !dir.is_dir() {
        let message = "configuration directory does not exist".to_string();
        problems.push(Problem { file: dir.to_path_buf(), line: None, key: None, message });
        return None;
    }
    let server_path = dir.join("server.properties");
    let server_text = match server_path.exists() {
        true => Some(load::read_text(&server_path, problems, warnings)?),
        false => None,
    };
    let server = read_server(server_text.as_deref(), &server_path, problems, warnings);
    let mut apps = BTreeMap::new();
    for (name, path) in app_files(&dir.join("apps"), problems, warnings) {
        let Some(text) = load::read_text(&path, problems, warnings) else { continue };
        if let Some(app) = read_app(Some(&text), &path, problems, warnings) {
            apps.insert(name, app);
        }
    }
    if apps.is_empty() && problems.is_empty() {
        let path = dir.join("apps").join(format!("{DEFAULT_APP}.properties"));
        apps.insert(DEFAULT_APP.to_string(), read_app(None, &path, problems, warnings)?);
    }
    Some(Settings { server: server?, apps, overrides: Overrides::default() })
}

/// Checks the text of a server file exactly as a start would.
pub fn check_server_text(text: &str, path: &Path) -> Result<(ServerSettings, Vec<Problem>), Invalid> {
    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    match read_server(Some(text), path, &mut problems, &mut warnings) {
        Some(server) if problems.is_empty() => Ok((server, warnings)),
        _ => Err(Invalid { problems, warnings }),
    }
}

/// Checks the text of an application file exactly as a start would.
pub fn check_app_text(text: &str, path: &Path) -> Result<(AppSettings, Vec<Problem>), Invalid> {
    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    match read_app(Some(text), path, &mut problems, &mut warnings) {
        Some(app) if problems.is_empty() => Ok((app, warnings)),
        _ => Err(Invalid { problems, warnings }),
    }
}

fn read_server(
    text: Option<&str>,
    path: &Path,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Option<ServerSettings> {
    let mut source = FileSource::empty(path.to_path_buf(), Scope::Server, problems, warnings);
    if let Some(text) = text {
        source = source.read(text, Scope::Server);
    }
    let server = ServerSettings::read(&mut source)?;
    rules::check_server(&server, &mut source);
    Some(server)
}

fn read_app(
    text: Option<&str>,
    path: &Path,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Option<AppSettings> {
    let mut source = FileSource::empty(path.to_path_buf(), Scope::App, problems, warnings);
    if let Some(text) = text {
        source = source.read(text, Scope::App);
    }
    let app = AppSettings::read(&mut source)?;
    rules::check_app(&app, &mut source);
    Some(app)
}

/// The `*.properties` files of `apps_dir` with their application names, sorted by name.
fn app_files(apps_dir: &Path, problems: &mut Vec<Problem>, warnings: &mut Vec<Problem>) -> Vec<(String, PathBuf)> {
    let Ok(listing) = std::fs::read_dir(apps_dir) else { return Vec::new() };
    let mut apps = Vec::new();
    for path in listing.filter_map(|entry| entry.ok().map(|e| e.path())) {
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if file_name.starts_with('.') {
            continue; // editor swap files and the writer's temporary files
        }
        match file_name.strip_suffix(".properties") {
            Some(name) if is_app_name(name) => apps.push((name.to_string(), path)),
            Some(_) => {
                let message = "not a valid application name: use 1 to 64 letters, digits, '-' or '_'".to_string();
                problems.push(Problem { file: path, line: None, key: None, message });
            }
            None => {
                let message = "ignored: application files end in .properties".to_string();
                warnings.push(Problem { file: path, line: None, key: None, message });
            }
        }
    }
    apps.sort();
    apps
}

/// Whether `name` can name an application (it appears in URLs: `rtmp://box/<App>/<stream>`).
pub fn is_app_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Writes `entries` as a properties file: with `docs`, each key preceded by its doc comment.
pub fn to_properties(entries: &[(&KeyDef, String)], docs: bool) -> String {
    let mut out = String::new();
    for (def, value) in entries {
        if docs {
            out.push_str(&format!("\n# {}\n", def.doc));
        }
        out.push_str(&properties::format_entry(def.key, value));
        out.push('\n');
    }
    out
}
