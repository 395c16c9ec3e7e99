//! Application REST API JWTs: HS256 with jwtSecretKey, and RS256/ES256 with the keys of a JWKS
//! served by a real HTTP server on 127.0.0.1 (fetch, cache, refetch on an unknown key id at most
//! once per MIN_FETCH_GAP, hourly refresh, cached keys kept when the endpoint fails). Time is
//! passed in as `Now`, so the tests move it by hand.

mod common;

use common::http_server::{Server, json, response};
use common::jwk::{RsaKey, b64, compact};
use common::security::{Fixture, T0, jwt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rampart::config::values::HttpUrl;
use rampart::net::client::HttpClient;
use rampart::net::jwks::HttpKeySource;
use rampart::secrets::Secret;
use rampart::security::jwks::{ApiJwt, JwksKeys, KeySource, MIN_FETCH_GAP, REFRESH_EVERY};
use rampart::security::jwt::Hs256;
use rampart::security::{Now, Reason};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RsaPublicKeyComponents};
use serde_json::{Value, json as j};
use std::time::{Duration, Instant};

const API_SECRET: &str = "api-secret-for-the-rest-api";
const HOUR: u64 = 3600;

/// Claims valid from T0 for a month (the JWKS tests move time by hours).
fn claims() -> Value {
    j!({"sub": "admin", "exp": T0 + 30 * 24 * HOUR})
}

/// A P-256 key made for the test.
struct EcKey {
    kid: String,
    pkcs8: Vec<u8>,
    pair: EcdsaKeyPair,
}

impl EcKey {
    fn generate(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("key pair");
        EcKey { kid: kid.into(), pkcs8: pkcs8.as_ref().to_vec(), pair }
    }

    fn jwk(&self) -> Value {
        // The uncompressed point: 0x04, then x and y, 32 bytes each.
        let point = self.pair.public_key().as_ref();
        assert_eq!((point.len(), point[0]), (65, 4));
        j!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..])})
    }

    /// An ES256 token naming this key, made by jsonwebtoken.
    fn token(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8)).expect("ES256 token")
    }

    /// A token signed with this key (ES256) under any header.
    fn sign_as(&self, header: &Value, claims: &Value) -> String {
        compact(header, claims, |input| self.pair.sign(&SystemRandom::new(), input).expect("sign").as_ref().to_vec())
    }
}

fn jwks(keys: &[Value]) -> Value {
    j!({ "keys": keys })
}

/// The moment `secs` seconds after the start of a test, on both clocks.
struct Timeline(Instant);

impl Timeline {
    fn at(&self, secs: Duration) -> Now {
        Now { unix: T0 + secs.as_secs(), instant: self.0 + secs }
    }
}

fn timeline() -> Timeline {
    Timeline(Instant::now())
}

fn keys_of(server: &Server) -> JwksKeys {
    let url = HttpUrl(server.url("http", "127.0.0.1", "/jwks.json"));
    JwksKeys::new(url, source())
}

/// JWKS documents fetched over HTTP, as the daemon fetches them.
fn source() -> std::sync::Arc<dyn KeySource> {
    std::sync::Arc::new(HttpKeySource::new(HttpClient::new(None).expect("client")))
}

const ZERO: Duration = Duration::ZERO;
const SECOND: Duration = Duration::from_secs(1);

// ---- HS256 (jwtSecretKey) ----

fn hs256() -> Hs256 {
    Hs256::new(&Secret::new(API_SECRET.into()))
}

