//! Pending: the queue of requests (only the visible rows are formatted, so ten thousand
//! waiting requests cost no more than ten) and the detail of the selected one.
//!
//! The detail never hides what a decision binds: Program, Run, Cwd, Env, Grant and Expires
//! keep at least their first row at every size from 80×24 up (Agent and Key too); argv, risks
//! and reason share what is left, and what does not fit is said on a last row that names the
//! full view.
//! Only a detail drawn whole marks its request as shown in full ([`PendingItem::shown_in_full`]).
//!
//! Every string from a request is attacker-controlled and goes through [`crate::escape`].

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::request::{Field, fields, render_row};
use super::{Theme, scroll_window};
use assent_common::duration;

use crate::app::{App, PendingItem};
use crate::escape::{self, truncate, visible, width};
use crate::keys::{self, Command, Scope};

/// `uncovered`: nothing is drawn over the detail, so a detail drawn whole was seen whole.
pub fn draw(frame: &mut Frame, area: Rect, app: &App, uncovered: bool, theme: Theme) {
    if app.pending.is_empty() {
        let block = Block::bordered().title(" Pending ");
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let text = vec![
            Line::from(""),
            Line::from(Span::styled("No pending requests.", theme.accent())),
            Line::from(""),
            Line::from("Requests from agents appear here as they arrive (with a bell)."),
            Line::from(Span::styled(
                "agent side: assent run --reason TEXT -- COMMAND",
                theme.dim(),
            )),
        ];
        frame.render_widget(
            Paragraph::new(text).alignment(ratatui::layout::Alignment::Center),
            inner,
        );
        return;
    }
    // The list gets a sixth of the height: the detail needs the rest.
    let list_rows = (area.height as usize / 6).max(1).min(app.pending.len());
    let [list, detail] = Layout::vertical([
        Constraint::Length(list_rows as u16 + 2),
        Constraint::Fill(1),
    ])
    .areas(area);
    let selected = app.selected_index();
    draw_list(frame, list, app, selected, theme);
    match selected.map(|i| &app.pending[i]) {
        Some(item) => draw_detail(frame, detail, app, item, uncovered, theme),
        None => {
            let block = Block::bordered().title(" No request selected ");
            let inner = block.inner(detail);
            frame.render_widget(block, detail);
            frame.render_widget(
                Paragraph::new(Span::styled(
                    format!(
                        "{} to select a request",
                        keys::keys_for(Scope::Global, &[Command::Down, Command::Up])
                    ),
                    theme.dim(),
                )),
                inner,
            );
        }
    }
}

