//! Drawing: `draw(frame, &App)` only renders. One file per view; shared layout and styles here.

use std::cell::Cell;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::{App, Mode, View};

pub mod full;
pub mod grants;
pub mod help;
pub mod history;
pub mod pending;
pub mod prompt;
pub mod request;
pub mod statusbar;

/// Styles, with or without colour (`NO_COLOR`). Only the 16 basic colours are used, so the
/// console looks the same on 16-colour, 256-colour and true-colour terminals.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }
    pub fn label(self) -> Style {
        self.fg(Color::Cyan)
    }
    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }
    pub fn accent(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    pub fn danger(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }
    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }
    pub fn selected(self) -> Style {
        if self.color {
            Style::new()
                .bg(Color::Blue)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }
    pub fn bar(self) -> Style {
        if self.color {
            Style::new().bg(Color::Black).fg(Color::White)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }
}

/// The smallest area the console draws into; below it, it says so instead.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 10;

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let theme = Theme { color: app.color };
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = vec![
            Line::from(Span::styled("assent", theme.accent())),
            Line::from(format!("{} pending", app.pending.len())),
            Line::from(format!("window too small ({}×{})", area.width, area.height)),
            Line::from(format!(
                "need {MIN_WIDTH}×{MIN_HEIGHT}; 80×24 or more is best"
            )),
        ];
        frame.render_widget(
            Paragraph::new(text).wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    // The relay's error, whole, above the message line; it takes at most half the screen.
    // Long notices wrap too, within a quarter of the screen.
    let error_rows = statusbar::relay_error_height(app, area.width).min(area.height / 2);
    let message_rows = statusbar::message_height(app, area.width).clamp(1, area.height / 4);
    let [header, body, error, message, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(error_rows),
        Constraint::Length(message_rows),
        Constraint::Length(1),
    ])
    .areas(area);
    statusbar::header(frame, header, app, theme);
    match (&app.mode, app.view) {
        (Mode::Full(full), _) => full::draw(frame, body, app, full, theme),
        // Under a prompt or the help, the detail is covered: it does not count as shown.
        (mode, View::Pending) => pending::draw(frame, body, app, *mode == Mode::Normal, theme),
        (_, View::History) => history::draw(frame, body, app, theme),
        (_, View::Grants) => grants::draw(frame, body, app, theme),
    }
    statusbar::relay_error(frame, error, app, theme);
    statusbar::message(frame, message, app, theme);
    statusbar::status(frame, status, app, theme);
    match &app.mode {
        Mode::Normal | Mode::Full(_) => {}
        Mode::Help => help::draw(frame, body, theme),
        Mode::DenyNote { request_id, note } => {
            prompt::deny(frame, body, app, *request_id, note, theme)
        }
        Mode::ConfirmAlways { request_id } => {
            prompt::confirm_always(frame, body, app, *request_id, theme)
        }
    }
}

/// First visible row of a list of `len` rows shown `rows` at a time, keeping `selected` in
/// view and moving as little as possible from the last frame's position.
pub fn scroll_window(offset: &Cell<usize>, selected: usize, len: usize, rows: usize) -> usize {
    if rows == 0 || len == 0 {
        offset.set(0);
        return 0;
    }
    let mut first = offset.get().min(len.saturating_sub(rows));
    if selected < first {
        first = selected;
    } else if selected >= first + rows {
        first = selected + 1 - rows;
    }
    offset.set(first);
    first
}

/// A rectangle of at most `width`×`height` centred in `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// One line of a wrapped value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    /// This line carries on a word cut at the end of the line before. The views mark such a
    /// line in the gutter, where no agent text ever goes, so a cut cannot pass for a space.
    pub continued: bool,
}

/// Lay `words` (escaped text: shell-quoted arguments, `KEY=value` pairs, words of a reason)
/// out in lines of at most `width` cells, breaking between words. A word wider than a line is
/// cut, on lines of its own; every line after its first is `continued`. [`join_pieces`] gives
/// back exactly `words` joined by single spaces.
pub fn wrap_words<'a>(words: impl IntoIterator<Item = &'a str>, width: usize) -> Vec<Piece> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut current = Piece {
        text: String::new(),
        continued: false,
    };
    let mut used = 0;
    let mut started = false;
    for word in words {
        let w = crate::escape::width(word);
        if started {
            if used + 1 + w <= width {
                current.text.push(' ');
                current.text.push_str(word);
                used += 1 + w;
                continue;
            }
            new_line(&mut lines, &mut current, false);
            used = 0;
        }
        started = true;
        if w <= width {
            current.text.push_str(word);
            used = w;
            continue;
        }
        for c in word.chars() {
            let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
            if used + cw > width && used > 0 {
                new_line(&mut lines, &mut current, true);
                used = 0;
            }
            current.text.push(c);
            used += cw;
        }
    }
    lines.push(current);
    lines
}

/// End `current` and start an empty line, `continued` or not.
fn new_line(lines: &mut Vec<Piece>, current: &mut Piece, continued: bool) {
    let next = Piece {
        text: String::new(),
        continued,
    };
    lines.push(std::mem::replace(current, next));
}

/// The text that wrapped lines came from: a space before each line that is not `continued`.
pub fn join_pieces(pieces: &[Piece]) -> String {
    let mut out = String::new();
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 && !piece.continued {
            out.push(' ');
        }
        out.push_str(&piece.text);
    }
    out
}

