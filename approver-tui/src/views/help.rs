//! The `?` help, rendered from the key table in [`crate::keys`] so it never drifts.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::{Theme, centered};
use crate::keys::{self, Command, Scope};

fn section(scope: Scope, theme: Theme) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(Span::styled(scope.title(), theme.accent()))];
    for b in keys::in_scope(scope) {
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<10} ", keys::keys_label(b)), theme.label()),
            Span::raw(b.help),
        ]));
    }
    lines
}

pub fn draw(frame: &mut Frame, area: Rect, theme: Theme) {
    let left_scopes = [Scope::Global, Scope::Grants, Scope::FullView];
    let right_scopes = [Scope::Pending, Scope::DenyPrompt, Scope::ConfirmAlways];
    let left: Vec<Line> = left_scopes
        .iter()
        .flat_map(|s| section(*s, theme))
        .collect();
    let right: Vec<Line> = right_scopes
        .iter()
        .flat_map(|s| section(*s, theme))
        .collect();
    let block = Block::bordered().title(format!(
        " Keys — {} closes ",
        keys::keys_for(Scope::Global, &[Command::Help, Command::Close]).replace(' ', " or ")
    ));
    // One column when it fits, else two side by side.
    if left.len() + right.len() + 2 <= area.height as usize {
        let height = (left.len() + right.len() + 2) as u16;
        let popup = centered(area, 56, height);
        frame.render_widget(Clear, popup);
        let all: Vec<Line> = left.into_iter().chain(right).collect();
        frame.render_widget(Paragraph::new(all).block(block), popup);
    } else {
        let height = (left.len().max(right.len()) + 2) as u16;
        let popup = centered(area, 80, height);
        frame.render_widget(Clear, popup);
        let inner = block.inner(popup);
        frame.render_widget(block, popup);
        let [l, r] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(inner);
        frame.render_widget(Paragraph::new(left), l);
        frame.render_widget(Paragraph::new(right), r);
    }
}
