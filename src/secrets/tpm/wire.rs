//! The TPM 2.0 wire format, without I/O: big-endian integers and TPM2B fields written into a
//! command, and read back from a response with every length checked against what remains.

use super::error::TpmError;
use super::rc::ResponseCode;
use zeroize::Zeroizing;

/// `TPM_ST_NO_SESSIONS`.
pub const NO_SESSIONS: u16 = 0x8001;
/// `TPM_ST_SESSIONS`.
pub const SESSIONS: u16 = 0x8002;
/// The size of a command or response header (tag, size, code).
pub const HEADER: usize = 10;
/// The largest response accepted (TPMs answer at most 4096 bytes).
pub const MAX_RESPONSE: usize = 4096;

/// Bytes being marshalled; wiped when dropped, as a command may hold the data key.
#[derive(Default)]
pub struct Writer(Zeroizing<Vec<u8>>);

impl Writer {
    /// Appends a byte.
    pub fn u8(&mut self, value: u8) -> &mut Self {
        self.0.push(value);
        self
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, value: u16) -> &mut Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, value: u32) -> &mut Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Appends bytes as they are.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }

    /// Appends a TPM2B: a `u16` size, then the bytes.
    pub fn tpm2b(&mut self, what: &'static str, bytes: &[u8]) -> Result<&mut Self, TpmError> {
        let size = u16::try_from(bytes.len()).map_err(|_| TpmError::TooLong(what))?;
        Ok(self.u16(size).raw(bytes))
    }

    /// The bytes written so far.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A password authorization (`TPM_RS_PW`) with the empty password, or a policy session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The empty password.
    Password,
    /// A policy session whose policy is already satisfied; the TPM ends it after the command.
    Policy(u32),
}

const RS_PW: u32 = 0x4000_0009;

/// A whole command: header, `handles`, the authorization area when `auths` is not empty, and
/// `params`.
pub fn command(code: u32, handles: &[u32], auths: &[Auth], params: &[u8]) -> Result<Writer, TpmError> {
    let mut area = Writer::default();
    for auth in auths {
        let handle = match auth {
            Auth::Password => RS_PW,
            Auth::Policy(session) => *session,
        };
        // nonceCaller and hmac empty; sessionAttributes clear (continueSession too).
        area.u32(handle).u16(0).u8(0).u16(0);
    }
    let mut body = Writer::default();
    for handle in handles {
        body.u32(*handle);
    }
    let tag = match auths.is_empty() {
        true => NO_SESSIONS,
        false => {
            let size = u32::try_from(area.bytes().len()).map_err(|_| TpmError::TooLong("authorization area"))?;
            body.u32(size).raw(area.bytes());
            SESSIONS
        }
    };
    body.raw(params);
    let size = u32::try_from(HEADER + body.bytes().len()).map_err(|_| TpmError::TooLong("command"))?;
    let mut out = Writer::default();
    out.u16(tag).u32(size).u32(code).raw(body.bytes());
    Ok(out)
}

/// Reads a response or a blob, failing (never panicking) on any length that does not fit.
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// The next `len` bytes (`what`, for the error).
    pub fn take(&mut self, what: &'static str, len: usize) -> Result<&'a [u8], TpmError> {
        let (taken, rest) = self.rest.split_at_checked(len).ok_or_else(|| truncated(what, len, self.rest.len()))?;
        self.rest = rest;
        Ok(taken)
    }

    /// The next `N` bytes.
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], TpmError> {
        let (taken, rest) = self.rest.split_first_chunk::<N>().ok_or_else(|| truncated(what, N, self.rest.len()))?;
        self.rest = rest;
        Ok(*taken)
    }

    /// A byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, TpmError> {
        self.array::<1>(what).map(u8::from_be_bytes)
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, TpmError> {
        self.array(what).map(u16::from_be_bytes)
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, TpmError> {
        self.array(what).map(u32::from_be_bytes)
    }

    /// A TPM2B's bytes: its `u16` size, checked against what remains.
    pub fn tpm2b(&mut self, what: &'static str) -> Result<&'a [u8], TpmError> {
        let size = self.u16(what)?;
        self.take(what, usize::from(size))
    }

    /// Fails unless everything was read.
    pub fn finish(&self, what: &'static str) -> Result<(), TpmError> {
        match self.rest.len() {
            0 => Ok(()),
            extra => Err(TpmError::Malformed(format!("{extra} bytes too many after {what}"))),
        }
    }
}

fn truncated(what: &'static str, wanted: usize, left: usize) -> TpmError {
    TpmError::Malformed(format!("truncated in {what}: {wanted} bytes wanted, {left} left"))
}

/// The handles and parameters of a successful response to `command`, which returns `handles`
/// handles and was sent with `sessions` authorizations.
pub struct Response<'a> {
    /// The handles, in order.
    pub handles: Vec<u32>,
    /// The parameters, to be read to their end.
    pub params: Reader<'a>,
}

/// Checks a response's header (its size is what came, its code success, its tag what the
/// command calls for), its handles, parameter size and authorization area.
pub fn response<'a>(
    command: &'static str,
    bytes: &'a [u8],
    handles: usize,
    sessions: usize,
) -> Result<Response<'a>, TpmError> {
    let malformed = |why: String| TpmError::Malformed(format!("{command}: {why}"));
    let mut reader = Reader::new(bytes);
    let tag = reader.u16("the response header")?;
    let size = reader.u32("the response header")?;
    let code = reader.u32("the response header")?;
    if usize::try_from(size).ok() != Some(bytes.len()) {
        return Err(malformed(format!("the response says {size} bytes, {} came", bytes.len())));
    }
    if code != 0 {
        reader.finish("an error response")?;
        return Err(TpmError::Refused { command, rc: ResponseCode(code) });
    }
    let expected = match sessions {
        0 => NO_SESSIONS,
        _ => SESSIONS,
    };
    if tag != expected {
        return Err(malformed(format!("tag {tag:#06x} where {expected:#06x} was due")));
    }
    let mut found = Vec::with_capacity(handles);
    for _ in 0..handles {
        found.push(reader.u32("the response handles")?);
    }
    let params = match sessions {
        0 => reader,
        _ => {
            let size = reader.u32("the parameter size")?;
            let params = reader.take("the parameters", usize::try_from(size).unwrap_or(usize::MAX))?;
            for _ in 0..sessions {
                reader.tpm2b("a session's nonce")?;
                reader.u8("a session's attributes")?;
                reader.tpm2b("a session's HMAC")?;
            }
            reader.finish("the authorization area")?;
            Reader::new(params)
        }
    };
    Ok(Response { handles: found, params })
}
