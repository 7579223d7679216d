//! How a request's command is named on one line, everywhere one line names it: the Pending
//! row, History, Grants, notices, notifications and `assent-console list`.
//!
//! `argv[0]` is the agent's to choose and the program path is what runs, so `argv` alone can
//! say `systemctl restart nginx` while `/usr/bin/bash` runs the agent's file `restart`.
//! Whenever `argv[0]` does not name the program, the program path comes first, in brackets:
//! `[/usr/bin/bash] systemctl restart nginx`. Arguments are shell-quoted and a bracket is not a
//! shell-safe character, so no argument can print as that prefix.

use std::borrow::Cow;

use assent_protocol::Request;

use crate::escape::{shell_join, shell_quote, truncate, width};

/// Whether `argv0` names `program`: the same path, or (without a slash) its file name.
pub fn names_program(program: &str, argv0: &str) -> bool {
    if argv0 == program {
        return true;
    }
    let base = program.rsplit('/').next().unwrap_or(program);
    !argv0.is_empty() && !argv0.contains('/') && argv0 == base
}

/// A request's command, escaped and ready for one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The program path, shell-quoted, when `argv[0]` does not name it.
    pub program: Option<String>,
    /// Every argument, shell-quoted, joined by spaces.
    pub argv: String,
}

impl Summary {
    pub fn of(request: &Request) -> Summary {
        let argv0 = request.argv.first().map(String::as_str).unwrap_or("");
        Summary {
            program: (!names_program(&request.program, argv0))
                .then(|| shell_quote(&request.program).into_owned()),
            argv: shell_join(&request.argv),
        }
    }

    /// The whole command: `[PROGRAM] ARGV` or `ARGV`.
    pub fn full(&self) -> String {
        match &self.program {
            Some(p) => format!("[{p}] {}", self.argv),
            None => self.argv.clone(),
        }
    }

    /// The command in at most `max` cells. The program keeps its start and its file name (the
    /// middle gives way when it would take more than two thirds of the room); argv is cut at
    /// its end, with `…`.
    pub fn fit(&self, max: usize) -> String {
        let Some(program) = &self.program else {
            return truncate(&self.argv, max).into_owned();
        };
        let whole = self.full();
        if width(&whole) <= max {
            return whole;
        }
        let inner = max.saturating_sub(3); // "[", "] "
        let share = if width(program) <= inner * 2 / 3 {
            width(program)
        } else {
            inner / 2
        };
        let room = share.max(inner.saturating_sub(width(&self.argv)));
        let head = format!("[{}] ", keep_ends(program, room));
        let argv = truncate(&self.argv, max.saturating_sub(width(&head)));
        format!("{head}{argv}")
    }
}

/// `s` in at most `max` cells, keeping its start and its end around a `…`.
pub fn keep_ends(s: &str, max: usize) -> Cow<'_, str> {
    if width(s) <= max {
        return Cow::Borrowed(s);
    }
    if max < 3 {
        return truncate(s, max);
    }
    // The end (the file name) matters most: it gets the larger half.
    let tail_room = (max - 1) - (max - 1) / 3;
    let head_room = (max - 1) - tail_room;
    let mut tail: Vec<char> = Vec::new();
    let mut used = 0;
    for c in s.chars().rev() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > tail_room {
            break;
        }
        tail.push(c);
        used += w;
    }
    let head = truncate(s, head_room + 1);
    let head = head.strip_suffix('…').unwrap_or(&head);
    let tail: String = tail.into_iter().rev().collect();
    Cow::Owned(format!("{head}…{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn argv0_names_the_program_by_path_or_file_name() {
        assert!(names_program("/usr/bin/ls", "ls"));
        assert!(names_program("/usr/bin/ls", "/usr/bin/ls"));
        assert!(!names_program("/usr/bin/bash", "systemctl"));
        assert!(!names_program("/usr/bin/dash", "sh"));
        assert!(!names_program("/usr/bin/ls", "/bin/ls"), "another path");
        assert!(!names_program("/usr/bin/ls", "./ls"));
        assert!(!names_program("/usr/bin/", ""));
        assert!(!names_program("/usr/bin/ls", ""));
    }

    #[test]
    fn the_program_leads_when_argv0_does_not_name_it() {
        let mut r = testing::request("systemctl restart nginx", &[]);
        r.program = "/usr/bin/bash".into();
        let s = Summary::of(&r);
        assert_eq!(s.full(), "[/usr/bin/bash] systemctl restart nginx");
        assert_eq!(s.fit(100), "[/usr/bin/bash] systemctl restart nginx");
        assert_eq!(s.fit(24), "[/usr/bin/bash] systemc…");
        // A long program path keeps its file name, however little room there is.
        r.program = format!("/opt/{}/bin/bash", "x".repeat(80));
        let fitted = Summary::of(&r).fit(40);
        assert!(width(&fitted) <= 40, "{fitted}");
        assert!(fitted.starts_with("[/opt/"), "{fitted}");
        assert!(fitted.contains("/bin/bash] "), "{fitted}");

        let plain = Summary::of(&testing::request("apt-get upgrade", &[]));
        assert_eq!(plain.program, None);
        assert_eq!(plain.full(), "apt-get upgrade");
    }

    #[test]
    fn no_argument_can_pose_as_the_program() {
        let mut r = testing::request("x", &[]);
        r.argv = vec!["[/usr/bin/ls]".into(), "x".into()];
        r.program = "/usr/bin/bash".into();
        assert_eq!(Summary::of(&r).full(), "[/usr/bin/bash] '[/usr/bin/ls]' x");
        // A program path that needs quoting is quoted inside the brackets.
        r.program = "/opt/a b]/x".into();
        assert_eq!(Summary::of(&r).full(), "['/opt/a b]/x'] '[/usr/bin/ls]' x");
    }

    #[test]
    fn both_ends_are_kept() {
        assert_eq!(keep_ends("abcdef", 6), "abcdef");
        assert_eq!(keep_ends("/usr/local/libexec/thing", 12), "/us…ec/thing");
        assert_eq!(width(&keep_ends("/usr/local/libexec/thing", 12)), 12);
        assert_eq!(keep_ends("abcdef", 2), "a…");
    }
}
