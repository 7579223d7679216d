//! The two prompts: an optional note for a denial, and the `y` confirmation for `always`.

use assent_protocol::RequestId;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::{Theme, hard_wrap};
use crate::app::App;
use crate::escape::{self, truncate};
use crate::keys::{self, Scope};

/// A box over the bottom of `area`, `height` rows tall including its border.
fn bottom_box(area: Rect, height: u16) -> Rect {
    let h = height.min(area.height);
    Rect {
        x: area.x,
        y: area.y + area.height - h,
        width: area.width,
        height: h,
    }
}

fn command_of(app: &App, id: RequestId, max: usize) -> String {
    app.item(id)
        .map(|item| {
            format!(
                "{} {} ({})",
                item.reference,
                item.summary.fit(max.saturating_sub(13)),
                truncate(&escape::visible(&item.request.payload.agent), 16)
            )
        })
        .unwrap_or_default()
}

pub fn deny(frame: &mut Frame, area: Rect, app: &App, id: RequestId, note: &str, theme: Theme) {
    let inner_width = area.width.saturating_sub(2) as usize;
    let mut lines = vec![Line::from(vec![
        Span::styled("Deny ", theme.danger()),
        Span::raw(command_of(app, id, inner_width.saturating_sub(20))),
    ])];
    let typed = format!("Note (optional): {}█", escape::visible(note));
    for piece in hard_wrap(&typed, inner_width) {
        lines.push(Line::from(piece));
    }
    lines.push(Line::from(Span::styled(
        keys::hint_line(&[Scope::DenyPrompt]),
        theme.dim(),
    )));
    let popup = bottom_box(area, lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Deny ")),
        popup,
    );
}

pub fn confirm_always(frame: &mut Frame, area: Rect, app: &App, id: RequestId, theme: Theme) {
    let inner_width = area.width.saturating_sub(2) as usize;
    let lines = vec![
        Line::from(vec![
            Span::styled("Approve ALWAYS, until revoked: ", theme.danger()),
            Span::raw(command_of(app, id, inner_width.saturating_sub(40))),
        ]),
        Line::from("The agent may run this exact command again without asking."),
        Line::from(Span::styled(
            keys::hint_line(&[Scope::ConfirmAlways]),
            theme.accent(),
        )),
    ];
    let popup = bottom_box(area, lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Confirm ")),
        popup,
    );
}