#[test]
fn hs256_api_tokens() {
    let check = hs256();
    let valid = jwt(API_SECRET, claims());
    let tampered = {
        let parts: Vec<&str> = valid.split('.').collect();
        format!("{}.{}.{}", parts[0], b64(j!({"sub": "root", "exp": T0 + HOUR}).to_string()), parts[2])
    };
    let none_alg = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(claims().to_string()));
    let es_key = EcKey::generate("ec-1");
    let cases = [
        ("valid", valid.clone(), Ok(())),
        ("no exp (not required for API JWTs)", jwt(API_SECRET, j!({"sub": "admin"})), Ok(())),
        ("expired", jwt(API_SECRET, j!({"exp": T0 - 1})), Err(Reason::JwtExpired)),
        ("expiring now", jwt(API_SECRET, j!({"exp": T0})), Err(Reason::JwtExpired)),
        ("nbf in the future", jwt(API_SECRET, j!({"exp": T0 + HOUR, "nbf": T0 + 60})), Err(Reason::JwtNotYetValid)),
        ("nbf now", jwt(API_SECRET, j!({"exp": T0 + HOUR, "nbf": T0})), Ok(())),
        ("other key", jwt("another-secret", claims()), Err(Reason::JwtBadSignature)),
        ("tampered claims", tampered, Err(Reason::JwtBadSignature)),
        ("alg none", none_alg, Err(Reason::JwtAlgorithmRefused)),
        ("ES256", es_key.token(&claims()), Err(Reason::JwtAlgorithmRefused)),
        ("two parts", "abc.def".to_string(), Err(Reason::JwtMalformed)),
        ("not base64", "a!b.c!d.e!f".to_string(), Err(Reason::JwtMalformed)),
        ("empty", String::new(), Err(Reason::JwtMalformed)),
    ];
    for (name, token, expected) in cases {
        assert_eq!(check.check_api(&token, T0), expected, "{name}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn settings_choose_the_check() {
    let f = Fixture::new(&format!("jwtControlEnabled=true\njwtSecretKey={API_SECRET}"), "");
    let client = source();
    let Some(check @ ApiJwt::Secret(_)) = ApiJwt::from_settings(&f.app, &client) else { panic!("not HS256") };
    let now = timeline().at(ZERO);
    assert_eq!(check.verify(&jwt(API_SECRET, claims()), now).await, Ok(()));
    assert_eq!(check.verify(&jwt("another-secret", claims()), now).await, Err(Reason::JwtBadSignature));

    let off = Fixture::new(&format!("jwtSecretKey={API_SECRET}"), "");
    assert!(ApiJwt::from_settings(&off.app, &client).is_none(), "jwtControlEnabled is off");

    // jwksURL wins over jwtSecretKey.
    let key = EcKey::generate("ec-1");
    let server = Server::start(json("200 OK", &jwks(&[key.jwk()])), None).await;
    let url = server.url("http", "127.0.0.1", "/jwks.json");
    let f = Fixture::new(&format!("jwtControlEnabled=true\njwtSecretKey={API_SECRET}\njwksURL={url}"), "");
    let Some(check @ ApiJwt::Jwks(_)) = ApiJwt::from_settings(&f.app, &client) else { panic!("not JWKS") };
    assert_eq!(check.verify(&key.token(&claims()), now).await, Ok(()));
    // An HS256 token (naming no key, so checked with the JWKS's only key) is refused.
    assert_eq!(check.verify(&jwt(API_SECRET, claims()), now).await, Err(Reason::JwtAlgorithmRefused));
    assert_eq!(server.requests(), 1);
}

// ---- JWKS (jwksURL) ----

#[tokio::test(flavor = "current_thread")]
async fn tokens_of_each_jwks_key_verify_by_kid() {
    let (ec, rsa) = (EcKey::generate("ec-1"), RsaKey::load("rsa-1"));
    let mut server = Server::start(json("200 OK", &jwks(&[ec.jwk(), rsa.jwk()])), None).await;
    let keys = keys_of(&server);
    let t = timeline();

    assert_eq!(keys.verify(&ec.token(&claims()), t.at(ZERO)).await, Ok(()), "ES256");
    assert_eq!(keys.verify(&rsa.token(&claims()), t.at(SECOND)).await, Ok(()), "RS256");
    let seen = server.request().await;
    assert_eq!((seen.method.as_str(), seen.target.as_str()), ("GET", "/jwks.json"));
    assert_eq!(server.requests(), 1, "the keys are cached");

    // Each kid selects its own key: another key's signature under a kid does not verify.
    let impostor = EcKey::generate("ec-1");
    assert_eq!(keys.verify(&impostor.token(&claims()), t.at(SECOND)).await, Err(Reason::JwtBadSignature));
    let rsa_token_as_ec = {
        let token = rsa.token(&claims());
        let (_, rest) = token.split_once('.').unwrap();
        format!("{}.{rest}", b64(j!({"alg": "RS256", "kid": "ec-1"}).to_string()))
    };
    assert_eq!(keys.verify(&rsa_token_as_ec, t.at(SECOND)).await, Err(Reason::JwtAlgorithmRefused));

    // Time claims are checked, exp is not required.
    let cases = [
        ("expired", j!({"exp": T0 - 1}), Err(Reason::JwtExpired)),
        ("not yet", j!({"exp": T0 + HOUR, "nbf": T0 + 60}), Err(Reason::JwtNotYetValid)),
        ("no exp", j!({"sub": "admin"}), Ok(())),
    ];
    for (name, claims, expected) in cases {
        assert_eq!(keys.verify(&ec.token(&claims), t.at(ZERO)).await, expected, "ES256 {name}");
        assert_eq!(keys.verify(&rsa.token(&claims), t.at(ZERO)).await, expected, "RS256 {name}");
    }
    assert_eq!(keys.verify("not.a.jwt", t.at(ZERO)).await, Err(Reason::JwtMalformed));
    assert_eq!(server.requests(), 1, "known key ids fetch nothing");
}

#[tokio::test(flavor = "current_thread")]
async fn unknown_kid_refetches_at_most_once_per_gap() {
    let (ec1, ec2, rsa) = (EcKey::generate("ec-1"), EcKey::generate("ec-2"), RsaKey::load("rsa-new"));
    let server = Server::start(json("200 OK", &jwks(&[ec1.jwk()])), None).await;
    let keys = keys_of(&server);
    let t = timeline();
    assert_eq!(keys.verify(&ec1.token(&claims()), t.at(ZERO)).await, Ok(()));
    assert_eq!(server.requests(), 1);

    // The server rotates to a new key. Right after the last fetch, an unknown kid fetches nothing.
    server.set(json("200 OK", &jwks(&[ec1.jwk(), ec2.jwk()])));
    let early = MIN_FETCH_GAP - SECOND;
    assert_eq!(keys.verify(&ec2.token(&claims()), t.at(early)).await, Err(Reason::JwtUnknownKey));
    assert_eq!(server.requests(), 1, "refetched within MIN_FETCH_GAP");

    // Once the gap has passed, the unknown kid triggers one fetch and verifies.
    assert_eq!(keys.verify(&ec2.token(&claims()), t.at(MIN_FETCH_GAP)).await, Ok(()));
    assert_eq!(server.requests(), 2);
    assert_eq!(keys.verify(&ec1.token(&claims()), t.at(MIN_FETCH_GAP)).await, Ok(()), "kept key");

    // A second unknown kid within the gap: no fetch, refused, even though the server has it now.
    server.set(json("200 OK", &jwks(&[ec1.jwk(), ec2.jwk(), rsa.jwk()])));
    let within = MIN_FETCH_GAP + MIN_FETCH_GAP / 2;
    assert_eq!(keys.verify(&rsa.token(&claims()), t.at(within)).await, Err(Reason::JwtUnknownKey));
    assert_eq!(keys.verify(&rsa.token(&claims()), t.at(within)).await, Err(Reason::JwtUnknownKey));
    assert_eq!(server.requests(), 2, "refetched within MIN_FETCH_GAP");
    assert_eq!(keys.verify(&rsa.token(&claims()), t.at(MIN_FETCH_GAP * 2)).await, Ok(()));
    assert_eq!(server.requests(), 3);

    // Refused tokens naming unknown kids cannot make it fetch more than once per gap.
    let strangers: Vec<EcKey> = (0..5).map(|i| EcKey::generate(&format!("stranger-{i}"))).collect();
    for (i, stranger) in strangers.iter().enumerate() {
        let now = t.at(MIN_FETCH_GAP * 3 + SECOND * i as u32);
        assert_eq!(keys.verify(&stranger.token(&claims()), now).await, Err(Reason::JwtUnknownKey));
    }
    assert_eq!(server.requests(), 4);
}

#[tokio::test(flavor = "current_thread")]
async fn keys_are_refreshed_hourly_and_dropped_keys_stop_verifying() {
    let (ec1, ec2) = (EcKey::generate("ec-1"), EcKey::generate("ec-2"));
    let server = Server::start(json("200 OK", &jwks(&[ec1.jwk()])), None).await;
    let keys = keys_of(&server);
    let t = timeline();
    assert_eq!(keys.verify(&ec1.token(&claims()), t.at(ZERO)).await, Ok(()));

    server.set(json("200 OK", &jwks(&[ec2.jwk()])));
    let before = REFRESH_EVERY - SECOND;
    assert_eq!(keys.verify(&ec1.token(&claims()), t.at(before)).await, Ok(()), "cached until the refresh");
    assert_eq!(server.requests(), 1);
    let after = REFRESH_EVERY;
    assert_eq!(keys.verify(&ec1.token(&claims()), t.at(after)).await, Err(Reason::JwtUnknownKey), "dropped");
    assert_eq!(server.requests(), 2, "one refresh, and no second fetch for the unknown kid");
    assert_eq!(keys.verify(&ec2.token(&claims()), t.at(after)).await, Ok(()));
    assert_eq!(server.requests(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn cached_keys_keep_working_when_the_jwks_endpoint_fails() {
    let (ec, rsa, late) = (EcKey::generate("ec-1"), RsaKey::load("rsa-1"), EcKey::generate("ec-late"));
    let mut server = Server::start(json("200 OK", &jwks(&[ec.jwk(), rsa.jwk()])), None).await;
    let keys = keys_of(&server);
    let t = timeline();
    assert_eq!(keys.verify(&ec.token(&claims()), t.at(ZERO)).await, Ok(()));

    // 500 at the hourly refresh: the cached keys stay.
    server.set(response("500 Internal Server Error", "", b"down"));
    let hour = REFRESH_EVERY;
    assert_eq!(keys.verify(&ec.token(&claims()), t.at(hour)).await, Ok(()));
    assert_eq!(keys.verify(&rsa.token(&claims()), t.at(hour)).await, Ok(()));
    assert_eq!(server.requests(), 2, "the refresh was attempted");
    assert_eq!(keys.verify(&late.token(&claims()), t.at(hour + MIN_FETCH_GAP)).await, Err(Reason::JwtUnknownKey));
    assert_eq!(server.requests(), 3);

    // Not a JWKS: the cached keys stay.
    server.set(response("200 OK", "", b"<html>maintenance</html>"));
    let later = hour + MIN_FETCH_GAP * 2;
    assert_eq!(keys.verify(&rsa.token(&claims()), t.at(later)).await, Ok(()));
    assert_eq!(server.requests(), 4);

    // The server goes away: the cached keys stay.
    server.stop().await;
    let much_later = later + REFRESH_EVERY;
    assert_eq!(keys.verify(&ec.token(&claims()), t.at(much_later)).await, Ok(()));
    assert_eq!(keys.verify(&rsa.token(&claims()), t.at(much_later + MIN_FETCH_GAP)).await, Ok(()));
    assert_eq!(
        keys.verify(&late.token(&claims()), t.at(much_later + MIN_FETCH_GAP * 2)).await,
        Err(Reason::JwtUnknownKey)
    );
    assert_eq!(server.requests(), 4, "nothing reached the stopped server");
}

#[tokio::test(flavor = "current_thread")]
async fn no_keys_until_the_first_fetch_succeeds() {
    let ec = EcKey::generate("ec-1");
    let server = Server::start(response("503 Service Unavailable", "", b""), None).await;
    let keys = keys_of(&server);
    let t = timeline();
    assert_eq!(keys.verify(&ec.token(&claims()), t.at(ZERO)).await, Err(Reason::JwtUnknownKey));
    server.set(json("200 OK", &jwks(&[ec.jwk()])));
    assert_eq!(keys.verify(&ec.token(&claims()), t.at(SECOND)).await, Err(Reason::JwtUnknownKey), "within the gap");
    assert_eq!(keys.verify(&ec.token(&claims()), t.at(MIN_FETCH_GAP)).await, Ok(()));
    assert_eq!(server.requests(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn hs256_token_is_refused_by_the_jwks_check() {
    let (ec, rsa) = (EcKey::generate("ec-1"), RsaKey::load("rsa-1"));
    let server = Server::start(json("200 OK", &jwks(&[ec.jwk(), rsa.jwk()])), None).await;
    let keys = keys_of(&server);
    let now = timeline().at(ZERO);
    // The classic confusion: HMAC keyed with public key material, naming the public key.
    let public_n = RsaPublicKeyComponents::<Vec<u8>>::from(rsa.pair.public()).n;
    for (kid, secret) in
        [("rsa-1", public_n.clone()), ("rsa-1", rsa.jwk().to_string().into_bytes()), ("ec-1", b"x".to_vec())]
    {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.into());
        let token = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&secret)).unwrap();
        assert_eq!(keys.verify(&token, now).await, Err(Reason::JwtAlgorithmRefused), "HS256 naming {kid}");
    }
    // alg none naming a key is refused as such.
    let none = format!("{}.{}.", b64(j!({"alg": "none", "kid": "ec-1"}).to_string()), b64(claims().to_string()));
    assert_eq!(keys.verify(&none, now).await, Err(Reason::JwtAlgorithmRefused));
}

#[tokio::test(flavor = "current_thread")]
async fn es256_token_whose_header_claims_rs256_is_refused() {
    let (ec, rsa) = (EcKey::generate("ec-1"), RsaKey::load("rsa-1"));
    let server = Server::start(json("200 OK", &jwks(&[ec.jwk(), rsa.jwk()])), None).await;
    let keys = keys_of(&server);
    let now = timeline().at(ZERO);
    let honest = ec.sign_as(&j!({"alg": "ES256", "kid": "ec-1"}), &claims());
    assert_eq!(keys.verify(&honest, now).await, Ok(()), "the same key under its own algorithm");
    let lying = ec.sign_as(&j!({"alg": "RS256", "kid": "ec-1"}), &claims());
    assert_eq!(keys.verify(&lying, now).await, Err(Reason::JwtAlgorithmRefused));
    let at_rsa = ec.sign_as(&j!({"alg": "RS256", "kid": "rsa-1"}), &claims());
    assert_eq!(keys.verify(&at_rsa, now).await, Err(Reason::JwtBadSignature), "an ES256 signature checked as RS256");
}

/// Keys rampart does not use (symmetric, other curves, encryption keys, kinds jsonwebtoken cannot
/// even read) are skipped without hiding the RS256 and ES256 keys beside them.
#[tokio::test(flavor = "current_thread")]
async fn keys_of_other_kinds_in_the_jwks_are_skipped() {
    let (ec, rsa) = (EcKey::generate("ec-1"), RsaKey::load("rsa-1"));
    let others = [
        j!({"kty": "oct", "kid": "hmac", "alg": "HS256", "k": b64(b"shared")}),
        j!({"kty": "EC", "crv": "P-384", "alg": "ES384", "kid": "p384", "x": b64([1u8; 48]), "y": b64([2u8; 48])}),
        j!({"kty": "EC", "crv": "P-521", "alg": "ES512", "kid": "p521", "x": b64([1u8; 66]), "y": b64([2u8; 66])}),
        j!({"kty": "EC", "crv": "secp256k1", "alg": "ES256K", "kid": "k1", "x": b64([1u8; 32]), "y": b64([2u8; 32])}),
        j!({"kty": "OKP", "crv": "X25519", "kid": "ecdh", "x": b64([3u8; 32])}),
        j!({"kty": "RSA", "alg": "RSA-OAEP-256", "use": "enc", "kid": "enc", "n": b64([5u8; 256]), "e": "AQAB"}),
    ];
    let mut all = vec![ec.jwk()];
    all.extend(others);
    all.push(rsa.jwk());
    let server = Server::start(json("200 OK", &jwks(&all)), None).await;
    let keys = keys_of(&server);
    let now = timeline().at(ZERO);
    assert_eq!(keys.verify(&ec.token(&claims()), now).await, Ok(()), "hidden by the keys it cannot use");
    assert_eq!(keys.verify(&rsa.token(&claims()), now).await, Ok(()), "hidden by the keys it cannot use");
    // A symmetric key published in the JWKS never becomes an HMAC key.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("hmac".into());
    let hmac = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(b"shared")).unwrap();
    assert_eq!(keys.verify(&hmac, now).await, Err(Reason::JwtUnknownKey));
    assert_eq!(server.requests(), 1);
}
