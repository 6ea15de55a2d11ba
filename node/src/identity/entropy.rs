//! Where random bytes come from: passed in, never fetched behind the caller's back.

use std::fmt;

/// A source of cryptographically strong random bytes.
pub trait Entropy {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);

    /// Returns `N` random bytes.
    fn array<const N: usize>(&mut self) -> [u8; N]
    where
        Self: Sized,
    {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }
}

/// The operating system's random number generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        // Without OS randomness no key can be made safely; there is no
        // sensible fallback, so stop rather than produce weak keys.
        getrandom::fill(buf).expect("the operating system's random number generator failed");
    }
}

/// Deterministic bytes from a seed (BLAKE3 in XOF mode), for tests and
/// reproducible simulations. Never use for real keys.
pub struct SeededEntropy {
    reader: blake3::OutputReader,
}

impl SeededEntropy {
    /// A stream determined entirely by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key("baro/seeded-entropy/v1");
        hasher.update(&seed.to_le_bytes());
        SeededEntropy {
            reader: hasher.finalize_xof(),
        }
    }
}

impl fmt::Debug for SeededEntropy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeededEntropy")
    }
}

impl Entropy for SeededEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        self.reader.fill(buf);
    }
}
