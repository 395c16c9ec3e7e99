//! A secret setting's value and what is known of it: unset; written in clear (by hand: in force
//! as written, to be sealed); or sealed (`sealed:v1:`), then opened or not openable, with why.
//! Reading a sealed value needs no key: [`SecretSetting::open`] opens it with the keyring (once
//! at start for every setting, and after each change).

use super::values::SettingValue;
use crate::secrets::envelope::is_sealed;
use crate::secrets::keyring::KeyringError;
use crate::secrets::{Keyring, REDACTED, Secret};
use std::fmt;

/// Why a sealed value read but not yet opened is not in force.
const NOT_OPENED: &str = "not opened: the settings were read without the keyring";

/// A secret setting: the text kept in the file and the secret in force, if any.
#[derive(Clone, PartialEq, Default)]
pub struct SecretSetting(State);

#[derive(Clone, PartialEq, Default)]
enum State {
    #[default]
    Unset,
    Clear(Secret<String>),
    Sealed {
        text: String,
        opening: Opening,
    },
}

#[derive(Clone, PartialEq)]
enum Opening {
    NotYet,
    Opened { clear: Secret<String>, stale: bool },
    Unopenable(String),
}

/// What a secret setting is, for the log, `check-config` and the API (never its value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretStatus {
    /// Not set.
    Unset,
    /// Written in clear: in force, and sealed at the next start.
    Clear,
    /// Sealed and opened.
    Sealed,
    /// Sealed under an older data key: in force, and sealed again at the next start.
    Stale,
    /// Sealed, and it does not open: what needs it refuses.
    Unopenable,
}

impl SecretSetting {
    /// A secret written in clear (empty: unset), as a file would give it.
    pub fn clear(text: &str) -> Self {
        match text.trim() {
            "" => SecretSetting(State::Unset),
            text => SecretSetting(State::Clear(Secret::new(text.to_string()))),
        }
    }

    /// Whether a value is set, opened or not (an unopenable secret is set: it is never treated
    /// as unset).
    pub fn is_set(&self) -> bool {
        !matches!(self.0, State::Unset)
    }

    /// The secret in force: `Ok(None)` when unset, `Err(why)` when it is sealed and does not open.
    pub fn in_force(&self) -> Result<Option<&Secret<String>>, &str> {
        match &self.0 {
            State::Unset => Ok(None),
            State::Clear(clear) | State::Sealed { opening: Opening::Opened { clear, .. }, .. } => Ok(Some(clear)),
            State::Sealed { opening: Opening::Unopenable(why), .. } => Err(why),
            State::Sealed { opening: Opening::NotYet, .. } => Err(NOT_OPENED),
        }
    }

    /// The secret when it is set and in force.
    pub fn opened(&self) -> Option<&Secret<String>> {
        self.in_force().ok().flatten()
    }

    /// Why the sealed value does not open, when it does not.
    pub fn unopenable(&self) -> Option<&str> {
        self.in_force().err()
    }

    /// What the setting is.
    pub fn status(&self) -> SecretStatus {
        match &self.0 {
            State::Unset => SecretStatus::Unset,
            State::Clear(_) => SecretStatus::Clear,
            State::Sealed { opening: Opening::Opened { stale: false, .. }, .. } => SecretStatus::Sealed,
            State::Sealed { opening: Opening::Opened { stale: true, .. }, .. } => SecretStatus::Stale,
            State::Sealed { .. } => SecretStatus::Unopenable,
        }
    }

    /// Whether the value should be written sealed (afresh): it is in clear, or sealed under an
    /// older key.
    pub fn needs_sealing(&self) -> bool {
        matches!(self.status(), SecretStatus::Clear | SecretStatus::Stale)
    }

    /// Opens a sealed value, sealed for `name`, with `keyring`; anything else is left as it is.
    pub fn open(&mut self, name: &str, keyring: &Keyring) {
        if let State::Sealed { text, opening } = &mut self.0 {
            *opening = match keyring.open(name, text) {
                Ok(opened) => match String::from_utf8(opened.clear.to_vec()) {
                    Ok(clear) => Opening::Opened { clear: Secret::new(clear), stale: opened.stale },
                    Err(_) => Opening::Unopenable("the opened value is not UTF-8 text".into()),
                },
                Err(e) => Opening::Unopenable(e.to_string()),
            };
        }
    }

    /// The secret in force sealed afresh for `name`: the text to write in its place. `None` when
    /// there is nothing to seal (unset, or unopenable).
    pub fn seal(&self, name: &str, keyring: &Keyring) -> Option<Result<String, KeyringError>> {
        let clear = self.opened()?;
        Some(keyring.seal(name, clear.expose().as_bytes()))
    }

