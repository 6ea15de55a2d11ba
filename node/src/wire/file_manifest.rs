//! Attachments: the manifest that travels as a message's content
//! ([`Content::File`](super::Content::File)), and the chunk protocol's
//! request and response.
//!
//! A file is split into chunks of [`CHUNK_LEN`] bytes, each sealed under
//! the file's own key (see [`FileKey`]) and addressed by the BLAKE3 hash of
//! its ciphertext. The manifest names the file, its media type and size,
//! lists the chunk hashes in order and carries the key, and for photos a
//! small preview; it is end-to-end encrypted and signed like any message,
//! so whoever can read it may fetch the chunks from any holder (the
//! sender, a relay, another member) and check each one by its hash before
//! keeping it. Holders that cannot read the room (relays) see only
//! ciphertext chunks and their hashes.

use std::fmt;
use std::io::Read;

use serde::{Deserialize, Serialize};

use super::{Format, Kind};
use crate::crypto::{CHUNK_LEN, CHUNK_OVERHEAD, FileKey, chunk_hash};
use crate::identity::Entropy;
use crate::rooms::RoomId;

/// Most chunks a manifest lists: 512 × 256 KiB = 128 MiB, the hard cap of
/// the format (the agency's limit, 100 MiB by default, is lower).
pub const MAX_FILE_CHUNKS: usize = 512;
/// Largest file the format can describe.
pub const MAX_FILE_LEN: u64 = (MAX_FILE_CHUNKS * CHUNK_LEN) as u64;
/// Largest preview inside a manifest.
pub const MAX_PREVIEW_LEN: usize = 32 * 1024;
/// Longest file name, in bytes.
pub const MAX_FILE_NAME_LEN: usize = 255;
/// Longest media type, in bytes.
pub const MAX_MEDIA_TYPE_LEN: usize = 127;
/// Most chunk hashes one request asks a peer to take (an offer).
pub const MAX_OFFERED_CHUNKS: usize = MAX_FILE_CHUNKS;

/// A small image shown before (or instead of) the whole file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    /// "image/jpeg" or "image/png".
    pub media_type: String,
    /// Pixels across.
    pub width: u32,
    /// Pixels down.
    pub height: u32,
    /// The encoded image (at most [`MAX_PREVIEW_LEN`] bytes).
    pub bytes: Vec<u8>,
}

/// What a message says about an attached file.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileManifest {
    /// Random id chosen by the sender; bound into every chunk.
    pub id: [u8; 32],
    /// File name as the sender had it (no directories).
    pub name: String,
    /// Media type ("image/jpeg", "application/pdf", …).
    pub media_type: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// BLAKE3 of each sealed chunk, in order.
    pub chunks: Vec<[u8; 32]>,
    /// The file key.
    pub key: [u8; 32],
    /// A preview, for photos.
    pub preview: Option<Preview>,
}

impl fmt::Debug for FileManifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileManifest")
            .field("id", &hex::encode(self.id))
            .field("name", &self.name)
            .field("media_type", &self.media_type)
            .field("size", &self.size)
            .field("chunks", &self.chunks.len())
            .field("key", &"<redacted>")
            .field("preview", &self.preview.as_ref().map(|p| p.bytes.len()))
            .finish()
    }
}

/// Why a manifest is not acceptable, or a file cannot be made one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    /// Larger than the format (or the policy) allows.
    #[error("the file is {size} bytes, over the limit of {max} bytes")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The name is empty, too long, or holds a path or control characters.
    #[error("the file name is not acceptable: {0}")]
    BadName(String),
    /// The media type is empty, too long or not printable.
    #[error("the media type is not acceptable")]
    BadMediaType,
    /// The chunk list does not match the size.
    #[error("the manifest lists {found} chunks for {size} bytes (expected {expected})")]
    ChunkCount {
        /// Listed.
        found: usize,
        /// Expected for the size.
        expected: usize,
        /// The size.
        size: u64,
    },
    /// The preview is too large.
    #[error("the preview is {0} bytes, over the limit of {MAX_PREVIEW_LEN}")]
    PreviewTooLarge(usize),
    /// Reading the file failed.
    #[error("cannot read the file: {0}")]
    Read(String),
}

/// Chunks a file of `size` bytes has.
pub fn chunk_count(size: u64) -> usize {
    usize::try_from(size.div_ceil(CHUNK_LEN as u64)).unwrap_or(usize::MAX)
}

/// Checks a file name: what a sender may call a file and a receiver may show.
pub fn check_name(name: &str) -> Result<(), ManifestError> {
    let bad = |why: &str| Err(ManifestError::BadName(why.to_string()));
    if name.is_empty() || name.trim().is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_FILE_NAME_LEN {
        return bad("it is longer than 255 bytes");
    }
    if name == "." || name == ".." || name.contains(['/', '\\']) {
        return bad("it names a directory");
    }
    if name.chars().any(char::is_control) {
        return bad("it holds control characters");
    }
    Ok(())
}

