//! The message size limit in the terms of whoever types it: characters.
//!
//! One message carries at most [`MAX_CONTENT_LEN`] bytes of encoded
//! content (60 KiB), and text is UTF-8: a Hangul syllable takes 3 bytes, a
//! Latin letter 1. So about 20,000 Korean characters fit, or 61,000 Latin
//! ones; the README states the exact numbers, which the tests below pin.

use anyhow::{Result, bail};
use baro_node::wire::{Content, MAX_CONTENT_LEN, encode};

/// UTF-8 bytes of one Hangul syllable (U+AC00–U+D7A3).
const HANGUL_BYTES: usize = '가'.len_utf8();

/// The most bytes of text one long message holds: the limit less the
/// content's encoding (version, kind, variant and length).
pub fn max_text_bytes() -> usize {
    // A length past 250 takes the same 3 bytes up to 65,535.
    let sample = "x".repeat(1000);
    let overhead = encode(&Content::Text(sample.clone())).len() - sample.len();
    MAX_CONTENT_LEN - overhead
}

/// The most Hangul syllables one message holds.
pub fn max_hangul_chars() -> usize {
    max_text_bytes() / HANGUL_BYTES
}

/// Refuses `text` when it does not fit in one message, saying by how much
/// in characters, before anything is asked of the node.
pub fn check(text: &str) -> Result<()> {
    let bytes = encode(&Content::Text(text.to_string())).len();
    if bytes <= MAX_CONTENT_LEN {
        return Ok(());
    }
    let chars = text.chars().count();
    bail!(
        "the message is too long: {chars} characters take {} bytes, and one message holds {} bytes \
         (about {} Korean characters, or {} Latin letters): split it into several messages",
        text.len(),
        max_text_bytes(),
        group_thousands(max_hangul_chars()),
        group_thousands(max_text_bytes()),
    )
}

/// 20478 as "20,478".
fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers the README gives.
    #[test]
    fn the_limit_in_characters_is_the_one_the_readme_states() {
        assert_eq!(max_text_bytes(), 61_426);
        assert_eq!(max_hangul_chars(), 20_475);
    }

    #[test]
    fn the_longest_korean_message_fits_and_one_more_syllable_does_not() {
        let longest = "가".repeat(max_hangul_chars());
        assert!(check(&longest).is_ok());
        let too_long = "가".repeat(max_hangul_chars() + 1);
        let error = check(&too_long).expect_err("too long").to_string();
        assert!(error.contains("20476 characters"), "{error}");
        assert!(error.contains("about 20,475 Korean characters"), "{error}");
    }

    #[test]
    fn the_longest_latin_message_fits_exactly() {
        assert!(check(&"x".repeat(max_text_bytes())).is_ok());
        assert!(check(&"x".repeat(max_text_bytes() + 1)).is_err());
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(20478), "20,478");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1_000_000), "1,000,000");
    }
}
