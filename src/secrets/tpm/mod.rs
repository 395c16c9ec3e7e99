//! The TPM 2.0 store: the data key is a keyedhash object sealed under a primary key made from a
//! fixed template in the owner hierarchy (`fixedTPM|fixedParent`, `noDA`), optionally bound to
//! PCR values. Commands are marshalled by hand and sent to a character device (`/dev/tpmrm0`,
//! the kernel's resource manager) or to swtpm's TCP command port.

mod blob;
mod client;
mod commands;
mod error;
mod rc;
mod transport;
mod wire;

use super::envelope::DataKey;
use super::{KeyError, SecretStore};
use client::Client;
pub use error::TpmError;
pub use rc::ResponseCode;
use std::path::PathBuf;

/// The kernel's TPM resource manager, the default device.
pub const DEFAULT_DEVICE: &str = "/dev/tpmrm0";

/// Where the TPM is (`secrets.tpmDevice`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TpmDevice {
    /// A TPM character device, such as `/dev/tpmrm0`.
    Device(PathBuf),
    /// swtpm's TCP command port (`swtpm:HOST:PORT`, HOST a loopback address), for tests and
    /// development.
    Swtpm {
        /// The host swtpm listens on.
        host: String,
        /// Its command port.
        port: u16,
    },
}

impl TpmDevice {
    /// Reads `/dev/tpmrm0`, another device path, or `swtpm:HOST:PORT`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("swtpm:") {
            let (host, port) = rest.rsplit_once(':').ok_or("expected swtpm:HOST:PORT")?;
            let port = port.parse().map_err(|_| "expected swtpm:HOST:PORT with a port number")?;
            // The data key crosses swtpm's port in clear: it must never leave the box.
            let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err("expected swtpm:HOST:PORT with a loopback HOST (127.0.0.1, ::1 or localhost)".into());
            }
            return Ok(TpmDevice::Swtpm { host: host.to_string(), port });
        }
        match text.starts_with('/') {
            true => Ok(TpmDevice::Device(PathBuf::from(text))),
            false => Err("expected a device path such as /dev/tpmrm0, or swtpm:HOST:PORT".into()),
        }
    }

    /// The text [`TpmDevice::parse`] reads back.
    pub fn render(&self) -> String {
        match self {
            TpmDevice::Device(path) => path.display().to_string(),
            TpmDevice::Swtpm { host, port } => format!("swtpm:{host}:{port}"),
        }
    }
}

/// The PCRs a data key is bound to (`secrets.pcrPolicy`, such as `sha256:7` or `sha256:0,2,7`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrSelection {
    /// PCR indices in the SHA-256 bank, ascending, each below 24.
    pub pcrs: Vec<u8>,
}

impl PcrSelection {
    /// Reads `sha256:N[,N...]`; empty text is no policy.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let list = text.strip_prefix("sha256:").ok_or("expected sha256:N[,N...] such as sha256:7")?;
        let mut pcrs = Vec::new();
        for item in list.split(',').map(str::trim) {
            match item.parse::<u8>() {
                Ok(pcr) if pcr < 24 => pcrs.push(pcr),
                _ => return Err(format!("\"{item}\" is not a PCR from 0 to 23")),
            }
        }
        pcrs.sort_unstable();
        pcrs.dedup();
        Ok(Some(PcrSelection { pcrs }))
    }

    /// The text [`PcrSelection::parse`] reads back.
    pub fn render(&self) -> String {
        let list: Vec<String> = self.pcrs.iter().map(u8::to_string).collect();
        format!("sha256:{}", list.join(","))
    }
}

/// The data key's store on a TPM 2.0.
pub struct Tpm {
    device: TpmDevice,
    pcrs: Option<PcrSelection>,
}

impl Tpm {
    /// The store on `device`, binding new keys to `pcrs` when given.
    pub fn new(device: TpmDevice, pcrs: Option<PcrSelection>) -> Self {
        Tpm { device, pcrs }
    }
}

impl SecretStore for Tpm {
    fn describe(&self) -> String {
        let policy =
            self.pcrs.as_ref().map(|p| format!(", new data keys bound to PCRs {}", p.render())).unwrap_or_default();
        format!("TPM 2.0 at {}{policy}", self.device.render())
    }

    fn hardware(&self) -> bool {
        true
    }

    fn kind(&self) -> &'static str {
        "tpm"
    }

    fn seal(&self, key: &DataKey) -> Result<Vec<u8>, KeyError> {
        seal_on(&Client::new(transport::open(&self.device)?), key, self.pcrs.as_ref())
    }

    fn unseal(&self, blob: &[u8]) -> Result<DataKey, KeyError> {
        let (pcrs, sealed) = blob::decode(blob)?;
        unseal_on(&Client::new(transport::open(&self.device)?), &sealed, pcrs.as_ref())
    }
}

/// `key` sealed by the TPM behind `client`, bound to `pcrs` when given: the blob to keep.
fn seal_on(client: &Client, key: &DataKey, pcrs: Option<&PcrSelection>) -> Result<Vec<u8>, KeyError> {
    let primary = client.primary()?;
    let policy = match pcrs {
        Some(pcrs) => Some(client.policy_digest(pcrs)?),
        None => None,
    };
    let sealed = client.create(&primary, key.bytes(), policy.as_deref())?;
    Ok(blob::encode(pcrs, &sealed)?)
}

/// The data key in `sealed`, unsealed by the TPM behind `client` (through a policy session of
/// `pcrs` when it is bound to them).
fn unseal_on(client: &Client, sealed: &client::Sealed, pcrs: Option<&PcrSelection>) -> Result<DataKey, KeyError> {
    let primary = client.primary()?;
    let item = client.load(&primary, sealed)?;
    let data = client.unseal(&item, pcrs)?;
    DataKey::from_bytes(&data).map_err(|e| KeyError::Corrupt(format!("the TPM unsealed no data key: {e}")))
}

#[cfg(test)]
mod conformance;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_policies_parse_and_render_back() {
        for text in ["/dev/tpmrm0", "swtpm:127.0.0.1:2321"] {
            assert_eq!(TpmDevice::parse(text).unwrap().render(), text);
        }
        assert!(TpmDevice::parse("tpmrm0").is_err());
        assert!(TpmDevice::parse("swtpm:127.0.0.1").is_err());
        assert!(TpmDevice::parse("swtpm::2321").is_err());
        assert!(TpmDevice::parse("swtpm:192.0.2.7:2321").is_err(), "the data key never leaves the box");
        assert!(TpmDevice::parse("swtpm:localhost:2321").is_ok());
        assert_eq!(PcrSelection::parse("").unwrap(), None);
        assert_eq!(PcrSelection::parse("sha256:7,0,7").unwrap().unwrap().render(), "sha256:0,7");
        assert!(PcrSelection::parse("sha1:7").is_err());
        assert!(PcrSelection::parse("sha256:24").is_err());
        assert!(PcrSelection::parse("sha256:").is_err());
    }
}
