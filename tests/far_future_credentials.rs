//! A credential may carry any expiry: a hash token whose `expireDate` is near u64::MAX and a
//! stream JWT whose `exp` is 1e19 once aborted the whole daemon ("overflow when adding duration
//! to instant"), whatever `server.endSessionsWhenGrantEnds` said. Now they admit their session,
//! which simply never ends by expiry, and the daemon goes on serving everybody else.

mod common;

use common::daemon::{InProcess, Reader, publish};
use common::rest::Rest;
use common::security::{STREAM_KEY, stream_jwt};
use rampart::config::values::TokenHashFormat;
use rampart::secrets::Secret;
use rampart::security::Action::{Play, Publish};
use rampart::security::hash_token::HashTokens;

const FAR: [u64; 3] = [u64::MAX, u64::MAX - 1, 10_000_000_000_000_000_000];
const OFFER: &str = include_str!("vectors/chromium-156-whep-offer.sdp");

fn hash_query(hashes: &HashTokens, stream: &str, action: rampart::security::Action, exp: u64) -> String {
    let hash = hashes.make(stream, action, exp).replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    format!("hash={hash}&expireDate={exp}")
}

#[test]
fn hash_tokens_that_expire_after_the_end_of_time_admit_and_crash_nothing() {
    for end_sessions in [true, false] {
        let daemon = InProcess::start(
            &format!("server.endSessionsWhenGrantEnds={end_sessions}"),
            "hashControlPublishEnabled=true\nhashControlPlayEnabled=true\ntokenHashSecret=hash-secret",
        );
        let hashes = HashTokens::new(&Secret::new("hash-secret".into()), TokenHashFormat::HmacSha256);
        for (i, exp) in FAR.into_iter().enumerate() {
            let stream = format!("far{i}");
            let _publisher =
                publish(&daemon.url(&format!("{stream}?{}", hash_query(&hashes, &stream, Publish, exp))), 30);
            daemon.wait_live(&stream, 0);
            Reader::start(&daemon.url(&format!("{stream}?{}", hash_query(&hashes, &stream, Play, exp))), 2, &[])
                .wait_frames(30);
        }
    }
}

#[test]
fn stream_jwts_that_expire_after_the_end_of_time_admit_over_rtmp_and_whep() {
    let daemon = InProcess::start(
        "",
        &format!("publishJwtControlEnabled=true\nplayJwtControlEnabled=true\njwtStreamSecretKey={STREAM_KEY}"),
    );
    let rest = Rest::new(daemon.addr("HTTP"));
    for (i, exp) in FAR.into_iter().enumerate() {
        let stream = format!("far{i}");
        let _publisher = publish(&daemon.url(&format!("{stream}?jwt={}", stream_jwt(&stream, Publish, exp))), 60);
        daemon.wait_live(&stream, 0);
        Reader::start(&daemon.url(&format!("{stream}?jwt={}", stream_jwt(&stream, Play, exp))), 2, &[]).wait_frames(30);
        let path = format!("/LiveApp/whep/{stream}?jwt={}", stream_jwt(&stream, Play, exp));
        let answer = rest.post_as(&path, "application/sdp", OFFER);
        assert_eq!(answer.status, 201, "{}", answer.body);
        assert_eq!(rest.delete(answer.header("location").expect("a Location")).status, 200);
    }
}
