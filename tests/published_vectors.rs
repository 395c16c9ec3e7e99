//! Published test vectors, read from data files in tests/vectors: RFC 4231 (HMAC-SHA-256, the
//! MAC of hash tokens), RFC 6238 (TOTP with SHA1) and RFC 7515 A.1 (an HS256 JWS).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use rampart::security::jwt::{check_times, signature_only, verify_signature};
use rampart::security::{Reason, totp};
use ring::hmac;

fn vectors(name: &str) -> String {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// `name=value` fields of a vector file, in order.
fn fields(text: &str) -> Vec<(&str, &str)> {
    text.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split_once('=')).collect()
}

#[test]
fn rfc4231_hmac_sha256() {
    let text = vectors("rfc4231-hmac-sha256.txt");
    let fields = fields(&text);
    let cases: Vec<_> = fields.chunks(4).collect();
    assert_eq!(cases.len(), 7);
    for case in cases {
        let [("case", n), ("key", key), ("data", data), ("mac", mac)] = case else { panic!("bad case {case:?}") };
        let key = hmac::Key::new(hmac::HMAC_SHA256, &hex(key));
        let computed = hmac::sign(&key, &hex(data));
        let expected = hex(mac);
        assert_eq!(&computed.as_ref()[..expected.len()], expected.as_slice(), "case {n}");
    }
}

#[test]
fn rfc6238_totp_sha1() {
    let text = vectors("rfc6238-totp-sha1.txt");
    let seed = fields(&text).iter().find(|(k, _)| *k == "seed").map(|(_, v)| v.as_bytes().to_vec()).expect("seed");
    let rows: Vec<(u64, &str)> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(t, code)| t.parse().ok().map(|t| (t, code)))
        .collect();
    assert_eq!(rows.len(), 6);
    for (time, code) in rows {
        assert_eq!(format!("{:08}", totp::hotp(&seed, time / 30, 8)), code, "T = {time}");
        // rampart's six-digit codes are the last six digits of the same value.
        assert_eq!(totp::code_at(&seed, time, 30), code[2..], "T = {time}");
        assert_eq!(totp::check(&seed, &code[2..], time, 30), Some(time / 30));
    }
}

#[test]
fn rfc7515_a1_hs256() {
    let text = vectors("rfc7515-a1-hs256.txt");
    let fields = fields(&text);
    let get = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v).expect(name);
    let key = DecodingKey::from_secret(&URL_SAFE_NO_PAD.decode(get("k")).unwrap());
    let jws = get("jws");
    let exp: u64 = get("exp").parse().unwrap();

    let claims = verify_signature(jws, &key, &signature_only(Algorithm::HS256)).expect("valid signature");
    assert_eq!(claims.exp, Some(exp));
    assert_eq!(check_times(&claims, exp - 1, true), Ok(Some(exp)));
    assert_eq!(check_times(&claims, exp, true), Err(Reason::JwtExpired));

    let mut tampered = jws.to_string();
    tampered.pop();
    tampered.push(if jws.ends_with('k') { 'A' } else { 'k' });
    assert_eq!(
        verify_signature(&tampered, &key, &signature_only(Algorithm::HS256)).err(),
        Some(Reason::JwtBadSignature)
    );
    let other_key = DecodingKey::from_secret(b"another key entirely, 32 bytes!!");
    assert_eq!(
        verify_signature(jws, &other_key, &signature_only(Algorithm::HS256)).err(),
        Some(Reason::JwtBadSignature)
    );
}
