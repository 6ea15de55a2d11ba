//! Photo previews: a small JPEG (at most [`MAX_PREVIEW_LEN`] bytes, at most
//! 320 pixels on its longer side) made from a JPEG or PNG photo, with the
//! photo's orientation applied. The preview is a new encoding of the
//! pixels only, so nothing of the photo's metadata (EXIF: GPS position,
//! camera, time) reaches it.
//!
//! Pure: bytes in, bytes out. Decoding is bounded (dimensions and memory),
//! and a photo that does not decode simply gets no preview.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use crate::wire::{MAX_PREVIEW_LEN, Preview};

/// Widest or tallest photo decoded for a preview.
const MAX_DIMENSION: u32 = 12_000;
/// Most memory one decode may take.
const MAX_ALLOC: u64 = 512 << 20;
/// Sides tried, largest first, until the preview fits.
const SIDES: [u32; 4] = [320, 240, 160, 96];
/// JPEG quality of a preview.
const QUALITY: u8 = 60;

/// The preview of a JPEG or PNG photo, or `None` if it does not decode.
pub fn preview_of(photo: &[u8]) -> Option<Preview> {
    let mut reader = ImageReader::new(Cursor::new(photo))
        .with_guessed_format()
        .ok()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().ok()?;
    let orientation = decoder.orientation().ok()?;
    let mut image = DynamicImage::from_decoder(decoder).ok()?;
    image.apply_orientation(orientation);
    for side in SIDES {
        let small = image.thumbnail(side, side).to_rgb8();
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, QUALITY)
            .encode_image(&small)
            .ok()?;
        if bytes.len() <= MAX_PREVIEW_LEN {
            return Some(Preview {
                media_type: "image/jpeg".into(),
                width: small.width(),
                height: small.height(),
                bytes,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1200×800 photo-like JPEG (a gradient with noise).
    fn photo() -> Vec<u8> {
        let image = image::RgbImage::from_fn(1200, 800, |x, y| {
            let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) % 64;
            image::Rgb([(x / 5) as u8, (y / 4) as u8, n as u8 * 3])
        });
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
            .encode_image(&image)
            .expect("encode");
        bytes
    }

    /// `jpeg` with an EXIF segment holding a GPS position and orientation
    /// 6 (rotate 90° clockwise), right after the start marker.
    fn with_gps_exif(jpeg: &[u8]) -> Vec<u8> {
        // TIFF, little endian: IFD0 with Orientation (0x0112) = 6 and a
        // GPS IFD pointer (0x8825); the GPS IFD with GPSLatitudeRef "N".
        let mut tiff = b"II*\0\x08\0\0\0".to_vec();
        tiff.extend(2u16.to_le_bytes());
        tiff.extend([0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
        tiff.extend([0x25, 0x88, 4, 0, 1, 0, 0, 0, 38, 0, 0, 0]);
        tiff.extend(0u32.to_le_bytes());
        tiff.extend(1u16.to_le_bytes());
        tiff.extend([0x01, 0x00, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]);
        tiff.extend(0u32.to_le_bytes());
        tiff.extend(b"GPS-37.5665N-126.9780E");
        let mut segment = b"Exif\0\0".to_vec();
        segment.extend(tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend([0xff, 0xe1]);
        out.extend(((segment.len() + 2) as u16).to_be_bytes());
        out.extend(segment);
        out.extend(&jpeg[2..]);
        out
    }

    #[test]
    fn a_photo_gets_a_small_upright_preview_without_its_metadata() {
        let tagged = with_gps_exif(&photo());
        assert!(tagged.windows(4).any(|w| w == b"Exif"));
        let preview = preview_of(&tagged).expect("preview");
        assert!(
            preview.bytes.len() <= MAX_PREVIEW_LEN,
            "{}",
            preview.bytes.len()
        );
        // Orientation 6 applied: the landscape photo stands upright.
        assert_eq!((preview.width, preview.height), (213, 320));
        for needle in [&b"Exif"[..], b"GPS-37", b"II*\0"] {
            assert!(
                !preview.bytes.windows(needle.len()).any(|w| w == needle),
                "{:?} left in the preview",
                String::from_utf8_lossy(needle)
            );
        }
        let decoded = image::load_from_memory(&preview.bytes).expect("a JPEG");
        assert_eq!(decoded.width(), 213);
    }

    #[test]
    fn what_is_not_a_photo_gets_no_preview() {
        assert!(preview_of(b"%PDF-1.7 not an image").is_none());
        // A truncated photo may or may not decode in part; it never panics.
        let _ = preview_of(&photo()[..300]);
    }
}
