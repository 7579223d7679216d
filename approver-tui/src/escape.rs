//! Making attacker-controlled text safe to put on the approver's screen.
//!
//! Every string in a request comes from the party the console guards against. Control
//! characters and escape sequences could move the cursor, recolour or rewrite what the approver
//! reads, and invisible or bidirectional characters could make one command look like another.
//! Everything here turns such characters into visible escapes (`\x1b`, `\n`, `\u{202e}`) and
//! never lets them reach the terminal raw.

use std::borrow::Cow;

use unicode_width::UnicodeWidthStr;

pub use assent_common::text::{is_default_ignorable, needs_escape};

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
