//! The sealed data key as kept on disk: a version, the PCRs it is bound to, and the TPM's
//! public and private areas, each length-prefixed and checked when read back.

use super::PcrSelection;
use super::client::Sealed;
use super::error::TpmError;
use super::wire::{Reader, Writer};

const VERSION: u8 = 1;

/// The blob of `sealed`, bound to `pcrs`.
pub fn encode(pcrs: Option<&PcrSelection>, sealed: &Sealed) -> Result<Vec<u8>, TpmError> {
    let indices = pcrs.map(|p| p.pcrs.as_slice()).unwrap_or_default();
    let mut out = Writer::default();
    out.u8(VERSION).u8(u8::try_from(indices.len()).map_err(|_| TpmError::TooLong("the PCR list"))?).raw(indices);
    out.tpm2b("the public area", &sealed.public)?.tpm2b("the private area", &sealed.private)?;
    Ok(out.bytes().to_vec())
}

/// The PCRs and sealed object of a blob [`encode`] made.
pub fn decode(blob: &[u8]) -> Result<(Option<PcrSelection>, Sealed), TpmError> {
    read(blob).map_err(|e| TpmError::Malformed(format!("the sealed data key: {e}")))
}

fn read(blob: &[u8]) -> Result<(Option<PcrSelection>, Sealed), TpmError> {
    let malformed = |why: &str| TpmError::Malformed(why.to_string());
    let mut reader = Reader::new(blob);
    let version = reader.u8("the version")?;
    if version != VERSION {
        return Err(malformed(&format!("version {version}, not {VERSION}")));
    }
    let count = reader.u8("the PCR list")?;
    let indices = reader.take("the PCR list", usize::from(count))?;
    if !indices.is_sorted_by(|a, b| a < b) || indices.iter().any(|pcr| *pcr >= 24) {
        return Err(malformed("a PCR list out of order or out of range"));
    }
    let public = reader.tpm2b("the public area")?.to_vec();
    let private = reader.tpm2b("the private area")?.to_vec();
    reader.finish("the private area")?;
    if public.is_empty() || private.is_empty() {
        return Err(malformed("an empty public or private area"));
    }
    let pcrs = (!indices.is_empty()).then(|| PcrSelection { pcrs: indices.to_vec() });
    Ok((pcrs, Sealed { public, private }))
}
