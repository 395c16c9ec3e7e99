//! The README's settings tables are the keys table of `config/keys.rs`, word for word.
//! After changing a setting, `RAMPART_BLESS=1 cargo test --test readme_settings_table` rewrites them.

use rampart::config::KeyDef;
use rampart::config::keys::{APP_KEYS, SERVER_KEYS};

const BEGIN: &str = "<!-- settings-table:begin (generated from src/config/keys.rs) -->\n";
const END: &str = "<!-- settings-table:end -->";

fn table(title: &str, defs: &[KeyDef]) -> String {
    let mut out = format!("\n{title}\n\n| key | value | default | what it does |\n| --- | --- | --- | --- |\n");
    for def in defs {
        let mut key = format!("`{}`", def.key);
        for alias in def.aliases {
            key.push_str(&format!(" (or `{alias}`)"));
        }
        let value = match def.range {
            Some((min, max)) => format!("{}, {min} to {max}", def.expected),
            None => def.expected.to_string(),
        };
        let default = if def.default.is_empty() { "(empty)".to_string() } else { format!("`{}`", def.default) };
        let restart = if def.restart { " Needs a restart." } else { "" };
        out.push_str(&format!("| {key} | {value} | {default} | {}{restart} |\n", def.doc.replace('|', "\\|")));
    }
    out
}

#[test]
fn readme_lists_every_setting_with_its_default() {
    let generated = format!(
        "{}{}\n",
        table("**`server.properties`** (the whole box)", SERVER_KEYS),
        table("**`apps/<App>.properties`** (one file per application)", APP_KEYS)
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let start = readme.find(BEGIN).expect("begin marker") + BEGIN.len();
    let end = readme.find(END).expect("end marker");
    if std::env::var_os("RAMPART_BLESS").is_some() {
        std::fs::write(path, format!("{}{generated}{}", &readme[..start], &readme[end..])).expect("write README.md");
        return;
    }
    assert!(
        readme[start..end] == generated,
        "README settings tables are stale: run RAMPART_BLESS=1 cargo test --test readme_settings_table"
    );
}