impl FileManifest {
    /// Checks what a receiver relies on: caps, name, and that the chunk
    /// list matches the size.
    pub fn check(&self) -> Result<(), ManifestError> {
        if self.size > MAX_FILE_LEN {
            return Err(ManifestError::TooLarge {
                size: self.size,
                max: MAX_FILE_LEN,
            });
        }
        check_name(&self.name)?;
        if self.media_type.is_empty()
            || self.media_type.len() > MAX_MEDIA_TYPE_LEN
            || !self.media_type.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(ManifestError::BadMediaType);
        }
        let expected = chunk_count(self.size);
        if self.chunks.len() != expected {
            return Err(ManifestError::ChunkCount {
                found: self.chunks.len(),
                expected,
                size: self.size,
            });
        }
        if let Some(preview) = &self.preview {
            if preview.bytes.len() > MAX_PREVIEW_LEN {
                return Err(ManifestError::PreviewTooLarge(preview.bytes.len()));
            }
            if !matches!(preview.media_type.as_str(), "image/jpeg" | "image/png") {
                return Err(ManifestError::BadMediaType);
            }
        }
        Ok(())
    }

    /// The file key.
    pub fn file_key(&self) -> FileKey {
        FileKey::from_bytes(self.key)
    }

    /// Plaintext length of chunk `index`.
    pub fn chunk_plain_len(&self, index: usize) -> usize {
        let start = index as u64 * CHUNK_LEN as u64;
        usize::try_from(self.size.saturating_sub(start).min(CHUNK_LEN as u64)).unwrap_or(0)
    }

    /// Opens chunk `index` (already checked against its hash by the caller
    /// or not: a wrong chunk fails here either way).
    pub fn open_chunk(&self, index: usize, ciphertext: &[u8]) -> Option<Vec<u8>> {
        let expected = self.chunks.get(index)?;
        if chunk_hash(ciphertext) != *expected
            || ciphertext.len() != self.chunk_plain_len(index) + CHUNK_OVERHEAD
        {
            return None;
        }
        let index = u32::try_from(index).ok()?;
        self.file_key().open_chunk(&self.id, index, ciphertext).ok()
    }

    /// Splits and seals what `reader` holds (`size` bytes, at most `max`),
    /// handing each sealed chunk with its hash to `each` as it goes, and
    /// returns the manifest. Fails if the reader gives more or fewer bytes
    /// than `size` (the file changed while it was read).
    pub fn seal(
        name: &str,
        media_type: &str,
        size: u64,
        max: u64,
        reader: &mut impl Read,
        entropy: &mut impl Entropy,
        mut each: impl FnMut(usize, [u8; 32], Vec<u8>) -> Result<(), String>,
    ) -> Result<FileManifest, ManifestError> {
        let max = max.min(MAX_FILE_LEN);
        if size > max {
            return Err(ManifestError::TooLarge { size, max });
        }
        check_name(name)?;
        let id: [u8; 32] = entropy.array();
        let key = FileKey::generate(entropy);
        let count = chunk_count(size);
        let mut chunks = Vec::with_capacity(count);
        let mut buf = zeroize::Zeroizing::new(vec![0u8; CHUNK_LEN]);
        for index in 0..count {
            let len =
                usize::try_from((size - index as u64 * CHUNK_LEN as u64).min(CHUNK_LEN as u64))
                    .unwrap_or(CHUNK_LEN);
            reader
                .read_exact(&mut buf[..len])
                .map_err(|e| ManifestError::Read(e.to_string()))?;
            let index32 =
                u32::try_from(index).map_err(|_| ManifestError::TooLarge { size, max })?;
            let sealed = key.seal_chunk(&id, index32, &buf[..len]);
            let hash = chunk_hash(&sealed);
            chunks.push(hash);
            each(index, hash, sealed).map_err(ManifestError::Read)?;
        }
        let mut probe = [0u8; 1];
        if reader
            .read(&mut probe)
            .map_err(|e| ManifestError::Read(e.to_string()))?
            != 0
        {
            return Err(ManifestError::Read(
                "the file grew while it was read".into(),
            ));
        }
        let manifest = FileManifest {
            id,
            name: name.to_string(),
            media_type: media_type.to_string(),
            size,
            chunks,
            key: *key.expose_bytes(),
            preview: None,
        };
        manifest.check()?;
        Ok(manifest)
    }
}

/// A question of the chunk protocol (`/baro/chunks/1.0.0`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkRequest {
    /// "Send me this chunk of this room's file."
    Get {
        /// The room the file was sent in: the server serves only devices
        /// entitled to it, and only chunks it keeps for it.
        room: RoomId,
        /// The chunk's hash.
        hash: [u8; 32],
    },
    /// "I hold these chunks of this room": a sender tells a relay carrying
    /// the room, which fetches them from it to keep them for members.
    Offer {
        /// The room.
        room: RoomId,
        /// The chunks (at most [`MAX_OFFERED_CHUNKS`]).
        hashes: Vec<[u8; 32]>,
    },
}

