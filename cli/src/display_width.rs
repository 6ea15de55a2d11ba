//! How many terminal columns text takes: Hangul syllables and most CJK
//! characters take two, combining marks none. Padding and cutting by
//! `chars().count()` misaligns Korean names by one column per syllable.
//!
//! Text is measured as it will be printed, so escape it first
//! ([`crate::sanitize::printable`]): control characters have no width here.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Terminal columns `text` takes.
pub fn width(text: &str) -> usize {
    text.width()
}

/// `text` followed by spaces up to `columns` columns (unchanged if wider).
pub fn pad(text: &str, columns: usize) -> String {
    let mut padded = text.to_string();
    padded.extend(std::iter::repeat_n(
        ' ',
        columns.saturating_sub(width(text)),
    ));
    padded
}

/// `text` cut to at most `columns` columns, ending in "…" when cut; a
/// double-width character is never split.
pub fn truncate(text: &str, columns: usize) -> String {
    if width(text) <= columns {
        return text.to_string();
    }
    let room = columns.saturating_sub(1);
    let mut used = 0;
    let mut cut = String::new();
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > room {
            break;
        }
        used += w;
        cut.push(c);
    }
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hangul_takes_two_columns() {
        assert_eq!(width("이준호"), 6);
        assert_eq!(width("lee.junho"), 9);
        assert_eq!(width("행정안전부/디지털정부국/2과"), 27);
    }

    #[test]
    fn decomposed_hangul_takes_the_same_columns_as_composed() {
        // 한 as ᄒ + ᅡ + ᆫ: the vowel and the final consonant are combining.
        assert_eq!(width("\u{1112}\u{1161}\u{11ab}"), width("한"));
    }

    #[test]
    fn padding_counts_columns() {
        assert_eq!(pad("이준호", 8), "이준호  ");
        assert_eq!(pad("lee", 5), "lee  ");
        assert_eq!(pad("너무 긴 이름", 4), "너무 긴 이름");
    }

    #[test]
    fn truncation_never_splits_a_wide_character() {
        assert_eq!(truncate("가나다라", 5), "가나…");
        assert_eq!(truncate("가나다라", 8), "가나다라");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert!(width(&truncate("가나다라마바사", 6)) <= 6);
    }
}
