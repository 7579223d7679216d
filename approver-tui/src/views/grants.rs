//! Grants: live timed and always grants this approver signed; `r` revokes one.

use assent_protocol::Grant;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::{Theme, scroll_window};
use assent_common::duration;

use crate::app::{App, GrantRow};
use crate::escape::{truncate, visible, width};

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let live: Vec<&GrantRow> = app.live_grants().collect();
    let block = Block::bordered().title(format!(" Grants ({} live) ", live.len()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if live.is_empty() {
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(""),
                Line::from(Span::styled("No live timed or always grants.", theme.accent())),
                Line::from(Span::styled(
                    "Approve with t (timed/always) to let an agent repeat a command without asking.",
                    theme.dim(),
                )),
            ])
            .alignment(ratatui::layout::Alignment::Center),
            inner,
        );
        return;
    }
    let rows = inner.height as usize;
    let selected = app.grants_selected_index();
    let first = scroll_window(&app.scroll[2], selected.unwrap_or(0), live.len(), rows);
    let lines: Vec<Line> = live[first..(first + rows).min(live.len())]
        .iter()
        .enumerate()
        .map(|(i, g)| {
            row(
                app,
                g,
                Some(first + i) == selected,
                inner.width as usize,
                theme,
            )
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn row(app: &App, g: &GrantRow, selected: bool, width_cells: usize, theme: Theme) -> Line<'static> {
    let base = if selected {
        theme.selected()
    } else {
        Style::new()
    };
    let pick = |s: Style| if selected { base } else { s };
    let kind = match g.grant {
        Grant::Always => "always",
        _ => "timed ",
    };
    let until = match g.not_after {
        None => "until revoked ".to_string(),
        Some(end) => format!(
            "{:>8} left  ",
            duration::countdown(end.saturating_sub(app.now))
        ),
    };
    let (state, sstyle) = match g.revoked_at {
        Some(_) => (" REVOKED".to_string(), theme.danger()),
        None if app.console.is_some_and(|mine| mine != g.console) => {
            (format!(" console {}", g.console.short()), theme.dim())
        }
        None => (String::new(), theme.ok()),
    };
    let host = if width_cells >= 100 {
        format!("@{}", truncate(&visible(&g.host), 16))
    } else {
        String::new()
    };
    let head = format!(
        "{kind} {until}{} {}{host} → {}  ",
        g.reference,
        truncate(&visible(&g.agent), 12),
        truncate(&visible(&g.run_as), 8)
    );
    let room = width_cells.saturating_sub(width(&head) + width(&state));
    let command = g.command.fit(room);
    let pad = room.saturating_sub(width(&command));
    Line::from(vec![
        Span::styled(head, base),
        Span::styled(command, base),
        Span::styled(" ".repeat(pad), base),
        Span::styled(state, pick(sstyle)),
    ])
}
