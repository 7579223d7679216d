//! Pending: the queue of requests (only the visible rows are formatted, so ten thousand
//! waiting requests cost no more than ten) and the detail of the selected one.
//!
//! Every string from a request is attacker-controlled and goes through [`crate::escape`].

use assent_protocol::Grant;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::{Theme, hard_wrap, scroll_window};
use crate::app::{App, PendingItem, format_countdown, format_duration};
use crate::escape::{self, elide_middle, shell_join, truncate, visible, width};

/// Longest value shown in full; longer ones keep their start and end.
const MAX_VALUE_CHARS: usize = 600;
const LABEL_WIDTH: usize = 9;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
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
    let list_rows = (area.height as usize / 4).max(3).min(app.pending.len());
    let [list, detail] = Layout::vertical([
        Constraint::Length(list_rows as u16 + 2),
        Constraint::Fill(1),
    ])
    .areas(area);
    draw_list(frame, list, app, theme);
    if let Some(item) = app.selected_item() {
        draw_detail(frame, detail, app, item, theme);
    }
}

fn draw_list(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let title = format!(" Pending {}/{} ", app.selected + 1, app.pending.len());
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = inner.height as usize;
    let first = scroll_window(&app.scroll[0], app.selected, app.pending.len(), rows);
    let lines: Vec<Line> = app.pending[first..(first + rows).min(app.pending.len())]
        .iter()
        .enumerate()
        .map(|(i, item)| list_row(app, item, first + i == app.selected, inner.width, theme))
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
    let time = format!("{:>5} ", format_countdown(left));
    let who = format!("{} → {} ", truncate(&r.agent, 12), truncate(&r.run_as, 8));
    let tags: Vec<&str> = item
        .risks
        .iter()
        .filter(|r| !r.is_informational())
        .map(|r| r.tag())
        .collect();
    let tags = if tags.is_empty() {
        String::new()
    } else {
        format!(" ⚠ {}", tags.join(" "))
    };
    let used = width_of(&[marker, &time, &who, &tags]);
    let command = shell_join(&r.argv);
    let command = truncate(&command, width.saturating_sub(used)).into_owned();
    let pad = width.saturating_sub(used + escape::width(&command));
    let base = if selected {
        theme.selected()
    } else {
        ratatui::style::Style::new()
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

/// One labelled field, its value hard-wrapped under the value column.
fn field(
    lines: &mut Vec<Line<'static>>,
    label: &str,
    value: &str,
    style: ratatui::style::Style,
    width: usize,
    theme: Theme,
) {
    let value = elide_middle(value, MAX_VALUE_CHARS);
    for (i, piece) in hard_wrap(&value, width.saturating_sub(LABEL_WIDTH))
        .into_iter()
        .enumerate()
    {
        let label = if i == 0 {
            format!("{label:<LABEL_WIDTH$}")
        } else {
            " ".repeat(LABEL_WIDTH)
        };
        lines.push(Line::from(vec![
            Span::styled(label, theme.label()),
            Span::styled(piece, style),
        ]));
    }
}

fn draw_detail(frame: &mut Frame, area: Rect, app: &App, item: &PendingItem, theme: Theme) {
    let r = &item.request.payload;
    let block = Block::bordered().title(format!(" Request {} ", &r.id.to_hex()[..12]));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = inner.width as usize;
    let plain = ratatui::style::Style::new();
    let mut lines: Vec<Line<'static>> = Vec::new();

    field(&mut lines, "Agent", &visible(&r.agent), plain, w, theme);
    let mut key = item.fingerprint.clone();
    if item.first_seen {
        key.push_str("  ★ first seen");
    }
    field(
        &mut lines,
        "Key",
        &key,
        if item.first_seen { theme.warn() } else { plain },
        w,
        theme,
    );
    let run = format!(
        "{} (uid {}) → {}  on {}",
        visible(&r.user),
        r.uid,
        visible(&r.run_as),
        visible(&r.host)
    );
    field(
        &mut lines,
        "Run",
        &run,
        if r.run_as == "root" {
            theme.accent()
        } else {
            plain
        },
        w,
        theme,
    );
    field(&mut lines, "Program", &visible(&r.program), plain, w, theme);
    field(
        &mut lines,
        "Argv",
        &shell_join(&r.argv),
        theme.accent(),
        w,
        theme,
    );
    if item.risks.is_empty() {
        field(&mut lines, "Risks", "none flagged", theme.ok(), w, theme);
    }
    for (i, risk) in item.risks.iter().enumerate() {
        let style = if risk.is_informational() {
            theme.dim()
        } else {
            theme.danger()
        };
        let label = if i == 0 { "Risks" } else { "" };
        field(
            &mut lines,
            label,
            &format!("⚠ {}", risk.describe()),
            style,
            w,
            theme,
        );
    }
    field(&mut lines, "Cwd", &visible(&r.cwd), plain, w, theme);
    if r.env.is_empty() {
        field(&mut lines, "Env", "(none)", theme.dim(), w, theme);
    } else {
        let env = r
            .env
            .iter()
            .map(|(k, v)| format!("{}={}", visible(k), escape::shell_quote(v)))
            .collect::<Vec<_>>()
            .join(" ");
        field(&mut lines, "Env", &env, plain, w, theme);
    }
    field(&mut lines, "Reason", &visible(&r.reason), plain, w, theme);
    let asked = match r.ttl_s {
        Some(ttl) => format!("{} {}", r.grant, format_duration(ttl)),
        None => r.grant.to_string(),
    };
    let chosen = match item.grant {
        Grant::Timed => format!("timed {}", format_duration(item.ttl_s)),
        Grant::Once => format!("once (use within {})", format_duration(app.once_window_s)),
        Grant::Always => "always (until revoked)".into(),
    };
    let grant_style = if item.grant == Grant::Always {
        theme.danger()
    } else {
        theme.ok()
    };
    lines.push(Line::from(vec![
        Span::styled(format!("{:<LABEL_WIDTH$}", "Grant"), theme.label()),
        Span::styled(format!("asked {asked} · approve as "), plain),
        Span::styled(chosen, grant_style),
        Span::styled("  [t] [+/-]", theme.dim()),
    ]));
    let left = r.expires_at.saturating_sub(app.now);
    let time_style = if left < 60 { theme.danger() } else { plain };
    lines.push(Line::from(vec![
        Span::styled(format!("{:<LABEL_WIDTH$}", "Expires"), theme.label()),
        Span::styled(format!("in {}", format_countdown(left)), time_style),
        Span::styled(
            format!(
                "  (asked {} ago)",
                format_countdown(app.now.saturating_sub(r.created_at))
            ),
            theme.dim(),
        ),
    ]));

    let height = inner.height as usize;
    if lines.len() > height && height > 0 {
        let hidden = lines.len() - (height - 1);
        lines.truncate(height - 1);
        lines.push(Line::from(Span::styled(
            format!("▼ {hidden} more line(s) — enlarge the window to see them"),
            theme.warn(),
        )));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
