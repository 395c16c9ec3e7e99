//! 12,000 refused WHEP offers from one address no longer erase the audit trail: they become a
//! few events with counts, the admin's account creation stays in `admin-audit.log` and in the
//! panel's events, and another address's earlier refusal stays in `audit.log`.

mod common;

use common::daemon::InProcess;
use common::rest::Rest;
use serde_json::Value;
use std::time::{Duration, Instant};

const FLOOD: u64 = 12_000;

/// Every event in the data directory's `name` and its rotated copies.
fn events(daemon: &InProcess, name: &str) -> Vec<Value> {
    daemon.services.pipeline.audit().sync();
    let data = daemon.config.file("data");
    let mut text = String::new();
    for n in (1..=100).rev() {
        text += &std::fs::read_to_string(data.join(format!("{name}.{n}"))).unwrap_or_default();
    }
    text += &std::fs::read_to_string(data.join(name)).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn from(events: &[Value], ip: &str) -> Vec<Value> {
    events.iter().filter(|e| e["peer_ip"] == ip).cloned().collect()
}

#[test]
fn a_flood_of_refusals_leaves_earlier_events_in_place() {
    let daemon = InProcess::start("", "playTokenControlEnabled=true\n");
    let addr = daemon.addr("HTTP");
    let mut panel = Rest::new(addr).setup_code(&daemon.setup_code());
    assert_eq!(panel.login("/rest/v2/users/initial", "admin@box", "correct horse battery").status, 200);
    let offer = |from: &str, stream: &str| {
        Rest::new(addr).from(from).post_as(&format!("/LiveApp/whep/{stream}"), "application/sdp", "v=0\r\n").status
    };
    assert_eq!(offer("127.0.0.2", "cam1"), 403);

    let started = Instant::now();
    for n in 0..FLOOD {
        assert_eq!(offer("127.0.0.3", &format!("s{}", n % 50)), 403);
    }
    eprintln!("{FLOOD} refused offers in {:?}", started.elapsed());

    let shown = panel.get("/rest/v2/security-events").json();
    let shown = shown.as_array().expect("a list of events");
    assert!(shown.iter().any(|e| e["reason"].as_str().is_some_and(|r| r.contains("admin account"))), "{shown:?}");
    assert!(shown.iter().any(|e| e["peer_ip"] == "127.0.0.2"), "the other address's refusal is shown");

    let admin = events(&daemon, "admin-audit.log");
    assert!(admin.iter().any(|e| e["reason"].as_str().is_some_and(|r| r.contains("admin account"))), "{admin:?}");
    let decisions = events(&daemon, "audit.log");
    assert_eq!(from(&decisions, "127.0.0.2").len(), 1, "the other address's refusal is in audit.log");

    // The counts of the flood's last minute are written once that minute ends.
    let deadline = Instant::now() + Duration::from_secs(150);
    let flood = loop {
        let flood = from(&events(&daemon, "audit.log"), "127.0.0.3");
        if flood.iter().map(|e| e["count"].as_u64().expect("count")).sum::<u64>() == FLOOD {
            break flood;
        }
        assert!(Instant::now() < deadline, "the flood is not counted in full: {flood:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("the flood is {} events in audit.log", flood.len());
    assert!(flood.len() <= 12, "the flood is folded into a few events: {flood:#?}");
    assert!(flood.iter().any(|e| e["count"].as_u64() > Some(1000)), "{flood:#?}");
    let shown = panel.get("/rest/v2/security-events?outcome=refused").json();
    let counted: u64 = shown
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["peer_ip"] == "127.0.0.3")
        .map(|e| e["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, FLOOD, "the panel shows the counts too");
}
