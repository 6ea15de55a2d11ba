//! The first step of admission: each side proves it holds the agency network
//! key, bound to this one connection, before any certificate is shown.
//!
//! Pure: key derivation and tags, no I/O (the exchange is in
//! [`super::admission`]). The key is a BLAKE3 derivation of the network key
//! with its own context; a tag is a keyed BLAKE3 hash over the side's role,
//! both PeerIds (which noise has authenticated) and a fresh 32-byte nonce
//! from each side. So a tag is good for one connection between these two
//! keys only: it cannot be replayed on another, relayed to a third party
//! (the PeerIds differ), or reflected back (the roles differ).

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::trust::NetworkKey;

/// Bytes of a nonce and of a tag.
pub const PROOF_LEN: usize = 32;

/// Key-derivation context of the proof key.
const CONTEXT: &str = "baro/admission-membership-proof/v1";

/// The key proofs are made with.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MembershipKey([u8; 32]);

impl MembershipKey {
    /// The proof key of the agency network `network`.
    pub fn derive(network: &NetworkKey) -> Self {
        MembershipKey(blake3::derive_key(CONTEXT, &network.0))
    }

    /// A key no agency uses, for a node without the network key (tests'
    /// stranger): its proofs convince nobody.
    pub fn without_network() -> Self {
        MembershipKey(blake3::derive_key(CONTEXT, b"no network key"))
    }
}

impl std::fmt::Debug for MembershipKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MembershipKey(<redacted>)")
    }
}

/// Which end of the connection a tag is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The side that dialed.
    Dialer,
    /// The side that was dialed.
    Listener,
}

/// What one connection's proofs are bound to.
#[derive(Clone, Copy, Debug)]
pub struct Binding<'a> {
    /// The dialer's PeerId bytes.
    pub dialer: &'a [u8],
    /// The listener's PeerId bytes.
    pub listener: &'a [u8],
    /// The dialer's fresh nonce.
    pub dialer_nonce: &'a [u8; PROOF_LEN],
    /// The listener's fresh nonce.
    pub listener_nonce: &'a [u8; PROOF_LEN],
}

/// The tag `side` sends on the connection described by `binding`.
pub fn tag(key: &MembershipKey, side: Side, binding: &Binding<'_>) -> [u8; PROOF_LEN] {
    let mut hasher = blake3::Hasher::new_keyed(&key.0);
    hasher.update(match side {
        Side::Dialer => b"dialer",
        Side::Listener => b"listen",
    });
    for part in [binding.dialer, binding.listener] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.update(binding.dialer_nonce);
    hasher.update(binding.listener_nonce);
    *hasher.finalize().as_bytes()
}

/// Whether `received` is the tag `side` should have sent (in constant time).
pub fn verify(key: &MembershipKey, side: Side, binding: &Binding<'_>, received: &[u8]) -> bool {
    let Ok(received) = <[u8; PROOF_LEN]>::try_from(received) else {
        return false;
    };
    blake3::Hash::from(tag(key, side, binding)) == blake3::Hash::from(received)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SeededEntropy;

    fn key(seed: u64) -> MembershipKey {
        MembershipKey::derive(&NetworkKey::generate(&mut SeededEntropy::new(seed)))
    }

    #[test]
    fn a_tag_holds_only_for_its_key_side_peers_and_nonces() {
        let (a, b, c) = (
            b"peer-a".as_slice(),
            b"peer-b".as_slice(),
            b"peer-c".as_slice(),
        );
        let (n1, n2, n3) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let binding = Binding {
            dialer: a,
            listener: b,
            dialer_nonce: &n1,
            listener_nonce: &n2,
        };
        let proof = tag(&key(1), Side::Dialer, &binding);
        assert!(verify(&key(1), Side::Dialer, &binding, &proof));
        // Another network key, a reflection, another listener, a fresh nonce:
        assert!(!verify(&key(2), Side::Dialer, &binding, &proof));
        assert!(!verify(&key(1), Side::Listener, &binding, &proof));
        let relayed = Binding {
            listener: c,
            ..binding
        };
        assert!(!verify(&key(1), Side::Dialer, &relayed, &proof));
        let replayed = Binding {
            listener_nonce: &n3,
            ..binding
        };
        assert!(!verify(&key(1), Side::Dialer, &replayed, &proof));
        assert!(!verify(&key(1), Side::Dialer, &binding, &proof[..31]));
        assert!(!verify(
            &MembershipKey::without_network(),
            Side::Dialer,
            &binding,
            &proof
        ));
    }
}
