//! Which characters may reach a terminal as themselves, when the text came from someone
//! else: a request's strings on the approver's screen, a relay's reasons on the agent's
//! stderr. One set of rules, so that every screen and every line escapes the same things.
//!
//! Control characters and escape sequences could move the cursor, recolour or rewrite what
//! is read; invisible, reordering and space-lookalike characters could make one text look
//! like another. Callers write such characters as visible escapes.

/// Default_Ignorable_Code_Point, from the Unicode Character Database (DerivedCoreProperties.txt,
/// Unicode 16.0): characters a terminal draws as nothing — soft hyphen, joiners, bidi
/// controls, Hangul fillers, variation selectors (U+FE00–FE0F, U+E0100–E01EF), tag characters
/// and their reserved neighbours. A test compares this table with the regex crate's copy of
/// the same property, so a typo here cannot go unnoticed.
const DEFAULT_IGNORABLE: &[(char, char)] = &[
    ('\u{00ad}', '\u{00ad}'),
    ('\u{034f}', '\u{034f}'),
    ('\u{061c}', '\u{061c}'),
    ('\u{115f}', '\u{1160}'),
    ('\u{17b4}', '\u{17b5}'),
    ('\u{180b}', '\u{180f}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2060}', '\u{206f}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{fe00}', '\u{fe0f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{ffa0}', '\u{ffa0}'),
    ('\u{fff0}', '\u{fff8}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0000}', '\u{e0fff}'),
];

/// Whether `c` is a Default_Ignorable_Code_Point.
pub fn is_default_ignorable(c: char) -> bool {
    // Every entry is at or above U+00AD: plain ASCII never needs the search.
    if c < '\u{ad}' {
        return false;
    }
    DEFAULT_IGNORABLE
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Characters that print, but not as what they are: invisible ones, every space but U+0020
/// (U+00A0, U+2000–U+200A, U+3000, … look like a plain space and are not one), the line and
/// paragraph separators, and the interlinear annotation marks, which some terminals hide.
pub fn is_deceptive(c: char) -> bool {
    is_default_ignorable(c)
        || (c.is_whitespace() && c != ' ')
        || matches!(c, '\u{fff9}'..='\u{fffb}')
}

/// Whether `c` must be shown as an escape rather than printed.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_deceptive(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ignorable_table_is_the_unicode_property() {
        // The regex crate carries its own copy of DerivedCoreProperties; every code point
        // must agree with it, and the table must stay sorted for the binary search.
        let property = regex::Regex::new(r"^\p{Default_Ignorable_Code_Point}$").unwrap();
        let mut buf = [0u8; 4];
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            assert_eq!(
                is_default_ignorable(c),
                property.is_match(c.encode_utf8(&mut buf)),
                "U+{:04X}",
                c as u32
            );
        }
        assert!(DEFAULT_IGNORABLE.windows(2).all(|w| w[0].1 < w[1].0));
    }

    #[test]
    fn every_space_but_the_plain_one_is_escaped() {
        let space = regex::Regex::new(r"^\p{White_Space}$").unwrap();
        let mut buf = [0u8; 4];
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            if c != ' ' && space.is_match(c.encode_utf8(&mut buf)) {
                assert!(needs_escape(c), "U+{:04X}", c as u32);
            }
        }
        assert!(!needs_escape(' '));
        for c in [
            '\u{1b}',
            '\u{7f}',
            '\u{9b}',
            '\u{202e}',
            '\u{200b}',
            '\u{e0100}',
            '\u{a0}',
        ] {
            assert!(needs_escape(c), "U+{:04X}", c as u32);
        }
    }
}
