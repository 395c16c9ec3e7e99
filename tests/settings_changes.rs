//! Settings changed while the daemon runs: checked as a start would check them, written through
//! the atomic writer with the user's comments and key order kept, applied live without dropping
//! sessions, and still there after a restart. A change that fails changes nothing.

mod common;

use common::ConfigDir;
use common::daemon::{InProcess, Reader, publish};
use rampart::config::changes::{ConfigFiles, Target, apply};
use rampart::config::{self, Settings};

const HAND_WRITTEN: &str = "# Field box 17, edited by Ana\n\
    ipFilterEnabled = true\n\
    \n\
    # tokens for the stage camera\n\
    settings.publishTokenControlEnabled=false\n\
    timeTokenPeriod : 30\n";

fn pairs(values: &[(&str, &str)]) -> Vec<(String, String)> {
    values.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn loaded(dir: &ConfigDir) -> Settings {
    config::load(Some(dir.path())).unwrap_or_else(|e| panic!("{e}")).settings
}

#[test]
fn a_change_keeps_comments_and_order_and_loads_back() {
    let dir = ConfigDir::new().app("LiveApp", HAND_WRITTEN);
    let current = loaded(&dir);
    let values = pairs(&[
        ("publishTokenControlEnabled", "true"),
        ("timeTokenPeriod", "60"),
        ("allowedPublisherCIDR", "10.0.0.0/8"),
    ]);
    let applied = apply(&ConfigFiles::new(dir.path()), &current, &Target::App("LiveApp".into()), &values).unwrap();
    assert!(applied.restart_needed.is_empty(), "application settings apply live");

    let text = std::fs::read_to_string(dir.file("apps/LiveApp.properties")).unwrap();
    let body = text.split_once('\n').map(|(header, body)| {
        assert!(header.starts_with("# rampart-file v1 generation=1 "), "{header}");
        body
    });
    assert_eq!(
        body,
        Some(
            "# Field box 17, edited by Ana\nipFilterEnabled = true\n\n# tokens for the stage camera\n\
             settings.publishTokenControlEnabled=true\ntimeTokenPeriod=60\nallowedPublisherCIDR=10.0.0.0/8\n"
        )
    );
    let reloaded = loaded(&dir);
    assert_eq!(reloaded, applied.settings);
    assert!(reloaded.apps["LiveApp"].publish_token_control_enabled);
    assert_eq!(reloaded.apps["LiveApp"].time_token_period, 60);
}

#[test]
fn a_change_that_fails_its_checks_changes_nothing() {
    let dir = ConfigDir::new().app("LiveApp", HAND_WRITTEN).server("logLevel=INFO\n");
    let current = loaded(&dir);
    let before = std::fs::read(dir.file("apps/LiveApp.properties")).unwrap();
    let app = Target::App("LiveApp".into());

    let err = apply(&ConfigFiles::new(dir.path()), &current, &app, &pairs(&[("timeTokenPeriod", "5")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("LiveApp.properties:6: timeTokenPeriod: \"5\": expected a whole number from 10 to 600"),
        "{err}"
    );
    let err = apply(&ConfigFiles::new(dir.path()), &current, &app, &pairs(&[("hashControlPlayEnabled", "true")]))
        .unwrap_err()
        .to_string();
    assert!(err.ends_with("hashControlPlayEnabled: is true but tokenHashSecret is not set"), "{err}");
    let err =
        apply(&ConfigFiles::new(dir.path()), &current, &app, &pairs(&[("noSuchKey", "1")])).unwrap_err().to_string();
    assert!(err.ends_with("LiveApp.properties: noSuchKey: unknown setting"), "{err}");
    let err = apply(
        &ConfigFiles::new(dir.path()),
        &current,
        &Target::App("Nope".into()),
        &pairs(&[("ipFilterEnabled", "true")]),
    )
    .unwrap_err();
    assert!(err.to_string().ends_with("Nope.properties: no such application"), "{err}");

    assert_eq!(std::fs::read(dir.file("apps/LiveApp.properties")).unwrap(), before, "the file is untouched");
    assert_eq!(loaded(&dir), current);
}

#[test]
fn listener_changes_need_a_restart() {
    let dir = ConfigDir::new().server("logLevel=INFO\n");
    let current = loaded(&dir);
    let values = pairs(&[("rtmp.port", "1940"), ("logLevel", "WARN"), ("server.lockoutFailures", "5")]);
    let applied = apply(&ConfigFiles::new(dir.path()), &current, &Target::Server, &values).unwrap();
    assert_eq!(applied.restart_needed, vec!["rtmp.port"]);
}

#[test]
fn a_live_change_applies_at_once_keeps_sessions_and_survives_a_restart() {
    let daemon = InProcess::start("", "");
    let _publisher = publish(&daemon.url("s1"), 60);
    daemon.wait_live("s1", 0);
    let watching = Reader::start(&daemon.url("s1"), 60, &[]);
    watching.wait_frames(10);

    let change = pairs(&[("playTokenControlEnabled", "true")]);
    daemon.change_settings(Target::App("LiveApp".into()), change).unwrap();

    let mut newcomer = Reader::start(&daemon.url("s1"), 2, &[]);
    assert!(!newcomer.client.wait(), "a new player now needs a token");
    daemon.wait_audit("s1", "one-time token missing");
    let frames = watching.frames();
    watching.wait_frames(frames + 30);

    let daemon = daemon.restart();
    assert!(daemon.services.settings.now().apps["LiveApp"].play_token_control_enabled, "kept across a restart");
}
