//! TPM 2.0 response codes (Part 2, 6.6) decoded into the names the specification gives them,
//! with the parameter, handle or session a format-one code points at.

/// A response code other than success, as the TPM (or the kernel's resource manager) sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseCode(pub u32);

const FMT1: u32 = 0x080;
const VER1: u32 = 0x100;
const WARN: u32 = 0x900;
const PARAMETER: u32 = 0x040;
const SESSION: u32 = 0x800;

/// Format-one codes (`RC_FMT1 + n`), which may name a parameter, handle or session.
const FORMAT_ONE: &[(u32, &str)] = &[
    (0x01, "ASYMMETRIC"),
    (0x02, "ATTRIBUTES"),
    (0x03, "HASH"),
    (0x04, "VALUE"),
    (0x05, "HIERARCHY"),
    (0x07, "KEY_SIZE"),
    (0x08, "MGF"),
    (0x09, "MODE"),
    (0x0A, "TYPE"),
    (0x0B, "HANDLE"),
    (0x0C, "KDF"),
    (0x0D, "RANGE"),
    (0x0E, "AUTH_FAIL"),
    (0x0F, "NONCE"),
    (0x10, "PP"),
    (0x12, "SCHEME"),
    (0x15, "SIZE"),
    (0x16, "SYMMETRIC"),
    (0x17, "TAG"),
    (0x18, "SELECTOR"),
    (0x1A, "INSUFFICIENT"),
    (0x1B, "SIGNATURE"),
    (0x1C, "KEY"),
    (0x1D, "POLICY_FAIL"),
    (0x1F, "INTEGRITY"),
    (0x20, "TICKET"),
    (0x21, "RESERVED_BITS"),
    (0x22, "BAD_AUTH"),
    (0x23, "EXPIRED"),
    (0x24, "POLICY_CC"),
    (0x25, "BINDING"),
    (0x26, "CURVE"),
    (0x27, "ECC_POINT"),
];

/// Format-zero codes, errors (`RC_VER1 + n`) and warnings (`RC_WARN + n`).
const FORMAT_ZERO: &[(u32, &str)] = &[
    (VER1, "INITIALIZE"),
    (VER1 + 0x01, "FAILURE"),
    (VER1 + 0x03, "SEQUENCE"),
    (VER1 + 0x0B, "PRIVATE"),
    (VER1 + 0x19, "HMAC"),
    (VER1 + 0x20, "DISABLED"),
    (VER1 + 0x21, "EXCLUSIVE"),
    (VER1 + 0x24, "AUTH_TYPE"),
    (VER1 + 0x25, "AUTH_MISSING"),
    (VER1 + 0x26, "POLICY"),
    (VER1 + 0x27, "PCR"),
    (VER1 + 0x28, "PCR_CHANGED"),
    (VER1 + 0x2D, "UPGRADE"),
    (VER1 + 0x2E, "TOO_MANY_CONTEXTS"),
    (VER1 + 0x2F, "AUTH_UNAVAILABLE"),
    (VER1 + 0x30, "REBOOT"),
    (VER1 + 0x31, "UNBALANCED"),
    (VER1 + 0x42, "COMMAND_SIZE"),
    (VER1 + 0x43, "COMMAND_CODE"),
    (VER1 + 0x44, "AUTHSIZE"),
    (VER1 + 0x45, "AUTH_CONTEXT"),
    (VER1 + 0x50, "BAD_CONTEXT"),
    (VER1 + 0x51, "CPHASH"),
    (VER1 + 0x52, "PARENT"),
    (VER1 + 0x53, "NEEDS_TEST"),
    (VER1 + 0x54, "NO_RESULT"),
    (VER1 + 0x55, "SENSITIVE"),
    (WARN + 0x01, "CONTEXT_GAP"),
    (WARN + 0x02, "OBJECT_MEMORY"),
    (WARN + 0x03, "SESSION_MEMORY"),
    (WARN + 0x04, "MEMORY"),
    (WARN + 0x05, "SESSION_HANDLES"),
    (WARN + 0x06, "OBJECT_HANDLES"),
    (WARN + 0x07, "LOCALITY"),
    (WARN + 0x08, "YIELDED"),
    (WARN + 0x09, "CANCELED"),
    (WARN + 0x0A, "TESTING"),
    (WARN + 0x20, "NV_RATE"),
    (WARN + 0x21, "LOCKOUT"),
    (WARN + 0x22, "RETRY"),
    (WARN + 0x23, "NV_UNAVAILABLE"),
];

