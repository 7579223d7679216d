//! History: requests decided here or elsewhere, newest first, from the decision log.

use assent_protocol::{Grant, Verdict};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::{Theme, format_utc, scroll_window};
use assent_common::duration;

use crate::app::{App, HistoryRow};
use crate::escape::{truncate, visible, width};

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let block = Block::bordered().title(format!(" History ({}) ", app.history.len()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.history.is_empty() {
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(""),
                Line::from(Span::styled("Nothing decided yet.", theme.accent())),
                Line::from(Span::styled(
                    "Decisions are kept in the decision log and survive restarts.",
                    theme.dim(),
                )),
            ])
            .alignment(ratatui::layout::Alignment::Center),
            inner,
        );
        return;
    }
    let rows = inner.height as usize;
    let len = app.history.len();
    // Display row i is history[len - 1 - i] (newest first).
    let selected = len - 1 - app.history_selected_index().unwrap_or(len - 1);
    let first = scroll_window(&app.scroll[1], selected, len, rows);
    let lines: Vec<Line> = (first..(first + rows).min(len))
        .map(|i| {
            row(
                &app.history[len - 1 - i],
                i == selected,
                inner.width as usize,
                app.now,
                theme,
            )
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn row(h: &HistoryRow, selected: bool, cells: usize, now: u64, theme: Theme) -> Line<'static> {
    let base = if selected {
        theme.selected()
    } else {
        Style::new()
    };
    let pick = |s: Style| if selected { base } else { s };
    let (verdict, vstyle) = match h.verdict {
        Verdict::Approve => ("approved", theme.ok()),
        Verdict::Deny => ("denied", theme.danger()),
    };
    let grant = match (h.verdict, h.grant) {
        (Verdict::Deny, _) => String::new(),
        // Another approver's window is not known here.
        (_, Grant::Timed) => match h.window_s {
            Some(window) => format!("timed {}", duration::format(window)),
            None => "timed".to_string(),
        },
        (_, g) => g.to_string(),
    };
    let by = if h.elsewhere {
        format!(" by {}", visible(&h.approver))
    } else {
        String::new()
    };
    let note = h
        .note
        .as_deref()
        .map(|n| format!(" — {}", visible(n)))
        .unwrap_or_default();
    // Narrow: no year, no host; the command needs the room.
    let wide = cells >= 100;
    let date = format_utc(h.at);
    let head = format!(
        "{} {} ",
        if wide { &date[..] } else { &date[5..] },
        h.reference
    );
    let host = if wide {
        format!("@{}", truncate(&visible(&h.host), 16))
    } else {
        String::new()
    };
    // Never cut: a decision that did not reach its agent must be seen as such. Narrow, it
    // takes the agent's room (the command keeps some).
    let note_now = h.delivery_note(now);
    let delivery = match note_now {
        Some(n) => format!(", {n}"),
        None => " ".repeat(8 - width(verdict)),
    };
    let agent = if note_now.is_some() && !wide {
        String::new()
    } else {
        format!("{}{host} ", truncate(&visible(&h.agent), 12))
    };
    let who = format!(
        " {:<9} {agent}→ {}  ",
        grant,
        truncate(&visible(&h.run_as), 8)
    );
    let tail = format!("{by}{note}");
    let used = width(&head) + width(verdict) + width(&delivery) + width(&who);
    let room = cells.saturating_sub(used);
    // The command keeps at least half the room; by/note take the rest.
    let tail = truncate(&tail, room / 2).into_owned();
    let command = h.command.fit(room.saturating_sub(width(&tail)));
    let pad = room.saturating_sub(width(&command) + width(&tail));
    Line::from(vec![
        Span::styled(head, pick(theme.dim())),
        Span::styled(verdict, pick(vstyle)),
        Span::styled(delivery, pick(theme.warn())),
        Span::styled(who, base),
        Span::styled(command, base),
        Span::styled(tail, pick(theme.dim())),
        Span::styled(" ".repeat(pad), base),
    ])
}
