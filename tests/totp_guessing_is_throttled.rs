//! TOTP codes have six digits, and the lockout counts refusals per address only: rotating
//! through 127/8 once gave 2,514 guesses a second with no lockout, a hit in about 200 s. Wrong
//! codes are now counted per subscriber, per stream and per application, whatever the address,
//! within each code window; the right code works again from the next window on.

mod common;

use common::security::Fixture;
use rampart::security::Action::Play;
use rampart::security::totp_throttle::{PER_STREAM, PER_SUBSCRIBER};
use rampart::security::{Decision, Reason};
use std::time::Duration;

const PERIOD: u64 = 60;

fn fixture() -> Fixture {
    Fixture::new(
        &format!("enableTimeTokenForPlay=true\ntimeTokenSecretForPlay=totp-secret\ntimeTokenPeriod={PERIOD}"),
        "server.lockoutFailures=10",
    )
}

/// Decides a play of `s1` by `subscriber` with `code` from the address numbered `n`.
fn try_code(f: &Fixture, subscriber: &str, code: &str, n: u32) -> Decision {
    let peer = format!("127.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
    f.decide(f.request(Play, "s1", &format!("subscriberId={subscriber}&subscriberCode={code}"), &peer))
}

fn wrong_code(f: &Fixture, subscriber: &str) -> String {
    let right: u32 = f.totp_code(subscriber, "s1", Play).parse().expect("digits");
    format!("{:06}", (right + 1) % 1_000_000)
}

/// Starts the fixture's clock at the beginning of a code window, so a run of guesses stays in it.
fn at_window_start(f: &Fixture) {
    f.clock.advance(Duration::from_secs(PERIOD - f.now() % PERIOD));
}

#[test]
fn one_subscriber_guessed_from_a_thousand_addresses_gets_few_tries_per_window() {
    let f = fixture();
    at_window_start(&f);
    let wrong = wrong_code(&f, "viewer");
    let (mut tried, mut throttled) = (0, 0);
    for n in 0..1000 {
        match try_code(&f, "viewer", &wrong, n) {
            Decision::Deny(Reason::TotpWrong) => tried += 1,
            Decision::Deny(Reason::TotpThrottled) => throttled += 1,
            other => panic!("guess {n}: {other:?}"),
        }
        f.clock.advance(Duration::from_millis(50));
    }
    assert!(tried <= PER_SUBSCRIBER, "{tried} codes tried in one window");
    assert_eq!(tried + throttled, 1000);
    assert!(f.audit_file().contains("TOTP tries throttled"), "refusals give their reason in the audit log");

    let right = f.totp_code("viewer", "s1", Play);
    let refused = try_code(&f, "viewer", &right, 5000);
    assert_eq!(refused, Decision::Deny(Reason::TotpThrottled), "the rest of this window");
    at_window_start(&f);
    let right = f.totp_code("viewer", "s1", Play);
    assert!(
        matches!(try_code(&f, "viewer", &right, 5001), Decision::Allow(_)),
        "the next window lets the right code in"
    );
}

#[test]
fn rotating_subscriber_ids_meets_the_streams_ceiling_and_the_right_code_waits_a_window() {
    let f = fixture();
    at_window_start(&f);
    let mut tried = 0;
    for n in 0..1000 {
        let subscriber = format!("guess{n}");
        if try_code(&f, &subscriber, &wrong_code(&f, &subscriber), n) == Decision::Deny(Reason::TotpWrong) {
            tried += 1;
        }
    }
    assert_eq!(tried, PER_STREAM, "codes tried for the stream in one window");
    let right = f.totp_code("viewer", "s1", Play);
    assert_eq!(try_code(&f, "viewer", &right, 5000), Decision::Deny(Reason::TotpThrottled));
    f.clock.advance(Duration::from_secs(PERIOD));
    let right = f.totp_code("viewer", "s1", Play);
    assert!(matches!(try_code(&f, "viewer", &right, 5001), Decision::Allow(_)));
}
