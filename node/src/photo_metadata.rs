//! Removing a photo's metadata before it is sent, losslessly: the image
//! data is copied byte for byte, never re-encoded.
//!
//! - JPEG: APP1 (EXIF and XMP: GPS position, camera, time), APP13
//!   (Photoshop/IPTC) and COM segments are dropped, as is anything after
//!   the end-of-image marker (vendors' trailers). Everything else (JFIF,
//!   ICC profile, tables, scans) is copied as it is.
//! - PNG: eXIf, tEXt, zTXt, iTXt and tIME chunks are dropped.
//!
//! Orientation lives in EXIF: dropping it would show a phone photo on its
//! side. So when the photo's EXIF orientation is not 1, a minimal EXIF
//! (one IFD with the orientation tag only) is written in place of the old
//! one: nothing else of the original EXIF is copied, so no GPS, camera or
//! time can survive, and the pixels are untouched.
//!
//! Pure and bounded: at most [`MAX_PHOTO_LEN`] bytes in; every length is
//! checked before it is used. Bytes that are neither JPEG nor PNG come back
//! unchanged; a JPEG or PNG that is truncated or malformed is an error
//! (sending it as it is could leak what could not be removed).

/// Largest photo whose metadata is removed (the largest file a manifest
/// describes).
pub const MAX_PHOTO_LEN: usize = 128 << 20;

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
const EXIF_HEADER: &[u8; 6] = b"Exif\0\0";
/// The EXIF orientation tag.
const ORIENTATION: u16 = 0x0112;
/// Most IFD entries looked at for the orientation.
const MAX_IFD_ENTRIES: usize = 512;

/// Why a photo's metadata could not be removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripError {
    /// Over [`MAX_PHOTO_LEN`].
    #[error("the photo is {0} bytes, over the limit of {MAX_PHOTO_LEN} for removing its metadata")]
    TooLarge(usize),
    /// A JPEG that ends or breaks before its image data.
    #[error("malformed JPEG at byte {0}")]
    BadJpeg(usize),
    /// A PNG whose chunks do not add up.
    #[error("malformed PNG at byte {0}")]
    BadPng(usize),
}

/// `photo` without its metadata (see the module docs); bytes that are not
/// a JPEG or PNG come back unchanged.
pub fn strip_metadata(photo: &[u8]) -> Result<Vec<u8>, StripError> {
    if photo.len() > MAX_PHOTO_LEN {
        return Err(StripError::TooLarge(photo.len()));
    }
    if photo.starts_with(&[0xff, 0xd8]) {
        strip_jpeg(photo)
    } else if photo.starts_with(&PNG_SIGNATURE) {
        strip_png(photo)
    } else {
        Ok(photo.to_vec())
    }
}

