//! The marshalling against what tpm2-tools sends (`tpm2-tools.hex`, recorded from swtpm), the
//! parsers against what swtpm answered and against thousands of random, truncated and lying
//! responses, and the flushes of every path against a scripted TPM.

use super::client::{Client, Sealed};
use super::commands::{self, SessionKind};
use super::transport::Transport;
use super::wire::{self, Auth, Response};
use super::{PcrSelection, ResponseCode, TpmError, blob, seal_on, unseal_on};
use crate::secrets::{DataKey, KeyError};
use crate::test_rng::XorShift;
use std::cell::RefCell;
use std::rc::Rc;
use zeroize::Zeroizing;

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

fn captured(name: &str) -> Vec<u8> {
    let lines = include_str!("tpm2-tools.hex").lines();
    let line = lines.filter_map(|line| line.split_once(' ')).find(|(n, _)| *n == name).expect(name);
    hex(line.1)
}

/// A command's handles and parameters, without its header and authorization area.
fn handles_and_params(command: &[u8], handles: usize) -> (Vec<u8>, Vec<u8>) {
    let handle_bytes = command[10..10 + 4 * handles].to_vec();
    let mut rest = &command[10 + 4 * handles..];
    if command[..2] == [0x80, 0x02] {
        let size = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        rest = &rest[4 + size..];
    }
    (handle_bytes, rest.to_vec())
}

const PASSWORD: [u8; 13] = [0, 0, 0, 9, 0x40, 0, 0, 9, 0, 0, 0, 0, 0];
const PCR7_POLICY: &str = "8b5682d81b29435d08d79278150611dc7e5923b2fefcce684a09577b40130a8b";

fn pcr7() -> PcrSelection {
    PcrSelection { pcrs: vec![7] }
}

#[test]
fn commands_carry_what_tpm2_tools_sends() {
    // Same handles and parameters; our authorization is the empty password, tpm2-tools' an
    // HMAC session.
    let ours = commands::create_primary().unwrap();
    assert_eq!(ours.bytes.bytes()[14..27], PASSWORD);
    assert_eq!(handles_and_params(ours.bytes.bytes(), 1), handles_and_params(&captured("create_primary.cmd"), 1));

    let ours = commands::create(0x8000_0001, &[b'A'; 32], Some(&hex(PCR7_POLICY))).unwrap();
    assert_eq!(ours.bytes.bytes()[14..27], PASSWORD);
    assert_eq!(handles_and_params(ours.bytes.bytes(), 1), handles_and_params(&captured("create.cmd"), 1));

    let (_, load_params) = handles_and_params(&captured("load.cmd"), 1);
    let private_len = usize::from(u16::from_be_bytes([load_params[0], load_params[1]]));
    let sealed =
        Sealed { private: load_params[2..2 + private_len].to_vec(), public: load_params[4 + private_len..].to_vec() };
    let ours = commands::load(0x8000_0000, &sealed).unwrap();
    assert_eq!(handles_and_params(ours.bytes.bytes(), 1), handles_and_params(&captured("load.cmd"), 1));

    // Unseal through policy session 0x03000000: the same handles and (no) parameters; our
    // session has no nonce and continueSession clear.
    let ours = commands::unseal(0x8000_0000, Auth::Policy(0x0300_0000)).unwrap();
    assert_eq!(handles_and_params(ours.bytes.bytes(), 1), handles_and_params(&captured("unseal.cmd"), 1));
    assert_eq!(ours.bytes.bytes()[14..], [0, 0, 0, 9, 3, 0, 0, 0, 0, 0, 0, 0, 0]);

    let tools = captured("start_auth_session.cmd");
    let ours = commands::start_auth_session(SessionKind::Trial, &tools[20..52]).unwrap();
    assert_eq!(ours.bytes.bytes(), tools);

    // tpm2-tools also sends the digest of the PCR values; we leave it empty (the TPM's own).
    let ours = commands::policy_pcr(0x0300_0000, &pcr7()).unwrap();
    let tools = captured("policy_pcr.cmd");
    assert_eq!(ours.bytes.bytes()[10..14], tools[10..14]);
    assert_eq!(ours.bytes.bytes()[16..], tools[16 + 32..]);

    assert_eq!(commands::policy_get_digest(0x0300_0000).unwrap().bytes.bytes(), captured("policy_get_digest.cmd"));
    assert_eq!(commands::flush_context(0x0300_0000).unwrap().bytes.bytes(), captured("flush_context.cmd"));
}

