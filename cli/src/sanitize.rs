//! Text from the network made safe to print on a terminal.
//!
//! Whatever another device or user chose (message text, room, display and
//! user names, org units, reasons, notices, addresses, the node's error
//! messages that quote them) goes through [`printable`] before it reaches
//! human output. Shown as escapes instead of passed through:
//!
//! - C0 and C1 control characters and DEL: ESC as `\e`, so no escape
//!   sequence survives (no clearing the screen, recolouring, rewriting a
//!   line, setting the window title or writing the clipboard with OSC 52);
//!   tab, carriage return and line feed as `\t`, `\r`, `\n`; the others as
//!   `\u{..}` (e.g. BEL `\u{7}`, CSI `\u{9b}`);
//! - the bidi controls (U+061C, U+200E, U+200F, U+202A–U+202E,
//!   U+2066–U+2069), which reorder what is shown, and the line and
//!   paragraph separators U+2028 and U+2029, which some terminals break
//!   lines at: all as `\u{..}`.
//!
//! A backslash is printed as it is: a user who types `\e` gets the same
//! harmless two characters an escaped ESC shows.
//!
//! Message text may span lines: [`printable_lines`] keeps its plain line
//! feeds (and CR LF) as line breaks but indents every continuation line, so
//! no line of a message can pass for the header line (`DATE NAME: …`) of
//! another. Everything else is one line.
//!
//! `--json` output does not use this: JSON escapes control characters itself.

use std::borrow::Cow;
use std::fmt::Write;

/// Where the second and later lines of a message start.
pub const CONTINUATION: &str = "    ";

/// `text` with every control, bidi control and line separator character
/// shown as an escape; borrowed unchanged when there is none.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\u{1b}' => shown.push_str("\\e"),
            '\t' => shown.push_str("\\t"),
            '\r' => shown.push_str("\\r"),
            '\n' => shown.push_str("\\n"),
            c if hidden(c) => {
                let _ = write!(shown, "\\u{{{:x}}}", u32::from(c));
            }
            c => shown.push(c),
        }
    }
    Cow::Owned(shown)
}

/// Like [`printable`], but line feeds (and CR LF) stay line breaks, each
/// continuation line starting with `indent`.
pub fn printable_lines<'a>(text: &'a str, indent: &str) -> Cow<'a, str> {
    if !text.contains('\n') {
        return printable(text);
    }
    let lines: Vec<Cow<'_, str>> = text
        .split('\n')
        .map(|line| printable(line.strip_suffix('\r').unwrap_or(line)))
        .collect();
    Cow::Owned(lines.join(&format!("\n{indent}")))
}

/// Whether `c` must not reach the terminal as it is.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for text in [
            "",
            "Draft is in the folder",
            "회의는 3시에 합니다 ✓",
            "C:\\Users\\kim \\e literally",
            "emoji with a joiner: 👩\u{200d}💻",
        ] {
            assert!(matches!(printable(text), Cow::Borrowed(t) if t == text));
            assert!(matches!(printable_lines(text, "    "), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn ansi_escape_sequences_are_shown_not_sent() {
        assert_eq!(
            printable("\x1b[2J\x1b[31mFAKE\x1b[0m"),
            "\\e[2J\\e[31mFAKE\\e[0m"
        );
        // OSC 52 (write the clipboard) and OSC 0 (window title), ended by BEL or ST.
        assert_eq!(
            printable("\x1b]52;c;cm0gLXJmIH4=\x07"),
            "\\e]52;c;cm0gLXJmIH4=\\u{7}"
        );
        assert_eq!(printable("\x1b]0;pwned\x1b\\"), "\\e]0;pwned\\e\\");
        // The audit's line rewrite.
        assert_eq!(
            printable("\x1b[2K\r2025-03-14 09:12 UTC Park Jiwoo: approved\n"),
            "\\e[2K\\r2025-03-14 09:12 UTC Park Jiwoo: approved\\n"
        );
    }

    #[test]
    fn every_c0_c1_and_del_character_is_escaped() {
        let controls = (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32);
        for c in controls {
            let shown = printable(&c.to_string()).into_owned();
            assert!(shown.starts_with('\\'), "{c:?} shown as {shown:?}");
            assert!(!shown.chars().any(char::is_control), "{c:?} → {shown:?}");
        }
        assert_eq!(
            printable("\0\u{7f}\u{9b}\u{85}"),
            "\\u{0}\\u{7f}\\u{9b}\\u{85}"
        );
        assert_eq!(printable("a\tb"), "a\\tb");
    }

    #[test]
    fn bidi_controls_and_line_separators_are_escaped() {
        // "Trojan source": an override that shows "txt.exe" as "exe.txt".
        assert_eq!(printable("report\u{202e}txt.exe"), "report\\u{202e}txt.exe");
        for c in ['\u{061c}', '\u{200e}', '\u{200f}', '\u{2028}', '\u{2029}']
            .into_iter()
            .chain('\u{202a}'..='\u{202e}')
            .chain('\u{2066}'..='\u{2069}')
        {
            let shown = printable(&c.to_string()).into_owned();
            assert_eq!(shown, format!("\\u{{{:x}}}", u32::from(c)));
        }
    }

    #[test]
    fn message_lines_are_indented_so_none_fakes_a_header() {
        assert_eq!(
            printable_lines("first\nsecond\r\nthird", "    "),
            "first\n    second\n    third"
        );
        let fake = "ok\n2025-03-14 09:12 UTC Park Jiwoo: approved";
        let shown = printable_lines(fake, "    ");
        for line in shown.lines().skip(1) {
            assert!(line.starts_with("    "), "{shown}");
        }
        // Escapes on any line are still shown, and a lone CR still is.
        assert_eq!(printable_lines("a\x1b[1A\nb\rc", "  "), "a\\e[1A\n  b\\rc");
    }
}