fn strip_jpeg(jpeg: &[u8]) -> Result<Vec<u8>, StripError> {
    let mut out = Vec::with_capacity(jpeg.len());
    out.extend_from_slice(&jpeg[..2]);
    let mut at = 2;
    let mut orientation_written = false;
    loop {
        // A marker: 0xff, any fill 0xff bytes, then its code.
        if jpeg.get(at) != Some(&0xff) {
            return Err(StripError::BadJpeg(at));
        }
        let mut code_at = at + 1;
        while jpeg.get(code_at) == Some(&0xff) {
            code_at += 1;
        }
        let code = *jpeg.get(code_at).ok_or(StripError::BadJpeg(code_at))?;
        match code {
            0xd9 => {
                // End of image; a trailer after it is dropped.
                out.extend_from_slice(&[0xff, 0xd9]);
                return Ok(out);
            }
            0x01 | 0xd0..=0xd7 => {
                out.extend_from_slice(&[0xff, code]);
                at = code_at + 1;
                continue;
            }
            0x00 | 0xd8 => return Err(StripError::BadJpeg(code_at)),
            _ => {}
        }
        let len_at = code_at + 1;
        let len = match jpeg.get(len_at..len_at + 2) {
            Some(b) => usize::from(u16::from_be_bytes([b[0], b[1]])),
            None => return Err(StripError::BadJpeg(len_at)),
        };
        if len < 2 {
            return Err(StripError::BadJpeg(len_at));
        }
        let end = len_at + len;
        let payload = jpeg
            .get(len_at + 2..end)
            .ok_or(StripError::BadJpeg(len_at))?;
        match code {
            0xe1 => {
                if !orientation_written
                    && let Some(orientation) = payload
                        .strip_prefix(EXIF_HEADER)
                        .and_then(exif_orientation)
                        .filter(|o| *o != 1)
                {
                    let exif = minimal_exif(orientation);
                    out.extend_from_slice(&[0xff, 0xe1]);
                    out.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
                    out.extend_from_slice(&exif);
                    orientation_written = true;
                }
            }
            0xed | 0xfe => {}
            _ => out.extend_from_slice(&[0xff, code]),
        }
        if !matches!(code, 0xe1 | 0xed | 0xfe) {
            out.extend_from_slice(&jpeg[len_at..end]);
        }
        at = end;
        if code == 0xda {
            // Entropy-coded data, up to the next marker that is neither a
            // stuffed 0xff00 nor a restart marker.
            let mut i = at;
            loop {
                let Some(&byte) = jpeg.get(i) else {
                    return Err(StripError::BadJpeg(i));
                };
                if byte == 0xff {
                    match jpeg.get(i + 1) {
                        Some(0x00 | 0xd0..=0xd7) => i += 2,
                        Some(0xff) => i += 1,
                        Some(_) => break,
                        None => return Err(StripError::BadJpeg(i + 1)),
                    }
                } else {
                    i += 1;
                }
            }
            out.extend_from_slice(&jpeg[at..i]);
            at = i;
        }
    }
}