    /// The same secret, now written as `sealed` (which [`SecretSetting::seal`] made).
    pub fn sealed_as(&mut self, sealed: String) {
        if let Some(clear) = self.opened().cloned() {
            self.0 = State::Sealed { text: sealed, opening: Opening::Opened { clear, stale: false } };
        }
    }
}

impl fmt::Debug for SecretSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unopenable() {
            Some(why) => write!(f, "{:?}({why})", self.status()),
            None if self.is_set() => write!(f, "{:?}({REDACTED})", self.status()),
            None => f.write_str("Unset"),
        }
    }
}

impl SettingValue for SecretSetting {
    const EXPECTED: &'static str = "a secret (empty: unset)";
    const SECRET: bool = true;
    fn parse(text: &str) -> Result<Self, String> {
        Ok(match text.trim() {
            sealed if is_sealed(sealed) => {
                SecretSetting(State::Sealed { text: sealed.to_string(), opening: Opening::NotYet })
            }
            clear => SecretSetting::clear(clear),
        })
    }
    fn render(&self) -> String {
        if self.is_set() { REDACTED.to_string() } else { String::new() }
    }
    fn as_secret(&self) -> Option<&SecretSetting> {
        Some(self)
    }
    fn as_secret_mut(&mut self) -> Option<&mut SecretSetting> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_needs_no_key_and_a_sealed_value_is_not_in_force_until_opened() {
        assert_eq!(SecretSetting::parse("  ").unwrap().status(), SecretStatus::Unset);
        let clear = SecretSetting::parse(" hunter2 ").unwrap();
        assert_eq!(clear.status(), SecretStatus::Clear);
        assert_eq!(clear.opened().map(|s| s.expose().as_str()), Some("hunter2"));
        assert!(clear.needs_sealing());

        let keyring = Keyring::ephemeral();
        let sealed_text = keyring.seal("tokenHashSecret", b"hunter2").unwrap();
        let mut sealed = SecretSetting::parse(&sealed_text).unwrap();
        assert!(sealed.is_set());
        assert_eq!(sealed.in_force(), Err(NOT_OPENED), "fail closed before the open pass");
        sealed.open("tokenHashSecret", &keyring);
        assert_eq!(sealed.status(), SecretStatus::Sealed);
        assert_eq!(sealed.opened().map(|s| s.expose().as_str()), Some("hunter2"));
        assert!(!sealed.needs_sealing());
        assert_eq!(sealed.render(), "***");
    }

    #[test]
    fn a_value_that_does_not_open_says_why_and_stays_set() {
        let keyring = Keyring::ephemeral();
        let sealed_text = keyring.seal("tokenHashSecret", b"hunter2").unwrap();
        let mut moved = SecretSetting::parse(&sealed_text).unwrap();
        moved.open("jwtSecretKey", &keyring);
        assert_eq!(moved.status(), SecretStatus::Unopenable);
        assert!(moved.unopenable().unwrap().contains("does not open"), "{moved:?}");
        assert!(moved.is_set() && moved.opened().is_none() && moved.seal("jwtSecretKey", &keyring).is_none());

        let mut foreign = SecretSetting::parse(&sealed_text).unwrap();
        foreign.open("tokenHashSecret", &Keyring::ephemeral());
        assert_eq!(foreign.status(), SecretStatus::Unopenable);
        let mut truncated = SecretSetting::parse("sealed:v1:AAAA").unwrap();
        truncated.open("tokenHashSecret", &keyring);
        assert!(truncated.unopenable().unwrap().contains("malformed"), "{truncated:?}");
    }

    #[test]
    fn a_clear_value_seals_and_then_opens() {
        let keyring = Keyring::ephemeral();
        let mut value = SecretSetting::clear("hunter2");
        let sealed = value.seal("k", &keyring).unwrap().unwrap();
        assert!(is_sealed(&sealed) && !sealed.contains("hunter2"));
        value.sealed_as(sealed.clone());
        assert_eq!(value.status(), SecretStatus::Sealed);
        let mut reread = SecretSetting::parse(&sealed).unwrap();
        reread.open("k", &keyring);
        assert_eq!(reread, value);
    }

    #[test]
    fn debug_never_shows_the_value() {
        let shown = format!("{:?}", SecretSetting::clear("hunter2"));
        assert_eq!(shown, "Clear(***)");
        assert_eq!(format!("{:?}", SecretSetting::default()), "Unset");
    }
}