/// A command's parser, its result summed up as text.
type Parser = fn(Response<'_>) -> Result<String, TpmError>;

/// Each response swtpm gave (with the handles and sessions of its command) and its parser.
fn parsers() -> Vec<(&'static str, usize, usize, Parser)> {
    vec![
        ("create_primary.rsp", 1, 1, |r| commands::primary(r).map(|h| format!("{h:#x}"))),
        ("create.rsp", 0, 1, |r| commands::created(r).map(|s| format!("{:02x?}", &s.public[..8]))),
        ("load.rsp", 1, 1, |r| commands::loaded(r).map(|h| format!("{h:#x}"))),
        ("unseal.rsp", 0, 1, |r| commands::unsealed(r).map(|d| String::from_utf8_lossy(&d).into_owned())),
        ("start_auth_session.rsp", 1, 0, |r| commands::session_handle(r).map(|h| format!("{h:#x}"))),
        ("policy_get_digest.rsp", 0, 0, |r| commands::policy_digest(r).map(|d| format!("{}", d.len()))),
        ("policy_pcr.rsp", 0, 0, |r| commands::nothing(r).map(|()| String::new())),
        ("flush_context.rsp", 0, 0, |r| commands::nothing(r).map(|()| String::new())),
    ]
}

fn parse(
    name: &'static str,
    bytes: &[u8],
    handles: usize,
    sessions: usize,
    parser: Parser,
) -> Result<String, TpmError> {
    wire::response(name, bytes, handles, sessions).and_then(parser)
}

#[test]
fn responses_swtpm_gave_parse() {
    let results: Vec<String> =
        parsers().into_iter().map(|(name, h, s, p)| parse(name, &captured(name), h, s, p).unwrap()).collect();
    let expected =
        ["0x80000000", "[00, 08, 00, 0b, 00, 00, 04, 12]", "0x80000001", &"A".repeat(32), "0x3000000", "32", "", ""];
    assert_eq!(results, expected);
}

#[test]
fn random_truncated_and_lying_responses_are_errors_never_panics() {
    let mut rng = XorShift(0x7e57_7e57_0bad_cafe);
    let mut cases = 0;
    for (name, handles, sessions, parser) in parsers() {
        let good = captured(name);
        let run = |bytes: &[u8]| parse(name, bytes, handles, sessions, parser);
        for len in 0..good.len() {
            assert!(run(&good[..len]).is_err(), "{name} cut to {len} bytes");
            cases += 1;
        }
        // A size in the header that is not what came.
        let len = good.len() as u32;
        for size in [0, 9, 10, len - 1, len + 1, u32::MAX].into_iter().filter(|size| *size != len) {
            let mut lying = good.clone();
            lying[2..6].copy_from_slice(&size.to_be_bytes());
            assert!(run(&lying).is_err(), "{name} claiming {size} bytes");
            cases += 1;
        }
        // A byte too many, the header agreeing.
        let mut long = good.clone();
        long.push(0);
        let len = long.len() as u32;
        long[2..6].copy_from_slice(&len.to_be_bytes());
        assert!(matches!(run(&long), Err(TpmError::Malformed(_))), "{name} with a byte too many");
        // An error code, alone or with bytes after it.
        let mut refused = good[..10].to_vec();
        refused[2..6].copy_from_slice(&10u32.to_be_bytes());
        refused[6..10].copy_from_slice(&0x99Du32.to_be_bytes());
        assert!(matches!(run(&refused), Err(TpmError::Refused { rc: ResponseCode(0x99D), .. })));
        let mut refused_long = long.clone();
        refused_long[6..10].copy_from_slice(&0x99Du32.to_be_bytes());
        assert!(matches!(run(&refused_long), Err(TpmError::Malformed(_))), "{name}: an error with a body");
        // Every TPM2B size or count inside set to a lie: 0xFFFF at each even and odd offset.
        for at in 10..good.len() - 1 {
            let mut lying = good.clone();
            lying[at..at + 2].copy_from_slice(&[0xFF, 0xFF]);
            let _ = run(&lying);
            cases += 1;
        }
        // Random alterations of one to four bytes: no panic; a header changed is an error.
        for _ in 0..2000 {
            let mut altered = good.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(altered.len());
                altered[at] = rng.next() as u8;
            }
            let result = run(&altered);
            if altered[..6] != good[..6] {
                assert!(result.is_err(), "{name} with its header altered: {altered:02x?}");
            }
            cases += 1;
        }
        // Random bytes, and random bodies behind a well-formed header.
        for _ in 0..1000 {
            let len = rng.below(600);
            let garbage = rng.bytes(len);
            assert!(run(&garbage).is_err(), "{name} from {garbage:02x?}");
            let mut framed = good[..2].to_vec();
            let len = rng.below(good.len() * 2);
            let body = rng.bytes(len);
            framed.extend_from_slice(&((10 + body.len()) as u32).to_be_bytes());
            framed.extend_from_slice(&[0, 0, 0, 0]);
            framed.extend_from_slice(&body);
            let _ = run(&framed);
            cases += 2;
        }
    }
    assert!(cases > 20_000, "{cases}");
}

