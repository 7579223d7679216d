//! The header (view tabs), the message line (notices or key hints) and the status bar
//! (relay state, notifications, the approver's name and key fingerprint).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::Theme;
use crate::app::{App, Mode, NotifyState, RelayState, View};
use crate::escape::{truncate, width};
use crate::keys::{self, Scope};

pub fn header(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let mut spans = vec![Span::styled(" assent ", theme.accent())];
    for view in View::ALL {
        let label = match view {
            View::Pending => format!(" {} {} ", view.title(), app.pending.len()),
            _ => format!(" {} ", view.title()),
        };
        let style = if view == app.view {
            theme.selected()
        } else {
            theme.dim()
        };
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
    }
    let used: usize = spans.iter().map(|s| width(&s.content)).sum();
    let help = "? help ";
    let pad = (area.width as usize).saturating_sub(used + width(help));
    spans.push(Span::raw(" ".repeat(pad)));
    spans.push(Span::styled(help, theme.dim()));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The rows the message line needs at `width`: a notice is wrapped, never cut (it may quote
/// the relay, whose words name what is wrong).
pub fn message_height(app: &App, width: u16) -> u16 {
    match &app.notice {
        Some(n) => u16::try_from(wrap_error(&n.text, width.saturating_sub(1)).len())
            .unwrap_or(u16::MAX)
            .max(1),
        None => 1,
    }
}

pub fn message(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    if let Some(n) = &app.notice {
        let style = if n.warn { theme.warn() } else { theme.ok() };
        let lines: Vec<Line> = wrap_error(&n.text, area.width.saturating_sub(1))
            .into_iter()
            .map(|l| Line::from(Span::styled(format!(" {l}"), style)))
            .collect();
        frame.render_widget(Paragraph::new(lines), area);
        return;
    }
    let scope = match (&app.mode, app.view) {
        (Mode::Full(_), _) => Scope::FullView,
        (_, View::Pending) => Scope::Pending,
        (_, View::Grants) => Scope::Grants,
        (_, View::History) => Scope::Global,
    };
    let hints = keys::hint_line(&[scope, Scope::Global]);
    let line = Line::from(Span::styled(
        truncate(&format!(" {hints}"), area.width as usize).into_owned(),
        theme.dim(),
    ));
    frame.render_widget(Paragraph::new(line), area);
}

pub fn status(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let bar = theme.bar();
    let tint = |color: Color| if theme.color { bar.fg(color) } else { bar };
    let (dot, relay, relay_style) = match &app.relay {
        RelayState::Connected { url, embedded } => (
            "●",
            format!("relay {url}{}", if *embedded { " (embedded)" } else { "" }),
            tint(Color::Green),
        ),
        RelayState::Connecting { url, attempt } => (
            "○",
            format!("connecting to {url} (try {attempt})"),
            tint(Color::Yellow),
        ),
        // The error itself is shown whole above (see [`relay_error`]).
        RelayState::Disconnected {
            url, retry_in_s, ..
        } => (
            "✕",
            format!("relay DISCONNECTED {url} — retry in {retry_in_s}s"),
            tint(Color::LightRed).add_modifier(Modifier::BOLD),
        ),
        RelayState::Misconfigured { url, .. } => (
            "✕",
            format!("relay NOT USABLE {url} — not retrying"),
            tint(Color::LightRed).add_modifier(Modifier::BOLD),
        ),
    };
    let notify = match &app.notifications {
        NotifyState::Unavailable(_) => " │ notifications unavailable",
        _ => "",
    };
    let who = format!(" │ {} {} ", app.approver_name, app.approver_fingerprint);
    let total = area.width as usize;
    // The relay state comes first; the fingerprint shrinks first (but keeps its start).
    let fixed = 3 + width(notify);
    let who_room = total
        .saturating_sub(fixed + width(&relay))
        .max(24)
        .min(width(&who));
    let who = truncate(&who, who_room).into_owned();
    let room = total.saturating_sub(width(&who) + fixed);
    let relay = truncate(&relay, room).into_owned();
    let pad = room.saturating_sub(width(&relay));
    let line = Line::from(vec![
        Span::styled(format!(" {dot} "), relay_style),
        Span::styled(relay, relay_style),
        Span::styled(notify, tint(Color::Yellow)),
        Span::styled(" ".repeat(pad), bar),
        Span::styled(who, bar),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

/// The lines the relay's error needs in a box `width` cells wide (borders included), or 0.
pub fn relay_error_height(app: &App, width: u16) -> u16 {
    match app.relay.error() {
        Some(error) => {
            let lines = wrap_error(error, width.saturating_sub(2));
            u16::try_from(lines.len())
                .unwrap_or(u16::MAX)
                .saturating_add(2)
        }
        None => 0,
    }
}

/// The relay's error in full, wrapped, never cut: what went wrong names its fix.
pub fn relay_error(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let Some(error) = app.relay.error() else {
        return;
    };
    let title = match app.relay {
        RelayState::Misconfigured { .. } => {
            " relay: configuration error — not retrying; fix it, then restart the console "
        }
        _ => " relay unreachable — retrying ",
    };
    let block = ratatui::widgets::Block::bordered()
        .title(title)
        .border_style(theme.danger());
    let inner = block.inner(area);
    frame.render_widget(ratatui::widgets::Clear, area);
    frame.render_widget(block, area);
    let lines: Vec<Line> = wrap_error(error, inner.width)
        .into_iter()
        .map(|l| Line::from(Span::styled(l, theme.warn())))
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// An error in lines of at most `width` cells, broken between words where it can be.
fn wrap_error(error: &str, width: u16) -> Vec<String> {
    super::wrap_words(error.split(' '), usize::from(width).max(1))
        .into_iter()
        .map(|p| p.text)
        .collect()
}
