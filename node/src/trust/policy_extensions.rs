//! The agency policy's extensions this build reads: settings added after
//! policy format 1, carried in [`AgencyPolicyBody::extensions`] (an older
//! build carries them, signed, and ignores them).
//!
//! - **Largest file** ([`EXT_MAX_FILE_MB`]): the largest attachment, in
//!   MiB, a device of the agency sends or fetches. Its value is a `u32`,
//!   big-endian, exactly 4 bytes, 1 to [`MAX_POLICY_FILE_MB`] (what the
//!   file format itself carries). A device obeys the lower of this and its
//!   own limit.
//!
//! An extension this build knows but cannot read (wrong length, a value out
//! of range, given twice) makes the whole policy invalid: its operator meant
//! something this build cannot obey, and guessing would be worse.

use super::{AgencyPolicyBody, PolicyExtension, TrustError};

/// Tag of the largest-file extension.
pub const EXT_MAX_FILE_MB: u16 = 1;
/// Highest largest-file value, in MiB: the file format's own limit.
pub const MAX_POLICY_FILE_MB: u32 = (crate::wire::MAX_FILE_LEN >> 20) as u32;
/// Length of the largest-file value.
const MAX_FILE_MB_LEN: usize = 4;

/// The extensions this build reads, decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KnownExtensions {
    /// The agency's largest file in MiB (`None`: the agency sets none).
    pub max_file_mb: Option<u32>,
}

impl KnownExtensions {
    /// Reads the known extensions of `extensions`, checking each value;
    /// unknown tags are skipped.
    pub fn decode(extensions: &[PolicyExtension]) -> Result<Self, TrustError> {
        let mut known = KnownExtensions::default();
        for extension in extensions {
            if extension.tag == EXT_MAX_FILE_MB {
                if known.max_file_mb.is_some() {
                    return Err(invalid("the largest file size is given twice"));
                }
                known.max_file_mb = Some(decode_max_file_mb(&extension.value)?);
            }
        }
        Ok(known)
    }

    /// These settings as extensions, in tag order.
    pub fn encode(&self) -> Result<Vec<PolicyExtension>, TrustError> {
        let mut out = Vec::new();
        if let Some(mb) = self.max_file_mb {
            check_max_file_mb(mb)?;
            out.push(PolicyExtension {
                tag: EXT_MAX_FILE_MB,
                value: mb.to_be_bytes().to_vec(),
            });
        }
        Ok(out)
    }

    /// Reads the known extensions of a policy body.
    pub fn of(body: &AgencyPolicyBody) -> Result<Self, TrustError> {
        Self::decode(&body.extensions)
    }

    /// The words [`super::PolicySettings::describe`] gets after it: ", files up to 25 MiB".
    pub fn describe(&self) -> String {
        match self.max_file_mb {
            Some(mb) => format!(", files up to {mb} MiB"),
            None => String::new(),
        }
    }
}

fn decode_max_file_mb(value: &[u8]) -> Result<u32, TrustError> {
    let bytes: [u8; MAX_FILE_MB_LEN] = value.try_into().map_err(|_| {
        invalid(format!(
            "the largest file size takes {MAX_FILE_MB_LEN} bytes, not {}",
            value.len()
        ))
    })?;
    let mb = u32::from_be_bytes(bytes);
    check_max_file_mb(mb)?;
    Ok(mb)
}

fn check_max_file_mb(mb: u32) -> Result<(), TrustError> {
    if mb == 0 || mb > MAX_POLICY_FILE_MB {
        return Err(invalid(format!(
            "the largest file size must be 1 to {MAX_POLICY_FILE_MB} MiB, not {mb}"
        )));
    }
    Ok(())
}

fn invalid(reason: impl Into<String>) -> TrustError {
    TrustError::invalid("agency policy", reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(tag: u16, value: &[u8]) -> PolicyExtension {
        PolicyExtension {
            tag,
            value: value.to_vec(),
        }
    }

    #[test]
    fn the_largest_file_size_round_trips_as_four_big_endian_bytes() {
        let known = KnownExtensions {
            max_file_mb: Some(25),
        };
        let encoded = known.encode().expect("valid");
        assert_eq!(encoded, vec![ext(EXT_MAX_FILE_MB, &[0, 0, 0, 25])]);
        assert_eq!(KnownExtensions::decode(&encoded).expect("reads"), known);
        assert_eq!(known.describe(), ", files up to 25 MiB");
        // None set: nothing carried, nothing said.
        let none = KnownExtensions::default();
        assert!(none.encode().expect("valid").is_empty());
        assert_eq!(KnownExtensions::decode(&[]).expect("reads"), none);
        assert_eq!(none.describe(), "");
        // The bounds are the format's.
        assert_eq!(MAX_POLICY_FILE_MB, 128);
        for mb in [1, MAX_POLICY_FILE_MB] {
            let known = KnownExtensions {
                max_file_mb: Some(mb),
            };
            let encoded = known.encode().expect("in range");
            assert_eq!(KnownExtensions::decode(&encoded).expect("reads"), known);
        }
    }

    #[test]
    fn unknown_extensions_are_skipped_and_a_bad_known_one_is_refused() {
        let with_unknown = [
            ext(40, &[9; 256]),
            ext(EXT_MAX_FILE_MB, &[0, 0, 0, 1]),
            ext(41, &[]),
        ];
        assert_eq!(
            KnownExtensions::decode(&with_unknown)
                .expect("reads")
                .max_file_mb,
            Some(1)
        );
        let refused = |extensions: &[PolicyExtension]| {
            KnownExtensions::decode(extensions)
                .expect_err("refused")
                .to_string()
        };
        assert!(refused(&[ext(EXT_MAX_FILE_MB, &[0, 0, 25])]).contains("4 bytes, not 3"));
        assert!(refused(&[ext(EXT_MAX_FILE_MB, &[0; 8])]).contains("4 bytes, not 8"));
        assert!(refused(&[ext(EXT_MAX_FILE_MB, &[0; 4])]).contains("1 to 128 MiB, not 0"));
        assert!(refused(&[ext(EXT_MAX_FILE_MB, &129u32.to_be_bytes())]).contains("not 129"));
        assert!(
            refused(&vec![ext(EXT_MAX_FILE_MB, &[0, 0, 0, 5]); 2]).contains("given twice"),
            "one value, not two to choose from"
        );
        for mb in [0, MAX_POLICY_FILE_MB + 1, u32::MAX] {
            let known = KnownExtensions {
                max_file_mb: Some(mb),
            };
            assert!(known.encode().is_err(), "{mb} MiB is not signed");
        }
    }
}
