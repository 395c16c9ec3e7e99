//! How commands reach the TPM: a character device (the kernel's `/dev/tpmrm0`) or swtpm's TCP
//! command port. One command out, one whole response back.

use super::TpmDevice;
use super::error::TpmError;
use super::wire::{HEADER, MAX_RESPONSE};
use crate::storage::fs::open_device;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;
use zeroize::Zeroizing;

/// How long swtpm may take to accept, or to answer one command, before it counts as dead.
const SWTPM_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends one command and returns its whole response, unchecked (the parser checks it).
pub trait Transport {
    /// Sends `bytes`, the command `name`, and reads its response.
    fn transact(&mut self, name: &'static str, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, TpmError>;
}

/// Opens `device`.
pub fn open(device: &TpmDevice) -> Result<Box<dyn Transport>, TpmError> {
    let unreachable = |e: std::io::Error| TpmError::Unreachable(format!("{}: {e}", device.render()));
    match device {
        TpmDevice::Device(path) => {
            let file = open_device(path).map_err(unreachable)?;
            Ok(Box::new(CharDevice(file)))
        }
        TpmDevice::Swtpm { host, port } => {
            let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
            for address in (host.as_str(), *port).to_socket_addrs().map_err(unreachable)? {
                match TcpStream::connect_timeout(&address, SWTPM_TIMEOUT) {
                    Ok(stream) => {
                        stream.set_read_timeout(Some(SWTPM_TIMEOUT)).map_err(unreachable)?;
                        stream.set_write_timeout(Some(SWTPM_TIMEOUT)).map_err(unreachable)?;
                        return Ok(Box::new(SwtpmPort(stream)));
                    }
                    Err(e) => last = e,
                }
            }
            Err(unreachable(last))
        }
    }
}

/// A TPM character device: the driver takes a command in one write and gives the whole
/// response in one read.
struct CharDevice(File);

impl Transport for CharDevice {
    fn transact(&mut self, name: &'static str, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, TpmError> {
        let io = |e: std::io::Error| TpmError::Io { command: name, why: e.to_string() };
        self.0.write_all(bytes).map_err(io)?;
        let mut response = Zeroizing::new(vec![0; MAX_RESPONSE]);
        let len = self.0.read(&mut response).map_err(io)?;
        response.truncate(len);
        Ok(response)
    }
}

/// swtpm's command port: a stream of raw commands and responses, each response framed by the
/// size in its header.
struct SwtpmPort(TcpStream);

impl Transport for SwtpmPort {
    fn transact(&mut self, name: &'static str, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, TpmError> {
        let io = |e: std::io::Error| TpmError::Io { command: name, why: e.to_string() };
        self.0.write_all(bytes).map_err(io)?;
        let mut header = [0u8; HEADER];
        self.0.read_exact(&mut header).map_err(io)?;
        let [_, _, a, b, c, d, ..] = header;
        let size = usize::try_from(u32::from_be_bytes([a, b, c, d])).unwrap_or(usize::MAX);
        if !(HEADER..=MAX_RESPONSE).contains(&size) {
            return Err(TpmError::Malformed(format!("{name}: a response of {size} bytes")));
        }
        let mut response = Zeroizing::new(vec![0; size]);
        let (head, rest) = response.split_at_mut(HEADER);
        head.copy_from_slice(&header);
        self.0.read_exact(rest).map_err(io)?;
        Ok(response)
    }
}
