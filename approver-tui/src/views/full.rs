//! The full view: everything one request binds, every argument whole, scrollable, with Grant
//! and Expires pinned below. It is how a request too large for the detail gets approved: the
//! request counts as shown in full once every line has been on screen, read from the top
//! without jumping over any.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::Theme;
use super::request::{fields, render_row};
use crate::app::{App, Extent, FullView};
use crate::keys::{self, Command, Scope};

pub fn draw(frame: &mut Frame, area: Rect, app: &App, full: &FullView, theme: Theme) {
    let Some(item) = app.item(full.request_id) else {
        return;
    };
    let all = fields(
        app,
        item,
        area.width.saturating_sub(2) as usize,
        true,
        theme,
    );
    // Grant and Expires are the last two fields: pinned under the scrolling part.
    let (body, pinned) = all.split_at(all.len() - 2);
    let lines: Vec<Line> = body
        .iter()
        .flat_map(|f| (0..f.rows.len()).map(move |i| render_row(f, i, false, theme)))
        .collect();
    let footer: Vec<Line> = pinned
        .iter()
        .map(|f| render_row(f, 0, false, theme))
        .collect();

    let [main, foot] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(footer.len() as u16)])
            .areas(area);
    let page = main.height.saturating_sub(2) as usize;
    let total = lines.len();
    let top = full.top.min(total.saturating_sub(page));
    let end = (top + page).min(total);

    // How far the request has been read without a gap; a new width makes new lines.
    let last = full.extent.get();
    let width = main.width as usize;
    let mut seen = if last.width == width { last.seen } else { 0 };
    if top <= seen {
        seen = seen.max(end);
    }
    full.extent.set(Extent {
        total,
        page,
        seen,
        width,
    });
    let complete = seen >= total && page > 0;
    if complete {
        item.shown_in_full.set(true);
    }

    let progress = if complete || item.shown_in_full.get() {
        format!(
            "all {total} lines shown; {} approves",
            keys::keys_for(Scope::FullView, &[Command::Approve])
        )
    } else {
        format!(
            "read {seen} of {total} lines; scroll on with {}",
            keys::keys_for(Scope::Global, &[Command::Down, Command::PageDown])
        )
    };
    let block = Block::bordered()
        .title(format!(
            " Request {} — full view, lines {}–{end} of {total} ",
            item.reference,
            (top + 1).min(end)
        ))
        .title_bottom(Line::from(Span::styled(
            format!(" {progress} "),
            if complete { theme.ok() } else { theme.warn() },
        )));
    let inner = block.inner(main);
    frame.render_widget(block, main);
    frame.render_widget(Paragraph::new(lines[top..end].to_vec()), inner);
    frame.render_widget(Paragraph::new(footer), foot);
}