impl ResponseCode {
    /// `TPM_RC_INTEGRITY`: a blob whose integrity check fails (made by another TPM, or altered).
    pub const INTEGRITY: u32 = FMT1 + 0x1F;
    /// `TPM_RC_POLICY_FAIL`: the policy session does not satisfy the object's policy.
    pub const POLICY_FAIL: u32 = FMT1 + 0x1D;

    /// Whether the code is from the TPM itself (not a resource manager or driver layer) and
    /// uses format one.
    fn format_one(self) -> bool {
        self.0 >> 12 == 0 && self.0 & FMT1 != 0
    }

    /// The code without its parameter, handle or session number.
    fn base(self) -> u32 {
        match self.format_one() {
            true => self.0 & (FMT1 | 0x3F),
            false => self.0,
        }
    }

    /// Whether the code is `code` (such as [`ResponseCode::INTEGRITY`]), whatever it points at.
    pub fn is(self, code: u32) -> bool {
        self.base() == code
    }

    /// A PCR policy that does not match the PCRs now.
    pub fn is_policy_failure(self) -> bool {
        [Self::POLICY_FAIL, VER1 + 0x26, VER1 + 0x28].contains(&self.base())
    }

    /// The TPM refuses on purpose: an integrity, authorization or policy check failed, or the
    /// hierarchy is disabled.
    pub fn is_refusal(self) -> bool {
        let refusals = [Self::INTEGRITY, FMT1 + 0x0E, FMT1 + 0x22, FMT1 + 0x05, VER1 + 0x20, WARN + 0x21];
        self.is_policy_failure() || refusals.contains(&self.base())
    }

    /// A format-one code naming a parameter or a handle: the TPM rejected something we sent
    /// (for Load, something of the blob).
    pub fn is_bad_parameter(self) -> bool {
        self.format_one() && (self.0 & PARAMETER != 0 || self.0 & SESSION == 0)
    }

    fn name(self) -> Option<&'static str> {
        let (table, code) = match self.format_one() {
            true => (FORMAT_ONE, self.0 & 0x3F),
            false => (FORMAT_ZERO, self.0),
        };
        table.iter().find(|(value, _)| *value == code).map(|(_, name)| *name)
    }
}

impl std::fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => write!(f, "TPM_RC_{name}")?,
            None => write!(f, "TPM_RC {:#010x}", self.0)?,
        }
        if self.format_one() {
            let number = (self.0 >> 8) & 0xF;
            if self.0 & PARAMETER != 0 {
                write!(f, " (parameter {number})")?;
            } else if self.0 & SESSION != 0 {
                write!(f, " (session {})", number & 0x7)?;
            } else if number != 0 {
                write!(f, " (handle {number})")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_as_the_specification_names_them() {
        let cases = [
            (0x09F, "TPM_RC_INTEGRITY"),
            (0x1DF, "TPM_RC_INTEGRITY (parameter 1)"),
            (0x19F, "TPM_RC_INTEGRITY (handle 1)"),
            (0x99D, "TPM_RC_POLICY_FAIL (session 1)"),
            (0x184, "TPM_RC_VALUE (handle 1)"),
            (0x2C4, "TPM_RC_VALUE (parameter 2)"),
            (0x100, "TPM_RC_INITIALIZE"),
            (0x128, "TPM_RC_PCR_CHANGED"),
            (0x902, "TPM_RC_OBJECT_MEMORY"),
            (0x921, "TPM_RC_LOCKOUT"),
            (0x000B_0902, "TPM_RC 0x000b0902"),
            (0x07F, "TPM_RC 0x0000007f"),
        ];
        for (code, text) in cases {
            assert_eq!(ResponseCode(code).to_string(), text, "{code:#x}");
        }
        assert!(ResponseCode(0x1DF).is(ResponseCode::INTEGRITY));
        assert!(ResponseCode(0x99D).is_policy_failure());
        assert!(ResponseCode(0x99D).is_refusal());
        assert!(!ResponseCode(0x99D).is_bad_parameter());
        assert!(ResponseCode(0x2C4).is_bad_parameter());
        assert!(!ResponseCode(0x902).is_refusal());
        assert!(!ResponseCode(0x000B_0902).is_bad_parameter());
    }
}