#[test]
fn blobs_read_back_and_damaged_ones_are_errors() {
    let sealed = Sealed { public: vec![1; 78], private: vec![2; 158] };
    let good = blob::encode(Some(&PcrSelection { pcrs: vec![0, 7] }), &sealed).unwrap();
    assert_eq!(blob::decode(&good).unwrap(), (Some(PcrSelection { pcrs: vec![0, 7] }), sealed.clone()));
    assert_eq!(blob::decode(&blob::encode(None, &sealed).unwrap()).unwrap(), (None, sealed));
    for len in 0..good.len() {
        assert!(blob::decode(&good[..len]).is_err(), "cut to {len}");
    }
    let mut rng = XorShift(0x00b1_0b5e_ed00_0001);
    for _ in 0..5000 {
        let mut altered = good.clone();
        let at = rng.below(altered.len());
        altered[at] = rng.next() as u8;
        let _ = blob::decode(&altered);
        let len = rng.below(300);
        let garbage = rng.bytes(len);
        let _ = blob::decode(&garbage);
    }
    let mut unordered = good.clone();
    unordered[2..4].copy_from_slice(&[7, 0]);
    assert!(blob::decode(&unordered).is_err());
}

/// A TPM that answers from a script and records what it was sent.
struct Scripted {
    answers: std::vec::IntoIter<Result<Vec<u8>, TpmError>>,
    sent: Rc<RefCell<Vec<String>>>,
}

impl Transport for Scripted {
    fn transact(&mut self, name: &'static str, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, TpmError> {
        let detail = match name {
            "FlushContext" => format!("FlushContext {:02x?}", &bytes[10..]),
            _ => name.to_string(),
        };
        self.sent.borrow_mut().push(detail);
        self.answers
            .next()
            .unwrap_or(Err(TpmError::Io { command: name, why: "script over".into() }))
            .map(Zeroizing::new)
    }
}

fn reply(handles: &[u32], params: &[u8], sessions: bool) -> Result<Vec<u8>, TpmError> {
    let mut body = Vec::new();
    for handle in handles {
        body.extend_from_slice(&handle.to_be_bytes());
    }
    if sessions {
        body.extend_from_slice(&(params.len() as u32).to_be_bytes());
    }
    body.extend_from_slice(params);
    if sessions {
        body.extend_from_slice(&[0, 0, 1, 0, 0]);
    }
    let tag: u16 = if sessions { 0x8002 } else { 0x8001 };
    let mut out = tag.to_be_bytes().to_vec();
    out.extend_from_slice(&((10 + body.len()) as u32).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&body);
    Ok(out)
}

fn error(rc: u32) -> Result<Vec<u8>, TpmError> {
    let mut out = vec![0x80, 0x01, 0, 0, 0, 10];
    out.extend_from_slice(&rc.to_be_bytes());
    Ok(out)
}

fn scripted(answers: Vec<Result<Vec<u8>, TpmError>>) -> (Client, Rc<RefCell<Vec<String>>>) {
    let sent = Rc::new(RefCell::new(Vec::new()));
    let transport = Scripted { answers: answers.into_iter(), sent: sent.clone() };
    (Client::new(Box::new(transport)), sent)
}

const PRIMARY: u32 = 0x8000_0000;
const ITEM: u32 = 0x8000_0001;
const SESSION: u32 = 0x0300_0000;

fn primary_reply() -> Result<Vec<u8>, TpmError> {
    reply(&[PRIMARY], &[0, 0, 0, 0, 0, 0, 0x80, 0x21, 0x40, 0, 0, 1, 0, 0, 0, 0], true)
}

fn flushed(handle: u32) -> String {
    format!("FlushContext {:02x?}", handle.to_be_bytes())
}

