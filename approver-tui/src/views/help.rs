//! The `?` help, rendered from the key table in [`crate::keys`] so it never drifts.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::{Theme, centered};
use crate::keys::{self, Scope};

pub fn draw(frame: &mut Frame, area: Rect, theme: Theme) {
    let mut lines: Vec<Line> = Vec::new();
    for scope in [
        Scope::Global,
        Scope::Pending,
        Scope::Grants,
        Scope::DenyPrompt,
        Scope::ConfirmAlways,
    ] {
        lines.push(Line::from(Span::styled(scope.title(), theme.accent())));
        for b in keys::in_scope(scope) {
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<12}", keys::keys_label(b)), theme.label()),
                Span::raw(b.help),
            ]));
        }
    }
    let height = lines.len() as u16 + 2;
    let popup = centered(area, 72, height);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Keys — ? or Esc closes ")),
        popup,
    );
}
