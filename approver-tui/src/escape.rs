//! Making attacker-controlled text safe to put on the approver's screen.
//!
//! Every string in a request comes from the party the console guards against. Control
//! characters and escape sequences could move the cursor, recolour or rewrite what the approver
//! reads, and invisible or bidirectional characters could make one command look like another.
//! Everything here turns such characters into visible escapes (`\x1b`, `\n`, `\u{202e}`) and
//! never lets them reach the terminal raw.

use std::borrow::Cow;

use unicode_width::UnicodeWidthStr;

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
fn is_deceptive(c: char) -> bool {
    is_default_ignorable(c)
        || (c.is_whitespace() && c != ' ')
        || matches!(c, '\u{fff9}'..='\u{fffb}')
}

/// Whether `c` must be shown as an escape rather than printed.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_deceptive(c)
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// `s` with every control or deceptive character, and the backslash itself, written as an
/// escape, so that what is shown maps back to exactly one string.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c == '\\' || needs_escape(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if needs_escape(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Characters a POSIX shell word may hold without quoting.
fn is_shell_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c)
}

/// One argument as a shell would need it typed: bare when safe, `'single quoted'` when it has
/// no quote or invisible characters, else ANSI-C `$'...'` quoting with escapes. The result is
/// unambiguous and copy-pastable into bash.
pub fn shell_quote(arg: &str) -> Cow<'_, str> {
    if !arg.is_empty() && arg.chars().all(is_shell_safe) {
        return Cow::Borrowed(arg);
    }
    if !arg.chars().any(|c| c == '\'' || needs_escape(c)) {
        return Cow::Owned(format!("'{arg}'"));
    }
    let mut out = String::with_capacity(arg.len() + 8);
    out.push_str("$'");
    for c in arg.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if needs_escape(c) => match c {
                '\n' | '\t' | '\r' => push_escaped(&mut out, c),
                c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
                c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push_str(&format!("\\U{:08x}", c as u32)),
            },
            c => out.push(c),
        }
    }
    out.push('\'');
    Cow::Owned(out)
}

/// A whole argv, shell-quoted and joined with spaces.
pub fn shell_join(argv: &[String]) -> String {
    let mut out = String::new();
    for (i, arg) in argv.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&shell_quote(arg));
    }
    out
}

/// Display width in terminal cells.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// Cut `s` (already escaped) to at most `max` cells, ending in `…` when something was cut.
pub fn truncate(s: &str, max: usize) -> Cow<'_, str> {
    if width(s) <= max {
        return Cow::Borrowed(s);
    }
    if max == 0 {
        return Cow::Borrowed("");
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > max - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    Cow::Owned(out)
}

/// Keep the start and the end of a long value and say how much was left out between them,
/// so the end of a command line is never hidden silently.
pub fn elide_middle(s: &str, max_chars: usize) -> Cow<'_, str> {
    let count = s.chars().count();
    if count <= max_chars {
        return Cow::Borrowed(s);
    }
    let keep = max_chars.saturating_sub(24) / 2;
    let head: String = s.chars().take(keep).collect();
    let tail: String = s.chars().skip(count - keep).collect();
    Cow::Owned(format!(
        "{head} …[{} chars left out]… {tail}",
        count - 2 * keep
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible() {
        assert_eq!(visible("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(visible("line\nnext\tx\r"), "line\\nnext\\tx\\r");
        assert_eq!(visible("\u{7f}\u{9b}"), "\\x7f\\x9b");
        assert_eq!(visible("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(visible("zero\u{200b}width"), "zero\\u{200b}width");
        assert_eq!(visible("back\\slash"), "back\\\\slash");
        assert!(matches!(visible("plain é 漢字"), Cow::Borrowed(_)));
    }

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
    fn invisible_and_space_lookalikes_are_escaped() {
        for (raw, shown) in [
            ("a\u{e0100}b", "a\\u{e0100}b"),
            ("a\u{e01ef}b", "a\\u{e01ef}b"),
            ("tag\u{e0041}", "tag\\u{e0041}"),
            ("nb\u{a0}sp", "nb\\xa0sp"),
            ("em\u{2003}sp", "em\\u{2003}sp"),
            ("ideo\u{3000}sp", "ideo\\u{3000}sp"),
            ("ogham\u{1680}", "ogham\\u{1680}"),
            ("narrow\u{202f}", "narrow\\u{202f}"),
            ("soft\u{ad}hyphen", "soft\\xadhyphen"),
            ("fill\u{3164}er", "fill\\u{3164}er"),
            ("half\u{ffa0}", "half\\u{ffa0}"),
            ("jamo\u{115f}\u{1160}", "jamo\\u{115f}\\u{1160}"),
            ("vs\u{fe0f}", "vs\\u{fe0f}"),
            ("isolate\u{2066}x\u{2069}", "isolate\\u{2066}x\\u{2069}"),
            ("line\u{2028}sep", "line\\u{2028}sep"),
        ] {
            assert_eq!(visible(raw), shown, "{raw:?}");
            assert!(shell_quote(raw).starts_with("$'"), "{raw:?}");
        }
        // The plain space is the one space that prints as itself.
        assert_eq!(visible("a b"), "a b");
        assert_eq!(shell_quote("a b"), "'a b'");
        // Every White_Space character but U+0020 is escaped.
        let space = regex::Regex::new(r"^\p{White_Space}$").unwrap();
        let mut buf = [0u8; 4];
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            if c != ' ' && space.is_match(c.encode_utf8(&mut buf)) {
                assert!(needs_escape(c), "U+{:04X}", c as u32);
            }
        }
    }

    #[test]
    fn escaped_text_has_no_control_characters() {
        let nasty: String = (0u32..0x250).filter_map(char::from_u32).collect();
        assert!(!visible(&nasty).chars().any(needs_escape));
        assert!(!shell_quote(&nasty).chars().any(needs_escape));
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("apt-get"), "apt-get");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("two words"), "'two words'");
        assert_eq!(shell_quote("it's"), "$'it\\'s'");
        assert_eq!(shell_quote("a\nb"), "$'a\\nb'");
        assert_eq!(shell_quote("\x1b]0;x\x07"), "$'\\x1b]0;x\\x07'");
        assert_eq!(shell_quote("\u{202e}"), "$'\\u202e'");
        assert_eq!(
            shell_join(&["rm".into(), "-rf".into(), "/tmp/a b".into()]),
            "rm -rf '/tmp/a b'"
        );
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdefg", 6), "abcde…");
        assert_eq!(truncate("漢字漢字", 5), "漢字…");
        let long = "x".repeat(100) + "END";
        let e = elide_middle(&long, 60);
        assert!(e.ends_with("END"), "{e}");
        assert!(e.contains("chars left out"));
    }
}
