//! The command line: arguments, and the commands that answer without starting the daemon
//! (`check-config`, `print-defaults`).

use crate::config::{self, DEFAULT_APP, Invalid, SecretStatus, Settings, keys::APP_KEYS, keys::SERVER_KEYS};
use crate::secrets::keyring::Mint;
use crate::secrets::{self, Keyring};
use crate::storage::fs::RealFs;
use std::ffi::OsString;
use std::path::PathBuf;

/// How to call rampart.
pub const USAGE: &str = "\
usage: rampart [--config DIR] [--data DIR]   run the daemon (no --config: embedded defaults)
       rampart check-config [DIR]            check a configuration and print its effective settings
       rampart print-defaults [server|app]   print a configuration that loads to the defaults
       rampart --help | --version";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the daemon with the configuration in `config` (embedded defaults when `None`).
    Run {
        /// The configuration directory.
        config: Option<PathBuf>,
        /// A data directory that replaces the `data.dir` setting.
        data: Option<PathBuf>,
    },
    /// Check a configuration directory (the embedded defaults when `None`).
    CheckConfig(Option<PathBuf>),
    /// Print the default settings: the server file, the application file, or both.
    PrintDefaults(Defaults),
    /// Print the usage.
    Help,
    /// Print the version.
    Version,
}

/// Which defaults `print-defaults` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defaults {
    /// `server.properties`.
    Server,
    /// `apps/<App>.properties`.
    App,
    /// Both, each under a comment naming its file.
    Both,
}

/// Reads the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut args = args.into_iter().map(|a| a.into_string().map_err(|a| format!("argument is not UTF-8: {a:?}")));
    let Some(first) = args.next().transpose()? else {
        return Ok(Command::Run { config: None, data: None });
    };
    let rest: Vec<String> = args.collect::<Result<_, _>>()?;
    match first.as_str() {
        "-h" | "--help" | "help" => no_more(&rest, Command::Help),
        "-V" | "--version" => no_more(&rest, Command::Version),
        "check-config" => match rest.as_slice() {
            [] => Ok(Command::CheckConfig(None)),
            [dir] => Ok(Command::CheckConfig(Some(PathBuf::from(dir)))),
            _ => Err("check-config takes at most one directory".into()),
        },
        "print-defaults" => match rest.as_slice() {
            [] => Ok(Command::PrintDefaults(Defaults::Both)),
            [which] if which == "server" => Ok(Command::PrintDefaults(Defaults::Server)),
            [which] if which == "app" => Ok(Command::PrintDefaults(Defaults::App)),
            _ => Err("print-defaults takes `server`, `app` or nothing".into()),
        },
        _ => parse_run(std::iter::once(first).chain(rest)),
    }
}

fn no_more(rest: &[String], command: Command) -> Result<Command, String> {
    match rest.first() {
        None => Ok(command),
        Some(extra) => Err(format!("unexpected argument {extra:?}")),
    }
}

fn parse_run(args: impl Iterator<Item = String>) -> Result<Command, String> {
    let (mut config, mut data) = (None, None);
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (arg, None),
        };
        let slot = match flag.as_str() {
            "--config" => &mut config,
            "--data" => &mut data,
            _ => return Err(format!("unknown argument {flag:?}")),
        };
        let value = inline.or_else(|| args.next()).filter(|v| !v.is_empty());
        *slot = Some(PathBuf::from(value.ok_or_else(|| format!("{flag} needs a directory"))?));
    }
    Ok(Command::Run { config, data })
}

/// The text `print-defaults` prints.
pub fn defaults_text(which: Defaults) -> String {
    let server = format!(
        "# rampart server settings (server.properties): every key at its default\n{}",
        config::to_properties(&render_defaults(SERVER_KEYS), true)
    );
    let app = format!(
        "# rampart application settings (apps/<App>.properties): every key at its default\n{}",
        config::to_properties(&render_defaults(APP_KEYS), true)
    );
    match which {
        Defaults::Server => server,
        Defaults::App => app,
        Defaults::Both => {
            format!("# ==> server.properties <==\n{server}\n# ==> apps/{DEFAULT_APP}.properties <==\n{app}")
        }
    }
}

