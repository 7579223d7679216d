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

pub fn message(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let line = match &app.notice {
        Some(n) => Line::from(Span::styled(
            truncate(&format!(" {}", n.text), area.width as usize).into_owned(),
            if n.warn { theme.warn() } else { theme.ok() },
        )),
        None => {
            let scope = match (&app.mode, app.view) {
                (Mode::Full(_), _) => Scope::FullView,
                (_, View::Pending) => Scope::Pending,
                (_, View::Grants) => Scope::Grants,
                (_, View::History) => Scope::Global,
            };
            let hints = keys::hint_line(&[scope, Scope::Global]);
            Line::from(Span::styled(
                truncate(&format!(" {hints}"), area.width as usize).into_owned(),
                theme.dim(),
            ))
        }
    };
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
        RelayState::Disconnected {
            url,
            error,
            retry_in_s,
        } => (
            "✕",
            format!("relay DISCONNECTED {url}: {error} — retry in {retry_in_s}s"),
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
