//! Passphrase protection (argon2id): the agency root and operator keys
//! under the operator's passphrase, and a device's storage key under its PIN.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{CryptoError, Sealed};
use crate::identity::Entropy;
use crate::wire::{Format, Kind};

/// A passphrase, zeroized on drop and never printed.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Shortest accepted passphrase for new key files.
    pub const MIN_LEN: usize = 8;

    /// Wraps a passphrase (any length: old files are opened with what is given).
    pub fn new(text: String) -> Self {
        Passphrase(Zeroizing::new(text))
    }

    /// Wraps a passphrase already held in zeroized memory.
    pub fn from_zeroizing(text: Zeroizing<String>) -> Self {
        Passphrase(text)
    }

    /// Checks the passphrase is acceptable for protecting a new key.
    pub fn check_strength(&self) -> Result<(), CryptoError> {
        self.check_len(Self::MIN_LEN)
    }

    /// Checks the passphrase has at least `min` characters.
    pub fn check_len(&self, min: usize) -> Result<(), CryptoError> {
        if self.0.chars().count() < min {
            return Err(CryptoError::WeakPassphrase { min });
        }
        Ok(())
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// argon2id cost parameters, stored with each key file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: a fraction of a second on a laptop.
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

impl KdfParams {
    /// A device PIN on a phone-class machine: 64 MiB, 3 passes, 1 lane
    /// (about 0.1 s on a 2020s laptop core, some 0.3–0.5 s on a phone).
    pub const PHONE: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// A device PIN on a PC-class machine: 256 MiB, 3 passes, 1 lane
    /// (about half a second on one laptop core).
    pub const PC: KdfParams = KdfParams {
        memory_kib: 256 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// Largest memory cost a key file may ask for (1 GiB): a crafted file
    /// must not be able to exhaust memory.
    pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;

    fn derive(
        &self,
        passphrase: &Passphrase,
        salt: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        if self.memory_kib > Self::MAX_MEMORY_KIB || self.iterations > 16 || self.parallelism > 8 {
            return Err(CryptoError::BadKdfParams(format!(
                "{self:?} exceeds the limits"
            )));
        }
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| CryptoError::BadKdfParams(e.to_string()))?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.0.as_bytes(), salt, key.as_mut())
            .map_err(|e| CryptoError::BadKdfParams(e.to_string()))?;
        Ok(key)
    }
}

/// A secret sealed under a passphrase-derived key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassphraseSealed {
    /// argon2id parameters used.
    pub kdf: KdfParams,
    /// Random salt.
    pub salt: [u8; 16],
    /// The sealed secret.
    pub sealed: Sealed,
}

impl Format for PassphraseSealed {
    const KIND: Kind = Kind::PassphraseSealed;
    const MAX_LEN: usize = 4 * 1024;
}

impl PassphraseSealed {
    /// Seals `secret`; `purpose` (e.g. "agency root key") is bound as associated data.
    pub fn seal(
        passphrase: &Passphrase,
        purpose: &str,
        secret: &[u8],
        kdf: KdfParams,
        entropy: &mut impl Entropy,
    ) -> Result<Self, CryptoError> {
        passphrase.check_strength()?;
        Self::wrap(passphrase, purpose, secret, kdf, entropy)
    }

    /// Seals `secret` with no strength check: the caller applies its own
    /// rule (a device PIN may be shorter than an operator passphrase).
    pub fn wrap(
        passphrase: &Passphrase,
        purpose: &str,
        secret: &[u8],
        kdf: KdfParams,
        entropy: &mut impl Entropy,
    ) -> Result<Self, CryptoError> {
        let salt: [u8; 16] = entropy.array();
        let key = kdf.derive(passphrase, &salt)?;
        let sealed = Sealed::seal(&key, purpose.as_bytes(), secret, entropy);
        Ok(PassphraseSealed { kdf, salt, sealed })
    }

    /// Opens with `passphrase`; fails with [`CryptoError::WrongPassphrase`]
    /// if it is wrong or the file was altered.
    pub fn open(
        &self,
        passphrase: &Passphrase,
        purpose: &str,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let key = self.kdf.derive(passphrase, &self.salt)?;
        self.sealed
            .open(&key, purpose.as_bytes(), "key file")
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::WrongPassphrase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SeededEntropy;

    const FAST: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn right_passphrase_opens_wrong_one_does_not() {
        let mut entropy = SeededEntropy::new(3);
        let pass = Passphrase::new("correct horse".into());
        let sealed =
            PassphraseSealed::seal(&pass, "root", b"k3y", FAST, &mut entropy).expect("seal");
        assert_eq!(sealed.open(&pass, "root").expect("open").as_slice(), b"k3y");
        let wrong = Passphrase::new("battery staple".into());
        assert_eq!(
            sealed.open(&wrong, "root"),
            Err(CryptoError::WrongPassphrase)
        );
        assert_eq!(
            sealed.open(&pass, "operator"),
            Err(CryptoError::WrongPassphrase)
        );
    }

    #[test]
    fn short_passphrase_and_absurd_costs_are_refused() {
        let mut entropy = SeededEntropy::new(4);
        let short = Passphrase::new("abc".into());
        assert!(PassphraseSealed::seal(&short, "root", b"k", FAST, &mut entropy).is_err());
        let pass = Passphrase::new("long enough".into());
        let mut sealed =
            PassphraseSealed::seal(&pass, "root", b"k", FAST, &mut entropy).expect("seal");
        sealed.kdf.memory_kib = u32::MAX;
        assert!(matches!(
            sealed.open(&pass, "root"),
            Err(CryptoError::BadKdfParams(_))
        ));
    }
}