fn render_defaults(table: &'static [config::KeyDef]) -> Vec<(&'static config::KeyDef, String)> {
    table.iter().map(|def| (def, def.default.to_string())).collect()
}

/// Runs `check-config`: the effective settings on standard output, problems on standard error.
/// Returns whether the configuration is valid (every secret that is sealed opens).
pub fn check_config(dir: Option<&std::path::Path>) -> bool {
    match config::load(dir) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                eprintln!("warning: {warning}");
            }
            let settings = &loaded.settings;
            println!("# server.properties\n{}", config::to_properties(&settings.server.rendered(), false));
            for (name, app) in &settings.apps {
                println!("# apps/{name}.properties\n{}", config::to_properties(&app.rendered(), false));
            }
            check_secrets(loaded.settings)
        }
        Err(invalid) => {
            report_invalid(&invalid);
            false
        }
    }
}

/// Opens the box's keyring read-only (no data key is made) and says what seals it (a comment on
/// standard output) and each data key that does not open (an error); then opens the sealed
/// secrets with it and reports each that does not open (an error) and each written in clear,
/// which the next start seals (a warning). Returns whether every data key and sealed secret opens.
fn check_secrets(mut settings: Settings) -> bool {
    let server = &settings.server;
    let (choice, device, pcrs) = (server.secrets_store, &server.secrets_tpm_device, server.secrets_pcr_policy.clone());
    let store = secrets::store_for(choice, device, pcrs, &RealFs, &server.data_dir);
    let keyring = Keyring::load(store.as_ref(), &RealFs, &server.data_dir, Mint::Never);
    let status = keyring.status();
    let fresh = !status.ready && status.problems.is_empty();
    let made = if fresh { " (no data key yet: the first start makes one)" } else { "" };
    println!("# secrets: sealed by {}{made}", status.store);
    let mut valid = true;
    for problem in &status.problems {
        eprintln!("error: secrets: {problem}");
        valid = false;
    }
    settings.open_secrets(&keyring);
    for config::FileSecrets { place, secrets, .. } in settings.secrets() {
        for (def, secret) in secrets {
            let key = def.key;
            match secret.status() {
                SecretStatus::Clear => eprintln!("warning: {place}: {key}: written in clear: the next start seals it"),
                SecretStatus::Stale => {
                    eprintln!("warning: {place}: {key}: sealed under an older data key: the next start seals it again")
                }
                SecretStatus::Unopenable => {
                    let why = secret.unopenable().unwrap_or_default();
                    eprintln!("error: {place}: {key}: cannot be opened ({why}): what needs it refuses");
                    valid = false;
                }
                SecretStatus::Unset | SecretStatus::Sealed => {}
            }
        }
    }
    valid
}

/// Prints every problem and warning of a configuration that cannot be used.
pub fn report_invalid(invalid: &Invalid) {
    for warning in &invalid.warnings {
        eprintln!("warning: {warning}");
    }
    for problem in &invalid.problems {
        eprintln!("error: {problem}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<Command, String> {
        parse(words.iter().map(OsString::from))
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_words(&[]), Ok(Command::Run { config: None, data: None }));
        assert_eq!(
            parse_words(&["--config", "/etc/rampart", "--data=/var/lib/rampart"]),
            Ok(Command::Run { config: Some("/etc/rampart".into()), data: Some("/var/lib/rampart".into()) })
        );
        assert_eq!(
            parse_words(&["check-config", "/etc/rampart"]),
            Ok(Command::CheckConfig(Some("/etc/rampart".into())))
        );
        assert_eq!(parse_words(&["print-defaults", "app"]), Ok(Command::PrintDefaults(Defaults::App)));
        assert_eq!(parse_words(&["--help"]), Ok(Command::Help));
        assert_eq!(parse_words(&["--config"]), Err("--config needs a directory".into()));
        assert_eq!(parse_words(&["--port", "1"]), Err("unknown argument \"--port\"".into()));
        assert_eq!(
            parse_words(&["print-defaults", "all"]),
            Err("print-defaults takes `server`, `app` or nothing".into())
        );
    }
}
