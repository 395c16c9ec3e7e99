//! What can go wrong talking to the TPM, and what it means for the data key.

use super::rc::ResponseCode;
use crate::secrets::KeyError;

/// A TPM command that could not be sent, a response that makes no sense, or a TPM that said no.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TpmError {
    /// The device could not be opened, or swtpm not reached.
    #[error("cannot reach the TPM: {0}")]
    Unreachable(String),
    /// A command could not be written or its response read (a timeout, a closed connection).
    #[error("{command}: {why}")]
    Io {
        /// The command (`Load`).
        command: &'static str,
        /// What failed.
        why: String,
    },
    /// A response, or a blob read from disk, that breaks its own lengths or the protocol.
    #[error("{0}")]
    Malformed(String),
    /// The TPM answered with an error code.
    #[error("{command}: {rc}")]
    Refused {
        /// The command (`Unseal`).
        command: &'static str,
        /// What it answered.
        rc: ResponseCode,
    },
    /// A value too long for its TPM2B field (never from well-formed input).
    #[error("{0} is too long for the TPM")]
    TooLong(&'static str),
    /// The system gave no random bytes (for a session's nonce).
    #[error("the system has no randomness to give")]
    NoRandomness,
}

impl From<TpmError> for KeyError {
    fn from(error: TpmError) -> KeyError {
        let text = error.to_string();
        match &error {
            TpmError::Unreachable(_) | TpmError::Io { .. } | TpmError::NoRandomness => KeyError::Unavailable(text),
            TpmError::Malformed(_) | TpmError::TooLong(_) => KeyError::Corrupt(text),
            TpmError::Refused { command, rc } => {
                if rc.is(ResponseCode::INTEGRITY) && *command == "Load" {
                    KeyError::Refused(format!("the sealed data key was made by another TPM, or altered ({text})"))
                } else if rc.is_policy_failure() {
                    KeyError::Refused(format!("the PCR policy does not match the measured boot ({text})"))
                } else if rc.is_refusal() {
                    KeyError::Refused(format!("the TPM refused ({text})"))
                } else if rc.is_bad_parameter() {
                    KeyError::Corrupt(format!("the TPM rejected the sealed data key ({text})"))
                } else {
                    KeyError::Unavailable(format!("the TPM cannot do it now ({text})"))
                }
            }
        }
    }
}
