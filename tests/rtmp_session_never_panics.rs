//! Whatever a peer sends after the handshake, the chunk guard and rml_rtmp's server session
//! answer with an error or a result, never a panic (the release build aborts on panic, which
//! would take the whole box down). Random messages of every type, with random and mutated AMF0
//! bodies, are fed through the guard into a session, many thousands of times.

use rampart::rtmp::chunks::{ChunkGuard, GuardLimits, UnadmittedBudget, chunk_message};
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig, ServerSessionResult};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A plausible AMF0 command (`connect`, `publish`, ...) with random damage.
fn command(rng: &mut Rng) -> Vec<u8> {
    let names =
        ["connect", "createStream", "publish", "play", "releaseStream", "FCPublish", "deleteStream", "@setDataFrame"];
    let name = names[rng.below(names.len() as u64) as usize];
    let mut body = vec![0x02, 0, name.len() as u8];
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(&[0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]); // transaction id 1.0
    body.extend_from_slice(&[0x03, 0, 3, b'a', b'p', b'p', 0x02, 0, 7]);
    body.extend_from_slice(b"LiveApp");
    body.extend_from_slice(&[0, 0, 9, 0x02, 0, 2, b's', b'1']);
    for _ in 0..rng.below(4) {
        let at = rng.below(body.len() as u64 + 1) as usize;
        match (rng.below(3), body.get_mut(at)) {
            (0, Some(byte)) => *byte = rng.next() as u8,
            (1, _) => body.truncate(at),
            _ => body.insert(at, rng.next() as u8),
        }
    }
    body
}

#[test]
fn random_messages_never_panic_the_session() {
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let limits = GuardLimits { max_chunk_size: 65_536, max_message_size: 1 << 20, max_chunk_streams: 64 };
    let mut reached_the_session = 0;
    let mut refused_by_the_guard = 0;
    for _round in 0..3000 {
        let (mut session, _) = ServerSession::new(ServerSessionConfig::new()).expect("session");
        let mut guard = ChunkGuard::new(limits, UnadmittedBudget::new(0));
        guard.admit_publisher(); // the weakest guard, which lets media through
        for _ in 0..20 {
            let type_id = [1u8, 2, 3, 4, 5, 6, 8, 9, 15, 17, 18, 20, 22, rng.next() as u8][rng.below(14) as usize];
            let body: Vec<u8> = match type_id {
                20 | 18 => command(&mut rng),
                _ => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
            };
            let csid = 2 + rng.below(10) as u32;
            let wire = chunk_message(csid, type_id, rng.below(3) as u32, rng.next() as u32, &body, 128);
            if guard.scan(&wire).is_err() {
                refused_by_the_guard += 1;
                break; // the connection would be closed here
            }
            reached_the_session += 1;
            match session.handle_input(&wire) {
                Ok(results) => {
                    // Accept whatever is asked, as a permissive server would, to reach deeper states.
                    for result in results {
                        if let ServerSessionResult::RaisedEvent(event) = result {
                            let id = match event {
                                rml_rtmp::sessions::ServerSessionEvent::ConnectionRequested { request_id, .. }
                                | rml_rtmp::sessions::ServerSessionEvent::PublishStreamRequested {
                                    request_id, ..
                                }
                                | rml_rtmp::sessions::ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
                                    Some(request_id)
                                }
                                _ => None,
                            };
                            if let Some(id) = id {
                                let _ = session.accept_request(id);
                            }
                        }
                    }
                }
                Err(_) => break, // the connection would be closed here
            }
        }
    }
    assert!(reached_the_session > 3_000 && refused_by_the_guard > 100, "{reached_the_session} {refused_by_the_guard}");
}
