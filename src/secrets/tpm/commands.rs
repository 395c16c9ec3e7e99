//! The few TPM 2.0 commands the store needs (Part 3), marshalled by hand, and the parsers of
//! their responses' parameters. No I/O: [`super::client`] sends them.

use super::PcrSelection;
use super::error::TpmError;
use super::wire::{self, Auth, Reader, Response, Writer};
use zeroize::Zeroizing;

const CC_CREATE_PRIMARY: u32 = 0x131;
const CC_CREATE: u32 = 0x153;
const CC_LOAD: u32 = 0x157;
const CC_UNSEAL: u32 = 0x15E;
const CC_FLUSH_CONTEXT: u32 = 0x165;
const CC_START_AUTH_SESSION: u32 = 0x176;
const CC_POLICY_PCR: u32 = 0x17F;
const CC_POLICY_GET_DIGEST: u32 = 0x189;

const RH_OWNER: u32 = 0x4000_0001;
const RH_NULL: u32 = 0x4000_0007;

const ALG_AES: u16 = 0x0006;
const ALG_KEYEDHASH: u16 = 0x0008;
const ALG_SHA256: u16 = 0x000B;
const ALG_NULL: u16 = 0x0010;
const ALG_ECC: u16 = 0x0023;
const ALG_CFB: u16 = 0x0043;
const ECC_NIST_P256: u16 = 0x0003;

const FIXED_TPM: u32 = 1 << 1;
const FIXED_PARENT: u32 = 1 << 4;
const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
const USER_WITH_AUTH: u32 = 1 << 6;
const NO_DA: u32 = 1 << 10;
const RESTRICTED: u32 = 1 << 16;
const DECRYPT: u32 = 1 << 17;

/// The storage key's attributes: the same template always gives the same key.
const PRIMARY_ATTRIBUTES: u32 =
    FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | NO_DA | RESTRICTED | DECRYPT;

/// `TPM_SE_POLICY` and `TPM_SE_TRIAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A policy session, to authorize an Unseal.
    Policy = 0x01,
    /// A trial session, to compute a policy's digest.
    Trial = 0x03,
}

/// A command ready to send, with what its response must hold.
pub struct Request {
    /// The command's name, for errors and the log.
    pub name: &'static str,
    /// Its bytes.
    pub bytes: Writer,
    /// How many handles the response returns.
    pub handles: usize,
    /// How many authorizations the command carries (and so the response).
    pub sessions: usize,
}

impl Request {
    fn new(name: &'static str, code: u32, handles: &[u32], auths: &[Auth], params: &Writer) -> Result<Self, TpmError> {
        let bytes = wire::command(code, handles, auths, params.bytes())?;
        Ok(Request { name, bytes, handles: usize::from(returns_handle(code)), sessions: auths.len() })
    }
}

fn returns_handle(code: u32) -> bool {
    [CC_CREATE_PRIMARY, CC_LOAD, CC_START_AUTH_SESSION].contains(&code)
}

/// The sealed data key as the TPM made it: its public area and its encrypted private area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The TPMT_PUBLIC (the TPM2B_PUBLIC's contents).
    pub public: Vec<u8>,
    /// The TPM2B_PRIVATE's contents, encrypted and integrity-protected by the parent.
    pub private: Vec<u8>,
}

/// CreatePrimary in the owner hierarchy: an ECC NIST P-256 restricted decryption key with
/// AES-128-CFB, from a fixed template.
pub fn create_primary() -> Result<Request, TpmError> {
    let mut params = Writer::default();
    params.u16(4).u16(0).u16(0); // inSensitive: empty userAuth, empty data
    let mut public = Writer::default();
    public.u16(ALG_ECC).u16(ALG_SHA256).u32(PRIMARY_ATTRIBUTES).u16(0);
    public.u16(ALG_AES).u16(128).u16(ALG_CFB).u16(ALG_NULL).u16(ECC_NIST_P256).u16(ALG_NULL);
    public.u16(0).u16(0); // unique: empty x and y
    params.tpm2b("the primary's template", public.bytes())?;
    params.u16(0).u32(0); // outsideInfo empty, creationPCR none
    Request::new("CreatePrimary", CC_CREATE_PRIMARY, &[RH_OWNER], &[Auth::Password], &params)
}

/// Create under `parent`: a keyedhash sealed object holding `data`, `fixedTPM|fixedParent|noDA`,
/// authorized by `policy` (a PolicyPCR digest) or, without one, by the empty password.
pub fn create(parent: u32, data: &[u8], policy: Option<&[u8]>) -> Result<Request, TpmError> {
    let mut sensitive = Writer::default();
    sensitive.u16(0).tpm2b("the data key", data)?;
    let mut params = Writer::default();
    params.tpm2b("the sensitive area", sensitive.bytes())?;
    let attributes = match policy {
        Some(_) => FIXED_TPM | FIXED_PARENT | NO_DA,
        None => FIXED_TPM | FIXED_PARENT | NO_DA | USER_WITH_AUTH,
    };
    let mut public = Writer::default();
    public.u16(ALG_KEYEDHASH).u16(ALG_SHA256).u32(attributes).tpm2b("the policy", policy.unwrap_or_default())?;
    public.u16(ALG_NULL).u16(0); // scheme null, unique empty
    params.tpm2b("the public area", public.bytes())?;
    params.u16(0).u32(0);
    Request::new("Create", CC_CREATE, &[parent], &[Auth::Password], &params)
}