fn draw_list(frame: &mut Frame, area: Rect, app: &App, selected: Option<usize>, theme: Theme) {
    let title = match selected {
        Some(i) => format!(" Pending {}/{} ", i + 1, app.pending.len()),
        None => format!(" Pending {} ", app.pending.len()),
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = inner.height as usize;
    let first = scroll_window(
        &app.scroll[0],
        selected.unwrap_or(0),
        app.pending.len(),
        rows,
    );
    let lines: Vec<Line> = app.pending[first..(first + rows).min(app.pending.len())]
        .iter()
        .enumerate()
        .map(|(i, item)| list_row(app, item, Some(first + i) == selected, inner.width, theme))
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn list_row(
    app: &App,
    item: &PendingItem,
    selected: bool,
    width: u16,
    theme: Theme,
) -> Line<'static> {
    let r = &item.request.payload;
    let width = width as usize;
    let left = r.expires_at.saturating_sub(app.now);
    let marker = if selected { "▶ " } else { "  " };
    let time = format!("{:>5} ", duration::countdown(left));
    // The host too, when there is room (as in History and Grants): agents on several hosts
    // may ask for the same command. The detail always names it.
    let host = if width >= 100 {
        format!("@{}", truncate(&visible(&r.host), 16))
    } else {
        String::new()
    };
    let who = format!(
        "{}{host} → {} ",
        truncate(&visible(&r.agent), 12),
        truncate(&visible(&r.run_as), 8)
    );
    let tags: Vec<&str> = item
        .risks
        .iter()
        .filter(|r| !r.is_informational())
        .map(|r| r.tag())
        .collect();
    let fixed = width_of(&[marker, &time, &who]);
    // The command (and the program it names) comes first; the tags get at most a third.
    let tags = if tags.is_empty() {
        String::new()
    } else {
        truncate(&format!(" ⚠ {}", tags.join(" ")), width / 3).into_owned()
    };
    let room = width.saturating_sub(fixed + width_of(&[&tags]));
    let command = item.summary.fit(room);
    let pad = room.saturating_sub(escape::width(&command));
    let base = if selected {
        theme.selected()
    } else {
        Style::new()
    };
    let tag_style = if selected { base } else { theme.danger() };
    Line::from(vec![
        Span::styled(marker, base),
        Span::styled(time, if selected { base } else { theme.dim() }),
        Span::styled(who, base),
        Span::styled(command, base),
        Span::styled(" ".repeat(pad), base),
        Span::styled(tags, tag_style),
    ])
}

fn width_of(parts: &[&str]) -> usize {
    parts.iter().map(|p| width(p)).sum()
}

/// How many rows each field gets in `height` rows. Everything, when it fits. Otherwise one
/// row is kept for the "more" line, every pinned field gets its first row, then the others
/// theirs (Agent and Key first: they come first in the list), then every field that has more
/// gets one more row in turn.
pub fn allocate(fields: &[Field], height: usize) -> Vec<usize> {
    let lens: Vec<usize> = fields.iter().map(|f| f.rows.len()).collect();
    if lens.iter().sum::<usize>() <= height {
        return lens;
    }
    let mut budget = height.saturating_sub(1);
    let mut shown = vec![0; lens.len()];
    for pinned in [true, false] {
        for (i, f) in fields.iter().enumerate() {
            if f.pinned == pinned && lens[i] > 0 && budget > 0 {
                shown[i] = 1;
                budget -= 1;
            }
        }
    }
    while budget > 0 {
        let mut gave = false;
        for i in 0..lens.len() {
            if budget > 0 && shown[i] < lens[i] {
                shown[i] += 1;
                budget -= 1;
                gave = true;
            }
        }
        if !gave {
            break;
        }
    }
    shown
}

/// Says, while it lasts, that keys wait because the request came under the cursor by itself.
pub const GUARD_TITLE: &str = "just came under the cursor: a and d wait 1 s";

fn draw_detail(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    item: &PendingItem,
    uncovered: bool,
    theme: Theme,
) {
    let mut title = vec![Span::raw(format!(" Request {} ", item.reference))];
    if app.guard_left_ms() > 0 {
        title.push(Span::styled(format!("· {GUARD_TITLE} "), theme.warn()));
    }
    let block = Block::bordered().title(Line::from(title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let fields = fields(app, item, inner.width as usize, false, theme);
    let height = inner.height as usize;
    let shown = allocate(&fields, height);
    let mut lines: Vec<Line> = Vec::with_capacity(height);
    let mut cut: Vec<String> = Vec::new();
    for (field, &n) in fields.iter().zip(&shown) {
        let more = field.rows.len() - n;
        for i in 0..n {
            lines.push(render_row(field, i, more > 0 && i + 1 == n, theme));
        }
        if more > 0 {
            cut.push(format!("{} +{more}", field.label));
        }
    }
    if cut.is_empty() {
        if uncovered {
            item.shown_in_full.set(true);
        }
    } else if height > 0 {
        lines.truncate(height - 1);
        lines.push(Line::from(Span::styled(
            format!(
                "▼ {}: full view — not shown: {}",
                keys::keys_for(Scope::Pending, &[Command::Full]),
                cut.join(" · ")
            ),
            theme.warn(),
        )));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
