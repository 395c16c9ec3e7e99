//! Runs every check, admitting and refusing, while capturing the log, and searches the log,
//! the audit trail (memory and file) and the decisions' debug output for the credentials used.

mod common;

use common::security::{Fixture, STREAM_KEY, T0, stream_jwt};
use rampart::security::Action::{Play, Publish};
use std::sync::Mutex;

static CAPTURED: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        CAPTURED.lock().unwrap().push(format!("{} {}", record.level(), record.args()));
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture;

#[test]
fn no_credential_reaches_the_log_or_the_audit_trail() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let app = format!(
        "hashControlPublishEnabled=true\ntokenHashSecret=hash-secret-value\nplayTokenControlEnabled=true\n\
         enableTimeTokenForPublish=true\ntimeTokenSecretForPublish=totp-secret-value\n\
         publishJwtControlEnabled=true\nplayJwtControlEnabled=true\njwtStreamSecretKey={STREAM_KEY}"
    );
    let f = Fixture::new(&app, "server.lockoutFailures=3");
    let exp = T0 + 3600;
    let hash = f.hash("s1", Publish, exp);
    let code = f.totp_code("cam1", "s1", Publish);
    let wrong_code = f.totp_code("cam2", "s1", Publish);
    let jwt_publish = stream_jwt("s1", Publish, exp);
    let jwt_play = stream_jwt("s1", Play, exp);
    let token = f.one_time("one-time-token-value-1", "s1", Play, exp);
    let stale_token = "one-time-token-never-issued";

    let mut debug = Vec::new();
    let publish = format!("hash={hash}&expireDate={exp}&subscriberId=cam1&subscriberCode={code}&jwt={jwt_publish}");
    let queries = [
        (Publish, publish.clone()),
        (Publish, publish.clone()), // TOTP replay
        (
            Publish,
            format!("hash={hash}&expireDate={exp}&subscriberId=cam1&subscriberCode={wrong_code}&jwt={jwt_publish}"),
        ),
        (Publish, format!("hash={hash}x&expireDate={exp}")),
        (Play, format!("token={token}&jwt={jwt_play}")),
        (Play, format!("token={token}&jwt={jwt_play}")), // consumed
        (Play, format!("token={stale_token}&jwt={jwt_publish}")),
        (Play, format!("token={stale_token}")), // locked out by now
    ];
    for (action, query) in &queries {
        let request = f.request(*action, "s1", query, "10.0.0.1");
        debug.push(format!("{request:?}"));
        debug.push(format!("{:?}", f.decide(request)));
    }

    let events = serde_json::to_string(&f.pipeline.audit().recent()).unwrap();
    let log = CAPTURED.lock().unwrap().join("\n");
    let everything = [log.as_str(), events.as_str(), &f.audit_file(), &debug.join("\n")].join("\n");
    assert!(log.contains("refused publish rtmp LiveApp/s1 from 10.0.0.1: TOTP code already used"), "{log}");
    assert!(log.contains("locked out"), "{log}");

    let hash_unescaped = hash.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=");
    let credentials = [
        "hash-secret-value",
        "totp-secret-value",
        STREAM_KEY,
        &hash_unescaped,
        &jwt_publish,
        &jwt_play,
        &token,
        stale_token,
        &code,
        &wrong_code,
    ];
    for credential in credentials {
        assert!(
            !T0.to_string().contains(credential) && !exp.to_string().contains(credential),
            "pick other test values"
        );
        assert!(!everything.contains(credential), "{credential} leaked into:\n{everything}");
    }
}
