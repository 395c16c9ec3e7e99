//! Finds secrets left in clear on disk: every file under a directory, searched for each form a
//! secret can be written in (raw, base64, base64url, base32, hex, and any text form the test gives).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use std::path::{Path, PathBuf};

/// The forms `secret` can be written in: as it is, base64 (padded or not), base64url, base32, hex.
pub fn forms(secret: &[u8]) -> Vec<Vec<u8>> {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        secret.to_vec(),
        STANDARD.encode(secret).into_bytes(),
        STANDARD_NO_PAD.encode(secret).into_bytes(),
        URL_SAFE_NO_PAD.encode(secret).into_bytes(),
        base32(secret).into_bytes(),
        hex.to_uppercase().into_bytes(),
        hex.into_bytes(),
    ]
}

/// RFC 4648 base32 without padding (how TOTP keys are written).
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buffer, mut bits) = (String::new(), 0u32, 0);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Every file under `dir` that holds one of `needles`, with the needle (lossy text).
pub fn files_holding(dir: &Path, needles: &[Vec<u8>]) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_holding(&path, needles));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap_or_default();
        for needle in needles.iter().filter(|n| !n.is_empty()) {
            if bytes.windows(needle.len()).any(|w| w == needle.as_slice()) {
                found.push((path.clone(), String::from_utf8_lossy(needle).into_owned()));
            }
        }
    }
    found
}
