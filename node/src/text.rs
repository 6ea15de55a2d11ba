//! Names as people type them: every user id, display name, org unit path,
//! device label and room name is compared and kept in Unicode NFC.
//!
//! Korean can be typed two ways that look the same: precomposed syllables
//! ("과", U+ACFC) or conjoining jamo ("ᄀ" U+1100 + "ᅪ" U+116A), which
//! macOS input methods and clipboards produce. Unnormalized, the second
//! names another org unit (a phantom department, with other room ids) and
//! finds no room. So every boundary where a name comes in (the CLI, the
//! control API, enrollment) normalizes it here first.
//!
//! Pure.

use std::borrow::Cow;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// `text` in NFC; borrowed when it already is (the usual case).
pub fn nfc(text: &str) -> Cow<'_, str> {
    match is_nfc_quick(text.chars()) {
        IsNormalized::Yes => Cow::Borrowed(text),
        IsNormalized::No | IsNormalized::Maybe => {
            let normalized: String = text.nfc().collect();
            if normalized == text {
                Cow::Borrowed(text)
            } else {
                Cow::Owned(normalized)
            }
        }
    }
}

/// `text` in NFC, owned.
pub fn nfc_string(text: impl AsRef<str>) -> String {
    nfc(text.as_ref()).into_owned()
}

/// Normalizes `text` in place.
pub fn normalize(text: &mut String) {
    if let Cow::Owned(normalized) = nfc(text) {
        *text = normalized;
    }
}

/// How two names compare for people: NFC, surrounding spaces and case
/// ignored (Korean has no case; Latin names do).
pub fn fold(text: &str) -> String {
    nfc(text.trim()).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "행정안전부/디지털정부국/2과" typed as conjoining jamo.
    const DECOMPOSED_ORG: &str = "\u{1112}\u{1162}\u{11bc}\u{110c}\u{1165}\u{11bc}\u{110b}\u{1161}\u{11ab}\u{110c}\u{1165}\u{11ab}\u{1107}\u{116e}/\u{1103}\u{1175}\u{110c}\u{1175}\u{1110}\u{1165}\u{11af}\u{110c}\u{1165}\u{11bc}\u{1107}\u{116e}\u{1100}\u{116e}\u{11a8}/2\u{1100}\u{116a}";

    #[test]
    fn decomposed_hangul_becomes_the_precomposed_syllables() {
        assert_ne!(DECOMPOSED_ORG, "행정안전부/디지털정부국/2과");
        assert_eq!(nfc(DECOMPOSED_ORG), "행정안전부/디지털정부국/2과");
        assert_eq!(nfc("2\u{1100}\u{116a}"), "2과");
        let mut name =
            String::from("\u{1100}\u{1175}\u{11b7}\u{1106}\u{1175}\u{11ab}\u{110c}\u{1175}");
        normalize(&mut name);
        assert_eq!(name, "김민지");
    }

    #[test]
    fn text_already_in_nfc_is_borrowed_unchanged() {
        for text in ["kim.minji", "김민지", "MOIS/Division 2", ""] {
            assert!(matches!(nfc(text), Cow::Borrowed(t) if t == text), "{text}");
        }
    }

    #[test]
    fn folding_ignores_case_spaces_and_the_form_of_hangul() {
        assert_eq!(fold("  Kim Minji "), fold("kim minji"));
        assert_eq!(fold("2\u{1100}\u{116a}"), fold("2과"));
    }
}