/// An answer of the chunk protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkResponse {
    /// The sealed chunk.
    Chunk(#[serde(with = "super::raw_bytes")] Vec<u8>),
    /// Not held here (ask someone else).
    NotHeld,
    /// The asker is not entitled to the room, or is not heard for now.
    Refused,
    /// An offer was taken note of.
    Noted,
}

impl Format for ChunkRequest {
    const KIND: Kind = Kind::ChunkRequest;
    const MAX_LEN: usize = 64 + MAX_OFFERED_CHUNKS * 32;
}

impl Format for ChunkResponse {
    const KIND: Kind = Kind::ChunkResponse;
    const MAX_LEN: usize = CHUNK_LEN + CHUNK_OVERHEAD + 64;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SeededEntropy;

    fn sealed(data: &[u8]) -> (FileManifest, Vec<Vec<u8>>) {
        let mut chunks = Vec::new();
        let manifest = FileManifest::seal(
            "report.pdf",
            "application/pdf",
            data.len() as u64,
            MAX_FILE_LEN,
            &mut &data[..],
            &mut SeededEntropy::new(3),
            |index, hash, chunk| {
                assert_eq!(index, chunks.len());
                assert_eq!(hash, chunk_hash(&chunk));
                chunks.push(chunk);
                Ok(())
            },
        )
        .expect("sealed");
        (manifest, chunks)
    }

    #[test]
    fn a_file_round_trips_through_its_chunks() {
        let data: Vec<u8> = (0..CHUNK_LEN * 2 + 1000).map(|i| (i % 251) as u8).collect();
        let (manifest, chunks) = sealed(&data);
        assert_eq!(manifest.chunks.len(), 3);
        manifest.check().expect("valid");
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            out.extend(manifest.open_chunk(i, chunk).expect("opens"));
        }
        assert_eq!(out, data);
        assert!(manifest.open_chunk(1, &chunks[0]).is_none(), "wrong place");
        let mut bad = chunks[2].clone();
        bad[5] ^= 1;
        assert!(manifest.open_chunk(2, &bad).is_none(), "tampered");
        assert!(
            manifest.open_chunk(3, &chunks[2]).is_none(),
            "no such index"
        );
    }

    #[test]
    fn empty_and_exact_sizes_have_the_right_chunk_counts() {
        assert_eq!(sealed(&[]).0.chunks.len(), 0);
        assert_eq!(sealed(&vec![7; CHUNK_LEN]).0.chunks.len(), 1);
        assert_eq!(chunk_count(MAX_FILE_LEN), MAX_FILE_CHUNKS);
    }

    #[test]
    fn bad_manifests_and_files_are_refused() {
        let data = vec![1u8; 10];
        let too_big = FileManifest::seal(
            "a.bin",
            "application/octet-stream",
            11,
            10,
            &mut &data[..],
            &mut SeededEntropy::new(1),
            |_, _, _| Ok(()),
        );
        assert_eq!(
            too_big.expect_err("over the limit").to_string(),
            "the file is 11 bytes, over the limit of 10 bytes"
        );
        let short = FileManifest::seal(
            "a.bin",
            "application/octet-stream",
            20,
            100,
            &mut &data[..],
            &mut SeededEntropy::new(1),
            |_, _, _| Ok(()),
        );
        assert!(matches!(short, Err(ManifestError::Read(_))), "file shrank");
        let (good, _) = sealed(&data);
        for name in ["", "../etc/passwd", "a\u{1b}]52;c", ".."] {
            let mut m = good.clone();
            m.name = name.into();
            assert!(
                matches!(m.check(), Err(ManifestError::BadName(_))),
                "{name:?}"
            );
        }
        let mut m = good.clone();
        m.chunks.push([0; 32]);
        assert!(matches!(m.check(), Err(ManifestError::ChunkCount { .. })));
        let mut m = good.clone();
        m.size = MAX_FILE_LEN + 1;
        assert!(matches!(m.check(), Err(ManifestError::TooLarge { .. })));
        let mut m = good;
        m.preview = Some(Preview {
            media_type: "image/jpeg".into(),
            width: 1,
            height: 1,
            bytes: vec![0; MAX_PREVIEW_LEN + 1],
        });
        assert!(matches!(m.check(), Err(ManifestError::PreviewTooLarge(_))));
    }

    #[test]
    fn the_largest_manifest_with_a_full_preview_fits_one_envelope() {
        let manifest = FileManifest {
            id: [1; 32],
            name: "가".repeat(85),
            media_type: "image/jpeg".into(),
            size: MAX_FILE_LEN,
            chunks: vec![[2; 32]; MAX_FILE_CHUNKS],
            key: [3; 32],
            preview: Some(Preview {
                media_type: "image/jpeg".into(),
                width: 320,
                height: 240,
                bytes: vec![4; MAX_PREVIEW_LEN],
            }),
        };
        manifest.check().expect("valid");
        let content = super::super::Content::File {
            manifest: Box::new(manifest),
            caption: "x".repeat(4000),
        };
        assert!(super::super::encode(&content).len() <= super::super::MAX_CONTENT_LEN);
    }
}
