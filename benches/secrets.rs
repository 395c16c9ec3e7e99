//! What sealing costs: one seal and one open of a secret in memory (every secret setting, TOTP
//! key and device key goes through them), and the start-time unseal of the data key from its
//! blob: from the key file, and from a TPM (Debian's swtpm on 127.0.0.1), side by side with
//! tpm2-tools doing the same (CreatePrimary, Load, Unseal of a sealed object) against the same
//! swtpm: `cargo bench --bench secrets`.

#[allow(dead_code)] // the harness of the tests: only its start and its address are used here
#[path = "../tests/common/swtpm.rs"]
mod swtpm;

use rampart::secrets::file::KeyFile;
use rampart::secrets::keyring::Mint;
use rampart::secrets::tpm::{Tpm, TpmDevice};
use rampart::secrets::{DataKey, Keyring, SecretStore};
use rampart::storage::fs::RealFs;
use std::process::Command;
use std::time::{Duration, Instant};

const ROUNDS: usize = 20_000;
const STARTS: usize = 15;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The median of `STARTS` runs of `f`.
fn timed(mut f: impl FnMut()) -> Duration {
    median(
        (0..STARTS)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

fn envelope() {
    let key = DataKey::generate().expect("randomness");
    let secret = b"a 32-character stream JWT secret";
    let start = Instant::now();
    let sealed: Vec<String> = (0..ROUNDS).map(|_| key.seal("jwtStreamSecretKey", secret).expect("seal")).collect();
    let seal = start.elapsed() / ROUNDS as u32;
    let start = Instant::now();
    for value in &sealed {
        assert_eq!(key.open("jwtStreamSecretKey", value).expect("open").as_slice(), secret);
    }
    let open = start.elapsed() / ROUNDS as u32;
    println!("envelope: seal {} ns, open {} ns (a 32-byte secret, AES-256-GCM)", seal.as_nanos(), open.as_nanos());
}

fn key_file() {
    let dir = tempfile::tempdir().expect("dir");
    drop(Keyring::load(&KeyFile, &RealFs, dir.path(), Mint::IfNoneOpens));
    let load = timed(|| assert!(Keyring::load(&KeyFile, &RealFs, dir.path(), Mint::Never).status().ready));
    println!("data key from the key file at start: {} us", load.as_micros());
}

fn tpm() {
    if Command::new("swtpm").arg("--version").output().is_err() {
        println!("TPM: swtpm is not installed (tests/run.sh installs it): skipped");
        return;
    }
    let swtpm = swtpm::Swtpm::fresh();
    let device = TpmDevice::parse(&swtpm.device()).expect("device");
    let store = Tpm::new(device, None);
    let dir = tempfile::tempdir().expect("dir");
    drop(Keyring::load(&store, &RealFs, dir.path(), Mint::IfNoneOpens));
    let ours = timed(|| assert!(Keyring::load(&store, &RealFs, dir.path(), Mint::Never).status().ready));
    let key = DataKey::generate().expect("randomness");
    let seal = timed(|| drop(store.seal(&key).expect("seal")));
    println!(
        "rampart, data key from swtpm at start (CreatePrimary, Load, Unseal, 2 FlushContext): {:.1} ms; seal a new one: {:.1} ms",
        ours.as_secs_f64() * 1e3,
        seal.as_secs_f64() * 1e3
    );
    peer(&swtpm);
}

/// tpm2-tools against the same swtpm: a sealed object made once, then each round the commands
/// a start needs (tpm2_createprimary, tpm2_load, tpm2_unseal, with tpm2_flushcontext), one process each.
fn peer(swtpm: &swtpm::Swtpm) {
    let dir = tempfile::tempdir().expect("dir");
    let port = swtpm.device().rsplit(':').next().unwrap_or_default().to_string();
    let tcti = format!("swtpm:host=127.0.0.1,port={port}");
    let run = |args: &[&str]| {
        let status = Command::new(args[0])
            .args(&args[1..])
            .current_dir(dir.path())
            .env("TPM2TOOLS_TCTI", &tcti)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        status.is_ok_and(|s| s.success())
    };
    std::fs::write(dir.path().join("key.bin"), [7u8; 32]).expect("key");
    let made = run(&["tpm2_createprimary", "-C", "o", "-G", "ecc256", "-c", "primary.ctx"])
        && run(&["tpm2_create", "-C", "primary.ctx", "-i", "key.bin", "-u", "seal.pub", "-r", "seal.priv"])
        && run(&["tpm2_flushcontext", "-t"]);
    if !made {
        println!("tpm2-tools: not installed or failed against swtpm: no peer numbers");
        return;
    }
    // swtpm has no resource manager: tpm2-tools leaves each object loaded, so every step is
    // followed by a flush of the transients.
    let peer = timed(|| {
        let flush = || run(&["tpm2_flushcontext", "-t"]);
        let ok = run(&["tpm2_createprimary", "-C", "o", "-G", "ecc256", "-c", "primary.ctx"])
            && flush()
            && run(&["tpm2_load", "-C", "primary.ctx", "-u", "seal.pub", "-r", "seal.priv", "-c", "seal.ctx"])
            && flush()
            && run(&["tpm2_unseal", "-c", "seal.ctx"])
            && flush();
        assert!(ok, "tpm2-tools round");
    });
    println!(
        "tpm2-tools, the same unseal from swtpm (6 processes, 3 of them flushes): {:.1} ms",
        peer.as_secs_f64() * 1e3
    );
}

fn main() {
    envelope();
    key_file();
    tpm();
}