#[test]
fn every_handle_is_flushed_when_the_policy_refuses() {
    let sealed = Sealed { public: vec![1], private: vec![2] };
    let (client, sent) = scripted(vec![
        primary_reply(),
        reply(&[ITEM], &[0, 0], true),
        reply(&[SESSION], &[0, 0], false),
        reply(&[], &[], false),
        error(0x99D),
        reply(&[], &[], false),
        reply(&[], &[], false),
        reply(&[], &[], false),
    ]);
    let refused = unseal_on(&client, &sealed, Some(&pcr7())).unwrap_err();
    assert_eq!(
        refused,
        KeyError::Refused(
            "the PCR policy does not match the measured boot (Unseal: TPM_RC_POLICY_FAIL (session 1))".into()
        )
    );
    let expected = [
        "CreatePrimary",
        "Load",
        "StartAuthSession",
        "PolicyPCR",
        "Unseal",
        &flushed(SESSION),
        &flushed(ITEM),
        &flushed(PRIMARY),
    ];
    assert_eq!(*sent.borrow(), expected);
}

#[test]
fn an_unsealed_key_leaves_nothing_loaded_and_its_session_is_not_flushed_twice() {
    let sealed = Sealed { public: vec![1], private: vec![2] };
    let mut data = vec![0, 32];
    data.extend_from_slice(&[7; 32]);
    let (client, sent) = scripted(vec![
        primary_reply(),
        reply(&[ITEM], &[0, 0], true),
        reply(&[SESSION], &[0, 0], false),
        reply(&[], &[], false),
        reply(&[], &data, true),
        reply(&[], &[], false),
        reply(&[], &[], false),
    ]);
    let key = unseal_on(&client, &sealed, Some(&pcr7())).unwrap();
    assert_eq!(key.bytes(), &[7; 32]);
    let expected =
        ["CreatePrimary", "Load", "StartAuthSession", "PolicyPCR", "Unseal", &flushed(ITEM), &flushed(PRIMARY)];
    assert_eq!(*sent.borrow(), expected);
}

#[test]
fn a_seal_flushes_its_trial_session_and_primary_even_when_create_fails() {
    let (client, sent) = scripted(vec![
        primary_reply(),
        reply(&[SESSION], &[0, 0], false),
        reply(&[], &[], false),
        reply(&[], &hex(&format!("0020{PCR7_POLICY}")), false),
        reply(&[], &[], false),
        error(0x902),
        reply(&[], &[], false),
    ]);
    let key = DataKey::from_bytes(&[9; 32]).unwrap();
    let failed = seal_on(&client, &key, Some(&pcr7())).unwrap_err();
    assert_eq!(failed, KeyError::Unavailable("the TPM cannot do it now (Create: TPM_RC_OBJECT_MEMORY)".into()));
    let expected = [
        "CreatePrimary",
        "StartAuthSession",
        "PolicyPCR",
        "PolicyGetDigest",
        &flushed(SESSION),
        "Create",
        &flushed(PRIMARY),
    ];
    assert_eq!(*sent.borrow(), expected);
}

#[test]
fn a_connection_that_fails_is_not_used_again() {
    let sealed = Sealed { public: vec![1], private: vec![2] };
    let dead = Err(TpmError::Io { command: "Load", why: "timed out".into() });
    let (client, sent) = scripted(vec![primary_reply(), dead]);
    let failed = unseal_on(&client, &sealed, None).unwrap_err();
    assert_eq!(failed, KeyError::Unavailable("Load: timed out".into()));
    assert_eq!(*sent.borrow(), ["CreatePrimary", "Load"]);
}

#[test]
fn a_tpm_handing_out_a_handle_of_the_wrong_kind_is_corrupt() {
    let (client, _) =
        scripted(vec![reply(&[0x4000_0001], &[0, 0, 0, 0, 0, 0, 0x80, 0x21, 0x40, 0, 0, 1, 0, 0, 0, 0], true)]);
    let key = DataKey::from_bytes(&[9; 32]).unwrap();
    assert!(matches!(seal_on(&client, &key, None), Err(KeyError::Corrupt(_))));
}

#[test]
fn a_handle_made_by_an_answer_that_does_not_parse_is_flushed() {
    let key = DataKey::from_bytes(&[9; 32]).unwrap();
    let mut params = vec![0, 0, 0, 0, 0, 0, 0x80, 0x21, 0x40, 0, 0, 1, 0, 0, 0, 0];
    params.push(0xFF); // a byte too many after the name
    let (client, sent) = scripted(vec![reply(&[PRIMARY], &params, true), reply(&[], &[], false)]);
    assert!(matches!(seal_on(&client, &key, None), Err(KeyError::Corrupt(_))));
    assert_eq!(*sent.borrow(), ["CreatePrimary".to_string(), flushed(PRIMARY)]);
}
