//! A subscriber's sealed TOTP key that no longer opens (altered on disk) refuses that
//! subscriber, with its reason in the audit log, and is listed by `Datastore::unopenable`; the
//! other subscribers keep working, and registering the subscriber again through the REST API
//! seals a new key and makes it work.

mod common;

use common::daemon::{InProcess, publish};
use common::rest::Rest;
use rampart::security::totp;
use std::time::{SystemTime, UNIX_EPOCH};

const API: &str = "/LiveApp/rest/v2";
const KEY_B32: &str = "JBSWY3DPEHPK3PXPJBSWY3DP";

fn code() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    totp::code_at(&totp::decode_base32(KEY_B32).unwrap(), now, 60)
}

fn register(api: &Rest, stream: &str, id: &str) {
    let body = format!(r#"{{"subscriberId":"{id}","b32Secret":"{KEY_B32}","type":"publish"}}"#);
    let added = api.post(&format!("{API}/broadcasts/{stream}/subscribers"), &body);
    assert_eq!(added.status, 200, "{}", added.body);
}

/// Alters one character of the sealed key that follows `"subscriber_id": "<id>"` in `text`.
fn alter_key_of(text: &str, id: &str) -> String {
    let subscriber = text.find(&format!("\"subscriber_id\": \"{id}\"")).expect("the subscriber is in the snapshot");
    let at = subscriber + text[subscriber..].find("sealed:v1:").expect("its key is sealed") + 20;
    let old = &text[at..at + 1];
    let new = if old == "A" { "B" } else { "A" };
    format!("{}{new}{}", &text[..at], &text[at + 1..])
}

#[test]
fn an_altered_key_refuses_its_subscriber_only_until_it_is_registered_again() {
    let daemon = InProcess::start("", "enableTimeTokenForPublish=true\n");
    let api = Rest::new(daemon.addr("HTTP"));
    register(&api, "s1", "cam1");
    register(&api, "s2", "cam2");
    common::block_on(daemon.services.stores["LiveApp"].compact()).unwrap();
    let config = daemon.stop();
    let snapshot = config.file("data/store-LiveApp.json");
    let text = std::fs::read_to_string(&snapshot).unwrap();
    std::fs::write(&snapshot, alter_key_of(&text, "cam2")).unwrap();

    let daemon = InProcess::start_in(config);
    let store = &daemon.services.stores["LiveApp"];
    let unopenable = store.unopenable();
    assert_eq!(unopenable.len(), 1, "{unopenable:?}");
    assert_eq!(unopenable[0].place, "the datastore of LiveApp");
    assert_eq!(unopenable[0].key, "TOTP key of subscriber cam2 of stream s2");
    assert!(unopenable[0].why.contains("does not open"), "{:?}", unopenable[0]);

    let mut refused = publish(&daemon.url(&format!("s2?subscriberId=cam2&subscriberCode={}", code())), 2);
    assert!(!refused.wait(), "the subscriber whose key does not open is refused");
    daemon.wait_audit("s2", "TOTP subscriber's key does not open");
    daemon.services.pipeline.audit().sync();
    let audit = std::fs::read_to_string(daemon.config.file("data/audit.log")).unwrap();
    assert!(audit.contains("TOTP subscriber's key does not open"), "{audit}");
    let api = Rest::new(daemon.addr("HTTP"));
    let totp = api.get(&format!("{API}/broadcasts/s2/subscribers/cam2/totp"));
    assert_eq!(totp.status, 503, "{}", totp.body);
    assert!(totp.body.contains("register it again"), "{}", totp.body);

    let _other = publish(&daemon.url(&format!("s1?subscriberId=cam1&subscriberCode={}", code())), 120);
    daemon.wait_live("s1", 0);

    register(&api, "s2", "cam2");
    assert_eq!(store.unopenable(), Vec::new(), "sealed afresh");
    let _fixed = publish(&daemon.url(&format!("s2?subscriberId=cam2&subscriberCode={}", code())), 120);
    daemon.wait_live("s2", 0);
}