/// Load `sealed` under `parent`.
pub fn load(parent: u32, sealed: &Sealed) -> Result<Request, TpmError> {
    let mut params = Writer::default();
    params.tpm2b("the private area", &sealed.private)?.tpm2b("the public area", &sealed.public)?;
    Request::new("Load", CC_LOAD, &[parent], &[Auth::Password], &params)
}

/// Unseal the loaded `item`.
pub fn unseal(item: u32, auth: Auth) -> Result<Request, TpmError> {
    Request::new("Unseal", CC_UNSEAL, &[item], &[auth], &Writer::default())
}

/// FlushContext of a transient object or session.
pub fn flush_context(handle: u32) -> Result<Request, TpmError> {
    let mut params = Writer::default();
    params.u32(handle);
    Request::new("FlushContext", CC_FLUSH_CONTEXT, &[], &[], &params)
}

/// StartAuthSession, unbound and unsalted, SHA-256, no parameter encryption.
pub fn start_auth_session(kind: SessionKind, nonce: &[u8]) -> Result<Request, TpmError> {
    let mut params = Writer::default();
    params.tpm2b("the nonce", nonce)?.u16(0).u8(kind as u8).u16(ALG_NULL).u16(ALG_SHA256);
    Request::new("StartAuthSession", CC_START_AUTH_SESSION, &[RH_NULL, RH_NULL], &[], &params)
}

/// PolicyPCR of `pcrs` in the SHA-256 bank, at their current values.
pub fn policy_pcr(session: u32, pcrs: &PcrSelection) -> Result<Request, TpmError> {
    let mut select = [0u8; 3];
    for pcr in &pcrs.pcrs {
        if let Some(byte) = select.get_mut(usize::from(pcr / 8)) {
            *byte |= 1 << (pcr % 8);
        }
    }
    let mut params = Writer::default();
    params.u16(0).u32(1).u16(ALG_SHA256).u8(3).raw(&select);
    Request::new("PolicyPCR", CC_POLICY_PCR, &[session], &[], &params)
}

/// PolicyGetDigest of a (trial) session.
pub fn policy_get_digest(session: u32) -> Result<Request, TpmError> {
    Request::new("PolicyGetDigest", CC_POLICY_GET_DIGEST, &[session], &[], &Writer::default())
}

/// The primary key CreatePrimary made (`0x80xxxxxx`).
pub fn primary(response: Response<'_>) -> Result<u32, TpmError> {
    let mut params = response.params;
    params.tpm2b("outPublic")?;
    params.tpm2b("creationData")?;
    params.tpm2b("creationHash")?;
    creation_ticket(&mut params)?;
    params.tpm2b("name")?;
    params.finish("CreatePrimary")?;
    handle_of(&response.handles, 0x80, "CreatePrimary")
}

/// The object Load loaded (`0x80xxxxxx`).
pub fn loaded(response: Response<'_>) -> Result<u32, TpmError> {
    let mut params = response.params;
    params.tpm2b("name")?;
    params.finish("Load")?;
    handle_of(&response.handles, 0x80, "Load")
}

/// The new policy or trial session of StartAuthSession (`0x03xxxxxx`).
pub fn session_handle(response: Response<'_>) -> Result<u32, TpmError> {
    let mut params = response.params;
    params.tpm2b("nonceTPM")?;
    params.finish("StartAuthSession")?;
    handle_of(&response.handles, 0x03, "StartAuthSession")
}

/// The sealed object Create made.
pub fn created(response: Response<'_>) -> Result<Sealed, TpmError> {
    let mut params = response.params;
    let private = params.tpm2b("outPrivate")?.to_vec();
    let public = params.tpm2b("outPublic")?.to_vec();
    params.tpm2b("creationData")?;
    params.tpm2b("creationHash")?;
    creation_ticket(&mut params)?;
    params.finish("Create")?;
    if private.is_empty() || public.is_empty() {
        return Err(TpmError::Malformed("Create: an empty private or public area".into()));
    }
    Ok(Sealed { public, private })
}

/// The data Unseal returned.
pub fn unsealed(response: Response<'_>) -> Result<Zeroizing<Vec<u8>>, TpmError> {
    let mut params = response.params;
    let data = Zeroizing::new(params.tpm2b("outData")?.to_vec());
    params.finish("Unseal")?;
    Ok(data)
}

/// The SHA-256 policy digest PolicyGetDigest returned.
pub fn policy_digest(response: Response<'_>) -> Result<Vec<u8>, TpmError> {
    let mut params = response.params;
    let digest = params.tpm2b("policyDigest")?.to_vec();
    params.finish("PolicyGetDigest")?;
    match digest.len() {
        32 => Ok(digest),
        len => Err(TpmError::Malformed(format!("PolicyGetDigest: a digest of {len} bytes, not 32"))),
    }
}

/// A response with no parameters (FlushContext, PolicyPCR).
pub fn nothing(response: Response<'_>) -> Result<(), TpmError> {
    response.params.finish("the response")
}

fn creation_ticket(params: &mut Reader<'_>) -> Result<(), TpmError> {
    params.u16("creationTicket")?;
    params.u32("creationTicket")?;
    params.tpm2b("creationTicket")?;
    Ok(())
}

fn handle_of(handles: &[u32], kind: u32, command: &'static str) -> Result<u32, TpmError> {
    match handles {
        [handle] if handle >> 24 == kind => Ok(*handle),
        _ => Err(TpmError::Malformed(format!("{command}: not a handle of the kind asked for: {handles:x?}"))),
    }
}
