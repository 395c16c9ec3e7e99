//! JSON Web Keys and tokens for the tests: the committed test-only RSA key and compact JWS.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{Value, json as j};

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS with this header and these claims, signed by `sign` (for tokens
/// jsonwebtoken would not make).
pub fn compact(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(signature))
}

/// The committed test-only RSA key (tests/vectors/test-rsa-2048.pk8).
pub struct RsaKey {
    pub kid: String,
    pub pair: RsaKeyPair,
}

impl RsaKey {
    pub fn load(kid: &str) -> Self {
        let der = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/test-rsa-2048.pk8"))
            .expect("tests/vectors/test-rsa-2048.pk8");
        RsaKey { kid: kid.into(), pair: RsaKeyPair::from_pkcs8(&der).expect("PKCS#8 RSA key") }
    }

    pub fn jwk(&self) -> Value {
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(self.pair.public());
        j!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid, "n": b64(&public.n), "e": b64(&public.e)})
    }

    /// An RS256 token naming this key. Signed with ring directly: jsonwebtoken's RSA signing
    /// wants PKCS#1, the committed key is PKCS#8.
    pub fn token(&self, claims: &Value) -> String {
        let header = j!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        compact(&header, claims, |input| {
            let mut signature = vec![0; self.pair.public().modulus_len()];
            self.pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input, &mut signature).expect("RS256 signature");
            signature
        })
    }
}
