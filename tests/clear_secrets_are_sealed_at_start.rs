//! Secrets a user wrote in clear are sealed at start: the files are rewritten once through the
//! atomic writer (comments and key order kept) and no longer hold the values, one log line says
//! so per key without the value, and the mechanisms work before and after a restart (hash-token
//! publishes, and the server JWT that reads the security events).

mod common;

use common::leaks::{files_holding, forms};
use common::rest::Rest;
use common::sealed::{publish_with_hash, wait_event};
use common::security::jwt;
use common::{ConfigDir, Daemon};
use rampart::clock::{Clock, SystemClock};

const HASH_SECRET: &str = "hand-written-hash-secret-7f3a";
const SERVER_SECRET: &str = "hand-written-server-jwt-key-0123456789abcdef";

fn start(config: &ConfigDir) -> (Daemon, Rest, std::net::SocketAddr) {
    let mut daemon = Daemon::start(&["--config", config.path().to_str().unwrap()]);
    let rtmp = daemon.listening("RTMP");
    let http = daemon.listening("HTTP");
    let exp = SystemClock.unix_secs() + 3600;
    let server_jwt = jwt(SERVER_SECRET, serde_json::json!({ "exp": exp }));
    (daemon, Rest::new(http).with_header("ProxyAuthorization", &server_jwt), rtmp)
}

#[test]
fn clear_secrets_are_sealed_once_and_keep_working() {
    let config = ConfigDir::loopback(&format!(
        "# the server JWT guards the server API\nserver.jwtServerControlEnabled=true\n\
         server.jwtServerSecretKey={SERVER_SECRET}\n# last line\nlogLevel=INFO\n"
    ))
    .app(
        "LiveApp",
        &format!(
            "# hash tokens for publishers\nhashControlPublishEnabled=true\n\n# the key, by hand\n\
             settings.tokenHashSecret = {HASH_SECRET}\ntimeTokenPeriod=60\n"
        ),
    );
    let (daemon, rest, rtmp) = start(&config);
    // The start logs before it listens: every line of it has been read by now.
    let said = |needle: &str| daemon.seen.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(said("apps/LiveApp.properties: tokenHashSecret was written in clear: sealed"), 1, "{:?}", daemon.seen);
    assert_eq!(said("server.properties: server.jwtServerSecretKey was written in clear: sealed"), 1);
    let first_log = daemon.seen.clone();

    let app_file = std::fs::read_to_string(config.file("apps/LiveApp.properties")).unwrap();
    let lines: Vec<&str> = app_file.lines().filter(|l| !l.starts_with("# rampart-file v1")).collect();
    assert_eq!(lines[0], "# hash tokens for publishers", "{app_file}");
    assert_eq!(lines[1], "hashControlPublishEnabled=true");
    assert_eq!(lines[3], "# the key, by hand");
    assert!(lines[4].starts_with("settings.tokenHashSecret=sealed:v1:"), "the key kept as written: {app_file}");
    assert_eq!(lines[5], "timeTokenPeriod=60");
    let server_file = std::fs::read_to_string(config.file("server.properties")).unwrap();
    assert!(server_file.contains("# the server JWT guards the server API\nserver.jwtServerControlEnabled=true\n"));
    assert!(server_file.contains("server.jwtServerSecretKey=sealed:v1:"), "{server_file}");
    assert!(server_file.contains("# last line\nlogLevel=INFO"), "{server_file}");
    for secret in [HASH_SECRET, SERVER_SECRET] {
        assert_eq!(files_holding(config.path(), &forms(secret.as_bytes())), Vec::new(), "{secret} in clear");
    }

    assert!(publish_with_hash(rtmp, "before", HASH_SECRET).wait());
    wait_event(&rest, "before", true, "admitted by hash token");
    let mut wrong = publish_with_hash(rtmp, "wrong", "another-secret");
    assert!(!wrong.wait());
    wait_event(&rest, "wrong", false, "hash token does not match");

    drop(daemon);
    let (mut daemon, rest, rtmp) = start(&config);
    assert!(publish_with_hash(rtmp, "after", HASH_SECRET).wait());
    wait_event(&rest, "after", true, "admitted by hash token");
    drop(rest);
    let _ =
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon.child.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let log = daemon.rest();
    assert!(!log.iter().any(|l| l.contains("written in clear")), "sealed once: {log:?}");
    assert_eq!(server_file, std::fs::read_to_string(config.file("server.properties")).unwrap(), "not rewritten again");
    for line in first_log.iter().chain(&log) {
        assert!(!line.contains(HASH_SECRET) && !line.contains(SERVER_SECRET), "{line}");
    }
}
