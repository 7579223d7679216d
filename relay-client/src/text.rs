//! Text that came from the other end of a relay connection, made safe to print on one line.
//!
//! Reasons, close frames and error messages are chosen by whoever is on the other side: for a
//! shim or a console, a relay that may be hostile; for the relay, any client (whose malformed
//! messages end up quoted in parser errors). Printed raw, a newline would forge a log or
//! output line and an escape sequence would drive the reader's terminal.

use std::borrow::Cow;

use assent_common::text::needs_escape;

/// Longest text kept, in characters; the rest is cut with a mark saying so.
pub const MAX_CHARS: usize = 1000;

/// `text` with every character that must not reach a terminal raw (controls, invisible,
/// reordering and space-lookalike characters: [`needs_escape`]) escaped (`\n`, `\u{1b}`, …),
/// and cut to [`MAX_CHARS`] characters.
pub fn printable(text: &str) -> Cow<'_, str> {
    let long = text.len() > MAX_CHARS && text.chars().nth(MAX_CHARS).is_some();
    if !long && !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(MAX_CHARS * 2) + 16);
    for c in text.chars().take(MAX_CHARS) {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if long {
        out.push_str("…[cut]");
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_kept_as_it_is() {
        let text = "request 6a1f0e2c9b8d was already decided by alice — «déjà»";
        assert!(matches!(printable(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn controls_and_reordering_characters_are_escaped() {
        assert_eq!(
            printable("a\nb\r\tc\u{1b}[31md\u{7f}\u{9b}e\u{202e}f\u{200b}g"),
            "a\\nb\\r\\tc\\u{1b}[31md\\u{7f}\\u{9b}e\\u{202e}f\\u{200b}g"
        );
    }

    #[test]
    fn space_lookalikes_and_invisible_characters_are_escaped_as_on_the_console() {
        // A relay's reason once kept U+2001 (a space that is not one) and variation selectors
        // raw, though the console escapes them in everything else it shows.
        assert_eq!(
            printable("held\u{2001}by\u{a0}alice\u{e0100}"),
            "held\\u{2001}by\\u{a0}alice\\u{e0100}"
        );
    }

    #[test]
    fn long_text_is_cut_with_a_mark() {
        let long = "x".repeat(MAX_CHARS + 1);
        let cut = printable(&long);
        assert_eq!(cut.chars().count(), MAX_CHARS + "…[cut]".chars().count());
        assert!(cut.ends_with("…[cut]"));
        let exact = "é".repeat(MAX_CHARS);
        assert_eq!(printable(&exact), exact.as_str());
    }
}