/// The orientation in an EXIF TIFF structure, if it is there and valid.
fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    let big = match tiff.get(..2)? {
        b"MM" => true,
        b"II" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = tiff.get(at..at.checked_add(2)?)?;
        Some(if big {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b = tiff.get(at..at.checked_add(4)?)?;
        let b = [b[0], b[1], b[2], b[3]];
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    if u16_at(2)? != 42 {
        return None;
    }
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?).min(MAX_IFD_ENTRIES);
    (0..count).find_map(|n| {
        let entry = ifd.checked_add(2 + 12 * n)?;
        // A SHORT, one of them: the value sits in the entry's first 2 bytes.
        (u16_at(entry)? == ORIENTATION && u16_at(entry + 2)? == 3 && u32_at(entry + 4)? == 1)
            .then(|| u16_at(entry + 8))
            .flatten()
            .filter(|o| (1..=8).contains(o))
    })
}

/// An EXIF payload (header, big-endian TIFF, one IFD) with only `orientation`.
fn minimal_exif(orientation: u16) -> Vec<u8> {
    let mut exif = EXIF_HEADER.to_vec();
    exif.extend_from_slice(b"MM\0\x2a\0\0\0\x08");
    exif.extend_from_slice(&1u16.to_be_bytes());
    exif.extend_from_slice(&ORIENTATION.to_be_bytes());
    exif.extend_from_slice(&3u16.to_be_bytes());
    exif.extend_from_slice(&1u32.to_be_bytes());
    exif.extend_from_slice(&orientation.to_be_bytes());
    exif.extend_from_slice(&[0, 0]);
    exif.extend_from_slice(&0u32.to_be_bytes());
    exif
}

fn strip_png(png: &[u8]) -> Result<Vec<u8>, StripError> {
    let mut out = Vec::with_capacity(png.len());
    out.extend_from_slice(&PNG_SIGNATURE);
    let mut at = PNG_SIGNATURE.len();
    loop {
        let header = png.get(at..at + 8).ok_or(StripError::BadPng(at))?;
        let len = usize::try_from(u32::from_be_bytes([
            header[0], header[1], header[2], header[3],
        ]))
        .map_err(|_| StripError::BadPng(at))?;
        let kind = [header[4], header[5], header[6], header[7]];
        let end = at
            .checked_add(12)
            .and_then(|e| e.checked_add(len))
            .filter(|e| *e <= png.len())
            .ok_or(StripError::BadPng(at))?;
        match &kind {
            b"eXIf" => {
                if let Some(orientation) =
                    exif_orientation(&png[at + 8..at + 8 + len]).filter(|o| *o != 1)
                {
                    let exif = minimal_exif(orientation);
                    let tiff = &exif[EXIF_HEADER.len()..];
                    push_png_chunk(&mut out, b"eXIf", tiff);
                }
            }
            b"tEXt" | b"zTXt" | b"iTXt" | b"tIME" => {}
            _ => out.extend_from_slice(&png[at..end]),
        }
        at = end;
        if &kind == b"IEND" {
            return Ok(out);
        }
    }
}

fn push_png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// The CRC-32 (ISO-HDLC) of PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo_jpeg() -> Vec<u8> {
        let image =
            image::RgbImage::from_fn(40, 20, |x, y| image::Rgb([x as u8 * 6, y as u8 * 12, 90]));
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 80)
            .encode_image(&image)
            .expect("test data");
        bytes
    }

    fn photo_png() -> Vec<u8> {
        let image = image::RgbImage::from_fn(40, 20, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut bytes = Vec::new();
        image
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .expect("test data");
        bytes
    }

    /// A little-endian EXIF TIFF with orientation and a GPS IFD pointer
    /// and a recognisable "GPSLatitude" string.
    fn exif_tiff(orientation: u16) -> Vec<u8> {
        let mut t = b"II\x2a\0\x08\0\0\0".to_vec();
        t.extend_from_slice(&2u16.to_le_bytes());
        t.extend_from_slice(&ORIENTATION.to_le_bytes());
        t.extend_from_slice(&3u16.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&orientation.to_le_bytes());
        t.extend_from_slice(&[0, 0]);
        t.extend_from_slice(&0x8825u16.to_le_bytes());
        t.extend_from_slice(&4u16.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        t.extend_from_slice(&38u32.to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(b"GPSLatitude 37.5665N 126.9780E");
        t
    }

    /// `jpeg` with an EXIF APP1, an XMP APP1, an APP13, a comment and a
    /// trailer, all after the SOI.
    fn with_metadata(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut segments = Vec::new();
        let mut segment = |code: u8, payload: &[u8]| {
            segments.extend_from_slice(&[0xff, code]);
            segments.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
            segments.extend_from_slice(payload);
        };
        let mut exif = EXIF_HEADER.to_vec();
        exif.extend_from_slice(&exif_tiff(orientation));
        segment(0xe1, &exif);
        segment(
            0xe1,
            b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>Seoul</x:xmpmeta>",
        );
        segment(0xed, b"Photoshop 3.0\0IPTC Seoul");
        segment(0xfe, b"taken at the ministry");
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&segments);
        out.extend_from_slice(&jpeg[2..]);
        out.extend_from_slice(b"TRAILER Seoul");
        out
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn orientation_of(photo: &[u8]) -> image::metadata::Orientation {
        use image::ImageDecoder;
        let mut decoder = image::ImageReader::new(std::io::Cursor::new(photo))
            .with_guessed_format()
            .expect("test data")
            .into_decoder()
            .expect("test data");
        decoder.orientation().expect("test data")
    }

    #[test]
    fn a_jpeg_loses_its_exif_xmp_iptc_comment_and_trailer_and_keeps_its_pixels() {
        let clean = photo_jpeg();
        let tagged = with_metadata(&clean, 1);
        let stripped = strip_metadata(&tagged).expect("test data");
        // Exactly the original encoder's bytes: nothing re-encoded.
        assert_eq!(stripped, clean);
        for word in [
            &b"GPS"[..],
            b"Exif",
            b"Seoul",
            b"xmpmeta",
            b"ministry",
            b"TRAILER",
        ] {
            assert!(!contains(&stripped, word));
        }
        assert_eq!(strip_metadata(&stripped).expect("test data"), stripped);
    }

    #[test]
    fn a_turned_jpeg_keeps_only_its_orientation() {
        let clean = photo_jpeg();
        let stripped = strip_metadata(&with_metadata(&clean, 6)).expect("test data");
        assert!(!contains(&stripped, b"GPS"));
        assert!(!contains(&stripped, b"Seoul"));
        assert_eq!(
            orientation_of(&stripped),
            image::metadata::Orientation::Rotate90
        );
        // The scan data is the original's, byte for byte.
        assert!(stripped.ends_with(&clean[clean.len() - 200..]));
        assert_eq!(stripped.len(), clean.len() + 4 + minimal_exif(6).len());
        let decoded = image::load_from_memory(&stripped).expect("test data");
        assert_eq!((decoded.width(), decoded.height()), (40, 20));
    }

    #[test]
    fn a_png_loses_its_text_time_and_exif_chunks() {
        let clean = photo_png();
        // Insert text, time and EXIF chunks after IHDR (8 + 25 bytes).
        let mut tagged = clean[..33].to_vec();
        push_png_chunk(&mut tagged, b"tEXt", b"Comment\0GPS Seoul");
        push_png_chunk(
            &mut tagged,
            b"iTXt",
            b"XML:com.adobe.xmp\0\0\0\0\0<x>Seoul</x>",
        );
        push_png_chunk(&mut tagged, b"zTXt", b"Raw\0\0xx");
        push_png_chunk(&mut tagged, b"tIME", &[7, 234, 12, 2, 13, 0, 0]);
        push_png_chunk(&mut tagged, b"eXIf", &exif_tiff(1));
        tagged.extend_from_slice(&clean[33..]);
        let stripped = strip_metadata(&tagged).expect("test data");
        assert_eq!(stripped, clean);

        let mut turned = clean[..33].to_vec();
        push_png_chunk(&mut turned, b"eXIf", &exif_tiff(3));
        turned.extend_from_slice(&clean[33..]);
        let stripped = strip_metadata(&turned).expect("test data");
        assert!(!contains(&stripped, b"GPS"));
        assert_eq!(
            orientation_of(&stripped),
            image::metadata::Orientation::Rotate180
        );
        image::load_from_memory(&stripped).expect("test data");
    }

    #[test]
    fn what_is_not_a_photo_passes_unchanged() {
        for bytes in [&b""[..], b"%PDF-1.7 GPS", b"\xff", b"\x89PN"] {
            assert_eq!(strip_metadata(bytes).expect("test data"), bytes);
        }
    }

    #[test]
    fn truncated_or_garbled_photos_are_errors_never_panics() {
        let jpeg = with_metadata(&photo_jpeg(), 6);
        let png = photo_png();
        for photo in [&jpeg, &png] {
            for cut in 2..photo.len() {
                // Every prefix: an error or (past the end marker) a copy.
                let _ = strip_metadata(&photo[..cut]);
            }
            let mut garbled = photo.clone();
            let mut state = 0x9e37_79b9_u32;
            for _ in 0..2000 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let i = 2 + state as usize % (garbled.len() - 2);
                garbled[i] = (state >> 8) as u8;
                let _ = strip_metadata(&garbled);
            }
        }
        assert!(matches!(
            strip_metadata(&jpeg[..jpeg.len() / 2]),
            Err(StripError::BadJpeg(_))
        ));
        assert!(matches!(
            strip_metadata(&png[..png.len() - 3]),
            Err(StripError::BadPng(_))
        ));
        assert!(matches!(
            strip_metadata(b"\xff\xd8\xff\xe1\x00\x01"),
            Err(StripError::BadJpeg(_))
        ));
    }
}
