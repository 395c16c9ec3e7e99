//! A second publisher of a live stream is refused (the stream is in use), and that refusal used
//! to burn its one-time token and its TOTP step: the decision consumed them before the hub's
//! publisher slot was known to be free. Now the slot is reserved first and the credentials are
//! consumed only once it is held, so the same token and code publish once the stream is free.

mod common;

use common::daemon::{InProcess, publish};
use common::security::totp_code_now;
use rampart::security::Action::Publish;

const APP: &str = "publishTokenControlEnabled=true\nenableTimeTokenForPublish=true\n\
                   timeTokenSecretForPublish=totp-secret\ntimeTokenPeriod=600";

#[test]
fn a_second_publisher_refused_as_in_use_keeps_its_token_and_code() {
    let daemon = InProcess::start("", APP);
    let first = daemon.one_time_token("first", "cam1", Publish);
    let second = daemon.one_time_token("second", "cam1", Publish);
    let code = |subscriber| totp_code_now("totp-secret", subscriber, "cam1", Publish, 600);
    let first_url = daemon.url(&format!("cam1?token={first}&subscriberId=a&subscriberCode={}", code("a")));
    let second_url = daemon.url(&format!("cam1?token={second}&subscriberId=b&subscriberCode={}", code("b")));

    let live = publish(&first_url, 120);
    daemon.wait_live("cam1", 0);
    let mut refused = publish(&second_url, 5);
    assert!(!refused.wait(), "a second publisher of a live stream is refused");

    drop(live);
    daemon.wait_not_live("cam1");
    let _again = publish(&second_url, 120);
    daemon.wait_live("cam1", 0);
    daemon.wait_audit("cam1", "admitted by one-time token, TOTP");
    daemon.wait_audit("cam1", "not started: stream is already being published");
}
