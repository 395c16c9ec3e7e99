//! Reading a configuration directory: `server.properties` and `apps/<App>.properties`.
//!
//! Problems are collected with their file and line, so one run of `check-config` shows every bad
//! value at once (the rules between settings run once the values are good). Keys rampart does not
//! know are warnings, so a user's existing configuration loads.

use super::keys::{APP_KEYS, KeyDef, SERVER_KEYS};
use super::properties;
use super::values::SettingValue;
use super::{Problem, Scope};
use crate::secrets::REDACTED;
use crate::storage::fs::RealFs;
use crate::storage::mount::Remount;
use crate::storage::writer::{AtomicWriter, Provenance};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The settings text of one file, resolved to table keys, and the problems found in it.
pub struct FileSource<'a> {
    path: PathBuf,
    table: &'static [KeyDef],
    texts: HashMap<&'static str, (String, usize)>,
    problems: &'a mut Vec<Problem>,
    warnings: &'a mut Vec<Problem>,
}

impl<'a> FileSource<'a> {
    /// A source with no text: every setting takes its default.
    pub fn empty(path: PathBuf, scope: Scope, problems: &'a mut Vec<Problem>, warnings: &'a mut Vec<Problem>) -> Self {
        FileSource { path, table: table_of(scope), texts: HashMap::new(), problems, warnings }
    }

    /// Reads `text` (the content of `path`), keeping what the table knows and warning of the rest.
    pub fn read(mut self, text: &str, scope: Scope) -> Self {
        let entries = match properties::parse(text) {
            Ok(entries) => entries,
            Err(e) => {
                self.problems.push(Problem::at(&self.path, e.line, None, e.message));
                return self;
            }
        };
        for entry in entries {
            let name = match scope {
                // Ant Media Server's red5-web.properties prefixes application keys with `settings.`.
                Scope::App => entry.key.strip_prefix("settings.").unwrap_or(&entry.key),
                Scope::Server => &entry.key,
            };
            match self.table.iter().find(|def| def.answers_to(name)) {
                Some(def) => {
                    if let Some((_, earlier)) = self.texts.insert(def.key, (entry.value, entry.line)) {
                        let message = format!("set again (first on line {earlier}); this line wins");
                        self.warnings.push(Problem::at(&self.path, entry.line, Some(name), message));
                    }
                }
                None => {
                    let message = misplaced_or_unknown(name, scope);
                    self.warnings.push(Problem::at(&self.path, entry.line, Some(name), message));
                }
            }
        }
        self
    }

    /// The value of `def`, from this file's text or the default; a problem is recorded when invalid.
    pub fn take<T: SettingValue>(&mut self, def: &KeyDef) -> Option<T> {
        let (text, line) = match self.texts.get(def.key) {
            Some((text, line)) => (text.as_str(), Some(*line)),
            None => (def.default, None),
        };
        let checked = T::parse(text).and_then(|value| within_range(def, value));
        match checked {
            Ok(value) => Some(value),
            Err(why) => {
                let shown = if def.secret { REDACTED } else { text };
                let message = format!("\"{shown}\": {why}");
                self.problems.push(Problem { file: self.path.clone(), line, key: Some(def.key.to_string()), message });
                None
            }
        }
    }

    /// The line on which `key` is set in this file, if it is.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.texts.get(key).map(|(_, line)| *line)
    }

    /// Records a problem about `key` at the line that sets it.
    pub fn problem(&mut self, key: &str, message: String) {
        let line = self.line_of(key);
        self.problems.push(Problem { file: self.path.clone(), line, key: Some(key.to_string()), message });
    }

    /// Records a warning about `key` at the line that sets it.
    pub fn warning(&mut self, key: &str, message: String) {
        let line = self.line_of(key);
        self.warnings.push(Problem { file: self.path.clone(), line, key: Some(key.to_string()), message });
    }
}

fn table_of(scope: Scope) -> &'static [KeyDef] {
    match scope {
        Scope::Server => SERVER_KEYS,
        Scope::App => APP_KEYS,
    }
}

fn within_range<T: SettingValue>(def: &KeyDef, value: T) -> Result<T, String> {
    match (def.range, value.magnitude()) {
        (Some((min, max)), Some(n)) if n < min || n > max => {
            Err(format!("expected {} from {min} to {max}", def.expected))
        }
        _ => Ok(value),
    }
}

fn misplaced_or_unknown(name: &str, scope: Scope) -> String {
    let (other, where_it_goes) = match scope {
        Scope::Server => (APP_KEYS, "an application setting: it belongs in apps/<App>.properties"),
        Scope::App => (SERVER_KEYS, "a server setting: it belongs in server.properties"),
    };
    if other.iter().any(|def| def.answers_to(name)) {
        return format!("is {where_it_goes}; ignored here");
    }
    match closest_key(name) {
        Some(near) => format!("unknown setting, ignored (did you mean {near}?)"),
        None => "unknown setting, ignored".to_string(),
    }
}

/// The known key nearest to `name` in spelling, when it is near enough to be a typo.
fn closest_key(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let all =
        SERVER_KEYS.iter().chain(APP_KEYS).flat_map(|def| std::iter::once(def.key).chain(def.aliases.iter().copied()));
    let (distance, key) = all.map(|key| (edit_distance(&lower, &key.to_ascii_lowercase()), key)).min()?;
    (distance <= (name.len() / 4).max(2)).then_some(key)
}

/// Levenshtein distance between two strings, by chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// Reads a whole file as UTF-8 through the atomic writer's loader: a torn file gives way to its
/// last good copy, a hand-edited one is read with a warning. A problem names the line of the
/// first bad byte.
pub fn read_text(path: &Path, problems: &mut Vec<Problem>, warnings: &mut Vec<Problem>) -> Option<String> {
    let (dir, name) = (path.parent().unwrap_or(Path::new(".")), path.file_name()?.to_string_lossy());
    let loaded = AtomicWriter::with_fs(dir, RealFs, Remount::never()).load(&name, &|_| true);
    let file = match loaded {
        Ok(Some(file)) => file,
        Ok(None) => {
            let message = "cannot read: the file is empty or torn, and no last good copy exists".to_string();
            problems.push(Problem { file: path.to_path_buf(), line: None, key: None, message });
            return None;
        }
        Err(e) => {
            problems.push(Problem {
                file: path.to_path_buf(),
                line: None,
                key: None,
                message: format!("cannot read: {e}"),
            });
            return None;
        }
    };
    let note = match file.provenance {
        Provenance::EditedByHand => {
            Some("edited by hand since rampart wrote it; loaded as written, and kept as the last good copy")
        }
        Provenance::LastGoodCopy => {
            Some("torn (empty or NUL-filled, as a power cut leaves it); loaded its last good copy instead")
        }
        Provenance::Verified | Provenance::Unframed => None,
    };
    if let Some(note) = note {
        warnings.push(Problem { file: path.to_path_buf(), line: None, key: None, message: note.to_string() });
    }
    match String::from_utf8(file.bytes) {
        Ok(text) => Some(text),
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = 1 + valid.iter().filter(|b| **b == b'\n').count();
            problems.push(Problem::at(path, line, None, "not valid UTF-8 text".to_string()));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_a_suggestion() {
        assert_eq!(closest_key("hashControlPublishEnable"), Some("hashControlPublishEnabled"));
        assert_eq!(closest_key("timetokenperiod"), Some("timeTokenPeriod"));
        assert_eq!(closest_key("rtmp.prot"), Some("rtmp.port"));
        assert_eq!(closest_key("completelyUnrelatedThing"), None);
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