/// Split escaped text into pieces of at most `width` cells (hard wrap, for prompts).
pub fn hard_wrap(text: &str, width: usize) -> Vec<String> {
    wrap_words([text], width)
        .into_iter()
        .map(|p| p.text)
        .collect()
}

/// `2025-11-22 00:06` (UTC) for a unix time.
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00");
        assert_eq!(format_utc(1_763_770_000), "2025-11-22 00:06");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00");
    }

    #[test]
    fn scrolling_keeps_selection_visible() {
        let off = Cell::new(0);
        assert_eq!(scroll_window(&off, 0, 100, 10), 0);
        assert_eq!(scroll_window(&off, 9, 100, 10), 0);
        assert_eq!(scroll_window(&off, 10, 100, 10), 1);
        assert_eq!(
            scroll_window(&off, 5, 100, 10),
            1,
            "moving up inside the window does not scroll"
        );
        assert_eq!(scroll_window(&off, 0, 100, 10), 0);
        assert_eq!(scroll_window(&off, 99, 100, 10), 90);
        assert_eq!(scroll_window(&off, 2, 3, 10), 0, "shrunk list");
    }

    #[test]
    fn wrapping_keeps_every_character() {
        assert_eq!(hard_wrap("abcdefg", 3), vec!["abc", "def", "g"]);
        assert_eq!(hard_wrap("", 3), vec![""]);
        assert_eq!(hard_wrap("漢字漢", 4), vec!["漢字", "漢"]);
    }

    fn texts(pieces: &[Piece]) -> Vec<(&str, bool)> {
        pieces
            .iter()
            .map(|p| (p.text.as_str(), p.continued))
            .collect()
    }

    #[test]
    fn words_wrap_between_words_and_cuts_are_marked() {
        let words = ["tar", "-cf", "/var/log/archive.tar", "x"];
        let pieces = wrap_words(words, 12);
        assert_eq!(
            texts(&pieces),
            [
                ("tar -cf", false),
                ("/var/log/arc", false),
                ("hive.tar x", true)
            ]
        );
        assert_eq!(join_pieces(&pieces), words.join(" "));
        // Short words never split, whatever the width.
        let pieces = wrap_words(["/var/log", "/var/log"], 9);
        assert_eq!(texts(&pieces), [("/var/log", false), ("/var/log", false)]);
        assert_eq!(texts(&wrap_words([], 5)), [("", false)]);
        let empty = wrap_words(["a", "", "b"], 1);
        assert_eq!(join_pieces(&empty), "a  b");
    }

    /// Split a `shell_join`ed line back into its arguments (the quoting `shell_quote` writes).
    fn unquote(line: &str) -> Vec<String> {
        let mut args = Vec::new();
        let mut chars = line.chars().peekable();
        while chars.peek().is_some() {
            let mut arg = String::new();
            match chars.peek() {
                Some('\'') => {
                    chars.next();
                    for c in chars.by_ref() {
                        if c == '\'' {
                            break;
                        }
                        arg.push(c);
                    }
                }
                Some('$') => {
                    chars.next();
                    assert_eq!(chars.next(), Some('\''));
                    while let Some(c) = chars.next() {
                        match c {
                            '\'' => break,
                            '\\' => {
                                let e = chars.next().unwrap();
                                let hex =
                                    |n: usize, chars: &mut std::iter::Peekable<std::str::Chars>| {
                                        let h: String = chars.take(n).collect();
                                        char::from_u32(u32::from_str_radix(&h, 16).unwrap())
                                            .unwrap()
                                    };
                                arg.push(match e {
                                    'n' => '\n',
                                    't' => '\t',
                                    'r' => '\r',
                                    'x' => hex(2, &mut chars),
                                    'u' => hex(4, &mut chars),
                                    'U' => hex(8, &mut chars),
                                    other => other,
                                });
                            }
                            c => arg.push(c),
                        }
                    }
                }
                _ => {
                    while let Some(&c) = chars.peek() {
                        if c == ' ' {
                            break;
                        }
                        arg.push(c);
                        chars.next();
                    }
                }
            }
            args.push(arg);
            if chars.peek() == Some(&' ') {
                chars.next();
            }
        }
        args
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// For any argv, the wrapped lines join back to exactly the quoted arguments, and
        /// those to exactly argv; no line is wider than asked.
        #[test]
        fn wrapped_argv_joins_back_to_the_quoted_arguments(
            argv in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::string::string_regex(".{0,12}").unwrap(),
                    proptest::string::string_regex("[a-z/=.-]{0,200}").unwrap(),
                    proptest::string::string_regex("\\PC{0,80}").unwrap(),
                    proptest::strategy::Just(String::new()),
                ],
                1..30,
            ),
            width in 2usize..120,
        ) {
            let quoted: Vec<String> = argv.iter().map(|a| crate::escape::shell_quote(a).into_owned()).collect();
            let pieces = wrap_words(quoted.iter().map(String::as_str), width);
            let joined = join_pieces(&pieces);
            proptest::prop_assert_eq!(&joined, &crate::escape::shell_join(&argv));
            proptest::prop_assert_eq!(unquote(&joined), argv);
            for piece in &pieces {
                proptest::prop_assert!(crate::escape::width(&piece.text) <= width, "{:?}", piece);
            }
        }
    }
}
