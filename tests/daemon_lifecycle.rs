//! The daemon starts on its settings, says where clients point, serves its listeners, and stops
//! cleanly on SIGTERM and SIGINT; a bad configuration stops the start with file, line and key.

mod common;

use common::{ConfigDir, Daemon, PATIENCE, rampart};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::TcpStream;

fn stops_cleanly_on(signal: Signal) {
    let config = ConfigDir::loopback("");
    let mut daemon = Daemon::start(&["--config", config.path().to_str().unwrap()]);
    let (rtmp, http) = (daemon.listening("RTMP"), daemon.listening("HTTP"));
    for addr in [rtmp, http] {
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
        TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr} is not listening: {e}"));
    }
    assert!(config.file("data").is_dir(), "data directory made at start");

    kill(Pid::from_raw(daemon.child.id() as i32), signal).expect("signal");
    let status = daemon.child.wait().expect("wait");
    assert!(status.success(), "exit status {status}");
    let log = daemon.rest();
    assert!(log.iter().any(|l| l.ends_with("shutting down")), "{log:?}");
}

#[test]
fn stops_cleanly_on_sigterm() {
    stops_cleanly_on(Signal::SIGTERM);
}

#[test]
fn stops_cleanly_on_sigint() {
    stops_cleanly_on(Signal::SIGINT);
}

#[test]
fn rtmps_and_https_listen_when_enabled() {
    let config = ConfigDir::loopback("rtmpsEnabled=true\nrtmps.port=0\nsslEnabled=true\nhttps.port=0\n");
    let mut daemon = Daemon::start(&["--config", config.path().to_str().unwrap()]);
    for protocol in ["RTMPS", "HTTPS"] {
        let addr = daemon.listening(protocol);
        TcpStream::connect(addr).unwrap_or_else(|e| panic!("{protocol} {addr}: {e}"));
    }
}

#[test]
fn a_bad_setting_stops_the_start_with_file_line_and_key() {
    let config = ConfigDir::loopback("").app("LiveApp", "ipFilterEnabled=true\ntimeTokenPeriod=0\n");
    let out = rampart().args(["--config", config.path().to_str().unwrap()]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "error: {}: timeTokenPeriod: \"0\": expected a whole number from 10 to 600",
        config.file("apps/LiveApp.properties:2").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
}

#[test]
fn a_taken_port_names_its_settings() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = ConfigDir::loopback(&format!("rtmp.port={port}\n"));
    let out = rampart().args(["--config", config.path().to_str().unwrap()]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot listen on 127.0.0.1:{port} (set by rtmp.host, rtmp.port)")), "{stderr}");
}

#[test]
fn check_config_prints_effective_settings_with_secrets_redacted() {
    let secret = "very-secret-stream-key-0123456789abcdef";
    let config =
        ConfigDir::new().app("LiveApp", &format!("publishJwtControlEnabled=true\njwtStreamSecretKey={secret}\n"));
    let out = rampart().args(["check-config", config.path().to_str().unwrap()]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("publishJwtControlEnabled=true\n"), "{stdout}");
    assert!(stdout.contains("jwtStreamSecretKey=***\n"), "{stdout}");
    assert!(stdout.contains("tokenHashSecret=\n"), "unset secrets show empty: {stdout}");
    let everything = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!everything.contains(secret), "secret leaked: {everything}");

    let short = "short-secret-value";
    let config = ConfigDir::new().app("LiveApp", &format!("playJwtControlEnabled=true\njwtStreamSecretKey={short}\n"));
    let out = rampart().args(["check-config", config.path().to_str().unwrap()]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("jwtStreamSecretKey: \"***\": must be at least 32 characters"), "{stderr}");
    assert!(!stderr.contains(short), "secret leaked: {stderr}");
}

#[test]
fn print_defaults_is_a_loadable_configuration() {
    let out = rampart().args(["print-defaults", "server"]).output().expect("run");
    assert!(out.status.success());
    let config = ConfigDir::new().server(&String::from_utf8_lossy(&out.stdout));
    let check = rampart().args(["check-config", config.path().to_str().unwrap()]).output().expect("run");
    assert!(check.status.success() && check.stderr.is_empty(), "{}", String::from_utf8_lossy(&check.stderr));
}

#[test]
fn temporary_files_an_interrupted_write_left_are_removed_at_start() {
    let config = ConfigDir::loopback("").app("LiveApp", "");
    std::fs::write(config.file(".server.properties.tmp"), "logLevel=DEB").unwrap();
    std::fs::write(config.file("apps/.LiveApp.properties.tmp"), "").unwrap();
    let mut daemon = Daemon::start(&["--config", config.path().to_str().unwrap()]);
    daemon.wait_for("removed 1 temporary file(s) an interrupted write left in", PATIENCE);
    daemon.wait_for("RTMP  listening on", PATIENCE);
    assert!(!config.file(".server.properties.tmp").exists() && !config.file("apps/.LiveApp.properties.tmp").exists());
}
