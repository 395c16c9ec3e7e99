//! A box whose TPM (swtpm here) seals its secrets: a hand-written hash secret and stream JWT key,
//! registered subscribers' TOTP keys and the device certificate keep working across a restart
//! of the daemon and of the TPM on the same state, and none of them is on disk in clear.

mod common;

use common::ConfigDir;
use common::daemon::{InProcess, Reader, publish};
use common::leaks::{files_holding, forms};
use common::rest::Rest;
use common::sealed::{hash_query, totp_code};
use common::security::{STREAM_KEY, stream_jwt};
use common::swtpm::Swtpm;
use common::tls::served_fingerprint;
use rampart::clock::{Clock, SystemClock};
use rampart::security::Action::{Play, Publish};
use rampart::security::totp;

const HASH_SECRET: &str = "hash-secret-sealed-by-the-tpm-5d1c";
const SUBSCRIBERS: [(&str, &str); 2] =
    [("cam", "JBSWY3DPEHPK3PXPJBSWY3DP"), ("cam2", "KRUGS4ZANFZSAYJAONSWG4TFOQQGWZLZ")];

/// Every form of every secret of the box.
fn secrets() -> Vec<Vec<u8>> {
    let mut all = forms(HASH_SECRET.as_bytes());
    all.extend(forms(STREAM_KEY.as_bytes()));
    for (_, b32) in SUBSCRIBERS {
        all.push(b32.as_bytes().to_vec());
        all.extend(forms(&totp::decode_base32(b32).unwrap()));
    }
    all
}

/// Publishes `stream` with a hash token and `subscriber`'s TOTP code, plays it with a stream JWT,
/// and returns the fingerprint of the certificate RTMPS serves.
fn gated_publish_and_play_work(daemon: &InProcess, stream: &str, subscriber: usize) -> Vec<u8> {
    let (id, b32) = SUBSCRIBERS[subscriber];
    let query =
        format!("{}&subscriberId={id}&subscriberCode={}", hash_query(stream, Publish, HASH_SECRET), totp_code(b32));
    let mut publisher = publish(&daemon.url(&format!("{stream}?{query}")), 120);
    daemon.wait_live(stream, 0);
    let jwt = stream_jwt(stream, Play, SystemClock.unix_secs() + 3600);
    Reader::start(&daemon.url(&format!("{stream}?jwt={jwt}")), 120, &[]).wait_frames(10);
    publisher.0.kill().unwrap();
    served_fingerprint(daemon.addr("RTMPS"), &daemon.config.file("data/device-cert.pem"))
}

#[test]
fn sealed_secrets_open_again_after_the_daemon_and_the_tpm_restart() {
    let mut tpm = Swtpm::fresh();
    let server =
        |device: &str| format!("rtmpsEnabled=true\nrtmps.port=0\nsecrets.store=tpm\nsecrets.tpmDevice={device}\n");
    let app = format!(
        "hashControlPublishEnabled=true\ntokenHashSecret={HASH_SECRET}\nenableTimeTokenForPublish=true\n\
         playJwtControlEnabled=true\njwtStreamSecretKey={STREAM_KEY}\n"
    );
    let config = ConfigDir::loopback(&server(&tpm.device())).app("LiveApp", &app);
    let daemon = InProcess::start_in(config);
    let status = daemon.services.keyring.status().clone();
    assert!(status.ready && status.hardware && status.problems.is_empty(), "{status:?}");
    assert!(status.store.contains("TPM 2.0 at swtpm:127.0.0.1"), "{status:?}");
    let api = Rest::new(daemon.addr("HTTP"));
    for (id, b32) in SUBSCRIBERS {
        let body = format!(r#"{{"subscriberId":"{id}","b32Secret":"{b32}","type":"publish"}}"#);
        let added = api.post("/LiveApp/rest/v2/broadcasts/s1/subscribers", &body);
        assert_eq!(added.status, 200, "{}", added.body);
        let added = api.post("/LiveApp/rest/v2/broadcasts/s2/subscribers", &body);
        assert_eq!(added.status, 200, "{}", added.body);
    }
    let certificate = gated_publish_and_play_work(&daemon, "s1", 0);
    assert_eq!(files_holding(daemon.config.path(), &secrets()), Vec::new(), "secrets in clear");

    let config = daemon.stop();
    tpm.restart();
    let file = config.file("server.properties");
    let text = std::fs::read_to_string(&file).unwrap();
    let line = text.lines().find(|l| l.starts_with("secrets.tpmDevice=")).unwrap().to_string();
    std::fs::write(&file, text.replace(&line, &format!("secrets.tpmDevice={}", tpm.device()))).unwrap();

    let daemon = InProcess::start_in(config);
    let status = daemon.services.keyring.status().clone();
    assert!(status.ready && status.problems.is_empty(), "the same TPM opens the data key again: {status:?}");
    assert_eq!(daemon.services.settings.now().unopenable(), Vec::new());
    assert_eq!(gated_publish_and_play_work(&daemon, "s2", 1), certificate, "the same device certificate");
    assert_eq!(files_holding(daemon.config.path(), &secrets()), Vec::new(), "secrets in clear after the restart");
}
